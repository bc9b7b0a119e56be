"""Leases under faults: nothing lost, each message acked exactly once, dead letters kept.

Eight consumer processes work a queue with max_attempts 3 through leases
(q4pg_lease, q4pg_ack, q4pg_nack; no transaction open while they work): one
message in a hundred always fails and is nacked every time; others are nacked
now and then; now and then a consumer sleeps past its lease, so that the
message goes to another consumer and its own ack comes late; and the test
SIGKILLs consumers at random while they work.  Each ack is recorded in table
"acks" in the ack's own transaction, committed only when q4pg_ack returned
true.  In the end every message was acked exactly once or is a dead letter
(with attempts = max_attempts and, when a nack ended it, that nack's error);
the messages that always fail are all dead letters; a message whose consumer
was killed mid-job had that attempt counted; and no message was leased again
while a lease on it was live.
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

MAX_ATTEMPTS = 3
LEASE = 1.0          # seconds: short, so that kills and sleeps are paid back quickly
RETRY_IN = 0.05      # seconds: a nacked (flaky) message is due again this soon
FAIL_EVERY = 100     # message n with n % FAIL_EVERY == 7 always fails

CONSUMERS = [
    {'batch': 1}, {'batch': 1}, {'batch': 1}, {'batch': 1},
    {'batch': 5}, {'batch': 5}, {'batch': 5}, {'batch': 5},
]


def message(n):
    return {'n': n, 'fail': True} if n % FAIL_EVERY == 7 else {'n': n}


def enqueue(conn, first, count):
    """Enqueues message(first) .. message(first + count - 1); returns {id: data}."""
    items = [message(n) for n in range(first, first + count)]
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_enqueue_many('mq', 't', %s::text[])",
                    ([json.dumps(i) for i in items],))
        ids = [r[0] for r in cur.fetchall()]
    assert len(ids) == len(items)
    return dict(zip(ids, items))


def unfinished(worker):
    """The leases a (killed) worker took and never finished: [(id, token, attempts)]."""
    open_leases = {}
    for e in worker.events():
        if e['ev'] == 'lease':
            open_leases[e['token']] = (e['id'], e['token'], e['attempts'])
        elif e['ev'] in ('ack', 'nack'):
            open_leases.pop(e['token'], None)
    return list(open_leases.values())


def run_leases(dsn, logdir, workers, figures, messages, kills, consumers=CONSUMERS):
    query(dsn, "SELECT q4pg_create_queue('mq', 'json', 100, max_attempts => %s)", (MAX_ATTEMPTS,))
    query(dsn, 'CREATE TABLE acks (id bigint NOT NULL, worker integer NOT NULL, '
               'token uuid NOT NULL, attempts integer NOT NULL)')
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    stop_file = os.path.join(logdir, 'stop')
    chunk = 1000
    sent = enqueue(conn, 0, messages // 4)
    serial = [0]

    def start(options):
        serial[0] += 1
        return workers.start('w%d-lease' % serial[0], 'lease-consume', logdir, dsn=dsn,
                             lease=LEASE, expire_rate=0.003, nack_rate=0.03, retry_in=RETRY_IN,
                             hold_max=0.002, stop_file=stop_file, **options)

    live = [(start(o), o) for o in consumers]
    killed, held_at_death = 0, []
    rng = random.Random()
    while killed < kills or len(sent) < messages:
        if killed < kills:
            time.sleep(rng.uniform(0.05, 0.4))
            i = rng.randrange(len(live))
            w, options = live[i]
            assert w.alive(), 'consumer %s failed:\n%s' % (w.name, w.stderr())
            w.kill(signal.SIGKILL)
            killed += 1
            held_at_death += [(w, lease) for lease in unfinished(w)]
            live[i] = (start(options), options)
        if len(sent) < messages:
            sent.update(enqueue(conn, len(sent), min(chunk, messages - len(sent))))

    open(stop_file, 'w').close()
    for w, _ in live:
        assert w.wait(timeout=600) == 0, 'consumer %s failed:\n%s' % (w.name, w.stderr())

    leases = collections.defaultdict(list)   # id -> [lease event]
    nacks = {}                               # token -> nack event (one per lease at most)
    late_acks_refused = 0
    for w, e in workers.all_events():
        if e['ev'] == 'lease':
            leases[e['id']].append(e)
        elif e['ev'] == 'nack':
            assert e['token'] not in nacks, 'a lease nacked twice: %s' % e
            nacks[e['token']] = e
        elif e['ev'] == 'ack' and not e['ok']:
            late_acks_refused += 1
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_count('mq')")
        left = cur.fetchone()[0]
        cur.execute('SELECT id, count(*), min(token::text), min(attempts), min(worker) '
                    'FROM acks GROUP BY id')
        acks = {r[0]: r[1:] for r in cur.fetchall()}
        cur.execute("SELECT id, data, attempts, last_error, dead_at IS NOT NULL "
                    "FROM q4pg_dead_letters('mq')")
        dead = {r[0]: r[1:] for r in cur.fetchall()}
        cur.execute("SELECT count(*) FROM mq")
        rows_left = cur.fetchone()[0]
    conn.close()

    sent_ids = set(sent)
    lost = sent_ids - set(acks) - set(dead)
    acked_twice = {i: a[0] for i, a in acks.items() if a[0] > 1}
    acked_and_dead = set(acks) & set(dead)
    always_fail = {i for i, d in sent.items() if d.get('fail')}

    # a lease never starts while another is live: the next lease of a message starts
    # (server time) at or after the previous one ended (its lease ran out, or its nack
    # made the message due again: now() of the nack + retry_in).  A lease whose worker
    # was killed holding it may have ended by a nack that committed before the kill
    # but was never logged: it ended at the earliest RETRY_IN after it began (at once
    # for a message that always fails: its nack asks no delay).
    died_holding = {lease[1] for _, lease in held_at_death}
    overlaps, same_attempt, expiries = [], [], 0
    for id_, ls in leases.items():
        ls.sort(key=lambda e: e['at'])
        counted = [e['attempts'] for e in ls]
        if len(set(counted)) != len(counted) or counted != sorted(counted):
            same_attempt.append((id_, counted))
        for prev, nxt in zip(ls, ls[1:]):
            nack = nacks.get(prev['token'])
            if nack is not None and nack['result'] is not None:
                free_at = min(prev['until'], nack['at'] + int(nack['retry_in'] * 1e6))
            elif nack is None and prev['token'] in died_holding:
                # (a message that always fails is nacked due at once)
                soonest = 0 if sent.get(id_, {}).get('fail') else RETRY_IN
                free_at = min(prev['until'], prev['at'] + int(soonest * 1e6))
                expiries += nxt['at'] >= prev['until']
            else:
                free_at = prev['until']
                expiries += 1
            if nxt['at'] < free_at:
                overlaps.append((id_, prev, nxt, nack))

    # a consumer killed mid-job: its attempt was counted (the message's next lease
    # counted more attempts, or it became a dead letter with max_attempts)
    uncounted = []
    for w, (id_, token, attempts) in held_at_death:
        if id_ in acks and acks[id_][1] == token:
            continue                        # killed after its ack committed: not mid-job
        later = [e['attempts'] for e in leases[id_] if e['token'] != token]
        if id_ in dead:
            ok = dead[id_][1] == MAX_ATTEMPTS
        else:
            ok = id_ in acks and any(a > attempts for a in later) and acks[id_][2] > attempts
        if not ok:
            uncounted.append((id_, attempts, later, dead.get(id_), acks.get(id_)))

    # dead letters: attempts = max_attempts; data intact; last_error that of the nack
    # that made it one, or (when its last lease ran out) still an error if it had one
    bad_dead = []
    killed_by_nack = {e['id']: e for e in nacks.values() if e['result'] == 'dead'}
    nacked = {e['id'] for e in nacks.values() if e['result'] is not None}
    for id_, (data, attempts, last_error, marked) in dead.items():
        nack = killed_by_nack.get(id_)
        if (json.loads(data) != sent.get(id_) or attempts != MAX_ATTEMPTS or not marked
                or (nack is not None and last_error != nack['error'])
                or (id_ in nacked and last_error is None)):
            bad_dead.append((id_, data, attempts, last_error, marked, nack))

    redelivered = sum(1 for ls in leases.values() if len(ls) > 1)
    figures.add('messages', len(sent))
    figures.add('kills', killed)
    figures.add('kills_while_holding', len({w.pid for w, _ in held_at_death}))
    figures.add('redelivered', redelivered)
    figures.add('lease_expiries', expiries)
    figures.add('dead_letters', len(dead))
    figures.add('lost', len(lost))
    figures.add('duplicated', len(acked_twice) + len(acked_and_dead))
    print('leases: %d messages, %d acked, %d dead letters (%d always failing), %d kills '
          '(%d leases held at death), %d lease expiries, %d late acks refused, %d redelivered'
          % (len(sent), len(acks), len(dead), len(always_fail), killed, len(held_at_death),
             expiries, late_acks_refused, redelivered))

    assert len(sent) == messages
    assert not lost, '%d messages neither acked nor dead letters: %s' % (
        len(lost), sorted(lost)[:10])
    assert not acked_twice, 'acked more than once: %s' % sorted(acked_twice.items())[:10]
    assert not acked_and_dead, 'acked and a dead letter: %s' % sorted(acked_and_dead)[:10]
    assert set(acks) | set(dead) <= sent_ids
    assert left == 0 and rows_left == len(dead), (left, rows_left, len(dead))
    assert always_fail <= set(dead), 'messages that always fail were acked: %s' % sorted(
        always_fail - set(dead))[:10]
    assert not bad_dead, 'dead letters not as they should be: %s' % bad_dead[:5]
    assert not overlaps, 'leased again while a lease was live: %s' % overlaps[:3]
    assert not same_attempt, 'leases that did not count an attempt each: %s' % same_attempt[:5]
    assert not uncounted, 'a killed consumer\'s attempt not counted: %s' % uncounted[:5]
    assert all(e['attempts'] <= MAX_ATTEMPTS for ls in leases.values() for e in ls)
    # the faults happened: kills mid-job, leases that ran out, nacks that killed
    assert held_at_death, 'no consumer was killed while it held a lease'
    assert expiries > 0
    assert len(killed_by_nack) >= len(always_fail) // 2


def test_leases_8_consumers_20000_messages_kills_and_expiries(dsn, logdir, workers, figures):
    run_leases(dsn, logdir, workers, figures, messages=20000, kills=30)


def test_leases_8_consumers_20000_messages_kills_and_expiries_under_a_pinned_horizon(
        dsn, logdir, workers, figures, pinned_horizon):
    """The same while a long transaction pins the xmin horizon (1.2's ring:
    leased messages move to the later slot when their slot is emptied)."""
    run_leases(dsn, logdir, workers, figures, messages=20000, kills=30)


@pytest.mark.soak
def test_leases_soak_16_consumers_200000_messages(dsn, logdir, workers, figures):
    run_leases(dsn, logdir, workers, figures, messages=200000, kills=300,
               consumers=CONSUMERS * 2)
