"""Bad and hostile input: refused with the right q4pg error, and nothing changes."""

import hashlib
import json

import psycopg2
import pytest

import q4pg
from tests.helpers import WAIT, members_sql

Q_OPTIONS = dict(data_length=10)     # the queue of the q fixture (tests/conftest.py)


@pytest.fixture
def q(q):
    q.enqueue('tag', 'before')       # something that must stay as it is
    return q


@pytest.fixture
def tq(make_queue):
    manager = make_queue('tq', 'text', 5)
    manager.enqueue('tag', 'abc')
    return manager


def refused(manager, error, call, *args, **kwargs):
    """Checks that call(*args, **kwargs) raises `error` and leaves the queue as it was."""
    before = manager.list()
    with pytest.raises(error) as info:
        result = call(*args, **kwargs)
        if hasattr(result, '__enter__'):       # a dequeue context manager
            with result:
                pass
    assert manager.list() == before
    return info.value


def tables(conn, schema='public'):
    """The tables of `schema`, but q4pg's own (q4pg_idle_listeners, q4pg_install)."""
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = %%s AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                    "AND (c.tableoid, c.oid) NOT IN (%s)" % members_sql(cur), (schema,))
        return sorted(row[0] for row in cur.fetchall())


# -- messages -------------------------------------------------------------------

def test_invalid_json_is_refused(q):
    e = refused(q, q4pg.InvalidMessage, q.enqueue, 'tag', '{"a":', raw=True)
    assert e.pgcode == '22P02'
    assert 'json' in str(e)
    refused(q, q4pg.InvalidMessage, q.enqueue, 'tag', 'NaN', raw=True)
    refused(q, q4pg.InvalidMessage, q.enqueue, 'tag', float('nan'))   # json.dumps writes NaN
    refused(q, q4pg.InvalidMessage, q.enqueue_many, 'tag', ['1', '{bad'], raw=True)
    assert q.count() == 1


def test_data_that_is_no_json_is_refused_client_side(q):
    for data in ({1, 2}, object(), b'bytes', {'when': q4pg}):
        e = refused(q, q4pg.InvalidMessage, q.enqueue, 'tag', data)
        assert e.pgcode is None
        assert isinstance(e, ValueError)
    refused(q, q4pg.InvalidMessage, q.enqueue, 'tag', {'a': 1}, raw=True)   # raw takes str
    refused(q, q4pg.InvalidMessage, q.enqueue_many, 'tag', [1, {2}])


def test_text_queue_takes_str_only(tq):
    for data in (1, {'a': 1}, b'abc', None):
        refused(tq, q4pg.InvalidMessage, tq.enqueue, 'tag', data)


def test_length_limit_counts_characters_not_bytes(tq, q):
    # text queue of 5 characters
    for text in ('日本語テキ', '😀😀😀😀😀', 'ééééé'):
        assert len(text.encode()) > 5
        tq.enqueue('len', text)
    for text in ('日本語テキス', '😀' * 6, 'abcdef'):
        e = refused(tq, q4pg.InvalidMessage, tq.enqueue, 'len', text)
        assert e.pgcode == '22001'
    refused(tq, q4pg.InvalidMessage, tq.enqueue_many, 'len', ['a', 'abcdef'])
    assert [row[2] for row in tq.list('len')] == ['日本語テキ', '😀😀😀😀😀', 'ééééé']

    # json queue of 10 characters: the JSON text counts ("ééééééé" + quotes = 10)
    q.enqueue('len', 'é' * 8)
    assert q.list('len')[0][2] == '"' + 'é' * 8 + '"'
    e = refused(q, q4pg.InvalidMessage, q.enqueue, 'len', 'é' * 9)
    assert e.pgcode == '22001'
    assert isinstance(e, ValueError)
    q.enqueue('len', '"' + '😀' * 8 + '"', raw=True)
    refused(q, q4pg.InvalidMessage, q.enqueue, 'len', '"' + '😀' * 9 + '"', raw=True)


def test_jsonb_length_limit(dsn):
    """jsonb stores normalized text ('{"a": 12}'); whatever counts, nothing too long is stored."""
    q = q4pg.QueueManager(dsn, 'jq', 'jsonb', 8)
    q.create_table()
    q.enqueue('tag', {'a': 1})                 # '{"a": 1}': 8 characters stored
    for data in ({'a': 12}, {'ab': 1}, 'é' * 7):
        refused(q, q4pg.InvalidMessage, q.enqueue, 'tag', data)
    assert all(len(row[2]) <= 8 for row in q.list())
    assert q.dequeue_immediate('tag') == {'a': 1}
    q.close()


def test_nul_characters_are_refused(q, tq):
    for manager, data in ((q, {'a': 1}), (tq, 'ab')):
        e = refused(manager, q4pg.InvalidMessage, manager.enqueue, 'ta\0g', data)
        assert 'NUL' in str(e)
        refused(manager, q4pg.InvalidMessage, manager.enqueue_many, 'ta\0g', [data])
        refused(manager, q4pg.InvalidMessage, manager.dequeue, 'ta\0g')
        refused(manager, q4pg.InvalidMessage, manager.count, 'ta\0g')
    refused(tq, q4pg.InvalidMessage, tq.enqueue, 'tag', 'a\0b')
    refused(tq, q4pg.InvalidMessage, tq.enqueue_many, 'tag', ['ok', 'a\0b'])
    refused(q, q4pg.InvalidMessage, q.enqueue, 'tag', '"a\0b"', raw=True)


def test_nul_inside_json_data_is_escaped_and_round_trips(q):
    """json.dumps writes a NUL as \\u0000: no NUL character reaches the server."""
    q.enqueue('nul', 'a\0b')
    assert q.list('nul')[0][2] == '"a\\u0000b"'
    assert q.dequeue_immediate('nul') == 'a\0b'


def test_stored_data_that_is_no_json_is_refused_and_stays(tq, dsn):
    """A json QueueManager on a text queue: the message is not taken."""
    wrong = q4pg.QueueManager(dsn, 'tq', 'json')
    refused(tq, q4pg.InvalidMessage, wrong.dequeue, 'tag')
    refused(tq, q4pg.InvalidMessage, wrong.dequeue_immediate, 'tag')
    refused(tq, q4pg.InvalidMessage, lambda: next(wrong.listen('tag', stop_after_idle=WAIT)))
    assert tq.dequeue_immediate('tag') == 'abc'
    wrong.close()


def test_nul_inside_jsonb_data_is_refused(dsn):
    """jsonb cannot hold \u0000: the server refuses it."""
    q = q4pg.QueueManager(dsn, 'jq', 'jsonb')
    q.create_table()
    e = refused(q, q4pg.InvalidMessage, q.enqueue, 'nul', {'a': 'a\0b'})
    assert e.pgcode == '22P05'
    assert q.count() == 0
    q.close()


def test_null_tag_is_refused(q):
    e = refused(q, q4pg.InvalidMessage, q.enqueue, None, 1)
    assert e.pgcode == '22004'


def test_bad_arguments(q, dsn):
    e = refused(q, q4pg.InvalidArgument, q.dequeue_many, 'tag', -1)
    assert e.pgcode == '22023'
    assert isinstance(e, ValueError)
    with pytest.raises(q4pg.InvalidArgument):
        q4pg.QueueManager(dsn, 'mq', data_type='xml')
    with pytest.raises(q4pg.InvalidArgument):
        q4pg.QueueManager(dsn, 'm\0q')
    with pytest.raises(q4pg.InvalidArgument):
        q4pg.QueueManager(dsn, 'mq', max_connections=0)
    with pytest.raises(q4pg.InvalidArgument):
        q4pg.QueueManager(dsn, 'mq', poll_interval=0)
    e = refused(q, q4pg.InvalidArgument, q.cancel, 2 ** 70)
    assert e.pgcode == '22003'
    refused(q, q4pg.InvalidArgument, q.list, 'tag', 2 ** 40)
    refused(q, q4pg.InvalidArgument, q.list, 'tag', -1)
    # the client refuses these when the QueueManager is made (tests/client/test_arguments.py),
    # and the server when the call comes another way
    for kwargs in (dict(table_name='q0', data_length=0), dict(table_name='x' * 64)):
        with pytest.raises(q4pg.InvalidArgument) as info:
            q4pg.QueueManager(dsn, **kwargs)
        assert info.value.pgcode is None
    for call, pgcode in (("q4pg_create_queue('q0', 'json', 0)", '22023'),
                         ("q4pg_create_queue('%s')" % ('x' * 64), '42622')):
        e = refused(q, q4pg.InvalidArgument, q4pg.db.Database(dsn, 1).run, 'SELECT ' + call)
        assert e.pgcode == pgcode
    e = refused(q, q4pg.InvalidArgument, q4pg.QueueManager(dsn, 'mq', schema='nope').create_table)
    assert e.pgcode == '3F000'
    assert q.queues() == [('mq', 'json', 10)]


# -- queues ---------------------------------------------------------------------

def every_call(manager):
    """(name, zero-argument callable) for every call that takes a queue."""
    return [
        ('create_table', None),
        ('enqueue', lambda: manager.enqueue('tag', 1)),
        ('enqueue_many', lambda: manager.enqueue_many('tag', [1])),
        ('dequeue', lambda: manager.dequeue('tag').__enter__()),
        ('dequeue_message', lambda: manager.dequeue_message('tag').__enter__()),
        ('dequeue_many', lambda: manager.dequeue_many('tag', 2).__enter__()),
        ('dequeue_immediate', lambda: manager.dequeue_immediate('tag')),
        ('list', manager.list),
        ('count', manager.count),
        ('cancel', lambda: manager.cancel(1)),
        ('channel', lambda: manager.channel('tag')),
        ('listen', lambda: next(manager.listen('tag', stop_after_idle=0))),
    ]


def test_no_such_queue(q, dsn):
    missing = q4pg.QueueManager(dsn, 'no_such_queue')
    for name, call in every_call(missing):
        if call is None:
            continue
        e = refused(q, q4pg.QueueNotFound, call)
        assert e.pgcode == '42P01', name
        assert 'no_such_queue' in str(e), name
    missing.close()


def test_table_that_is_no_queue(q, dsn, conn):
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE plain (id int, tag text, data json, '
                    'created_at timestamptz)')
        cur.execute("INSERT INTO plain VALUES (1, 'tag', '1', now())")
    plain = q4pg.QueueManager(dsn, 'plain')
    for name, call in every_call(plain):
        if name == 'channel':
            continue            # see test_channel_of_a_table_that_is_no_queue
        if call is None:
            e = refused(q, q4pg.QueueExists, plain.create_table)
            assert e.pgcode == '42P07'
            continue
        e = refused(q, q4pg.QueueNotFound, call)
        assert e.pgcode == '42P01', name
        assert 'is not a q4pg queue' in str(e), name
        assert 'HINT' in str(e)
        assert 'HINT' not in e.pgerror
    with conn.cursor() as cur:
        cur.execute('SELECT id, tag, data::text FROM plain')
        assert cur.fetchall() == [(1, 'tag', '1')]
        cur.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'plain'::regclass")
        assert cur.fetchone() == (0,)
    plain.close()


def test_channel_of_a_table_that_is_no_queue(dsn, conn):
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE plain (id int)')
    plain = q4pg.QueueManager(dsn, 'plain')
    with pytest.raises(q4pg.QueueNotFound):
        plain.channel('tag')
    plain.close()


def test_create_table_with_other_settings(q, dsn):
    for data_type, data_length in (('text', 10), ('jsonb', 10), ('json', 11), ('json', 1023)):
        other = q4pg.QueueManager(dsn, 'mq', data_type, data_length)
        e = refused(q, q4pg.QueueExists, other.create_table)
        assert e.pgcode == '42P07'
        other.close()
    q.create_table()                             # the same settings: fine
    q4pg.QueueManager(dsn, 'mq', 'JSON', 10).create_table()
    assert q.queues() == [('mq', 'json', 10)]
    assert q.count() == 1


def test_no_extension_installed(bare_dsn):
    q = q4pg.QueueManager(bare_dsn, 'mq')
    with pytest.raises(q4pg.ExtensionNotInstalled) as info:
        q.create_table()
    assert info.value.pgcode == '42883'
    assert 'CREATE EXTENSION q4pg' in str(info.value)
    assert 'q4pg_create_queue' in info.value.pgerror
    for call in (q.queues, q.stats):
        with pytest.raises(q4pg.ExtensionNotInstalled):
            call()
    # No table either: still the extension is what is missing (the queue name
    # is sent as text and cast to regclass only once the function is found).
    for name, call in every_call(q):
        if call is not None:
            with pytest.raises(q4pg.ExtensionNotInstalled) as info:
                call()
            assert 'CREATE EXTENSION q4pg' in str(info.value), name

    check = psycopg2.connect(bare_dsn)
    check.autocommit = True
    with check.cursor() as cur:
        # Nothing was made behind our back: no extension, no table.
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'q4pg'")
        assert cur.fetchone() == (0,)
        assert tables(check) == []
        # With a table of that name the q4pg functions are what is missing.
        cur.execute('CREATE TABLE mq (id int)')
    for name, call in every_call(q):
        if call is not None:
            with pytest.raises(q4pg.ExtensionNotInstalled) as info:
                call()
            assert 'CREATE EXTENSION q4pg' in str(info.value), name
    with check.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'q4pg'")
        assert cur.fetchone() == (0,)
    check.close()
    q.close()


# -- hostile names and tags -------------------------------------------------------

HOSTILE_TABLES = [
    'x"; DROP TABLE y; --',
    "x'); DROP TABLE y; --",
    'it\'s',
    'a.b',
    'semi;colon',
    '"quoted"',
    'MixedCase',
    'mixedcase',
    ' spaced out ',
    'ünïcödé 表',
    '%s %(x)s $1',
    'back\\slash',
]


def quoted(name):
    """name as a quoted SQL identifier: table_name and schema are SQL names."""
    return '"%s"' % name.replace('"', '""')


def test_hostile_table_names(dsn, conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE y (v text); INSERT INTO y VALUES ('still here')")
    for name in HOSTILE_TABLES:
        q = q4pg.QueueManager(dsn, quoted(name))
        q.create_table()
        q.create_table()
        first = q.enqueue('tag', {'table': name})
        assert q.list() == [(first, 'tag', json.dumps({'table': name}, separators=(',', ':'),
                                                       ensure_ascii=False), q.list()[0][3])]
        assert q.count() == 1
        with q.dequeue_message('tag') as message:
            assert message.data == {'table': name}
        assert q.count() == 0
        q.enqueue('left', name)
        q.close()
    assert tables(conn) == sorted(HOSTILE_TABLES + ['y'])
    with conn.cursor() as cur:
        cur.execute('SELECT v FROM y')
        assert cur.fetchall() == [('still here',)]
        for name in HOSTILE_TABLES:
            cur.execute('SELECT count(*), min(data::text) FROM %s'
                        % psycopg2.sql.Identifier(name).as_string(conn))
            assert cur.fetchone() == (1, json.dumps(name, ensure_ascii=False))


def test_hostile_schema_and_table(dsn, conn):
    schema = 'we"ird.schema'
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA %s' % psycopg2.sql.Identifier(schema).as_string(conn))
    q = q4pg.QueueManager(dsn, quoted('a.b'), schema=quoted(schema))
    q.create_table()
    q.enqueue('tag', 1)
    assert tables(conn, schema) == ['a.b']
    assert tables(conn) == []
    assert q.dequeue_immediate('tag') == 1
    q.close()


HOSTILE_TAGS = [
    '', "'", '"', "'; DROP TABLE mq; --", '%s', '%(tag)s', '\\', 'ünïcödé 日本語 😀',
    't' * 500, ' ', '\n\t', 'a:b', 'q4pg_',
]


def test_hostile_tags_round_trip(dsn):
    q = q4pg.QueueManager(dsn, 'mq', poll_interval=60)
    q.create_table()
    ids = {tag: q.enqueue(tag, {'tag': tag}) for tag in HOSTILE_TAGS}
    assert q.count() == len(HOSTILE_TAGS)
    assert [(row[1], row[0]) for row in q.list()] == list(ids.items())
    channels = set()
    for tag in HOSTILE_TAGS:
        assert q.count(tag) == 1
        assert [row[1] for row in q.list(tag)] == [tag]
        channel = q.channel(tag)
        assert len(channel) == 37 and channel.startswith('q4pg_')
        channels.add(channel)
        with q.dequeue_message(tag) as message:
            assert message.id == ids[tag]
            assert message.tag == tag
            assert message.data == {'tag': tag}
    assert len(channels) == len(HOSTILE_TAGS)
    assert q.count() == 0

    # listen on a unicode tag is woken by its notification (poll_interval is 60 s)
    import threading
    timer = threading.Timer(0.5, q.enqueue, (HOSTILE_TAGS[7], 'ping'))
    timer.start()
    assert list(q.listen(HOSTILE_TAGS[7], stop_after_idle=WAIT, limit=1)) == ['ping']
    timer.join()
    q.close()


# -- a hostile search_path on the caller's connection --------------------------------

EVIL = r'''
CREATE SCHEMA evil;
CREATE FUNCTION evil.boom(p_what text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'evil % called', p_what; END $$;
CREATE FUNCTION evil.md5(text) RETURNS text LANGUAGE sql AS $$ SELECT evil.boom('md5') $$;
CREATE FUNCTION evil.format(text, name, name) RETURNS text LANGUAGE sql
  AS $$ SELECT evil.boom('format(text, name, name)') $$;
CREATE FUNCTION evil.format(text, text, text) RETURNS text LANGUAGE sql
  AS $$ SELECT evil.boom('format(text, text, text)') $$;
CREATE FUNCTION evil.format(text, regclass) RETURNS text LANGUAGE sql
  AS $$ SELECT evil.boom('format(text, regclass)') $$;
CREATE FUNCTION evil.format(text, regclass, regtype) RETURNS text LANGUAGE sql
  AS $$ SELECT evil.boom('format(text, regclass, regtype)') $$;
CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE sql
  AS $$ SELECT evil.boom('pg_notify') $$;
CREATE FUNCTION evil.char_length(text) RETURNS integer LANGUAGE sql
  AS $$ SELECT length(evil.boom('char_length')) $$;
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT evil.boom('lower') $$;
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE sql
  AS $$ SELECT evil.boom('=') IS NULL $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE FUNCTION evil.int4le(integer, integer) RETURNS boolean LANGUAGE sql
  AS $$ SELECT evil.boom('<=') IS NULL $$;
CREATE OPERATOR evil.<= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.int4le);
-- The channel function without its pinned search_path: proves the shadows bite.
CREATE FUNCTION public.unpinned_channel(p_queue regclass, p_tag text) RETURNS text
LANGUAGE sql AS $$
    SELECT 'q4pg_' || md5(format('%I.%I', n.nspname, c.relname) || ':' || p_tag)
      FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_queue
$$;
'''


@pytest.mark.parametrize('search_path', ['evil,public', 'evil,pg_catalog,public'])
def test_hostile_search_path_changes_nothing(dsn, conn, search_path):
    with conn.cursor() as cur:
        cur.execute(EVIL)
    normal = q4pg.QueueManager(dsn, 'mq', poll_interval=60)
    normal.create_table()
    hostile_dsn = "%s options='-c search_path=%s'" % (dsn, search_path)

    # The shadows are there, and would change an unprotected function.
    check = psycopg2.connect(hostile_dsn)
    with check.cursor() as cur:
        cur.execute('SHOW search_path')
        assert cur.fetchone() == (search_path,)
        with pytest.raises(psycopg2.Error, match='evil .* called'):
            cur.execute("SELECT public.unpinned_channel('public.mq', 'tag')")
    check.close()

    q = q4pg.QueueManager(hostile_dsn, 'mq', schema='public', poll_interval=60)
    expected_channel = 'q4pg_' + hashlib.md5(b'public.mq:tag').hexdigest()
    assert q.channel('tag') == normal.channel('tag') == expected_channel

    q.create_table()
    hq = q4pg.QueueManager(hostile_dsn, 'hq', 'text', 5, schema='public')
    hq.create_table()
    ids = [q.enqueue('tag', {'n': 1}), *q.enqueue_many('tag', [{'n': 2}, {'n': 3}])]
    assert hq.enqueue('tag', 'abcde')
    with pytest.raises(q4pg.InvalidMessage) as info:
        hq.enqueue('tag', 'abcdef')
    assert info.value.pgcode == '22001'
    assert q.count('tag') == 3 and q.count() == 3
    assert [row[0] for row in q.list('tag')] == ids
    with q.dequeue('tag') as data:
        assert data == {'n': 1}
    with q.dequeue_many('tag', 1) as messages:
        assert [m.data for m in messages] == [{'n': 2}]
    assert q.cancel(ids[2]) is True
    assert normal.count() == 0
    assert hq.dequeue_immediate('tag') == 'abcde'
    assert sorted(q.queues()) == [('hq', 'text', 5), ('mq', 'json', 1023)]
    assert sorted(q.stats()) == [('hq', None, 0, None, None), ('mq', None, 0, None, None)]

    # What the hostile session created is what a normal one creates.
    assert normal.queues() == [('hq', 'text', 5), ('mq', 'json', 1023)]
    assert tables(conn, 'evil') == []
    assert tables(conn) == ['hq', 'mq']
    with conn.cursor() as cur:
        cur.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.hq'::regclass ORDER BY 1")
        assert cur.fetchall() == [('q4pg_notify',)]
        cur.execute("SELECT conname FROM pg_constraint "
                    "WHERE conrelid = 'public.hq'::regclass AND contype = 'c'")
        assert cur.fetchall() == [('q4pg_data_max_5_chars',)]

    # Notifications sent by a hostile producer reach a normal listener, and the reverse.
    import threading
    for producer, consumer in ((q, normal), (normal, q)):
        timer = threading.Timer(0.5, producer.enqueue, ('tag', {'n': 'ping'}))
        timer.start()
        assert list(consumer.listen('tag', stop_after_idle=WAIT, limit=1)) == [{'n': 'ping'}]
        timer.join()
    q.close()
    hq.close()
    normal.close()
