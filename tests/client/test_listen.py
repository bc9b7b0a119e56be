"""listen() and listener(): wake-ups, acknowledgement, stopping, the LISTEN connection, reconnects.

Listeners here use poll_interval=60, so a message that arrives within WAIT
seconds was delivered by a notification, not by the safety-net poll.
"""

import logging
import queue
import threading
import time

import pytest

import q4pg
from tests.helpers import WAIT, is_enqueue, is_listen_connection, wait_until

APP = 'q4pg_listen_test'  # application_name of the listener's connections


class Boom(Exception):
    pass


Q_OPTIONS = dict(app=APP, poll_interval=60)   # the queue of the q fixture (tests/conftest.py)


def backends(conn):
    """The listener's backends: [(pid, state, xact_start, backend_xid, query), ...]."""
    with conn.cursor() as cur:
        cur.execute('SELECT pid, state, xact_start, backend_xid::text, query '
                    'FROM pg_stat_activity WHERE application_name = %s ORDER BY pid', (APP,))
        return cur.fetchall()


def listen_backends(conn):
    return [b for b in backends(conn) if is_listen_connection(b[4])]


def worker_backends(conn):
    return [b for b in backends(conn) if not is_listen_connection(b[4])]


def registered(conn, tag):
    """The pids that told q4pg_go_idle they wait for `tag`."""
    with conn.cursor() as cur:
        cur.execute('SELECT pid FROM q4pg_idle_listeners WHERE tag = %s ORDER BY pid', (tag,))
        return [row[0] for row in cur.fetchall()]


def terminate(conn, pids):
    """Terminates the backends and waits until they have exited (a connection
    that dies at the very moment a one-statement enqueue is sent on it is
    another case: its outcome is unknown, ConnectionLost says so)."""
    with conn.cursor() as cur:
        for pid in pids:
            cur.execute('SELECT pg_terminate_backend(%s, %s)', (pid, WAIT * 1000))
            assert cur.fetchone() == (True,)


def run_within(fn, timeout=WAIT):
    """Runs fn() in a thread: its result (or exception); fails if it takes over `timeout` s."""
    outcome = []

    def run():
        try:
            outcome.append((True, fn()))
        except BaseException as e:  # noqa: BLE001 (raised again below)
            outcome.append((False, e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), 'did not return within %s s' % timeout
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


class Consumer:
    """listener(tag) in a thread; every item goes to self.items; a 'stop' item ends it."""

    def __init__(self, q, tag, body=None, **kwargs):
        self.items = queue.Queue()
        self.errors = []
        self._q, self._tag, self._body, self._kwargs = q, tag, body, kwargs
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            with self._q.listener(self._tag, **self._kwargs) as listening:
                for item in listening:
                    self.items.put(item)
                    if item == 'stop':
                        return      # leaves the with block normally: acknowledged
                    if self._body is not None:
                        self._body(item)
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.errors.append(e)

    def next(self, timeout=WAIT):
        return self.items.get(timeout=timeout)

    def stop(self, q):
        q.enqueue(self._tag, 'stop')
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        assert self.errors == []


# The LISTEN connection's last statements before a sleep: the registration, or
# (woken for nothing, still registered) when the next message comes due.
REGISTERED = 'SELECT q4pg_go_idle('
ASKED_DUE = 'SELECT pg_catalog.date_part('


def asleep(conn):
    """True when the listener has registered (q4pg_go_idle) and its worker is not dequeueing now.

    A pooled connection's last statement is a dequeue's COMMIT or ROLLBACK, or
    an enqueue of the test's (one autocommit statement).
    """
    listening = listen_backends(conn)
    return (len(listening) == 1 and listening[0][1] == 'idle'
            and listening[0][4].startswith((REGISTERED, ASKED_DUE))
            and all(b[1] == 'idle' and (b[4] in ('COMMIT', 'ROLLBACK')
                                        or is_enqueue(b[4]))
                    for b in worker_backends(conn)))


def test_woken_by_a_psql_producer(q, conn, psql):
    channel = q.channel('tag')

    def produce():
        assert wait_until(lambda: asleep(conn))
        time.sleep(0.2)             # let it reach select(): then only a NOTIFY wakes it in time
        assert registered(conn, 'tag') == [listen_backends(conn)[0][0]]
        psql('''SELECT q4pg_enqueue('mq', 'tag', '{"x":1}')''')

    producer = threading.Thread(target=produce)
    producer.start()
    got = run_within(lambda: list(q.listen('tag', stop_after_idle=WAIT, limit=1)))
    producer.join(WAIT)
    assert got == [{'x': 1}]
    assert q.count() == 0


def test_waiting_messages_come_first_oldest_first(q):
    ids = q.enqueue_many('tag', [1, 2, 3])
    got = run_within(lambda: [m.id for m in q.listen('tag', stop_after_idle=0.2, full=True)])
    assert got == ids
    assert q.count() == 0


def test_exception_in_the_loop_body_leaves_the_message(q):
    first = q.enqueue('tag', {'n': 1})
    q.enqueue('tag', {'n': 2})
    seen = []
    with pytest.raises(Boom):
        for message in q.listen('tag', stop_after_idle=WAIT, full=True):
            seen.append(message.id)
            raise Boom
    assert seen == [first]
    assert q.count('tag') == 2
    with q.dequeue_message('tag') as message:   # back, and free: not held any more
        assert message.id == first


def test_acknowledged_when_the_next_item_is_asked_for(q):
    first, second = q.enqueue_many('tag', ['a', 'b'])
    listening = q.listen('tag', stop_after_idle=WAIT, full=True)
    assert next(listening).id == first
    assert q.count('tag') == 2                  # held, not removed yet
    assert next(listening).id == second
    assert [row[0] for row in q.list('tag')] == [second]   # the first one is gone
    listening.close()                           # closing gives the second back
    assert [row[0] for row in q.list('tag')] == [second]
    with q.dequeue_message('tag') as message:
        assert message.id == second


def test_break_leaves_the_current_message(q):
    first = q.enqueue('tag', 'a')
    q.enqueue('tag', 'b')
    for item in q.listen('tag', stop_after_idle=WAIT):
        assert item == 'a'
        break
    assert q.count('tag') == 2
    assert q.list('tag')[0][0] == first
    assert q.dequeue_immediate('tag') == 'a'


def test_limit(q):
    q.enqueue_many('tag', list(range(5)))
    assert run_within(lambda: list(q.listen('tag', limit=3))) == [0, 1, 2]
    assert [row[2] for row in q.list('tag')] == ['3', '4']
    assert run_within(lambda: list(q.listen('tag', limit=0))) == []
    assert q.count('tag') == 2


def test_timeout(q):
    assert run_within(lambda: list(q.listen('tag', stop_after_idle=0.3))) == []
    assert run_within(lambda: list(q.listen('tag', stop_after_idle=0))) == []
    q.enqueue_many('tag', ['a', 'b'])
    assert run_within(lambda: list(q.listen('tag', stop_after_idle=0.3))) == ['a', 'b']
    assert q.count() == 0


def test_timeout_counts_from_the_last_message(q):
    """timeout is the time without a message, not the total time."""
    def produce():
        for n in range(3):
            time.sleep(0.4)
            q.enqueue('tag', n)

    producer = threading.Thread(target=produce)
    producer.start()
    got = run_within(lambda: list(q.listen('tag', stop_after_idle=3)))
    producer.join()
    assert got == [0, 1, 2]


def test_other_tags_and_queues_are_not_taken(q, dsn):
    other = q4pg.QueueManager(dsn, 'other')
    other.create_table()
    other.enqueue('tag', 'other queue')
    q.enqueue('other-tag', 'other tag')
    assert run_within(lambda: list(q.listen('tag', stop_after_idle=0.3))) == []
    assert q.count('other-tag') == 1
    assert other.count('tag') == 1
    other.close()


def test_listener_acknowledges_on_break(q):
    first, second = q.enqueue_many('tag', ['a', 'b'])
    with q.listener('tag', stop_after_idle=WAIT, full=True) as listening:
        for message in listening:
            assert message.id == first
            break
    assert [row[0] for row in q.list('tag')] == [second]


def test_listener_gives_back_on_exception(q):
    first, second = q.enqueue_many('tag', ['a', 'b'])
    with pytest.raises(Boom):
        with q.listener('tag', stop_after_idle=WAIT) as listening:
            for item in listening:
                assert item == 'a'
                raise Boom
    assert [row[0] for row in q.list('tag')] == [first, second]
    assert q.dequeue_immediate('tag') == 'a'


def test_listener_stops_on_limit_and_timeout(q):
    q.enqueue_many('tag', ['a', 'b', 'c'])
    with q.listener('tag', limit=2) as listening:
        assert list(listening) == ['a', 'b']
    with q.listener('tag', stop_after_idle=0.3) as listening:
        assert list(listening) == ['c']
    assert q.count() == 0


def test_stop_acknowledges_the_current_item_and_ends(q):
    for n in (1, 2):
        q.enqueue('tag', n)
    got = []
    with q.listener('tag') as items:
        for data in items:
            got.append(data)
            items.stop()
    assert got == [1]
    assert [row[2] for row in q.list('tag')] == ['2']


def test_stop_from_another_thread_wakes_a_sleeping_listener(q, conn):
    stopper = threading.Timer(0.5, lambda: wait_until(lambda: asleep(conn)) and items.stop())
    items = q.listener('tag')
    stopper.start()
    started = time.monotonic()
    with items:
        assert run_within(lambda: list(items)) == []
    assert time.monotonic() - started < WAIT     # not the 60 s poll
    stopper.join()


def test_listen_connection_is_never_in_a_transaction(q, conn):
    samples = []

    def body(item):
        # While an item is held: the worker is in a transaction, the LISTEN connection is not.
        listening = listen_backends(conn)
        assert len(listening) == 1
        samples.append(listening[0])
        assert any(b[1] == 'idle in transaction' for b in worker_backends(conn))

    consumer = Consumer(q, 'tag', body=body, stop_after_idle=WAIT)
    assert wait_until(lambda: len(listen_backends(conn)) == 1)
    for n in range(5):
        assert wait_until(lambda: asleep(conn))
        samples.append(listen_backends(conn)[0])   # while it sleeps
        q.enqueue('tag', n)
        assert consumer.next() == n
    consumer.stop(q)
    assert consumer.errors == []
    assert len(samples) == 10
    for pid, state, xact_start, backend_xid, query in samples:
        assert pid == samples[0][0]
        assert state == 'idle'
        assert xact_start is None
        assert backend_xid is None
        assert is_listen_connection(query)


def test_woken_for_nothing_it_sleeps_again_still_registered(q, conn):
    """Woken by a message it cannot take (one scheduled for later), a listener
    on its own channel asks q4pg_go_idle again (it may have been handed a
    wake-up meant for a listener that left) and when the next message comes
    due, in one round trip, and sleeps again: it stayed registered (its row is
    the same), and the next producer wakes it."""
    consumer = Consumer(q, 'tag', stop_after_idle=3 * WAIT)
    assert wait_until(lambda: asleep(conn) and listen_backends(conn)[0][4].startswith(REGISTERED))
    pid = listen_backends(conn)[0][0]

    def registration():
        with conn.cursor() as cur:
            cur.execute('SELECT since, own_channel FROM q4pg_idle_listeners WHERE pid = %s', (pid,))
            return cur.fetchall()

    def last_query():
        with conn.cursor() as cur:
            cur.execute('SELECT state_change, query FROM pg_stat_activity WHERE pid = %s', (pid,))
            return cur.fetchone()

    before = registration()
    assert len(before) == 1 and before[0][1] is True
    slept_at = last_query()[0]
    q.enqueue('tag', 'later', schedule=3600)      # notifies: the listener wakes, finds none due
    assert wait_until(lambda: asleep(conn) and last_query()[0] > slept_at)
    assert 'q4pg_go_idle(' in last_query()[1] and 'q4pg_next_due(' in last_query()[1]
    assert registration() == before
    q.enqueue('tag', 'now')
    assert consumer.next() == 'now'
    consumer.stop(q)


def test_survives_termination_of_its_backends(q, conn, caplog):
    caplog.set_level(logging.WARNING, logger='q4pg')
    held = threading.Event()
    release = threading.Event()

    def body(item):
        if item == 'hold':
            held.set()
            assert release.wait(WAIT)

    consumer = Consumer(q, 'tag', body=body, stop_after_idle=3 * WAIT)
    assert wait_until(lambda: len(listen_backends(conn)) == 1)
    q.enqueue('tag', 'first')
    assert consumer.next() == 'first'

    # The LISTEN backend dies: the listener LISTENs again on a new one.
    old = listen_backends(conn)[0][0]
    terminate(conn, [old])
    assert wait_until(lambda: [b[0] for b in listen_backends(conn)] not in ([], [old]))
    q.enqueue('tag', 'after the LISTEN backend died')
    assert consumer.next() == 'after the LISTEN backend died'

    # The idle worker backends die: the next dequeue uses a new connection.
    assert wait_until(lambda: all(b[1] == 'idle' for b in worker_backends(conn)))
    terminate(conn, [b[0] for b in worker_backends(conn)])
    q.enqueue('tag', 'after the worker died')
    assert consumer.next() == 'after the worker died'

    # The worker dies while the loop body holds an item: the item comes back.
    q.enqueue('tag', 'hold')
    assert consumer.next() == 'hold'
    assert held.wait(WAIT)
    holding = [b[0] for b in worker_backends(conn) if b[1] == 'idle in transaction']
    assert len(holding) == 1
    terminate(conn, holding)
    release.set()
    assert consumer.next() == 'hold'            # delivered again: at least once
    q.enqueue('tag', 'after the holding worker died')
    assert consumer.next() == 'after the holding worker died'

    consumer.stop(q)
    assert q.count() == 0
    assert any(r.name == 'q4pg' and r.levelno == logging.WARNING
               and 'reconnecting' in r.getMessage() for r in caplog.records)


def test_listen_on_a_missing_queue_raises(dsn):
    q = q4pg.QueueManager(dsn, 'no_such_queue')
    with pytest.raises(q4pg.QueueNotFound):
        next(q.listen('tag', stop_after_idle=WAIT))


def test_listen_raises_when_the_database_cannot_be_reached_at_start(cluster):
    dsn = cluster.dsn_string(database='no_such_database_q4pg')
    q = q4pg.QueueManager(dsn, 'mq')
    with pytest.raises(q4pg.ConnectionLost):
        run_within(lambda: next(q.listen('tag', stop_after_idle=WAIT)))
