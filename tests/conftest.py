"""Fixtures: one real PostgreSQL cluster per test session, one database per test.

The session's cluster (tools/pgcluster.py: testing.postgresql, run as user
postgres when we are root) gets a template database with the extension
installed; each test gets a fresh copy of it (CREATE DATABASE ... TEMPLATE),
so tests are isolated without paying for CREATE EXTENSION each time.

Plain helpers (WAIT, wait_until) are in tests/helpers.py; the reliability
suite's own fixtures in tests/reliability/conftest.py.
"""

import os
import subprocess

import psycopg2
import pytest

import q4pg
from tests.helpers import TEMPLATE, create_database_with_q4pg
from tools.pgcluster import Cluster


@pytest.fixture(scope='session')
def cluster():
    """The session's PostgreSQL cluster (a tools.pgcluster.Cluster)."""
    with Cluster() as pg:
        create_database_with_q4pg(pg, TEMPLATE)
        yield pg


@pytest.fixture
def dbname(cluster):
    """A fresh database with the extension installed, dropped after the test."""
    name = cluster.create_database(TEMPLATE, prefix='q4pg_test_')
    yield name
    cluster.drop_database(name)


@pytest.fixture
def dsn(cluster, dbname):
    """libpq connection string of a fresh database with the extension installed."""
    return cluster.dsn_string(database=dbname)


@pytest.fixture
def bare_dsn(cluster):
    """libpq connection string of a fresh database WITHOUT the extension."""
    name = cluster.create_database('template1', prefix='q4pg_test_')
    yield cluster.dsn_string(database=name)
    cluster.drop_database(name)


@pytest.fixture
def restored(cluster):
    """The name of an empty database (template0) to restore a dump into, dropped afterwards."""
    name = cluster.create_database('template0', prefix='q4pg_restored_')
    yield name
    cluster.drop_database(name)


@pytest.fixture
def conn(dsn):
    """An autocommit psycopg2 connection to the test's database, for set-up and checks."""
    c = psycopg2.connect(dsn)
    c.autocommit = True
    yield c
    c.close()


@pytest.fixture
def pg_env(cluster, dbname):
    """libpq environment variables (PGHOST, PGPORT, ...) pointing at the test's database."""
    return dict(cluster.env(), PGDATABASE=dbname)


@pytest.fixture
def run(cluster):
    """Runs a program (pg_dump, pg_restore, psql, ...) with libpq's PG* variables
    pointing at the session's cluster: run(*args, env=None, check=True) -> CompletedProcess.

    env: more environment variables.  check: fails, with the program's stderr,
    unless it exits with status 0.
    """
    def run_program(*args, env=None, check=True):
        full_env = dict(os.environ, **cluster.env())
        full_env.update(env or {})
        proc = subprocess.run(args, env=full_env, capture_output=True, text=True)
        if check:
            assert proc.returncode == 0, '%s failed:\n%s' % (args[0], proc.stderr)
        return proc

    return run_program


@pytest.fixture
def psql(run, dbname):
    """Runs psql against the test's database: psql(sql, *args, check=True) -> CompletedProcess
    (fails, with psql's stderr, when psql does)."""
    def run_psql(sql, *args, check=True):
        return run('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql, *args,
                   env={'PGDATABASE': dbname}, check=check)

    return run_psql


@pytest.fixture
def make_queue(dsn):
    """make_queue(table_name, *args, app=None, **kwargs): a q4pg.QueueManager on the
    test's database (QueueManager's arguments; app: the application_name of its
    connections), its table created; closed after the test."""
    managers = []

    def make(table_name, *args, app=None, **kwargs):
        manager = q4pg.QueueManager(dsn + (' application_name=' + app if app else ''),
                                    table_name, *args, **kwargs)
        managers.append(manager)
        manager.create_table()
        return manager

    yield make
    for manager in managers:
        manager.close()


@pytest.fixture
def q(request, make_queue):
    """The test module's queue 'mq': a QueueManager made by make_queue with the
    module's Q_OPTIONS (a dict of its keyword arguments; default: none)."""
    return make_queue('mq', **getattr(request.module, 'Q_OPTIONS', {}))
