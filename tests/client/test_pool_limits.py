"""A call that could only wait for a connection its own thread holds fails at
once, instead of hanging (issue 10.11)."""

import threading

import pytest

import q4pg
from tests.helpers import WAIT

Q_OPTIONS = dict(max_connections=1, poll_interval=60)


def within(fn, timeout=WAIT):
    """fn()'s result or exception, run in a thread; fails if it takes over timeout s."""
    outcome = []

    def run():
        try:
            outcome.append((True, fn()))
        except Exception as e:  # noqa: BLE001 (given to the test below)
            outcome.append((False, e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome, 'still waiting after %s s' % timeout
    return outcome[0]


def test_calling_the_manager_inside_a_listen_loop_with_one_connection(q):
    q.enqueue('t', 1)

    def loop():
        for item in q.listen('t', stop_after_idle=WAIT):
            return q.count('t')

    ok, error = within(loop)
    assert not ok and isinstance(error, q4pg.Q4pgError), error
    assert 'max_connections' in str(error) and 'wait forever' in str(error)
    assert q.count('t') == 1            # the item went back, the manager still works


def test_inside_an_open_dequeue(q):
    q.enqueue('t', 1)

    def nested():
        with q.dequeue('t'):
            return q.enqueue('t', 2)

    ok, error = within(nested)
    assert not ok and 'wait forever' in str(error)
    assert q.count('t') == 1


def test_another_thread_still_waits_its_turn(q):
    q.enqueue('t', 1)
    counted = []
    with q.dequeue('t') as data:
        waiter = threading.Thread(target=lambda: counted.append(q.count('t')))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and counted == []
    waiter.join(WAIT)
    assert data == 1 and counted == [0]
