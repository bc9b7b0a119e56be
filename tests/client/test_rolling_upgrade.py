"""A rolling upgrade: this (1.1) client against a database where q4pg 1.0 is
installed (as an extension, or by q4pg install), then the same QueueManager
while the database is upgraded, and after (q4pg/v10.py; docs/operations.md, "Upgrading with
running consumers")."""

import threading
import time

import psycopg2
import pytest

import q4pg
from q4pg import install, v10
from tests.helpers import WAIT, wait_until

UPGRADE_NAMED = r'q4pg upgrade.*ALTER EXTENSION q4pg UPDATE'


@pytest.fixture(params=['extension', 'sql'])
def dsn_1_0(request, cluster):
    """A database where q4pg 1.0 is installed, as an extension or by q4pg install
    (schema q4pg); (its dsn, form)."""
    name = cluster.create_database('template1', prefix='q4pg_v10_')
    dsn = cluster.dsn_string(database=name)
    if request.param == 'extension':
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION q4pg VERSION '1.0'")
        conn.close()
    else:
        install.install(dsn, version='1.0')
    yield dsn, request.param
    cluster.drop_database(name)


def upgrade(dsn, form):
    if form == 'extension':
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('ALTER EXTENSION q4pg UPDATE')
        conn.close()
    else:
        assert install.upgrade(dsn) == ('1.0', q4pg.__version__)
    assert install.installed(dsn).version == q4pg.__version__


def test_a_1_1_client_serves_1_0s_features_on_a_1_0_database(dsn_1_0):
    dsn, form = dsn_1_0
    q = q4pg.QueueManager(dsn, 'mq', poll_interval=60)
    q.create_table()
    assert q.enqueue('a', {'n': 1}) > 0
    assert len(q.enqueue_many('a', [{'n': 2}, {'n': 3}, {'n': 4}])) == 3
    assert q.count() == 4 and q.count('a') == 4 and q.count('b') == 0
    assert q.count('a', ignore_scheduled=False) == 4      # 1.0 has nothing scheduled
    listed = q.list('a')
    assert [row[2] for row in listed] == ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']
    assert q.list('a', 1) == listed[:1]                     # 1.0's positional limit
    full = q.list('a', full=True)[0]                        # every 1.0 message: due,
    assert full[:4] == listed[0] and full[4:] == (listed[0][3], 0, None, None)   # no failure

    with q.dequeue('a') as data:
        assert data == {'n': 1}
    # a failure rolls back, uncounted, as 1.0 did
    with pytest.raises(KeyError):
        with q.dequeue_message('a') as message:
            assert message.data == {'n': 2}
            raise KeyError
    assert q.count('a') == 3
    with q.dequeue_many('a', 2) as messages:
        assert [m.data for m in messages] == [{'n': 2}, {'n': 3}]
    # in the caller's transaction (q4pg install's schema on its search_path)
    conn = psycopg2.connect(dsn, options='-c search_path=q4pg,public' if form == 'sql' else '')
    with q.dequeue('a', conn) as data:
        assert data == {'n': 4}
    conn.rollback()
    assert q.count('a') == 1
    with q.dequeue('a', conn) as data:
        assert data == {'n': 4}
    conn.commit()
    conn.close()
    assert q.dequeue_immediate('a') is None and q.count() == 0

    # listen: woken by the notification (poll_interval is 60 s)
    pusher = threading.Timer(0.5, q.enqueue, ('l', 'pushed'))
    pusher.start()
    assert list(q.listen('l', stop_after_idle=WAIT, limit=1)) == ['pushed']
    pusher.join()
    q.enqueue('l', 'back')
    with pytest.raises(KeyError):                          # given back, uncounted
        with q.listener('l', stop_after_idle=0) as items:
            for item in items:
                raise KeyError(item)
    assert [row[2] for row in q.list('l')] == ['"back"']
    assert q.cancel(q.list('l')[0][0]) is True
    assert q.queues() == [('mq', 'json', 1023)]
    assert q.queues(full=True) == [('mq', 'json', 1023, None)]
    q.enqueue('s', 1)
    assert [row[:3] for row in q.stats()] == [('mq', 's', 1)]
    assert [row[:3] + row[5:] for row in q.stats(full=True)] == [('mq', 's', 1, 0, 0, 0)]
    q.close()


def test_a_new_manager_knows_1_0_before_its_first_dequeue(dsn_1_0):
    """Its pool's first connection says which q4pg the database has: the first
    dequeue goes the 1.0 way at once, and a failure there loses nothing."""
    dsn, _ = dsn_1_0
    with q4pg.QueueManager(dsn, 'mq') as producer:
        producer.create_table()
        producer.enqueue('a', 'kept')
    q = q4pg.QueueManager(dsn, 'mq')
    with pytest.raises(KeyError):
        with q.dequeue('a') as data:
            assert data == 'kept'
            raise KeyError
    assert q.count() == 1 and q.list(full=True)[0][5] == 0    # given back, uncounted
    q.close()


def test_what_needs_1_1_says_to_upgrade(dsn_1_0):
    dsn, _ = dsn_1_0
    q = q4pg.QueueManager(dsn, 'mq')
    q.create_table()
    q.enqueue('a', 1)
    refusals = {
        'a scheduled message (schedule=)': lambda: q.enqueue('a', 2, schedule=60),
        'a lease': lambda: q.lease('a').__enter__(),
        'next_due (scheduled messages)': lambda: q.next_due('a'),
        'dead letters': q.dead_letters,
        'max_attempts': lambda: q.create_table(max_attempts=3),
        'a lease (listen(lease=))': lambda: next(q.listen('a', lease=5)),
    }
    for what, call in refusals.items():
        with pytest.raises(q4pg.UpgradeNeeded, match=UPGRADE_NAMED) as info:
            call()
        assert isinstance(info.value, q4pg.ExtensionNotInstalled)
        assert str(info.value).startswith('q4pg: %s: this needs q4pg 1.1' % what)
    counting = q4pg.QueueManager(dsn, 'mq', excepted_times_to_ignore=3)
    with pytest.raises(q4pg.UpgradeNeeded, match='excepted_times_to_ignore'):
        with counting.dequeue('a'):
            pass
    counting.close()
    assert q.count() == 1                                   # nothing was taken
    q.close()


def test_the_same_manager_works_across_the_upgrade_then_uses_1_1(dsn_1_0, monkeypatch):
    dsn, form = dsn_1_0
    monkeypatch.setattr(v10, 'RECHECK_SECONDS', 0.2)
    q = q4pg.QueueManager(dsn, 'mq', poll_interval=0.5)
    q.create_table()
    sent, got, errors, stop = [], [], [], threading.Event()

    def produce_and_consume():
        n = 0
        while not stop.is_set():
            try:
                q.enqueue('a', n)
                sent.append(n)
                n += 1
                with q.dequeue('a') as data:
                    if data is not None:
                        got.append(data)
            except Exception as e:          # noqa: BLE001 (recorded, the test fails on it)
                errors.append(e)
            time.sleep(0.005)

    heard = []

    def listen():
        try:
            for item in q.listen('l', stop_after_idle=WAIT):
                heard.append(item)
                if item == 'last':
                    return
        except Exception as e:              # noqa: BLE001
            errors.append(e)

    worker = threading.Thread(target=produce_and_consume)
    listener = threading.Thread(target=listen)
    worker.start()
    listener.start()
    q.enqueue('l', 'before')
    wait_until(lambda: len(got) >= 20 and heard, what='work on 1.0')
    upgrade(dsn, form)
    done = len(got)
    q.enqueue('l', 'after')
    wait_until(lambda: len(got) >= done + 20, what='work after the upgrade')
    q.enqueue('l', 'last')
    listener.join(WAIT)
    stop.set()
    worker.join(WAIT)
    assert errors == []
    assert heard == ['before', 'after', 'last']
    while True:                              # what the worker left: each message once
        with q.dequeue('a') as data:
            if data is None:
                break
            got.append(data)
    assert sorted(got) == sent

    # and 1.1's features, with the same QueueManager
    time.sleep(0.3)                          # its "1.0" is stale: it asks again
    q.enqueue('b', 'later', schedule=3600)
    assert q.count('b') == 0 and q.count('b', ignore_scheduled=False) == 1
    q.enqueue('b', 'fails')
    with pytest.raises(KeyError):
        with q.dequeue('b'):
            raise KeyError('counted')
    [row] = q.list('b', full=True)
    assert row[5] == 1 and 'counted' in row[6]              # attempts, last_error: 1.1's dequeue
    with q.lease('b') as message:
        assert message.data == 'fails'
    q.set_max_attempts(1)
    q.enqueue('c', 'dies')
    with pytest.raises(KeyError):
        with q.dequeue('c'):
            raise KeyError
    assert [row[2] for row in q.dead_letters('c')] == ['"dies"']
    q.close()
