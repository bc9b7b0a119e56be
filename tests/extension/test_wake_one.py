"""One listener per message (issue 20): listeners on a channel of their own
(q4pg_own_channel, q4pg_go_idle(queue, tag, true)) are woken one per message,
only while they are really there; listeners of the 1.0 / 1.1 contract, on the
tag's shared channel, are all woken as before.  Driven by hand, with the
calls docs/listeners.md publishes."""

import select
import time

import psycopg2
import pytest

from tests.helpers import wait_until

PROMPT = 5.0


@pytest.fixture
def queue(make_queue):
    return make_queue('wake', data_type='text', poll_interval=60)


def _connect(dsn):
    c = psycopg2.connect(dsn)
    c.autocommit = True
    return c


def _one(conn, query, args=()):
    with conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchone()[0]


def _listener(dsn, own=True):
    """A session LISTENing on its own channel (or the shared one) of wake's tag
    t, registered until 'may_sleep'; (connection, channel)."""
    conn = _connect(dsn)
    channel = _one(conn, "SELECT q4pg_%s('wake', 't')" % ('own_channel' if own else 'channel'))
    conn.cursor().execute('LISTEN "%s"' % channel)
    go_idle = "SELECT q4pg_go_idle('wake', 't'%s)" % (', true' if own else '')
    assert [_one(conn, go_idle) for _ in range(2)] == ['ask_again', 'may_sleep']
    return conn, channel


def _heard(conns, seconds=0.3):
    """The notifications each of `conns` receives within `seconds`: a list of
    lists of channels."""
    deadline = time.monotonic() + seconds
    got = [[] for _ in conns]
    while time.monotonic() < deadline:
        select.select(conns, [], [], max(0.0, deadline - time.monotonic()))
        for conn, heard in zip(conns, got):
            conn.poll()
            heard += [n.channel for n in conn.notifies]
            del conn.notifies[:]
    return got


def _insert(conn, n):
    conn.cursor().execute("INSERT INTO wake (tag, data) "
                          "SELECT 't', 'm' FROM generate_series(1, %s)", (n,))


def test_a_message_wakes_one_listener_a_batch_of_n_up_to_n(queue, dsn):
    listeners = [_listener(dsn) for _ in range(4)]
    conns = [c for c, _ in listeners]
    producer = _connect(dsn)
    for n, woken in ((1, 1), (1, 1), (3, 3), (6, 4)):
        _insert(producer, n)
        heard = _heard(conns)
        assert sum(len(h) for h in heard) == woken, (n, heard)
        assert all(h in ([], [channel]) for h, (_, channel) in zip(heard, listeners))
    # concurrent producers spread their wake-ups: 40 messages reach more than one
    chosen = set()
    for _ in range(40):
        _insert(producer, 1)
        heard = _heard(conns, 0.05)
        chosen |= {k for k, h in enumerate(heard) if h}
    assert len(chosen) > 1
    for c in conns + [producer]:
        c.close()


def test_a_listener_that_is_not_there_is_never_chosen(queue, dsn):
    """A session that died, and one a pooler reset (DISCARD ALL: its LISTEN and
    its locks are gone, its registration stays), swallow no wake-up: every
    message goes to the listener that is there; a producer that rolls back
    wakes nobody."""
    live, _ = _listener(dsn)
    dead, _ = _listener(dsn)
    reset, _ = _listener(dsn)
    dead_pid = dead.get_backend_pid()
    dead.close()
    reset.cursor().execute('DISCARD ALL')
    checker = _connect(dsn)
    wait_until(lambda: _one(checker, 'SELECT count(*) FROM pg_stat_activity WHERE pid = %s',
                            (dead_pid,)) == 0)
    assert _one(checker, 'SELECT count(*) FROM q4pg_idle_listeners') == 3
    for _ in range(20):
        _insert(checker, 1)
    assert len(_heard([live], 1.0)[0]) == 20
    rolled_back = psycopg2.connect(dsn)
    _insert(rolled_back, 1)
    rolled_back.rollback()
    assert _heard([live, reset]) == [[], []]
    for c in (live, reset, checker, rolled_back):
        c.close()


def test_a_listener_of_the_1_1_contract_keeps_working(queue, dsn):
    """An old listener (LISTEN on q4pg_channel, q4pg_go_idle(queue, tag) or
    1.0's q4pg_register_idle, q4pg_unregister_idle) beside a new one: each
    message wakes it on the shared channel, as in 1.1, and one new listener on
    its own; the old one dequeues the message and unregisters."""
    old, shared = _listener(dsn, own=False)
    older = _connect(dsn)
    older.cursor().execute('LISTEN "%s"' % shared)
    assert _one(older, "SELECT q4pg_register_idle('wake', 't')") is False
    assert _one(older, "SELECT q4pg_register_idle('wake', 't')") is True
    new, own = _listener(dsn)
    assert own.startswith(shared + '.') and len(own) <= 45
    producer = _connect(dsn)
    producer.cursor().execute("SELECT q4pg_enqueue('wake', 't', 'hello')")
    assert _heard([old, older, new]) == [[shared], [shared], [own]]
    with old.cursor() as cur:
        cur.execute("SELECT data FROM q4pg_dequeue('wake', 't')")
        assert cur.fetchall() == [('hello',)]
    assert _one(old, "SELECT q4pg_unregister_idle('wake', 't')") is True
    assert _one(older, "SELECT q4pg_unregister_idle('wake', 't')") is True
    producer.cursor().execute("SELECT q4pg_enqueue('wake', 't', 'again')")
    assert _heard([old, older, new]) == [[], [], [own]]
    for c in (old, older, new, producer):
        c.close()


def test_a_listener_that_leaves_hands_its_wake_up_over(queue, dsn):
    """A producer chose the only listener there, which leaves before the
    producer commits: with hand_over, another listener (registered since, told
    'producer_running') is notified, and once the producer has committed its
    q4pg_go_idle says 'may_sleep' and its look finds the message."""
    first, _ = _listener(dsn)
    producer = psycopg2.connect(dsn)
    _insert(producer, 1)                     # chooses `first`, the only one there
    second = _connect(dsn)
    channel = _one(second, "SELECT q4pg_own_channel('wake', 't')")
    second.cursor().execute('LISTEN "%s"' % channel)
    go_idle = "SELECT q4pg_go_idle('wake', 't', true)"
    assert [_one(second, go_idle) for _ in range(2)] == ['ask_again', 'producer_running']
    assert _one(first, "SELECT q4pg_unregister_idle('wake', 't', true)") is True
    assert _heard([second]) == [[channel]]
    producer.commit()
    assert _one(second, go_idle) == 'may_sleep'
    with second.cursor() as cur:
        cur.execute("SELECT data FROM q4pg_dequeue('wake', 't')")
        assert cur.fetchall() == [('m',)]
    # a listener that leaves without hand_over (busy: it looks again when done)
    # and one on the shared channel hand nothing over
    assert _one(second, "SELECT q4pg_unregister_idle('wake', 't')") is True
    third, _ = _listener(dsn)
    old, _ = _listener(dsn, own=False)
    assert _one(old, "SELECT q4pg_unregister_idle('wake', 't', true)") is True
    assert _heard([third]) == [[]]
    for c in (first, second, third, old, producer):
        c.close()


@pytest.mark.parametrize('call', ["q4pg_go_idle('wake', 't', NULL)",
                                  "q4pg_unregister_idle('wake', 't', NULL)"])
def test_a_null_flag_is_refused(queue, conn, call):
    with pytest.raises(psycopg2.errors.NullValueNotAllowed, match='must be true or false'):
        conn.cursor().execute('SELECT ' + call)
    assert _one(conn, 'SELECT count(*) FROM q4pg_idle_listeners') == 0
