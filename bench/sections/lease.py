"""Leases at the SQL level: q4pg_lease then q4pg_ack (two transactions a message)
against the same work in plain SQL on a table of the same shape (UPDATE ... SKIP
LOCKED that sets the lease, then a DELETE that checks its token); and, a
diagnostic, that plain SQL on the q4pg queue's own table: what the table costs
and what the functions cost; and another, the queue's generated functions
called directly (the route looked up once, as q4pg_route gives it): what the
public functions' dispatch costs."""

import os

from bench.subjects import taker


def direct_script(bench):
    """A pgbench script like scripts/lease_q4pg.sql that calls the queue's
    generated functions by name (written to bench/work/, a path below bench/)."""
    route = bench.query("SELECT q4pg_route('q')")[0][0]
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'work', 'lease_direct.sql')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write("SELECT * FROM %slease('t', 1, interval '30 seconds') \\aset\n"
                "SELECT %sack(:id, :lease_token);\n" % (route, route))
    return 'work/lease_direct.sql'


def q4pg_subject(bench, label='q4pg_lease + q4pg_ack', kind='q4pg'):
    """q4pg_lease then q4pg_ack, draining the prefilled queue q of bench's database."""
    return taker(bench, label, 'scripts/lease_q4pg.sql', bench.stores['q'], kind)


def run(bench):
    s = bench.stores
    bench.compare('lease', 'lease + ack',
                  taker(bench, 'UPDATE ... SKIP LOCKED, DELETE', 'scripts/lease_raw.sql',
                        s['raw_lease'], 'baseline'),
                  [q4pg_subject(bench),
                   taker(bench, 'the same UPDATE, DELETE on the q4pg queue table',
                         'scripts/lease_queue_table.sql', s['q'], 'diagnostic'),
                   taker(bench, "the queue's generated lease and ack, called directly",
                         direct_script(bench), s['q'], 'diagnostic')],
                  unit='msg/s', target=('ratio', 0.90))
