"""Both clients call the queue's generated functions directly (the direct door,
q4pg/door.py), as prepared statements of their connections, and recover when
the server session loses what they knew (DISCARD ALL: the statements; a
renamed, re-created queue: its door).  A server without the door (1.1) gets
the generic calls.  Behind PgBouncer: tests/pgbouncer/test_door_behind_pooler.py.

Checked in the server: the connections' pg_prepared_statements, and the
function statistics (track_functions), which show that no generic function
(q4pg_enqueue, q4pg_dequeue...) ran.
"""

import pytest

import q4pg
from tests.client.fronts import make, run
from tests.helpers import disconnected, query, wait_until

APP = 'q4pg_door_test'
GENERIC = ('q4pg_enqueue', 'q4pg_enqueue_many', 'q4pg_dequeue', 'q4pg_take', 'q4pg_done_many',
           'q4pg_fail', 'q4pg_lease', 'q4pg_ack', 'q4pg_nack', 'q4pg_extend', 'q4pg_cancel')


@pytest.fixture(params=['sync', 'async'])
def kind(request):
    return request.param


async def own(q, sql):
    """Runs `sql` on the manager's pooled connection (max_connections=1): its rows."""
    if isinstance(q, q4pg.AsyncQueueManager):
        return await q._db.run(sql)
    return q.q._db.run(sql)


async def prepared(q):
    """The names of the statements prepared in the manager's server session."""
    rows = await own(q, 'SELECT name FROM pg_prepared_statements ORDER BY name')
    return [name.rsplit('_', 1)[0] for (name,) in rows]


def function_calls(conn):
    """{function: calls} of the q4pg functions, generic and generated, of this database."""
    with conn.cursor() as cur:
        cur.execute("SELECT funcname, calls FROM pg_stat_user_functions WHERE funcname LIKE 'q4pg%'")
        return dict(cur.fetchall())


def test_the_hot_path_calls_the_generated_functions(kind, dsn, dbname, conn):
    with conn.cursor() as cur:
        cur.execute("ALTER DATABASE %s SET track_functions = 'all'" % dbname)

    async def main():
        q = make(kind, dsn + ' application_name=' + APP, max_connections=1)
        try:
            await q.create_table()
            first = await q.enqueue('t', 1)
            await q.enqueue('t', 2, schedule=0)
            await q.enqueue_many('t', [3, 4, 5, 6])
            await q.enqueue_many('t', [7], schedule=0)
            async with q.dequeue('t') as data:
                assert data == 1
            async with q.dequeue_many('t', 2) as messages:
                assert [m.data for m in messages] == [2, 3]
            with pytest.raises(KeyError):
                async with q.dequeue('t'):
                    raise KeyError('counted')
            async with q.lease('t', 30) as message:
                assert message.data == 4 and message.attempts == 2
            with pytest.raises(KeyError):
                async with q.lease('t', 30):
                    raise KeyError('given back')
            [leased] = await q.take_leases('t', 1, 30)
            assert await q.extend(leased.id, leased.lease_token, 60) is not None
            assert await q.nack(leased.id, leased.lease_token, retry_in=0) == 'retry'
            assert await q.cancel(first) is False
            assert await q.count('t') == 3
            assert set(await prepared(q)) >= {'q4pg_enqueue', 'q4pg_enqueue_many', 'q4pg_dequeue',
                                              'q4pg_take', 'q4pg_done_many', 'q4pg_fail',
                                              'q4pg_lease', 'q4pg_ack', 'q4pg_nack', 'q4pg_extend',
                                              'q4pg_cancel'}
        finally:
            await q.close()
    run(main())
    wait_until(lambda: disconnected(conn, APP), what='the client to disconnect')   # its statistics flushed
    calls = function_calls(conn)
    assert not set(calls) & set(GENERIC), calls
    made = {name.rsplit('_', 1)[-1] for name in calls}
    assert made >= {'enqueue', 'many', 'dequeue', 'take', 'fail', 'lease', 'ack', 'nack',
                    'extend', 'cancel'}, calls


def test_statements_lost_by_discard_all_are_prepared_again(kind, dsn):
    async def main():
        q = make(kind, dsn, max_connections=1)
        try:
            await q.create_table()
            await q.enqueue('t', 1)
            await q.enqueue('t', 2)
            assert 'q4pg_enqueue' in await prepared(q)
            await own(q, 'DISCARD ALL')             # what a pooler sends between clients
            assert await prepared(q) == []
            await q.enqueue('t', 3)
            assert await prepared(q) == ['q4pg_enqueue']
            await own(q, 'DISCARD ALL')
            async with q.dequeue('t') as data:      # BEGIN with the call: it goes again
                assert data == 1
            await own(q, 'DEALLOCATE ALL')
            [leased] = await q.take_leases('t')
            assert await q.ack(leased.id, leased.lease_token) is True
            assert await q.count('t') == 1
        finally:
            await q.close()
    run(main())


def test_a_first_call_refused_leaves_its_statement_prepared(kind, dsn):
    """PREPARE goes through even when the call it travels with is refused (bad
    input): the next call only EXECUTEs it; a statement the session holds
    though the client forgot it (42P05) is used as it is."""
    async def main():
        q = make(kind, dsn, 'mq', data_type='text', data_length=3, max_connections=1)
        try:
            await q.create_table()
            with pytest.raises(q4pg.InvalidMessage) as error:
                await q.enqueue('t', 'too long')
            assert error.value.pgcode == '22001'
            assert await prepared(q) == ['q4pg_enqueue']
            await q.enqueue('t', 'ok')
            pooled = q._db if isinstance(q, q4pg.AsyncQueueManager) else q.q._db
            conn = await pooled.get() if isinstance(q, q4pg.AsyncQueueManager) else None
            if conn is not None:
                await pooled.put(conn)
            else:
                conn, _ = pooled._pool.get()
                pooled._pool.put(conn)
            conn.q4pg_doors.prepared.clear()          # the client forgets, the session not
            await q.enqueue('t', 'yes')
            assert await prepared(q) == ['q4pg_enqueue']
            assert await q.count('t') == 2
        finally:
            await q.close()
    run(main())


def test_a_stale_door_is_asked_again(kind, dsn, conn):
    async def main():
        q = make(kind, dsn, max_connections=1)
        try:
            await q.create_table()
            await q.enqueue('t', 'before')
            with conn.cursor() as cur:
                cur.execute("ALTER TABLE mq RENAME TO mq_old; SELECT q4pg_create_queue('mq')")
            await q.enqueue('t', 'after')           # the door went stale: asked again
            async with q.dequeue('t') as data:
                assert data == 'after'
            with conn.cursor() as cur:
                cur.execute("SELECT q4pg_drop_queue('mq'); SELECT q4pg_create_queue('mq')")
            await q.enqueue('t', 'made again')
            assert await q.count('t') == 1
        finally:
            await q.close()
    run(main())
    assert query(dsn, 'SELECT data::text FROM mq_old') == [('"before"',)]
    assert query(dsn, 'SELECT data::text FROM mq') == [('"made again"',)]


def test_a_1_1_server_gets_the_generic_calls(kind, cluster):
    name = cluster.create_database('template1', prefix='q4pg_v11_')
    dsn = cluster.dsn_string(database=name)
    try:
        query(dsn, "CREATE EXTENSION q4pg VERSION '1.1'")

        async def main():
            q = make(kind, dsn, max_connections=1)
            try:
                await q.create_table()
                await q.enqueue('t', 1)
                await q.enqueue_many('t', [2, 3])
                async with q.dequeue('t') as data:
                    assert data == 1
                async with q.lease('t') as message:
                    assert message.data == 2
                assert await q.count('t') == 1
                assert await prepared(q) == []
            finally:
                await q.close()
        run(main())
    finally:
        cluster.drop_database(name)
