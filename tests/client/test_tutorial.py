"""The seed README's tutorial (py-q4pg), step by step, in Python 3.

Two places where the seed cannot be taken literally:
* its listen example enqueues {'foo', 'bar'}, a Python set, which is not JSON:
  q4pg refuses it (InvalidMessage); we send the dict {'foo': 'bar'} it means.
* listen('tag') yields the oldest waiting message first, and the seed still
  has messages 2 and 3 waiting at that point, yet shows the listener getting
  the new message and the later steps finding 2 and 3 untouched.  We keep
  2 and 3 held by another consumer while the listener runs (SKIP LOCKED lets
  it pass them), then give them back, so every later step shows exactly the
  seed's output.
"""

import datetime
import threading

import pytest

import q4pg
from tests.helpers import WAIT, wait_until


class GiveBack(Exception):
    """Leaves a with block by an exception, so what it holds goes back to the queue."""


def listener_asleep(conn, tag):
    """True when a listener has told q4pg_go_idle it waits for `tag`, and sleeps."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM q4pg_idle_listeners AS w JOIN pg_stat_activity AS a "
                    "ON a.pid = w.pid WHERE w.tag = %s AND a.state = 'idle' "
                    "AND a.query LIKE 'SELECT q4pg_go_idle(%%'", (tag,))
        return cur.fetchone()[0] > 0


def test_tutorial_json_queue(dsn, conn):
    q = q4pg.QueueManager(
        dsn=dsn,            # psycopg2's dsn argument
        table_name='mq',    # name of the table to use
        data_type='json',   # stored data type: 'json' or 'text'
        data_length=1023)   # data string max length

    # To create queue table
    assert q.create_table() is None

    # enqueue
    assert q.enqueue('tag', {'the_data': 'must_be'}) == 1
    assert q.enqueue('tag', {'json': 'serializable_data'}) == 2
    assert q.enqueue('tag', {'more': 'data'}) == 3

    # dequeue
    with q.dequeue('tag') as dq:
        assert dq == {'the_data': 'must_be'}
    with q.dequeue('another-tag') as dq:
        assert dq is None

    # show list
    listed = q.list('tag')
    assert [row[:3] for row in listed] == [(2, 'tag', '{"json":"serializable_data"}'),
                                           (3, 'tag', '{"more":"data"}')]
    assert all(isinstance(row[3], datetime.datetime) for row in listed)

    # dequeue (guard): an error inside the with block leaves the message
    seen = []
    with pytest.raises(ZeroDivisionError):
        with q.dequeue('tag') as dq:
            seen.append(dq)
            1 / 0
    assert seen == [{'json': 'serializable_data'}]
    assert q.list('tag') == listed

    # dequeue (listen): (1) waits, (2) someone pushes, (1) gets it.
    # The seed's {'foo', 'bar'} is a set: not JSON, refused without storing.
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue('tag', {'foo', 'bar'})
    assert q.list('tag') == listed
    q.poll_interval = 60    # so only the notification can wake the listener in time
    pushed = []

    def someone_pushes():
        if wait_until(lambda: listener_asleep(conn, 'tag')):
            pushed.append(q.enqueue('tag', {'foo': 'bar'}))

    got = []
    with pytest.raises(GiveBack):
        with q.dequeue_many('tag', 2) as held:        # keeps 2 and 3 out of the listener's way
            assert [m.id for m in held] == [2, 3]
            pusher = threading.Thread(target=someone_pushes)
            pusher.start()
            for i in q.listen('tag', stop_after_idle=WAIT, limit=1):   # (1) waits for a message
                got.append(i)
            pusher.join(WAIT)
            raise GiveBack
    assert pushed == [4]
    assert got == [{'foo': 'bar'}]
    assert q.list('tag') == listed                    # 2 and 3 are back, 4 is gone

    # dequeue (immediate): removed at once
    assert q.dequeue_immediate('tag') == {'json': 'serializable_data'}
    assert q.list('tag')[0][0] == 3

    # counting items
    assert q.count('tag') == 1

    # cancel
    assert q.cancel(3) is True
    assert q.cancel(3) is False
    assert q.count() == 0
    q.close()


def test_tutorial_text_queue(dsn):
    q = q4pg.QueueManager(dsn=dsn, table_name='mq', data_type='text', data_length=1023)
    q.create_table()
    q.create_table()                                  # harmless the second time
    assert [q.enqueue('tag', s) for s in ('the data', 'serializable data', 'more')] == [1, 2, 3]
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue('tag', {'not': 'text'})             # a text queue takes str only

    with q.dequeue('tag') as dq:
        assert dq == 'the data'
    with q.dequeue('another-tag') as dq:
        assert dq is None
    assert [row[:3] for row in q.list('tag')] == [(2, 'tag', 'serializable data'),
                                                  (3, 'tag', 'more')]

    with pytest.raises(ZeroDivisionError):
        with q.dequeue('tag') as dq:
            assert dq == 'serializable data'
            1 / 0
    assert [row[0] for row in q.list('tag')] == [2, 3]

    pusher = threading.Timer(0.5, q.enqueue, ('other', 'pushed'))
    pusher.start()
    assert list(q.listen('other', stop_after_idle=WAIT, limit=1)) == ['pushed']
    pusher.join()

    assert q.dequeue_immediate('tag') == 'serializable data'
    assert q.count('tag') == 1
    assert q.cancel(3) is True
    assert q.cancel(3) is False
    assert q.count() == 0
    q.close()
