"""A pinned xmin horizon: the loop of issue 17 (each transaction enqueues one
message and dequeues one, 2 clients, durable commits) while something holds
the horizon back, against the same loop unpinned.

Runs, each on a fresh queue (or table):
  unpinned   q4pg, cfg.horizon_base seconds: the reference rate and CPU
  pinned     q4pg, an idle REPEATABLE READ transaction holding its snapshot
             for cfg.horizon_minutes, then released (recovery)
  held       q4pg, 100,000 messages due in a day enqueued first, and one
             consumer holding one message in an open transaction (which pins
             the horizon and holds locks) for cfg.horizon_minutes, released
  raw, PGMQ  the plain SKIP LOCKED table and PGMQ pinned, for contrast
             (a fifth of the time: they fall within the first minutes)
Each run reports its rate per 10 s (pgbench -P 10), the rate of its last
minute pinned against the unpinned rate (target >= 0.8), the server's CPU
time per message (every process of the cluster, autovacuum included: the
sum over its processes of /proc/<pid>/stat's utime + stime, sampled every
2 s) against the unpinned one (target <= 1.5), the queue's size on disk at
the end of the pin, and the rate of each 10 s after the pin ends."""

import os
import re
import subprocess
import threading
import time

import psycopg2

from bench.harness import BENCH, PG_BINDIR, TICK, log, proc_stat, table_store
from bench.subjects import writer

FUTURE = 100000
CLIENTS = 2
RECOVERY = 60           # seconds measured after the pin ends


class ServerCpu:
    """CPU seconds used by the cluster's processes (the postmaster's children)
    since start(), sampled every 2 s in a thread (a process that exits loses
    at most its last 2 s)."""

    def __init__(self, postmaster):
        self.postmaster, self.first, self.last = postmaster, {}, {}
        self.stop = threading.Event()

    def _sample(self):
        for pid in os.listdir('/proc'):
            fields = proc_stat(pid) if pid.isdigit() else None
            if fields is None or int(fields[1]) != self.postmaster:
                continue
            used = (int(fields[11]) + int(fields[12])) / TICK
            self.first.setdefault(pid, used if self.started else 0.0)
            self.last[pid] = used

    def start(self):
        self.started = True
        self._sample()
        self.started = False            # processes born from now on count from 0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.wait(2):
            self._sample()

    def seconds(self):
        self.stop.set()
        self.thread.join()
        self._sample()
        return sum(self.last[p] - self.first[p] for p in self.last)


def _size(bench, relation):
    # (pg_partition_tree gives nothing for an ordinary table)
    return bench.query('SELECT coalesce(sum(pg_total_relation_size(t.r)), 0)::bigint '
                       'FROM (SELECT relid FROM pg_partition_tree(%s::regclass) '
                       '      UNION SELECT %s::regclass) AS t(r)', (relation, relation))[0][0]


def _fresh(bench, kind):
    """A fresh queue or table for a run; returns the relation whose size counts."""
    if kind == 'q4pg':
        bench.execute("SELECT q4pg_drop_queue(to_regclass('h')) WHERE to_regclass('h') IS NOT NULL")
        bench.execute("SELECT q4pg_create_queue('h')")
        return 'h'
    if kind == 'raw':
        bench.execute('DROP TABLE IF EXISTS raw_h')
        bench.execute('CREATE TABLE raw_h (LIKE raw INCLUDING ALL)')
        return 'raw_h'
    bench.execute("SELECT pgmq.drop_queue('ph') FROM pgmq.meta WHERE queue_name = 'ph'")
    bench.execute("SELECT pgmq.create('ph')")
    return 'pgmq.q_ph'


def loop_subject(bench, label='q4pg, unpinned', kind='q4pg'):
    """The loop, nothing pinned, on a fresh queue h of bench's database, as a
    pgbench writer for compare(): messages through per second."""
    _fresh(bench, 'q4pg')
    return writer(bench, label, 'scripts/horizon_q4pg.sql', table_store(bench, 'h'), kind,
                  countable=False)


def _pin(bench, how):
    """Opens what holds the horizon: 'snapshot' (an idle REPEATABLE READ
    transaction) or 'held' (a consumer holding one message of h); returns its
    connection (rolled back and closed to end the pin)."""
    conn = psycopg2.connect(bench.dsn)
    with conn.cursor() as cur:
        if how == 'snapshot':
            conn.autocommit = True      # (else psycopg2's own BEGIN comes first)
            cur.execute('BEGIN ISOLATION LEVEL REPEATABLE READ')
            cur.execute('SELECT 1')
        else:
            bench.execute("SELECT q4pg_enqueue('h', 't', '{\"held\": true}')")
            cur.execute("SELECT id FROM q4pg_dequeue('h', 't')")
            assert cur.fetchone(), 'the held message was not there'
    return conn


def _release(pin):
    with pin.cursor() as cur:
        cur.execute('ROLLBACK')
    pin.close()


def _loop(bench, script, seconds, release_at=None, pin=None):
    """Runs the loop for `seconds`, ending the pin after `release_at` s;
    returns (rates per 10 s, messages, server CPU seconds, seconds run)."""
    cpu = ServerCpu(bench.postmaster)
    cmd = [os.path.join(PG_BINDIR, 'pgbench'), '-n', '-M', 'prepared', '-P', '10',
           '-f', os.path.join(BENCH, script), '-c', str(CLIENTS), '-j', str(CLIENTS),
           '-T', str(seconds)]
    timer = None
    if pin is not None and release_at is not None:
        timer = threading.Timer(release_at, _release, (pin,))
        timer.start()
    cpu.start()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=bench.env, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    used = cpu.seconds()
    if timer:
        timer.join()
    out = proc.stdout + proc.stderr
    done = re.search(r'^number of transactions actually processed: (\d+)', out, re.M)
    if proc.returncode != 0 or not done:
        raise RuntimeError('pgbench %s failed:\n%s' % (script, out[-2000:]))
    rates = [float(r) for r in re.findall(r'^progress: [\d.]+ s, ([\d.]+) tps', out, re.M)]
    return rates, int(done.group(1)), used, elapsed


def _run(bench, name, kind, script, pin_how, minutes, seconds=None, base=None):
    relation = _fresh(bench, kind)
    if pin_how == 'held':
        bench.execute("SELECT count(*) FROM q4pg_enqueue_many('h', 't', "
                      "array_fill('{\"later\": true}'::text, ARRAY[%s]), now() + interval '1 day')",
                      (FUTURE,))
    bench.execute('VACUUM (ANALYZE) %s' % relation)
    bench.execute('CHECKPOINT')
    pinned = minutes * 60
    pin = _pin(bench, pin_how) if pin_how else None
    log('  horizon %s %s: %s for %d s%s' % (kind, name, pin_how or 'nothing pinned', pinned if pin else seconds,
                                           ', then %d s released' % RECOVERY if pin else ''))
    size = {}
    if pin:
        sizer = threading.Timer(pinned - 1, lambda: size.setdefault('pinned', _size(bench, relation)))
        sizer.start()
    rates, messages, cpu, elapsed = _loop(bench, script, pinned + RECOVERY if pin else seconds,
                                          release_at=pinned if pin else None, pin=pin)
    if pin:
        sizer.join()
    n_pinned = len(rates) - RECOVERY // 10 if pin else len(rates)
    result = dict(name=name, kind=kind, pin=pin_how, minutes=minutes, rates=rates,
                  messages=messages, cpu_seconds=cpu, seconds=elapsed,
                  cpu_per_message_us=cpu / max(messages, 1) * 1e6,
                  last_minute=sum(rates[max(0, n_pinned - 6):n_pinned]) / max(1, min(6, n_pinned)),
                  size_pinned=size.get('pinned'), size_end=_size(bench, relation),
                  recovery=rates[n_pinned:] if pin else [])
    if rates:
        result['fall'] = result['last_minute'] / max(rates[0], 1e-9)
    if base is not None and pin:
        result['ratio'] = result['last_minute'] / base['rate']
        result['cpu_ratio'] = result['cpu_per_message_us'] / base['cpu_per_message_us']
    log('  => %s %s: last minute pinned %.0f/s; %.0f us CPU a message; %s bytes pinned; recovery %s'
        % (kind, name, result['last_minute'], result['cpu_per_message_us'], result['size_pinned'],
           ', '.join('%.0f' % r for r in result['recovery'])))
    return result


def run(bench):
    cfg = bench.cfg
    minutes = cfg.horizon_minutes
    base = _run(bench, 'unpinned', 'q4pg', 'scripts/horizon_q4pg.sql', None, 0, seconds=cfg.horizon_base)
    base['rate'] = base['messages'] / base['seconds']
    base['last_minute'] = base['rate']
    bench.horizon.append(base)
    for name, how in (('pinned', 'snapshot'), ('held', 'held')):
        bench.horizon.append(_run(bench, name, 'q4pg', 'scripts/horizon_q4pg.sql', how, minutes,
                                  base=base))
    contrast = max(1, minutes // 5)
    bench.horizon.append(_run(bench, 'pinned', 'raw', 'scripts/horizon_raw.sql', 'snapshot',
                              contrast, None))
    if getattr(bench, 'has_pgmq', False):
        bench.horizon.append(_run(bench, 'pinned', 'pgmq', 'scripts/horizon_pgmq.sql', 'snapshot',
                                  contrast, None))
