"""The churn soak's producers and consumers: batches through the q4pg queue
(q4pg_enqueue_many / q4pg_dequeue_many) or through raw (plain SQL), counted
in shared multiprocessing Values."""

import time

import psycopg2

from bench.workers import MESSAGE, QUEUE, TAG, dumps

SQL = {
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


def _args(kind, *args):
    return (SQL[kind]['table'],) + args if kind == 'q4pg' else args


def producer(dsn, kind, batch, total, produced, consumed, max_backlog):
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
            cur.execute(SQL[kind]['put'], _args(kind, TAG, texts))
            conn.commit()
    finally:
        conn.close()


def consumer(dsn, kind, batch, total, consumed):
    """Takes batches until `total` messages are consumed (by all consumers)."""
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    try:
        while consumed.value < total:
            cur.execute(SQL[kind]['take'], _args(kind, TAG, batch))
            n = cur.fetchone()[0]
            conn.commit()
            if n:
                with consumed.get_lock():
                    consumed.value += n
            else:
                time.sleep(0.002)
    finally:
        conn.close()
