"""The original py-q4pg API, kept (issue 11): a postgresql:// URL as DSN,
schedule, ignore_scheduled, other_sess (psycopg2 and SQLAlchemy), drop_table,
reset_table, positional arguments as the original took them."""

import datetime
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

import q4pg

Q_OPTIONS = dict(poll_interval=60)

INTRANS = psycopg2.extensions.TRANSACTION_STATUS_INTRANS


def url(cluster, dbname, scheme):
    d = cluster.dsn()
    return '%s://%s@%s:%s/%s?application_name=q4pg_url' % (
        scheme, d.get('user', 'postgres'), d['host'], d['port'], dbname)


@pytest.fixture
def caller(dsn):
    """The caller's own psycopg2 connection (not autocommit)."""
    c = psycopg2.connect(dsn)
    yield c
    c.close()


def ids(q, **kwargs):
    return [row[0] for row in q.list(**kwargs)]


# -- a URL as DSN ---------------------------------------------------------------------

@pytest.mark.parametrize('scheme', ['postgresql', 'postgres'])
def test_a_url_dsn_works_for_every_path(cluster, dbname, conn, scheme):
    with q4pg.QueueManager(url(cluster, dbname, scheme), 'mq', max_connections=2,
                           poll_interval=60) as q:
        q.create_table()
        q.enqueue('t', {'n': 1})
        with q.dequeue('t') as data:                        # the pool
            assert data == {'n': 1}
        q.enqueue('t', {'n': 2})
        assert list(q.listen('t', stop_after_idle=0.2)) == [{'n': 2}]   # LISTEN connection
        first = q.enqueue('t', {'n': 3})
        with q.lease('t', seconds=0.3) as message:             # the heartbeat's connection
            time.sleep(0.5)
            assert message.id == first
        assert q.count() == 0
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        "'q4pg_url'")
            assert cur.fetchone()[0] >= 1


def test_a_bad_url_is_an_invalid_dsn():
    with pytest.raises(q4pg.InvalidDsn):
        q4pg.QueueManager('postgresql://host:5432/db?nosuchoption=1')
    with pytest.raises(q4pg.InvalidDsn):
        q4pg.QueueManager('postgres://[::1:5432/db')


# -- positional arguments as the original took them ----------------------------------

def test_the_original_constructor_takes_excepted_times_to_ignore_fifth(dsn):
    with q4pg.QueueManager(dsn, 'mq', 'json', 1023, 3) as q:
        assert q.excepted_times_to_ignore == 3
    with pytest.raises(q4pg.InvalidArgument, match='excepted_times_to_ignore'):
        q4pg.QueueManager(dsn, 'mq', 'json', 1023, -1)


def test_positional_other_sess_and_schedule(q, caller):
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with caller.cursor() as cur:
        first = q.enqueue('t', 'in the caller', cur)
        scheduled = q.enqueue('t', 'later', cur, later)
    caller.commit()
    assert q.list('t', None, False) == q.list('t', ignore_scheduled=False)
    assert [r[0] for r in q.list('t', None, False)] == [first, scheduled]
    assert [r[0] for r in q.list('t', caller)] == [first]     # other_sess, second positional
    assert [r[0] for r in q.list('t', 1)] == [first]          # today's limit, second positional
    caller.rollback()


# -- schedule, ignore_scheduled ---------------------------------------------------------

def test_a_scheduled_message_is_not_delivered_before_its_time(q):
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    scheduled = q.enqueue('t', 'later', schedule=later)
    now = q.enqueue('t', 'now')
    assert q.count('t') == 1 and q.count() == 1
    assert q.count('t', ignore_scheduled=False) == 2
    assert ids(q) == [now]
    rows = q.list(ignore_scheduled=False, full=True)
    assert [r[0] for r in rows] == [now, scheduled]
    assert abs(rows[1][4] - later) < datetime.timedelta(seconds=1)     # run_at
    assert q.dequeue_immediate('t') == 'now'
    assert q.dequeue_immediate('t') is None
    with q.dequeue('t') as data:
        assert data is None
    assert q.next_due('t') is not None and abs(q.next_due('t') - later) < datetime.timedelta(
        seconds=1)
    assert q.cancel(scheduled) is True


def test_schedule_as_a_delay_and_in_the_past(q):
    soon = q.enqueue('t', 'soon', schedule=datetime.timedelta(seconds=0.5))
    assert q.dequeue_immediate('t') is None
    past = q.enqueue('t', 'past', schedule=datetime.datetime(2000, 1, 1,
                                                             tzinfo=datetime.timezone.utc))
    assert ids(q) == [past]
    time.sleep(0.7)
    assert set(ids(q)) == {past, soon}
    many = q.enqueue_many('u', [1, 2], schedule=3600)
    assert q.count('u') == 0 and q.count('u', ignore_scheduled=False) == 2
    assert ids(q, tag='u', ignore_scheduled=False) == many


def test_a_bad_schedule_is_refused_and_stores_nothing(q):
    for bad in (-1, float('nan'), 'tomorrow', datetime.date(2030, 1, 1)):
        with pytest.raises(q4pg.InvalidArgument, match='schedule'):
            q.enqueue('t', 1, schedule=bad)
    assert q.count(ignore_scheduled=False) == 0


# -- drop_table, reset_table ---------------------------------------------------------

def test_drop_table_and_reset_table(q, conn):
    q.enqueue('t', 1)
    q.reset_table()
    assert q.count() == 0
    q.enqueue('t', 2)
    assert q.drop_table() is True
    assert q.drop_table() is False                   # nothing left to drop
    with pytest.raises(q4pg.QueueNotFound):
        q.enqueue('t', 3)
    q.reset_table()                                  # creates it when there was none
    assert q.enqueue('t', 4) > 0


def test_drop_table_refuses_a_table_that_is_no_queue(q, conn):
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE plain (id int)')
    plain = q4pg.QueueManager(q.dsn, 'plain')
    with pytest.raises(q4pg.QueueNotFound):
        plain.drop_table()
    with pytest.raises(q4pg.QueueNotFound):
        plain.reset_table()
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('plain') IS NOT NULL")
        assert cur.fetchone()[0]
    plain.close()


# -- other_sess: psycopg2 ----------------------------------------------------------------

@pytest.mark.parametrize('kind', ['connection', 'cursor'])
def test_other_sess_rollback_leaves_nothing(q, caller, kind):
    sess = caller if kind == 'connection' else caller.cursor()
    q.enqueue('t', 'a', other_sess=sess)
    q.enqueue_many('t', ['b', 'c'], other_sess=sess, schedule=60)
    assert q.count('t', sess) == 1 and q.count('t', sess, False) == 3
    assert caller.info.transaction_status == INTRANS     # never committed by q4pg
    assert q.count(ignore_scheduled=False) == 0          # others see nothing yet
    caller.rollback()
    assert q.count(ignore_scheduled=False) == 0


def test_create_and_drop_table_in_the_callers_transaction(make_queue, dsn, caller, conn):
    q = q4pg.QueueManager(dsn, 'other', poll_interval=60)
    q.create_table(caller)
    q.enqueue('t', 1, caller)
    caller.rollback()
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('other')")
        assert cur.fetchone()[0] is None
    q.create_table(caller)
    caller.commit()
    q.enqueue('t', 1)
    assert q.drop_table(caller) is True
    caller.rollback()                                    # the drop is undone
    assert q.count() == 1
    q.reset_table(caller)
    caller.commit()
    assert q.count() == 0
    q.close()


def test_dequeue_in_the_callers_transaction(q, caller):
    first = q.enqueue('t', 'one')
    with q.dequeue_message('t', caller) as message:
        assert message.id == first
    assert caller.info.transaction_status == INTRANS
    assert q.dequeue_immediate('t') is None              # held by the caller's transaction
    caller.rollback()                                    # ...which gives it back
    assert ids(q) == [first]
    assert q.list(full=True)[0][5] == 0                  # uncounted
    with q.dequeue('t', caller) as data:
        assert data == 'one'
    caller.commit()
    assert q.count() == 0


def test_an_exception_in_the_callers_dequeue_counts_when_the_caller_commits(q, caller):
    first = q.enqueue('t', 'one')
    with pytest.raises(ZeroDivisionError):
        with q.dequeue('t', caller):
            1 / 0
    assert caller.info.transaction_status == INTRANS
    caller.commit()
    [row] = q.list(full=True)
    assert row[0] == first and row[5] == 1 and 'ZeroDivisionError' in row[6]


def test_an_aborted_callers_transaction_is_left_alone(q, caller):
    q.enqueue('t', 'one')
    with pytest.raises(psycopg2.errors.DivisionByZero):
        with q.dequeue('t', caller):
            with caller.cursor() as cur:
                cur.execute('SELECT 1/0')
    caller.rollback()
    assert q.list(full=True)[0][5] == 0


def test_dequeue_on_an_autocommit_connection_runs_a_transaction_of_its_own(q, conn):
    q.enqueue_many('t', ['one', 'two'])
    with q.dequeue('t', conn) as data:
        assert data == 'one'
        assert conn.info.transaction_status == INTRANS
    assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    with pytest.raises(KeyError):
        with q.dequeue('t', conn):
            raise KeyError('x')
    assert q.list(full=True)[0][5] == 1
    assert q.dequeue_immediate('t', conn) == 'two'
    assert q.count() == 0


def test_other_sess_must_be_a_session(q):
    with pytest.raises(q4pg.InvalidArgument, match='other_sess'):
        q.enqueue('t', 1, other_sess='dbname=x')
    with pytest.raises(q4pg.InvalidArgument, match='not both'):
        q.enqueue('t', 1, other_sess=object(), conn=object())


def test_cancel_and_list_in_the_callers_transaction(q, caller):
    first = q.enqueue('t', 1)
    assert q.cancel(first, caller) is True
    assert q.list('t', caller) == []
    caller.rollback()
    assert ids(q) == [first]


# -- other_sess: SQLAlchemy ------------------------------------------------------------

sqlalchemy = pytest.importorskip('sqlalchemy')
orm = pytest.importorskip('sqlalchemy.orm')


@pytest.fixture
def engine(dsn):
    params = psycopg2.extensions.parse_dsn(dsn)
    engine = sqlalchemy.create_engine('postgresql+psycopg2://', connect_args=params)
    yield engine
    engine.dispose()


def test_sqlalchemy_session(q, engine):
    with orm.Session(engine) as session:
        q.enqueue('t', 'rolled back', session)
        assert q.count('t', session) == 1
        session.rollback()
        assert q.count() == 0
        session.execute(sqlalchemy.text('CREATE TABLE orders (id int)'))
        q.enqueue('t', 'committed', session)
        session.commit()
    assert [r[2] for r in q.list()] == ['"committed"']
    with orm.Session(engine) as session:
        with q.dequeue('t', session) as data:
            assert data == 'committed'
        assert q.dequeue_immediate('t') is None           # held by the session's transaction
        session.commit()
    assert q.count() == 0


def test_sqlalchemy_connection(q, engine):
    with engine.connect() as connection:
        q.enqueue('t', 'rolled back', connection)
        connection.rollback()
        assert q.count() == 0
        q.enqueue('t', 'committed', connection)
        connection.commit()
    assert q.count() == 1
    with engine.connect() as connection:
        with pytest.raises(ValueError):
            with q.dequeue('t', connection):
                raise ValueError('boom')
        connection.commit()
    assert q.list(full=True)[0][5] == 1


def test_sqlalchemy_errors_are_q4pg_errors(dsn, engine):
    missing = q4pg.QueueManager(dsn, 'no_such_queue')
    with orm.Session(engine) as session:
        with pytest.raises(q4pg.QueueNotFound):
            missing.enqueue('t', 1, session)
    missing.close()


# -- a 1.1 client on a database still at 1.0 ------------------------------------------

def test_a_database_at_1_0_says_to_update_the_extension(bare_dsn):
    with psycopg2.connect(bare_dsn) as c:
        with c.cursor() as cur:
            cur.execute("CREATE EXTENSION q4pg VERSION '1.0'")
    c.close()
    with q4pg.QueueManager(bare_dsn, 'mq') as q:
        q.create_table()
        assert q.enqueue('t', 1) > 0                   # 1.0's calls work as they did
        with q.dequeue('t') as data:                   # (tests/client/test_rolling_upgrade.py)
            assert data == 1
        with pytest.raises(q4pg.ExtensionNotInstalled, match='ALTER EXTENSION q4pg UPDATE'):
            q.enqueue('t', 2, schedule=60)             # 1.1's: UpgradeNeeded
