"""q4pg 1.2 against 1.1, unpinned (issue 17: "no path costs more than 10 % over
1.1").  A second database of the bench cluster gets the released 1.1
(`CREATE EXTENSION q4pg VERSION '1.1'`, installed next to 1.2 by `make
install`) and bench/setup.sql's tables, so its queue q has the shape of the
main database's; then each path runs the other sections' own q4pg subjects
(the same pgbench scripts) on both databases, 1.1 the baseline and 1.2 the
contender, in the same rounds: enqueue, dequeue, lease + ack, dequeue with
100,000 messages scheduled ahead, enqueue_many and dequeue_many of cfg.batch,
and the horizon section's loop (an enqueue and a dequeue a transaction) with
nothing pinned.  A ratio is 1.2's rate over 1.1's; bench/report.py turns it
into what a message costs in 1.2 over 1.1 (target: at most 1.10)."""

from bench.sections import batch, dequeue, enqueue, horizon, lease, scheduled

BASELINE_VERSION = '1.1'
DATABASE = 'q4pg_1_1'

# (measurement, the section's q4pg subject, the cfg attribute of its client counts)
PATHS = [
    ('enqueue', enqueue.q4pg_subject, 'clients'),
    ('dequeue', dequeue.q4pg_subject, 'clients'),
    ('lease + ack', lease.q4pg_subject, 'clients'),
    ('dequeue, %s scheduled ahead' % '{:,}'.format(scheduled.FUTURE), scheduled.q4pg_subject,
     'clients'),
    ('batch enqueue_many', batch.enqueue_subject, 'batch_clients'),
    ('batch dequeue_many', batch.dequeue_subject, 'batch_clients'),
    ('enqueue + dequeue a transaction (the horizon loop)', horizon.loop_subject, 'clients'),
]


def version(bench):
    return bench.query("SELECT extversion FROM pg_extension WHERE extname = 'q4pg'")[0][0]


def run(bench):
    old = bench.on_database(DATABASE)
    old.execute('CREATE EXTENSION q4pg VERSION %s', (BASELINE_VERSION,))
    old.setup()                     # (CREATE EXTENSION IF NOT EXISTS: 1.1 stays)
    labels = ['q4pg %s' % version(b) for b in (old, bench)]
    if labels[0] == labels[1]:
        raise RuntimeError('the bench database runs q4pg %s too: nothing to compare' % labels[0])
    for measurement, subject, clients in PATHS:
        if measurement.startswith('batch'):
            measurement += ' x%d' % bench.cfg.batch
        bench.compare('versions', measurement, subject(old, labels[0], 'baseline'),
                      [subject(bench, labels[1])], clients=getattr(bench.cfg, clients))
