"""asyncio workers (section python_async): throughput loops of `tasks`
concurrent tasks in one event loop, through q4pg.AsyncQueueManager or plain
psycopg 3 async against the baseline table "raw" (one connection per task,
reused); and a process holding many idle listeners, asyncio tasks or sync
threads, whose wake-up latency, memory and connections are measured."""

import asyncio
import json
import os
import queue
import random
import threading
import time

from bench.workers import MESSAGE, QUEUE, TAG, dumps
from bench.workers.loops import RAW_DELETE, RAW_INSERT


async def _q4pg_tasks(job, dsn, tasks, start_at, deadline):
    import q4pg
    q = q4pg.AsyncQueueManager(dsn, table_name=QUEUE, max_connections=tasks)
    await q.count(TAG)                       # the pool is open before the clock starts

    async def task():
        n = calls = short = 0
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        if job == 'listen':
            items = q.listen(TAG, stop_after_idle=0)
            try:
                async for _ in items:
                    n += 1
                    calls += 1
                    if time.monotonic() >= deadline:
                        break
                else:
                    short += 1
            finally:
                await items.aclose()
            return n, calls, short
        while time.monotonic() < deadline:
            if job == 'enqueue':
                await q.enqueue(TAG, MESSAGE)
                n += 1
            else:
                async with q.dequeue(TAG) as data:
                    if data is None:
                        short += 1
                    else:
                        n += 1
            calls += 1
        return n, calls, short

    try:
        return await asyncio.gather(*[task() for _ in range(tasks)])
    finally:
        await q.close()


async def _psycopg_tasks(job, dsn, tasks, start_at, deadline):
    import psycopg
    conns = [await psycopg.AsyncConnection.connect(dsn) for _ in range(tasks)]
    text = dumps(MESSAGE)

    async def task(conn):
        n = calls = short = 0
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        cur = conn.cursor()
        while time.monotonic() < deadline:
            if job == 'enqueue':
                await cur.execute(RAW_INSERT, (TAG, text))
                await cur.fetchone()
                await conn.commit()
                n += 1
            else:
                await cur.execute(RAW_DELETE, (TAG,))
                row = await cur.fetchone()
                if row is not None:
                    json.loads(row[2])
                await conn.commit()
                if row is None:
                    short += 1
                else:
                    n += 1
            calls += 1
        return n, calls, short

    try:
        return await asyncio.gather(*[task(c) for c in conns])
    finally:
        for c in conns:
            await c.close()


def async_loop(impl, job, dsn, start_at, seconds, tasks):
    """Runs job ('enqueue', 'dequeue', 'listen') in `tasks` tasks of one event
    loop through impl ('q4pg' or 'psycopg') from start_at (time.monotonic())
    for `seconds`: (messages, calls, short calls, time.monotonic() at the end)."""
    run = _q4pg_tasks if impl == 'q4pg' else _psycopg_tasks
    results = asyncio.run(run(job, dsn, tasks, start_at, start_at + seconds))
    return (sum(r[0] for r in results), sum(r[1] for r in results),
            sum(r[2] for r in results), time.monotonic())


# --- many idle listeners in one process -------------------------------------------------

def _rss():
    """This process's resident memory, bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


def _produce(dsn, n, samples, got, app):
    """Waits until `n` listeners are registered idle, then commits one message at a
    time to a random listener's tag and waits for it: (latencies, lost, connections
    of `app`, RSS when all were idle)."""
    import psycopg2
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    deadline = time.monotonic() + 300
    while True:
        cur.execute('SELECT count(*) FROM q4pg_idle_listeners')
        if cur.fetchone()[0] >= n or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    cur.execute('SELECT count(*) FROM pg_stat_activity WHERE application_name = %s', (app,))
    connections = cur.fetchone()[0]
    rss = _rss()
    rnd = random.Random(1000)
    latencies, lost = [], 0
    for _ in range(samples):
        tag = 'w%d' % rnd.randrange(n)
        cur.execute('BEGIN')
        cur.execute('SELECT q4pg_enqueue(%s::regclass, %s, %s)', (QUEUE, tag, '1'))
        sent = time.monotonic()
        cur.execute('COMMIT')
        try:
            got_tag, at = got.get(timeout=10)
            latencies.append(at - sent)
        except queue.Empty:
            lost += 1
        time.sleep(rnd.uniform(0.005, 0.02))
    conn.close()
    return latencies, lost, connections, rss


def idle_listeners(impl, dsn, n, samples):
    """`n` listeners idle on tags w0..w<n-1> in this process (impl 'async': tasks of
    one event loop, AsyncQueueManager; 'threads': one thread each, QueueManager);
    returns dict(latencies, lost, connections, rss_before, rss_idle)."""
    import q4pg
    app = 'q4pg_idle_%s_%d' % (impl, os.getpid())
    dsn = '%s application_name=%s' % (dsn, app)
    got = queue.Queue()
    out = {}
    if impl == 'async':
        async def main():
            q = q4pg.AsyncQueueManager(dsn, QUEUE, poll_interval=60, max_connections=10)
            await q.count()
            out['rss_before'] = _rss()
            listeners = [q.listener('w%d' % i) for i in range(n)]

            async def listen(i, jobs):
                async with jobs:
                    async for _ in jobs:
                        got.put(('w%d' % i, time.monotonic()))

            tasks = [asyncio.ensure_future(listen(i, jobs)) for i, jobs in enumerate(listeners)]
            result = await asyncio.get_running_loop().run_in_executor(
                None, _produce, dsn, n, samples, got, app)
            for jobs in listeners:
                jobs.stop()
            await asyncio.gather(*tasks)
            await q.close()
            return result
        latencies, lost, connections, rss = asyncio.run(main())
    else:
        q = q4pg.QueueManager(dsn, QUEUE, poll_interval=60, max_connections=10)
        q.count()
        out['rss_before'] = _rss()
        listeners = [q.listener('w%d' % i) for i in range(n)]

        def listen(i, jobs):
            with jobs:
                for _ in jobs:
                    got.put(('w%d' % i, time.monotonic()))

        threads = [threading.Thread(target=listen, args=(i, jobs), daemon=True)
                   for i, jobs in enumerate(listeners)]
        for t in threads:
            t.start()
        latencies, lost, connections, rss = _produce(dsn, n, samples, got, app)
        for jobs in listeners:
            jobs.stop()
        for t in threads:
            t.join()
        q.close()
    out.update(latencies=latencies, lost=lost, connections=connections, rss_idle=rss)
    return out
