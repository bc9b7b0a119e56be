"""Monitoring from the command line: `q4pg metrics` and `q4pg top`.

Both read the same snapshot, in one statement (one round trip, one view of
the database): q4pg_metrics() per queue (and per tag on request),
q4pg_horizon() and q4pg_warnings() (sql/src/75_metrics.sql).  `q4pg metrics`
writes it as Prometheus's text exposition (q4pg/exposition.py, with the
optional prometheus_client: pip install 'q4pg[metrics]'); `q4pg top` shows
it live in the terminal (q4pg/top.py, with the optional rich: pip install
'q4pg[top]').  cli.py registers the commands with add_commands().
"""

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import db
from .errors import Q4pgError

# The snapshot, as one JSON document: intervals and timestamps in seconds.
SNAPSHOT = """
SELECT json_build_object(
    'at', extract(epoch FROM clock_timestamp()),
    'queues', (SELECT coalesce(json_agg(json_build_object(
        'queue', m.queue::text, 'tag', m.tag, 'due', m.due, 'scheduled', m.scheduled,
        'leased', m.leased, 'dead', m.dead, 'expired', m.expired,
        'oldest_due_age', extract(epoch FROM m.oldest_due_age),
        'tag_count', m.tag_count, 'inserted_total', m.inserted_total,
        'deleted_total', m.deleted_total, 'updated_total', m.updated_total,
        'idle_listeners', m.idle_listeners, 'consumers', m.consumers,
        'total_bytes', m.total_bytes, 'live_rows', m.live_rows, 'dead_rows', m.dead_rows,
        'last_autovacuum', extract(epoch FROM m.last_autovacuum),
        'autovacuum_count', m.autovacuum_count)), '[]')
        FROM q4pg_metrics(%s, %s) AS m),
    'horizon', (SELECT coalesce(json_agg(json_build_object(
        'holder', h.holder, 'pid', h.pid, 'name', h.name, 'state', h.state,
        'xmin_age', h.xmin_age, 'age', extract(epoch FROM h.age), 'detail', h.detail)), '[]')
        FROM q4pg_horizon() AS h),
    'warnings', (SELECT coalesce(json_agg(json_build_object(
        'warning', w.warning, 'queue', w.queue::text, 'pid', w.pid, 'name', w.name,
        'state', w.state, 'age', extract(epoch FROM w.age), 'xmin_age', w.xmin_age,
        'detail', w.detail)), '[]')
        FROM q4pg_warnings(%s * interval '1 second', %s, %s) AS w))::text
"""

DEFAULT_OLDER_THAN = 60.0        # seconds: a transaction older than this is warned about
DEFAULT_COUNT_EVERY = 15.0       # seconds: messages are counted (a scan) at most this often
DEFAULT_XIDS = 100000000         # a replication slot's xmin older than this is warned about
DEFAULT_EXPIRED_LEASES = 1       # a queue with this many leases run out unacked is warned about


class MissingPackage(Q4pgError):
    """An optional package a command needs is not installed."""


COUNTS = ('due', 'scheduled', 'leased', 'dead', 'expired', 'oldest_due_age', 'tag_count')
# the warnings that come of counting the messages (a scan): read with the counts
COUNTED_WARNINGS = ('leases_expired',)


class Snapshot:
    """What the database said at one moment: `at` (its clock, epoch seconds),
    `queues` (the per-queue rows of q4pg_metrics), `tags` (its per-tag rows),
    `horizon` (q4pg_horizon's rows) and `warnings` (q4pg_warnings'), each row
    a dict by column name (intervals and timestamps in seconds).  The message
    counts (COUNTS, the tags and the COUNTED_WARNINGS) were read at
    `counted_at`, maybe earlier."""

    def __init__(self, doc: Dict[str, Any]) -> None:
        self.at: float = float(doc['at'])
        self.counted_at: float = self.at
        rows = doc['queues']
        self.queues: List[Dict[str, Any]] = [r for r in rows if r['tag'] is None]
        self.tags: List[Dict[str, Any]] = [r for r in rows if r['tag'] is not None]
        self.horizon: List[Dict[str, Any]] = doc['horizon']
        self.warnings: List[Dict[str, Any]] = doc['warnings']

    def counts_from(self, counted: 'Snapshot') -> bool:
        """Takes the message counts of an earlier snapshot; False (nothing
        taken) when a queue here was not counted there."""
        before = {r['queue']: r for r in counted.queues}
        if any(r['queue'] not in before for r in self.queues):
            return False
        for row in self.queues:
            row.update((key, before[row['queue']][key]) for key in COUNTS)
        self.tags = counted.tags
        self.warnings = ([w for w in self.warnings if w['warning'] not in COUNTED_WARNINGS]
                         + [w for w in counted.warnings if w['warning'] in COUNTED_WARNINGS])
        self.counted_at = counted.counted_at
        return True


class Reader:
    """Reads snapshots of one database through a one-connection pool (which
    finds q4pg's schema, and reconnects after the database came back).  The
    messages are counted (a scan of each queue) at most every `count_every`
    seconds; the snapshots between take the last counts."""

    def __init__(self, dsn: str, tags: int = 0, older_than: float = DEFAULT_OLDER_THAN,
                 xids: int = DEFAULT_XIDS, count_every: float = 0.0,
                 expired_leases: int = DEFAULT_EXPIRED_LEASES) -> None:
        self._db = db.Database(dsn, 1)
        self._args = (tags, older_than, xids, expired_leases)
        self._count_every = count_every
        self._counted: Optional[Snapshot] = None
        self._counted_mono = 0.0
        self._lock = threading.Lock()      # the HTTP server may scrape from two threads

    def _read(self, counts: bool) -> Snapshot:
        tags, older_than, xids, expired_leases = self._args
        text = self._db.run(SNAPSHOT, (tags, counts, older_than, xids,
                                       expired_leases if counts else None))[0][0]
        return Snapshot(json.loads(text))

    def read(self) -> Snapshot:
        with self._lock:
            counted = self._counted
            if counted is not None and time.monotonic() - self._counted_mono < self._count_every:
                snapshot = self._read(counts=False)
                if snapshot.counts_from(counted):
                    return snapshot
            snapshot = self._read(counts=True)
            self._counted, self._counted_mono = snapshot, time.monotonic()
            return snapshot

    def close(self) -> None:
        self._db.close()


def rates(old: Optional[Snapshot], new: Snapshot) -> Dict[str, Tuple[float, float]]:
    """{queue: (inserted per second, deleted per second)} between two snapshots
    (the cumulative statistics; a queue new since, or a reset, counts nothing)."""
    result = {}
    if old is None or new.at <= old.at:
        return result
    before = {r['queue']: r for r in old.queues}
    for row in new.queues:
        prev = before.get(row['queue'])
        if prev is None:
            continue
        per = []
        for key in ('inserted_total', 'deleted_total'):
            delta = (row[key] or 0) - (prev[key] or 0)
            per.append(max(delta, 0) / (new.at - old.at))
        result[row['queue']] = (per[0], per[1])
    return result


def dead_growth(old: Optional[Snapshot], new: Snapshot) -> Dict[str, int]:
    """{queue: dead letters added} between two snapshots, for the queues whose
    dead letters grew."""
    if old is None:
        return {}
    before = {r['queue']: r['dead'] for r in old.queues}
    return {r['queue']: r['dead'] - before[r['queue']] for r in new.queues
            if r['queue'] in before and r['dead'] > before[r['queue']]}


# ------------------------------------------------------------ the commands

def _need(module: str, extra: str, command: str) -> Any:
    """Imports an optional module, or raises MissingPackage saying how to get it."""
    try:
        return __import__(module, fromlist=['_'])
    except ImportError:
        raise MissingPackage("q4pg: q4pg %s needs the package %s: pip install 'q4pg[%s]'"
                             % (command, module.split('.')[0], extra))


def _reader(args: argparse.Namespace, dsn: Callable[[argparse.Namespace], str]) -> Reader:
    return Reader(dsn(args), tags=args.tags, older_than=args.older_than, xids=args.xids,
                  count_every=args.count_every, expired_leases=args.expired_leases)


def cmd_metrics(args: argparse.Namespace, dsn: Callable[[argparse.Namespace], str]) -> int:
    _need('prometheus_client', 'metrics', 'metrics')
    from . import exposition
    reader = _reader(args, dsn)
    try:
        if args.listen is None:
            text = exposition.text(reader.read)
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
        host, port = args.listen
        server = exposition.serve(reader.read, host, port)
        print('serving http://%s:%d/metrics' % (
            '[%s]' % host if ':' in host else host, server.server_port), flush=True)
        _wait_for_signal()
        server.shutdown()
        return 0
    finally:
        reader.close()


def _wait_for_signal() -> None:
    """Blocks until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    while not stop.wait(1.0):
        pass


def cmd_top(args: argparse.Namespace, dsn: Callable[[argparse.Namespace], str]) -> int:
    _need('rich', 'top', 'top')
    from . import top
    reader = _reader(args, dsn)
    try:
        return top.run(reader.read, interval=args.interval, once=args.once)
    finally:
        reader.close()


def _host_port(text: str) -> Tuple[str, int]:
    """HOST:PORT (an IPv6 address in brackets: [::1]:9187) for --listen."""
    host, sep, port = text.rpartition(':')
    host = host[1:-1] if host.startswith('[') and host.endswith(']') else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError('%r is not HOST:PORT (127.0.0.1:9187, [::1]:9187)'
                                          % text)
    return host, int(port)


def _number(kind: Callable[[str], Any], what: str,
            positive: bool = False) -> Callable[[str], Any]:
    """An argparse type: a finite number of `kind`, 0 or more (above 0 when `positive`)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if not (value > 0 if positive else value >= 0) or value == float('inf'):
            raise argparse.ArgumentTypeError('%r is not %s' % (text, what))
        return value
    return parse


def _thresholds(sub: argparse.ArgumentParser) -> None:
    sub.add_argument('--tags', type=_number(int, 'a number of tags, 0 or more'), default=0,
                     metavar='N', help='also per tag, the N tags with the most messages of '
                     'each queue (default: 0, none)')
    sub.add_argument('--older-than', type=_number(float, 'a number of seconds, 0 or more'),
                     default=DEFAULT_OLDER_THAN, metavar='S',
                     help='warn about transactions open longer than S seconds (default: %g)'
                     % DEFAULT_OLDER_THAN)
    sub.add_argument('--xids', type=_number(int, 'a number of transactions, 0 or more'),
                     default=DEFAULT_XIDS, metavar='N',
                     help='warn about a replication slot holding an xmin older than N '
                     'transactions (default: %d)' % DEFAULT_XIDS)
    sub.add_argument('--expired-leases', type=_number(int, 'a number of messages above 0',
                                                      positive=True),
                     default=DEFAULT_EXPIRED_LEASES, metavar='N',
                     help='warn about a queue with N or more messages whose lease ran out '
                     'without an ack or a nack (counted with the messages; default: %d)'
                     % DEFAULT_EXPIRED_LEASES)
    sub.add_argument('--count-every', type=_number(float, 'a number of seconds, 0 or more'),
                     default=DEFAULT_COUNT_EVERY, metavar='S',
                     help='count the messages (a scan of each queue) at most every S seconds; '
                     'the rest is read anew each time (default: %g)' % DEFAULT_COUNT_EVERY)


def add_commands(command: Callable[..., argparse.ArgumentParser],
                 dsn: Callable[[argparse.Namespace], str]) -> None:
    """Adds metrics and top with cli.py's command(name, func, help, description)
    (dsn(args): the connection string of --dsn and $Q4PG_DSN)."""
    sub = command('metrics', lambda args: cmd_metrics(args, dsn),
                  "every queue's metrics for Prometheus (once, or served)",
                  'Print the metrics of every queue you may read, and the early warnings\n'
                  '(what holds back the xmin horizon, consumers holding a transaction open,\n'
                  'leases that ran out without an ack or a nack), in the text format of\n'
                  "Prometheus: for node_exporter's textfile collector, or cron.  --listen\n"
                  'HOST:PORT serves them at http://HOST:PORT/metrics instead, read anew at\n'
                  'each scrape (the message counts, and the warnings that need them, at most\n'
                  'every --count-every seconds), until SIGINT or SIGTERM.  Needs\n'
                  "prometheus_client (pip install 'q4pg[metrics]').  More: docs/monitoring.md.")
    sub.add_argument('--listen', type=_host_port, metavar='HOST:PORT',
                     help='serve the metrics over HTTP (127.0.0.1:9187)')
    _thresholds(sub)
    sub = command('top', lambda args: cmd_top(args, dsn),
                  'a live view of the queues, consumers and warnings',
                  'A live view, refreshed every --interval seconds: per queue the messages\n'
                  'due, scheduled, leased and dead, those whose lease expired unacked, the\n'
                  'oldest due age, rows inserted and deleted per second, listeners and\n'
                  'consumers; what holds back the xmin horizon; the warnings, and dead\n'
                  'letters growing.  q or Ctrl-C quits.  --once prints one snapshot and\n'
                  "exits.  Needs rich (pip install 'q4pg[top]').")
    sub.add_argument('--interval', type=_number(float, 'a number of seconds above 0', positive=True),
                     default=2.0, metavar='S', help='seconds between refreshes (default: 2)')
    sub.add_argument('--once', action='store_true', help='print one snapshot and exit')
    _thresholds(sub)
