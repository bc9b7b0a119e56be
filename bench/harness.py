"""The measuring machinery: the bench cluster's settings, SQL and pgbench on it,
the tables messages sit in, and compare(), which runs a baseline and its
contenders round after round and keeps the median of the per-round ratios."""

import concurrent.futures
import multiprocessing
import os
import re
import statistics
import subprocess
import time

import psycopg2
from psycopg2 import sql

from bench.workers import loops

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PG_BINDIR = '/usr/lib/postgresql/15/bin'
MESSAGE = '{"n":1}'

# fsync and synchronous_commit stay at their durable defaults: no -F here.
# Large max_wal_size / checkpoint_timeout: no checkpoint starts in the middle
# of a measurement (each run begins with an explicit CHECKPOINT instead).
POSTGRES_ARGS = ('-h 127.0.0.1 -c logging_collector=off -c max_connections=200 '
                 '-c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min')
TICK = os.sysconf('SC_CLK_TCK')


def log(*args):
    print(*args, flush=True)


def median(values):
    return statistics.median(values) if values else None


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
    """The Store of a table of the queue's shape (a q4pg queue, raw, ...)."""
    return Store(bench, table,
                 truncate='TRUNCATE %s RESTART IDENTITY' % table,
                 prefill="INSERT INTO %s (tag, data) SELECT 't', '%s' FROM generate_series(1, %%s)"
                         % (table, MESSAGE),
                 count='SELECT count(*) FROM %s' % table,
                 vacuum=table)


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command name (fields[1]: the
    parent, [11] and [12]: user and system CPU, [13] and [14]: those of its
    children it waited for, in ticks), or None when the process is gone."""
    try:
        with open('/proc/%s/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None


def server_cpu(postmaster):
    """CPU seconds the cluster has used so far: the postmaster's own, its
    children's that have exited (it waits for each) and its live children's,
    taken while the postmaster waited for none of them (else a child that
    ended between the two looks would count twice or not at all)."""
    for _ in range(20):
        before = proc_stat(postmaster)
        live = 0
        for pid in os.listdir('/proc'):
            fields = proc_stat(pid) if pid.isdigit() else None
            if fields is not None and int(fields[1]) == postmaster:
                live += int(fields[11]) + int(fields[12])
        after = proc_stat(postmaster)
        if before[13:15] == after[13:15]:
            return (sum(int(f) for f in after[11:15]) + live) / TICK
    raise RuntimeError('the server\'s CPU time: its processes kept ending while it was read')


class Subject:
    """One contender of a measurement: run(clients) -> messages per second.
    A run may leave in `last` what the messages cost the server (pgbench
    subjects do): 'cpu_us' and 'wal_bytes' a message."""

    def __init__(self, label, run, kind='q4pg', clients=None, last=None):
        self.label, self.run, self.kind, self.clients = label, run, kind, clients
        self.last = {} if last is None else last


class PgbenchResult:
    """What a pgbench run did, and what the cluster spent meanwhile: server
    CPU seconds (autovacuum and the rest included) and WAL bytes."""

    def __init__(self, tps, processed, failed, cpu_seconds=None, wal_bytes=None):
        self.tps, self.processed, self.failed = tps, processed, failed
        self.cpu_seconds, self.wal_bytes = cpu_seconds, wal_bytes

    def per_message(self, moved, last):
        """Puts this run's server CPU (µs) and WAL (bytes) a message into `last`."""
        if moved:
            last.update(cpu_us=self.cpu_seconds / moved * 1e6, wal_bytes=self.wal_bytes / moved)


class Bench:
    """The bench cluster as the sections see it, and what they measure into: its
    main database, or `database` (see on_database())."""

    def __init__(self, pg, cfg, database=None):
        self.pg, self.cfg = pg, cfg
        self.database = database or pg.dsn()['database']
        self.env = dict(os.environ, **dict(pg.env(), PGDATABASE=self.database))
        self.dsn = pg.dsn_string(database=self.database)
        self.admin = psycopg2.connect(self.dsn)
        self.admin.autocommit = True
        self.rows, self.latency, self.soak, self.cpu, self.horizon = [], [], [], [], []
        self.notes = []
        self.prefill = {}           # label -> messages a taker needs so as not to run dry
        self.pool = None
        self.peer_versions = {}
        self.client_problem = loops.client_available()
        self.stores = {}
        self.others = []            # Benches on other databases (on_database), closed with this one
        self.postmaster = int(proc_stat(self.query('SELECT pg_backend_pid()')[0][0])[1])

    def on_database(self, name):
        """A Bench on database `name` of the same cluster (created, empty, when
        missing): where a contender runs that needs a database of its own (the
        versions section's q4pg 1.1).  Its SQL, psql, pgbench and stores work
        there; subjects made with it (bench.subjects) measure there, and compare()
        on this Bench puts them side by side with this database's.  Closed with
        this one."""
        if not self.query('SELECT 1 FROM pg_database WHERE datname = %s', (name,)):
            self.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
        other = Bench(self.pg, self.cfg, database=name)
        self.others.append(other)
        return other

    def setup(self):
        """The tables every section shares (bench/setup.sql)."""
        self.psql_file(os.path.join(BENCH, 'setup.sql'))
        self.stores = {name: table_store(self, name) for name in ('raw', 'q', 'raw_lease')}
        self.stores['raw_notify'] = Store(self, 'raw_notify', 'TRUNCATE raw_notify RESTART IDENTITY')

    # --- SQL on the admin connection, psql, pgbench -----------------------------

    def execute(self, sql, args=None):
        with self.admin.cursor() as cur:
            cur.execute(sql, args)

    def query(self, sql, args=None):
        with self.admin.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def psql_file(self, path, single_transaction=False):
        """Runs a SQL file with psql; raises RuntimeError with psql's errors when it fails."""
        proc = subprocess.run([os.path.join(PG_BINDIR, 'psql'), '-qX', '-v', 'ON_ERROR_STOP=1']
                              + (['-1'] if single_transaction else []) + ['-f', path],
                              env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError('psql -f %s failed: %s' % (path, proc.stderr.strip()))

    def pgbench(self, script, clients, seconds=None, transactions=None, defines=None,
                pgoptions=None):
        """Runs a pgbench script (a path below bench/) for `seconds` or `transactions`."""
        cmd = [os.path.join(PG_BINDIR, 'pgbench'), '-n', '-M', 'prepared',
               '-f', os.path.join(BENCH, script),
               '-c', str(clients), '-j', str(min(clients, os.cpu_count() or 1))]
        cmd += ['-T', str(seconds)] if seconds else ['-t', str(transactions)]
        for name, value in (defines or {}).items():
            cmd += ['-D', '%s=%s' % (name, value)]
        env = dict(self.env, PGOPTIONS=pgoptions) if pgoptions else self.env
        wal = self.query('SELECT pg_current_wal_insert_lsn()')[0][0]
        cpu = server_cpu(self.postmaster)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        for _ in range(100):        # (pgbench's backends end after it: their CPU counts)
            if not self.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgbench'"):
                break
            time.sleep(0.01)
        cpu = server_cpu(self.postmaster) - cpu
        wal = self.query('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)', (wal,))[0][0]
        out = proc.stdout + proc.stderr
        tps = re.search(r'^tps = ([\d.]+) \(without initial connection time\)', out, re.M)
        processed = re.search(r'^number of transactions actually processed: (\d+)', out, re.M)
        failed = re.search(r'^number of failed transactions: (\d+)', out, re.M)
        if proc.returncode != 0 or not tps or (failed and int(failed.group(1))):
            raise RuntimeError('pgbench %s -c %d failed:\n%s' % (script, clients, out[-2000:]))
        return PgbenchResult(float(tps.group(1)), int(processed.group(1)),
                             int(failed.group(1)) if failed else 0, cpu, float(wal))

    # --- one measurement: a baseline and its contenders, alternated -------------

    def compare(self, section, measurement, baseline, subjects, clients=None, unit='msg/s',
                target=None, rounds=None, table=None):
        """Runs baseline and subjects for each client count, `rounds` times, a
        different one first each round; appends a row per subject and client
        count to `table` (self.rows): median rates and the median of the
        per-round ratios subject / baseline, checked against `target`
        (('ratio', x) or ('rate', x)) for q4pg's own subjects."""
        clients = clients or self.cfg.clients
        rounds = rounds or self.cfg.rounds
        table = self.rows if table is None else table
        for c in clients:
            here = [s for s in subjects if s.clients is None or c in s.clients]
            if not here:
                continue
            everyone = [baseline] + here
            rates = {s.label: [] for s in everyone}
            costs = {s.label: [] for s in everyone}
            for r in range(rounds):
                k = r % len(everyone)
                for s in everyone[k:] + everyone[:k]:      # a different one goes first each round
                    s.last.clear()
                    rate = s.run(c)
                    rates[s.label].append(rate)
                    costs[s.label].append(dict(s.last))
                    log('  %-22s c=%-2d round %d/%d  %-34s %12.1f %s'
                        % (measurement, c, r + 1, rounds, s.label, rate, unit))
            for s in here:
                ratios = [a / b for a, b in zip(rates[s.label], rates[baseline.label])]
                row = dict(section=section, measurement=measurement, subject=s.label,
                           baseline=baseline.label, clients=c, unit=unit, kind=s.kind,
                           rate=median(rates[s.label]), baseline_rate=median(rates[baseline.label]),
                           ratio=median(ratios), rates=rates[s.label],
                           baseline_rates=rates[baseline.label], ratios=ratios, target=None)
                row.update(_cost_ratios(costs[s.label], costs[baseline.label]))
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

    # --- Python worker processes --------------------------------------------------

    def start_pool(self):
        """One worker process per client of the largest count (started and warm)."""
        if self.pool is None:
            n = max(max(self.cfg.clients), max(self.cfg.batch_clients))
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=n, mp_context=multiprocessing.get_context('spawn'))
            list(self.pool.map(loops.warm_up, range(n)))

    def close(self):
        for other in self.others:
            other.close()
        if self.pool is not None:
            self.pool.shutdown()
        self.admin.close()


def _cost_ratios(costs, baseline_costs):
    """What the server spent a message, per round, for a subject and its baseline,
    and the median of the per-round ratios (cpu_ratio, wal_ratio); {} when the
    subject does not say."""
    out = {}
    for what in ('cpu_us', 'wal_bytes'):
        mine = [c.get(what) for c in costs]
        theirs = [c.get(what) for c in baseline_costs]
        if None in mine or None in theirs or not all(theirs):
            continue
        out[what] = mine
        out['baseline_' + what] = theirs
        out[what.split('_')[0] + '_ratio'] = median([a / b for a, b in zip(mine, theirs)])
    return out
