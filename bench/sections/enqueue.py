"""SQL enqueue: q4pg_enqueue, the queue's direct door (and PgQ insert_event, PGMQ send)
against a plain INSERT."""

from bench.subjects import writer


def run(bench):
    s = bench.stores
    subjects = [writer(bench, 'q4pg_enqueue', 'scripts/enqueue_q4pg.sql', s['q']),
                writer(bench, 'q4pg direct door: q4pg_q_enqueue', 'scripts/enqueue_door.sql', s['q'])]
    if bench.has_pgq:
        subjects.append(writer(bench, 'PgQ insert_event', 'scripts/enqueue_pgq.sql', s['pq'],
                               'peer', countable=False))
    if bench.has_pgmq:
        subjects.append(writer(bench, 'PGMQ send', 'scripts/enqueue_pgmq.sql', s['pm'], 'peer'))
    bench.compare('enqueue', 'SQL enqueue',
                  writer(bench, 'INSERT', 'scripts/enqueue_raw.sql', s['raw'], 'baseline'),
                  subjects, unit='msg/s', target=('ratio', 0.90))
