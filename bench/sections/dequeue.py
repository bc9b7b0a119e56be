"""SQL dequeue: q4pg_dequeue, the queue's direct door (and PGMQ pop) against a plain
DELETE ... SKIP LOCKED."""

from bench.subjects import taker


def run(bench):
    s = bench.stores
    subjects = [taker(bench, 'q4pg_dequeue', 'scripts/dequeue_q4pg.sql', s['q']),
                taker(bench, 'q4pg direct door: q4pg_q_dequeue', 'scripts/dequeue_door.sql', s['q'])]
    if bench.has_pgmq:
        subjects.append(taker(bench, 'PGMQ pop', 'scripts/dequeue_pgmq.sql', s['pm'], 'peer'))
    bench.compare('dequeue', 'SQL dequeue',
                  taker(bench, 'DELETE ... SKIP LOCKED', 'scripts/dequeue_raw.sql', s['raw'],
                        'baseline'),
                  subjects, unit='msg/s', target=('ratio', 0.90))
