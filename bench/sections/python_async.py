"""The asyncio client: AsyncQueueManager's enqueue(), `async with dequeue()` and
`async for ... in listen()` against the same work in plain psycopg 3 async,
1/4/16 concurrent tasks in one event loop (issue 18's target: at least 0.90x);
then many idle listeners in one process (default 1,000), asyncio tasks against
one thread each with the sync client: wake-up p99, memory per listener,
connections used.  The idle listeners run on a cluster of their own, whose
max_connections fits them (each sync listener LISTENs on a connection of its
own; the asyncio ones share one, aio_hub.py)."""

import concurrent.futures
import multiprocessing
import os
import time

from bench.harness import POSTGRES_ARGS, Subject, log
from bench.sections.listen import percentile
from bench.workers import aio_loops

CONSUMERS = ('ratio', 0.90)
# measurement, job, baseline label, q4pg label
JOBS = [('asyncio enqueue', 'enqueue', 'psycopg 3 async INSERT', 'await AsyncQueueManager.enqueue()'),
        ('asyncio dequeue', 'dequeue', 'psycopg 3 async DELETE',
         'async with AsyncQueueManager.dequeue()'),
        ('asyncio listen', 'listen', 'psycopg 3 async DELETE',
         'async for ... in AsyncQueueManager.listen()')]
IDLE_LISTENERS = int(os.environ.get('Q4PG_BENCH_IDLE_LISTENERS', '1000'))
IDLE_SAMPLES = 200


def run(bench):
    try:
        import q4pg
        q4pg.AsyncQueueManager  # noqa: B018
    except Exception as e:
        bench.notes.append('asyncio client not measured: %s: %s' % (type(e).__name__, e))
        return
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context('spawn'))
    try:
        s = bench.stores
        for measurement, job, baseline, label in JOBS:
            bench.compare('python_async', measurement,
                          _loop(bench, pool, baseline, 'psycopg', job, s['raw'], 'baseline'),
                          [_loop(bench, pool, label, 'q4pg', job, s['q'])],
                          target=None if job == 'enqueue' else CONSUMERS)
    finally:
        pool.shutdown()
    _idle(bench)


def _loop(bench, pool, label, impl, job, store, kind='q4pg'):
    """`c` tasks in one worker process for cfg.py_seconds; messages per second."""
    takes = job != 'enqueue'

    def run(c):
        n = bench.prefill.get(label, max(10000, int(8000 * bench.cfg.py_seconds)))
        for _ in range(6):
            store.reset(n if takes else 0)
            start_at = time.monotonic() + 1.0
            moved, _, short, _ = pool.submit(aio_loops.async_loop, impl, job, bench.dsn, start_at,
                                             bench.cfg.py_seconds, c).result()
            if not (takes and short):
                return moved / bench.cfg.py_seconds
            n *= 2
            bench.prefill[label] = n
            log('    %s ran dry: prefill now %d messages, again' % (label, n))
        raise RuntimeError('%s: ran dry even with %d messages' % (label, n))
    return Subject(label, run, kind)


def _idle(bench):
    """IDLE_LISTENERS idle listeners in one process, asyncio then threads."""
    from tools.pgcluster import Cluster
    n = IDLE_LISTENERS
    args = POSTGRES_ARGS + ' -c max_connections=%d' % (2 * n + 50)
    ctx = multiprocessing.get_context('spawn')
    bench.notes.append(
        'Idle listeners (section python_async): %d listeners in one process, each on a tag of '
        'its own, registered idle; a producer commits one message at a time (5-20 ms apart) to '
        'a random tag; latency = COMMIT sent -> that listener holds the message. Memory: the '
        'process RSS with all idle minus before the first, per listener. Connections: the '
        'server sessions of that process.' % n)
    with Cluster(postgres_args=args) as pg:
        dsn = pg.dsn_string()
        import psycopg2
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        conn.cursor().execute("CREATE EXTENSION q4pg; SELECT q4pg_create_queue('q')")
        conn.close()
        for impl, label in (('async', 'AsyncQueueManager.listen() x%d tasks, one process' % n),
                            ('threads', 'QueueManager.listen() x%d threads, one process' % n)):
            with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                t = time.monotonic()
                r = pool.submit(aio_loops.idle_listeners, impl, dsn, n, IDLE_SAMPLES).result()
            v = r['latencies']
            per = (r['rss_idle'] - r['rss_before']) / n
            log('  %d idle listeners, %-7s p50 %.2f ms  p99 %.2f ms  %s lost  %.1f KiB each  '
                '%d connections (%.0f s)' % (n, impl, percentile(v, 50) * 1e3,
                                             percentile(v, 99) * 1e3, r['lost'], per / 1024,
                                             r['connections'], time.monotonic() - t))
            bench.latency.append(dict(
                subject=label, listeners=n, samples=len(v), lost=r['lost'],
                p50=percentile(v, 50), p90=percentile(v, 90), p99=percentile(v, 99),
                max=max(v) if v else None, kind='q4pg' if impl == 'async' else 'baseline',
                memory_per_listener=per, connections=r['connections']))
            if impl == 'async':
                bench.latency[-1]['pass'] = bool(v) and percentile(v, 99) < 0.010 and not r['lost']
            bench.notes.append('%s: %.1f KiB of memory per listener (process RSS), %d server '
                               'connections (%s, and the pool)'
                               % (label, per / 1024, r['connections'],
                                  'one LISTEN session for all' if impl == 'async'
                                  else 'one LISTEN connection per listener'))
