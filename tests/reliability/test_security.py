"""Security: pinned search_path, a hostile search_path, SQL injection, privileges.

* Every function of the extension (found through pg_depend, so new ones are
  covered) pins search_path to pg_catalog first and pg_temp last, but for the
  hot path (security_helpers.HOT_PATH), unpinned on purpose and qualified.
* With a hostile schema before pg_catalog that shadows everything the
  extension calls (tests/reliability/security_fixtures.py) and temporary
  tables named like the catalogs it reads, every function does exactly what it
  does under a clean search_path; and unpinned copies of the pinned functions
  whose bodies are parsed when they run are hijacked by those shadows, which
  proves the shadows would catch a function that forgot its pin.
* Hostile text through every text, name, regclass and text[] argument of every
  function changes nothing but what the call is for, and fails, if it fails,
  with a clean error (no syntax error: nothing reaches SQL text unquoted).
* A role without rights on a queue can neither read, take, cancel, add nor
  drop; a producer and a consumer role with the documented minimal grants can
  do their job and nothing more.
"""

import hashlib
import json
import select
import threading
import time
import uuid

import psycopg2
import pytest
from psycopg2 import sql

import q4pg
from tests.helpers import members_sql
from tests.reliability import security_helpers as sf
from tests.reliability.helpers import assert_unchanged, fingerprint
from tests.reliability.security_helpers import (HOSTILE_TYPES, VALID, check_hostile_call,
                                                function_arguments, sqlstate_or_rows)

HOSTILE_PATH = 'evil, pg_catalog, public'


# -- pinned search_path -------------------------------------------------------------------

def test_every_function_pins_search_path(conn):
    with conn.cursor() as cur:
        cur.execute("""
            SELECT p.proname, p.proconfig, p.prosecdef, n.nspname,
                   has_function_privilege('public', p.oid, 'EXECUTE')
              FROM pg_proc AS p
              JOIN pg_namespace AS n ON n.oid = p.pronamespace
             WHERE (p.tableoid, p.oid) IN (%s)""" % members_sql(cur))
        functions = cur.fetchall()
    assert len(functions) >= 14
    unpinned = set()
    for name, config, secdef, schema, public_execute in functions:
        # SECURITY DEFINER only where needed, and then not for everyone
        assert not secdef or not public_execute, name
        paths = [c.split('=', 1)[1] for c in (config or []) if c.startswith('search_path=')]
        if name in sf.HOT_PATH and not paths:
            unpinned.add(name)
            continue
        assert len(paths) == 1, '%s does not pin search_path: %s' % (name, config)
        path = [p.strip().strip('"') for p in paths[0].split(',')]
        assert path[0] == 'pg_catalog', (name, path)
        assert path[-1] == 'pg_temp', (name, path)  # else pg_temp is searched first
        assert set(path) <= {'pg_catalog', 'pg_temp', schema}, (name, path)
    # the hot path, and only it, is unpinned (and qualified: tests/sql/lint.sql)
    assert unpinned == sf.HOT_PATH


# -- hostile search_path ------------------------------------------------------------------

@pytest.fixture
def hostile(dsn, conn):
    """A session whose search_path puts schema "evil" (shadows of everything q4pg calls)
    before pg_catalog, with temporary tables named like the catalogs q4pg reads.
    Unpinned copies of q4pg's functions are in schema "unpinned"."""
    with conn.cursor() as cur:
        for statement in sf.unpinned_copies_sql(cur)[0]:
            cur.execute(statement)
        for statement in sf.evil_schema_sql(cur):
            cur.execute(statement)
        cur.execute('CREATE TABLE public.plain (id bigint, tag text, data json)')
    h = psycopg2.connect(dsn)
    h.autocommit = True
    with h.cursor() as cur:
        for statement in sf.temp_shadows_sql(cur):
            cur.execute(statement)
        cur.execute('SET search_path = ' + HOSTILE_PATH)
    yield h
    h.close()


def scenario(cur, queue):
    """Every function, on good and bad input; [(step, outcome)] with the queue's name
    replaced by Q (and created_at left out) so that two runs compare equal."""
    schema, table = queue.split('.')
    steps = [
        ('create', "SELECT q4pg_create_queue(%s, 'json', 100)::text", (queue,)),
        ('create again', "SELECT q4pg_create_queue(%s, 'json', 100)::text", (queue,)),
        ('create other settings', "SELECT q4pg_create_queue(%s, 'text', 100)::text", (queue,)),
        ('create bad name', "SELECT q4pg_create_queue('a.b.c')", ()),
        ('create bad type', "SELECT q4pg_create_queue('public.x', 'xml')", ()),
        ('create bad length', "SELECT q4pg_create_queue('public.x', 'json', 0)", ()),
        ('create long name', "SELECT q4pg_create_queue(%s)", ('x' * 64,)),
        ('settings', 'SELECT * FROM q4pg_queue_settings(%s)', (queue,)),
        ('settings of no queue', "SELECT * FROM q4pg_queue_settings('public.plain')", ()),
        ('enqueue', "SELECT q4pg_enqueue(%s, 'a', '{\"n\": 1}')", (queue,)),
        ('enqueue_many', "SELECT * FROM q4pg_enqueue_many(%s, 'a', %s::text[])",
         (queue, ['{"n": 2}', '{"n": 3}'])),
        ('enqueue b', "SELECT q4pg_enqueue(%s, 'b', '\"x\"')", (queue,)),
        ('enqueue bad json', "SELECT q4pg_enqueue(%s, 'a', '{')", (queue,)),
        ('enqueue too long', 'SELECT q4pg_enqueue(%s, %s, %s)', (queue, 'a', json.dumps('x' * 99))),
        ('enqueue null', 'SELECT q4pg_enqueue(%s, %s, NULL)', (queue, 'a')),
        ('enqueue_many null', "SELECT * FROM q4pg_enqueue_many(%s, 'a', ARRAY['1', NULL])",
         (queue,)),
        ('enqueue_many too long', "SELECT * FROM q4pg_enqueue_many(%s, 'a', %s::text[])",
         (queue, ['1', json.dumps('y' * 200)])),
        ('count', 'SELECT q4pg_count(%s)', (queue,)),
        ('count a', "SELECT q4pg_count(%s, 'a')", (queue,)),
        ('count of no queue', "SELECT q4pg_count('public.plain')", ()),
        ('list', 'SELECT id, tag, data FROM q4pg_list(%s)', (queue,)),
        ('list a 2', "SELECT id, tag, data FROM q4pg_list(%s, 'a', 2)", (queue,)),
        ('channel', "SELECT q4pg_channel(%s, 'a')", (queue,)),
        ('queues', 'SELECT queue::text, data_type, data_length FROM q4pg_queues()', ()),
        ('stats', 'SELECT queue::text, tag, waiting FROM q4pg_stats()', ()),
        ('dequeue', "SELECT id, tag, data FROM q4pg_dequeue(%s, 'a')", (queue,)),
        ('dequeue_many', "SELECT id, tag, data FROM q4pg_dequeue_many(%s, 'a', 5)", (queue,)),
        ('dequeue_many -1', "SELECT id FROM q4pg_dequeue_many(%s, 'a', -1)", (queue,)),
        ('dequeue empty', "SELECT id FROM q4pg_dequeue(%s, 'a')", (queue,)),
        ('cancel', 'SELECT q4pg_cancel(%s, 4)', (queue,)),
        ('cancel none', 'SELECT q4pg_cancel(%s, 99)', (queue,)),
        ('drop no queue', "SELECT q4pg_drop_queue('public.plain')", ()),
    ]
    short = {queue, table}
    expected = 'q4pg_' + hashlib.md5(('%s.%s:a' % (schema, table)).encode()).hexdigest()
    results = []
    for name, statement, args in steps:
        outcome = sqlstate_or_rows(cur, statement, args)
        if name == 'channel':
            outcome = outcome == ('ok', [(expected,)])
        text = json.dumps(outcome, default=str)
        for s in short:
            text = text.replace(s, 'Q')
        results.append((name, text))
    # registering as a waiting listener works under this search_path too
    results.append(('wait', json.dumps(sqlstate_or_rows(cur, "SELECT q4pg_register_idle(%s, 'a')",
                                                        (queue,)))))
    results.append(('unwait', json.dumps(sqlstate_or_rows(cur, "SELECT q4pg_unregister_idle(%s, 'a')",
                                                          (queue,)))))
    # the trigger: an enqueue NOTIFYs the channel q4pg_channel names, to a listener (in
    # a session of its own, as the client's) that LISTENs and waits
    listener = psycopg2.connect(cur.connection.dsn)
    listener.autocommit = True
    try:
        with listener.cursor() as lcur:
            lcur.execute('LISTEN %s' % expected)
            lcur.execute("SELECT q4pg_register_idle(%s, 'a')", (queue,))
        results.append(('notify', json.dumps(sqlstate_or_rows(
            cur, "SELECT q4pg_enqueue(%s, 'a', '5')", (queue,)))))
        deadline = time.monotonic() + 10
        while not listener.notifies and time.monotonic() < deadline:
            select.select([listener], [], [], 0.5)
            listener.poll()
        results.append(('notified', [n.channel for n in listener.notifies] == [expected]))
    finally:
        listener.close()
    results.append(('drop', json.dumps(sqlstate_or_rows(cur, 'SELECT q4pg_drop_queue(%s)',
                                                        (queue,)))))
    results.append(('dropped', json.dumps(sqlstate_or_rows(cur, 'SELECT q4pg_count(%s)',
                                                           (queue,)))))
    return results


def test_hostile_search_path_changes_nothing(conn, hostile):
    with conn.cursor() as cur:
        clean = scenario(cur, 'public.sec_clean')
    with hostile.cursor() as cur:
        cur.execute('SHOW search_path')
        assert cur.fetchone()[0] == HOSTILE_PATH
        evil = scenario(cur, 'public.sec_evil')
    assert sf.EVIL not in json.dumps(evil), [step for step in evil if sf.EVIL in str(step)]
    assert evil == clean
    # the scenario did what it should (it is not comparing two failures)
    outcomes = dict(clean)
    assert outcomes['enqueue'] == '["ok", [[1]]]'
    assert outcomes['dequeue'] == '["ok", [[1, "a", "{\\"n\\": 1}"]]]'
    assert outcomes['notified'] is True
    assert outcomes['channel'] == 'true'
    assert outcomes['dropped'] == '["error", "42P01"]'


# One probe per function: how to call it, on a queue with messages 1 and 2 of tag 'a'.
PROBES = {
    'q4pg_notify': 'INSERT INTO {q} (tag, data) VALUES (%s, %s)',
    'q4pg_queue_settings': 'SELECT * FROM {f}(%s)',
    'q4pg_queue_info': 'SELECT data_type, data_length FROM {f}(%s)',
    'q4pg_queue_shape': 'SELECT * FROM {f}(%s)',
    'q4pg_queue_triggers': 'SELECT queue::text FROM {f}(%s)',
    'q4pg_lock_class': "SELECT {f}('barrier') WHERE %s IS NOT NULL",
    'q4pg_channel_name': "SELECT {f}(%s, 'a')",
    'q4pg_check_tag': "SELECT {f}('a') IS NULL WHERE %s IS NOT NULL",
    'q4pg_check_max_attempts': 'SELECT {f}(3) IS NULL WHERE %s IS NOT NULL',
    'q4pg_check_limit': 'SELECT {f}(3) IS NULL WHERE %s IS NOT NULL',
    'q4pg_queue_function_names': 'SELECT * FROM {f}() WHERE %s IS NOT NULL',
    'q4pg_door_prefix': 'SELECT {f}(%s) IS NOT NULL',
    'q4pg_is_generated': "SELECT {f}('') WHERE %s IS NOT NULL",
    'q4pg_ring_prefix': 'SELECT {f}(1) WHERE %s IS NOT NULL',
    'q4pg_queue_function_marker': "SELECT {f}(%s, 'public.mq', 'json', 1, NULL) IS NOT NULL",
    'q4pg_door': 'SELECT {f}(%s) IS NOT NULL',
    'q4pg_queue_functions_sql': "SELECT {f}(%s, 'public') IS NOT NULL",
    'q4pg_queue_functions_current': "SELECT {f}(%s, 'public')",
    'q4pg_build_queue_functions': 'SELECT {f}(%s) IS NULL',
    'q4pg_drop_queue_functions': "SELECT {f}(%s, 'public') IS NULL",
    'q4pg_build_route': 'SELECT {f}(%s) IS NOT NULL',
    'q4pg_route': 'SELECT {f}(%s) IS NOT NULL',
    'q4pg_attach_queue': 'SELECT {f}(%s, NULL)::text',
    'q4pg_create_queue': "SELECT {f}(%s, 'json', 100)::text",
    'q4pg_drop_queue': 'SELECT {f}(%s)',
    'q4pg_channel': "SELECT {f}(%s, 'a')",
    'q4pg_enqueue': "SELECT {f}(%s, 'a', '3')",
    'q4pg_enqueue_many': "SELECT * FROM {f}(%s, 'a', ARRAY['3', '4'])",
    'q4pg_dequeue': "SELECT id, tag, data FROM {f}(%s, 'a')",
    'q4pg_dequeue_many': "SELECT id, tag, data FROM {f}(%s, 'a', 5)",
    'q4pg_cancel': 'SELECT {f}(%s, 2)',
    'q4pg_count': "SELECT {f}(%s, 'a')",
    'q4pg_list': 'SELECT id, tag, data FROM {f}(%s)',
    'q4pg_queues': 'SELECT queue::text FROM {f}() WHERE %s IS NOT NULL',
    'q4pg_stats': 'SELECT queue::text, tag, waiting FROM {f}() WHERE %s IS NOT NULL',
    'q4pg_go_idle': "SELECT {f}(%s, 'a')",
    'q4pg_register_idle': "SELECT {f}(%s, 'a')",
    'q4pg_unregister_idle': "SELECT {f}(%s, 'a')",
    'q4pg_own_channel': "SELECT {f}(%s, 'a')",
    'q4pg_listener_key': 'SELECT {f}(1) WHERE %s IS NOT NULL',
    'q4pg_own_channel_name': "SELECT {f}('c', 1) WHERE %s IS NOT NULL",
    'q4pg_wake_listeners': "SELECT {f}(%s, 'public.x', 'a', 1, true)",
    'q4pg_consumers': 'SELECT queue::text FROM {f}() WHERE %s IS NOT NULL',
    'q4pg_queue_leaves': 'SELECT {f}(%s)::text',
    'q4pg_message_counts': 'SELECT tag, due, expired FROM {f}(%s)',
    'q4pg_metrics': 'SELECT queue::text, tag, due FROM {f}(5) WHERE %s IS NOT NULL',
    'q4pg_horizon': 'SELECT holder FROM {f}() WHERE %s IS NOT NULL',
    'q4pg_warnings': "SELECT warning FROM {f}('1 hour') WHERE %s IS NOT NULL",
    'q4pg_take': "SELECT id, tag, data FROM {f}(%s, 'a')",
    'q4pg_done': 'SELECT {f}(%s, 1)',
    'q4pg_done_many': "SELECT {f}(%s, ARRAY[1, 2]::bigint[])",
    'q4pg_fail': "SELECT {f}(%s, 1, 'e')",
    'q4pg_give_back': "SELECT {f}(%s, ARRAY[1, 2]::bigint[])",
    'q4pg_lease': "SELECT id, tag, data, attempts FROM {f}(%s, 'a', 1, '1 minute')",
    'q4pg_ack': "SELECT {f}(%s, 1, '00000000-0000-0000-0000-000000000000')",
    'q4pg_nack': "SELECT {f}(%s, 1, '00000000-0000-0000-0000-000000000000')",
    'q4pg_extend': "SELECT {f}(%s, 1, '00000000-0000-0000-0000-000000000000', '1 minute')",
    'q4pg_next_due': "SELECT {f}(%s, 'a') IS NULL",
    'q4pg_dead_letters': 'SELECT id FROM {f}(%s)',
    'q4pg_replay': 'SELECT {f}(%s)',
    'q4pg_purge_dead': 'SELECT {f}(%s)',
    'q4pg_set_max_attempts': 'SELECT {f}(%s, 5) IS NULL',
    'q4pg_reshape_queue': 'SELECT {f}(%s)::text',
    # with the queue's own lock key: a key never changes
    'q4pg_set_queue_trigger': 'SELECT {f}(a.q, public.q4pg_ring_key(a.q), NULL) IS NULL '
                              'FROM (SELECT %s::pg_catalog.regclass AS q) AS a',
    'q4pg_wake': "SELECT {f}(%s::text, 1, 'a') IS NULL",
    'q4pg_notify_gate': 'SELECT {f}(1) WHERE %s IS NOT NULL',
    'q4pg_message_state': "SELECT {f}('leased', 's') WHERE %s IS NOT NULL",
    'q4pg_render': "SELECT {f}('a {{{{b}}}} c', '{{\"b\": \"d\"}}', '{{}}') WHERE %s IS NOT NULL",
    'q4pg_queue_function_snippets': 'SELECT name FROM {f}() WHERE %s IS NOT NULL',
    'q4pg_ring': "SELECT {f}('slots') WHERE %s IS NOT NULL",
    'q4pg_ring_key': 'SELECT {f}(%s) IS NOT NULL',
    'q4pg_ring_probe_orders': 'SELECT {f}() WHERE %s IS NOT NULL',
    'q4pg_ring_parts': 'SELECT p.state IS NOT NULL, pg_catalog.cardinality(p.slots) '
                       'FROM (SELECT %s::pg_catalog.regclass AS q) AS a, '
                       'LATERAL {f}(a.q, public.q4pg_ring_key(a.q)) AS p',
    'q4pg_make_ring': 'SELECT {f}(q, public.q4pg_ring_key(q), NULL)::text '
                      'FROM (SELECT %s::pg_catalog.regclass AS q) AS a',
    'q4pg_ring_clean': 'SELECT {f}(a.q, p.slots, 0, 0) IS NOT NULL '
                       'FROM (SELECT %s::pg_catalog.regclass AS q) AS a, '
                       'LATERAL public.q4pg_ring_parts(a.q, public.q4pg_ring_key(a.q)) AS p',
    'q4pg_maintain': 'SELECT {f}(%s) IS NOT NULL',
    'q4pg_horizon_held': 'SELECT {f}() WHERE %s IS NOT NULL',
    'q4pg_ring_tick': 'SELECT {f}(%s) IS NULL',
    'q4pg_ring_step': 'SELECT {f}(%s) IS NULL',
    # (the ticks' trigger, at the commit of the probe's statement: the installed one)
    'q4pg_ring_tock': 'INSERT INTO public.q4pg_ring_ticks (queue) VALUES (%s::pg_catalog.regclass) '
                      'RETURNING queue::pg_catalog.text',
}
PROBES.update(('q4pg_template_' + s, 'SELECT {f}() WHERE %s IS NOT NULL')
              for s in ('enqueue', 'enqueue_many', 'dequeue', 'dequeue_many', 'cancel', 'take',
                        'done', 'done_many', 'fail', 'give_back', 'lease', 'ack', 'nack', 'extend',
                        'maintain'))


# Bodies that name no function, operator or relation by itself (only qualified
# q4pg calls), or only what the hostile schema does not shadow (q4pg_list: its
# state conditions come qualified from q4pg_message_state; what is left is
# text's =): a search_path reaches nothing in them, pinned or not.
NOTHING_TO_HIJACK = {'q4pg_build_queue_functions', 'q4pg_list',
                     # its errors go to the server log, never to the statement it ends
                     'q4pg_ring_step',
                     # a trigger's function: the probe fires the installed one
                     'q4pg_ring_tock'}


def test_shadows_hijack_every_unpinned_function(conn, hostile):
    """The hostile schema is strong enough: without its SET search_path, each q4pg
    function whose body is parsed when it runs would run evil code (or break) under
    that search_path; and every function, as installed, is safe under it."""
    with conn.cursor() as cur:
        names = sorted({f[1] for f in sf.extension_functions(cur)})
        copied = sf.unpinned_copies_sql(cur)[1]
    assert set(names) <= set(PROBES), 'every function needs a probe in PROBES: %s' % (
        set(names) - set(PROBES))
    hijacked = {}
    for n, name in enumerate(names):
        outcomes = {}
        for variant in ('public', 'unpinned') if name in copied else ('public',):
            queue = 'public.probe_%d_%s' % (n, variant)
            with conn.cursor() as cur:
                cur.execute("SELECT q4pg_create_queue(%s, 'json', 100)", (queue,))
                cur.execute("SELECT q4pg_enqueue_many(%s, 'a', ARRAY['1', '2'])", (queue,))
                if name == 'q4pg_attach_queue':     # a queue's table without its trigger
                    cur.execute(sql.SQL('DROP TRIGGER q4pg_notify ON {}').format(sql.SQL(queue)))
                if name == 'q4pg_unregister_idle':
                    cur.execute("SELECT q4pg_register_idle(%s, 'a')", (queue,))
                if name == 'q4pg_notify':
                    cur.execute(sql.SQL('DROP TRIGGER q4pg_notify ON {}; CREATE TRIGGER q4pg_notify '
                                        'AFTER INSERT ON {} REFERENCING NEW TABLE AS q4pg_new_rows '
                                        'FOR EACH STATEMENT EXECUTE FUNCTION {}.q4pg_notify()')
                                .format(sql.SQL(queue), sql.SQL(queue), sql.Identifier(variant)))
            statement = PROBES[name].format(f='%s.%s' % (variant, name), q=queue)
            args = ('a', '3') if name == 'q4pg_notify' else (
                ('public.new_%d_%s' % (n, variant),) if name == 'q4pg_create_queue' else (queue,))
            with hostile.cursor() as cur:
                outcome = json.dumps(sqlstate_or_rows(cur, statement, args), default=str)
            outcomes[variant] = outcome.replace(variant, 'V')
        assert sf.EVIL not in outcomes['public'] and outcomes['public'].startswith('["ok"'), (
            name, outcomes['public'])
        if name in copied and name not in NOTHING_TO_HIJACK:
            hijacked[name] = outcomes['unpinned'] != outcomes['public']
    assert all(hijacked.values()), 'not hijacked: %s' % [n for n, h in hijacked.items() if not h]
    assert len(hijacked) >= 15           # the pinned PL/pgSQL functions were all tried


def test_client_under_hostile_search_path(dsn, conn, hostile):
    """The client's own statements (casts qualified, LISTEN) are safe too."""
    with q4pg.QueueManager(dsn + " options='-c search_path=%s'" % HOSTILE_PATH.replace(' ', ''),
                           'cq', schema='public', poll_interval=60) as q:
        q.create_table()
        ids = q.enqueue_many('t', [{'n': 1}, {'n': 2}])
        assert q.enqueue('t', {'n': 3}) == ids[-1] + 1
        assert q.count() == 3
        assert [r[0] for r in q.list()] == ids + [ids[-1] + 1]
        with q.dequeue('t') as data:
            assert data == {'n': 1}
        assert list(q.listen('t', limit=2, stop_after_idle=10)) == [{'n': 2}, {'n': 3}]
        assert q.cancel(ids[0]) is False
        assert ('cq', 'json', 1023) in q.queues()


# -- injection through every argument ----------------------------------------------------

PAYLOADS = [
    "'); DROP TABLE canary; --", '"; DROP TABLE canary; --', "canary", "public.canary",
    '"public"."canary"', "pg_catalog.pg_class", "pg_class", "x'||(SELECT 1)||'", "$1", "$2",
    "%s", "%I", "%L", "%1$s", "$$; DROP TABLE canary; $$", "\\'; DROP TABLE canary; --",
    "q; DROP TABLE canary", 'inj.q"; DROP TABLE canary; --', '"inj"."q"', "inj.q", "a.b.c.d",
    "", " ", '""', '"', "'", "\\", "%", "\u2028\u0085", "\u65e5\u672c\u8a9e", "x" * 10000,
    "' OR 1=1 --", "E'\\x41'", "U&'\\0041'", "(SELECT 1)", "1; SELECT pg_sleep(10)",
    "pg_temp.x", "-- comment", "/* */", "json); DROP TABLE canary; --", "{1,2}",
    "'{}'::json", "inj.\"q\"; DROP TABLE canary", "public.\"x\"\"; DROP TABLE canary; --\"",
    "\ufeff", "\U0001F600", "\x7f\x01\x1b[31m",
]

@pytest.fixture
def injection_db(conn):
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE canary (id int PRIMARY KEY, secret text)')
        cur.execute("INSERT INTO canary SELECT g, md5(g::text) FROM generate_series(1, 50) g")
        cur.execute('CREATE SCHEMA inj')
    return conn


def test_no_injection_through_any_argument(injection_db, figures):
    conn = injection_db
    with conn.cursor() as cur:
        functions = function_arguments(cur)
    assert len(functions) >= 13
    before = fingerprint(conn, exclude_schemas=('inj',))
    tried = 0
    refused = 0
    for function, arguments in functions:
        for name, typ in arguments:
            if typ not in HOSTILE_TYPES:
                continue
            for payload in PAYLOADS:
                values = dict(VALID, **{name: payload})
                outcome = check_hostile_call(conn, function, arguments, values, before)
                tried += 1
                refused += outcome[0] == 'error'
    with conn.cursor() as cur:
        cur.execute('SELECT count(*), sum(id) FROM canary')
        assert cur.fetchone() == (50, 1275)
    figures.add('hostile_inputs', tried)
    print('injection: %d hostile calls, %d refused' % (tried, refused))
    assert 0 < refused < tried


def test_extreme_numbers_are_refused_cleanly(injection_db):
    """Integer arguments cannot carry SQL, but their extremes must be refused cleanly too."""
    conn = injection_db
    with conn.cursor() as cur:
        functions = function_arguments(cur)
    before = fingerprint(conn, exclude_schemas=('inj',))
    unclean = []
    for function, arguments in functions:
        for name, typ in arguments:
            if typ not in ('integer', 'bigint'):
                continue
            extremes = (-1, 0, 2 ** 31 - 1, -2 ** 31)
            if typ == 'bigint':
                extremes += (2 ** 63 - 1, -2 ** 63)
            for value in extremes:
                try:
                    check_hostile_call(conn, function, arguments, dict(VALID, **{name: value}),
                                       before)
                except AssertionError as e:
                    unclean.append((function, name, value, str(e).split('\n')[0]))
    assert not unclean


# -- privileges ---------------------------------------------------------------------------

@pytest.fixture
def roles(cluster, dbname, conn):
    """make(prefix) -> a new LOGIN role (cluster-wide), dropped with what it owns afterwards."""
    made = []

    def make(prefix):
        name = 'q4pg_rel_%s_%s' % (prefix, uuid.uuid4().hex[:8])
        with conn.cursor() as cur:
            cur.execute('CREATE ROLE %s LOGIN' % name)
        made.append(name)
        return name, cluster.dsn_string(database=dbname, user=name)

    yield make
    with conn.cursor() as cur:
        for name in made:
            cur.execute('DROP OWNED BY %s' % name)
            cur.execute('DROP ROLE %s' % name)


def as_role(dsn):
    c = psycopg2.connect(dsn)
    c.autocommit = True
    return c


def test_role_without_rights_can_do_nothing(conn, roles):
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA app')
        for queue in ('public.mq', 'app.mq'):
            cur.execute('SELECT q4pg_create_queue(%s)', (queue,))
            cur.execute("SELECT q4pg_enqueue_many(%s, 't', ARRAY['1', '2', '3'])", (queue,))
    nobody, nobody_dsn = roles('nobody')
    before = fingerprint(conn)
    c = as_role(nobody_dsn)
    try:
        for queue in ('public.mq', 'app.mq'):  # usage on the schema, or not even that
            for statement, args in [
                ("SELECT q4pg_enqueue(%s, 't', '4')", ()),
                ("SELECT q4pg_enqueue_many(%s, 't', ARRAY['4'])", ()),
                ("SELECT * FROM q4pg_dequeue(%s, 't')", ()),
                ("SELECT * FROM q4pg_dequeue_many(%s, 't', 10)", ()),
                ('SELECT q4pg_cancel(%s, 1)', ()),
                ("SELECT q4pg_count(%s)", ()),
                ("SELECT * FROM q4pg_list(%s)", ()),
                ('SELECT q4pg_drop_queue(%s)', ()),
            ]:
                with c.cursor() as cur:
                    assert sqlstate_or_rows(cur, statement, (queue,) + args) == ('error', '42501'), \
                        (statement, queue)
        with c.cursor() as cur:
            assert sqlstate_or_rows(cur, "SELECT q4pg_create_queue('app.other')") == \
                ('error', '42501')
            cur.execute('SELECT count(*) FROM q4pg_queues()')
            assert cur.fetchone()[0] == 0
            cur.execute('SELECT count(*) FROM q4pg_stats()')
            assert cur.fetchone()[0] == 0
    finally:
        c.close()
    # the same through the client: a clean q4pg.PermissionDenied each time
    with q4pg.QueueManager(nobody_dsn, 'mq', schema='public', poll_interval=60) as q:
        for action in (lambda: q.enqueue('t', 4), lambda: q.enqueue_many('t', [4]),
                       lambda: q.dequeue('t').__enter__(), lambda: q.dequeue_many('t', 5).__enter__(),
                       lambda: q.dequeue_immediate('t'), lambda: q.list(), lambda: q.count(),
                       lambda: q.cancel(1), lambda: next(q.listen('t', stop_after_idle=5))):
            with pytest.raises(q4pg.PermissionDenied):
                action()
    assert_unchanged(before, fingerprint(conn))


# The documented setup: the minimal grants each side needs (see the report / README)
PRODUCER_GRANTS = ['GRANT USAGE ON SCHEMA app TO {role}',
                   'GRANT INSERT, SELECT (id) ON app.jobs TO {role}']
CONSUMER_GRANTS = ['GRANT USAGE ON SCHEMA app TO {role}',
                   'GRANT SELECT, DELETE, UPDATE (created_at) ON app.jobs TO {role}']


def grant(conn, grants, role, skip=None):
    with conn.cursor() as cur:
        for g in grants:
            if g != skip:
                cur.execute(g.format(role=role))


def test_producer_and_consumer_roles(conn, roles):
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA app')
        cur.execute("SELECT q4pg_create_queue('app.jobs')")
    producer, producer_dsn = roles('producer')
    consumer, consumer_dsn = roles('consumer')
    grant(conn, PRODUCER_GRANTS, producer)
    grant(conn, CONSUMER_GRANTS, consumer)
    with conn.cursor() as cur:
        # no right on the identity sequence is needed
        cur.execute("SELECT has_sequence_privilege(%s, pg_get_serial_sequence('app.jobs', 'id'), "
                    "'USAGE, SELECT, UPDATE')", (producer,))
        assert cur.fetchone()[0] is False

    with q4pg.QueueManager(producer_dsn, 'jobs', schema='app') as p, \
            q4pg.QueueManager(consumer_dsn, 'jobs', schema='app', poll_interval=60) as c:
        ids = p.enqueue_many('t', [{'n': n} for n in range(5)])
        ids.append(p.enqueue('t', {'n': 5}))
        # the producer adds, and can do nothing else with the messages
        for action in (lambda: p.dequeue_immediate('t'), lambda: p.list(),
                       lambda: p.dequeue_many('t', 1).__enter__(), lambda: p.cancel(ids[0])):
            with pytest.raises(q4pg.PermissionDenied):
                action()
        # the consumer takes, lists, counts, cancels, listens, sees stats; it cannot add
        assert c.count() == 6 and [r[0] for r in c.list()] == ids
        assert c.dequeue_immediate('t') == {'n': 0}
        with c.dequeue_many('t', 2) as messages:
            assert [m.data for m in messages] == [{'n': 1}, {'n': 2}]
        assert c.cancel(ids[3]) is True
        assert [m for m in c.listen('t', limit=2, stop_after_idle=10)] == [{'n': 4}, {'n': 5}]
        assert [s[:3] for s in c.stats()] == [('app.jobs', None, 0)]   # empty: a row of zeros
        with pytest.raises(q4pg.PermissionDenied):
            c.enqueue('t', {'n': 6})
        with pytest.raises(q4pg.PermissionDenied):
            c.enqueue_many('t', [{'n': 6}])
        # a listener of the consumer wakes up on a producer's message (LISTEN needs no grant)
        timer = threading.Timer(0.3, p.enqueue, ('t', {'n': 7}))
        timer.start()
        assert list(c.listen('t', limit=1, stop_after_idle=20)) == [{'n': 7}]
        timer.join()
        # neither may drop the queue
        for role_dsn in (producer_dsn, consumer_dsn):
            r = as_role(role_dsn)
            with r.cursor() as cur:
                assert sqlstate_or_rows(cur, "SELECT q4pg_drop_queue('app.jobs')") == \
                    ('error', '42501')
            r.close()


@pytest.mark.parametrize('side,missing', [
    ('producer', g) for g in PRODUCER_GRANTS] + [('consumer', g) for g in CONSUMER_GRANTS])
def test_each_documented_grant_is_needed(conn, roles, side, missing):
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA app')
        cur.execute("SELECT q4pg_create_queue('app.jobs')")
        cur.execute("SELECT q4pg_enqueue('app.jobs', 't', '1')")
    role, role_dsn = roles(side)
    grants = PRODUCER_GRANTS if side == 'producer' else CONSUMER_GRANTS
    grant(conn, grants, role, skip=missing)
    with q4pg.QueueManager(role_dsn, 'jobs', schema='app') as q:
        with pytest.raises(q4pg.PermissionDenied):
            if side == 'producer':
                q.enqueue('t', 2)
            else:
                q.dequeue_immediate('t')
