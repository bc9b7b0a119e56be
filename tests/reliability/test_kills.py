"""Consumers SIGKILLed at random while they hold messages: nothing is lost.

Consumer processes (SQL-level, client dequeue, client listen) hold each
message a little while inside their transaction; the test SIGKILLs one at
random every few tenths of a second and starts another in its place.  In the
end every message was processed or is still queued; the SQL consumers, whose
processing commits with the removal, processed each message exactly once; no
message was delivered again after a consumer had seen its removal commit.
"""

import collections
import json
import os
import random
import signal
import time

import psycopg2
import pytest

from tests.reliability.helpers import query

MODES = [
    ('sql-consume', {}),
    ('client-consume', {}),
    ('listen', {'timeout': 3, 'poll_interval': 0.5}),
    ('sql-consume', {'batch': 3}),
    ('client-consume', {'batch': 3}),
    ('listen', {'timeout': 3, 'poll_interval': 0.5}),
]


def enqueue(conn, first, count):
    """Enqueues {"n": first} .. {"n": first + count - 1}; returns {id: n}."""
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_enqueue_many('mq', 't', %s::text[])",
                    ([json.dumps({'n': n}) for n in range(first, first + count)],))
        return {r[0]: first + i for i, r in enumerate(cur.fetchall())}


def holding(worker):
    """The id a worker held when it died: its last event is a delivery it never finished."""
    events = worker.events()
    if events and events[-1]['ev'] == 'got':
        return events[-1]['id']
    return None


def run_kills(dsn, logdir, workers, figures, kills, batch, hold_max):
    query(dsn, "SELECT q4pg_create_queue('mq', 'json', 100)")
    query(dsn, 'CREATE TABLE processed (id bigint NOT NULL, worker integer NOT NULL, data text)')
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    stop_file = os.path.join(logdir, 'stop')
    sent = enqueue(conn, 0, batch)
    serial = [0]

    def start(mode, options):
        serial[0] += 1
        options = dict(options, hold_max=hold_max)
        if mode != 'listen':
            options['stop_file'] = stop_file
        return workers.start('w%d-%s' % (serial[0], mode), mode, logdir, dsn=dsn, **options)

    live = [(start(m, o), m, o) for m, o in MODES]
    killed = held_at_death = 0
    rng = random.Random()
    while killed < kills:
        time.sleep(rng.uniform(0.05, 0.3))
        i = rng.randrange(len(live))
        w, mode, options = live[i]
        if w.alive():
            w.kill(signal.SIGKILL)
            killed += 1
            if holding(w) is not None:
                held_at_death += 1
        live[i] = (start(mode, options), mode, options)
        with conn.cursor() as cur:
            cur.execute("SELECT q4pg_count('mq')")
            if cur.fetchone()[0] < batch // 4:
                sent.update(enqueue(conn, len(sent), batch))

    open(stop_file, 'w').close()
    for w, mode, _ in live:
        assert w.wait(timeout=300) == 0, 'consumer %s failed:\n%s' % (w.name, w.stderr())

    got = collections.defaultdict(list)      # id -> times it was delivered
    acked = collections.defaultdict(list)    # id -> times a consumer saw its removal commit
    wrong_data = []
    for w, e in workers.all_events():
        if e['ev'] == 'got':
            got[e['id']].append(e['t'])
            if json.loads(e['data']) != {'n': sent.get(e['id'])}:
                wrong_data.append(e)
        elif e['ev'] == 'ack':
            acked[e['id']].append(e['t'])
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM q4pg_list('mq')")
        queued = {r[0] for r in cur.fetchall()}
        cur.execute('SELECT id, count(*) FROM processed GROUP BY id')
        processed = dict(cur.fetchall())
    conn.close()

    sent = set(sent)
    lost = sent - set(got) - queued
    processed_twice = {i: n for i, n in processed.items() if n > 1}
    acked_twice = {i: ts for i, ts in acked.items() if len(ts) > 1}
    after_ack = {i for i, ts in acked.items() if any(t > min(ts) for t in got[i])}
    redelivered = {i for i, ts in got.items() if len(ts) > 1}

    figures.add('messages', len(sent))
    figures.add('kills', killed)
    figures.add('kills_while_holding', held_at_death)
    figures.add('redelivered', len(redelivered))
    figures.add('lost', len(lost))
    figures.add('duplicated', len(processed_twice) + len(set(acked_twice) | after_ack))
    print('kills: %d messages, %d kills (%d while holding a message), %d redelivered'
          % (len(sent), killed, held_at_death, len(redelivered)))

    assert not wrong_data, 'delivered data that was not sent with that id: %s' % wrong_data[:5]
    assert not lost, '%d messages neither processed nor queued: %s' % (len(lost), sorted(lost)[:10])
    assert not queued, 'consumers stopped with messages left: %s' % sorted(queued)[:10]
    assert set(processed) <= sent
    assert not processed_twice, 'processed (committed) twice: %s' % processed_twice
    assert not acked_twice, 'removal committed twice: %s' % sorted(acked_twice)[:10]
    assert not after_ack, 'delivered again after its removal committed: %s' % sorted(after_ack)[:10]
    # the kills hit consumers holding messages, and those messages came back
    assert held_at_death > 0
    assert redelivered


def test_kills_30_random_sigkills(dsn, logdir, workers, figures):
    run_kills(dsn, logdir, workers, figures, kills=30, batch=2000, hold_max=0.02)


@pytest.mark.soak
def test_kills_soak_1000_random_sigkills(dsn, logdir, workers, figures):
    run_kills(dsn, logdir, workers, figures, kills=1000, batch=5000, hold_max=0.03)
