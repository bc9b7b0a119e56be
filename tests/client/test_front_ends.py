"""The client suite's core cases, run on both front ends (QueueManager and
AsyncQueueManager: the same API, awaited; tests/client/fronts.py): moving a
worker from one to the other is mechanical because these pass on both."""

import datetime
import threading
import time

import pytest

import q4pg
from tests.client.fronts import make, run, session
from tests.helpers import query


@pytest.fixture(params=['sync', 'async'])
def kind(request):
    return request.param


@pytest.fixture
def front(kind, dsn):
    """go(body): runs `await body(q)` in an event loop of its own, q a queue 'mq'
    on the test's database through `kind`'s front end (made, its table created
    and closed in that loop: a pool belongs to one loop)."""
    def go(body):
        async def main():
            q = make(kind, dsn)
            try:
                await q.create_table()
                await body(q)
            finally:
                await q.close()
        run(main())
    return go


def attempts(dsn):
    return query(dsn, 'SELECT id, attempts, last_error FROM mq ORDER BY id')


def test_enqueue_count_dequeue(front):
    async def body(q):
        assert await q.count() == 0
        first = await q.enqueue('t', {'n': 1})
        await q.enqueue('t', ['two'])
        await q.enqueue('other', 'x')
        assert await q.count('t') == 2 and await q.count() == 3
        async with q.dequeue('t') as data:
            assert data == {'n': 1}
        async with q.dequeue_message('t') as msg:
            assert msg.data == ['two'] and msg.id == first + 1 and msg.tag == 't'
        async with q.dequeue('t') as data:
            assert data is None
        assert await q.count() == 1
        assert q.name == 'mq'
    front(body)


def test_an_exception_in_dequeue_counts_a_failure(front, dsn):
    async def body(q):
        id_ = await q.enqueue('t', {'n': 1})
        with pytest.raises(ZeroDivisionError):
            async with q.dequeue('t') as data:
                assert data == {'n': 1}
                1 / 0
        assert attempts(dsn) == [(id_, 1, 'ZeroDivisionError: division by zero')]
        assert await q.count('t') == 1
    front(body)


def test_dequeue_many_takes_a_batch(front):
    async def body(q):
        await q.enqueue_many('t', [1, 2, 3])
        async with q.dequeue_many('t', 2) as messages:
            assert [m.data for m in messages] == [1, 2]
        assert await q.count('t') == 1
        assert [row[2] for row in await q.list('t')] == ['3']
    front(body)


def test_other_sess_commit_and_rollback(front, kind, dsn):
    async def body(q):
        async with session(kind, dsn) as (sess, commit, rollback):
            await q.enqueue('t', 'rolled back', sess)
            assert await q.count('t') == 0
            await rollback()
            await q.enqueue('t', 'kept', sess)
            await commit()
            assert await q.count('t') == 1
            async with q.dequeue('t', sess) as data:
                assert data == 'kept'
            assert await q.count('t', sess) == 0
            await rollback()                          # the dequeue is undone with it
            assert await q.count('t') == 1
            async with q.dequeue('t', sess) as data:
                assert data == 'kept'
            await commit()
            assert await q.count('t') == 0
    front(body)


def test_listen_hands_out_what_arrives(front, dsn):
    def produce():
        time.sleep(0.3)
        with q4pg.QueueManager(dsn, 'mq') as producer:
            for n in (1, 2):
                producer.enqueue('t', n)

    async def body(q):
        await q.enqueue('t', 0)
        producer = threading.Thread(target=produce)
        producer.start()
        try:
            got = [data async for data in q.listen('t', limit=3, stop_after_idle=10)]
        finally:
            producer.join()
        assert got == [0, 1, 2]
        assert await q.count() == 0
    front(body)


def test_listen_stops_after_idle(front):
    async def body(q):
        got = [data async for data in q.listen('t', stop_after_idle=0.2)]
        assert got == []
    front(body)


def test_lease_acks_or_gives_back(front, dsn):
    async def body(q):
        first = await q.enqueue('t', 'ok')
        second = await q.enqueue('t', 'fails')
        async with q.lease('t', seconds=5) as msg:
            assert msg.id == first and msg.data == 'ok' and msg.attempts == 1
        with pytest.raises(KeyError):
            async with q.lease('t', seconds=5) as msg:
                assert msg.id == second
                raise KeyError('boom')
        assert attempts(dsn) == [(second, 1, "KeyError: 'boom'")]
        assert await q.count('t') == 1       # given back: due again at once
        async with q.lease('t', seconds=5) as msg:
            assert msg.id == second and msg.attempts == 2
        async with q.lease('t') as msg:
            assert msg is None
    front(body)


def test_leases_by_hand(front):
    async def body(q):
        id_ = await q.enqueue('t', 'x')
        [msg] = await q.take_leases('t', 5, seconds=5)
        assert msg.id == id_
        assert await q.extend(msg.id, msg.lease_token, 10) > msg.lease_until
        assert await q.nack(msg.id, msg.lease_token, retry_in=60) == 'retry'
        assert await q.count('t') == 0 and await q.count('t', ignore_scheduled=False) == 1
        assert await q.next_due('t') is not None
    front(body)


def test_schedules_and_dead_letters(front):
    async def body(q):
        await q.set_max_attempts(1)
        await q.enqueue('t', 'later', schedule=datetime.timedelta(hours=1))
        assert await q.count('t') == 0
        assert await q.count('t', ignore_scheduled=False) == 1
        await q.enqueue('t', 'now')
        with pytest.raises(RuntimeError):
            async with q.dequeue('t'):
                raise RuntimeError('no')
        [dead] = await q.dead_letters('t')
        assert dead[2] == '"now"' and dead[5] == 'RuntimeError: no'
        assert await q.replay(tag='t') == 1
        assert await q.count('t') == 1
    front(body)


def test_errors_are_q4pg_errors(front, kind, dsn):
    async def body(q):
        with pytest.raises(q4pg.InvalidArgument, match='limit'):
            await q.take_leases('t', -1)
        with pytest.raises(q4pg.InvalidMessage, match='null'):
            await q.enqueue('t', None)
        missing = make(kind, dsn, 'nosuch')
        try:
            with pytest.raises(q4pg.QueueNotFound):
                await missing.count()
        finally:
            await missing.close()
        assert await q.count() == 0
    front(body)


def test_constructor_arguments_are_checked(kind, dsn):
    with pytest.raises(q4pg.InvalidArgument, match='data_type'):
        make(kind, dsn, data_type='xml')
    with pytest.raises(q4pg.InvalidArgument, match='table_name'):
        make(kind, dsn, '')
    with pytest.raises(q4pg.InvalidDsn):
        make(kind, 'not a dsn')
