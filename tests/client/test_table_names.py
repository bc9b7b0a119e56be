"""table_name is an SQL name, read by the server as SQL reads it (issue 10.4):
'app.jobs' is table jobs in schema app, unquoted names fold to lower case,
double quotes keep case and dots.  schema= is an SQL name too."""

import pytest

import q4pg
from tests.helpers import members_sql


def where(conn, queue):
    """(schema, table) of a queue's regclass text."""
    with conn.cursor() as cur:
        cur.execute('SELECT n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n '
                    'ON n.oid = c.relnamespace WHERE c.oid = %s::regclass', (queue,))
        return cur.fetchone()


def tables(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT n.nspname || ' ' || c.relname FROM pg_class AS c JOIN pg_namespace "
                    "AS n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname IN "
                    "('public', 'app', 'App') AND (c.tableoid, c.oid) NOT IN (%s) ORDER BY 1"
                    % members_sql(cur))
        return [row[0] for row in cur.fetchall()]


@pytest.fixture
def app(conn):
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA app; CREATE SCHEMA "App"')
        cur.execute("CREATE TABLE y (v text); INSERT INTO y VALUES ('still here')")


@pytest.mark.parametrize('table_name, schema, expected', [
    ('app.jobs', None, ('app', 'jobs')),
    ('App.Jobs', None, ('app', 'jobs')),
    ('"App"."Jobs"', None, ('App', 'Jobs')),
    ('jobs', 'app', ('app', 'jobs')),
    ('"Jobs"', '"App"', ('App', 'Jobs')),
    ('"app.jobs"', None, ('public', 'app.jobs')),
    ('MixedCase', None, ('public', 'mixedcase')),
    (' spaced ', None, ('public', 'spaced')),
], ids=lambda x: repr(x))
def test_sql_names(dsn, conn, app, table_name, schema, expected):
    with q4pg.QueueManager(dsn, table_name, schema=schema) as q:
        q.create_table()
        assert where(conn, q.name) == expected
        first = q.enqueue('t', 1)
        assert q.count() == 1
        assert len(q.queues()) == 1
        with q.dequeue_message('t') as message:
            assert message.id == first
    assert tables(conn) == sorted(['public y', ' '.join(expected)])


def test_python_and_sql_name_the_same_queue(dsn, conn, app):
    with q4pg.QueueManager(dsn, 'app.jobs') as q:
        q.create_table()
        q.enqueue('t', {'from': 'python'})
        with conn.cursor() as cur:
            cur.execute("SELECT q4pg_count('app.jobs')")
            assert cur.fetchone() == (1,)
            cur.execute("SELECT q4pg_enqueue('app.jobs', 't', '\"from sql\"')")
        assert q.count('t') == 2
        assert repr(q) == '<q4pg.QueueManager app.jobs>'


@pytest.mark.parametrize('table_name', [
    'mq; DROP TABLE y', "mq'; DROP TABLE y; --", 'a.b.c', '"unclosed', 'x"y', '',
    'nope.mq',
])
def test_names_that_are_no_queue_name_change_nothing(dsn, conn, app, table_name):
    with pytest.raises(q4pg.InvalidArgument):
        q = q4pg.QueueManager(dsn, table_name)
        try:
            q.create_table()
        finally:
            q.close()
    assert tables(conn) == ['public y']
