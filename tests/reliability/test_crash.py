"""Server crash: immediate stop and start while producers and listeners run.

On a cluster of its own (fsync on), three producer processes keep enqueueing
(one message per call, three and five per enqueue_many call) on tags a, b and
c; two listener processes (one long-lived listen() generator each) consume
tags a and b (tag c piles up: a backlog that must survive), while the
test crash-stops the server (SIGQUIT to the postmaster, as pg_ctl stop -m
immediate) and starts it again, several times.

Every enqueue that returned an id is delivered in the end (nothing acknowledged
to a producer is lost); every call that failed raised q4pg.ConnectionLost,
never anything else and never silently; the listeners reconnect on their own
and receive what is enqueued after each restart.
"""

import collections
import json
import os
import random
import signal
import time
import uuid

import psycopg2
import pytest

from tests.helpers import wait_until
from tests.reliability.helpers import listen_pids, query


def enqueue_sentinel(dsn, queue, tag, n):
    rows = query(dsn, 'SELECT q4pg_enqueue(%s::regclass, %s, %s)',
                 (queue, tag, json.dumps({'sentinel': '%s-%d' % (tag, n)})))
    return rows[0][0]


def run_crashes(crash_cluster, logdir, workers, figures, crashes):
    dsn = crash_cluster.dsn()
    queue = 'mq_' + uuid.uuid4().hex[:8]
    query(dsn, 'SELECT q4pg_create_queue(%s)', (queue,))
    stop_file = os.path.join(logdir, 'stop')
    tags = ('a', 'b')
    listeners = {tag: workers.start('listen-' + tag, 'listen', logdir, dsn=dsn, queue=queue,
                                    tag=tag, poll_interval=1.0)
                 for tag in tags}
    wait_until(lambda: len(listen_pids(dsn)) == 2, 30, 'both listeners to LISTEN')
    producers = [
        workers.start('produce-a', 'produce', logdir, dsn=dsn, queue=queue, tag='a',
                      producer='produce-a',
                      pause=0.02, stop_file=stop_file),
        workers.start('produce-b', 'produce', logdir, dsn=dsn, queue=queue, tag='b',
                      producer='produce-b',
                      batch=3, pause=0.02, stop_file=stop_file),
        # nobody consumes tag c while the server crashes: its backlog must survive
        workers.start('produce-c', 'produce', logdir, dsn=dsn, queue=queue, tag='c',
                      producer='produce-c',
                      batch=5, pause=0.02, stop_file=stop_file),
    ]
    wait_until(lambda: all(any(e['ev'] == 'ok' for e in p.events()) for p in producers), 30,
               'both producers to enqueue')

    sentinels = {}  # 'tag-crash number' -> id
    rng = random.Random()

    def sentinels_delivered(w):
        return {json.loads(e['data']).get('sentinel') for e in w.events() if e['ev'] == 'got'}

    for n in range(1, crashes + 1):
        time.sleep(rng.uniform(0.5, 1.5))
        crash_cluster.crash()
        time.sleep(rng.uniform(0.3, 1.0))
        crash_cluster.start()
        figures.add('crashes')
        for tag in tags:
            sentinels['%s-%d' % (tag, n)] = enqueue_sentinel(dsn, queue, tag, n)
        # the listeners reconnected by themselves and take what comes after the restart
        for tag in tags:
            sentinel = '%s-%d' % (tag, n)
            wait_until(lambda: sentinel in sentinels_delivered(listeners[tag]), 60,
                       'listener %s to receive the message enqueued after crash %d' % (tag, n))
        # the producers go on
        for p in producers:
            mark = len(p.events())
            wait_until(lambda: any(e['ev'] == 'ok' for e in p.events()[mark:]), 60,
                       '%s to enqueue again after crash %d' % (p.name, n))

    open(stop_file, 'w').close()
    for p in producers:
        assert p.wait(timeout=60) == 0, p.stderr()
    wait_until(lambda: query(dsn, "SELECT q4pg_count(%s::regclass, 'a') + "
                                  "q4pg_count(%s::regclass, 'b')", (queue, queue))[0][0] == 0, 120,
               'the listeners to drain tags a and b')
    for w in listeners.values():
        assert w.alive(), 'listener %s died:\n%s' % (w.name, w.stderr())
        w.kill(signal.SIGTERM)

    # account for every call of every producer
    returned = {}                      # (producer, seq) -> id
    failed = set()                     # (producer, seq) of calls that raised ConnectionLost
    lost_calls = collections.Counter()
    other_errors = []
    for p in producers:
        for e in p.events():
            if e['ev'] == 'ok':
                returned[p.name, e['seq']] = e['id']
            elif e['ev'] == 'lost':
                failed.update((p.name, s) for s in e['seqs'])
                lost_calls[p.name] += 1
            elif e['ev'] in ('err', 'bad', 'crash'):
                other_errors.append((p.name, e))
    # messages are known by what they carry (producer, seq), not by id: an id could
    # come back after a crash (a sequence reset) and mask a lost message
    deliveries = collections.defaultdict(list)   # (producer, seq) or ('sentinel', n) -> ids
    for w in listeners.values():
        for e in w.events():
            if e['ev'] == 'got':
                d = json.loads(e['data'])
                key = ('sentinel', d['sentinel']) if 'sentinel' in d else (d['p'], d['seq'])
                deliveries[key].append(e['id'])
    # the backlog of tag c, still queued
    for id_, data in query(dsn, "SELECT id, data FROM q4pg_list(%s::regclass, 'c')", (queue,)):
        d = json.loads(data)
        deliveries[d['p'], d['seq']].append(id_)
    lost = {k: i for k, i in returned.items() if k not in deliveries}
    wrong = []
    for key, ids in deliveries.items():
        if key[0] == 'sentinel':
            continue
        if key in returned:
            if set(ids) != {returned[key]}:
                wrong.append((key, ids, 'returned id %s' % returned[key]))
        elif key not in failed:
            wrong.append((key, ids, 'no call sent it'))
    unknown_delivered = sum(1 for k in deliveries if k in failed)
    redelivered = sum(1 for ids in deliveries.values() if len(ids) > 1)
    missing_sentinels = [k for k, i in sentinels.items()
                         if i not in deliveries.get(('sentinel', k), [])]

    figures.add('messages', len(returned) + len(sentinels))
    figures.add('lost', len(lost))
    figures.add('redelivered', redelivered)
    print('crashes: %d crashes, %d enqueues returned, %d calls raised ConnectionLost %s '
          '(%d of their messages were stored all the same), %d redelivered'
          % (crashes, len(returned), sum(lost_calls.values()), dict(lost_calls),
             unknown_delivered, redelivered))

    assert not other_errors, 'producer calls failed with something other than ConnectionLost: %s' \
        % other_errors[:5]
    assert not lost, '%d enqueues returned an id but the message is gone: %s' % (
        len(lost), sorted(lost.items())[:10])
    assert not wrong, 'deliveries that match no enqueue: %s' % wrong[:10]
    assert not missing_sentinels
    for p in producers:
        assert lost_calls[p.name] >= crashes, (
            '%s saw fewer ConnectionLost errors than there were crashes' % p.name)
    assert crash_cluster.pg.child_process is not None


def test_crash_twice_with_producers_and_listeners(crash_cluster, logdir, workers, figures):
    run_crashes(crash_cluster, logdir, workers, figures, crashes=2)


@pytest.mark.soak
def test_crash_soak_20_times(crash_cluster, logdir, workers, figures):
    run_crashes(crash_cluster, logdir, workers, figures, crashes=20)


def test_enqueue_returned_before_crash_survives_it(crash_cluster, figures):
    """The simplest case, without other processes: committed enqueues survive a crash;
    an uncommitted one (the caller's own transaction) does not come back."""
    import q4pg
    dsn = crash_cluster.dsn()
    queue = 'mq_' + uuid.uuid4().hex[:8]
    with q4pg.QueueManager(dsn, queue) as q:
        q.create_table()
        ids = q.enqueue_many('t', [{'n': n} for n in range(100)])
        conn = psycopg2.connect(dsn)
        uncommitted = q.enqueue('t', {'n': 'uncommitted'}, conn=conn)
        crash_cluster.crash()
        crash_cluster.start()
        figures.add('crashes')
        # the pool's connections died in the crash: the client notices and reconnects
        assert q.count('t') == 100
        with pytest.raises(q4pg.ConnectionLost):
            q.enqueue('t', {'n': 'x'}, conn=conn)
        conn.close()
        assert [row[0] for row in q.list('t')] == ids
        assert uncommitted not in [row[0] for row in q.list('t')]
        with q.dequeue_many('t', 1000) as messages:
            assert [m.data for m in messages] == [{'n': n} for n in range(100)]
        figures.add('messages', 100)


def test_harness_stop_immediately_really_crashes():
    """tools/pgcluster.Cluster.stop_immediately() must crash-stop (SIGQUIT), not shut down
    cleanly: other tests rely on it to simulate a crash.  (testing.postgresql's
    Postgresql.terminate() ignores the signal it is given and sends SIGINT.)"""
    from tools.pgcluster import Cluster
    pg = Cluster()
    try:
        pg.stop_immediately()
        pg.start()
        log = pg.read_bootlog()
        assert 'not properly shut down' in log or 'was interrupted' in log, log
    finally:
        pg.stop()
