"""How one contender runs at a given client count: Subjects for Bench.compare().

writer: a pgbench script that adds messages; taker: one that takes them from a
prefilled table; python_loop: a loop in Python worker processes, one per client.
Each Subject's run(clients) returns messages moved per second.
"""

import time

from bench.harness import Subject, log
from bench.workers import loops


def writer(bench, label, script, store, kind='q4pg', per_call=1, defines=None, countable=True,
           clients=None, pgoptions=None):
    """A pgbench script that adds messages, for cfg.seconds.  Rate: messages in
    the table afterwards (countable) or transactions x per_call."""
    last = {}

    def run(c):
        store.reset()
        res = bench.pgbench(script, c, seconds=bench.cfg.seconds, defines=defines,
                            pgoptions=pgoptions)
        moved = store.count() if countable and store.count_sql else res.processed * per_call
        res.per_message(moved, last)
        return moved * res.tps / res.processed
    return Subject(label, run, kind, clients, last)


def taker(bench, label, script, store, kind='q4pg', batch=None, clients=None, pgoptions=None,
          seconds=None):
    """A pgbench script that takes messages from a prefilled table.  One at a
    time: for cfg.seconds, on a prefill that grows until a run never finds the
    table empty.  In batches: a fixed number of calls (-t), each finding a
    full batch.  Rate: messages actually moved per second."""
    seconds = seconds or bench.cfg.seconds
    last = {}

    def run(c):
        if batch is None:
            n = bench.prefill.get(label, max(20000, int(25000 * seconds)))
            for _ in range(6):
                store.reset(n)
                res = bench.pgbench(script, c, seconds=seconds, pgoptions=pgoptions)
                left = store.count()
                if left > 0:
                    break
                n = _more(bench, label, n)
            else:
                raise RuntimeError('%s: ran dry even with %d messages' % (label, n))
        else:
            calls = max(2, bench.cfg.batch_messages // (c * batch))
            n = (calls + 1) * c * batch
            store.reset(n)
            res = bench.pgbench(script, c, transactions=calls, defines={'batch': batch},
                                pgoptions=pgoptions)
            left = store.count()
        res.per_message(n - left, last)
        return (n - left) * res.tps / res.processed
    return Subject(label, run, kind, clients, last)


def python_loop(bench, label, impl, job, store, kind='q4pg', batch=1):
    """A loop of workers.loops.timed_loop(impl, job) in Python worker
    processes, one per client: for cfg.py_seconds, or, taking batches, a
    fixed number of calls on a table that holds them all."""
    takes = job.startswith('dequeue') or job in ('listen', 'lease')
    fixed = takes and batch > 1

    def run(c):
        if fixed:
            calls = max(2, bench.cfg.batch_messages // (c * batch))
            n = (calls + 1) * c * batch
        else:
            calls = None
            n = bench.prefill.get(label, max(10000, int(8000 * bench.cfg.py_seconds)))
        for _ in range(6):
            store.reset(n if takes else 0)
            start_at = time.monotonic() + 0.5
            futures = [bench.pool.submit(loops.timed_loop, impl, job, bench.dsn, start_at,
                                         None if fixed else bench.cfg.py_seconds, batch, calls)
                       for _ in range(c)]
            results = [f.result() for f in futures]
            moved = sum(r[0] for r in results)
            short = sum(r[2] for r in results)
            elapsed = max(r[3] for r in results) - start_at if fixed else bench.cfg.py_seconds
            if fixed or not (takes and short):
                return moved / elapsed
            n = _more(bench, label, n)
        raise RuntimeError('%s: ran dry even with %d messages' % (label, n))
    return Subject(label, run, kind)


def _more(bench, label, n):
    """A taker ran dry on n messages: twice as many from now on."""
    n *= 2
    bench.prefill[label] = n
    log('    %s ran dry: prefill now %d messages, again' % (label, n))
    return n
