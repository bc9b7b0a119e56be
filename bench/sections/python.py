"""The Python client: QueueManager's enqueue, dequeue, enqueue_many and
dequeue_many against the same work in plain psycopg2, one process per client."""

from bench.subjects import python_loop

# measurement, job, baseline label, q4pg label
JOBS = [('Python enqueue', 'enqueue', 'psycopg2 INSERT', 'QueueManager.enqueue()'),
        ('Python dequeue', 'dequeue', 'psycopg2 DELETE', 'with QueueManager.dequeue()'),
        ('Python enqueue_many(%d)', 'enqueue_many', 'psycopg2 INSERT unnest',
         'QueueManager.enqueue_many()'),
        ('Python dequeue_many(%d)', 'dequeue_many', 'psycopg2 DELETE LIMIT',
         'with QueueManager.dequeue_many()')]


def run(bench):
    if bench.client_problem:
        bench.notes.append('Python level not measured for q4pg: q4pg.QueueManager is not '
                           'importable yet (%s).' % bench.client_problem)
        return
    s = bench.stores
    bench.start_pool()
    for measurement, job, baseline, label in JOBS:
        batch = bench.cfg.batch if job.endswith('_many') else 1
        bench.compare('python', measurement % batch if batch > 1 else measurement,
                      python_loop(bench, baseline, 'psycopg2', job, s['raw'], 'baseline', batch),
                      [python_loop(bench, label, 'q4pg', job, s['q'], batch=batch)],
                      clients=bench.cfg.batch_clients if batch > 1 else None)
