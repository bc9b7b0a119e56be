"""Scheduled messages in the way: q4pg_dequeue draining due messages with 100,000
messages due tomorrow enqueued before them (lower ids), against the same queue
with none scheduled."""

from bench.harness import MESSAGE, Store
from bench.subjects import taker

FUTURE = 100000


class ScheduledAhead(Store):
    """The queue q: FUTURE messages due in a day, then the due ones; counts the due ones."""

    def __init__(self, bench):
        super().__init__(bench, 'q', truncate='TRUNCATE q RESTART IDENTITY',
                         prefill="INSERT INTO q (tag, data) "
                                 "SELECT 't', %s FROM generate_series(1, %s)",
                         count="SELECT q4pg_count('q', 't', include_scheduled => false)",
                         vacuum='q')

    def reset(self, n=0):
        self.bench.execute(self.truncate_sql)
        self.bench.execute("SELECT count(*) FROM q4pg_enqueue_many('q', 't', "
                           "array_fill(%s::text, ARRAY[%s]), now() + interval '1 day')",
                           (MESSAGE, FUTURE))
        if n:
            self.bench.execute(self.prefill_sql, (MESSAGE, n))
        self.bench.execute('VACUUM (ANALYZE) %s' % self.vacuum)
        self.bench.execute('CHECKPOINT')


def q4pg_subject(bench, label='q4pg_dequeue, %s scheduled ahead' % '{:,}'.format(FUTURE),
                 kind='q4pg'):
    """q4pg_dequeue draining the queue q of bench's database, FUTURE messages due
    tomorrow enqueued before its due ones."""
    return taker(bench, label, 'scripts/dequeue_q4pg.sql', ScheduledAhead(bench), kind)


def run(bench):
    bench.compare('scheduled', 'dequeue, %s scheduled ahead' % '{:,}'.format(FUTURE),
                  taker(bench, 'q4pg_dequeue, none scheduled', 'scripts/dequeue_q4pg.sql',
                        bench.stores['q'], 'baseline'),
                  [q4pg_subject(bench)],
                  unit='msg/s')
