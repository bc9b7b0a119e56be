"""The direct door (1.2): a queue's generated functions called by name.

q4pg_door(queue) gives '<schema>.q4pg_<name>_'; the functions behind it act on
their own table only: renamed, dropped, replaced under the old name or
restored (tests/reliability/test_dumps.py), they raise 55000 and change nothing,
and q4pg_door finds them again.
They refuse what the public functions refuse, whatever the caller's
search_path, role or first transaction did.
"""

import psycopg2
import pytest


def _one(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def _all(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def _raises(conn, sql, args=()):
    with pytest.raises(psycopg2.Error) as error:
        _all(conn, sql, args)
    return error.value


def test_the_door_is_named_after_the_table_and_does_what_the_public_functions_do(conn):
    _one(conn, "SELECT q4pg_create_queue('jobs', 'jsonb', 20)")
    assert _one(conn, "SELECT q4pg_door('jobs')") == 'public.q4pg_jobs_'
    first = _one(conn, """SELECT public.q4pg_jobs_enqueue('t', '{"n": 1}', NULL)""")
    second = _one(conn, """SELECT q4pg_enqueue('jobs', 't', '{"n": 2}')""")
    assert second == first + 1
    assert _all(conn, "SELECT id, data FROM public.q4pg_jobs_dequeue('t')") == [(first, '{"n": 1}')]
    leased = _all(conn, "SELECT id, lease_token FROM public.q4pg_jobs_lease('t', 1, '30 s')")
    assert [row[0] for row in leased] == [second]
    assert _one(conn, 'SELECT public.q4pg_jobs_ack(%s, %s)', leased[0]) is True
    later = _one(conn, "SELECT public.q4pg_jobs_enqueue('t', '[3]', now() + interval '1 day')")
    assert _all(conn, "SELECT * FROM public.q4pg_jobs_dequeue('t')") == []
    assert _one(conn, 'SELECT public.q4pg_jobs_cancel(%s)', (later,)) is True
    assert _one(conn, "SELECT q4pg_count('jobs', NULL, false)") == 0


@pytest.mark.parametrize('call, code', [
    ("SELECT public.q4pg_jobs_enqueue(NULL, '1', NULL)", '22004'),
    ("SELECT public.q4pg_jobs_enqueue('t', 'null', NULL)", '22004'),
    ("SELECT public.q4pg_jobs_enqueue('t', '[\"a long message\"]', NULL)", '22001'),
    ("SELECT public.q4pg_jobs_enqueue('t', 'not json', NULL)", '22P02'),
    ("SELECT public.q4pg_jobs_enqueue(repeat('t', 2049), '1', NULL)", '22001'),
    ("SELECT public.q4pg_jobs_enqueue('t', '1', 'infinity')", '22023'),
    ("SELECT * FROM public.q4pg_jobs_dequeue_many('t', -1)", '22023'),
    ("SELECT * FROM public.q4pg_jobs_lease('t', 1, '0 s')", '22023'),
    ("SELECT * FROM public.q4pg_jobs_dequeue(NULL)", '22004'),
])
def test_the_door_refuses_what_the_public_functions_refuse(conn, call, code):
    _one(conn, "SELECT q4pg_create_queue('jobs', 'jsonb', 10)")
    public = call.replace('public.q4pg_jobs_enqueue(', "q4pg_enqueue('jobs', ") \
                 .replace('public.q4pg_jobs_dequeue_many(', "q4pg_dequeue_many('jobs', ") \
                 .replace('public.q4pg_jobs_lease(', "q4pg_lease('jobs', ") \
                 .replace('public.q4pg_jobs_dequeue(', "q4pg_dequeue('jobs', ")
    assert _raises(conn, call).pgcode == code
    assert _raises(conn, public).pgcode == code
    assert _one(conn, "SELECT count(*) FROM jobs") == 0


def test_names_that_need_quoting_or_are_long_get_plain_names_of_their_own(conn):
    long_name = 'a_queue_with_a_name_much_longer_than_forty_five_chars'
    for table in ('"Big Jobs"', '"big jobs"', long_name, '"%s"' % (long_name + 'x')):
        _one(conn, 'SELECT q4pg_create_queue(%s)', (table,))
    doors = [_one(conn, 'SELECT q4pg_door(%s)', (table,))
             for table in ('"Big Jobs"', '"big jobs"', long_name, '"%s"' % (long_name + 'x'))]
    assert len(set(doors)) == 4
    for door in doors:
        assert door.startswith('public.q4pg_')
        assert all(c.isalnum() or c in '._' for c in door) and door == door.lower()
        assert len((door + 'enqueue_many').split('.', 1)[1]) <= 63
        assert _one(conn, "SELECT %s('t', '1', NULL)" % (door + 'enqueue')) >= 1
    assert _one(conn, 'SELECT count(*) FROM "Big Jobs"') == 1
    assert _one(conn, 'SELECT count(*) FROM "big jobs"') == 1


def test_a_renamed_table_makes_its_door_refuse_even_when_another_takes_the_name(conn):
    _one(conn, "SELECT q4pg_create_queue('jobs', 'text')")
    _one(conn, "SELECT public.q4pg_jobs_enqueue('t', 'one', NULL)")
    _all(conn, 'ALTER TABLE jobs RENAME TO jobs2')
    error = _raises(conn, "SELECT public.q4pg_jobs_enqueue('t', 'lost?', NULL)")
    assert error.pgcode == '55000' and 'q4pg_door' in error.diag.message_hint
    _all(conn, 'CREATE TABLE jobs (LIKE jobs2 INCLUDING DEFAULTS)')     # a plain table takes the name
    for call in ("SELECT public.q4pg_jobs_enqueue('t', 'wrong table', NULL)",
                 "SELECT * FROM public.q4pg_jobs_dequeue('t')",
                 "SELECT public.q4pg_jobs_cancel(1)"):
        assert _raises(conn, call).pgcode == '55000', call
    assert _one(conn, 'SELECT count(*) FROM jobs') == 0
    assert _one(conn, "SELECT q4pg_door('jobs2')") == 'public.q4pg_jobs2_'
    assert _all(conn, "SELECT data FROM public.q4pg_jobs2_dequeue('t')") == [('one',)]


def test_a_queue_dropped_and_made_again_is_reached_by_the_same_prepared_statement(conn):
    _one(conn, "SELECT q4pg_create_queue('jobs', 'text', 5)")
    _all(conn, "PREPARE put (text) AS SELECT public.q4pg_jobs_enqueue('t', $1, NULL)")
    _one(conn, "EXECUTE put('old')")
    _one(conn, "SELECT q4pg_drop_queue('jobs')")
    assert _raises(conn, "EXECUTE put('gone')").pgcode == '42883'
    _one(conn, "SELECT q4pg_create_queue('jobs', 'text', 50)")
    _one(conn, "EXECUTE put('a longer message')")                  # the new queue's settings
    assert _all(conn, 'SELECT data FROM jobs') == [('a longer message',)]


def test_a_hostile_search_path_does_not_move_the_door(conn):
    _one(conn, "SELECT q4pg_create_queue('jobs', 'text')")
    _all(conn, 'CREATE SCHEMA evil')
    _all(conn, 'CREATE TABLE evil.jobs (LIKE public.jobs INCLUDING DEFAULTS)')
    _all(conn, 'CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql '
               "RETURN '2000-01-01'::timestamptz")
    _all(conn, 'SET search_path = evil, public')
    _one(conn, "SELECT public.q4pg_jobs_enqueue('t', 'safe', NULL)")
    assert _all(conn, "SELECT data FROM public.q4pg_jobs_dequeue('t')") == [('safe',)]
    assert _one(conn, 'SELECT count(*) FROM evil.jobs') == 0


def test_roles_the_door_serves_and_refuses(conn, dsn):
    _one(conn, "SELECT q4pg_create_queue('jobs', 'text')")
    _all(conn, 'CREATE ROLE q4pg_worker LOGIN')
    _all(conn, 'CREATE ROLE q4pg_nobody')
    _all(conn, 'GRANT INSERT, SELECT, DELETE, UPDATE ON jobs TO q4pg_worker')
    _all(conn, 'ALTER TABLE jobs RENAME TO work')        # stale, and the worker may not rebuild
    try:
        worker = psycopg2.connect(dsn, user='q4pg_worker')
        worker.autocommit = True
        door = _one(worker, "SELECT q4pg_door('work')")
        assert door == 'pg_temp.q4pg_work_'                 # the session's own copies
        _one(worker, "SELECT %senqueue('t', 'by the worker', NULL)" % door)
        assert _all(worker, "SELECT data FROM %sdequeue('t')" % door) == [('by the worker',)]
        worker.close()
        assert _one(conn, "SELECT q4pg_door('work')") == 'public.q4pg_work_'   # the owner rebuilt them
        _all(conn, 'SET ROLE q4pg_nobody')
        for attempt in range(2):
            assert _raises(conn, "SELECT public.q4pg_work_enqueue('t', 'x', NULL)").pgcode == '42501'
        _all(conn, 'RESET ROLE')
        assert _one(conn, 'SELECT count(*) FROM work') == 0
    finally:
        _all(conn, 'RESET ROLE')
        for role in ('q4pg_worker', 'q4pg_nobody'):
            _all(conn, 'DROP OWNED BY %s' % role)
            _all(conn, 'DROP ROLE %s' % role)


def test_a_door_made_in_a_rolled_back_transaction_is_asked_for_again(conn):
    _one(conn, "SELECT q4pg_create_queue('jobs', 'text')")
    _all(conn, 'ALTER TABLE jobs RENAME TO fresh')
    conn.autocommit = False
    assert _one(conn, "SELECT q4pg_door('fresh')") == 'public.q4pg_fresh_'     # built here
    conn.rollback()
    conn.autocommit = True
    assert _raises(conn, "SELECT public.q4pg_fresh_enqueue('t', 'x', NULL)").pgcode == '42883'
    assert _one(conn, "SELECT q4pg_door('fresh')") == 'public.q4pg_fresh_'
    _one(conn, "SELECT public.q4pg_fresh_enqueue('t', 'x', NULL)")


def test_someone_elses_function_in_the_way_is_never_replaced(conn):
    _all(conn, 'CREATE FUNCTION q4pg_clash_cancel(p_id bigint) RETURNS boolean LANGUAGE sql '
               "RETURN true")
    error = _raises(conn, "SELECT q4pg_create_queue('clash')")
    assert error.pgcode == '42723' and 'q4pg_clash_cancel(bigint)' in error.diag.message_primary
    assert _one(conn, "SELECT to_regclass('clash')") is None
    assert _one(conn, "SELECT pg_get_functiondef('q4pg_clash_cancel(bigint)'::regprocedure)").count('true') >= 1
