"""The async client's listen hub (q4pg/aio_hub.py): the listeners of one event
loop share one server session.  Many listeners on one tag and on many tags lose
no wake-up; a batch is spread over the idle listeners of its tag; a listener
cancelled while idle or working keeps the tag registered for the others, the
last one removes it; the session killed while they sleep is noticed, and what
was enqueued meanwhile is found; scheduled messages wake on time.  Listeners
use poll_interval=60: what arrives within WAIT seconds came by a notification
(or q4pg_next_due), not by the safety-net poll."""

import asyncio
import datetime
import gc
import random
import time

import q4pg
from tests.client.fronts import run
from tests.helpers import WAIT, query

APP = 'q4pg_hub_test'


async def manager(dsn, **kwargs):
    q = q4pg.AsyncQueueManager('%s application_name=%s' % (dsn, APP), 'mq', poll_interval=60,
                               **kwargs)
    await q.create_table()
    return q


def registrations(dsn, tag=None):
    """[(tag, pid)] of mq's registered idle listeners."""
    return query(dsn, "SELECT tag, pid FROM q4pg_idle_listeners WHERE queue = 'mq'::regclass "
                      "AND (%s::text IS NULL OR tag = %s) ORDER BY tag, pid", (tag, tag))


def listen_sessions(dsn):
    """The pids of our sessions that LISTEN (the hub's)."""
    return [r[0] for r in query(
        dsn, 'SELECT pid FROM pg_stat_activity AS a WHERE application_name = %s AND EXISTS '
             '(SELECT FROM q4pg_idle_listeners AS w WHERE w.pid = a.pid)', (APP,))]


async def until(predicate, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, 'timed out waiting for %s' % what
        await asyncio.sleep(0.05)


def test_many_listeners_on_one_and_many_tags_lose_no_wake_up_in_one_session(dsn):
    """200 listeners on 40 tags (5 each) and 20 on one tag; producers enqueue
    one message at a time and in batches, at random moments, for 12 rounds,
    while listeners go busy, go idle and register: every message is taken,
    none waits for the safety net, and one server session LISTENs for all."""
    tags = ['t%d' % n for n in range(40)]
    rounds = 12

    async def body():
        q = await manager(dsn, max_connections=20)
        got, listeners = [], []

        async def listen(tag):
            async with q.listener(tag, stop_after_idle=WAIT) as jobs:
                listeners.append(jobs)
                async for data in jobs:
                    got.append((tag, data))
                    if random.random() < 0.3:
                        await asyncio.sleep(random.random() / 50)     # busy a while

        tasks = [asyncio.ensure_future(listen(tag)) for tag in tags for _ in range(5)]
        tasks += [asyncio.ensure_future(listen('shared')) for _ in range(20)]
        rnd = random.Random(20)
        sent = []
        for round_ in range(rounds):
            for tag in rnd.sample(tags, 10):
                await q.enqueue(tag, round_)
                sent.append((tag, round_))
                await asyncio.sleep(rnd.random() / 200)
            batch = rnd.randrange(1, 30)
            await q.enqueue_many('shared', [round_] * batch)
            sent += [('shared', round_)] * batch
            await asyncio.sleep(rnd.random() / 20)
            if round_ == 2:
                assert len(listen_sessions(dsn)) == 1
        await until(lambda: len(got) >= len(sent), 'every message to be taken')
        assert sorted(got) == sorted(sent)
        for jobs in listeners:
            jobs.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert await q.count() == 0
        await until(lambda: not registrations(dsn), 'the last listener to unregister')
        await q.close()
    run(body())


def test_listeners_going_idle_never_miss_a_producer(dsn):
    """30 tags with one listener each; each producer enqueues its next message
    0-6 ms after the last was taken, while its listener goes idle (looks,
    registers, looks a last time): 900 races between a commit and a listener
    about to sleep, each of which would wait for the minute-long safety net if
    its wake-up were lost."""
    tags = ['r%d' % n for n in range(30)]
    per_tag = 30

    async def body():
        q = await manager(dsn, max_connections=20)
        producer = await manager(dsn, max_connections=10)
        got = {tag: asyncio.Queue() for tag in tags}

        async def listen(tag):
            async for data in q.listen(tag, limit=per_tag):
                got[tag].put_nowait(data)

        async def produce(tag, rnd):
            for n in range(per_tag):
                await producer.enqueue(tag, n)
                assert await asyncio.wait_for(got[tag].get(), WAIT) == n
                await asyncio.sleep(rnd.random() * 0.006)

        tasks = [asyncio.ensure_future(listen(tag)) for tag in tags]
        await until(lambda: len(registrations(dsn)) == len(tags), 'the listeners to go idle')
        await asyncio.gather(*[produce(tag, random.Random(n)) for n, tag in enumerate(tags)])
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        await q.close()
        await producer.close()
    run(body())


def test_a_batch_is_spread_over_the_idle_listeners_of_its_tag(dsn):
    """Five listeners hold their message until all five hold one: a batch of
    five, which wakes the session once, is taken by five tasks at once."""
    async def body():
        q = await manager(dsn)
        holding, all_hold = [], asyncio.Event()

        async def listen():
            async with q.listener('b', limit=1) as jobs:
                async for data in jobs:
                    holding.append(data)
                    if len(holding) == 5:
                        all_hold.set()
                    await all_hold.wait()

        tasks = [asyncio.ensure_future(listen()) for _ in range(5)]
        await until(lambda: registrations(dsn, 'b'), 'the listeners to go idle')
        await asyncio.sleep(0.3)
        await q.enqueue_many('b', list(range(5)))
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert sorted(holding) == list(range(5))
        assert await q.count() == 0
        await q.close()
    run(body())


def test_cancelled_listeners_keep_the_tag_registered_until_the_last(dsn):
    async def body():
        q = await manager(dsn)
        got = []
        working = asyncio.Event()

        async def listen(n):
            async with q.listener('c') as jobs:
                async for data in jobs:
                    got.append((n, data))
                    working.set()
                    await asyncio.sleep(3600)

        tasks = [asyncio.ensure_future(listen(n)) for n in range(3)]
        [(_, pid)] = await until(lambda: registrations(dsn, 'c'), 'the listeners to go idle')
        await asyncio.sleep(0.3)
        tasks[0].cancel()                                    # cancelled while idle
        await asyncio.gather(tasks[0], return_exceptions=True)
        assert registrations(dsn, 'c') == [('c', pid)]       # kept for the two others
        await q.enqueue('c', 'x')
        await asyncio.wait_for(working.wait(), WAIT)
        [(n, _)] = got
        await asyncio.sleep(0.3)
        assert registrations(dsn, 'c') == [('c', pid)]       # the third waits still
        tasks[n].cancel()                                    # cancelled while working
        await asyncio.gather(tasks[n], return_exceptions=True)
        assert query(dsn, 'SELECT attempts FROM mq') == [(0,)]   # given back, uncounted
        assert registrations(dsn, 'c') == [('c', pid)]
        [last] = [t for t in tasks if not t.done()]
        last.cancel()
        await asyncio.gather(last, return_exceptions=True)
        assert registrations(dsn, 'c') == []                 # removed with the last
        await until(lambda: not query(dsn, 'SELECT pid FROM pg_stat_activity WHERE pid = %s',
                                      (pid,)), 'the session to close with its last listener')
        await q.close()
    run(body())


def test_a_listener_dropped_without_closing_unregisters_when_collected(dsn):
    """A bare listener() iterated by a task that dies (here: cancelled) is never
    closed: once it is garbage-collected, its place and the tag's registration
    go, and with them the session."""
    async def body():
        q = await manager(dsn)
        jobs = q.listener('d')

        async def listen():
            async for _ in jobs:
                pass

        task = asyncio.ensure_future(listen())
        [(_, pid)] = await until(lambda: registrations(dsn, 'd'), 'the listener to go idle')
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert registrations(dsn, 'd') == [('d', pid)]      # not closed: still there
        del jobs, task, listen
        gc.collect()
        await until(lambda: not registrations(dsn, 'd'), 'the registration to go')
        await until(lambda: not query(dsn, 'SELECT pid FROM pg_stat_activity WHERE pid = %s',
                                      (pid,)), 'the session to close')
        await q.close()
    run(body())


def test_a_busy_tag_is_unregistered_and_registered_again(dsn):
    """The only listener of a tag that takes a message unregisters the tag
    (producers then choose another session); idle again, registers it again."""
    async def body():
        q = await manager(dsn)
        release = asyncio.Event()

        async def listen():
            async for _ in q.listen('u', limit=2):
                await release.wait()

        task = asyncio.ensure_future(listen())
        await until(lambda: registrations(dsn, 'u'), 'the listener to go idle')
        await q.enqueue('u', 1)
        await until(lambda: not registrations(dsn, 'u'), 'the busy listener to unregister')
        release.set()
        await until(lambda: registrations(dsn, 'u'), 'the listener to go idle again')
        await q.enqueue('u', 2)
        await asyncio.wait_for(task, WAIT)
        assert registrations(dsn, 'u') == []
        await q.close()
    run(body())


def test_the_session_killed_while_listeners_sleep_they_find_what_came_meanwhile(dsn):
    tags = ['k%d' % n for n in range(10)]

    async def body():
        q = await manager(dsn)
        producer = await manager(dsn)
        got, listeners = [], []

        async def listen(tag):
            async with q.listener(tag) as jobs:
                listeners.append(jobs)
                async for data in jobs:
                    got.append((tag, data))

        tasks = [asyncio.ensure_future(listen(tag)) for tag in tags for _ in range(2)]
        await until(lambda: len(registrations(dsn)) == len(tags), 'the listeners to go idle')
        [pid] = {p for _, p in registrations(dsn)}
        await asyncio.sleep(0.3)
        assert query(dsn, 'SELECT pg_terminate_backend(%s, 10000)', (pid,)) == [(True,)]
        for tag in tags:                                 # while the session is down
            await producer.enqueue(tag, 'meanwhile')
        await until(lambda: len(got) == len(tags), 'what came meanwhile to be taken')
        [new] = await until(lambda: listen_sessions(dsn), 'a new session')
        assert new != pid
        await until(lambda: len(registrations(dsn)) == len(tags), 'the listeners to go idle')
        for tag in tags:                                 # and they are woken again
            await producer.enqueue(tag, 'after')
        await until(lambda: len(got) == 2 * len(tags), 'the listeners to be woken again')
        for jobs in listeners:
            jobs.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert await q.count() == 0
        assert sorted(got) == sorted([(t, 'meanwhile') for t in tags] + [(t, 'after') for t in tags])
        await q.close()
        await producer.close()
    run(body())


def test_scheduled_messages_wake_their_listeners_on_time(dsn):
    async def body():
        q = await manager(dsn)
        await q.enqueue('s1', 'later', schedule=datetime.timedelta(seconds=1.5))
        got = {}
        started = time.monotonic()

        async def listen(tag):
            async for data in q.listen(tag, limit=1, stop_after_idle=WAIT):
                got[tag] = (data, time.monotonic() - started)

        tasks = [asyncio.ensure_future(listen(tag)) for tag in ('s1', 's2', 's3')]
        await until(lambda: len(registrations(dsn)) == 3, 'the listeners to go idle')
        await q.enqueue('s2', 'soon', schedule=1.0)      # its NOTIFY wakes a listener of s2,
        sent = time.monotonic() - started                # which learns the new due time
        await q.enqueue('s3', 'now')
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert got['s1'][0] == 'later' and 1.4 <= got['s1'][1] < WAIT
        assert got['s2'][0] == 'soon' and sent + 0.9 <= got['s2'][1] < WAIT
        assert got['s3'][0] == 'now'
        await q.close()
    run(body())
