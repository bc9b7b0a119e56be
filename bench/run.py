#!/usr/bin/env python3
"""q4pg's benchmark: q4pg against the plain SQL it wraps, and against its peers.

Starts a throwaway PostgreSQL cluster with durable commits (fsync on,
synchronous_commit on), measures, writes bench/results/ (results.md,
results.json, chart.png) and stops the cluster.  `make bench` runs it.

Every measurement runs q4pg and its baseline (the same work in plain SQL on a
table of the same shape, "raw") in the same run, alternating, for each client
count, round after round; what counts is the median of the per-round ratios
(q4pg / baseline), because the machine is shared and noisy.

    bench/run.py                    the full run (about 15 minutes on 2 cores)
    bench/run.py --quick            a smoke run (2-3 minutes)
    bench/run.py --only enqueue,dequeue
    bench/run.py --only anatomy     q4pg_enqueue/q4pg_dequeue taken apart, piece by piece

Sections: %(sections)s.
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback
import zipfile

import psycopg2

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(ROOT, 'tools'))
sys.path.insert(0, BENCH)

from pgcluster import Cluster  # noqa: E402

import pyclients  # noqa: E402
import report  # noqa: E402

SECTIONS = ['enqueue', 'dequeue', 'notify', 'python', 'batch', 'listen', 'soak', 'anatomy']
DEFAULT_SECTIONS = ['enqueue', 'dequeue', 'notify', 'python', 'batch', 'listen', 'soak']
SOAK_NAPTIME = 1  # autovacuum_naptime (s) of the soak's target run: the README's advice

# fsync and synchronous_commit stay at their durable defaults: no -F here.
# Large max_wal_size / checkpoint_timeout: no checkpoint starts in the middle
# of a measurement (each run begins with an explicit CHECKPOINT instead).
POSTGRES_ARGS = ('-h 127.0.0.1 -c logging_collector=off -c max_connections=200 '
                 '-c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min')

PG_BINDIR = '/usr/lib/postgresql/15/bin'
PGQ_PACKAGE = 'postgresql-15-pgq3'
PGMQ_PYPI = 'pgmq==1.1.4'          # ships PGMQ's own SQL-only install script (pgmq/sql/pgmq.sql)
MESSAGE = '{"n":1}'


def log(*args):
    print(*args, flush=True)


def median(values):
    return statistics.median(values) if values else None


# --- peers: PgQ from Debian, PGMQ from PyPI --------------------------------------

def ensure_pgq(notes):
    """True when PgQ's extension files are installed (apt-get installs them when root)."""
    sharedir = subprocess.run([os.path.join(PG_BINDIR, 'pg_config'), '--sharedir'],
                              capture_output=True, text=True).stdout.strip()
    control = os.path.join(sharedir, 'extension', 'pgq.control')
    if os.path.exists(control):
        return True
    if os.geteuid() == 0 and shutil.which('apt-get'):
        log('installing %s with apt-get' % PGQ_PACKAGE)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        subprocess.run(['apt-get', 'update', '-qq'], env=env)
        subprocess.run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', PGQ_PACKAGE],
                       env=env)
        if os.path.exists(control):
            return True
    notes.append('PgQ not measured: its extension is not installed; install it with '
                 '`sudo apt-get install -y %s`.' % PGQ_PACKAGE)
    return False


def ensure_pgmq(notes):
    """The path of PGMQ's SQL install script, taken from PyPI's `pgmq` package
    (downloaded into bench/work/, not installed into the venv), or None."""
    workdir = os.path.join(BENCH, 'work', 'pgmq')
    script = os.path.join(workdir, 'pgmq.sql')
    if os.path.exists(script):
        return script
    os.makedirs(workdir, exist_ok=True)
    proc = subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                           '--only-binary', ':all:', '-d', workdir, PGMQ_PYPI],
                          capture_output=True, text=True)
    wheels = [f for f in os.listdir(workdir) if f.endswith('.whl')]
    if proc.returncode != 0 or not wheels:
        notes.append('PGMQ not measured: `pip download %s` failed: %s'
                     % (PGMQ_PYPI, (proc.stderr.strip().splitlines() or ['?'])[-1]))
        return None
    with zipfile.ZipFile(os.path.join(workdir, wheels[0])) as whl:
        try:
            sql = whl.read('pgmq/sql/pgmq.sql')
            version = whl.read('pgmq/sql/VERSION').decode().strip()
        except KeyError:
            notes.append('PGMQ not measured: %s carries no pgmq/sql/pgmq.sql' % wheels[0])
            return None
    with open(script, 'wb') as f:
        f.write(sql)
    with open(os.path.join(workdir, 'VERSION'), 'w') as f:
        f.write(version + '\n')
    return script


# --- tables the measurements fill and drain -----------------------------------

class Store:
    """One table messages sit in: emptied before each run, prefilled for takers."""

    def __init__(self, bench, name, truncate, prefill=None, count=None, vacuum=None):
        self.bench, self.name = bench, name
        self.truncate_sql, self.prefill_sql, self.count_sql = truncate, prefill, count
        self.vacuum = vacuum

    def reset(self, n=0):
        self.bench.execute(self.truncate_sql)
        if n:
            self.bench.execute(self.prefill_sql, (n,))
        if self.vacuum:
            self.bench.execute('VACUUM (ANALYZE) %s' % self.vacuum)
        self.bench.execute('CHECKPOINT')

    def count(self):
        return self.bench.query(self.count_sql)[0][0]


def table_store(bench, table):
    return Store(bench, table,
                 truncate='TRUNCATE %s RESTART IDENTITY' % table,
                 prefill="INSERT INTO %s (tag, data) SELECT 't', '%s' FROM generate_series(1, %%s)"
                         % (table, MESSAGE),
                 count='SELECT count(*) FROM %s' % table,
                 vacuum=table)


class Subject:
    """One contender of a measurement: run(clients) -> messages per second."""

    def __init__(self, label, run, kind='q4pg', clients=None):
        self.label, self.run, self.kind, self.clients = label, run, kind, clients


class PgbenchResult:
    def __init__(self, tps, processed, failed):
        self.tps, self.processed, self.failed = tps, processed, failed


# --- the benchmark ------------------------------------------------------------

class Bench:
    def __init__(self, pg, cfg):
        self.pg, self.cfg = pg, cfg
        self.env = dict(os.environ, **pg.env())
        self.dsn = pg.dsn_string()
        self.admin = psycopg2.connect(self.dsn)
        self.admin.autocommit = True
        self.rows, self.latency, self.soak, self.cpu = [], [], [], []
        self.notes = []
        self.prefill = {}
        self.pool = None
        self.has_pgq = self.has_pgmq = False
        self.client_problem = pyclients.client_available()

    # SQL on the admin connection
    def execute(self, sql, args=None):
        with self.admin.cursor() as cur:
            cur.execute(sql, args)

    def query(self, sql, args=None):
        with self.admin.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def psql_file(self, path):
        subprocess.run([os.path.join(PG_BINDIR, 'psql'), '-qX', '-v', 'ON_ERROR_STOP=1',
                        '-f', path], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def pgbench(self, script, clients, seconds=None, transactions=None, defines=None,
                pgoptions=None):
        cmd = [os.path.join(PG_BINDIR, 'pgbench'), '-n', '-M', 'prepared',
               '-f', os.path.join(BENCH, script),
               '-c', str(clients), '-j', str(min(clients, os.cpu_count() or 1))]
        cmd += ['-T', str(seconds)] if seconds else ['-t', str(transactions)]
        for name, value in (defines or {}).items():
            cmd += ['-D', '%s=%s' % (name, value)]
        env = dict(self.env, PGOPTIONS=pgoptions) if pgoptions else self.env
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        tps = re.search(r'^tps = ([\d.]+) \(without initial connection time\)', out, re.M)
        processed = re.search(r'^number of transactions actually processed: (\d+)', out, re.M)
        failed = re.search(r'^number of failed transactions: (\d+)', out, re.M)
        if proc.returncode != 0 or not tps or (failed and int(failed.group(1))):
            raise RuntimeError('pgbench %s -c %d failed:\n%s' % (script, clients, out[-2000:]))
        return PgbenchResult(float(tps.group(1)), int(processed.group(1)),
                             int(failed.group(1)) if failed else 0)

    # --- setup --------------------------------------------------------------

    def setup(self):
        self.psql_file(os.path.join(BENCH, 'setup.sql'))
        self.stores = {name: table_store(self, name) for name in ('raw', 'q')}
        self.stores['raw_notify'] = Store(self, 'raw_notify', 'TRUNCATE raw_notify RESTART IDENTITY')
        if not self.cfg.no_peers:
            self.setup_pgq()
            self.setup_pgmq()

    def setup_pgq(self):
        if not ensure_pgq(self.notes):
            return
        self.execute('CREATE EXTENSION pgq')
        self.execute("SELECT pgq.create_queue('pq')")
        version = self.query('SELECT pgq.version()')[0][0]
        self.stores['pq'] = Store(self, 'pq', "SELECT pgq.drop_queue('pq', true), pgq.create_queue('pq')")
        self.peer_versions = getattr(self, 'peer_versions', {})
        self.peer_versions['PgQ'] = '%s (Debian %s)' % (version, PGQ_PACKAGE)
        self.has_pgq = True

    def setup_pgmq(self):
        script = ensure_pgmq(self.notes)
        if not script:
            return
        try:
            subprocess.run([os.path.join(PG_BINDIR, 'psql'), '-qX', '-1', '-v', 'ON_ERROR_STOP=1',
                            '-f', script], env=self.env, check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as e:
            self.notes.append('PGMQ not measured: its install script failed: %s'
                              % e.stderr.strip()[-300:])
            return
        self.execute("SELECT pgmq.create('pm')")
        self.stores['pm'] = Store(
            self, 'pm', 'TRUNCATE pgmq.q_pm RESTART IDENTITY',
            prefill="SELECT count(*) FROM pgmq.send_batch('pm', array_fill('%s'::jsonb, ARRAY[%%s]))"
                    % MESSAGE,
            count='SELECT count(*) FROM pgmq.q_pm', vacuum='pgmq.q_pm')
        with open(os.path.join(os.path.dirname(script), 'VERSION')) as f:
            version = f.read().strip()
        self.peer_versions = getattr(self, 'peer_versions', {})
        self.peer_versions['PGMQ'] = '%s (SQL-only install shipped in PyPI %s)' % (version, PGMQ_PYPI)
        self.has_pgmq = True

    # --- subjects: how one contender runs at a given client count -------------

    def writer(self, label, script, store, kind='q4pg', per_call=1, defines=None, countable=True,
               clients=None, pgoptions=None):
        """A pgbench script that adds messages, for cfg.seconds."""
        def run(c):
            store.reset()
            res = self.pgbench(script, c, seconds=self.cfg.seconds, defines=defines,
                               pgoptions=pgoptions)
            if countable and store.count_sql:
                return store.count() * res.tps / res.processed
            return res.tps * per_call
        return Subject(label, run, kind, clients)

    def taker(self, label, script, store, kind='q4pg', batch=None, clients=None, pgoptions=None,
              seconds=None):
        """A pgbench script that takes messages from a prefilled table.  One at a
        time: for cfg.seconds, on a prefill that grows until a run never finds the
        table empty.  In batches: a fixed number of calls (-t), each finding a
        full batch.  Rate: messages actually moved per second."""
        seconds = seconds or self.cfg.seconds

        def run(c):
            if batch is None:
                n = self.prefill.get(label, max(20000, int(25000 * seconds)))
                for _ in range(6):
                    store.reset(n)
                    res = self.pgbench(script, c, seconds=seconds, pgoptions=pgoptions)
                    left = store.count()
                    if left > 0:
                        break
                    n *= 2
                    self.prefill[label] = n
                    log('    %s ran dry: prefill now %d messages, again' % (label, n))
                else:
                    raise RuntimeError('%s: ran dry even with %d messages' % (label, n))
            else:
                calls = max(2, self.cfg.batch_messages // (c * batch))
                n = (calls + 1) * c * batch
                store.reset(n)
                res = self.pgbench(script, c, transactions=calls, defines={'batch': batch},
                                   pgoptions=pgoptions)
                left = store.count()
            return (n - left) * res.tps / res.processed
        return Subject(label, run, kind, clients)

    def pgq_consumer(self, label, batch):
        """PgQ's consumer loop (next_batch, get_batch_events, finish_batch) over
        ticks of `batch` events each; one consumer (PgQ consumers fan out, they
        do not share work)."""
        def run(c):
            calls = max(2, self.cfg.batch_messages // batch)
            self.execute("SELECT pgq.drop_queue('pc', true) FROM pgq.queue WHERE queue_name = 'pc'")
            self.execute("SELECT pgq.create_queue('pc')")
            # a tick whenever there is any new event: each ticker() call below closes one batch
            self.execute("SELECT pgq.set_queue_config('pc', 'ticker_max_count', '1')")
            self.execute("SELECT pgq.register_consumer('pc', 'bench')")
            for _ in range(calls):
                self.execute("SELECT count(pgq.insert_event('pc', 't', d)) FROM "
                             "unnest(array_fill(%s::text, ARRAY[%s::integer])) AS d", (MESSAGE, batch))
                self.execute("SELECT pgq.ticker('pc')")
            self.execute('CHECKPOINT')
            res = self.pgbench('batch_dequeue_pgq.sql', 1, transactions=calls)
            pending = self.query("SELECT pgq.next_batch('pc', 'bench')")[0][0]
            if pending is not None:
                raise RuntimeError('PgQ consumer left batches behind')
            return res.tps * batch
        return Subject(label, run, 'peer', clients=[1])

    def python(self, label, impl, job, store, kind='q4pg', batch=1):
        """A loop in Python worker processes, one per client: for cfg.py_seconds,
        or, taking batches, a fixed number of calls on a table that holds them all."""
        takes = job.startswith('dequeue')
        fixed = takes and batch > 1

        def run(c):
            if fixed:
                calls = max(2, self.cfg.batch_messages // (c * batch))
                n = (calls + 1) * c * batch
            else:
                calls = None
                n = self.prefill.get(label, max(10000, int(8000 * self.cfg.py_seconds)))
            for _ in range(6):
                store.reset(n if takes else 0)
                start_at = time.monotonic() + 0.5
                futures = [self.pool.submit(pyclients.timed_loop, impl, job, self.dsn, start_at,
                                            None if fixed else self.cfg.py_seconds, batch, calls)
                           for _ in range(c)]
                results = [f.result() for f in futures]
                moved = sum(r[0] for r in results)
                short = sum(r[2] for r in results)
                elapsed = max(r[3] for r in results) - start_at if fixed else self.cfg.py_seconds
                if fixed or not (takes and short):
                    return moved / elapsed
                n *= 2
                self.prefill[label] = n
                log('    %s ran dry: prefill now %d messages, again' % (label, n))
            raise RuntimeError('%s: ran dry even with %d messages' % (label, n))
        return Subject(label, run, kind)

    # --- one measurement: a baseline and its contenders, alternated -------------

    def compare(self, section, measurement, baseline, subjects, clients=None, unit='msg/s',
                target=None, rounds=None, table=None):
        clients = clients or self.cfg.clients
        rounds = rounds or self.cfg.rounds
        table = self.rows if table is None else table
        for c in clients:
            here = [s for s in subjects if s.clients is None or c in s.clients]
            if not here:
                continue
            everyone = [baseline] + here
            rates = {s.label: [] for s in everyone}
            for r in range(rounds):
                k = r % len(everyone)
                for s in everyone[k:] + everyone[:k]:      # a different one goes first each round
                    rate = s.run(c)
                    rates[s.label].append(rate)
                    log('  %-22s c=%-2d round %d/%d  %-34s %12.1f %s'
                        % (measurement, c, r + 1, rounds, s.label, rate, unit))
            for s in here:
                ratios = [a / b for a, b in zip(rates[s.label], rates[baseline.label])]
                row = dict(section=section, measurement=measurement, subject=s.label,
                           baseline=baseline.label, clients=c, unit=unit, kind=s.kind,
                           rate=median(rates[s.label]), baseline_rate=median(rates[baseline.label]),
                           ratio=median(ratios), rates=rates[s.label],
                           baseline_rates=rates[baseline.label], ratios=ratios, target=None)
                if s.kind == 'q4pg' and target:
                    row['target'] = target
                    if target[0] == 'ratio':
                        row['pass'] = row['ratio'] >= target[1]
                    else:
                        row['pass'] = row['rate'] >= target[1]
                table.append(row)
                log('  => %s c=%d: %s %.1f vs %s %.1f: ratio %.3f'
                    % (measurement, c, s.label, row['rate'], baseline.label, row['baseline_rate'],
                       row['ratio']))

    # --- sections -----------------------------------------------------------

    def section_enqueue(self):
        s = self.stores
        subjects = [self.writer('q4pg_enqueue', 'enqueue_q4pg.sql', s['q'])]
        if self.has_pgq:
            subjects.append(self.writer('PgQ insert_event', 'enqueue_pgq.sql', s['pq'], 'peer',
                                        countable=False))
        if self.has_pgmq:
            subjects.append(self.writer('PGMQ send', 'enqueue_pgmq.sql', s['pm'], 'peer'))
        self.compare('enqueue', 'SQL enqueue',
                     self.writer('INSERT', 'enqueue_raw.sql', s['raw'], 'baseline'),
                     subjects, unit='msg/s', target=('ratio', 0.90))

    def section_dequeue(self):
        s = self.stores
        subjects = [self.taker('q4pg_dequeue', 'dequeue_q4pg.sql', s['q'])]
        if self.has_pgmq:
            subjects.append(self.taker('PGMQ pop', 'dequeue_pgmq.sql', s['pm'], 'peer'))
        self.compare('dequeue', 'SQL dequeue',
                     self.taker('DELETE ... SKIP LOCKED', 'dequeue_raw.sql', s['raw'], 'baseline'),
                     subjects, unit='msg/s', target=('ratio', 0.90))

    def section_notify(self):
        s = self.stores
        self.compare('notify', 'NOTIFY cost (diagnostic)',
                     self.writer('INSERT', 'enqueue_raw.sql', s['raw'], 'baseline'),
                     [self.writer('INSERT + per-row pg_notify trigger', 'notify_row_trigger.sql',
                                  s['raw_notify'], 'diagnostic', countable=False),
                      self.writer('INSERT into the q4pg queue (gated trigger, nobody waits)',
                                  'notify_queue_insert.sql', s['q'], 'diagnostic')],
                     unit='msg/s')

    def section_python(self):
        if self.client_problem:
            self.notes.append('Python level not measured for q4pg: q4pg.QueueManager is not '
                              'importable yet (%s).' % self.client_problem)
            return
        s, b = self.stores, self.cfg.batch
        self.start_pool()
        self.compare('python', 'Python enqueue',
                     self.python('psycopg2 INSERT', 'psycopg2', 'enqueue', s['raw'], 'baseline'),
                     [self.python('QueueManager.enqueue()', 'q4pg', 'enqueue', s['q'])])
        self.compare('python', 'Python dequeue',
                     self.python('psycopg2 DELETE', 'psycopg2', 'dequeue', s['raw'], 'baseline'),
                     [self.python('with QueueManager.dequeue()', 'q4pg', 'dequeue', s['q'])])
        self.compare('python', 'Python enqueue_many(%d)' % b,
                     self.python('psycopg2 INSERT unnest', 'psycopg2', 'enqueue_many', s['raw'],
                                 'baseline', b),
                     [self.python('QueueManager.enqueue_many()', 'q4pg', 'enqueue_many', s['q'],
                                  batch=b)],
                     clients=self.cfg.batch_clients)
        self.compare('python', 'Python dequeue_many(%d)' % b,
                     self.python('psycopg2 DELETE LIMIT', 'psycopg2', 'dequeue_many', s['raw'],
                                 'baseline', b),
                     [self.python('with QueueManager.dequeue_many()', 'q4pg', 'dequeue_many', s['q'],
                                  batch=b)],
                     clients=self.cfg.batch_clients)

    def section_batch(self):
        s, b = self.stores, self.cfg.batch
        defines = {'batch': b}
        subjects = [self.writer('q4pg_enqueue_many', 'batch_enqueue_q4pg.sql', s['q'],
                                defines=defines)]
        if self.has_pgq:
            subjects.append(self.writer('PgQ insert_event x%d' % b, 'batch_enqueue_pgq.sql',
                                        s['pq'], 'peer', per_call=b, defines=defines,
                                        countable=False))
        if self.has_pgmq:
            subjects.append(self.writer('PGMQ send_batch', 'batch_enqueue_pgmq.sql', s['pm'],
                                        'peer', defines=defines))
        self.compare('batch', 'batch enqueue x%d' % b,
                     self.writer('INSERT ... unnest', 'batch_enqueue_raw.sql', s['raw'], 'baseline',
                                 defines=defines),
                     subjects, clients=self.cfg.batch_clients, target=('rate', 100000))
        subjects = [self.taker('q4pg_dequeue_many', 'batch_dequeue_q4pg.sql', s['q'], batch=b)]
        if self.has_pgmq:
            subjects.append(self.taker('PGMQ pop(%d)' % b, 'batch_dequeue_pgmq.sql', s['pm'], 'peer',
                                       batch=b))
        if self.has_pgq:
            subjects.append(self.pgq_consumer('PgQ consumer batch', b))
        self.compare('batch', 'batch dequeue x%d' % b,
                     self.taker('DELETE ... LIMIT %d' % b, 'batch_dequeue_raw.sql', s['raw'],
                                'baseline', batch=b),
                     subjects, clients=self.cfg.batch_clients)

    def section_listen(self):
        impls = [('psycopg2 LISTEN + q4pg_dequeue', pyclients.listen_psycopg2)]
        if self.client_problem:
            self.notes.append('Wake-up latency not measured for the q4pg client: q4pg.QueueManager '
                              'is not importable yet (%s); only the raw LISTEN baseline ran.'
                              % self.client_problem)
        else:
            impls.insert(0, ('QueueManager.listen()', pyclients.listen_q4pg))
        for c in self.cfg.listen_clients:
            got = {label: [] for label, _ in impls}
            lost = {label: 0 for label, _ in impls}
            for r in range(self.cfg.rounds):
                order = impls if r % 2 == 0 else impls[::-1]
                for label, target in order:
                    t = time.monotonic()
                    samples, missing = self.listen_run(target, c, self.cfg.listen_samples)
                    t = time.monotonic() - t
                    got[label] += samples
                    lost[label] += missing
                    log('  wake-up latency c=%-2d round %d/%d  %-32s p50 %.2f ms  p99 %.2f ms%s (%.0f s)'
                        % (c, r + 1, self.cfg.rounds, label, percentile(samples, 50) * 1e3,
                           percentile(samples, 99) * 1e3,
                           '  (%d lost)' % missing if missing else '', t))
            if getattr(self, 'stale_waiting', 0):
                self.notes.append('%d listener(s) left a row in q4pg_idle_listeners after exiting '
                                  '(%d listener(s) per run): until some listener registers again, '
                                  'every producer keeps paying for NOTIFY. The bench deletes them.'
                                  % (self.stale_waiting, c))
                self.stale_waiting = 0
            for label, _ in impls:
                v = got[label]
                row = dict(subject=label, listeners=c, samples=len(v), lost=lost[label],
                           p50=percentile(v, 50), p90=percentile(v, 90), p99=percentile(v, 99),
                           max=max(v) if v else None,
                           kind='baseline' if label.startswith('psycopg2') else 'q4pg')
                if row['kind'] == 'q4pg':
                    row['pass'] = row['p99'] is not None and row['p99'] < 0.010 and not lost[label]
                self.latency.append(row)

    def listen_run(self, target, listeners, samples):
        """Listeners idle on the queue; one message at a time, committed after a
        random pause; latency = the producer sending COMMIT -> a listener holding
        the message (the dequeue returned it)."""
        ctx = multiprocessing.get_context('spawn')
        out = ctx.Queue()
        self.stores['q'].reset()
        procs = [ctx.Process(target=target, args=(self.dsn, out, 60.0), daemon=True)
                 for _ in range(listeners)]
        for p in procs:
            p.start()
        ready = 0
        while ready < listeners:
            if out.get(timeout=60)[0] == 'ready':
                ready += 1
        time.sleep(0.5)
        conn = psycopg2.connect(self.dsn)
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
        self.forget_listeners()
        return latencies, missing

    def forget_listeners(self):
        """Where q4pg keeps a registry of waiting listeners (q4pg_idle_listeners), clears
        what the exited listeners left in it, so later measurements run with no
        listener registered; notes how many rows were left behind."""
        if not self.query("SELECT to_regclass('q4pg_idle_listeners') IS NOT NULL")[0][0]:
            return
        time.sleep(0.2)
        left = self.query('SELECT count(*) FROM q4pg_idle_listeners AS w WHERE NOT EXISTS '
                          '(SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid)')[0][0]
        if left:
            self.stale_waiting = getattr(self, 'stale_waiting', 0) + left
        self.execute('DELETE FROM q4pg_idle_listeners')

    def section_soak(self):
        """The churn soak on the q4pg queue and on raw: first with autovacuum_naptime
        1s, what the README asks of a cluster that carries busy queues (the queue
        table's own settings then vacuum it every 5,000 messages); then, as a
        diagnostic, with PostgreSQL's default of 1 min, which a million messages
        outrun here (no VACUUM runs in time, on the queue or on raw)."""
        for naptime in self.cfg.soak_naptimes:
            if naptime:
                self.execute("ALTER SYSTEM SET autovacuum_naptime = '%ds'" % naptime)
                self.execute('SELECT pg_reload_conf()')
                time.sleep(0.5)
            try:
                for kind in ('q4pg', 'raw'):
                    result = self.soak_run(kind)
                    result['naptime'] = self.query('SHOW autovacuum_naptime')[0][0]
                    # the target is the recommended setting; the default is a diagnostic
                    result['pass'] = result['pass'] if naptime == SOAK_NAPTIME else None
                    self.soak.append(result)
            finally:
                if naptime:
                    self.execute('ALTER SYSTEM RESET autovacuum_naptime')
                    self.execute('SELECT pg_reload_conf()')

    def soak_run(self, kind):
        cfg = self.cfg
        table = 'q' if kind == 'q4pg' else 'raw'
        store = self.stores[table]
        store.reset()
        ctx = multiprocessing.get_context('spawn')
        produced, consumed = ctx.Value('q', 0), ctx.Value('q', 0)
        procs = [ctx.Process(target=pyclients.soak_producer,
                             args=(self.dsn, kind, cfg.soak_batch, cfg.soak_messages, produced,
                                   consumed, cfg.soak_backlog))
                 for _ in range(cfg.soak_producers)]
        procs += [ctx.Process(target=pyclients.soak_consumer,
                              args=(self.dsn, kind, cfg.soak_batch, cfg.soak_messages, consumed))
                  for _ in range(cfg.soak_consumers)]
        log('  soak %s: %d messages, batches of %d, %d producers, %d consumers, backlog <= %d'
            % (kind, cfg.soak_messages, cfg.soak_batch, cfg.soak_producers, cfg.soak_consumers,
               cfg.soak_backlog))
        t0 = time.monotonic()
        for p in procs:
            p.start()
        samples = []
        stats_sql = ('SELECT pg_total_relation_size(%s::regclass), n_live_tup, n_dead_tup, '
                     'autovacuum_count FROM pg_stat_user_tables WHERE relid = %s::regclass')
        next_log = 0
        while True:
            alive = any(p.is_alive() for p in procs)
            size, live, dead, autovacuums = self.query(stats_sql, (table, table))[0]
            samples.append(dict(t=time.monotonic() - t0, consumed=consumed.value, size=size,
                                live=live, dead=dead, autovacuums=autovacuums))
            if samples[-1]['t'] >= next_log:
                log('    t=%5.1fs consumed %8d  size %7.1f MB  dead %7d  autovacuums %d'
                    % (samples[-1]['t'], consumed.value, size / 2**20, dead, autovacuums))
                next_log += 10
            if not alive:
                break
            if samples[-1]['t'] > cfg.soak_timeout:
                for p in procs:
                    p.terminate()
                self.notes.append('soak %s stopped after %d s, before all messages went through'
                                  % (kind, cfg.soak_timeout))
                break
            time.sleep(cfg.soak_interval)
        for p in procs:
            p.join()
        total = samples[-1]['consumed']
        start = window_rate(samples, 0.02 * total, 0.12 * total)
        end = window_rate(samples, 0.85 * total, 0.95 * total)
        result = dict(kind=kind, messages=total, seconds=samples[-1]['t'],
                      rate=total / samples[-1]['t'], start_rate=start, end_rate=end,
                      end_over_start=end / start if start and end else None,
                      max_size=max(s['size'] for s in samples),
                      size_at_half=next(s['size'] for s in samples if s['consumed'] >= total / 2),
                      end_size=samples[-1]['size'], samples=samples,
                      batch=cfg.soak_batch, backlog=cfg.soak_backlog)
        result['pass'] = (result['end_over_start'] is not None and result['end_over_start'] >= 0.8
                          and result['end_size'] <= 1.25 * result['size_at_half'] + 2 * 2**20)
        log('  => soak %s: %.0f msg/s overall, start %.0f, end %.0f (x%.2f), max size %.1f MB'
            % (kind, result['rate'], start or 0, end or 0, result['end_over_start'] or 0,
               result['max_size'] / 2**20))
        return result

    def section_anatomy(self):
        """q4pg_enqueue / q4pg_dequeue taken apart (bench/anatomy/): each piece
        added to a plain INSERT / DELETE one at a time."""
        self.psql_file(os.path.join(BENCH, 'anatomy', 'setup.sql'))
        st = {name: table_store(self, name) for name in
              ('anatomy.q_silent', 'anatomy.q_trigger_bare', 'anatomy.q_trigger_rows',
               'anatomy.q_trigger', 'anatomy.q_notify', 'anatomy.q_gated')}
        st.update(self.stores)

        def enqueue_subjects(pgoptions=None):
            w = lambda label, script, table: self.writer(label, script, st[table], 'anatomy',
                                                         pgoptions=pgoptions)
            return [
                w('INSERT + CHECK (queue shape)', 'anatomy/insert_check.sql', 'anatomy.q_silent'),
                w('+ empty stmt trigger', 'anatomy/insert_trigger_bare.sql',
                  'anatomy.q_trigger_bare'),
                w('+ empty stmt trigger w/ transition table', 'anatomy/insert_trigger_rows.sql',
                  'anatomy.q_trigger_rows'),
                w('+ tag-loop trigger, no NOTIFY', 'anatomy/insert_trigger.sql', 'anatomy.q_trigger'),
                w('+ tag-loop trigger + NOTIFY (first 1.0)', 'anatomy/insert_notify.sql',
                  'anatomy.q_notify'),
                w('+ tag-loop trigger, lock-gated NOTIFY', 'anatomy/insert_gated.sql',
                  'anatomy.q_gated'),
                w('+ installed q4pg_notify (INSERT into q)', 'anatomy/insert_queue.sql', 'q'),
                w('plpgsql static INSERT', 'anatomy/call_static.sql', 'anatomy.q_silent'),
                w('plpgsql static INSERT, no SET', 'anatomy/call_static_unpinned.sql',
                  'anatomy.q_silent'),
                w('plpgsql dynamic INSERT', 'anatomy/call_dynamic.sql', 'anatomy.q_silent'),
                w('plpgsql prepared-once INSERT', 'anatomy/call_prepared.sql', 'anatomy.q_silent'),
                w('q4pg_enqueue, trigger disabled', 'anatomy/enqueue_silent.sql', 'anatomy.q_silent'),
                w('q4pg_enqueue', 'enqueue_q4pg.sql', 'q'),
            ]

        def dequeue_subjects(pgoptions=None):
            t = lambda label, script, table: self.taker(label, script, st[table], 'anatomy',
                                                        pgoptions=pgoptions)
            return [
                t('DELETE (queue shape)', 'anatomy/delete_check.sql', 'anatomy.q_silent'),
                t('plpgsql static DELETE', 'anatomy/delete_static.sql', 'anatomy.q_silent'),
                t('plpgsql dynamic DELETE', 'anatomy/delete_dynamic.sql', 'anatomy.q_silent'),
                t('plpgsql prepared-once DELETE', 'anatomy/delete_prepared.sql', 'anatomy.q_silent'),
                t('q4pg_dequeue, trigger disabled', 'anatomy/dequeue_silent.sql', 'anatomy.q_silent'),
                t('q4pg_dequeue', 'dequeue_q4pg.sql', 'q'),
            ]

        clients = self.cfg.anatomy_clients
        self.compare('anatomy', 'enqueue pieces',
                     self.writer('INSERT', 'enqueue_raw.sql', st['raw'], 'baseline'),
                     enqueue_subjects(), clients=clients)
        self.compare('anatomy', 'dequeue pieces',
                     self.taker('DELETE', 'dequeue_raw.sql', st['raw'], 'baseline'),
                     dequeue_subjects(), clients=clients)
        # CPU cost per call: one client, commits not waiting for the WAL flush.
        off = '-c synchronous_commit=off'
        cpu = []
        self.compare('anatomy-cpu', 'enqueue pieces, 1 client, no flush wait',
                     self.writer('INSERT', 'enqueue_raw.sql', st['raw'], 'baseline', pgoptions=off),
                     enqueue_subjects(off) + [
                         Subject('q4pg_queue_settings() alone', lambda c: self.pgbench(
                             'anatomy/settings.sql', c, seconds=self.cfg.seconds).tps, 'anatomy')],
                     clients=[1], table=cpu)
        self.compare('anatomy-cpu', 'dequeue pieces, 1 client, no flush wait',
                     self.taker('DELETE', 'dequeue_raw.sql', st['raw'], 'baseline', pgoptions=off),
                     dequeue_subjects(off), clients=[1], table=cpu)
        self.cpu = cpu

    # --- plumbing ---------------------------------------------------------------

    def start_pool(self):
        if self.pool is None:
            n = max(max(self.cfg.clients), max(self.cfg.batch_clients))
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=n, mp_context=multiprocessing.get_context('spawn'))
            list(self.pool.map(pyclients.warm_up, range(n)))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
        self.admin.close()

    def machine(self):
        meminfo = open('/proc/meminfo').read()
        mem_kb = int(re.search(r'MemTotal:\s+(\d+)', meminfo).group(1))
        cpu = re.search(r'model name\s*:\s*(.*)', open('/proc/cpuinfo').read())
        settings = self.query(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN ("
            "'fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers', "
            "'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'max_connections', 'wal_level') "
            "ORDER BY name")
        script = self.query("SELECT setting FROM pg_config() WHERE name = 'SHAREDIR'")[0][0]
        script = os.path.join(script, 'extension', 'q4pg--1.0.sql')
        installed = (hashlib.sha1(open(script, 'rb').read()).hexdigest()[:12]
                     if os.path.exists(script) else '?')
        commit = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', '--no-optional-locks', '-C', ROOT, 'status', '--porcelain',
                                '--', 'sql', 'q4pg'], capture_output=True, text=True).stdout.strip()
        return dict(
            date=datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
            host=platform.node(), nproc=os.cpu_count(), cpu=cpu.group(1) if cpu else '?',
            memory='%.1f GiB' % (mem_kb / 2**20), kernel=platform.release(),
            postgres=self.query('SELECT version()')[0][0],
            settings=['%s=%s%s' % (n, s, u or '') for n, s, u in settings],
            python=platform.python_version(), psycopg2=psycopg2.__version__.split()[0],
            commit=commit + (' (sql/ or q4pg/ modified)' if dirty else ''),
            installed='q4pg--1.0.sql sha1 %s%s' % (installed, ', features: ' + ', '.join(
                f for f in ('q4pg_register_idle',) if self.query(
                    'SELECT to_regproc(%s) IS NOT NULL', (f,))[0][0]) if installed else ''),
            peers=getattr(self, 'peer_versions', {}),
            client=self.client_problem and 'q4pg client not importable: ' + self.client_problem
            or 'q4pg client importable')


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def window_rate(samples, first, last):
    """Messages per second between the samples where `consumed` passes first and last."""
    a = next((s for s in samples if s['consumed'] >= first), None)
    b = next((s for s in samples if s['consumed'] >= last), None)
    if a is None or b is None or b['t'] <= a['t']:
        return None
    return (b['consumed'] - a['consumed']) / (b['t'] - a['t'])


# --- command line ---------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        description='q4pg against plain SQL and its peers, on a throwaway cluster.',
        epilog='Sections: %s (default: all but anatomy). Results go to bench/results/.'
               % ', '.join(SECTIONS))
    parser.add_argument('--quick', action='store_true',
                        help='a 2-3 minute smoke run: 1 round, 1 s runs, a small soak')
    parser.add_argument('--only', metavar='SECTION[,SECTION]',
                        help='run only these sections')
    parser.add_argument('--soak', action='store_true', help='add the churn soak (when not default)')
    parser.add_argument('--anatomy', action='store_true',
                        help='add the q4pg_enqueue/q4pg_dequeue piece-by-piece section')
    parser.add_argument('--no-peers', action='store_true', help='leave PgQ and PGMQ out')
    parser.add_argument('--rounds', type=int, help='rounds per measurement (default 3; quick 1)')
    parser.add_argument('--seconds', type=float, help='seconds per pgbench run (default 3; quick 1)')
    parser.add_argument('--clients', help='client counts (default 1,4,16)')
    parser.add_argument('--soak-messages', type=int, help='messages through the soak (default 1e6)')
    parser.add_argument('--out', default=os.path.join(BENCH, 'results'),
                        help='where results.md, results.json and chart.png go')
    args = parser.parse_args(argv)

    if args.only:
        args.sections = [s.strip() for s in args.only.split(',') if s.strip()]
        bad = [s for s in args.sections if s not in SECTIONS]
        if bad:
            parser.error('unknown section(s) %s; choose from %s' % (', '.join(bad), ', '.join(SECTIONS)))
    else:
        args.sections = list(DEFAULT_SECTIONS)
        if args.quick and 'soak' in args.sections and not args.soak:
            args.sections.remove('soak')
        for flag in ('soak', 'anatomy'):
            if getattr(args, flag) and flag not in args.sections:
                args.sections.append(flag)
    args.sections = [s for s in SECTIONS if s in args.sections]

    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.seconds = args.seconds or (1 if quick else 3)
    args.py_seconds = 1 if quick else 2
    args.clients = [int(c) for c in (args.clients or '1,4,16').split(',')]
    args.batch = 1000
    args.batch_clients = args.clients
    args.batch_messages = 50000 if quick else 200000
    args.listen_clients = args.clients
    args.listen_samples = 15 if quick else 200  # per round: p99 of 600 samples, not the 2nd worst of 180
    args.anatomy_clients = [1, 16] if 16 in args.clients else args.clients[:1] + args.clients[-1:]
    args.soak_messages = args.soak_messages or (100000 if quick else 1000000)
    args.soak_batch = 100
    args.soak_producers = args.soak_consumers = 2
    args.soak_backlog = min(20000, args.soak_messages // 50)
    args.soak_interval = 0.5
    args.soak_naptimes = [SOAK_NAPTIME] if quick else [SOAK_NAPTIME, None]
    args.soak_timeout = 600
    return args


def main(argv=None):
    cfg = parse_args(argv)
    pgbench = os.path.join(PG_BINDIR, 'pgbench')
    if not os.path.exists(pgbench):
        sys.exit('bench: %s not found (Debian: apt-get install postgresql-client-15)' % pgbench)
    os.makedirs(cfg.out, exist_ok=True)
    log('bench: sections %s; %d round(s), %g s per pgbench run, clients %s'
        % (', '.join(cfg.sections), cfg.rounds, cfg.seconds, ','.join(map(str, cfg.clients))))
    started = time.monotonic()
    with Cluster(postgres_args=POSTGRES_ARGS) as pg:
        log('bench: PostgreSQL at %(PGHOST)s:%(PGPORT)s (throwaway cluster)' % pg.env())
        bench = Bench(pg, cfg)
        try:
            available = bench.query("SELECT count(*) FROM pg_available_extensions WHERE name = 'q4pg'")
            if not available[0][0]:
                sys.exit('bench: the q4pg extension is not installed in this server; '
                         'run `make install` (or `make bench`, which does it)')
            bench.setup()
            machine = bench.machine()
            for section in cfg.sections:
                log('\n== %s' % section)
                t = time.monotonic()
                try:
                    getattr(bench, 'section_' + section)()
                except Exception as e:
                    traceback.print_exc()
                    bench.notes.append('section %s failed: %s: %s'
                                       % (section, type(e).__name__, str(e).strip()[:500]))
                log('   (%s took %.0f s)' % (section, time.monotonic() - t))
        finally:
            bench.close()
    results = dict(machine=machine, config=dict(
        sections=cfg.sections, rounds=cfg.rounds, seconds=cfg.seconds, py_seconds=cfg.py_seconds,
        clients=cfg.clients, batch=cfg.batch, batch_messages=cfg.batch_messages,
        listen_samples=cfg.listen_samples, soak_messages=cfg.soak_messages,
        soak_batch=cfg.soak_batch, postgres_args=POSTGRES_ARGS, quick=cfg.quick),
        rows=bench.rows, latency=bench.latency, soak=bench.soak, cpu=bench.cpu,
        notes=bench.notes, elapsed=time.monotonic() - started)
    with open(os.path.join(cfg.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, default=str)
    markdown = report.markdown(results)
    with open(os.path.join(cfg.out, 'results.md'), 'w') as f:
        f.write(markdown)
    report.chart(results, os.path.join(cfg.out, 'chart.png'))
    log('\n' + markdown)
    log('bench: wrote %s (results.md, results.json, chart.png) in %.0f s'
        % (cfg.out, time.monotonic() - started))


__doc__ = __doc__ % {'sections': ', '.join(SECTIONS)}

if __name__ == '__main__':
    main()
