"""Scheduled messages are never delivered early, under concurrency.

Three producer processes enqueue messages due within the next few hundred
milliseconds (q4pg_enqueue and q4pg_enqueue_many with run_at; a few already a
little overdue), while six consumer processes poll the queue every few
milliseconds through every way of taking messages: q4pg_dequeue and
q4pg_dequeue_many in transactions, q4pg_take (some failed with q4pg_fail and
a retry_in), q4pg_lease (some nacked with a retry_in).  Each delivery is
recorded, in the transaction that took it, with that transaction's now() on
the server: a message is due when run_at <= now().  In the end every message
was delivered, finally once, and no delivery came before the message was due:
not before its run_at, and not before the retry_in of a failure had passed.
"""

import collections
import os

import psycopg2
import pytest

from tests.reliability.helpers import query

CONSUMERS = [
    {'how': 'dequeue'},
    {'how': 'dequeue_many', 'batch': 3},
    {'how': 'take', 'batch': 1, 'nack_rate': 0.1},
    {'how': 'take', 'batch': 3, 'nack_rate': 0.1},
    {'how': 'lease', 'batch': 1, 'nack_rate': 0.1},
    {'how': 'lease', 'batch': 3, 'nack_rate': 0.1},
]
RETRY_IN = 0.05


def run_scheduled(dsn, logdir, workers, figures, per_producer, producers=3, consumers=CONSUMERS):
    query(dsn, "SELECT q4pg_create_queue('mq', 'json', 200)")
    query(dsn, 'CREATE TABLE deliveries (id bigint NOT NULL, due timestamptz NOT NULL, '
               'delivered_at timestamptz NOT NULL, clock_at timestamptz NOT NULL, '
               'how text NOT NULL, worker integer NOT NULL)')
    query(dsn, 'CREATE TABLE retries (id bigint NOT NULL, failed_at timestamptz NOT NULL, '
               'run_at timestamptz NOT NULL, retry_in interval NOT NULL, how text NOT NULL)')
    stop_file = os.path.join(logdir, 'stop')
    takers = [workers.start('c%d-%s' % (i, o['how']), 'scheduled-consume', logdir, dsn=dsn,
                            retry_in=RETRY_IN, stop_file=stop_file, **o)
              for i, o in enumerate(consumers)]
    makers = [workers.start('p%d' % i, 'scheduled-produce', logdir, dsn=dsn, producer='p%d' % i,
                            count=per_producer, batch=4, delay_max=0.3, pause=0.003)
              for i in range(producers)]
    for w in makers:
        assert w.wait(timeout=300) == 0, 'producer %s failed:\n%s' % (w.name, w.stderr())
    open(stop_file, 'w').close()
    for w in takers:
        assert w.wait(timeout=300) == 0, 'consumer %s failed:\n%s' % (w.name, w.stderr())

    sent = {}
    for w in makers:
        for e in w.events():
            if e['ev'] == 'ok':
                sent[e['id']] = e['due']
    us = "(extract(epoch FROM %s) * 1000000)::bigint"
    rows = query(dsn, 'SELECT id, %s, %s, %s, how FROM deliveries' % (
        us % 'due', us % 'delivered_at', us % 'clock_at'))
    retry_rows = query(dsn, 'SELECT id, %s, %s, %s, how FROM retries' % (
        us % 'failed_at', us % 'run_at', us % "(failed_at + retry_in)"))
    left = query(dsn, "SELECT q4pg_count('mq')")[0][0]
    dead = query(dsn, "SELECT count(*) FROM q4pg_dead_letters('mq')")[0][0]

    deliveries = collections.defaultdict(list)
    for id_, due, at, clock, how in rows:
        deliveries[id_].append((at, due, clock, how))
    retries = collections.defaultdict(list)
    for id_, failed_at, run_at, earliest, how in retry_rows:
        retries[id_].append((failed_at, run_at, earliest, how))

    early, wrong_due, retried_early, set_early = [], [], [], []
    for id_, ds in deliveries.items():
        for at, due, clock, how in ds:
            if due != sent.get(id_):
                wrong_due.append((id_, due, sent.get(id_)))
            if at < due:
                early.append((id_, how, (due - at) / 1e3))
            # after a failure the message is due again at the run_at it set, never earlier
            for failed_at, run_at, _, _ in retries[id_]:
                if failed_at < at < run_at:
                    retried_early.append((id_, how, (run_at - at) / 1e3))
    for id_, rs in retries.items():
        for failed_at, run_at, earliest, how in rs:
            if run_at < earliest:
                set_early.append((id_, how, (earliest - run_at) / 1e3))
    finals = collections.Counter({i: len(ds) - len(retries[i]) for i, ds in deliveries.items()})
    lost = set(sent) - set(deliveries)
    twice = {i: n for i, n in finals.items() if n != 1}
    by_how = collections.Counter(d[3] for ds in deliveries.values() for d in ds)
    lateness = sorted(at - due for ds in deliveries.values() for at, due, _, _ in ds)

    figures.add('messages', len(sent))
    figures.add('lost', len(lost))
    figures.add('duplicated', len(twice))
    if lateness:
        print('scheduled: %d messages, %d deliveries %s, %d retries; after due: p50 %.1f ms, '
              'max %.1f ms' % (len(sent), len(rows), dict(by_how), len(retry_rows),
                               lateness[len(lateness) // 2] / 1e3, lateness[-1] / 1e3))

    assert len(sent) == producers * per_producer
    assert not early, '%d deliveries before the message was due (id, how, ms early): %s' % (
        len(early), early[:10])
    assert not retried_early, 'delivered before a failure\'s retry_in had passed: %s' % (
        retried_early[:10])
    assert not set_early, 'a failure made a message due before its retry_in: %s' % set_early[:10]
    assert not wrong_due, 'a message carried a due time other than its run_at: %s' % wrong_due[:5]
    assert not lost, '%d messages never delivered: %s' % (len(lost), sorted(lost)[:10])
    assert not twice, 'messages finished other than once: %s' % sorted(twice.items())[:10]
    assert set(deliveries) <= set(sent)
    assert left == 0 and dead == 0, (left, dead)
    # every way of taking messages took part, and the failures were retried
    assert set(by_how) == {o['how'] for o in consumers}, by_how
    assert retry_rows


def test_scheduled_never_early_6_consumers(dsn, logdir, workers, figures):
    run_scheduled(dsn, logdir, workers, figures, per_producer=1000)


@pytest.mark.soak
def test_scheduled_never_early_soak(dsn, logdir, workers, figures):
    run_scheduled(dsn, logdir, workers, figures, per_producer=10000,
                  consumers=CONSUMERS * 2)
