"""listen() and scheduled messages (issue 11, item 1), and its timeouts: a
listener wakes when the earliest scheduled message of its tag comes due, with
no NOTIFY (poll_interval is a minute here); listen(tag, timeout) yields None
every `timeout` seconds without a message and goes on; stop_after_idle stops."""

import datetime
import threading
import time

import pytest

import q4pg
from tests.helpers import WAIT

Q_OPTIONS = dict(poll_interval=60)


def test_a_listener_wakes_when_a_scheduled_message_comes_due(q):
    due = 1.5
    enqueued = time.monotonic()
    first = q.enqueue('t', 'later', schedule=datetime.timedelta(seconds=due))
    # Enqueued before the listener starts: no notification will ever come for it.
    got = []
    for message in q.listen('t', stop_after_idle=WAIT, limit=1, full=True):
        got.append((message.id, time.monotonic() - enqueued))
    [(id_, after)] = got
    assert id_ == first
    assert after >= due - 0.1                           # not before its time


def test_a_sleeping_listener_learns_of_a_new_earlier_due_time(q):
    q.enqueue('t', 'much later', schedule=3600)
    got = []
    listening = threading.Thread(
        target=lambda: got.extend(q.listen('t', stop_after_idle=WAIT, limit=1)))
    listening.start()
    time.sleep(0.5)                                     # asleep until the one due in an hour
    enqueued = time.monotonic()
    q.enqueue('t', 'soon', schedule=1.0)                # its NOTIFY wakes the listener, which
    listening.join(WAIT + 1)                            # finds nothing due and asks again
    assert got == ['soon']
    assert time.monotonic() - enqueued >= 0.9


def test_a_listener_takes_a_message_whose_lease_ran_out(q, make_queue):
    first = q.enqueue('t', 'job')
    [leased] = q.take_leases('t', 1, seconds=1.0)        # a consumer that will never finish
    other = make_queue('mq', poll_interval=60)
    got = list(other.listen('t', stop_after_idle=WAIT, limit=1, full=True))
    assert [m.id for m in got] == [first]
    assert q.ack(leased.id, leased.lease_token) is False


def test_timeout_yields_none_and_goes_on(q):
    got = []
    started = time.monotonic()
    threading.Timer(1.0, lambda: q.enqueue('t', 'at last')).start()
    for data in q.listen('t', 0.3):
        got.append(data)
        if data is not None:
            break
    assert got[-1] == 'at last'
    assert got[:-1] and all(item is None for item in got[:-1])
    assert 2 <= len(got) - 1 <= 5
    assert time.monotonic() - started >= 0.9
    assert q.count() == 1            # break in a listen() loop gives it back (counted)


def test_timeout_with_limit_and_stop_after_idle(q):
    q.enqueue('t', 'one')
    got = list(q.listen('t', timeout=0.2, stop_after_idle=0.7))
    assert got[0] == 'one'
    assert got[1:] and all(item is None for item in got[1:])   # idle ticks, then it stops
    assert q.count() == 0
    q.enqueue('t', 'two')
    assert list(q.listen('t', timeout=0.2, limit=1)) == ['two']  # ticks do not count


def test_a_listener_object_ticks_too(q):
    with q.listener('t', timeout=0.2, stop_after_idle=0.5) as items:
        got = list(items)
    assert 1 <= len(got) <= 3 and all(item is None for item in got)


def test_bad_timeouts_are_refused(q):
    for kwargs in ({'timeout': 0}, {'timeout': -1}, {'stop_after_idle': -1},
                   {'timeout': float('nan')}):
        with pytest.raises(q4pg.InvalidArgument):
            q.listen('t', **kwargs)
