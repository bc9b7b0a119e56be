"""Idle listeners for the wake-up latency: each reports ('ready', pid, None)
once listening, then ('got', i, time.monotonic()) for each message {"i": i}
it holds, and stops at the message {"i": "stop"} (rolled back, so the next
listener finds it too) or after idle_timeout seconds without a message."""

import json
import os
import select
import time

import psycopg2

from bench.workers import QUEUE, TAG


def listen_q4pg(dsn, out, idle_timeout):
    """Listens through the client's listen()."""
    import q4pg
    qm = q4pg.QueueManager(dsn, table_name=QUEUE, max_connections=1)
    out.put(('ready', os.getpid(), None))
    try:
        for data in qm.listen(TAG, stop_after_idle=idle_timeout):
            if data['i'] == 'stop':
                break
            out.put(('got', data['i'], time.monotonic()))
    finally:
        qm.close()


def listen_psycopg2(dsn, out, idle_timeout):
    """The baseline listener, written by hand in plain psycopg2: LISTEN on the
    queue's channel, a second connection calling q4pg_dequeue after every
    wake-up, and q4pg_register_idle before each sleep (producers NOTIFY only
    registered listeners), as any hand-written listener must."""
    waker = psycopg2.connect(dsn)
    waker.autocommit = True
    worker = psycopg2.connect(dsn)
    wake = waker.cursor()
    wake.execute('SELECT q4pg_channel(%s::regclass, %s::text)', (QUEUE, TAG))
    channel = wake.fetchone()[0]
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
                    worker.rollback()
                    break
                out.put(('got', i, time.monotonic()))
                worker.commit()
                last = time.monotonic()
                continue
            worker.commit()
            left = idle_timeout - (time.monotonic() - last)
            if left <= 0:
                break
            wake.execute('SELECT q4pg_register_idle(%s::regclass, %s::text)', (QUEUE, TAG))
            if not wake.fetchone()[0]:      # a producer may have missed us: look again
                time.sleep(0.002)
                continue
            if not waker.notifies:
                select.select([waker], [], [], min(5.0, left))
            waker.poll()
            del waker.notifies[:]
    finally:
        wake.execute('SELECT q4pg_unregister_idle(%s::regclass, %s::text)', (QUEUE, TAG))
        worker.close()
        waker.close()
