"""Listener hygiene: the LISTEN connection never holds a transaction open.

A backend that LISTENs only reads the notification queue between
transactions; one left in a transaction pins the queue (which then fills
until every NOTIFY in the cluster fails) and holds back vacuum.  Checked from
another connection while the listener sleeps and while its loop body is still
processing a message, for listen() and for listener().
"""

import json
import uuid

import q4pg
from tests.helpers import is_listen_connection, wait_until
from tests.reliability.helpers import query


def backends(dsn, app):
    return query(dsn, """
        SELECT pid, state, query, backend_xid IS NULL AS no_xid, backend_xmin IS NULL AS no_xmin,
               xact_start IS NULL AS no_xact
          FROM pg_stat_activity WHERE application_name = %s ORDER BY pid""", (app,))


def state(dsn, app, holding):
    """The LISTEN backend's pid if the listener's backends look right now, else None.

    Right: the LISTEN backend idle, no xid, no xmin, no transaction.  holding=True:
    the loop body is processing a message, whose transaction is the one open (idle in
    transaction, on another backend).  holding=False: the listener sleeps; at most
    one short dequeue attempt (a poll) may be running.
    """
    rows = backends(dsn, app)
    listening = [r for r in rows if is_listen_connection(r[2])]
    if len(listening) != 1:
        return None
    pid, st, _, no_xid, no_xmin, no_xact = listening[0]
    if (st, no_xid, no_xmin, no_xact) != ('idle', True, True, True):
        return None
    in_xact = [r for r in rows if not r[5]]
    if holding and not (len(in_xact) == 1 and in_xact[0][1] == 'idle in transaction'):
        return None
    if not holding and len(in_xact) > 1:
        return None
    return pid


def check(dsn, app, holding):
    """Fails unless state() holds, within a few seconds.

    The server itself may open a transaction on the LISTEN backend for an
    instant, to read incoming notifications (ProcessIncomingNotify): so a bad
    sample is looked at again.  A transaction the client left open stays.
    """
    try:
        return wait_until(lambda: state(dsn, app, holding), 5, 'the listener to look right')
    except AssertionError:
        raise AssertionError('the listener holds a transaction: %s' % (backends(dsn, app),))


def run(dsn, use_context_manager):
    app = 'q4pg-hygiene-' + uuid.uuid4().hex[:8]
    q = q4pg.QueueManager(dsn + ' application_name=' + app, 'mq', poll_interval=0.2)
    q.create_table()
    q.enqueue_many('t', [{'n': n} for n in range(5)])
    seen = []
    listen_pids = set()
    if use_context_manager:
        source = q.listener('t', stop_after_idle=10, limit=5)
    else:
        source = q.listen('t', stop_after_idle=10, limit=5)
    with q:
        if use_context_manager:
            source = source.__enter__()
        for data in source:
            seen.append(data['n'])
            # the loop body runs while the message's transaction is open
            listen_pids.add(check(dsn, app, holding=True))
            # notifications arriving meanwhile do not change that
            query(dsn, "SELECT q4pg_enqueue_many('mq', 'other', %s::text[])",
                  ([json.dumps({'x': i}) for i in range(20)],))
            listen_pids.add(check(dsn, app, holding=True))
        if use_context_manager:
            source.__exit__(None, None, None)
    assert seen == list(range(5))
    assert len(listen_pids) == 1


def test_listen_holds_no_transaction_on_its_listen_connection(dsn):
    run(dsn, use_context_manager=False)


def test_listener_holds_no_transaction_on_its_listen_connection(dsn):
    run(dsn, use_context_manager=True)


def test_sleeping_listener_holds_no_transaction(dsn, logdir, workers):
    app = 'q4pg-hygiene-' + uuid.uuid4().hex[:8]
    query(dsn, "SELECT q4pg_create_queue('mq')")
    w = workers.start('listen', 'listen', logdir, dsn=dsn + ' application_name=' + app, tag='t',
                      poll_interval=0.3)
    wait_until(lambda: any(is_listen_connection(r[2]) for r in backends(dsn, app)), 30,
               'the listener to LISTEN')
    # several poll rounds (each one a dequeue attempt on a pooled connection)
    for _ in range(20):
        check(dsn, app, holding=False)
        query(dsn, 'SELECT pg_sleep(0.05)')
    # a message held by the loop body: still only its own transaction is open
    id_ = query(dsn, "SELECT q4pg_enqueue('mq', 't', %s)", (json.dumps({'hold': 3.0}),))[0][0]
    wait_until(lambda: any(e['ev'] == 'got' and e['id'] == id_ for e in w.events()), 30,
               'the listener to take the message')
    check(dsn, app, holding=True)
    wait_until(lambda: any(e['ev'] == 'done' for e in w.events()), 30, 'the listener to finish')
    wait_until(lambda: query(dsn, "SELECT q4pg_count('mq')")[0][0] == 0, 30, 'the commit')
    assert w.alive(), w.stderr()
