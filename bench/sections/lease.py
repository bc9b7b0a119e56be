"""Leases at the SQL level: q4pg_lease then q4pg_ack (two transactions a message)
against the same work in plain SQL on a table of the same shape (UPDATE ... SKIP
LOCKED that sets the lease, then a DELETE that checks its token); and, a
diagnostic, that plain SQL on the q4pg queue's own table: what the table costs
and what the functions cost; and the queue's direct door (its generated
functions called by name: docs/sql.md, "The direct door")."""

from bench.subjects import taker


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
                   taker(bench, 'q4pg direct door: q4pg_q_lease + q4pg_q_ack', 'scripts/lease_door.sql',
                         s['q'])],
                  unit='msg/s', target=('ratio', 0.90))
