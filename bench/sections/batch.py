"""Batches at the SQL level: q4pg_enqueue_many / q4pg_dequeue_many of
cfg.batch messages (and PgQ's, PGMQ's batches, PgQ's consumer) against plain
multi-row INSERT / DELETE; messages per second."""

from bench.harness import MESSAGE, Subject
from bench.subjects import taker, writer


def enqueue_subject(bench, label='q4pg_enqueue_many', kind='q4pg'):
    """q4pg_enqueue_many of cfg.batch messages into the queue q of bench's database."""
    return writer(bench, label, 'scripts/batch_enqueue_q4pg.sql', bench.stores['q'], kind,
                  defines={'batch': bench.cfg.batch})


def dequeue_subject(bench, label='q4pg_dequeue_many', kind='q4pg'):
    """q4pg_dequeue_many of cfg.batch messages from the queue q of bench's database."""
    return taker(bench, label, 'scripts/batch_dequeue_q4pg.sql', bench.stores['q'], kind,
                 batch=bench.cfg.batch)


def run(bench):
    s, b = bench.stores, bench.cfg.batch
    defines = {'batch': b}
    subjects = [enqueue_subject(bench)]
    if bench.has_pgq:
        subjects.append(writer(bench, 'PgQ insert_event x%d' % b, 'scripts/batch_enqueue_pgq.sql',
                               s['pq'], 'peer', per_call=b, defines=defines, countable=False))
    if bench.has_pgmq:
        subjects.append(writer(bench, 'PGMQ send_batch', 'scripts/batch_enqueue_pgmq.sql', s['pm'],
                               'peer', defines=defines))
    bench.compare('batch', 'batch enqueue x%d' % b,
                  writer(bench, 'INSERT ... unnest', 'scripts/batch_enqueue_raw.sql', s['raw'],
                         'baseline', defines=defines),
                  subjects, clients=bench.cfg.batch_clients, target=('rate', 100000))

    subjects = [dequeue_subject(bench)]
    if bench.has_pgmq:
        subjects.append(taker(bench, 'PGMQ pop(%d)' % b, 'scripts/batch_dequeue_pgmq.sql', s['pm'],
                              'peer', batch=b))
    if bench.has_pgq:
        subjects.append(pgq_consumer(bench, 'PgQ consumer batch', b))
    bench.compare('batch', 'batch dequeue x%d' % b,
                  taker(bench, 'DELETE ... LIMIT %d' % b, 'scripts/batch_dequeue_raw.sql', s['raw'],
                        'baseline', batch=b),
                  subjects, clients=bench.cfg.batch_clients)


def pgq_consumer(bench, label, batch):
    """PgQ's consumer loop (next_batch, get_batch_events, finish_batch) over
    ticks of `batch` events each; one consumer (PgQ consumers fan out, they
    do not share work)."""
    def run(c):
        calls = max(2, bench.cfg.batch_messages // batch)
        bench.execute("SELECT pgq.drop_queue('pc', true) FROM pgq.queue WHERE queue_name = 'pc'")
        bench.execute("SELECT pgq.create_queue('pc')")
        # a tick whenever there is any new event: each ticker() call below closes one batch
        bench.execute("SELECT pgq.set_queue_config('pc', 'ticker_max_count', '1')")
        bench.execute("SELECT pgq.register_consumer('pc', 'bench')")
        for _ in range(calls):
            bench.execute("SELECT count(pgq.insert_event('pc', 't', d)) FROM "
                          "unnest(array_fill(%s::text, ARRAY[%s::integer])) AS d", (MESSAGE, batch))
            bench.execute("SELECT pgq.ticker('pc')")
        bench.execute('CHECKPOINT')
        res = bench.pgbench('scripts/batch_dequeue_pgq.sql', 1, transactions=calls)
        pending = bench.query("SELECT pgq.next_batch('pc', 'bench')")[0][0]
        if pending is not None:
            raise RuntimeError('PgQ consumer left batches behind')
        return res.tps * batch
    return Subject(label, run, 'peer', clients=[1])
