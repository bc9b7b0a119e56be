"""Listening behind PgBouncer: LISTEN and q4pg_register_idle need a server session of
their own, which transaction pooling does not give.  So the listener connects to
listen_dsn (direct, or a session-mode pool) while everything else goes through
the pooler; a listener whose connection shares its session is refused with a
clear error instead of never waking."""

import subprocess
import threading
import time

import psycopg2
import pytest

import q4pg
from q4pg import db
from tests.cli.helpers import PYTHON_M, ROOT, assert_error, clean_env
from tests.helpers import WAIT, wait_until
from tools.pgbouncer import PgBouncer

SLEEPY = 60.0  # poll_interval: a listener that took a message sooner was woken up


def idle_listeners(conn):
    """[(tag, pid)] of the registered listeners, from q4pg_idle_listeners."""
    with conn.cursor() as cur:
        cur.execute('SELECT tag, pid FROM q4pg_idle_listeners ORDER BY pid')
        return cur.fetchall()


def listen_in_thread(q, tag):
    """Starts q.listen(tag, limit=1) in a thread: (thread, the list it fills, its errors)."""
    got, errors = [], []

    def run():
        try:
            got.extend(q.listen(tag, limit=1, stop_after_idle=SLEEPY))
        except Exception as e:  # reported by the test
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got, errors


def assert_wakes(listener_q, producer_q, conn, not_in=list):
    """A listener of listener_q, once idle, takes a message producer_q enqueues,
    long before its poll_interval: a notification woke it.  It registered in a
    server session whose pid is not in not_in()."""
    thread, got, errors = listen_in_thread(listener_q, 't')
    wait_until(lambda: idle_listeners(conn) or errors, what='the listener to go idle')
    assert errors == []
    [(_, pid)] = idle_listeners(conn)
    assert pid not in not_in()
    started = time.monotonic()
    producer_q.enqueue('t', {'n': 1})
    thread.join(WAIT)
    assert not thread.is_alive(), 'the listener was not woken'
    assert time.monotonic() - started < SLEEPY
    assert (got, errors) == ([{'n': 1}], [])


def test_listen_dsn_direct_wakes_on_pooled_enqueue(bouncer, pooled_dsn, dsn, conn, make_queue):
    make_queue('mq')
    with q4pg.QueueManager(pooled_dsn, 'mq', listen_dsn=dsn, poll_interval=SLEEPY) as listener, \
            q4pg.QueueManager(pooled_dsn, 'mq') as producer:
        servers = lambda: [s['remote_pid'] for s in bouncer.admin('SHOW SERVERS')]  # noqa: E731
        assert_wakes(listener, producer, conn, not_in=servers)
        assert producer.count() == 0


def test_listen_dsn_through_a_session_pool_wakes(cluster, dbname, pooled_dsn, conn, make_queue):
    make_queue('mq')
    with PgBouncer(cluster, pool_mode='session', pool_size=2) as session_pool:
        listen_dsn = session_pool.dsn_string(database=dbname)
        with q4pg.QueueManager(pooled_dsn, 'mq', listen_dsn=listen_dsn,
                               poll_interval=SLEEPY) as listener, \
                q4pg.QueueManager(pooled_dsn, 'mq') as producer:
            assert_wakes(listener, producer, conn)


@pytest.mark.parametrize('listen_through', ['dsn', 'listen_dsn'])
def test_listening_through_transaction_pooling_is_refused(listen_through, pooled_dsn, dsn, conn,
                                                          make_queue):
    """Without the check, such a listener never wakes: its LISTEN sits on a server
    session that other clients use (PgBouncer hands them its notifications, or
    drops them), and it only polls."""
    make_queue('mq')
    kwargs = {'listen_dsn': pooled_dsn} if listen_through == 'listen_dsn' else {}
    with q4pg.QueueManager(pooled_dsn, 'mq', poll_interval=SLEEPY, **kwargs) as q:
        with pytest.raises(q4pg.Q4pgError) as raised:
            list(q.listen('t', stop_after_idle=SLEEPY))
        assert 'listen_dsn' in str(raised.value)
        assert 'transaction' in str(raised.value)
        with pytest.raises(q4pg.Q4pgError, match='listen_dsn'):
            with q.listener('t', stop_after_idle=SLEEPY) as messages:
                next(messages)
        assert idle_listeners(conn) == []     # nothing registered behind the pooler
        q.enqueue('t', 'still works')          # the rest of the client is untouched
        assert q.dequeue_immediate('t') == 'still works'


def test_registration_runs_only_in_the_listening_session(bouncer, pooled_dsn, conn, make_queue,
                                                         monkeypatch):
    """When the check at LISTEN time misses (another client held the session the
    pooler would have handed the check), the registration lands in another
    server session: it registers nothing there and raises."""
    make_queue('mq')
    monkeypatch.setattr(db, '_shared_session', lambda dsn, pid: False)
    with q4pg.QueueManager(pooled_dsn, 'mq') as q:
        channel = q.channel('t')
    listening = db.ListenConnection(pooled_dsn, channel)
    holder = psycopg2.connect(pooled_dsn)
    try:
        with holder.cursor() as cur:  # holds the listener's server session (the pooler's last used)
            cur.execute('SELECT pg_backend_pid()')
            assert cur.fetchone()[0] == listening.server_pid
        with pytest.raises(q4pg.Q4pgError, match='listen_dsn'):
            listening.call(db.REGISTER_IDLE, ('mq', 't'))
        assert idle_listeners(conn) == []
    finally:
        holder.rollback()
        holder.close()
        listening.close()


def test_cli_listen_dsn(pooled_dsn, dsn, conn, make_queue):
    """q4pg listen --listen-dsn: wakes behind the pooler; without it, a clear error (exit 3)."""
    make_queue('mq')
    env = clean_env({})
    refused = subprocess.run(
        PYTHON_M + ['--dsn', pooled_dsn, 'listen', 't', '--timeout', '30'], env=env,
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert_error(refused, 3, 'listen_dsn')

    proc = subprocess.Popen(PYTHON_M + ['--dsn', pooled_dsn, 'listen', 't', '--limit', '1',
                                        '--listen-dsn', dsn],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        wait_until(lambda: idle_listeners(conn) or proc.poll() is not None,
                   what='q4pg listen to go idle')
        with q4pg.QueueManager(pooled_dsn, 'mq') as producer:
            producer.enqueue('t', {'n': 1})
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, err) == (0, '')
    assert '"data":{"n":1}' in out


def presence_locks(conn, pid):
    """How many shared advisory locks of q4pg's 'presence' class session `pid` holds."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s "
                    "AND classid = q4pg_lock_class('presence')::oid AND mode = 'ShareLock'",
                    (pid,))
        return cur.fetchone()[0]


def test_a_session_pool_reused_after_a_listener_died(cluster, dbname, dsn, conn, make_queue):
    make_queue('mq')
    with PgBouncer(cluster, pool_mode='session', pool_size=1) as session_pool:
        listen_dsn = session_pool.dsn_string(database=dbname)
        with q4pg.QueueManager(dsn, 'mq') as q:
            channel = q.channel('t')
        died = db.ListenConnection(listen_dsn, channel)
        assert died.call(db.REGISTER_IDLE, ('mq', 't')) is False   # new: "not yet"
        assert died.call(db.REGISTER_IDLE, ('mq', 't')) is True
        assert presence_locks(conn, died.server_pid) == 1
        died.close()   # as a process that was killed: no q4pg_unregister_idle
        # the next client of that server session registers: it must hold the lock
        # that tells producers to notify
        listening = db.ListenConnection(listen_dsn, channel)
        try:
            assert listening.server_pid == died.server_pid
            assert listening.call(db.REGISTER_IDLE, ('mq', 't')) is True
            assert presence_locks(conn, listening.server_pid) == 1
        finally:
            listening.close()
