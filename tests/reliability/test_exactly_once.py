"""Exactly once under contention: many consumer processes, every message delivered once.

Eight consumer processes of four kinds (SQL-level q4pg_dequeue and
q4pg_dequeue_many, the client's dequeue_message and dequeue_many, and the
client's listen) share one queue and tag while the test keeps enqueueing.
Every delivery is logged; in the end every message was delivered exactly
once: none twice, none lost, the queue empty.
"""

import collections
import json
import os

import psycopg2
import pytest

from tests.reliability.helpers import query

CONSUMERS = [
    ('sql-consume', {}),
    ('client-consume', {}),
    ('listen', {'timeout': 4, 'poll_interval': 0.5}),
    ('sql-consume', {'batch': 7}),
    ('client-consume', {'batch': 7}),
    ('sql-consume', {}),
    ('client-consume', {}),
    ('listen', {'timeout': 4, 'poll_interval': 0.5}),
]


def setup_queue(dsn):
    query(dsn, "SELECT q4pg_create_queue('mq', 'json', 100)")
    query(dsn, 'CREATE TABLE processed (id bigint NOT NULL, worker integer NOT NULL, data text)')


def enqueue_numbers(conn, first, count, batch=1000):
    """Enqueues {"n": first} .. {"n": first + count - 1}; returns {id: n}."""
    sent = {}
    with conn.cursor() as cur:
        for start in range(first, first + count, batch):
            ns = list(range(start, min(start + batch, first + count)))
            cur.execute("SELECT q4pg_enqueue_many('mq', 't', %s::text[])",
                        ([json.dumps({'n': n}) for n in ns],))
            ids = [r[0] for r in cur.fetchall()]
            assert len(ids) == len(ns)
            sent.update(zip(ids, ns))
    return sent


def run_contention(dsn, logdir, workers, figures, messages, consumers=CONSUMERS):
    setup_queue(dsn)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    stop_file = os.path.join(logdir, 'stop')
    # a first part waits before the consumers start; the rest arrives while they run
    sent = enqueue_numbers(conn, 0, messages // 4)
    started = []
    for i, (mode, options) in enumerate(consumers):
        options = dict(options)
        if mode != 'listen':
            options['stop_file'] = stop_file
        started.append(workers.start('c%d-%s' % (i, mode), mode, logdir, dsn=dsn, tag='t',
                                     **options))
    sent.update(enqueue_numbers(conn, messages // 4, messages - messages // 4, batch=250))
    open(stop_file, 'w').close()
    for w in started:
        assert w.wait(timeout=600) == 0, 'consumer %s failed:\n%s' % (w.name, w.stderr())

    deliveries = collections.Counter()
    data_ok = True
    per_consumer = {}
    for w in started:
        got = [e for e in w.events() if e['ev'] == 'got']
        per_consumer[w.name] = len(got)
        for e in got:
            deliveries[e['id']] += 1
            data_ok &= json.loads(e['data']) == {'n': sent.get(e['id'])}
    lost = set(sent) - set(deliveries)
    twice = {i: c for i, c in deliveries.items() if c > 1}
    phantom = set(deliveries) - set(sent)
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_count('mq')")
        left = cur.fetchone()[0]
        cur.execute('SELECT count(*), count(DISTINCT id) FROM processed')
        processed_rows, processed_ids = cur.fetchone()
    conn.close()

    figures.add('messages', len(sent))
    figures.add('lost', len(lost))
    figures.add('duplicated', len(twice))
    print('exactly once: %d messages, deliveries per consumer %s' % (len(sent), per_consumer))

    assert len(sent) == messages
    assert not lost, '%d messages never delivered, e.g. %s' % (len(lost), sorted(lost)[:10])
    assert not twice, '%d messages delivered more than once, e.g. %s' % (
        len(twice), sorted(twice.items())[:10])
    assert not phantom, 'delivered messages nobody sent: %s' % sorted(phantom)[:10]
    assert data_ok, 'a delivered message carried data other than what was sent'
    assert left == 0
    assert processed_rows == processed_ids, 'the SQL consumers processed a message twice'
    # every consumer took part: the contention was real
    assert all(n > 0 for n in per_consumer.values()), per_consumer
    return per_consumer


def test_exactly_once_8_consumers_20000_messages(dsn, logdir, workers, figures):
    run_contention(dsn, logdir, workers, figures, messages=20000)


def test_exactly_once_8_consumers_20000_messages_under_a_pinned_horizon(dsn, logdir, workers, figures,
                                                                        pinned_horizon):
    """The same while a long transaction pins the xmin horizon (1.2's ring):
    the ring moves on and truncates slots under the consumers, and still every
    message goes out once."""
    run_contention(dsn, logdir, workers, figures, messages=20000)
    # with the consumers gone, a maintenance step empties every slot the ring left
    for _ in range(3):
        query(dsn, "SELECT q4pg_maintain('mq')")
    [(truncated,)] = query(
        dsn, "SELECT count(*) FROM pg_class AS c JOIN pg_inherits AS i ON i.inhrelid = c.oid "
             "WHERE i.inhparent = 'mq'::regclass AND c.relfilenode <> c.oid")
    assert truncated >= 1, 'the ring never moved on under the pin (no slot was ever truncated)'


@pytest.mark.soak
def test_exactly_once_soak_16_consumers_200000_messages(dsn, logdir, workers, figures):
    run_contention(dsn, logdir, workers, figures, messages=200000, consumers=CONSUMERS * 2)
