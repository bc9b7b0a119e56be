"""Clients that share one server session through PgBouncer still reach their own queues.

A session remembers its route to a queue's generated functions in the
settings q4pg.name_<oid> and q4pg.route_<oid> (docs/operations.md, "A plan per queue").
Behind a transaction-mode pooler the next client of the same server session
(same database and role) inherits them.  That is correct when a route is only
taken for the same table (the settings are keyed by its oid), whose name, as
this caller sees it, is still the one the route was made for; any other name
makes the call look again.  Here three queues are all called "mq" (in schemas
a, b and public), and clients with different search_paths take turns on a pool
of ONE server connection.
"""

import psycopg2
import pytest

import q4pg
from tools.pgbouncer import PgBouncer

CLIENTS = {'a': 'a, public', 'b': 'b, public', 'public': None}  # schema -> search_path


@pytest.fixture
def one_session(cluster, dbname):
    """A transaction-mode PgBouncer with a single server connection: its DSN."""
    with PgBouncer(cluster, pool_mode='transaction', pool_size=1) as bouncer:
        yield bouncer.dsn_string(database=dbname)


class Client:
    """A connection through the pooler that runs each call in a transaction of its
    own, with its search_path set for that transaction only (SET LOCAL: a session
    setting would leak to the pooler's other clients)."""

    def __init__(self, dsn, search_path):
        self.conn = psycopg2.connect(dsn)
        self.search_path = search_path
        self.server_pids = set()

    def call(self, query, *args):
        with self.conn, self.conn.cursor() as cur:
            if self.search_path:
                cur.execute("SELECT set_config('search_path', %s, true)", (self.search_path,))
            cur.execute('SELECT pg_backend_pid()')
            self.server_pids.add(cur.fetchone()[0])
            cur.execute(query, args)
            return cur.fetchall()

    def close(self):
        self.conn.close()


@pytest.fixture
def clients(one_session, conn):
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA a; CREATE SCHEMA b; SELECT q4pg_create_queue('a.mq'), "
                    "q4pg_create_queue('b.mq', 'jsonb'), q4pg_create_queue('public.mq', 'json', 100)")
    made = {schema: Client(one_session, path) for schema, path in CLIENTS.items()}
    yield made
    for client in made.values():
        client.close()


def contents(conn, schema):
    with conn.cursor() as cur:
        cur.execute('SELECT data::text FROM %s.mq ORDER BY id' % schema)
        return [row[0] for row in cur.fetchall()]


def test_clients_with_other_search_paths_reach_their_own_queues(clients, one_session, conn):
    for n in range(3):
        for schema, client in clients.items():
            client.call("SELECT q4pg_enqueue('mq', 't', %s)", '"%s %d"' % (schema, n))
    # the session remembers the routes other clients left, by schema-qualified name
    assert clients['public'].call(
        "SELECT current_setting('q4pg.name_' || 'a.mq'::regclass::oid), "
        "       current_setting('q4pg.name_' || 'b.mq'::regclass::oid)") == [('a.mq', 'b.mq')]
    # QueueManagers, whose names are qualified or resolved in the role's search_path
    managers = {'a': q4pg.QueueManager(one_session, 'mq', schema='a'),
                'b': q4pg.QueueManager(one_session, 'b.mq', data_type='jsonb'),
                'public': q4pg.QueueManager(one_session, 'mq', data_length=100)}
    try:
        for schema, q in managers.items():
            q.enqueue('t', '%s q' % schema)
        assert [server for c in clients.values() for server in c.server_pids] == \
            [next(iter(clients['a'].server_pids))] * 3        # one server session for all
        for schema in CLIENTS:
            assert contents(conn, schema) == ['"%s 0"' % schema, '"%s 1"' % schema,
                                              '"%s 2"' % schema, '"%s q"' % schema]
        # and they take back their own, in turns
        for n in range(3):
            for schema, client in clients.items():
                [(data,)] = client.call("SELECT data FROM q4pg_dequeue('mq', 't')")
                assert data == '"%s %d"' % (schema, n)
        for schema, q in managers.items():
            with q.dequeue('t') as data:
                assert data == '%s q' % schema
            assert q.count() == 0
    finally:
        for q in managers.values():
            q.close()


def test_a_moved_queue_is_not_reached_through_an_old_route(clients, conn):
    a = Client(clients['a'].conn.dsn, 'a, b, public')   # sees a.mq as "mq"
    b = Client(clients['b'].conn.dsn, 'b, a, public')   # sees b.mq as "mq"
    try:
        a.call("SELECT q4pg_enqueue('mq', 't', %s)", '"to a.mq"')
        with conn.cursor() as cur:
            cur.execute("DROP TABLE b.mq; ALTER TABLE a.mq SET SCHEMA b; "
                        "SELECT q4pg_create_queue('a.mq')")
        b.call("SELECT q4pg_enqueue('mq', 't', %s)", '"to b.mq"')
        assert a.server_pids == b.server_pids
        assert contents(conn, 'a') == []
        assert contents(conn, 'b') == ['"to a.mq"', '"to b.mq"']
    finally:
        a.close()
        b.close()
