"""The client makes no more round trips than the work needs, and its pool never
lends a connection in a transaction.

A small TCP proxy between the client and the server reads what the client
sends and records each query (a 'Q' message of the simple query protocol,
which is what psycopg2 sends, one per round trip).

The hot-path calls go through the queue's direct door (q4pg/door.py): the
first on a connection asks for the queue's door (one round trip, once), the
first of each kind prepares its statement in its own round trip
(PREPARE q4pg_enqueue_...; EXECUTE ...), the next ones only EXECUTE it.
"""

import contextlib
import socket
import struct
import threading

import pytest

import q4pg
from q4pg import statements


class QueryRecorder:
    """A TCP proxy to the cluster that records the queries clients send through it."""

    def __init__(self, host, port):
        self._upstream = (host, port)
        self._server = socket.create_server(('127.0.0.1', 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._queries = []
        self._sockets = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def queries(self):
        """The queries sent since the last call."""
        with self._lock:
            queries, self._queries = self._queries, []
        return queries

    def close(self):
        for s in self._sockets:
            s.close()

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source, sink, from_client):
        buffer = b''
        started = False      # the first message (startup) has no type byte
        while True:
            try:
                chunk = source.recv(65536)
            except OSError:
                chunk = b''
            if not chunk:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            if from_client:
                # recorded before the server sees it, so that the order of the
                # queries of several connections is the order they were sent in
                buffer += chunk
                while True:
                    head = 4 if not started else 5
                    if len(buffer) < head:
                        break
                    length = struct.unpack('!I', buffer[head - 4:head])[0] + head - 4
                    if len(buffer) < length:
                        break
                    if started and buffer[:1] == b'Q':
                        with self._lock:
                            self._queries.append(buffer[5:length - 1].decode())
                    started = True
                    buffer = buffer[length:]
            sink.sendall(chunk)


@pytest.fixture
def recorder(cluster):
    dsn = cluster.dsn()
    proxy = QueryRecorder(dsn['host'], dsn['port'])
    yield proxy
    proxy.close()


@pytest.fixture
def q(recorder, dsn):
    through = dsn + ' port=%d sslmode=disable gssencmode=disable' % recorder.port
    manager = q4pg.QueueManager(through, 'mq', max_connections=1, poll_interval=60)
    manager.create_table()
    recorder.queries()
    yield manager
    manager.close()


def test_a_call_outside_a_transaction_is_one_statement(q, recorder):
    q.enqueue('t', {'n': 1})
    door, query = recorder.queries()     # the queue's door, asked once per connection
    assert door.startswith('SELECT %s(' % statements.DOOR_FUNCTION)
    assert query.startswith('PREPARE q4pg_enqueue_') and '; EXECUTE q4pg_enqueue_' in query
    q.enqueue('t', {'n': 1.5})
    [query] = recorder.queries()
    assert query.startswith('EXECUTE q4pg_enqueue_')
    q.enqueue_many('t', [2, 3])
    assert len(recorder.queries()) == 1
    for call in (q.count, q.list, lambda: q.cancel(10 ** 9), lambda: q.channel('t'),
                 q.queues, q.stats, q.consumers, q.create_table):
        call()
        assert len(recorder.queries()) == 1
    assert q.count() == 4


def test_a_dequeue_sends_begin_with_its_statement_then_commit(q, recorder):
    q.enqueue_many('t', [1, 2])
    recorder.queries()
    with q.dequeue('t') as data:
        [query] = recorder.queries()
        assert query.startswith('BEGIN; PREPARE q4pg_dequeue_')
    assert data == 1
    # success: nothing but COMMIT (the message was removed by the dequeue)
    assert recorder.queries() == ['COMMIT']
    # A failure is counted before the commit (two round trips: failures are rare);
    # KeyboardInterrupt gives the messages back uncounted, with ROLLBACK.
    with pytest.raises(KeyError):
        with q.dequeue_many('t', 5) as messages:
            assert len(recorder.queries()) == 1
            raise KeyError
    assert [m.data for m in messages] == [2]
    fail, commit = recorder.queries()
    assert fail.startswith('PREPARE q4pg_fail_') and commit == 'COMMIT'
    with pytest.raises(KeyboardInterrupt):
        with q.dequeue('t'):
            assert len(recorder.queries()) == 1
            raise KeyboardInterrupt
    assert recorder.queries() == ['ROLLBACK']
    with q.dequeue('none') as data:
        assert data is None
    take, commit = recorder.queries()
    assert take.startswith('BEGIN; EXECUTE q4pg_dequeue_') and commit == 'COMMIT'
    assert q.count() == 1


def test_a_listener_takes_a_message_in_two_round_trips(q, recorder):
    q.enqueue_many('t', [1, 2])
    recorder.queries()
    with q.listener('t', limit=2) as items:
        assert next(items) == 1
        sent = recorder.queries()
        assert sent[-1].startswith('BEGIN; PREPARE q4pg_dequeue_')
        assert next(items) == 2
        done, take = recorder.queries()
        assert done == 'COMMIT'
        assert take.startswith('BEGIN; EXECUTE q4pg_dequeue_')
    assert recorder.queries() == ['COMMIT']


def test_a_connection_given_back_in_a_transaction_is_rolled_back_before_reuse(q, recorder,
                                                                              conn):
    q.enqueue('t', 'held')
    for leave in (KeyError, KeyboardInterrupt):
        with pytest.raises(leave):
            with q.dequeue('t'):
                raise leave
        # the pool's only connection is out of the transaction: this commits at once
        q.enqueue('t', 'visible')
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM mq WHERE data::text = '\"visible\"'")
            assert cur.fetchone()[0] >= 1
    listening = q.listener('t')
    assert next(listening) == 'held'
    listening.close(ack=False)
    q.enqueue('t', 'after the listener')
    assert q.count() == 4


def test_a_broken_connection_is_not_reused(dsn, conn):
    q = q4pg.QueueManager(dsn, 'mq', max_connections=1)
    q.create_table()
    q.enqueue('t', 1)
    with conn.cursor() as cur:
        cur.execute('SELECT pid FROM pg_stat_activity WHERE query LIKE %s',
                    ('%EXECUTE q4pg\\_enqueue\\_%',))
        [(pid,)] = cur.fetchall()
        cur.execute('SELECT pg_terminate_backend(%s, 10000)', (pid,))
    assert q.enqueue('t', 2) > 0          # on a new connection: the server said it had ended
    assert q.count('t') == 2
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue('t', 'x' * 2000)
    assert q.count('t') == 2              # the failed statement left nothing behind
    q.close()

