"""SQL enqueue: q4pg_enqueue, the queue's direct door (and PgQ insert_event, PGMQ send)
against a plain INSERT."""

from bench.subjects import writer


def q4pg_subject(bench, label='q4pg_enqueue', kind='q4pg'):
    """q4pg_enqueue into the queue q of bench's database, a message a transaction."""
    return writer(bench, label, 'scripts/enqueue_q4pg.sql', bench.stores['q'], kind)


def run(bench):
    s = bench.stores
    subjects = [q4pg_subject(bench),
                writer(bench, 'q4pg direct door: q4pg_q_enqueue', 'scripts/enqueue_door.sql', s['q']),
                writer(bench, 'the same INSERT into the q4pg queue table', 'scripts/enqueue_queue_table.sql',
                       s['q'], 'diagnostic')]
    if bench.has_pgq:
        subjects.append(writer(bench, 'PgQ insert_event', 'scripts/enqueue_pgq.sql', s['pq'],
                               'peer', countable=False))
    if bench.has_pgmq:
        subjects.append(writer(bench, 'PGMQ send', 'scripts/enqueue_pgmq.sql', s['pm'], 'peer'))
    bench.compare('enqueue', 'SQL enqueue',
                  writer(bench, 'INSERT', 'scripts/enqueue_raw.sql', s['raw'], 'baseline'),
                  subjects, unit='msg/s', target=('ratio', 0.90))
