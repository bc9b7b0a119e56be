"""What monitoring costs (issue 19): a scrape of a database whose queue holds
1,000,000 messages over 100 tags, against SELECT count(*) of that queue (the
one scan that counting cannot avoid); then enqueue+dequeue on another queue
while `q4pg metrics --listen` is scraped every second (the same reading and
formatting, in a thread of this process), against the same work unscraped:
as served by default (messages counted every 15 s, the rest read at each
scrape; target >= 0.98x), and counting at every scrape (a diagnostic)."""

import threading
import time

from bench.harness import MESSAGE, Subject, log, median

BIG = 'metrics_big'
MESSAGES = 1000000
TAGS = 100
SCRAPES = 5                     # timed scrapes per round
INTERVAL = 1.0                  # seconds between scrapes while the workload runs
CLIENTS = [1, 4]


def _prepare(bench):
    bench.execute("SELECT q4pg_create_queue(%s)", (BIG,))
    bench.execute('TRUNCATE %s' % BIG)
    log('  filling %s with %s messages over %d tags' % (BIG, '{:,}'.format(MESSAGES), TAGS))
    bench.execute("INSERT INTO %s (tag, data) SELECT 't' || mod(i, %%s), %%s "
                  "FROM generate_series(1, %%s) AS i" % BIG, (TAGS, MESSAGE, MESSAGES))
    bench.execute('VACUUM (ANALYZE) %s' % BIG)
    bench.execute('CHECKPOINT')


def _timed(bench, label, sql, kind='q4pg'):
    """A Subject whose rate is statements per second (SCRAPES of them, one at a time)."""
    return Subject(label, lambda c: _rate_of(lambda: bench.query(sql)), kind, [1])


def _rate_of(call):
    """call() SCRAPES times, one after the other: calls per second."""
    t = time.monotonic()
    for _ in range(SCRAPES):
        call()
    return SCRAPES / (time.monotonic() - t)


def _reading(bench, count_every):
    """What one scrape of q4pg metrics --listen does: (its reader, scrape() -> text)."""
    from q4pg import exposition, monitor
    reader = monitor.Reader(bench.dsn, count_every=count_every)
    return reader, lambda: exposition.text(reader.read)


class Scraper:
    """Scrapes every INTERVAL seconds in a thread until stopped; keeps the durations."""

    def __init__(self, scrape):
        self.scrape, self.durations = scrape, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        next_at = time.monotonic()
        while not self.stop.is_set():
            t = time.monotonic()
            self.scrape()
            self.durations.append(time.monotonic() - t)
            next_at += INTERVAL
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _workload(bench, label, count_every=None, durations=None, kind='q4pg'):
    """enqueue+dequeue pairs per second on queue q for cfg.seconds (at least 10 s),
    scraped meanwhile every INTERVAL seconds unless count_every is None."""
    seconds = max(bench.cfg.seconds, 10)

    def run(c):
        bench.stores['q'].reset(1000)
        if count_every is None:
            return bench.pgbench('scripts/enqueue_dequeue_q4pg.sql', c, seconds=seconds).tps
        reader, scrape = _reading(bench, count_every)
        try:
            # the first scrape counts: one count per run, at least once per 15 s
            with Scraper(scrape) as s:
                tps = bench.pgbench('scripts/enqueue_dequeue_q4pg.sql', c, seconds=seconds).tps
        finally:
            reader.close()
        durations.extend(s.durations)
        return tps
    return Subject(label, run, kind)


def run(bench):
    _prepare(bench)
    reader, scrape = _reading(bench, 0)
    try:
        scrape()                                         # warm: plans, connection
        measurement = 'scrape, %s messages / %d tags' % ('{:,}'.format(MESSAGES), TAGS)
        bench.compare('metrics', measurement,
                      _timed(bench, 'SELECT count(*) (scans/s)', 'SELECT count(*) FROM %s' % BIG,
                             'baseline'),
                      [_timed(bench, 'q4pg_metrics() (scrapes/s)', 'SELECT * FROM q4pg_metrics()'),
                       _timed(bench, 'q4pg_metrics(tags => 100) (scrapes/s)',
                              'SELECT * FROM q4pg_metrics(100)'),
                       Subject('q4pg metrics, read and formatted (scrapes/s)',
                               lambda c: _rate_of(scrape), 'q4pg', [1])],
                      clients=[1], unit='/s')
        # (the scrapes between counts run q4pg_warnings(expired_leases => NULL); its
        # default looks for expired leases: a scan of each queue)
        cheap = [median([1 / _rate_of(lambda: bench.query(sql)) for _ in range(3)])
                 for sql in ('SELECT * FROM q4pg_metrics(counts => false)',
                             'SELECT (SELECT count(*) FROM q4pg_horizon()), '
                             '(SELECT count(*) FROM q4pg_warnings(expired_leases => NULL))',
                             'SELECT count(*) FROM q4pg_warnings()')]
        bench.notes.append('metrics: without the counts, q4pg_metrics(counts => false) took '
                           '%.1f ms; q4pg_horizon() and q4pg_warnings(expired_leases => NULL) '
                           '%.1f ms; q4pg_warnings(), which scans for expired leases, %.1f ms'
                           % (1000 * cheap[0], 1000 * cheap[1], 1000 * cheap[2]))
    finally:
        reader.close()
    every = {}
    bench.compare('metrics', 'enqueue+dequeue, scraped every %gs' % INTERVAL,
                  _workload(bench, 'not scraped'),
                  [_workload(bench, 'scraped, counted every 15 s (default)', 15.0,
                             every.setdefault(15.0, [])),
                   _workload(bench, 'scraped, counted at each scrape', 0.0,
                             every.setdefault(0.0, []), kind='diagnostic')],
                  clients=CLIENTS, unit='pairs/s', target=('ratio', 0.98))
    for count_every, durations in sorted(every.items()):
        if durations:
            bench.notes.append('metrics: scrapes (--count-every %g) while enqueue+dequeue ran: '
                               'median %.0f ms, at most %.0f ms (%d scrapes)'
                               % (count_every, 1000 * median(durations), 1000 * max(durations),
                                  len(durations)))
    bench.execute('SELECT q4pg_drop_queue(%s)', (BIG,))
