"""Helpers shared by the reliability tests: worker processes, their logs, waiting.

Worker processes run tests/reliability/worker.py; each writes one JSON line per
event to its own log file (one write(2) per line, so a SIGKILL never leaves
half a line), which the test reads back to account for every message.
"""

import json
import os
import signal
import subprocess
import sys
import time

from tests.helpers import LISTEN_CONNECTION, query

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, 'worker.py')


def read_log(path):
    """The events a worker logged, in order (a missing log is an empty one)."""
    try:
        with open(path, encoding='utf-8') as f:
            return [json.loads(line) for line in f if line.endswith('\n')]
    except FileNotFoundError:
        return []


class Worker:
    """One worker process and its log."""

    def __init__(self, name, args, log, env=None):
        self.name = name
        self.log = log
        with open(log + '.stderr', 'w') as stderr:
            self.proc = subprocess.Popen([sys.executable, WORKER] + args + ['--log', log],
                                         env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                         stderr=stderr)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def events(self):
        return read_log(self.log)

    def stderr(self):
        with open(self.log + '.stderr', encoding='utf-8', errors='replace') as f:
            return f.read()

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.proc.pid, sig)
        self.proc.wait()

    def stacks(self):
        """The worker's Python stacks now (faulthandler, on SIGUSR1), for a failure message."""
        if not self.alive():
            return '(worker %s has exited: %s)' % (self.name, self.proc.returncode)
        mark = len(self.stderr())
        os.kill(self.proc.pid, signal.SIGUSR1)
        time.sleep(0.5)
        return self.stderr()[mark:]

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError('worker %s still running after %s s; stderr:\n%s'
                                 % (self.name, timeout, self.stderr()))


class WorkerPool:
    """The workers a test started; kill_all() cleans up after it."""

    def __init__(self):
        self.workers = []
        self.env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
                        PYTHONUNBUFFERED='1')

    def start(self, name, mode, logdir, **options):
        args = [mode]
        for key, value in options.items():
            if value is None or value is False:
                continue
            args.append('--' + key.replace('_', '-'))
            if value is not True:
                args.append(str(value))
        w = Worker(name, args, os.path.join(logdir, name + '.log'), env=self.env)
        self.workers.append(w)
        return w

    def kill_all(self):
        for w in self.workers:
            try:
                w.kill()
            except Exception:
                pass

    def all_events(self):
        """(worker, event) for every event of every worker."""
        return [(w, e) for w in self.workers for e in w.events()]


def fingerprint(conn, exclude_schemas=()):
    """A digest of everything in the database a q4pg call must not change.

    Covers the catalogs (relations, columns, constraints, triggers, functions,
    schemas, roles, extensions, privileges, comments) and the contents of every
    ordinary table, except what lives in exclude_schemas (where a test lets q4pg
    work: its queues and their generated functions) and in temporary schemas.  Returns (catalog lines, [(table, (rows, digest))]); compare two with
    assert_unchanged() to see what changed.
    """
    skip = list(exclude_schemas) or ['']
    with conn.cursor() as cur:
        cur.execute("""
            WITH rel AS (
              SELECT c.oid, n.nspname, c.relname, c.relkind, c.relowner, c.relacl
                FROM pg_catalog.pg_class AS c
                JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
               WHERE n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg_temp%%'
                 AND n.nspname NOT LIKE 'pg_toast_temp%%' AND n.nspname <> ALL (%(skip)s))
            SELECT pg_catalog.string_agg(x, E'\\n' ORDER BY x) FROM (
              SELECT pg_catalog.format('class %%s %%s %%s %%s %%s %%s', oid, nspname, relname,
                                       relkind, relowner, relacl) FROM rel
              UNION ALL
              SELECT pg_catalog.format('att %%s %%s %%s %%s %%s', attrelid, attname, atttypid,
                                       attnotnull, attacl)
                FROM pg_catalog.pg_attribute WHERE attrelid IN (SELECT oid FROM rel)
              UNION ALL
              SELECT pg_catalog.format('con %%s %%s %%s', conrelid, conname,
                                       pg_catalog.pg_get_constraintdef(oid))
                FROM pg_catalog.pg_constraint WHERE conrelid IN (SELECT oid FROM rel)
              UNION ALL
              SELECT pg_catalog.format('trg %%s %%s %%s %%s', tgrelid, tgname, tgfoid, tgenabled)
                FROM pg_catalog.pg_trigger WHERE tgrelid IN (SELECT oid FROM rel)
              UNION ALL
              SELECT pg_catalog.format('proc %%s %%s %%s %%s %%s %%s', oid, proname, pronamespace,
                                       pg_catalog.md5(prosrc), proconfig, proacl)
                FROM pg_catalog.pg_proc
               WHERE oid >= 16384                            -- anything made after initdb
                 AND pronamespace NOT IN (                   -- but a queue's generated functions
                     SELECT n.oid FROM pg_catalog.pg_namespace AS n
                      WHERE n.nspname = ANY (%(skip)s) OR n.nspname LIKE 'pg_temp%%')
              UNION ALL
              SELECT pg_catalog.format('opr %%s %%s', oid, oprname) FROM pg_catalog.pg_operator
               WHERE oid >= 16384
              UNION ALL
              SELECT pg_catalog.format('nsp %%s %%s %%s', oid, nspname, nspacl)
                FROM pg_catalog.pg_namespace
               WHERE nspname NOT LIKE 'pg_temp%%' AND nspname NOT LIKE 'pg_toast_temp%%'
              UNION ALL
              SELECT pg_catalog.format('role %%s %%s %%s', oid, rolname, rolsuper)
                FROM pg_catalog.pg_roles
              UNION ALL
              SELECT pg_catalog.format('ext %%s %%s', extname, extversion)
                FROM pg_catalog.pg_extension
              UNION ALL
              SELECT pg_catalog.format('desc %%s %%s', objoid, pg_catalog.md5(description))
                FROM pg_catalog.pg_description
               WHERE objoid >= 16384 AND objoid NOT IN (
                     SELECT c.oid FROM pg_catalog.pg_class AS c
                       JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                      WHERE n.nspname = ANY (%(skip)s))
              UNION ALL
              SELECT pg_catalog.format('db %%s %%s', datname, datacl) FROM pg_catalog.pg_database
               WHERE datname = pg_catalog.current_database()
            ) AS f(x)""", {'skip': skip})
        catalog = cur.fetchone()[0]
        catalog = tuple(catalog.split('\n'))
        cur.execute("""
            SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname)
              FROM pg_catalog.pg_class AS c
              JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname <> ALL (%(skip)s)
             ORDER BY 1""", {'skip': skip})
        tables = [r[0] for r in cur.fetchall()]
        contents = []
        for t in tables:
            cur.execute('SELECT pg_catalog.count(*), pg_catalog.md5(pg_catalog.string_agg('
                        'x::text, %%s ORDER BY x::text)) FROM %s AS x' % t, ('\n',))
            contents.append((t, cur.fetchone()))
    return catalog, contents


def assert_unchanged(before, after, what=''):
    """Fails, saying what changed, unless two fingerprints are the same."""
    if before == after:
        return
    gone = sorted(set(before[0]) - set(after[0]))
    new = sorted(set(after[0]) - set(before[0]))
    tables = sorted(set(before[1]) ^ set(after[1]))
    raise AssertionError('the database changed %s: catalog entries gone %s, new %s; '
                         'tables %s' % (what, gone[:5], new[:5], tables[:6]))


def listen_pids(dsn, application_name=None):
    """pids of the backends that are LISTEN connections of listeners (of one application)."""
    rows = query(dsn, 'SELECT pid FROM pg_stat_activity WHERE datname = current_database() '
                      'AND pid <> pg_backend_pid() AND ' + LISTEN_CONNECTION +
                      (' AND application_name = %s' if application_name else ''),
                 (application_name,) if application_name else None)
    return {r[0] for r in rows}


def quiet(dsn, application_name, seconds=0.5):
    """True when every backend of the application is idle (no transaction) and none
    has done anything for `seconds`: a listener in its long sleep."""
    rows = query(dsn, """
        SELECT count(*), bool_and(state = 'idle'),
               bool_and(state_change < now() - make_interval(secs => %s))
          FROM pg_stat_activity WHERE application_name = %s""", (seconds, application_name))
    count, idle, still = rows[0]
    return count > 0 and idle and still
