"""NOTIFY cost (diagnostic): a per-row pg_notify trigger, and a plain INSERT
into the q4pg queue (its gated trigger, nobody waiting), against a plain INSERT."""

from bench.subjects import writer


def run(bench):
    s = bench.stores
    bench.compare('notify', 'NOTIFY cost (diagnostic)',
                  writer(bench, 'INSERT', 'scripts/enqueue_raw.sql', s['raw'], 'baseline'),
                  [writer(bench, 'INSERT + per-row pg_notify trigger',
                          'scripts/notify_row_trigger.sql', s['raw_notify'], 'diagnostic',
                          countable=False),
                   writer(bench, 'INSERT into the q4pg queue (gated trigger, nobody waits)',
                          'scripts/notify_queue_insert.sql', s['q'], 'diagnostic')],
                  unit='msg/s')
