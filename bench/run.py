"""q4pg's benchmark: q4pg against the plain SQL it wraps, and against its peers.

Starts a throwaway PostgreSQL cluster with durable commits (fsync on,
synchronous_commit on), measures, writes results.md, results.json and
chart.png and stops the cluster.  `make bench` runs it, from the repository
root:

    python -m bench.run                    the full run (about an hour on 2 cores; horizon alone 30 min)
    python -m bench.run --quick            a smoke run (2-3 minutes)
    python -m bench.run --only enqueue,dequeue
    python -m bench.run --only anatomy     q4pg_enqueue/q4pg_dequeue taken apart, piece by piece

A full run writes bench/results/; a quick run and an --only run write
bench/work/results/, so they never overwrite the committed figures.
"""

import argparse
import json
import os
import sys
import time
import traceback

from bench import chart, machine, peers, report, sections
from bench.harness import BENCH, PG_BINDIR, POSTGRES_ARGS, Bench, log
from bench.sections.soak import NAPTIME as SOAK_NAPTIME
from tools.pgcluster import Cluster

FULL_RUN_OUT = os.path.join(BENCH, 'results')
PARTIAL_RUN_OUT = os.path.join(BENCH, 'work', 'results')


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m bench.run',
        description='q4pg against plain SQL and its peers, on a throwaway cluster.',
        epilog='Sections: %s (default: all but anatomy).' % ', '.join(sections.ALL))
    parser.add_argument('--quick', action='store_true',
                        help='a 2-3 minute smoke run: 1 round, 1 s runs, no soak')
    parser.add_argument('--only', metavar='SECTION[,SECTION]',
                        help='run only these sections')
    parser.add_argument('--soak', action='store_true', help='add the churn soak (when not default)')
    parser.add_argument('--anatomy', action='store_true',
                        help='add the q4pg_enqueue/q4pg_dequeue piece-by-piece section')
    parser.add_argument('--no-peers', action='store_true', help='leave PgQ and PGMQ out')
    parser.add_argument('--rounds', type=int, help='rounds per measurement (default 3; quick 1)')
    parser.add_argument('--seconds', type=int, help='seconds per pgbench run (default 3; quick 1)')
    parser.add_argument('--clients', help='client counts (default 1,4,16)')
    parser.add_argument('--soak-messages', type=int, help='messages through the soak (default 1e6)')
    parser.add_argument('--out', help='where results.md, results.json and chart.png go (default: '
                        'bench/results/ for a full run, bench/work/results/ for --quick or --only)')
    args = parser.parse_args(argv)

    if args.only:
        args.sections = [s.strip() for s in args.only.split(',') if s.strip()]
        bad = [s for s in args.sections if s not in sections.ALL]
        if bad:
            parser.error('unknown section(s) %s; choose from %s'
                         % (', '.join(bad), ', '.join(sections.ALL)))
    else:
        args.sections = list(sections.DEFAULT)
        if args.quick and 'soak' in args.sections and not args.soak:
            args.sections.remove('soak')
        for flag in ('soak', 'anatomy'):
            if getattr(args, flag) and flag not in args.sections:
                args.sections.append(flag)
    args.sections = [s for s in sections.ALL if s in args.sections]
    args.out = args.out or (PARTIAL_RUN_OUT if args.quick or args.only else FULL_RUN_OUT)

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
    args.horizon_minutes = 1 if quick else 10
    args.horizon_base = 20 if quick else 60
    return args


def measure(pg, cfg):
    """Sets the cluster up and runs the sections; a section that fails leaves a
    note and the others run.  Returns (bench, machine fingerprint)."""
    bench = Bench(pg, cfg)
    try:
        available = bench.query("SELECT count(*) FROM pg_available_extensions WHERE name = 'q4pg'")
        if not available[0][0]:
            sys.exit('bench: the q4pg extension is not installed in this server; '
                     'run `make install` (or `make bench`, which does it)')
        bench.setup()
        if cfg.no_peers:
            bench.has_pgq = bench.has_pgmq = False
        else:
            peers.install(bench)
        fingerprint = machine.fingerprint(bench)
        for section in cfg.sections:
            log('\n== %s' % section)
            t = time.monotonic()
            try:
                sections.run(section, bench)
            except Exception as e:
                traceback.print_exc()
                bench.notes.append('section %s failed: %s: %s'
                                   % (section, type(e).__name__, str(e).strip()[:500]))
            log('   (%s took %.0f s)' % (section, time.monotonic() - t))
    finally:
        bench.close()
    return bench, fingerprint


def write(results, out):
    """results.json, results.md and chart.png into out; returns the Markdown."""
    with open(os.path.join(out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1, default=str)
    markdown = report.markdown(results)
    with open(os.path.join(out, 'results.md'), 'w') as f:
        f.write(markdown)
    chart.draw(results, os.path.join(out, 'chart.png'))
    return markdown


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
        bench, fingerprint = measure(pg, cfg)
    results = dict(machine=fingerprint, config=dict(
        sections=cfg.sections, rounds=cfg.rounds, seconds=cfg.seconds, py_seconds=cfg.py_seconds,
        clients=cfg.clients, batch=cfg.batch, batch_messages=cfg.batch_messages,
        listen_samples=cfg.listen_samples, soak_messages=cfg.soak_messages,
        soak_batch=cfg.soak_batch, postgres_args=POSTGRES_ARGS, quick=cfg.quick),
        rows=bench.rows, latency=bench.latency, soak=bench.soak, cpu=bench.cpu,
        horizon=bench.horizon,
        notes=bench.notes, elapsed=time.monotonic() - started)
    markdown = write(results, cfg.out)
    log('\n' + markdown)
    log('bench: wrote %s (results.md, results.json, chart.png) in %.0f s'
        % (cfg.out, time.monotonic() - started))


if __name__ == '__main__':
    main()
