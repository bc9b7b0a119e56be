"""Wake-up latency: COMMIT of an enqueue -> an idle listener holds the
message, p50/p99, for 1/4/16 listeners; the q4pg client's listen() against a
hand-written psycopg2 LISTEN loop; and the CPU time the listeners spent per
message (their processes and their server backends)."""

import json
import multiprocessing
import os
import random
import time

import psycopg2

from bench.harness import log
from bench.workers import QUEUE, listeners


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
        cpu = {label: [0.0, 0.0, 0] for label, _ in impls}   # client s, backend s, messages
        for r in range(cfg.rounds):
            order = impls if r % 2 == 0 else impls[::-1]
            for label, target in order:
                t = time.monotonic()
                samples, missing, used = _latencies(bench, target, c, cfg.listen_samples)
                t = time.monotonic() - t
                got[label] += samples
                lost[label] += missing
                cpu[label] = [a + b for a, b in zip(cpu[label], used)]
                log('  wake-up latency c=%-2d round %d/%d  %-32s p50 %.2f ms  p99 %.2f ms  '
                    'CPU/msg %.2f + %.2f ms%s (%.0f s)'
                    % (c, r + 1, cfg.rounds, label, percentile(samples, 50) * 1e3,
                       percentile(samples, 99) * 1e3, used[0] / max(used[2], 1) * 1e3,
                       used[1] / max(used[2], 1) * 1e3,
                       '  (%d lost)' % missing if missing else '', t))
        for label, _ in impls:
            v = got[label]
            row = dict(subject=label, listeners=c, samples=len(v), lost=lost[label],
                       p50=percentile(v, 50), p90=percentile(v, 90), p99=percentile(v, 99),
                       max=max(v) if v else None,
                       cpu_client=cpu[label][0] / max(cpu[label][2], 1),
                       cpu_server=cpu[label][1] / max(cpu[label][2], 1),
                       kind='baseline' if label.startswith('psycopg2') else 'q4pg')
            if row['kind'] == 'q4pg':
                row['pass'] = row['p99'] is not None and row['p99'] < 0.010 and not lost[label]
            bench.latency.append(row)


def _latencies(bench, target, listeners, samples):
    """`listeners` processes running `target` idle on the queue; one message at
    a time, committed after a random pause; latency = the producer sending
    COMMIT -> a listener holding the message (the dequeue returned it).
    Returns (latencies in seconds, messages no listener got within 10 s,
    (CPU seconds of the listener processes, CPU seconds of every other backend
    of the database: the listeners', messages timed))."""
    ctx = multiprocessing.get_context('spawn')
    out = ctx.Queue()
    # DELETE, not the store's reset(): TRUNCATE ... RESTART IDENTITY restarts
    # the ring's state sequence too, and the next enqueue finds no slot
    bench.execute('DELETE FROM %s' % QUEUE)
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
    cur.execute('SELECT pid FROM pg_stat_activity WHERE datname = current_database() '
                'AND pid <> pg_backend_pid()')
    backends = [pid for pid, in cur.fetchall()]
    conn.commit()
    start = None
    try:
        for k in range(-1, samples):                # k = -1: a first, untimed message
            if k == 0:
                start = (_cpu([p.pid for p in procs]), _cpu(backends))
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
        used = (_cpu([p.pid for p in procs]) - start[0], _cpu(backends) - start[1], samples)
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
    return latencies, missing, used


def _cpu(pids):
    """CPU seconds (user + system) the processes `pids` have used (Linux /proc;
    the bench runs the server on this machine); 0 for a process that is gone."""
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])     # utime, stime
    return total / os.sysconf('SC_CLK_TCK')


def percentile(values, p):
    """The p-th percentile of values, interpolated linearly; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
