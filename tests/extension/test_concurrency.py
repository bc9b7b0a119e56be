"""Concurrent consumers: every message exactly once; a killed consumer's message comes back."""

import collections
import signal
import subprocess
import sys
import threading

import pytest

import q4pg
from tests.helpers import WAIT

N = 2000
CONSUMERS = 4
APP = 'q4pg_concurrency_test'

# A consumer process: listens until 3 s pass without a message, prints each id.
LISTEN_CONSUMER = r'''
import sys, q4pg
q = q4pg.QueueManager(sys.argv[1], 'mq')
q.channel('tag')
print('ready', flush=True)
for message in q.listen('tag', stop_after_idle=3, full=True):
    print(message.id, flush=True)
q.close()
'''

# A consumer process that takes one message and holds it until it is killed.
HOLDING_CONSUMER = r'''
import sys, time, q4pg
q = q4pg.QueueManager(sys.argv[1], 'mq')
if sys.argv[2] == 'dequeue':
    with q.dequeue_message('tag') as message:
        print(message.id, flush=True)
        time.sleep(600)
else:
    for message in q.listen('tag', full=True):
        print(message.id, flush=True)
        time.sleep(600)
'''


def python(script, *args):
    return subprocess.Popen([sys.executable, '-c', script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def produce(q, n=N, chunk=100):
    ids = []
    for start in range(0, n, chunk):
        ids += q.enqueue_many('tag', [{'n': i} for i in range(start, min(n, start + chunk))])
    return ids


def assert_exactly_once(produced, consumed):
    counts = collections.Counter(consumed)
    assert [i for i, c in counts.items() if c > 1] == []
    assert sorted(counts) == sorted(produced)


def test_threads_sharing_a_queue_manager_get_each_message_once(q):
    produced = produce(q)
    consumed = []
    errors = []

    def consume():
        try:
            while True:
                with q.dequeue_message('tag') as message:
                    if message is None:
                        return
                    consumed.append(message.id)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=consume) for _ in range(CONSUMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert errors == []
    assert_exactly_once(produced, consumed)
    assert q.count() == 0


def test_processes_listening_get_each_message_once(q, dsn):
    consumers = [python(LISTEN_CONSUMER, dsn) for _ in range(CONSUMERS)]
    try:
        for p in consumers:
            assert p.stdout.readline() == 'ready\n'
        produced = produce(q)               # while they listen
        consumed = []
        for p in consumers:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            consumed += [int(line) for line in out.split()]
    finally:
        for p in consumers:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert_exactly_once(produced, consumed)
    assert q.count() == 0


@pytest.mark.parametrize('how', ['dequeue', 'listen'])
def test_message_of_a_killed_consumer_comes_back(q, dsn, how):
    first = q.enqueue('tag', {'n': 1})
    consumer = python(HOLDING_CONSUMER, dsn, how)
    try:
        assert consumer.stdout.readline() == '%d\n' % first
        # Held: still counted, but nobody else gets it and it cannot be cancelled.
        assert q.count('tag') == 1
        assert q.dequeue_immediate('tag') is None
        assert q.cancel(first) is False
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(WAIT)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
        consumer.stdout.close()
        consumer.stderr.close()
    assert consumer.returncode == -signal.SIGKILL
    # The server notices the dead client and rolls back: the message is delivered again.
    # (No NOTIFY for a rollback: the listener's poll_interval finds it.)
    later = q4pg.QueueManager(dsn, 'mq', poll_interval=0.5)
    got = [m.id for m in later.listen('tag', stop_after_idle=WAIT, limit=1, full=True)]
    assert got == [first]
    assert q.count() == 0
    later.close()


def test_many_threads_share_at_most_max_connections(dsn, conn):
    max_connections = 3
    q = q4pg.QueueManager(dsn + ' application_name=' + APP, 'mq',
                          max_connections=max_connections)
    q.create_table()
    per_thread = 50
    enqueued, dequeued, errors = [], [], []
    seen_pids = set()
    most = [0]
    done = threading.Event()

    def monitor():
        with conn.cursor() as cur:
            while not done.is_set():
                cur.execute('SELECT pid FROM pg_stat_activity WHERE application_name = %s', (APP,))
                pids = [row[0] for row in cur.fetchall()]
                seen_pids.update(pids)
                most[0] = max(most[0], len(pids))

    def work(n):
        try:
            for i in range(per_thread):
                enqueued.append(q.enqueue('tag', {'thread': n, 'i': i}))
                while True:
                    with q.dequeue_message('tag') as message:
                        if message is not None:
                            dequeued.append(message.id)
                            break
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
        assert not t.is_alive()
    done.set()
    watcher.join()
    assert errors == []
    assert len(enqueued) == 16 * per_thread
    assert_exactly_once(enqueued, dequeued)
    assert q.count() == 0
    assert 1 <= most[0] <= max_connections
    assert len(seen_pids) <= max_connections     # reused, not reopened
    q.close()


def test_pool_blocks_until_a_connection_comes_back(dsn):
    q = q4pg.QueueManager(dsn, 'mq', max_connections=1)
    q.create_table()
    q.enqueue('tag', 1)
    counted = []
    with q.dequeue('tag') as data:
        assert data == 1
        counter = threading.Thread(target=lambda: counted.append(q.count('tag')))
        counter.start()
        counter.join(0.5)
        assert counted == []            # waits for the only connection
    counter.join(WAIT)
    assert counted == [0]
    q.close()

