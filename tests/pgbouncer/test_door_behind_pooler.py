"""Behind PgBouncer in transaction pooling, where each transaction may run in
another server session, the clients prepare nothing, and take the queue's
direct door (q4pg/door.py) only for a schema-qualified queue name (an
unqualified one may name another table in another session's search_path);
the generic calls otherwise."""

import psycopg2
import pytest

from tests.client.fronts import make, run
from tests.helpers import wait_until
from tools.pgbouncer import PgBouncer


@pytest.fixture(params=['sync', 'async'])
def kind(request):
    return request.param


@pytest.fixture
def one_session(cluster, dbname, conn):
    """A transaction-mode PgBouncer with a single server connection (its DSN), in a
    database whose function statistics are on."""
    with conn.cursor() as cur:
        cur.execute("ALTER DATABASE %s SET track_functions = 'all'" % dbname)
    with PgBouncer(cluster, pool_mode='transaction', pool_size=1) as bouncer:
        yield bouncer.dsn_string(database=dbname)


def enqueue_calls(conn):
    """{'generic': calls of q4pg_enqueue, 'door': calls of generated enqueue functions}."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(calls) FILTER (WHERE funcname = 'q4pg_enqueue'), 0), "
                    "coalesce(sum(calls) FILTER (WHERE funcname LIKE 'q4pg\\_%\\_enqueue'), 0) "
                    'FROM pg_stat_user_functions')
        generic, door = cur.fetchone()
    return {'generic': generic, 'door': door}


def work(kind, dsn, name, n):
    """n messages through a manager of queue `name`: enqueued, dequeued, leased."""
    async def main():
        q = make(kind, dsn, name, max_connections=1)
        try:
            await q.create_table()
            for i in range(n):
                await q.enqueue('t', i)
            async with q.dequeue('t') as data:
                assert data == 0
            async with q.dequeue_many('t', 2) as messages:
                assert [m.data for m in messages] == [1, 2]
            async with q.lease('t') as message:
                assert message.data == 3
            assert await q.count('t') == n - 4
        finally:
            await q.close()
    run(main())


def prepared(dsn):
    """The statements prepared in the pooler's one server session."""
    c = psycopg2.connect(dsn)
    try:
        with c.cursor() as cur:
            cur.execute('SELECT name FROM pg_prepared_statements')
            return cur.fetchall()
    finally:
        c.close()


def test_a_qualified_queue_goes_through_the_door_unprepared(kind, one_session, conn):
    work(kind, one_session, 'public.mq', 6)
    assert prepared(one_session) == []
    assert wait_for_statistics(conn, lambda calls: calls['door'] >= 6)['generic'] == 0


def test_an_unqualified_queue_gets_the_generic_calls(kind, one_session, conn):
    work(kind, one_session, 'mq', 5)
    assert prepared(one_session) == []
    assert wait_for_statistics(conn, lambda calls: calls['generic'] >= 5)['generic'] == 5


def wait_for_statistics(conn, done):
    """enqueue_calls(conn) once `done` says they are all there (the server session
    reports its statistics a moment after its transactions)."""
    found = {}

    def check():
        found.update(enqueue_calls(conn))
        return done(found)
    wait_until(check, timeout=30, what='the function statistics')
    return found
