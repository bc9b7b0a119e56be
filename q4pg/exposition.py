"""q4pg's metrics for Prometheus, with prometheus_client (an optional package:
pip install 'q4pg[metrics]'; q4pg/monitor.py imports this module only then).

A collector turns each snapshot (monitor.Snapshot, read anew at every
scrape) into metric families.  Names follow Prometheus's conventions: the
q4pg_ prefix, base units (_seconds, _bytes), _total on counters (which
prometheus_client appends to a counter family's name).  The reference table
is docs/monitoring.md; tests/monitor checks that every name there, and every
name the Grafana dashboard queries, is exposed.
"""

import logging
import time
from typing import Any, Callable, Iterator, List

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .monitor import Snapshot

log = logging.getLogger('q4pg')

STATES = ('due', 'scheduled', 'leased', 'dead')
# (name, column of q4pg_metrics, help): per queue, label queue
QUEUE_GAUGES = [
    ('q4pg_leases_expired', 'expired',
     'Messages whose lease ran out without an ack or a nack (a consumer died or was too '
     'slow): due again, or dead letters after the last allowed attempt; also counted in '
     'q4pg_messages.'),
    ('q4pg_oldest_due_age_seconds', 'oldest_due_age',
     'How long the oldest due message has been due (0: none is due).'),
    ('q4pg_tags', 'tag_count', 'Tags that have messages.'),
    ('q4pg_idle_listeners', 'idle_listeners',
     'Listeners of living sessions registered as idle, waiting for a NOTIFY.'),
    ('q4pg_consumers', 'consumers', 'Open transactions that ran a dequeue on the queue.'),
    ('q4pg_table_size_bytes', 'total_bytes',
     "The queue's storage, with its indexes and TOAST."),
    ('q4pg_table_live_rows', 'live_rows', "Live rows, as the table's statistics estimate them."),
    ('q4pg_table_dead_rows', 'dead_rows',
     'Dead rows not yet vacuumed, as the statistics estimate them.'),
    ('q4pg_last_autovacuum_timestamp_seconds', 'last_autovacuum',
     "When autovacuum last ran on the queue's storage (absent: not since the statistics "
     'were reset).'),
]
QUEUE_COUNTERS = [
    ('q4pg_rows_inserted', 'inserted_total',
     'Rows inserted: messages enqueued, and given back by q4pg_fail (rolled back ones too).'),
    ('q4pg_rows_deleted', 'deleted_total',
     'Rows deleted: messages dequeued, acknowledged, cancelled, purged (rolled back ones too).'),
    ('q4pg_rows_updated', 'updated_total',
     'Rows updated: leases, nacks, extends, retries, replays (rolled back ones too).'),
    ('q4pg_autovacuums', 'autovacuum_count', "Autovacuum runs on the queue's storage."),
]
HOLDERS = ('backend', 'replication_slot', 'prepared_transaction')
WARNINGS = ('horizon', 'horizon_not_visible', 'consumer_held', 'leases_expired')


class Collector:
    """prometheus_client's custom collector over `read` (-> monitor.Snapshot)."""

    def __init__(self, read: Callable[[], Snapshot], serving: bool) -> None:
        self._read = read
        self._serving = serving     # a failed read is q4pg_up 0, else it raises

    def describe(self) -> List[Any]:
        return []          # registering must not read the database

    def collect(self) -> Iterator[Any]:
        started = time.monotonic()
        up = GaugeMetricFamily('q4pg_up', 'Whether the last scrape read the database (1) '
                               'or failed (0).')
        try:
            snapshot = self._read()
        except Exception as e:          # an exporter keeps serving while the database is away
            if not self._serving:
                raise
            log.warning('q4pg: scrape failed: %s', e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _queues(snapshot)
        yield from _tags(snapshot)
        yield from _horizon(snapshot)
        warnings = GaugeMetricFamily('q4pg_warnings', 'Warnings of q4pg_warnings() now, by '
                                     'kind (thresholds: --older-than, --xids, '
                                     '--expired-leases).', labels=['warning'])
        for kind in WARNINGS:
            warnings.add_metric([kind], sum(w['warning'] == kind for w in snapshot.warnings))
        yield warnings
        counted = GaugeMetricFamily('q4pg_messages_counted_age_seconds', 'How old the '
                                    'message counts are (counted at most every --count-every '
                                    'seconds; the rest is read at each scrape).')
        counted.add_metric([], snapshot.at - snapshot.counted_at)
        yield counted
        duration = GaugeMetricFamily('q4pg_scrape_duration_seconds',
                                     'How long reading the metrics took.')
        duration.add_metric([], time.monotonic() - started)
        yield duration


def _queues(snapshot: Snapshot) -> Iterator[Any]:
    messages = GaugeMetricFamily('q4pg_messages', 'Messages by state: due (run_at passed), '
                                 'scheduled, leased, dead (dead letters).',
                                 labels=['queue', 'state'])
    for row in snapshot.queues:
        for state in STATES:
            messages.add_metric([row['queue'], state], row[state])
    yield messages
    for name, column, help_text in QUEUE_GAUGES:
        family = GaugeMetricFamily(name, help_text, labels=['queue'])
        for row in snapshot.queues:
            value = row[column]
            if column == 'oldest_due_age' and value is None:
                value = 0
            if value is not None:
                family.add_metric([row['queue']], value)
        yield family
    for name, column, help_text in QUEUE_COUNTERS:
        family = CounterMetricFamily(name, help_text, labels=['queue'])
        for row in snapshot.queues:
            if row[column] is not None:
                family.add_metric([row['queue']], row[column])
        yield family


def _tags(snapshot: Snapshot) -> Iterator[Any]:
    """Per tag, only for the tags q4pg_metrics(tags) returned (--tags N)."""
    messages = GaugeMetricFamily('q4pg_tag_messages', 'Messages of a tag by state (the --tags '
                                 'tags with the most messages of each queue).',
                                 labels=['queue', 'tag', 'state'])
    age = GaugeMetricFamily('q4pg_tag_oldest_due_age_seconds', 'How long the oldest due '
                            'message of a tag has been due (0: none is due).',
                            labels=['queue', 'tag'])
    for row in snapshot.tags:
        for state in STATES:
            messages.add_metric([row['queue'], row['tag'], state], row[state])
        age.add_metric([row['queue'], row['tag']], row['oldest_due_age'] or 0)
    yield messages
    yield age


def _horizon(snapshot: Snapshot) -> Iterator[Any]:
    xids = GaugeMetricFamily('q4pg_xmin_horizon_age_xids', 'Age, in transactions, of the '
                             'oldest xmin each kind of holder keeps (0: none).',
                             labels=['holder'])
    seconds = GaugeMetricFamily('q4pg_xmin_horizon_age_seconds', 'Age of the oldest '
                                'transaction holding the xmin horizon, by kind of holder (0: '
                                'none, or none visible).', labels=['holder'])
    for holder in HOLDERS:
        rows = [h for h in snapshot.horizon if h['holder'] == holder]
        xids.add_metric([holder], max([h['xmin_age'] or 0 for h in rows], default=0))
        if holder != 'replication_slot':
            seconds.add_metric([holder], max([h['age'] or 0 for h in rows], default=0))
    yield xids
    yield seconds
    info = GaugeMetricFamily('q4pg_xmin_horizon_oldest_info', 'The oldest holder of the xmin '
                             'horizon (absent: none): its kind, pid, name and state.',
                             labels=['holder', 'pid', 'name', 'state'])
    if snapshot.horizon:
        h = snapshot.horizon[0]
        info.add_metric([h['holder'], '' if h['pid'] is None else str(h['pid']),
                         h['name'] or '', h['state'] or ''], 1)
    yield info


def registry(read: Callable[[], Snapshot], serving: bool) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Collector(read, serving))
    return reg


def text(read: Callable[[], Snapshot]) -> str:
    """The text exposition of one snapshot (a failed read raises)."""
    return generate_latest(registry(read, serving=False)).decode('utf-8')


def serve(read: Callable[[], Snapshot], host: str, port: int) -> Any:
    """Serves /metrics on host:port (0: a free port) in a thread; returns the
    server (its server_port; shutdown() stops it)."""
    server, _ = start_http_server(port, addr=host, registry=registry(read, serving=True))
    return server
