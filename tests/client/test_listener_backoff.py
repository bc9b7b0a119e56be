"""An idle listener does not poll while a producer transaction it cannot wait
out is open (issue 10.10).

q4pg_go_idle says 'producer_running' while a producer that started before the
registration still runs; the listener is registered all the same, so it sleeps
on its LISTEN connection with a back-off (5 ms doubling to 1 s) instead of
trying again every few milliseconds.  Counted with the server's function
statistics: registrations and dequeue attempts during a 5 s producer
transaction.
"""

import threading

import psycopg2

from tests.helpers import WAIT, disconnected, wait_until

APP = 'q4pg_backoff_test'
Q_OPTIONS = dict(app=APP, poll_interval=60)
PRODUCER_SECONDS = 5
MOST_ATTEMPTS = 20       # the back-off makes about 13; polling every 0.1 s made about 54


def calls(conn):
    """{function name: calls} of q4pg_go_idle, q4pg_register_idle and q4pg_dequeue
    (the listener's dequeue, counted by the queue's generated dequeue function,
    which a dequeue calls once through q4pg_dequeue or the direct door alike)
    in this database."""
    with conn.cursor() as cur:
        cur.execute("SELECT CASE WHEN funcname LIKE 'q4pg\\_%\\_dequeue' THEN 'q4pg_dequeue' "
                    "ELSE funcname END, sum(calls) FROM pg_stat_user_functions "
                    "WHERE funcname IN ('q4pg_go_idle', 'q4pg_register_idle') "
                    "OR funcname LIKE 'q4pg\\_%\\_dequeue' GROUP BY 1")
        return dict(cur.fetchall())


def made_calls(conn, before):
    """{function name: calls since `before`} (calls(conn) then)."""
    after = calls(conn)
    return {name: after.get(name, 0) - before.get(name, 0)
            for name in ('q4pg_go_idle', 'q4pg_register_idle', 'q4pg_dequeue')}


def test_listener_backs_off_while_an_older_producer_runs(dsn, dbname, conn, make_queue):
    with conn.cursor() as cur:
        cur.execute("ALTER DATABASE %s SET track_functions = 'all'" % dbname)
    q = make_queue('mq', app=APP, poll_interval=60)
    before = calls(conn)
    producer = psycopg2.connect(dsn)              # on another tag: the lock is the queue's
    with producer.cursor() as cur:
        cur.execute("SELECT q4pg_enqueue('mq', 'other', '1')")
    try:
        got = list(q.listen('t', stop_after_idle=PRODUCER_SECONDS))
    finally:
        producer.rollback()
        producer.close()
    q.close()
    assert got == []
    wait_until(lambda: disconnected(conn, APP), what='the listener to disconnect')  # its statistics flushed
    made = made_calls(conn, before)
    print('during a %d s producer transaction: %s' % (PRODUCER_SECONDS, made))
    assert 2 <= made['q4pg_go_idle'] <= MOST_ATTEMPTS, made
    assert made['q4pg_register_idle'] == 0, made      # 1.0's boolean: for old clients
    assert 2 <= made['q4pg_dequeue'] <= MOST_ATTEMPTS + 1, made


def test_going_idle_with_no_producer_asks_again_once_then_sleeps(dbname, conn, make_queue):
    """q4pg_go_idle's 'ask_again' (a new registration) is followed by one more
    call at once, which says 'may_sleep'; a last look, then the listener sleeps."""
    with conn.cursor() as cur:
        cur.execute("ALTER DATABASE %s SET track_functions = 'all'" % dbname)
    q = make_queue('mq', app=APP, poll_interval=60)
    before = calls(conn)
    assert list(q.listen('t', stop_after_idle=1)) == []
    q.close()
    wait_until(lambda: disconnected(conn, APP), what='the listener to disconnect')
    made = made_calls(conn, before)
    assert made['q4pg_go_idle'] == 2 and made['q4pg_register_idle'] == 0, made


def test_a_newer_producer_wakes_the_backing_off_listener(dsn, make_queue):
    q = make_queue('mq', poll_interval=60)
    old = psycopg2.connect(dsn)
    with old.cursor() as cur:
        cur.execute("SELECT q4pg_enqueue('mq', 'other', '1')")
    timer = threading.Timer(2.5, q.enqueue, ('t', 'new'))   # while it backs off at 1 s
    timer.start()
    try:
        assert list(q.listen('t', stop_after_idle=WAIT, limit=1)) == ['new']
    finally:
        timer.join()
        old.rollback()
        old.close()
