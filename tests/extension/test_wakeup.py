"""No lost wake-up: producers race listeners that go idle, again and again.

Producers notify only listeners registered with q4pg_register_idle; a listener that a
producer might have missed must not sleep.  If a wake-up were lost, the
listener would sleep until its safety-net poll, which these tests set to a
minute: every message must instead arrive within seconds.
"""

import os
import random
import threading
import time

import psycopg2
import pytest

import q4pg

POLL = 60.0        # the safety net; a lost wake-up would cost this much
PROMPT = 5.0       # every message must arrive well before it
# rounds of the race below: the 1.1 race it found failed about once in 40 runs
# of 300; Q4PG_STRESS_ROUNDS=20000 makes one run as long as those 40 and more
ROUNDS = int(os.environ.get('Q4PG_STRESS_ROUNDS', '1000'))


@pytest.fixture
def queue(make_queue):
    return make_queue('wake', data_type='text', poll_interval=POLL)


def _listen(queue, tag, count, received, errors):
    try:
        for message in queue.listen(tag, limit=count, stop_after_idle=PROMPT * 4, full=True):
            if message.raw == 'stop':
                break
            received.append((message.raw, time.monotonic()))
    except Exception as e:  # reported by the test
        errors.append(e)


@pytest.mark.parametrize('listeners', [1, 4])
def test_listener_going_idle_never_misses_a_producer(queue, listeners):
    """One message at a time, each sent just as a listener finishes the last
    one and goes back to sleep (random jitter of 0-3 ms around that moment);
    with several listeners, each message wakes one of them (q4pg 1.2), chosen
    while the others go idle too."""
    received, errors, sent = [], [], {}
    threads = [threading.Thread(target=_listen, args=(queue, 'race', None, received, errors))
               for _ in range(listeners)]
    for thread in threads:
        thread.start()
    rng = random.Random(7)
    for n in range(ROUNDS):
        deadline = time.monotonic() + PROMPT
        while len(received) < n and time.monotonic() < deadline:
            time.sleep(0.0002)
        assert len(received) == n, 'message %d was not received within %s s' % (n - 1, PROMPT)
        time.sleep(rng.uniform(0, 0.003))
        sent[str(n)] = time.monotonic()
        queue.enqueue('race', str(n))
    deadline = time.monotonic() + PROMPT
    while len(received) < ROUNDS and time.monotonic() < deadline:
        time.sleep(0.001)
    for thread in threads:
        queue.enqueue('race', 'stop')
    for thread in threads:
        thread.join(PROMPT * 5)
    assert not errors
    assert [raw for raw, _ in received] == [str(n) for n in range(ROUNDS)]
    worst = max(at - sent[raw] for raw, at in received)
    assert worst < PROMPT, 'a message waited %.1f s: a wake-up was lost' % worst


def test_long_producer_transaction_does_not_strand_the_listener(queue, dsn):
    """A producer that inserted before the listener registered, and commits
    later: the listener must not go to sleep for the safety-net interval."""
    received, errors = [], []
    producer = psycopg2.connect(dsn)
    with producer.cursor() as cur:
        cur.execute("SELECT q4pg_enqueue('wake', 'slow', 'late')")   # not committed yet
    thread = threading.Thread(target=_listen, args=(queue, 'slow', 1, received, errors))
    thread.start()
    time.sleep(0.5)                  # the listener finds nothing and tries to register
    assert received == []
    committed = time.monotonic()
    producer.commit()
    producer.close()
    thread.join(PROMPT * 5)
    assert not errors
    assert [raw for raw, _ in received] == ['late']
    assert received[0][1] - committed < PROMPT


def test_many_listeners_many_producers_every_message_once(queue, dsn):
    """Four listeners and four producers on one tag, producers sending in small
    bursts with pauses that let listeners go idle: each message arrives once."""
    per_producer, producers, listeners = 150, 4, 4
    total = per_producer * producers
    received, errors = [], []
    lock = threading.Lock()

    def listen():
        try:
            q = q4pg.QueueManager(dsn, table_name='wake', data_type='text', poll_interval=POLL)
            for raw in q.listen('many', stop_after_idle=PROMPT * 2):
                with lock:
                    received.append(raw)
            q.close()
        except Exception as e:
            errors.append(e)

    def produce(p):
        try:
            q = q4pg.QueueManager(dsn, table_name='wake', data_type='text')
            rng = random.Random(p)
            for n in range(per_producer):
                q.enqueue('many', '%d-%d' % (p, n))
                if rng.random() < 0.2:
                    time.sleep(rng.uniform(0.001, 0.02))
            q.close()
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=listen) for _ in range(listeners)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    senders = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    started = time.monotonic()
    for t in senders:
        t.start()
    for t in senders:
        t.join(120)
    deadline = time.monotonic() + PROMPT
    while len(received) < total and time.monotonic() < deadline:
        time.sleep(0.01)
    finished = time.monotonic()
    for t in threads:
        t.join(PROMPT * 4)
    assert not errors
    assert sorted(received) == sorted('%d-%d' % (p, n) for p in range(producers)
                                      for n in range(per_producer))
    assert finished - started < 120


def _notifications(conn, seconds=0.5):
    """The channels of the notifications `conn` receives within `seconds`."""
    import select
    deadline = time.monotonic() + seconds
    got = []
    while time.monotonic() < deadline:
        select.select([conn], [], [], max(0.0, deadline - time.monotonic()))
        conn.poll()
        got += [n.channel for n in conn.notifies]
        del conn.notifies[:]
    return got


def test_producers_notify_only_while_a_live_listener_waits(queue, dsn):
    """A registration left by a session that is gone costs producers nothing;
    a live one gets its NOTIFY; after q4pg_unregister_idle, no more."""
    def connect():
        c = psycopg2.connect(dsn)
        c.autocommit = True
        return c

    channel = queue.channel('t')
    observer = connect()                       # hears every NOTIFY, registers nothing
    observer.cursor().execute('LISTEN "%s"' % channel)
    gone = connect()
    gone.cursor().execute("SELECT q4pg_register_idle('wake', 't')")
    gone_pid = gone.get_backend_pid()
    gone.close()                               # its row stays in q4pg_idle_listeners
    check = observer.cursor()
    deadline = time.monotonic() + PROMPT       # the backend exits after close() returns
    while time.monotonic() < deadline:
        check.execute('SELECT count(*) FROM pg_stat_activity WHERE pid = %s', (gone_pid,))
        if check.fetchone() == (0,):
            break
        time.sleep(0.01)
    check.execute('SELECT count(*) FROM q4pg_idle_listeners WHERE pid = %s', (gone_pid,))
    assert check.fetchone() == (1,)
    queue.enqueue('t', 'nobody waits')
    assert _notifications(observer) == []

    live = connect()
    cur = live.cursor()
    cur.execute('LISTEN "%s"' % channel)
    cur.execute("SELECT q4pg_register_idle('wake', 't')")
    assert cur.fetchone() == (False,)          # a new registration: "not yet"
    cur.execute("SELECT q4pg_register_idle('wake', 't')")
    assert cur.fetchone() == (True,)
    queue.enqueue('t', 'someone waits')
    assert _notifications(observer) == [channel]
    queue.enqueue('other-tag', 'not for them')
    assert _notifications(observer) == []

    cur.execute("SELECT q4pg_unregister_idle('wake', 't')")
    assert cur.fetchone() == (True,)
    queue.enqueue('t', 'busy again')
    assert _notifications(observer) == []
    for c in (observer, live):
        c.close()


def test_go_idle_tells_its_answers_apart(queue, dsn):
    """q4pg_go_idle: 'ask_again' for a new registration, 'producer_running'
    while a producer older than the registration runs, 'may_sleep' then; the
    boolean q4pg_register_idle says false for the first two alike.  The
    registry names its queue (regclass)."""
    live = psycopg2.connect(dsn)
    live.autocommit = True
    cur = live.cursor()
    cur.execute('LISTEN "%s"' % queue.channel('t'))
    producer = psycopg2.connect(dsn)
    producer.cursor().execute("SELECT q4pg_enqueue('wake', 'other', 'older')")
    try:
        cur.execute("SELECT q4pg_go_idle('wake', 't')")
        assert cur.fetchone() == ('ask_again',)
        cur.execute("SELECT queue::text, pg_typeof(queue)::text, tag FROM q4pg_idle_listeners")
        assert cur.fetchall() == [('wake', 'regclass', 't')]
        cur.execute("SELECT q4pg_go_idle('wake', 't'), q4pg_register_idle('wake', 't')")
        assert cur.fetchone() == ('producer_running', False)
    finally:
        producer.commit()
        producer.close()
    cur.execute("SELECT q4pg_go_idle('wake', 't'), q4pg_register_idle('wake', 't')")
    assert cur.fetchone() == ('may_sleep', True)
    cur.execute("SELECT q4pg_unregister_idle('wake', 't')")
    assert cur.fetchone() == (True,)
    live.close()


def test_registrations_sweep_the_rows_of_sessions_that_are_gone(queue, dsn):
    """A session's first registration removes every row left by a session that is
    gone; its later ones remove those of their own queue and tag only, so that a
    session waiting on many tags does not read the whole registry each time."""
    def connect():
        c = psycopg2.connect(dsn)
        c.autocommit = True
        return c

    keeper = connect().cursor()
    keeper.execute("SELECT q4pg_register_idle('wake', 'a')")       # its first: sweeps all
    gone = connect()
    gone.cursor().execute("SELECT q4pg_register_idle('wake', 't'), q4pg_register_idle('wake', 'u')")
    gone_pid = gone.get_backend_pid()
    gone.close()
    deadline = time.monotonic() + PROMPT
    while time.monotonic() < deadline:
        keeper.execute('SELECT count(*) FROM pg_stat_activity WHERE pid = %s', (gone_pid,))
        if keeper.fetchone() == (0,):
            break
        time.sleep(0.01)

    def gone_rows():
        keeper.execute('SELECT tag FROM q4pg_idle_listeners WHERE pid = %s ORDER BY tag', (gone_pid,))
        return [tag for (tag,) in keeper.fetchall()]

    assert gone_rows() == ['t', 'u']
    keeper.execute("SELECT q4pg_register_idle('wake', 'u')")       # a later one: tag u only
    assert gone_rows() == ['t']
    newcomer = connect().cursor()
    newcomer.execute("SELECT q4pg_register_idle('wake', 'x')")     # a first one: all
    assert gone_rows() == []
