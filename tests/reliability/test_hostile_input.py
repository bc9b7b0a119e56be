"""Hostile input, property-based: whatever comes in is stored and returned exactly, or
refused with a clear q4pg error; nothing else in the database changes.

Hypothesis draws tags, data and table names from all of Unicode (NUL and lone
surrogates included), invalid and valid JSON, and text aimed at every text,
name, regclass and text[] argument of every q4pg function.  After each example
the database's fingerprint (catalogs and the contents of every table outside
the queues' schema) must be what it was.  The number of inputs tried goes to
the run's figures (hypothesis_inputs).

The fast run tries EXAMPLES inputs per property; the soak run SOAK_EXAMPLES.
"""

import decimal
import json

import psycopg2
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import q4pg
from tests.reliability.helpers import assert_unchanged, fingerprint
from tests.reliability.security_helpers import (HOSTILE_TYPES, VALID, check_hostile_call,
                                                function_arguments)

EXAMPLES = 150
SOAK_EXAMPLES = 4000
LIMIT = 100000  # characters: the queues' data length
EXCLUDED = ('hq', 'inj')  # the schemas of the queues the tests use: all else must not change

ANY_TEXT = st.text(st.characters(blacklist_categories=()))  # surrogates and NUL included
SENDABLE_TEXT = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'))
JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-2 ** 70, 2 ** 70)
                | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS,
                           lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(ANY_TEXT, inner, max_size=5),
                           max_leaves=30)


class Env:
    """The module's database: queues of each data type in schema hq, a canary table,
    an autocommit connection, a QueueManager per queue."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute('CREATE SCHEMA hq')
            cur.execute('CREATE SCHEMA hn')
            cur.execute('CREATE SCHEMA inj')
            cur.execute('CREATE TABLE canary (id int PRIMARY KEY, secret text)')
            cur.execute("INSERT INTO canary SELECT g, md5(g::text) FROM generate_series(1, 50) g")
        self.queues = {t: q4pg.QueueManager(dsn, t, t, LIMIT, schema='hq')
                       for t in ('text', 'json', 'jsonb')}
        for q in self.queues.values():
            q.create_table()
        self.before = self.fingerprint()

    def fingerprint(self):
        return fingerprint(self.conn, exclude_schemas=EXCLUDED)

    def unchanged(self):
        assert_unchanged(self.before, self.fingerprint())
        for q in self.queues.values():
            assert q.count() == 0, 'a message was left behind'

    def close(self):
        for q in self.queues.values():
            q.close()
        self.conn.close()


@pytest.fixture(scope='module')
def env(module_dsn):
    e = Env(module_dsn)
    yield e
    e.close()


def hypothesis_settings(examples, soak):
    """The fast run is derandomized (the same inputs every time, so make test is
    repeatable); the soak run explores, and keeps failures in .hypothesis/ to replay."""
    return settings(max_examples=examples, deadline=None, derandomize=not soak,
                    database=None if not soak else settings.default.database,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def property_test(examples, strategy_kwargs, soak):
    """A hypothesis test run with this many examples; counts what it tried."""
    def decorate(body):
        @hypothesis_settings(examples, soak)
        @given(**strategy_kwargs)
        def test(env, figures, **drawn):
            figures.add('hypothesis_inputs')
            body(env, **drawn)
        return test
    return decorate


def tell(message):
    """hypothesis.note() in a hypothesis test, nothing elsewhere."""
    try:
        note(message)
    except Exception:
        pass


def has_surrogate(s):
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_in(v)


# -- the client: tags and text data ------------------------------------------------------

def text_round_trip(env, tag, data):
    q = env.queues['text']
    bad = '\x00' in tag + data or has_surrogate(tag + data)
    try:
        id_ = q.enqueue(tag, data)
    except q4pg.InvalidMessage:
        assert bad, 'refused good input'
    else:
        assert not bad, 'stored input that cannot be stored'
        with q.dequeue_message(tag) as m:
            assert (m.id, m.tag, m.data, m.raw) == (id_, tag, data, data)
    env.unchanged()


# -- the client: any JSON value -----------------------------------------------------------

def exact_numbers(text):
    return json.loads(text, parse_float=decimal.Decimal, parse_int=decimal.Decimal)


def json_round_trip(env, tag, value, data_type):
    q = env.queues[data_type]
    strings = list(strings_in(value)) + [tag]
    bad = any(has_surrogate(s) for s in strings) or '\x00' in tag
    bad = bad or value is None      # null: a consumer could not tell it from an empty queue
    if data_type == 'jsonb':
        bad = bad or any('\x00' in s for s in strings)   # jsonb has no \u0000
    sent = json.dumps(value, separators=(',', ':'), ensure_ascii=False)
    try:
        id_ = q.enqueue(tag, value)
    except q4pg.InvalidMessage as e:
        tell('refused: %s' % e)
        assert bad or len(sent) > LIMIT, 'refused good input'
    else:
        assert not bad
        with q.dequeue_message(tag) as m:
            assert (m.id, m.tag) == (id_, tag)
            if data_type == 'json':
                assert m.raw == sent and m.data == value   # json keeps the text as sent
            else:
                # jsonb normalizes: the same value, numbers compared exactly
                assert exact_numbers(m.raw) == exact_numbers(sent)
    env.unchanged()


# -- SQL level: any text offered as JSON --------------------------------------------------

@st.composite
def json_text_strategy(draw):
    """(kind, text): 'valid' JSON in various spellings, or 'any' text (random, NaN, or
    valid JSON with a piece cut out or put in)."""
    value = draw(JSON_VALUES)
    spellings = [json.dumps(value), json.dumps(value, ensure_ascii=False),
                 json.dumps(value, indent=2),
                 ' \n\t' + json.dumps(value, separators=(' ,', ' : ')) + '\r\n']
    valid = draw(st.sampled_from(spellings))
    how = draw(st.sampled_from(['valid', 'random', 'constant', 'corrupt']))
    if how == 'valid':
        # a lone surrogate is legal in Python's JSON, not in PostgreSQL's jsonb
        lone = any(has_surrogate(x) for x in strings_in(value))
        return ('any' if lone else 'valid'), valid
    if how == 'random':
        return 'any', draw(SENDABLE_TEXT)
    if how == 'constant':
        return 'any', draw(st.sampled_from(['NaN', 'Infinity', '-Infinity', 'undefined', "'x'",
                                            '{"a":1,}', '[1,]', '01', '1.', '.5', '"\\x41"',
                                            '"\\ud800"', '"\\u0000"', '{"a" 1}', '']))
    i = draw(st.integers(0, len(valid)))
    cut = draw(st.integers(0, 2))
    piece = draw(st.sampled_from(['', '{', '"', ',', '\\', 'x', ']', '\\u12', '\x01']))
    return 'any', valid[:i] + piece + valid[i + cut:]


def sql_json_text(env, kind_text, data_type):
    kind, text = kind_text
    assume('\x00' not in text and not has_surrogate(text))  # psycopg2 cannot send these
    queue = 'hq.%s' % data_type
    with env.conn.cursor() as cur:
        try:
            cur.execute("SELECT q4pg_enqueue(%s, 't', %s)", (queue, text))
        except psycopg2.Error as e:
            tell('refused: %s %s' % (e.pgcode, e.pgerror))
            if kind == 'valid' and json.loads(text) is None:
                # the JSON null: a consumer could not tell it from no message
                assert e.pgcode in ('22004', '23514'), e.pgcode
            else:
                assert kind != 'valid' or (data_type == 'jsonb' and '\\u0000' in text), \
                    'refused valid JSON'
                assert e.pgcode in ('22P02', '22P05', '22001'), e.pgcode
        else:
            id_ = cur.fetchone()[0]
            cur.execute("SELECT id, data FROM q4pg_dequeue(%s, 't')", (queue,))
            got_id, got = cur.fetchone()
            assert got_id == id_
            if data_type == 'json':
                assert got == text                        # verbatim
                assert json.loads(text) is not None       # and it is JSON, not its null
            else:
                assert exact_numbers(got) == exact_numbers(text)
    env.unchanged()


# -- the client: table names --------------------------------------------------------------

def table_name(env, name):
    q = None
    fp = env.fingerprint()
    bad = name == '' or '\x00' in name or has_surrogate(name) or len(name.encode()) > 63
    try:
        # table_name is an SQL name: quoted, it is the name exactly
        q = q4pg.QueueManager(env.dsn, '"%s"' % name.replace('"', '""'), 'text', schema='hn')
        q.create_table()
    except q4pg.InvalidArgument as e:
        tell('refused: %s' % e)
        assert bad, 'refused a good name'
    else:
        assert not bad, 'accepted a bad name'
        with env.conn.cursor() as cur:
            cur.execute("SELECT c.relname FROM pg_class AS c WHERE c.relnamespace = 'hn'::regnamespace "
                        "AND c.relkind IN ('r', 'p') AND NOT c.relispartition")
            assert cur.fetchall() == [(name,)]
        id_ = q.enqueue('t', name)
        assert q.list() == [(id_, 't', name, q.list()[0][3])]
        assert q.dequeue_immediate('t') == name
        with env.conn.cursor() as cur:
            cur.execute("SELECT q4pg_drop_queue(c.oid::regclass) FROM pg_class AS c "
                        "WHERE c.relnamespace = 'hn'::regnamespace AND c.relkind IN ('r', 'p') "
                        "AND NOT c.relispartition")
    finally:
        if q is not None:
            q.close()
    assert_unchanged(fp, env.fingerprint())


# -- SQL level: any text through any argument of any function -----------------------------

def any_argument(env, target, text):
    assume('\x00' not in text and not has_surrogate(text))
    function, arguments, name = target
    check_hostile_call(env.conn, function, arguments, dict(VALID, **{name: text}),
                       env.fingerprint(), exclude_schemas=EXCLUDED)


@pytest.fixture(scope='module')
def targets(env):
    with env.conn.cursor() as cur:
        return [(f, args, name) for f, args in function_arguments(cur)
                for name, typ in args if typ in HOSTILE_TYPES]


def any_argument_strategy():
    hostile_bits = st.sampled_from(["'", '"', ';', '.', '--', '/*', '$1', '$$', '%s', '%I',
                                    '\\', 'DROP TABLE canary', 'inj.q', 'canary', ' ', '\n'])
    return st.lists(st.one_of(hostile_bits, SENDABLE_TEXT), max_size=6).map(''.join)


# -- the tests: fast and soak --------------------------------------------------------------

def make(examples, soak):
    mark = pytest.mark.soak if soak else (lambda f: f)
    tests = {}
    tests['text'] = mark(property_test(examples, dict(tag=ANY_TEXT, data=ANY_TEXT), soak)(
        text_round_trip))
    for data_type in ('json', 'jsonb'):
        tests[data_type] = mark(property_test(examples, dict(tag=ANY_TEXT, value=JSON_VALUES), soak)(
            lambda env, tag, value, data_type=data_type: json_round_trip(env, tag, value, data_type)))
        tests['sql_' + data_type] = mark(property_test(examples, dict(kind_text=json_text_strategy()),
                                                       soak)(
            lambda env, kind_text, data_type=data_type: sql_json_text(env, kind_text, data_type)))
    tests['names'] = mark(property_test(examples, dict(
        name=st.one_of(ANY_TEXT, st.text(st.sampled_from('aé.";-- \'\\$%日'), min_size=60,
                                          max_size=70))), soak)(table_name))
    return tests


_fast = make(EXAMPLES, soak=False)
_soak = make(SOAK_EXAMPLES, soak=True)

# One name a test, fast and soak alike: repeated on purpose, so that pytest (and
# a reader, and -k) sees each test under its own name.
test_client_tags_and_text_data = _fast['text']
test_client_json_values_json_queue = _fast['json']
test_client_json_values_jsonb_queue = _fast['jsonb']
test_sql_any_text_as_json = _fast['sql_json']
test_sql_any_text_as_jsonb = _fast['sql_jsonb']
test_client_table_names = _fast['names']
test_soak_client_tags_and_text_data = _soak['text']
test_soak_client_json_values_json_queue = _soak['json']
test_soak_client_json_values_jsonb_queue = _soak['jsonb']
test_soak_sql_any_text_as_json = _soak['sql_json']
test_soak_sql_any_text_as_jsonb = _soak['sql_jsonb']
test_soak_client_table_names = _soak['names']


def _any_argument_test(examples, soak):
    @hypothesis_settings(examples, soak)
    @given(data=st.data())
    def test(env, targets, figures, data):
        target = data.draw(st.sampled_from(targets), label='argument')
        text = data.draw(any_argument_strategy(), label='text')
        figures.add('hypothesis_inputs')
        any_argument(env, target, text)
    return test


test_sql_any_text_through_any_argument = _any_argument_test(EXAMPLES * 2, soak=False)
test_soak_sql_any_text_through_any_argument = pytest.mark.soak(
    _any_argument_test(SOAK_EXAMPLES * 2, soak=True))


# -- the inputs the fast run must always try (it is derandomized) --------------------------

ODD = ['', '\x00', 'a\x00b', '\ud800', 'x\udfff', '\U0001F600', '\u2028', '"', "'", '.', ';',
       'a.b', '"a"."b"', 'a; DROP TABLE canary; --', ' ', '\\', '$1', '%s', 'é' * 32, 'x' * 63,
       'x' * 64, 'MQ', 'pg_class', 'canary']


@pytest.mark.parametrize('odd', ODD)
def test_odd_strings_everywhere(env, figures, odd):
    figures.add('hostile_inputs', 4)
    text_round_trip(env, odd, 'data')
    text_round_trip(env, 'tag', odd)
    json_round_trip(env, odd, {odd: [odd]}, 'json')
    table_name(env, odd)


# -- huge, deep and long --------------------------------------------------------------------

def test_huge_payload_round_trips(env, figures):
    big = q4pg.QueueManager(env.dsn, 'big', 'text', 40_000_000, schema='hq')
    with big:
        big.create_table()
        data = ''.join(chr(0x4e00 + (i * 7919) % 20000) for i in range(4096)) * 8000  # 32 M chars
        id_ = big.enqueue('t', data)
        with big.dequeue_message('t') as m:
            assert m.id == id_ and m.data == data
        with pytest.raises(q4pg.InvalidMessage):
            big.enqueue('t', 'x' * 40_000_001)
        assert big.count() == 0
        with env.conn.cursor() as cur:
            cur.execute("SELECT q4pg_drop_queue('hq.big')")
    figures.add('hostile_inputs', 2)


def test_one_bad_message_stores_none_of_a_batch(env):
    q = env.queues['json']
    batch = [{'n': n} for n in range(10000)]
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue_many('t', batch + ['x' * LIMIT])
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue_many('t', batch + ['\ud800'])
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue_many('t', batch + [float('nan')])
    env.unchanged()


def test_deeply_nested_json_is_refused_cleanly(env):
    q = env.queues['json']
    deep = []
    for _ in range(100000):
        deep = [deep]
    with pytest.raises(q4pg.InvalidMessage):   # too deep for json.dumps: still a q4pg error
        q.enqueue('t', deep)
    with pytest.raises(q4pg.Q4pgError):        # too deep for the server's parser
        q.enqueue('t', '[' * 50000 + ']' * 50000, raw=True)
    env.unchanged()


def incompressible(n_bytes):
    """n_bytes of UTF-8 (3-byte characters, no repeats to compress)."""
    return ''.join(chr(0x4e00 + (i * 7919) % 20000) for i in range(n_bytes // 3))


@pytest.mark.parametrize('tag', [incompressible(n) for n in (1998, 2049, 2598, 2700, 2799, 6000)]
                         + ['x' * 1_000_000], ids=lambda t: '%d bytes' % len(t.encode()))
def test_huge_tags_are_stored_or_refused_cleanly(env, tag):
    """Tags go into the (tag, id) index, whose entries have a size limit: whatever q4pg
    accepts must fit; what it refuses, it refuses with InvalidMessage about the tag."""
    q = env.queues['text']
    try:
        id_ = q.enqueue(tag, 'data')
    except q4pg.InvalidMessage as e:
        assert 'tag' in str(e)
    else:
        with q.dequeue_message(tag) as m:
            assert (m.id, m.tag) == (id_, tag)
    env.unchanged()
