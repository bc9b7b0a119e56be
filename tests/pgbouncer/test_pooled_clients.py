"""Producers and transactional consumers through PgBouncer in transaction pooling:
many clients share POOL_SIZE server connections, and every message is delivered
exactly once."""

import threading
import time

import psycopg2
import pytest

import q4pg
from tests.helpers import WAIT
from tests.pgbouncer.conftest import POOL_SIZE

PER_PRODUCER = 120
PRODUCERS = 3


def test_clients_share_few_server_connections(bouncer, pooled_dsn, dbname):
    """The fixture is what it says: a pooler that fakes the backend pid and gives
    several clients the same server session."""
    conns = [psycopg2.connect(pooled_dsn) for _ in range(4)]
    try:
        pids = set()
        for c in conns:
            c.autocommit = True
            with c.cursor() as cur:
                cur.execute('SELECT pg_backend_pid()')
                server_pid = cur.fetchone()[0]
            assert server_pid != c.info.backend_pid
            pids.add(server_pid)
        assert len(pids) <= POOL_SIZE
    finally:
        for c in conns:
            c.close()
    assert [s['database'] for s in bouncer.admin('SHOW SERVERS')].count(dbname) <= POOL_SIZE


def test_producers_and_consumers_exactly_once(bouncer, pooled_dsn, dbname, make_queue):
    make_queue('mq')
    sent, delivered, errors = [], [], []
    lock = threading.Lock()
    producers_done = threading.Event()
    most_servers = []

    def produce(kind, p):
        q = q4pg.QueueManager(pooled_dsn, 'mq', max_connections=2)
        items = [{'p': p, 'n': n} for n in range(PER_PRODUCER)]
        try:
            if kind == 'enqueue':
                for item in items:
                    q.enqueue('t', item)
            elif kind == 'enqueue_many':
                for i in range(0, len(items), 25):
                    q.enqueue_many('t', items[i:i + 25])
            else:   # enqueue in the caller's own transactions, 10 messages each
                conn = psycopg2.connect(pooled_dsn)
                try:
                    for i in range(0, len(items), 10):
                        with conn:
                            for item in items[i:i + 10]:
                                q.enqueue('t', item, conn=conn)
                finally:
                    conn.close()
            with lock:
                sent.extend(items)
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            q.close()

    def consume(kind):
        q = q4pg.QueueManager(pooled_dsn, 'mq', max_connections=2)
        given_back = 0
        try:
            deadline = time.monotonic() + 6 * WAIT
            while time.monotonic() < deadline:
                if kind == 'dequeue':
                    try:
                        with q.dequeue('t') as data:
                            got = [] if data is None else [data]
                            if got and data['n'] % 5 == 0 and given_back < 20:
                                given_back += 1
                                raise LookupError('give it back')
                    except LookupError:
                        continue
                elif kind == 'dequeue_immediate':
                    data = q.dequeue_immediate('t')
                    got = [] if data is None else [data]
                else:
                    with q.dequeue_many('t', 10) as messages:
                        got = [m.data for m in messages]
                with lock:
                    delivered.extend(got)
                if not got:
                    if producers_done.is_set() and q.count('t') == 0:
                        return
                    time.sleep(0.005)
        except Exception as e:
            errors.append(e)
        finally:
            q.close()

    threads = [threading.Thread(target=produce, args=(kind, p)) for p, kind in
               enumerate(('enqueue', 'enqueue_many', 'own transaction'))]
    consumers = [threading.Thread(target=consume, args=(kind,))
                 for kind in ('dequeue', 'dequeue_immediate', 'dequeue_many')]
    for t in threads + consumers:
        t.start()
    while any(t.is_alive() for t in threads + consumers):
        servers = [s for s in bouncer.admin('SHOW SERVERS') if s['database'] == dbname]
        clients = [c for c in bouncer.admin('SHOW CLIENTS') if c['database'] == dbname]
        most_servers.append((len(servers), len(clients)))
        if not any(t.is_alive() for t in threads):
            producers_done.set()
        time.sleep(0.02)
    for t in threads + consumers:
        t.join()

    assert errors == []
    assert len(sent) == PRODUCERS * PER_PRODUCER
    key = lambda d: (d['p'], d['n'])  # noqa: E731
    assert sorted(delivered, key=key) == sorted(sent, key=key)   # none lost, none twice
    # the clients outnumbered the server connections, which never passed the pool's size
    assert max(s for s, _ in most_servers) <= POOL_SIZE
    assert max(c for _, c in most_servers) > POOL_SIZE
