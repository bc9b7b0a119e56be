"""The Python client: QueueManager's enqueue, dequeue, lease, enqueue_many,
dequeue_many and listen against the same work in plain psycopg2, one process
per client.  The consumers' target (issue 16): at least 0.90x psycopg2."""

from bench.subjects import python_loop

CONSUMERS = ('ratio', 0.90)
# measurement, job, baseline label, q4pg label, target
JOBS = [('Python enqueue', 'enqueue', 'psycopg2 INSERT', 'QueueManager.enqueue()', None),
        ('Python dequeue', 'dequeue', 'psycopg2 DELETE', 'with QueueManager.dequeue()',
         CONSUMERS),
        ('Python lease', 'lease', 'psycopg2 UPDATE, DELETE', 'with QueueManager.lease()',
         CONSUMERS),
        ('Python listen', 'listen', 'psycopg2 DELETE', 'for ... in QueueManager.listen()',
         CONSUMERS),
        ('Python enqueue_many(%d)', 'enqueue_many', 'psycopg2 INSERT unnest',
         'QueueManager.enqueue_many()', None),
        ('Python dequeue_many(%d)', 'dequeue_many', 'psycopg2 DELETE LIMIT',
         'with QueueManager.dequeue_many()', CONSUMERS)]


def run(bench):
    if bench.client_problem:
        bench.notes.append('Python level not measured for q4pg: q4pg.QueueManager is not '
                           'importable yet (%s).' % bench.client_problem)
        return
    s = bench.stores
    bench.start_pool()
    for measurement, job, baseline, label, target in JOBS:
        store = s['raw_lease'] if job == 'lease' else s['raw']
        batch = bench.cfg.batch if job.endswith('_many') else 1
        bench.compare('python', measurement % batch if batch > 1 else measurement,
                      python_loop(bench, baseline, 'psycopg2', job, store, 'baseline', batch),
                      [python_loop(bench, label, 'q4pg', job, s['q'], batch=batch)],
                      clients=bench.cfg.batch_clients if batch > 1 else None, target=target)
