"""Long transactions are visible: a consumer holding a dequeued message in an open
transaction can be found by an operator, and the hazard (vacuum held back) is real.

A transactional dequeue keeps its transaction open while the consumer works.
That transaction holds back the xmin horizon: no row deleted after it began,
in any table of the database, can be vacuumed away until it ends; a stuck
consumer bloats every table.  q4pg_consumers() lists such transactions, oldest
first, with their age and pid (to pg_terminate_backend() a stuck one).
"""

import re
import time
import uuid

import psycopg2
import pytest

import q4pg

CONSUMERS = ('SELECT queue::text, pid, xact_age, state FROM q4pg_consumers() '
             "WHERE queue = 'mq'::regclass")


@pytest.fixture
def holders(dsn):
    """open(): a consumer connection (not autocommit) whose dequeues stay in flight."""
    made = []

    def open_one():
        c = psycopg2.connect(dsn)
        made.append(c)
        return c

    yield open_one
    for c in made:
        c.close()


def dequeue(c, tag='t'):
    with c.cursor() as cur:
        cur.execute('SELECT id FROM q4pg_dequeue(%s, %s)', ('mq', tag))
        return cur.fetchone()


def consumers(conn):
    with conn.cursor() as cur:
        cur.execute(CONSUMERS)
        return cur.fetchall()


def test_consumers_show_held_dequeues_oldest_first(dsn, conn, holders):
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('mq')")
        cur.execute("SELECT q4pg_enqueue_many('mq', 't', ARRAY['1', '2', '3'])")
    assert consumers(conn) == []
    first, second, producer = holders(), holders(), holders()
    assert dequeue(first)
    time.sleep(1.1)
    assert dequeue(second)
    with producer.cursor() as cur:        # a producer in an open transaction is no consumer
        cur.execute("SELECT q4pg_enqueue('mq', 't', '4')")
    rows = consumers(conn)
    assert [(q, pid, state) for q, pid, _, state in rows] == [
        ('mq', first.get_backend_pid(), 'idle in transaction'),
        ('mq', second.get_backend_pid(), 'idle in transaction')]
    assert rows[0][2].total_seconds() >= 1.0 and rows[0][2] > rows[1][2]
    # the client shows the same
    with q4pg.QueueManager(dsn, 'mq') as q:
        assert [(r[0], r[1]) for r in q.consumers()] == [(q_, pid) for q_, pid, _, _ in rows]
        assert q.consumers()[0][3].total_seconds() >= 1.0
    first.commit()
    assert [r[1] for r in consumers(conn)] == [second.get_backend_pid()]
    second.rollback()
    producer.commit()
    assert consumers(conn) == []


def test_an_operator_role_sees_the_age(conn, holders, roles_for_operator):
    """The documented operator setup: pg_read_all_stats (to see other roles' sessions)
    and SELECT on the queue."""
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('mq')")
        cur.execute("SELECT q4pg_enqueue('mq', 't', '1')")
    holder = holders()
    assert dequeue(holder)
    time.sleep(1.1)
    operator = roles_for_operator()
    rows = consumers(operator)
    assert [r[1] for r in rows] == [holder.get_backend_pid()]
    assert rows[0][2].total_seconds() >= 1.0


@pytest.fixture
def roles_for_operator(cluster, dbname, conn):
    made = []

    def make():
        name = 'q4pg_rel_operator_' + uuid.uuid4().hex[:8]
        with conn.cursor() as cur:
            cur.execute('CREATE ROLE %s LOGIN IN ROLE pg_read_all_stats' % name)
            cur.execute('GRANT SELECT ON mq TO %s' % name)
        made.append(name)
        c = psycopg2.connect(cluster.dsn_string(database=dbname, user=name))
        c.autocommit = True
        made.append(c)
        return c

    yield make
    for thing in reversed(made):
        if isinstance(thing, str):
            with conn.cursor() as cur:
                cur.execute('DROP OWNED BY %s' % thing)
                cur.execute('DROP ROLE %s' % thing)
        else:
            thing.close()


def vacuum_counts(conn, table):
    """(removed, dead but not yet removable) from VACUUM VERBOSE's report."""
    del conn.notices[:]
    with conn.cursor() as cur:
        cur.execute('VACUUM (VERBOSE) %s' % table)
    text = ''.join(conn.notices)
    m = re.search(r'tuples: (\d+) removed, \d+ remain, (\d+) are dead but not yet removable', text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


def test_held_dequeue_holds_back_vacuum(conn, holders):
    """The hazard: while one consumer holds a message, the rows other consumers
    removed since cannot be vacuumed away; they can as soon as it commits."""
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('mq')")
        cur.execute("SELECT q4pg_enqueue_many('mq', 't', array_fill('1'::text, ARRAY[101]))")
    holder = holders()
    assert dequeue(holder)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM q4pg_dequeue_many('mq', 't', 100)")
        assert cur.fetchone()[0] == 100
    assert vacuum_counts(conn, 'mq') == (0, 100)
    holder.commit()
    assert vacuum_counts(conn, 'mq') == (101, 0)


def test_an_open_transaction_that_found_nothing_is_listed_until_it_ends(conn, holders):
    """q4pg_consumers() lists the open transactions that have run a dequeue on a
    queue: one whose dequeue found the queue empty takes no message, but holds
    back VACUUM just the same, so the operator sees it until it ends."""
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('mq')")
    idle = holders()
    assert dequeue(idle) is None
    assert [row[0] for row in consumers(conn)] == ['mq']
    idle.rollback()
    assert consumers(conn) == []
