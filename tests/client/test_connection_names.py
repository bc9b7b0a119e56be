"""How the client shows itself (issue 10.11): its connections are named q4pg
unless the DSN names them; a listener's reconnection warnings name the queue
and tag plainly, and it says when it is reconnected."""

import logging
import threading


def application_names(conn, exclude):
    with conn.cursor() as cur:
        cur.execute('SELECT application_name FROM pg_stat_activity '
                    'WHERE datname = current_database() AND pid <> %s', (exclude,))
        return sorted(row[0] for row in cur.fetchall())


def my_pid(conn):
    with conn.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        return cur.fetchone()[0]


def test_connections_are_named_q4pg_unless_the_dsn_names_them(make_queue, conn):
    q = make_queue('mq', poll_interval=60)
    q.enqueue('t', 1)
    with q.dequeue('t'):
        assert [row[-1] for row in q.consumers()] == ['q4pg']
    listening = q.listener('t', stop_after_idle=5)
    q.enqueue('t', 2)
    assert next(listening) == 2
    assert set(application_names(conn, my_pid(conn))) == {'q4pg'}
    listening.close()
    named = make_queue('mq', app='billing')
    with named.dequeue('t'):
        assert 'billing' in [row[-1] for row in named.consumers()]


def test_reconnection_is_logged_plainly(make_queue, conn, caplog):
    caplog.set_level(logging.INFO, logger='q4pg')
    q = make_queue('mq', poll_interval=60)
    listening = q.listener('t', stop_after_idle=30)
    q.enqueue('t', 'first')
    assert next(listening) == 'first'
    with conn.cursor() as cur:           # the LISTEN connection's backend
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN %'")
        assert cur.rowcount == 1
    later = threading.Timer(1.0, q.enqueue, ('t', 'second'))
    later.start()
    assert next(listening) == 'second'   # it went idle, found the connection dead, made another
    later.join()
    listening.close()
    messages = [r.getMessage() for r in caplog.records
                if r.name == 'q4pg' and r.levelno >= logging.WARNING]
    assert not any('QueueManager' in m for m in messages), messages
    assert any(m.startswith("q4pg: listener on queue mq, tag 't': ") and 'reconnecting' in m
               for m in messages), messages
    assert any(m.startswith("q4pg: listener on queue mq, tag 't': reconnected after")
               for m in messages), messages
