"""The QueueManager API beyond the tutorial: caller transactions, messages, batches, errors, close."""

import datetime
import re
import threading
import uuid

import psycopg2
import psycopg2.extensions
import pytest

import q4pg
from tests.helpers import WAIT, wait_until

APP = 'q4pg_client_test'  # application_name of the QueueManager's connections


Q_OPTIONS = dict(app=APP, poll_interval=60)   # the queue of the q fixture (tests/conftest.py)


@pytest.fixture
def caller(dsn):
    """The caller's own connection (not autocommit), with a business table."""
    c = psycopg2.connect(dsn)
    with c.cursor() as cur:
        cur.execute('CREATE TABLE orders (id int PRIMARY KEY)')
    c.commit()
    yield c
    c.close()


def orders(conn):
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM orders ORDER BY id')
        return [row[0] for row in cur.fetchall()]


def backends(conn, state=None):
    with conn.cursor() as cur:
        cur.execute('SELECT pid FROM pg_stat_activity WHERE application_name = %s '
                    'AND (%s IS NULL OR state = %s)', (APP, state, state))
        return [row[0] for row in cur.fetchall()]


# -- the caller's transaction ---------------------------------------------------------

def test_enqueue_in_the_callers_transaction_rolls_back_with_it(q, caller, conn):
    with caller.cursor() as cur:
        cur.execute('INSERT INTO orders VALUES (1)')
    id_ = q.enqueue('order', {'order': 1}, conn=caller)
    assert isinstance(id_, int)
    # Not committed: the caller's transaction is still open, nobody else sees the message.
    assert caller.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
    assert q.count() == 0
    assert q.dequeue_immediate('order') is None
    caller.rollback()
    assert q.count() == 0
    assert orders(conn) == []


def test_enqueue_in_the_callers_transaction_commits_with_it(q, caller, conn):
    with caller.cursor() as cur:
        cur.execute('INSERT INTO orders VALUES (2)')
    first = q.enqueue('order', {'order': 2}, conn=caller)
    more = q.enqueue_many('order', [{'order': 3}, {'order': 4}], conn=caller)
    assert more == [first + 1, first + 2]
    # A listener is not woken (and finds nothing) before the commit...
    assert list(q.listen('order', stop_after_idle=0.3)) == []
    assert q.count() == 0
    caller.commit()
    # ...and gets everything after it.
    assert orders(conn) == [2]
    assert [m.id for m in q.listen('order', stop_after_idle=0.3, full=True)] == [first] + more


def test_listener_is_woken_by_the_callers_commit(q, caller):
    got = []
    listening = threading.Thread(
        target=lambda: got.extend(q.listen('order', stop_after_idle=WAIT, limit=1)))
    listening.start()
    q.enqueue('order', 'in a transaction', conn=caller)
    threading.Timer(0.5, caller.commit).start()
    listening.join(WAIT + 1)
    assert got == ['in a transaction']


def test_errors_in_the_callers_transaction_are_wrapped(dsn, caller):
    missing = q4pg.QueueManager(dsn, 'no_such_queue')
    with pytest.raises(q4pg.QueueNotFound):
        missing.enqueue('tag', 1, conn=caller)
    caller.rollback()
    q = q4pg.QueueManager(dsn, 'mq')
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue('t\0ag', 1, conn=caller)
    # a client-side refusal sends nothing: the caller's transaction is still usable
    with caller.cursor() as cur:
        cur.execute('SELECT 1')


def test_enqueue_in_an_autocommit_callers_connection(q, conn):
    q.enqueue('tag', 'now', conn=conn)
    assert q.count('tag') == 1


# -- messages -----------------------------------------------------------------------

def test_dequeue_message(q):
    before = datetime.datetime.now(datetime.timezone.utc)
    id_ = q.enqueue('tag', {'a': [1, 'ü']})
    with q.dequeue_message('tag') as message:
        assert isinstance(message, q4pg.Message)
        assert message.id == id_
        assert message.tag == 'tag'
        assert message.data == {'a': [1, 'ü']}
        assert message.raw == '{"a":[1,"ü"]}'
        assert isinstance(message.created_at, datetime.datetime)
        assert message.created_at.tzinfo is not None
        assert abs(message.created_at - before) < datetime.timedelta(minutes=5)
        assert message == (message.id, message.tag, message.data, message.created_at, message.raw)
    with q.dequeue_message('tag') as message:
        assert message is None


def test_a_held_message_is_skipped_counted_and_not_cancellable(q):
    first, second = q.enqueue_many('tag', ['a', 'b'])
    with q.dequeue_message('tag') as held:
        assert held.id == first
        assert q.count('tag') == 2
        assert q.cancel(first) is False
        with q.dequeue_message('tag') as other:
            assert other.id == second
            with q.dequeue_message('tag') as none:
                assert none is None
    assert q.count() == 0


def test_dequeue_gives_back_on_exception_and_removes_on_exit(q):
    q.enqueue('tag', 1)
    with pytest.raises(KeyError):
        with q.dequeue('tag') as data:
            assert data == 1
            raise KeyError
    assert q.count() == 1
    with q.dequeue('tag') as data:
        assert data == 1
    assert q.count() == 0


def test_enqueue_many_and_dequeue_many(q):
    assert q.enqueue_many('tag', []) == []
    ids = q.enqueue_many('tag', ({'n': n} for n in range(5)))   # any iterable
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [row[2] for row in q.list('tag')] == ['{"n":%d}' % n for n in range(5)]

    with q.dequeue_many('tag', 0) as messages:
        assert messages == []
    with pytest.raises(ValueError):
        with q.dequeue_many('tag', 3) as messages:
            assert [m.id for m in messages] == ids[:3]
            raise ValueError
    assert q.count('tag') == 5
    with q.dequeue_many('tag', 3) as messages:
        assert [m.data for m in messages] == [{'n': 0}, {'n': 1}, {'n': 2}]
        with q.dequeue_many('tag', 10) as rest:
            assert [m.id for m in rest] == ids[3:]
    with q.dequeue_many('tag', 10) as messages:
        assert messages == []
    assert q.count() == 0


def test_raw_enqueue_is_stored_verbatim(q, dsn):
    q.enqueue('tag', '{"b": 1,  "a" : [ ]}', raw=True)
    assert q.list()[0][2] == '{"b": 1,  "a" : [ ]}'
    assert q.dequeue_immediate('tag') == {'b': 1, 'a': []}
    jq = q4pg.QueueManager(dsn, 'jq', 'jsonb')
    jq.create_table()
    jq.enqueue_many('tag', ['{"b": 1,  "a" : [ ]}', '2'], raw=True)
    with jq.dequeue_many('tag', 2) as messages:
        assert [(m.raw, m.data) for m in messages] == [('{"a": [], "b": 1}', {'b': 1, 'a': []}),
                                                       ('2', 2)]
    jq.close()


def test_list_count_cancel(q):
    ids = [q.enqueue('a', 1), q.enqueue('b', 2), q.enqueue('a', 3)]
    assert [row[:3] for row in q.list()] == [(ids[0], 'a', '1'), (ids[1], 'b', '2'),
                                             (ids[2], 'a', '3')]
    assert [row[0] for row in q.list('a')] == [ids[0], ids[2]]
    assert [row[0] for row in q.list(limit=2)] == ids[:2]
    assert [row[0] for row in q.list('a', limit=1)] == [ids[0]]
    assert (q.count(), q.count('a'), q.count('b'), q.count('c')) == (3, 2, 1, 0)
    assert q.cancel(ids[1]) is True
    assert q.cancel(ids[1]) is False
    assert q.cancel(10 ** 12) is False
    assert q.count() == 2


def test_queues_and_stats(q, dsn):
    text = q4pg.QueueManager(dsn, 'texts', 'text', 200, schema='public')
    text.create_table()
    assert q.queues() == [('mq', 'json', 1023), ('texts', 'text', 200)]
    q.enqueue_many('a', [1, 2])
    q.enqueue('b', 3)
    stats = q.stats()
    # every queue: an empty one has a row with tag None and zeros
    assert [row[:3] for row in stats] == [('mq', 'a', 2), ('mq', 'b', 1), ('texts', None, 0)]
    assert stats[2][3:] == (None, None)
    for queue, tag, waiting, oldest, age in stats[:2]:
        assert isinstance(oldest, datetime.datetime)
        assert isinstance(age, datetime.timedelta) and age >= datetime.timedelta(0)
    text.close()


def test_schema(dsn, conn):
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA app')
    in_app = q4pg.QueueManager(dsn, 'mq', schema='app')
    in_public = q4pg.QueueManager(dsn, 'mq')
    in_app.create_table()
    in_public.create_table()
    in_app.enqueue('tag', 'app')
    assert in_public.count() == 0
    assert in_app.channel('tag') != in_public.channel('tag')
    assert sorted(in_public.queues()) == [('app.mq', 'json', 1023), ('mq', 'json', 1023)]
    assert in_app.dequeue_immediate('tag') == 'app'
    in_app.close()
    in_public.close()


def test_channel(q):
    channel = q.channel('tag')
    assert re.fullmatch('q4pg_[0-9a-f]{32}', channel)
    assert q.channel('tag') == channel
    assert q.channel('other') != channel


# -- errors ---------------------------------------------------------------------------

def test_errors_carry_pgcode_and_the_servers_message(q, dsn):
    with pytest.raises(q4pg.QueueNotFound) as info:
        q4pg.QueueManager(dsn, 'nope').count()
    e = info.value
    assert isinstance(e, q4pg.Q4pgError)
    assert e.pgcode == '42P01'
    assert e.pgerror == 'relation "nope" does not exist'
    assert str(e) == e.pgerror
    assert isinstance(e.__cause__, psycopg2.Error)

    with pytest.raises(q4pg.InvalidMessage) as info:
        q.enqueue('tag', 'x' * 2000)
    e = info.value
    assert e.pgcode == '22001'
    assert e.pgerror == ('q4pg: message of 2002 characters is longer than queue public.mq '
                         'accepts (1023 characters)')

    with pytest.raises(q4pg.InvalidArgument) as info:
        q4pg.QueueManager(dsn, 'other', 'xml')
    assert info.value.pgcode is None and info.value.pgerror is None


def test_hint_is_part_of_the_message(dsn, conn):
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE plain (id int)')
    with pytest.raises(q4pg.QueueNotFound) as info:
        q4pg.QueueManager(dsn, 'plain').count()
    e = info.value
    assert e.pgerror == 'q4pg: table public.plain is not a q4pg queue'
    assert str(e).startswith(e.pgerror)
    assert 'Create one with q4pg_create_queue().' in str(e)


def test_permission_denied(cluster, dbname, q):
    role = 'q4pg_nobody_' + uuid.uuid4().hex[:8]
    admin = psycopg2.connect(cluster.dsn_string(database=dbname))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE ROLE %s LOGIN' % role)
    try:
        nobody = q4pg.QueueManager(cluster.dsn_string(database=dbname, user=role), 'mq')
        for call in (lambda: nobody.enqueue('tag', 1), nobody.count, nobody.list,
                     lambda: nobody.dequeue_immediate('tag')):
            with pytest.raises(q4pg.PermissionDenied) as info:
                call()
            assert info.value.pgcode == '42501'
            assert 'permission denied' in str(info.value)
        assert nobody.queues() == []
        nobody.create_table()               # exists with these settings: nothing to do
        other = q4pg.QueueManager(cluster.dsn_string(database=dbname, user=role), 'other')
        with pytest.raises(q4pg.PermissionDenied) as info:
            other.create_table()            # no CREATE on schema public (PostgreSQL 15)
        assert info.value.pgcode == '42501'
        nobody.close()
        other.close()
    finally:
        with admin.cursor() as cur:
            cur.execute('DROP ROLE %s' % role)
        admin.close()
    assert q.count() == 0


def test_connection_lost_when_the_database_cannot_be_reached(cluster):
    q = q4pg.QueueManager(cluster.dsn_string(database='no_such_database_q4pg'), 'mq')
    for call in (q.create_table, lambda: q.enqueue('tag', 1), q.count, q.list, q.queues,
                 lambda: q.dequeue_immediate('tag')):
        with pytest.raises(q4pg.ConnectionLost) as info:
            call()
        assert 'no_such_database_q4pg' in str(info.value)
        assert not isinstance(info.value, psycopg2.Error)


def test_connection_lost_during_commit_says_the_outcome_is_unknown(q, conn):
    q.enqueue('tag', 1)
    with pytest.raises(q4pg.ConnectionLost) as info:
        with q.dequeue('tag') as data:
            assert data == 1
            [pid] = backends(conn, 'idle in transaction')
            with conn.cursor() as cur:
                cur.execute('SELECT pg_terminate_backend(%s)', (pid,))
    assert 'unknown' in str(info.value)
    assert q.count('tag') == 1       # here the server rolled back: the message is still there
    assert q.dequeue_immediate('tag') == 1


def test_pooled_connections_that_died_idle_are_replaced(q, conn):
    q.enqueue('tag', 1)
    pids = backends(conn)
    assert pids
    with conn.cursor() as cur:
        for pid in pids:
            cur.execute('SELECT pg_terminate_backend(%s)', (pid,))
    assert q.count('tag') == 1
    assert wait_until(lambda: set(backends(conn)).isdisjoint(pids))


def test_close(dsn, conn):
    with q4pg.QueueManager(dsn + ' application_name=' + APP, 'mq') as q:
        q.create_table()
        q.enqueue('tag', 1)
        with q.dequeue('tag') as data:
            assert q.count() == 1      # two connections are in use now
        assert data == 1
        assert len(backends(conn)) == 2
    assert wait_until(lambda: backends(conn) == [])   # a backend exits soon after close
    with pytest.raises(q4pg.Q4pgError):
        q.count()


def test_close_closes_a_connection_in_use_when_it_comes_back(q, conn):
    q.enqueue('tag', 1)
    with q.dequeue('tag') as data:
        q.close()
        assert len(backends(conn)) == 1
    assert data == 1
    assert wait_until(lambda: backends(conn) == [])
    other = q4pg.QueueManager(conn.dsn, 'mq')
    assert other.count() == 0            # the dequeue still committed
    other.close()
