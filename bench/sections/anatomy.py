"""q4pg_enqueue / q4pg_dequeue taken apart (bench/anatomy/): each piece added
to a plain INSERT / DELETE one at a time; ratios to the plain statement on raw
with durable commits, then microseconds per call with synchronous_commit=off."""

import os

from bench.harness import BENCH, Subject, table_store
from bench.subjects import taker, writer

# label, pgbench script (below bench/), the table it fills or drains
ENQUEUE_PIECES = [
    ('INSERT + CHECK (queue shape)', 'anatomy/insert_check.sql', 'anatomy.q_silent'),
    ('+ empty stmt trigger', 'anatomy/insert_trigger_bare.sql', 'anatomy.q_trigger_bare'),
    ('+ empty stmt trigger w/ transition table', 'anatomy/insert_trigger_rows.sql',
     'anatomy.q_trigger_rows'),
    ('+ installed q4pg_notify, gated (INSERT into q)', 'scripts/notify_queue_insert.sql', 'q'),
    ('plpgsql static INSERT', 'anatomy/call_static.sql', 'anatomy.q_silent'),
    ('plpgsql static INSERT, no SET', 'anatomy/call_static_unpinned.sql', 'anatomy.q_silent'),
    ('plpgsql dynamic INSERT', 'anatomy/call_dynamic.sql', 'anatomy.q_silent'),
    ('plpgsql prepared-once INSERT', 'anatomy/call_prepared.sql', 'anatomy.q_silent'),
    ('q4pg_enqueue, trigger disabled', 'anatomy/enqueue_silent.sql', 'anatomy.q_silent'),
    ('q4pg_enqueue', 'scripts/enqueue_q4pg.sql', 'q'),
]
DEQUEUE_PIECES = [
    ('DELETE (queue shape)', 'anatomy/delete_check.sql', 'anatomy.q_silent'),
    ('plpgsql static DELETE', 'anatomy/delete_static.sql', 'anatomy.q_silent'),
    ('plpgsql dynamic DELETE', 'anatomy/delete_dynamic.sql', 'anatomy.q_silent'),
    ('plpgsql prepared-once DELETE', 'anatomy/delete_prepared.sql', 'anatomy.q_silent'),
    ('q4pg_dequeue, trigger disabled', 'anatomy/dequeue_silent.sql', 'anatomy.q_silent'),
    ('q4pg_dequeue', 'scripts/dequeue_q4pg.sql', 'q'),
]
NO_FLUSH_WAIT = '-c synchronous_commit=off'


def run(bench):
    bench.psql_file(os.path.join(BENCH, 'anatomy', 'setup.sql'))
    stores = dict(bench.stores)
    stores.update((table, table_store(bench, table))
                  for _, _, table in ENQUEUE_PIECES + DEQUEUE_PIECES if table not in stores)

    def pieces(make, variants, pgoptions=None):
        return [make(bench, label, script, stores[table], 'anatomy', pgoptions=pgoptions)
                for label, script, table in variants]

    def insert(pgoptions=None):
        return writer(bench, 'INSERT', 'scripts/enqueue_raw.sql', stores['raw'], 'baseline',
                      pgoptions=pgoptions)

    def delete(pgoptions=None):
        return taker(bench, 'DELETE', 'scripts/dequeue_raw.sql', stores['raw'], 'baseline',
                     pgoptions=pgoptions)

    clients = bench.cfg.anatomy_clients
    bench.compare('anatomy', 'enqueue pieces', insert(), pieces(writer, ENQUEUE_PIECES),
                  clients=clients)
    bench.compare('anatomy', 'dequeue pieces', delete(), pieces(taker, DEQUEUE_PIECES),
                  clients=clients)

    # CPU cost per call: one client, commits not waiting for the WAL flush.
    settings = Subject('q4pg_queue_settings() alone', lambda c: bench.pgbench(
        'anatomy/settings.sql', c, seconds=bench.cfg.seconds).tps, 'anatomy')
    bench.compare('anatomy-cpu', 'enqueue pieces, 1 client, no flush wait', insert(NO_FLUSH_WAIT),
                  pieces(writer, ENQUEUE_PIECES, NO_FLUSH_WAIT) + [settings],
                  clients=[1], table=bench.cpu)
    bench.compare('anatomy-cpu', 'dequeue pieces, 1 client, no flush wait', delete(NO_FLUSH_WAIT),
                  pieces(taker, DEQUEUE_PIECES, NO_FLUSH_WAIT), clients=[1], table=bench.cpu)
