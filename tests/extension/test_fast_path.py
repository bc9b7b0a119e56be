"""What the fast paths remember and skip must never change what is stored or who is woken.

* q4pg_enqueue and friends reach each queue's generated functions through a
  route the session remembers (q4pg_route): a queue dropped and made again,
  renamed, moved, replaced under its old name, reset by what poolers send or
  first used in a rolled-back transaction is still reached, and only itself;
  a role without rights is refused every time; a forged route is not spliced
  into SQL; DROP EXTENSION CASCADE leaves a table q4pg_create_queue adopts.
* The trigger's gate runs no PL/pgSQL while nobody waits; its lock key is a
  constant of the trigger, so a renamed queue still wakes its listeners (a
  restored one: tests/reliability/test_dumps.py).
"""

import threading

import psycopg2
import pytest

import q4pg
from tests.helpers import install_q4pg, uninstall_q4pg_cascade


def _oid(conn, table):
    with conn.cursor() as cur:
        cur.execute('SELECT %s::regclass::oid', (table,))
        return cur.fetchone()[0]


def _enqueue(conn, queue, data):
    with conn.cursor() as cur:
        cur.execute('SELECT q4pg_enqueue(%s, %s, %s)', (queue, 't', data))
        return cur.fetchone()[0]


def _route(conn, table):
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('q4pg.route_' || %s::regclass::oid, true)", (table,))
        return cur.fetchone()[0]


def _take(conn, queue):
    with conn.cursor() as cur:
        cur.execute('SELECT data FROM q4pg_dequeue(%s, %s)', (queue, 't'))
        return cur.fetchall()


def test_a_queue_made_again_gets_its_new_settings(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('again', 'text', 10)")
        _enqueue(conn, 'again', 'x' * 10)          # the session found the queue's functions
        assert _route(conn, 'again').startswith('public.q4pg_')
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


def test_a_forged_route_is_not_spliced_into_sql(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('strict', 'text', 10)")
        oid = _oid(conn, 'strict')
        _enqueue(conn, 'strict', 'a')
        cur.execute("SELECT set_config('q4pg.route_%s', 'pg_sleep(0); DROP TABLE strict; --', false)" % oid)
        _enqueue(conn, 'strict', 'b')              # the forged route is ignored and rebuilt
        assert _route(conn, 'strict').startswith('public.q4pg_')
        with pytest.raises(psycopg2.Error) as error:
            _enqueue(conn, 'strict', 'x' * 11)
        assert error.value.pgcode == '22001'
        cur.execute('SELECT data FROM strict ORDER BY id')
        assert cur.fetchall() == [('a',), ('b',)]


def test_renamed_moved_and_replaced_queues_reach_the_right_table(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('first', 'text')")
        _enqueue(conn, 'first', 'one')
        cur.execute('ALTER TABLE first RENAME TO second')
        _enqueue(conn, 'second', 'two')            # the owner's call rebuilt the functions
        cur.execute("SELECT q4pg_create_queue('first', 'text')")   # a new queue, the old name
        _enqueue(conn, 'first', 'new')
        cur.execute('CREATE SCHEMA elsewhere')
        cur.execute('ALTER TABLE second SET SCHEMA elsewhere')
        _enqueue(conn, 'elsewhere.second', 'three')
        assert _take(conn, 'elsewhere.second') == [('one',)]
        cur.execute('SELECT data FROM elsewhere.second ORDER BY id')
        assert cur.fetchall() == [('two',), ('three',)]
        cur.execute('SELECT data FROM first')
        assert cur.fetchall() == [('new',)]


def test_a_role_that_cannot_rebuild_a_renamed_queue_uses_private_copies(conn, dsn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('shared', 'text')")
        cur.execute('CREATE ROLE q4pg_worker LOGIN')
        cur.execute('GRANT INSERT, SELECT, DELETE, UPDATE (created_at) ON shared TO q4pg_worker')
        cur.execute('ALTER TABLE shared RENAME TO renamed')
    try:
        worker = psycopg2.connect(dsn, user='q4pg_worker')
        worker.autocommit = True
        _enqueue(worker, 'renamed', 'from the worker')
        assert _route(worker, 'renamed').startswith('pg_temp.q4pg_')
        assert _take(worker, 'renamed') == [('from the worker',)]
        worker.close()
        _enqueue(conn, 'renamed', 'from the owner')        # the owner rebuilds them for all
        assert _route(conn, 'renamed').startswith('public.q4pg_')
    finally:
        with conn.cursor() as cur:
            cur.execute('DROP OWNED BY q4pg_worker')
            cur.execute('DROP ROLE q4pg_worker')


def test_what_poolers_send_and_rollbacks_make_the_session_look_again(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('a', 'text')")
        cur.execute("SELECT q4pg_create_queue('b', 'text')")
        conn.autocommit = False
        _enqueue(conn, 'a', 'rolled back')         # the first call of the session rolls back
        conn.rollback()
        conn.autocommit = True
        assert not _route(conn, 'a')              # forgotten (a placeholder stays, empty)
        for reset in ('DISCARD ALL', 'RESET ALL', 'DEALLOCATE ALL', 'DISCARD PLANS', 'DISCARD TEMP'):
            _enqueue(conn, 'a', 'a ' + reset)      # two queues alternating in one session
            _enqueue(conn, 'b', 'b ' + reset)
            cur.execute(reset)
        cur.execute('SELECT count(*) FROM a')
        assert cur.fetchone() == (5,)
        assert len(_take(conn, 'b')) == 1


def test_a_role_without_rights_is_refused_every_time(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('guarded', 'text')")
        _enqueue(conn, 'guarded', 'mine')          # the session has a route and warm plans
        assert _take(conn, 'guarded') == [('mine',)]
        _enqueue(conn, 'guarded', 'still mine')
        cur.execute('CREATE ROLE q4pg_nobody')
        cur.execute('GRANT USAGE ON SCHEMA public TO q4pg_nobody')
        try:
            cur.execute('SET ROLE q4pg_nobody')
            for attempt in range(3):
                for call in ("SELECT q4pg_enqueue('guarded', 't', 'x')",
                             "SELECT * FROM q4pg_dequeue('guarded', 't')",
                             "SELECT q4pg_cancel('guarded', 1)"):
                    with pytest.raises(psycopg2.Error) as error:
                        cur.execute(call)
                    assert error.value.pgcode == '42501', call
        finally:
            cur.execute('RESET ROLE')
            cur.execute('DROP OWNED BY q4pg_nobody')
            cur.execute('DROP ROLE q4pg_nobody')
        cur.execute('SELECT data FROM guarded')
        assert cur.fetchall() == [('still mine',)]


def test_drop_extension_cascade_then_create_queue_adopts_the_table(conn, dsn):
    """DROP EXTENSION q4pg CASCADE and CREATE EXTENSION, or, in the SQL-only
    form, q4pg uninstall --cascade and q4pg install, which mirror them."""
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('kept', 'text', 50)")
        _enqueue(conn, 'kept', 'survivor')
        uninstall_q4pg_cascade(dsn)
        cur.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'kept'::regclass")
        assert cur.fetchone() == (0,)
        install_q4pg(dsn)
        cur.execute('CREATE TABLE other (id bigint, tag text)')
        with pytest.raises(psycopg2.Error) as error:
            cur.execute("SELECT q4pg_create_queue('other')")
        assert error.value.pgcode == '42P07'
        assert 'columns are (id bigint, tag text)' in error.value.diag.message_detail
        with pytest.raises(psycopg2.Error) as error:
            cur.execute("SELECT q4pg_create_queue('kept', 'text', 10)")
        assert error.value.pgcode == '42P07'
        cur.execute("SELECT q4pg_create_queue('kept', 'text', 50)")
        cur.execute("SELECT q4pg_count('kept')")
        assert cur.fetchone() == (1,)
        _enqueue(conn, 'kept', 'newcomer')
        assert _take(conn, 'kept') == [('survivor',)]
        assert _take(conn, 'kept') == [('newcomer',)]


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
        assert list(q.listen('t', stop_after_idle=10, limit=1)) == [{'n': 1}]
    finally:
        timer.join()
        q.close()


def test_a_table_name_cannot_carry_code_into_the_generated_functions(conn):
    """A line break in a queue's name must not end a comment of the generated
    functions and turn the rest of the name into code (found by make soak)."""
    name = 'q\nEND; $body$; CREATE TABLE hijacked (); --'
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue(quote_ident(%s), 'text')", (name,))
        cur.execute('SELECT q4pg_enqueue(quote_ident(%s)::regclass, %s, %s)', (name, 't', 'x'))
        cur.execute('SELECT data FROM q4pg_dequeue(quote_ident(%s)::regclass, %s)', (name, 't'))
        assert cur.fetchall() == [('x',)]
        cur.execute("SELECT to_regclass('hijacked') IS NULL")
        assert cur.fetchone() == (True,)
