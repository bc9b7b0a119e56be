"""Wake-up latency: COMMIT of an enqueue -> an idle listener holds the
message, p50/p99, for 1/4/16 listeners; the q4pg client's listen() against a
hand-written psycopg2 LISTEN loop."""

import json
import multiprocessing
import random
import time

import psycopg2

from bench.harness import log
from bench.workers import listeners


def run(bench):
    cfg = bench.cfg
    impls = [('psycopg2 LISTEN + q4pg_dequeue', listeners.listen_psycopg2)]
    if bench.client_problem:
        bench.notes.append('Wake-up latency not measured for the q4pg client: q4pg.QueueManager '
                           'is not importable yet (%s); only the raw LISTEN baseline ran.'
                           % bench.client_problem)
    else:
        impls.insert(0, ('QueueManager.listen()', listeners.listen_q4pg))
    for c in cfg.listen_clients:
        got = {label: [] for label, _ in impls}
        lost = {label: 0 for label, _ in impls}
        for r in range(cfg.rounds):
            order = impls if r % 2 == 0 else impls[::-1]
            for label, target in order:
                t = time.monotonic()
                samples, missing = _latencies(bench, target, c, cfg.listen_samples)
                t = time.monotonic() - t
                got[label] += samples
                lost[label] += missing
                log('  wake-up latency c=%-2d round %d/%d  %-32s p50 %.2f ms  p99 %.2f ms%s (%.0f s)'
                    % (c, r + 1, cfg.rounds, label, percentile(samples, 50) * 1e3,
                       percentile(samples, 99) * 1e3,
                       '  (%d lost)' % missing if missing else '', t))
        for label, _ in impls:
            v = got[label]
            row = dict(subject=label, listeners=c, samples=len(v), lost=lost[label],
                       p50=percentile(v, 50), p90=percentile(v, 90), p99=percentile(v, 99),
                       max=max(v) if v else None,
                       kind='baseline' if label.startswith('psycopg2') else 'q4pg')
            if row['kind'] == 'q4pg':
                row['pass'] = row['p99'] is not None and row['p99'] < 0.010 and not lost[label]
            bench.latency.append(row)


def _latencies(bench, target, listeners, samples):
    """`listeners` processes running `target` idle on the queue; one message at
    a time, committed after a random pause; latency = the producer sending
    COMMIT -> a listener holding the message (the dequeue returned it).
    Returns (latencies in seconds, messages no listener got within 10 s)."""
    ctx = multiprocessing.get_context('spawn')
    out = ctx.Queue()
    bench.stores['q'].reset()
    procs = [ctx.Process(target=target, args=(bench.dsn, out, 60.0), daemon=True)
             for _ in range(listeners)]
    for p in procs:
        p.start()
    ready = 0
    while ready < listeners:
        if out.get(timeout=60)[0] == 'ready':
            ready += 1
    time.sleep(0.5)
    conn = psycopg2.connect(bench.dsn)
    cur = conn.cursor()
    latencies, missing = [], 0
    try:
        for k in range(-1, samples):                # k = -1: a first, untimed message
            time.sleep(random.uniform(0.02, 0.05))  # every listener back asleep
            cur.execute('SELECT q4pg_enqueue(%s::regclass, %s::text, %s::text)',
                        ('q', 't', json.dumps({'i': k})))
            t0 = time.monotonic()
            conn.commit()
            deadline = t0 + 10.0
            while True:
                try:
                    what, i, t1 = out.get(timeout=max(0.01, deadline - time.monotonic()))
                except Exception:           # queue.Empty: no listener got it in 10 s
                    missing += k >= 0
                    break
                if what == 'got' and i == k:
                    if k >= 0:
                        latencies.append(t1 - t0)
                    break
        for _ in procs:                             # one 'stop' per listener
            cur.execute('SELECT q4pg_enqueue(%s::regclass, %s::text, %s::text)',
                        ('q', 't', json.dumps({'i': 'stop'})))
            conn.commit()
    finally:
        conn.close()
        deadline = time.monotonic() + 8
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():                # asleep until its safety-net poll: no need to wait
                p.terminate()
                p.join()
    return latencies, missing


def percentile(values, p):
    """The p-th percentile of values, interpolated linearly; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
