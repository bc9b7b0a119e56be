"""Cut connections: a listener's backends terminated (pg_terminate_backend).

The listener is a worker process running one listen() generator with a
poll interval of 60 s, so a message that arrives within 30 s after it went to
sleep can only have come through a NOTIFY: that proves it LISTENs again.

Three kinds of cut: its LISTEN backend alone; every backend it has; the
backend holding the message its loop body is processing (the message must
come again: at-least-once).
"""

import json
import uuid

import psycopg2
import pytest

from tests.helpers import is_listen_connection, wait_until
from tests.reliability.helpers import query, quiet

POLL_INTERVAL = 60  # the listener's safety-net poll: longer than any wait below
WAIT = 30


class Listener:
    def __init__(self, dsn, logdir, workers):
        self.dsn = dsn
        self.app = 'q4pg-cut-' + uuid.uuid4().hex[:8]
        self.worker = workers.start('listen', 'listen', logdir,
                                    dsn=dsn + ' application_name=' + self.app, tag='t',
                                    poll_interval=POLL_INTERVAL)

    def backends(self):
        """[(pid, state, query)] of the listener's backends."""
        return query(self.dsn, 'SELECT pid, state, query FROM pg_stat_activity '
                               'WHERE application_name = %s ORDER BY pid', (self.app,))

    def listen_pid(self):
        pids = [pid for pid, state, q in self.backends()
                if state == 'idle' and is_listen_connection(q)]
        assert len(pids) <= 1, self.backends()
        return pids[0] if pids else None

    def delivered(self, id_):
        return sum(1 for e in self.worker.events() if e['ev'] == 'got' and e['id'] == id_)

    def finished(self, id_):
        return sum(1 for e in self.worker.events() if e['ev'] == 'done' and e['id'] == id_)

    def asleep(self):
        """True once the listener has finished every message and gone to its long
        sleep: a LISTEN connection, and no backend did anything for half a second."""
        return quiet(self.dsn, self.app) and self.listen_pid() is not None

    def terminate(self, pids):
        for pid in pids:
            assert query(self.dsn, 'SELECT pg_terminate_backend(%s)', (pid,))[0][0]


def enqueue(dsn, data):
    return query(dsn, "SELECT q4pg_enqueue('mq', 't', %s)", (json.dumps(data),))[0][0]


def through_notify(listener, dsn, n):
    """Enqueues while the listener sleeps; it must arrive well before the poll interval."""
    wait_until(listener.asleep, WAIT, 'the listener to go to sleep')
    id_ = enqueue(dsn, {'n': n, 'via': 'notify'})
    wait_until(lambda: listener.finished(id_), WAIT,
               'message %s to arrive through NOTIFY (the poll interval is %s s)'
               % (id_, POLL_INTERVAL))


def run_cuts(dsn, logdir, workers, figures, rounds):
    """The rounds of cuts; a failure shows the listener's backends and Python stacks."""
    holder = []
    try:
        _run_cuts(dsn, logdir, workers, figures, rounds, lambda lst: holder.append(lst))
    except AssertionError as e:
        if holder:
            raise AssertionError('%s\nthe listener\'s backends: %s\nits stacks:\n%s'
                                 % (e, holder[0].backends(), holder[0].worker.stacks())) from e
        raise


def _run_cuts(dsn, logdir, workers, figures, rounds, keep):
    query(dsn, "SELECT q4pg_create_queue('mq')")
    listener = Listener(dsn, logdir, workers)
    keep(listener)
    wait_until(listener.listen_pid, WAIT, 'the listener to LISTEN')
    through_notify(listener, dsn, 0)
    sent = 1
    for r in range(rounds):
        kind = ('listen', 'all', 'holding')[r % 3]
        wait_until(listener.asleep, WAIT, 'the listener to go to sleep')
        old = listener.listen_pid()
        if kind == 'holding':
            held = enqueue(dsn, {'n': sent, 'hold': 3.0})
            sent += 1
            wait_until(lambda: listener.delivered(held), WAIT, 'the listener to take %s' % held)
            holder = wait_until(lambda: [pid for pid, state, q in listener.backends()
                                         if state == 'idle in transaction'
                                         and not is_listen_connection(q)], WAIT,
                                'the backend holding message %s' % held)
            assert len(holder) == 1, listener.backends()
            listener.terminate(holder)
            figures.add('connection_cuts')
            # its commit fails: the message stays and is delivered again
            wait_until(lambda: listener.finished(held) == 2, WAIT,
                       'message %s to be delivered again after its connection was cut' % held)
        else:
            pids = [old] if kind == 'listen' else [pid for pid, _, _ in listener.backends()]
            listener.terminate(pids)
            figures.add('connection_cuts', len(pids))
            # enqueued while the listener reconnects
            meanwhile = [enqueue(dsn, {'n': sent + i}) for i in range(3)]
            sent += 3
            for id_ in meanwhile:
                wait_until(lambda: listener.finished(id_), WAIT,
                           'message %s, enqueued while the listener was cut off (round %d: %s)'
                           % (id_, r, kind))
            wait_until(lambda: listener.listen_pid() not in (None, old), WAIT,
                       'a new LISTEN connection')
        through_notify(listener, dsn, sent)
        sent += 1
    assert listener.worker.alive(), listener.worker.stderr()
    assert query(dsn, "SELECT q4pg_count('mq')")[0][0] == 0
    got = [e['id'] for e in listener.worker.events() if e['ev'] == 'got']
    figures.add('messages', sent)
    figures.add('redelivered', len(got) - len(set(got)))
    assert len(set(got)) == sent
    # the spec: each reconnection is logged at WARNING on logger 'q4pg'
    assert 'q4pg WARNING' in listener.worker.stderr()


def test_cut_connections_6_rounds(dsn, logdir, workers, figures):
    run_cuts(dsn, logdir, workers, figures, rounds=6)


def test_listen_connection_cut_as_a_message_arrives(dsn, logdir, workers, figures):
    """The LISTEN backend terminated right after a message's NOTIFY: whichever the
    listener sees first, the message arrives (and is not left held by a transaction
    the listener lost track of)."""
    query(dsn, "SELECT q4pg_create_queue('mq')")
    listener = Listener(dsn, logdir, workers)
    wait_until(listener.listen_pid, WAIT, 'the listener to LISTEN')
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        for n in range(ROUNDS_AS_IT_ARRIVES):
            wait_until(listener.asleep, WAIT, 'the listener to go to sleep (round %d)' % n)
            pid = listener.listen_pid()
            with conn.cursor() as cur:
                cur.execute("SELECT q4pg_enqueue('mq', 't', %s)", (json.dumps({'n': n}),))
                id_ = cur.fetchone()[0]
                cur.execute('SELECT pg_terminate_backend(%s)', (pid,))
            figures.add('connection_cuts')
            figures.add('messages')
            try:
                wait_until(lambda: listener.finished(id_), WAIT,
                           'message %s (round %d) after its NOTIFY and a cut' % (id_, n))
            except AssertionError as e:
                raise AssertionError('%s\nthe listener\'s backends: %s\nits stacks:\n%s'
                                     % (e, listener.backends(), listener.worker.stacks())) from e
    finally:
        conn.close()
    assert query(dsn, "SELECT q4pg_count('mq')")[0][0] == 0


ROUNDS_AS_IT_ARRIVES = 10


@pytest.mark.soak
def test_cut_connections_soak_150_rounds(dsn, logdir, workers, figures):
    run_cuts(dsn, logdir, workers, figures, rounds=150)
