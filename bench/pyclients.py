"""The Python side of the benchmark: code that runs in worker processes.

run.py starts these in processes of their own (multiprocessing, spawn), so
16 clients are 16 interpreters, as 16 application processes would be, and no
worker shares the GIL or a connection with another.

Every job exists twice: through the q4pg client (q4pg.QueueManager) and as
the same work written in plain psycopg2 against the baseline table "raw"
(one connection per process, reused, as QueueManager's pool reuses its own).
"""

import json
import os
import select
import time

import psycopg2

QUEUE = 'q'      # the q4pg queue (bench/setup.sql)
TAG = 't'
MESSAGE = {'n': 1}

RAW_INSERT = 'INSERT INTO raw (tag, data) VALUES (%s, %s) RETURNING id'
RAW_INSERT_MANY = ('INSERT INTO raw (tag, data) SELECT %s, d::json FROM unnest(%s::text[]) AS d '
                   'RETURNING id')
RAW_DELETE = ('DELETE FROM raw WHERE id = (SELECT id FROM raw WHERE tag = %s ORDER BY id '
              'FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, tag, data::text, created_at')
RAW_DELETE_MANY = ('DELETE FROM raw WHERE id = ANY (ARRAY(SELECT id FROM raw WHERE tag = %s '
                   'ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %s)) RETURNING id, tag, data::text, '
                   'created_at')


def dumps(data):
    """JSON text as the q4pg client writes it (the spec's separators)."""
    return json.dumps(data, separators=(',', ':'), ensure_ascii=False)


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


# --- throughput jobs: a loop of one operation, timed -------------------------

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
    elif job == 'enqueue_many':
        def step():
            return len(qm.enqueue_many(TAG, items))
    elif job == 'dequeue_many':
        def step():
            with qm.dequeue_many(TAG, batch) as messages:
                return len(messages)
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
    elif job == 'dequeue':
        def step():
            cur.execute(RAW_DELETE, (TAG,))
            row = cur.fetchone()
            if row is not None:
                json.loads(row[2])
            conn.commit()
            return 0 if row is None else 1
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
    """Runs job ('enqueue', 'dequeue', 'enqueue_many', 'dequeue_many') through
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


# --- listeners: wake-up latency ----------------------------------------------

def listen_q4pg(dsn, out, idle_timeout):
    """Listens through the client's listen() and reports each message it holds."""
    import q4pg
    qm = q4pg.QueueManager(dsn, table_name=QUEUE, max_connections=1)
    out.put(('ready', os.getpid(), None))
    try:
        for data in qm.listen(TAG, timeout=idle_timeout):
            if data['i'] == 'stop':
                break                     # rolled back: the next listener finds it too
            out.put(('got', data['i'], time.monotonic()))
    finally:
        qm.close()


def listen_psycopg2(dsn, out, idle_timeout):
    """The baseline listener: plain psycopg2 LISTEN on the queue's channel, a
    second connection calling q4pg_dequeue after every wake-up.  Where the
    installed q4pg has q4pg_register_idle (producers NOTIFY only registered listeners),
    it registers before each sleep, as any hand-written listener must."""
    waker = psycopg2.connect(dsn)
    waker.autocommit = True
    worker = psycopg2.connect(dsn)
    wake = waker.cursor()
    wake.execute('SELECT q4pg_channel(%s::regclass, %s::text), '
                 "to_regprocedure('q4pg_register_idle(regclass, text)') IS NOT NULL", (QUEUE, TAG))
    channel, gated = wake.fetchone()
    wake.execute('LISTEN "%s"' % channel)   # q4pg_channel() is 'q4pg_' + md5 hex
    out.put(('ready', os.getpid(), None))
    cur = worker.cursor()
    last = time.monotonic()
    try:
        while True:
            cur.execute('SELECT id, tag, data, created_at FROM q4pg_dequeue(%s::regclass, %s::text)',
                        (QUEUE, TAG))
            row = cur.fetchone()
            if row is not None:
                i = json.loads(row[2])['i']
                if i == 'stop':
                    worker.rollback()     # the next listener finds it too
                    break
                out.put(('got', i, time.monotonic()))
                worker.commit()
                last = time.monotonic()
                continue
            worker.commit()
            left = idle_timeout - (time.monotonic() - last)
            if left <= 0:
                break
            if gated:
                wake.execute('SELECT q4pg_register_idle(%s::regclass, %s::text)', (QUEUE, TAG))
                if not wake.fetchone()[0]:      # a producer may have missed us: look again
                    time.sleep(0.002)
                    continue
            if not waker.notifies:
                select.select([waker], [], [], min(5.0, left))
            waker.poll()
            del waker.notifies[:]
    finally:
        if gated:
            wake.execute('SELECT q4pg_unregister_idle(%s::regclass, %s::text)', (QUEUE, TAG))
        worker.close()
        waker.close()


# --- churn soak ------------------------------------------------------------------

SOAK_SQL = {
    'q4pg': {
        'put': 'SELECT count(*) FROM q4pg_enqueue_many(%s::regclass, %s::text, %s::text[])',
        'take': 'SELECT count(*) FROM q4pg_dequeue_many(%s::regclass, %s::text, %s::integer)',
        'table': QUEUE,
    },
    'raw': {
        'put': 'WITH i AS (INSERT INTO raw (tag, data) SELECT %s, d::json FROM unnest(%s::text[]) AS d '
               'RETURNING id) SELECT count(*) FROM i',
        'take': 'WITH d AS (DELETE FROM raw WHERE id = ANY (ARRAY(SELECT id FROM raw WHERE tag = %s '
                'ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %s)) RETURNING id) SELECT count(*) FROM d',
        'table': 'raw',
    },
}


def _soak_args(kind, *args):
    return (SOAK_SQL[kind]['table'],) + args if kind == 'q4pg' else args


def soak_producer(dsn, kind, batch, total, produced, consumed, max_backlog):
    """Puts batches until `total` messages are claimed by the producers, never
    more than max_backlog ahead of the consumers."""
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    texts = [dumps(MESSAGE)] * batch
    try:
        while True:
            with produced.get_lock():
                if produced.value >= total:
                    return
                produced.value += batch
            while produced.value - consumed.value > max_backlog:
                time.sleep(0.002)
            cur.execute(SOAK_SQL[kind]['put'], _soak_args(kind, TAG, texts))
            conn.commit()
    finally:
        conn.close()


def soak_consumer(dsn, kind, batch, total, consumed):
    """Takes batches until `total` messages are consumed (by all consumers)."""
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    try:
        while consumed.value < total:
            cur.execute(SOAK_SQL[kind]['take'], _soak_args(kind, TAG, batch))
            n = cur.fetchone()[0]
            conn.commit()
            if n:
                with consumed.get_lock():
                    consumed.value += n
            else:
                time.sleep(0.002)
    finally:
        conn.close()
