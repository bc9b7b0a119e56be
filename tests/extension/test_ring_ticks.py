"""The ring's maintenance runs at the commits of q4pg's consumers (ticks,
sql/src/07_ring_ticks.sql): under a pinned horizon the ring moves on and a
drained slot is truncated with no call of q4pg_maintain; with the horizon
free the ring stays where it is (pruning and vacuum keep its slot small); a
DELETE by hand ticks nothing; a role that may not delete from a queue may not
tick it."""

import psycopg2
import pytest


def _one(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0] if cur.description else None


def _ring(conn):
    """(the ring's state, slot 0's relfilenode: TRUNCATE gives it a new one)."""
    return (_one(conn, "SELECT pg_sequence_last_value(p.state) "
                       "FROM q4pg_ring_parts('mq', q4pg_ring_key('mq')) AS p"),
            _one(conn, "SELECT pg_relation_filenode(p.slots[1]) "
                       "FROM q4pg_ring_parts('mq', q4pg_ring_key('mq')) AS p"))


@pytest.fixture
def pinned(dsn):
    """A session holding a snapshot: nothing removed from now on can be vacuumed."""
    c = psycopg2.connect(dsn)
    c.set_session(isolation_level='REPEATABLE READ')
    with c.cursor() as cur:
        cur.execute('SELECT 1')
    yield c
    c.close()


def _churn(conn, take, rounds=600):
    for n in range(rounds):
        _one(conn, """SELECT q4pg_enqueue('mq', 't', '{"n": %d, "pad": "%s"}')""" % (n, 'x' * 60))
        assert _one(conn, take) is not None


def test_consumers_commits_move_the_ring_and_truncate_drained_slots(conn, pinned):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    before = _ring(conn)
    _churn(conn, "SELECT id FROM q4pg_dequeue('mq', 't')")
    after = _ring(conn)
    assert after[0] != before[0]            # the ring moved on
    assert after[1] != before[1]            # slot 0 was drained and truncated
    assert _one(conn, "SELECT count(*) FROM q4pg_ring_ticks") == 0
    assert _one(conn, "SELECT q4pg_count('mq')") == 0


def test_leases_acked_and_batches_move_the_ring_too(conn, pinned):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    before = _ring(conn)
    _churn(conn, "SELECT q4pg_ack('mq', l.id, l.lease_token) FROM q4pg_lease('mq', 't', 1, '1 min') AS l",
           rounds=400)
    assert _ring(conn)[0] != before[0]
    states = set()
    for n in range(20):
        _one(conn, "SELECT count(*) FROM q4pg_enqueue_many('mq', 't', array_fill(%s::text, ARRAY[64]))",
             ('{"pad": "%s"}' % ('x' * 60),))
        assert _one(conn, "SELECT count(*) FROM q4pg_dequeue_many('mq', 't', 64)") == 64
        states.add(_ring(conn))
    assert len(states) >= 4                 # the ring went round (and came back: a cycle)


def test_with_the_horizon_free_the_ring_stays(conn):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    before = _ring(conn)
    _churn(conn, "SELECT id FROM q4pg_dequeue('mq', 't')")
    assert _one(conn, "SELECT pg_relation_size(p.slots[1]) "
                      "FROM q4pg_ring_parts('mq', q4pg_ring_key('mq')) AS p") >= 16384
    assert _ring(conn) == before            # full, but nothing holds the horizon
    assert _one(conn, 'SELECT q4pg_horizon_held()') is False


def test_a_slot_the_ring_keeps_is_analyzed_as_it_grows(conn):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    _one(conn, 'VACUUM ANALYZE mq')                     # empty: 0 pages known
    relpages = ("SELECT c.relpages FROM q4pg_ring_parts('mq', q4pg_ring_key('mq')) AS p "
                "JOIN pg_class AS c ON c.oid = p.slots[1]")
    assert _one(conn, relpages) == 0
    _one(conn, "SELECT count(*) FROM q4pg_enqueue_many('mq', 't', array_fill(%s::text, ARRAY[2000]))",
         ('{"pad": "%s"}' % ('x' * 60),))
    assert 'slot 0 analyzed' in _one(conn, "SELECT q4pg_maintain('mq')")
    pages = _one(conn, relpages)
    assert pages > 4
    assert 'analyzed' not in _one(conn, "SELECT q4pg_maintain('mq')")     # not again until 4x


def test_a_snapshot_older_than_the_lag_holds_the_horizon(conn, dsn, pinned):
    with conn.cursor() as cur:
        cur.execute("SET q4pg.horizon_lag_xids = 20")
    for _ in range(25):
        _one(conn, 'SELECT txid_current()')             # the pin grows older
    assert _one(conn, 'SELECT q4pg_horizon_held()') is True
    pinned.rollback()                                   # the pin ends
    assert _one(conn, 'SELECT q4pg_horizon_held()') is False
    for _ in range(25):
        _one(conn, 'SELECT txid_current()')
    # a free horizon is remembered for a second: a new pin is seen after it
    pinned.cursor().execute('SELECT 1')
    assert _one(conn, 'SELECT q4pg_horizon_held()') is False
    _one(conn, "SELECT set_config('q4pg.horizon_free_until', '', false)")
    assert _one(conn, 'SELECT q4pg_horizon_held()') is False    # (young: 0 xids old)
    for _ in range(25):
        _one(conn, 'SELECT txid_current()')
    _one(conn, "SELECT set_config('q4pg.horizon_free_until', '', false)")
    assert _one(conn, 'SELECT q4pg_horizon_held()') is True
    with conn.cursor() as cur:
        cur.execute("SET q4pg.horizon_lag_xids = -1")
    pinned.rollback()
    assert _one(conn, 'SELECT q4pg_horizon_held()') is True     # -1: always


def test_a_delete_by_hand_ticks_nothing(conn, pinned):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    before = _ring(conn)
    _churn(conn, "DELETE FROM mq WHERE id = (SELECT min(id) FROM mq) RETURNING id")
    assert _ring(conn) == before
    assert _one(conn, "SELECT q4pg_maintain('mq')") != ''      # by hand it does its work


def test_only_a_role_that_may_empty_a_queue_may_tick_it(conn, dsn):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    _one(conn, 'CREATE ROLE q4pg_reader LOGIN')
    _one(conn, 'GRANT SELECT ON mq TO q4pg_reader')
    try:
        reader = psycopg2.connect(dsn, user='q4pg_reader')
        with pytest.raises(psycopg2.Error) as error:
            _one(reader, "SELECT q4pg_ring_tick('mq')")
        assert error.value.pgcode == '42501'
        reader.close()
    finally:
        _one(conn, 'DROP OWNED BY q4pg_reader')
        _one(conn, 'DROP ROLE q4pg_reader')
