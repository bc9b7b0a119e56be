"""Throughput loops: one operation (enqueue, dequeue, lease, enqueue_many,
dequeue_many, listen) again and again, through the q4pg client or plain
psycopg2 (whose listen is its dequeue: a listener that always finds a message
never waits)."""

import json
import os
import time

import psycopg2

from bench.workers import MESSAGE, QUEUE, TAG, dumps

RAW_INSERT = 'INSERT INTO raw (tag, data) VALUES (%s, %s) RETURNING id'
RAW_INSERT_MANY = ('INSERT INTO raw (tag, data) SELECT %s, d::json FROM unnest(%s::text[]) AS d '
                   'RETURNING id')
RAW_DELETE = ('DELETE FROM raw WHERE id = (SELECT id FROM raw WHERE tag = %s ORDER BY id '
              'FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, tag, data::text, created_at')
# A lease then its ack, two transactions (what bench/scripts/lease_raw.sql does).
RAW_LEASE = ("UPDATE raw_lease SET run_at = now() + interval '30 seconds', attempts = attempts + 1, "
             'lease_token = gen_random_uuid() WHERE id IN (SELECT id FROM raw_lease WHERE tag = %s '
             'AND run_at <= now() ORDER BY run_at, id FOR UPDATE SKIP LOCKED LIMIT 1) '
             'RETURNING id, tag, data::text, created_at, attempts, last_error, lease_token::text, '
             'run_at')
RAW_ACK = 'DELETE FROM raw_lease WHERE id = %s AND lease_token = %s::uuid'
RAW_DELETE_MANY = ('DELETE FROM raw WHERE id = ANY (ARRAY(SELECT id FROM raw WHERE tag = %s '
                   'ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %s)) RETURNING id, tag, data::text, '
                   'created_at')


def client_available():
    """None when q4pg.QueueManager can be used, else why not."""
    try:
        import q4pg
        q4pg.QueueManager  # noqa: B018
    except Exception as e:  # ImportError, AttributeError, or a half-written module
        return '%s: %s' % (type(e).__name__, e)
    return None


def warm_up(_):
    """Nothing: makes the pool start its processes before anything is timed."""
    try:
        import q4pg  # noqa: F401  (pays for the import now, when the client exists)
    except Exception:
        pass
    time.sleep(0.2)
    return os.getpid()


def _q4pg_step(job, dsn, batch):
    import q4pg
    qm = q4pg.QueueManager(dsn, table_name=QUEUE, max_connections=1)
    items = [MESSAGE] * batch

    if job == 'enqueue':
        def step():
            qm.enqueue(TAG, MESSAGE)
            return 1
    elif job == 'dequeue':
        def step():
            with qm.dequeue(TAG) as data:
                return 0 if data is None else 1
    elif job == 'lease':
        def step():
            with qm.lease(TAG) as message:
                return 0 if message is None else 1
    elif job == 'enqueue_many':
        def step():
            return len(qm.enqueue_many(TAG, items))
    elif job == 'dequeue_many':
        def step():
            with qm.dequeue_many(TAG, batch) as messages:
                return len(messages)
    elif job == 'listen':
        items = qm.listen(TAG, stop_after_idle=0)

        def step():
            return 1 if next(items, None) is not None else 0

        def close():
            items.close()
            qm.close()
        return step, close
    else:
        raise ValueError(job)
    return step, qm.close


def _psycopg2_step(job, dsn, batch):
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    texts = [dumps(MESSAGE)] * batch

    if job == 'enqueue':
        def step():
            cur.execute(RAW_INSERT, (TAG, dumps(MESSAGE)))
            cur.fetchone()
            conn.commit()
            return 1
    elif job in ('dequeue', 'listen'):
        def step():
            cur.execute(RAW_DELETE, (TAG,))
            row = cur.fetchone()
            if row is not None:
                json.loads(row[2])
            conn.commit()
            return 0 if row is None else 1
    elif job == 'lease':
        def step():
            cur.execute(RAW_LEASE, (TAG,))
            row = cur.fetchone()
            conn.commit()
            if row is None:
                return 0
            json.loads(row[2])
            cur.execute(RAW_ACK, (row[0], row[6]))
            conn.commit()
            return 1
    elif job == 'enqueue_many':
        def step():
            cur.execute(RAW_INSERT_MANY, (TAG, texts))
            n = len(cur.fetchall())
            conn.commit()
            return n
    elif job == 'dequeue_many':
        def step():
            cur.execute(RAW_DELETE_MANY, (TAG, batch))
            rows = cur.fetchall()
            for row in rows:
                json.loads(row[2])
            conn.commit()
            return len(rows)
    else:
        raise ValueError(job)
    return step, conn.close


def timed_loop(impl, job, dsn, start_at, seconds=None, batch=1, calls=None):
    """Runs job ('enqueue', 'dequeue', 'lease', 'enqueue_many', 'dequeue_many', 'listen') through
    impl ('q4pg' or 'psycopg2') from start_at (time.monotonic(), the same clock
    in every process) for `seconds`, or for a fixed number of `calls`.
    Returns (messages, calls, short calls, time.monotonic() at the end): a
    short call moved fewer messages than asked (the queue ran dry)."""
    make = _q4pg_step if impl == 'q4pg' else _psycopg2_step
    step, close = make(job, dsn, batch)
    wanted = batch if job.endswith('_many') else 1
    messages = done = short = 0
    try:
        time.sleep(max(0.0, start_at - time.monotonic()))
        deadline = start_at + (seconds or 0)
        while (done < calls) if calls else (time.monotonic() < deadline):
            n = step()
            messages += n
            done += 1
            if n < wanted:
                short += 1
        finished = time.monotonic()
    finally:
        close()
    return messages, done, short, finished
