"""The benchmark's harness (bench/harness.py): a contender may run on a database
of its own (Bench.on_database), as the versions section's q4pg 1.1 does, and
compare() sets it side by side with the main database's."""

import types

import pytest

from bench.harness import Bench
from bench.sections import enqueue


@pytest.fixture
def bench(cluster):
    """A Bench on a fresh database of the session's cluster with q4pg (the
    default version) and bench/setup.sql's tables; its other databases are
    dropped afterwards."""
    name = cluster.create_database('template1', prefix='q4pg_bench_')
    cfg = types.SimpleNamespace(seconds=1, rounds=1, clients=[1], batch_clients=[1], batch=10,
                                batch_messages=100)
    b = Bench(cluster, cfg, database=name)
    b.setup()
    yield b
    others = [o.database for o in b.others]
    b.close()
    for database in [name] + others:
        cluster.drop_database(database)


def test_a_subject_made_on_another_database_runs_there(bench, cluster):
    other = bench.on_database(bench.database + '_old')
    assert other.query('SELECT current_database()') == [(bench.database + '_old',)]
    other.execute('CREATE EXTENSION q4pg VERSION %s', ('1.1',))
    other.setup()
    assert other.query("SELECT extversion FROM pg_extension WHERE extname = 'q4pg'") == [('1.1',)]

    bench.compare('versions', 'enqueue', enqueue.q4pg_subject(other, 'q4pg 1.1', 'baseline'),
                  [enqueue.q4pg_subject(bench, 'q4pg new')])

    [row] = bench.rows
    assert (row['subject'], row['baseline'], row['clients']) == ('q4pg new', 'q4pg 1.1', 1)
    assert row['rate'] > 0 and row['baseline_rate'] > 0
    # each wrote into its own database's queue (a writer empties its queue before it runs)
    assert other.query('SELECT count(*) FROM q')[0][0] > 0
    assert bench.query('SELECT count(*) FROM q')[0][0] > 0
    assert other.query('SELECT count(*) FROM raw')[0][0] == 0


def test_on_database_reuses_a_database_that_exists(bench):
    first = bench.on_database(bench.database + '_twice')
    first.execute('CREATE TABLE kept (x int)')
    second = bench.on_database(bench.database + '_twice')
    assert second.query("SELECT to_regclass('kept') IS NOT NULL") == [(True,)]
