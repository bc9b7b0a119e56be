"""Leases from Python (issue 11, item 3): `with q.lease(tag, seconds)` acks on
success, gives back on an exception, and keeps the lease alive with a
heartbeat while the work runs; a lost lease is said (WARNING) and raised
(LeaseLost); listen(lease=...); take_leases/ack/nack/extend by hand."""

import datetime
import logging
import threading
import time

import pytest

import q4pg
from tests.helpers import WAIT

Q_OPTIONS = dict(poll_interval=60)


@pytest.fixture
def other(make_queue):
    """A second consumer of the same queue, with pools of its own."""
    return make_queue('mq', poll_interval=60)


def live(q):
    return q.list(ignore_scheduled=False, full=True)


def test_lease_acknowledges_on_success(q):
    first = q.enqueue('t', {'n': 1})
    with q.lease('t', seconds=30) as message:
        assert isinstance(message, q4pg.LeasedMessage)
        assert (message.id, message.data, message.raw) == (first, {'n': 1}, '{"n":1}')
        assert message.attempts == 1 and message.last_error is None
        assert len(message.lease_token) == 36
        assert message.lease_until > datetime.datetime.now(datetime.timezone.utc)
        assert q.count('t') == 0                        # leased: not due
        assert q.count('t', ignore_scheduled=False) == 1
    assert q.count(ignore_scheduled=False) == 0


def test_lease_yields_none_when_nothing_is_due(q):
    with q.lease('t') as message:
        assert message is None
    q.enqueue('t', 1, schedule=3600)
    with q.lease('t') as message:
        assert message is None


def test_an_exception_gives_the_lease_back_with_its_error(q, other):
    first = q.enqueue('t', 'job')
    with pytest.raises(ZeroDivisionError):
        with q.lease('t', seconds=30) as message:
            1 / 0
    [row] = live(q)
    assert row[0] == first and row[5] == 1 and row[6].startswith('ZeroDivisionError')
    with other.lease('t') as message:                  # due again at once
        assert message.id == first and message.attempts == 2
        assert message.last_error.startswith('ZeroDivisionError')


def test_the_heartbeat_keeps_a_long_jobs_lease(q, other):
    first = q.enqueue('t', 'long job')
    seen = []
    with q.lease('t', seconds=0.6) as message:
        deadline = time.monotonic() + 2.0               # more than three leases long
        while time.monotonic() < deadline:
            with other.lease('t', seconds=5) as stolen:
                seen.append(stolen)
            time.sleep(0.1)
        assert message.id == first
    assert seen and all(s is None for s in seen)        # nobody else got it meanwhile
    assert q.count(ignore_scheduled=False) == 0          # and it was acknowledged


def test_a_lost_lease_is_said_and_raised(q, other, conn, caplog):
    first = q.enqueue('t', 'job')
    with caplog.at_level(logging.WARNING, logger='q4pg'):
        with pytest.raises(q4pg.LeaseLost) as info:
            with q.lease('t', seconds=0.6):
                # The lease runs out behind the heartbeat's back (a stalled
                # process), and another consumer leases the message.
                stolen = []
                while not stolen:
                    with conn.cursor() as cur:
                        cur.execute("UPDATE mq SET run_at = now() - interval '1 second'")
                    stolen = other.take_leases('t', 1, seconds=30)
                assert stolen[0].id == first
                time.sleep(0.6)                          # a heartbeat is refused meanwhile
                assert 'lease of message %d' % first in caplog.text
    assert info.value.id == first
    assert other.ack(first, stolen[0].lease_token) is True


def test_take_leases_ack_nack_extend_by_hand(q, other):
    ids = q.enqueue_many('t', ['a', 'b', 'c'])
    leased = q.take_leases('t', 2, seconds=0.5)
    assert [m.id for m in leased] == ids[:2]
    a, b = leased
    assert q.extend(a.id, a.lease_token, 30) > a.lease_until
    assert q.nack(b.id, b.lease_token, retry_in=3600, error='later') == 'retry'
    assert q.nack(b.id, b.lease_token) is None          # no longer held
    assert q.ack(a.id, a.lease_token) is True
    assert q.ack(a.id, a.lease_token) is False
    # A lease that ran out is refused once another consumer leased the message.
    [c] = q.take_leases('t', 1, seconds=0.3)
    time.sleep(0.5)
    [again] = other.take_leases('t', 1, seconds=30)
    assert again.id == c.id and again.attempts == 2 and again.lease_token != c.lease_token
    assert q.extend(c.id, c.lease_token, 30) is None
    assert q.ack(c.id, c.lease_token) is False
    assert other.ack(again.id, again.lease_token) is True
    assert [r[0] for r in live(q)] == [b.id]
    with pytest.raises(q4pg.InvalidArgument):
        q.take_leases('t', 1, seconds=0)


def test_leases_reach_max_attempts(dsn, make_queue):
    q = make_queue('mq', poll_interval=60)
    q.set_max_attempts(2)
    first = q.enqueue('t', 'poison')
    for _ in range(2):
        [m] = q.take_leases('t', 1, seconds=30)
        outcome = q.nack(m.id, m.lease_token, error='no')
    assert outcome == 'dead'
    assert [d[0] for d in q.dead_letters()] == [first]


def test_listen_with_leases(q, other):
    first = q.enqueue('t', 'long job')
    got = []
    for message in q.listen('t', stop_after_idle=0.3, full=True, lease=0.6):
        assert isinstance(message, q4pg.LeasedMessage)
        time.sleep(1.0)                                  # longer than the lease: kept
        assert other.take_leases('t', 1) == []
        got.append(message.id)
    assert got == [first]
    assert q.count(ignore_scheduled=False) == 0


def test_an_exception_in_a_leased_listener_gives_back(q):
    first = q.enqueue('t', 'job')
    with pytest.raises(KeyError):
        with q.listener('t', stop_after_idle=5, lease=30) as items:
            for data in items:
                raise KeyError('nope')
    [row] = live(q)
    assert row[0] == first and row[5] == 1 and 'KeyError' in row[6]
    assert q.count('t') == 1                              # due again


def test_lease_arguments_are_checked(q):
    for bad in (0, -1, float('inf')):
        with pytest.raises(q4pg.InvalidArgument):
            with q.lease('t', seconds=bad):
                pass
        with pytest.raises(q4pg.InvalidArgument):
            q.listen('t', lease=bad)


def test_lease_from_threads_never_shares_a_message(q):
    ids = set(q.enqueue_many('t', list(range(20))))
    got, lock = [], threading.Lock()

    def work():
        while True:
            with q.lease('t', seconds=30) as message:
                if message is None:
                    return
                with lock:
                    got.append(message.id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert sorted(got) == sorted(ids)
