"""SQL dequeue: q4pg_dequeue, the queue's direct door (and PGMQ pop) against a plain
DELETE ... SKIP LOCKED."""

from bench.subjects import taker


def q4pg_subject(bench, label='q4pg_dequeue', kind='q4pg'):
    """q4pg_dequeue draining the prefilled queue q of bench's database."""
    return taker(bench, label, 'scripts/dequeue_q4pg.sql', bench.stores['q'], kind)


def run(bench):
    s = bench.stores
    subjects = [q4pg_subject(bench),
                taker(bench, 'q4pg direct door: q4pg_q_dequeue', 'scripts/dequeue_door.sql', s['q']),
                taker(bench, 'the same DELETE on the q4pg queue table', 'scripts/dequeue_queue_table.sql',
                      s['q'], 'diagnostic')]
    if bench.has_pgmq:
        subjects.append(taker(bench, 'PGMQ pop', 'scripts/dequeue_pgmq.sql', s['pm'], 'peer'))
    bench.compare('dequeue', 'SQL dequeue',
                  taker(bench, 'DELETE ... SKIP LOCKED', 'scripts/dequeue_raw.sql', s['raw'],
                        'baseline'),
                  subjects, unit='msg/s', target=('ratio', 0.90))
