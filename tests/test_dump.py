"""pg_dump / pg_restore: waiting messages survive, and the restored queue works."""

import os
import subprocess
import threading

import pytest

import q4pg

WAIT = 10  # seconds: generous liveness timeout


def run(cluster, *args):
    env = dict(os.environ, **cluster.env())
    return subprocess.run(args, env=env, capture_output=True, text=True, check=True)


def test_dump_and_restore(cluster, dbname, dsn, restored, tmp_path):
    q = q4pg.QueueManager(dsn, 'mq')
    q.create_table()
    t = q4pg.QueueManager(dsn, 'Text Queue', 'text', 20)
    t.create_table()
    ids = q.enqueue_many('tag', [{'n': n} for n in range(5)])
    q.enqueue('other', {'ü': '日本'})
    with q.dequeue('tag') as data:                 # an id below the others is gone
        assert data == {'n': 0}
    t.enqueue('tag', 'plain text')
    before = (q.list(), t.list())
    q.close()
    t.close()

    dump = tmp_path / 'db.dump'
    run(cluster, 'pg_dump', '-Fc', '-f', str(dump), '-d', dbname)
    listing = run(cluster, 'pg_restore', '-l', str(dump)).stdout
    assert 'EXTENSION - q4pg' in listing
    run(cluster, 'pg_restore', '--exit-on-error', '-d', restored, str(dump))

    new_dsn = cluster.dsn_string(database=restored)
    q = q4pg.QueueManager(new_dsn, 'mq', poll_interval=60)
    t = q4pg.QueueManager(new_dsn, 'Text Queue', 'text', 20)
    # Every waiting message is there, as it was.
    assert (q.list(), t.list()) == before
    assert q.queues() == [('"Text Queue"', 'text', 20), ('mq', 'json', 1023)]
    q.create_table()                               # the same settings: still the same queue
    t.create_table()

    # The queue works: new ids continue above the old ones, NOTIFY wakes a listener.
    new = q.enqueue('tag', {'n': 'new'})
    assert new > max(ids)
    assert t.enqueue('tag', 'new') > before[1][-1][0]
    timer = threading.Timer(0.5, q.enqueue, ('wake', 'up'))
    timer.start()
    assert list(q.listen('wake', timeout=WAIT, limit=1)) == ['up']
    timer.join()
    with q.dequeue_many('tag', 10) as messages:
        assert [m.id for m in messages] == ids[1:] + [new]
    assert q.dequeue_immediate('other') == {'ü': '日本'}
    assert t.dequeue_immediate('tag') == 'plain text'
    with pytest.raises(q4pg.InvalidMessage):
        t.enqueue('tag', 'x' * 21)                 # the length limit came along
    q.close()
    t.close()
