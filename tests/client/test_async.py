"""AsyncQueueManager's own cases: cancellation (task.cancel(), timeouts) at the
await points of the lifecycle, a worker process killed or stopped by SIGTERM,
and many listeners in one event loop with no lost wake-up.  What both front
ends share is tests/client/test_front_ends.py's."""

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap

import psycopg
import pytest

import q4pg
from tests.client.fronts import run
from tests.helpers import WAIT, query, wait_until


def rows(dsn):
    """(id, attempts, last_error, leased) of every message of mq."""
    return query(dsn, 'SELECT id, attempts, last_error, lease_token IS NOT NULL FROM mq '
                      'ORDER BY id')


def in_transaction(dsn):
    """The connections of the test's database left in a transaction (but ours)."""
    return query(dsn, "SELECT pid, state FROM pg_stat_activity WHERE datname = "
                      "current_database() AND pid <> pg_backend_pid() "
                      "AND state LIKE 'idle in transaction%%'")


async def manager(dsn, **kwargs):
    q = q4pg.AsyncQueueManager(dsn, 'mq', **kwargs)
    await q.create_table()
    return q


async def locked(dsn):
    """A connection holding mq's ACCESS EXCLUSIVE lock: every call on it waits."""
    conn = await psycopg.AsyncConnection.connect(dsn)
    await conn.execute('LOCK TABLE mq IN ACCESS EXCLUSIVE MODE')
    return conn


def test_cancelled_while_dequeue_waits_takes_nothing(dsn):
    async def body():
        q = await manager(dsn)
        id_ = await q.enqueue('t', 1)
        lock = await locked(dsn)
        entered = []

        async def take():
            async with q.dequeue('t') as data:
                entered.append(data)

        task = asyncio.ensure_future(take())
        await asyncio.sleep(0.3)                 # its statement waits for the lock
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await lock.rollback()
        await lock.close()
        assert entered == [] and rows(dsn) == [(id_, 0, None, False)]
        assert in_transaction(dsn) == []
        async with q.dequeue('t') as data:      # the pool is sound
            assert data == 1
        await q.close()
    run(body())


def test_a_timeout_inside_dequeue_gives_the_message_back_uncounted(dsn):
    async def body():
        q = await manager(dsn, max_connections=1)
        id_ = await q.enqueue('t', 1)

        async def slow():
            async with q.dequeue('t') as data:
                assert data == 1
                await asyncio.sleep(10)

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow(), 0.3)
        assert rows(dsn) == [(id_, 0, None, False)]
        assert in_transaction(dsn) == []
        assert await q.count('t') == 1          # the only pooled connection is back, idle
        await q.close()
    run(body())


def test_cancel_inside_lease_nacks_it_at_once(dsn):
    async def body():
        q = await manager(dsn)
        id_ = await q.enqueue('t', 1)
        started = asyncio.Event()

        async def work():
            async with q.lease('t', seconds=0.6) as msg:
                assert msg.id == id_
                started.set()
                await asyncio.sleep(10)

        task = asyncio.ensure_future(work())
        await started.wait()
        await asyncio.sleep(0.5)                 # a heartbeat has extended it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert rows(dsn) == [(id_, 1, 'CancelledError', False)]
        assert await q.count('t') == 1           # due again now, not when the lease ends
        await q.close()
    run(body())


def test_cancelled_while_lease_waits_leases_nothing(dsn):
    async def body():
        q = await manager(dsn)
        id_ = await q.enqueue('t', 1)
        lock = await locked(dsn)

        async def work():
            async with q.lease('t'):
                pass

        task = asyncio.ensure_future(work())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await lock.rollback()
        await lock.close()
        assert rows(dsn) == [(id_, 0, None, False)]
        await q.close()
    run(body())


def test_cancel_inside_a_listener_block_gives_the_item_back_uncounted(dsn):
    async def body():
        q = await manager(dsn)
        id_ = await q.enqueue('t', 1)
        got = asyncio.Event()

        async def worker():
            async with q.listener('t') as jobs:
                async for job in jobs:
                    got.set()
                    await asyncio.sleep(10)

        task = asyncio.ensure_future(worker())
        await got.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert rows(dsn) == [(id_, 0, None, False)]
        assert in_transaction(dsn) == []
        await q.close()
    run(body())


@pytest.mark.parametrize('where', ['dequeue', 'lease'])
def test_cancellation_at_any_point_loses_and_doubles_nothing(dsn, where):
    """Cancels a consumer after every delay from 0 to 40 ms, in 1 ms steps, which
    lands in each await of the lifecycle (getting a connection, the take, the
    work, the commit or ack).  After each: the message was either worked on and
    removed, or is back (a dequeue: uncounted), never removed unworked, never
    left in a transaction; a lease cut before it reached the client expires."""
    async def body():
        q = await manager(dsn, max_connections=2)
        for step in range(40):
            id_ = await q.enqueue('t', step)
            done = []

            async def consume():
                if where == 'dequeue':
                    async with q.dequeue('t') as data:
                        await asyncio.sleep(0.005)
                        done.append(data)
                else:
                    async with q.lease('t', seconds=0.3) as msg:
                        await asyncio.sleep(0.005)
                        done.append(msg.data)

            task = asyncio.ensure_future(consume())
            await asyncio.sleep(step / 1000)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            left = [row for row in rows(dsn) if row[0] == id_]
            assert in_transaction(dsn) == []
            if not left:
                assert done == [step], 'message %d removed unworked' % id_
            elif where == 'dequeue':
                assert left == [(id_, 0, None, False)]
            else:
                assert left[0][1] <= 1
            await q.cancel(id_) if left and not left[0][3] else None
            if left and left[0][3]:             # leased, the client never knew: it expires
                await asyncio.sleep(0.35)
                assert await q.cancel(id_)
        assert await q.count() == 0
        await q.close()
    run(body())


WORKER = textwrap.dedent('''
    import asyncio, signal, sys
    import q4pg

    async def main(dsn, how):
        q = q4pg.AsyncQueueManager(dsn, 'mq')
        if how == 'hold':
            async with q.dequeue('t') as data:
                print('holding', data, flush=True)
                await asyncio.sleep(60)
        else:
            async with q.listener('t', stop_after_idle=30) as jobs:
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, jobs.stop)
                async for job in jobs:
                    print('start', job, flush=True)
                    await asyncio.sleep(1)
                    print('done', job, flush=True)
        await q.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
''')


def _worker(dsn, how):
    return subprocess.Popen([sys.executable, '-c', WORKER, dsn, how], stdout=subprocess.PIPE,
                            text=True, cwd=os.path.dirname(os.path.dirname(q4pg.__file__)))


def test_a_killed_worker_gives_its_message_back_uncounted(dsn):
    async def body():
        q = await manager(dsn)
        id_ = await q.enqueue('t', 'job')
        await q.close()
        return id_
    id_ = run(body())
    worker = _worker(dsn, 'hold')
    try:
        assert worker.stdout.readline().split() == ['holding', 'job']
    finally:
        worker.kill()
        worker.wait()
    wait_until(lambda: rows(dsn) == [(id_, 0, None, False)], what='the message back')


def test_sigterm_finishes_the_job_at_hand_then_exits(dsn):
    async def body():
        q = await manager(dsn)
        ids = await q.enqueue_many('t', ['first', 'second'])
        await q.close()
        return ids
    first, second = run(body())
    worker = _worker(dsn, 'listen')
    try:
        assert worker.stdout.readline().split() == ['start', 'first']
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=WAIT)
    finally:
        worker.kill()
    assert worker.returncode == 0
    assert out.split() == ['done', 'first']
    assert rows(dsn) == [(second, 0, None, False)]


def test_many_listeners_in_one_loop_miss_no_wake_up(dsn):
    """50 listeners on 50 tags, and 10 more sharing one tag, in one event loop; a
    poll_interval of a minute, so that only notifications can wake them in time.
    Producers enqueue at random moments while they register and sleep."""
    tags = ['t%d' % n for n in range(50)]

    async def body():
        q = await manager(dsn, poll_interval=60, max_connections=20)
        got = {tag: [] for tag in tags + ['shared']}

        async def listen(tag, limit):
            async for data in q.listen(tag, limit=limit, stop_after_idle=WAIT):
                got[tag].append(data)

        async def shared(n):
            async with q.listener('shared', stop_after_idle=3) as jobs:
                async for data in jobs:
                    got['shared'].append(data)

        tasks = [asyncio.ensure_future(listen(tag, 3)) for tag in tags]
        tasks += [asyncio.ensure_future(shared(n)) for n in range(10)]
        rnd = random.Random(18)
        for round_ in range(3):
            for tag in rnd.sample(tags, len(tags)):
                await q.enqueue(tag, round_)
                await asyncio.sleep(rnd.random() / 100)
            await q.enqueue_many('shared', [(round_, n) for n in range(10)])
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT * 2)
        assert all(got[tag] == [0, 1, 2] for tag in tags), got
        assert sorted(got['shared']) == sorted([r, n] for r in range(3) for n in range(10))
        assert await q.count() == 0
        await q.close()
    run(body())


def test_sqlalchemy_async_session_and_connection(dsn):
    sa_async = pytest.importorskip('sqlalchemy.ext.asyncio')
    import psycopg2.extensions

    async def body():
        engine = sa_async.create_async_engine(
            'postgresql+psycopg://', connect_args=psycopg2.extensions.parse_dsn(dsn))
        q = await manager(dsn)
        try:
            async with sa_async.AsyncSession(engine) as session:
                await q.enqueue('t', 'rolled back', session)
                assert await q.count('t', session) == 1
                await session.rollback()
                assert await q.count() == 0
                await q.enqueue('t', 'committed', session)
                await session.commit()
            async with engine.connect() as connection:
                async with q.dequeue('t', connection) as data:
                    assert data == 'committed'
                assert await q.count('t') == 1           # not committed yet
                await connection.commit()
            assert await q.count() == 0
        finally:
            await q.close()
            await engine.dispose()
    run(body())


def test_a_listener_whose_connection_dies_listens_again(dsn):
    async def body():
        q = await manager(dsn, poll_interval=60)
        got = []

        async def listen():
            async for data in q.listen('t', limit=2, stop_after_idle=WAIT):
                got.append(data)

        task = asyncio.ensure_future(listen())
        await q.enqueue('t', 1)
        while not got:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)                 # idle again, registered, asleep
        killed = query(dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                            "datname = current_database() AND query LIKE 'SELECT q4pg_go_idle%%'")
        assert killed == [(True,)]
        await asyncio.sleep(0.5)                 # reconnects (backoff 0.1 s), registers again
        await q.enqueue('t', 2)
        await asyncio.wait_for(task, WAIT)
        assert got == [1, 2]
        await q.close()
    run(body())
