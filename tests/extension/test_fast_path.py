"""What the fast paths remember and skip must never change what is stored or who is woken.

* q4pg_enqueue and friends remember a queue's settings for the session
  (q4pg_cache_settings): a queue dropped and made again with other settings
  gets them, and a forged or stale entry cannot store what the table refuses.
* The trigger's gate runs no PL/pgSQL while nobody waits; its lock key is a
  constant of the trigger, so a renamed queue still wakes its listeners (a
  restored one: tests/reliability/test_dumps.py).
"""

import threading

import psycopg2
import pytest

import q4pg


def _oid(conn, table):
    with conn.cursor() as cur:
        cur.execute('SELECT %s::regclass::oid', (table,))
        return cur.fetchone()[0]


def _enqueue(conn, queue, data):
    with conn.cursor() as cur:
        cur.execute('SELECT q4pg_enqueue(%s, %s, %s)', (queue, 't', data))
        return cur.fetchone()[0]


def test_a_queue_made_again_gets_its_new_settings(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('again', 'text', 10)")
        _enqueue(conn, 'again', 'x' * 10)          # the session remembers text/10
        cur.execute("SELECT current_setting('q4pg.queue_' || 'again'::regclass::oid)")
        assert cur.fetchone() == ('text 10',)
        cur.execute("SELECT q4pg_drop_queue('again')")
        cur.execute("SELECT q4pg_create_queue('again', 'jsonb', 5)")
        with pytest.raises(psycopg2.Error) as error:
            _enqueue(conn, 'again', '["x","y"]')
        assert error.value.pgcode == '22001'
        assert 'accepts (5 characters)' in error.value.pgerror
        with pytest.raises(psycopg2.Error) as error:
            _enqueue(conn, 'again', 'not json')
        assert error.value.pgcode == '22P02'
        _enqueue(conn, 'again', '[1]')
        cur.execute('SELECT data FROM again')
        assert cur.fetchall() == [([1],)]


def test_a_forged_settings_entry_stores_nothing_the_table_refuses(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('strict', 'text', 10)")
        oid = _oid(conn, 'strict')
        # a session lying to itself: no limit, and another data type
        cur.execute("SELECT set_config('q4pg.queue_%s', 'text 1000', false)" % oid)
        with pytest.raises(psycopg2.Error) as error:
            _enqueue(conn, 'strict', 'x' * 11)
        assert error.value.pgcode == '23514'       # the CHECK constraint still holds
        cur.execute("SELECT set_config('q4pg.queue_%s', 'jsonb 1000', false)" % oid)
        _enqueue(conn, 'strict', '{"a":1}')        # still stored as text: the column decides
        cur.execute("SELECT set_config('q4pg.queue_%s', 'nonsense', false)" % oid)
        with pytest.raises(psycopg2.Error):
            _enqueue(conn, 'strict', 'y')
        cur.execute('SELECT data FROM strict')
        assert cur.fetchall() == [('{"a": 1}',)]


def test_a_table_that_is_no_queue_is_refused_even_after_a_queue_was_remembered(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('real')")
        _enqueue(conn, 'real', '1')
        cur.execute('CREATE TABLE plain (LIKE real INCLUDING ALL)')
        for call in ("SELECT q4pg_enqueue('plain', 't', '1')",
                     "SELECT * FROM q4pg_dequeue('plain', 't')",
                     "SELECT * FROM q4pg_dequeue_many('plain', 't', 2)",
                     "SELECT q4pg_cancel('plain', 1)"):
            with pytest.raises(psycopg2.Error) as error:
                cur.execute(call)
            assert error.value.pgcode == '42P01', call


def test_nobody_waiting_runs_no_trigger_function(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('quiet')")
        cur.execute("SELECT pg_stat_reset()")
        cur.execute("SET track_functions = 'all'")
        cur.execute("INSERT INTO quiet (tag, data) VALUES ('t', '1')")
        _enqueue(conn, 'quiet', '2')
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute("SELECT count(*) FROM pg_stat_user_functions WHERE funcname = 'q4pg_notify'")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM pg_stat_user_functions WHERE funcname = 'q4pg_enqueue'")
        assert cur.fetchone() == (1,)              # the statistics do count calls


def test_a_renamed_queue_still_wakes_its_listener(dsn, conn):
    old = q4pg.QueueManager(dsn, 'before', poll_interval=60)
    old.create_table()
    old.close()
    with conn.cursor() as cur:
        cur.execute('ALTER TABLE before RENAME TO after')
    q = q4pg.QueueManager(dsn, 'after', poll_interval=60)
    timer = threading.Timer(0.5, q.enqueue, ('t', {'n': 1}))
    timer.start()
    try:
        assert list(q.listen('t', timeout=10, limit=1)) == [{'n': 1}]
    finally:
        timer.join()
        q.close()
