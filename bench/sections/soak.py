"""The churn soak: cfg.soak_messages through the q4pg queue and through raw,
producers and consumers in batches at once; rate and pg_total_relation_size
over time, with autovacuum_naptime 1s (the README's advice, the target), then,
in a full run, with PostgreSQL's default of 1 min (a diagnostic)."""

import multiprocessing
import time

from bench.harness import log
from bench.workers import soak

NAPTIME = 1  # autovacuum_naptime (s) of the soak's target run: the README's advice


def run(bench):
    """With autovacuum_naptime 1s, what the README asks of a cluster that
    carries busy queues (the queue table's own settings then vacuum it every
    5,000 messages); then, as a diagnostic, with PostgreSQL's default of 1 min
    (naptime None), which a million messages outrun here (no VACUUM runs in
    time, on the queue or on raw)."""
    for naptime in bench.cfg.soak_naptimes:
        if naptime:
            bench.execute("ALTER SYSTEM SET autovacuum_naptime = '%ds'" % naptime)
            bench.execute('SELECT pg_reload_conf()')
            time.sleep(0.5)
        try:
            for kind in ('q4pg', 'raw'):
                result = _churn(bench, kind)
                result['naptime'] = bench.query('SHOW autovacuum_naptime')[0][0]
                # the target is the recommended setting; the default is a diagnostic
                result['pass'] = result['pass'] if naptime == NAPTIME else None
                bench.soak.append(result)
        finally:
            if naptime:
                bench.execute('ALTER SYSTEM RESET autovacuum_naptime')
                bench.execute('SELECT pg_reload_conf()')


def _churn(bench, kind):
    """One soak run through the q4pg queue (kind 'q4pg') or raw: its samples and figures."""
    cfg = bench.cfg
    table = 'q' if kind == 'q4pg' else 'raw'
    bench.stores[table].reset()
    ctx = multiprocessing.get_context('spawn')
    produced, consumed = ctx.Value('q', 0), ctx.Value('q', 0)
    procs = [ctx.Process(target=soak.producer,
                         args=(bench.dsn, kind, cfg.soak_batch, cfg.soak_messages, produced,
                               consumed, cfg.soak_backlog))
             for _ in range(cfg.soak_producers)]
    procs += [ctx.Process(target=soak.consumer,
                          args=(bench.dsn, kind, cfg.soak_batch, cfg.soak_messages, consumed))
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
        size, live, dead, autovacuums = bench.query(stats_sql, (table, table))[0]
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
            bench.notes.append('soak %s stopped after %d s, before all messages went through'
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


def window_rate(samples, first, last):
    """Messages per second between the samples where `consumed` passes first and last."""
    a = next((s for s in samples if s['consumed'] >= first), None)
    b = next((s for s in samples if s['consumed'] >= last), None)
    if a is None or b is None or b['t'] <= a['t']:
        return None
    return (b['consumed'] - a['consumed']) / (b['t'] - a['t'])
