"""A producer, consumer or listener process for the reliability tests.

    python worker.py MODE --dsn DSN --queue TABLE --tag TAG --log FILE [options]

Modes:
  sql-consume     psycopg2 only: BEGIN; q4pg_dequeue (or q4pg_dequeue_many with
                  --batch); hold; INSERT the ids into table "processed"; COMMIT.
                  The processing and the removal commit together.
  client-consume  q4pg.QueueManager.dequeue_message (dequeue_many with --batch).
  listen          q4pg.QueueManager.listen(tag, full=True): one generator for the
                  whole life of the process (it must survive cut connections and
                  server crashes on its own).
  produce         q4pg.QueueManager.enqueue (enqueue_many with --batch) of
                  {"p": PRODUCER, "seq": N} until --count or the stop file.
  lease-consume   psycopg2 only: q4pg_lease (--batch messages, --lease seconds),
                  then for each message: q4pg_nack when its data says "fail" (always)
                  or at random (--nack-rate, due again after --retry-in); else
                  BEGIN; INSERT INTO acks; q4pg_ack; COMMIT only when the ack
                  returned true.  At random (--expire-rate, per lease) it sleeps
                  past the lease first, so its acks come late.
  scheduled-produce
                  psycopg2 only: q4pg_enqueue (q4pg_enqueue_many with --batch)
                  with run_at = clock_timestamp() + random 0..--delay-max s (some
                  a little in the past); the data carries that due time.
  scheduled-consume
                  psycopg2 only, --how dequeue | dequeue_many | take | lease: every
                  delivery goes into table "deliveries" with the now() of the
                  transaction that took it, in that transaction (lease: its own
                  statement's now(), recorded when acking); take and lease fail
                  some messages (q4pg_fail / q4pg_nack, due again after
                  --retry-in) and record the run_at that set in table "retries".

Every event is one JSON line, written with one write(2) so that a SIGKILL never
leaves half a line:  {"ev": "got"|"ack"|"ok"|"lost"|"err"|"bad"|...}.
A message whose data holds {"hold": S} is held S seconds by consumers and
listeners before they finish it, the first time a process gets it (the other
messages: random 0..--hold-max s).
The consumers stop when the queue is empty and --stop-file exists.
"""

import argparse
import faulthandler
import json
import logging
import os
import random
import signal
import sys
import time
import traceback


class Log:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, ev, **fields):
        fields['ev'] = ev
        fields['t'] = time.time()
        os.write(self.fd, (json.dumps(fields, ensure_ascii=True) + '\n').encode())


HELD = set()  # ids held as their data asked: the first time only


def hold(args, data, id_=None):
    if isinstance(data, dict) and isinstance(data.get('hold'), (int, float)):
        if id_ not in HELD:
            HELD.add(id_)
            time.sleep(data['hold'])
    elif args.hold_max:
        time.sleep(random.uniform(0, args.hold_max))


def stopping(args):
    return args.stop_file is not None and os.path.exists(args.stop_file)


def queue_name(conn, args):
    from psycopg2 import sql
    parts = (args.queue,) if args.schema is None else (args.schema, args.queue)
    return sql.Identifier(*parts).as_string(conn)


def sql_consume(args, log):
    import psycopg2
    conn = psycopg2.connect(args.dsn)
    queue = queue_name(conn, args)
    while True:
        with conn.cursor() as cur:
            if args.batch:
                cur.execute('SELECT id, data FROM q4pg_dequeue_many(%s::regclass, %s, %s)',
                            (queue, args.tag, args.batch))
            else:
                cur.execute('SELECT id, data FROM q4pg_dequeue(%s::regclass, %s)',
                            (queue, args.tag))
            rows = cur.fetchall()
            for id_, data in rows:
                log('got', id=id_, data=data)
            if rows:
                hold(args, json.loads(rows[0][1]))
                cur.executemany('INSERT INTO processed (id, worker, data) VALUES (%s, %s, %s)',
                                [(id_, os.getpid(), data) for id_, data in rows])
        conn.commit()
        for id_, _ in rows:
            log('ack', id=id_)
        if not rows:
            if stopping(args):
                break
            time.sleep(0.02)
    log('end')


def manager(args):
    import q4pg
    return q4pg.QueueManager(args.dsn, args.queue, data_type=args.data_type, schema=args.schema,
                             poll_interval=args.poll_interval)


def client_consume(args, log):
    q = manager(args)
    while True:
        if args.batch:
            with q.dequeue_many(args.tag, args.batch) as messages:
                for m in messages:
                    log('got', id=m.id, data=m.raw)
                if messages:
                    hold(args, messages[0].data)
        else:
            with q.dequeue_message(args.tag) as m:
                messages = [m] if m is not None else []
                if m is not None:
                    log('got', id=m.id, data=m.raw)
                    hold(args, m.data)
        for m in messages:
            log('ack', id=m.id)
        if not messages:
            if stopping(args):
                break
            time.sleep(0.02)
    log('end')


def listen(args, log):
    q = manager(args)
    log('start')
    for m in q.listen(args.tag, full=True, stop_after_idle=args.timeout):
        log('got', id=m.id, data=m.raw)
        hold(args, m.data, m.id)
        log('done', id=m.id)
    log('end')


def produce(args, log):
    import q4pg
    q = manager(args)
    seq = 0
    while (args.count is None or seq < args.count) and not stopping(args):
        batch = list(range(seq, seq + (args.batch or 1)))
        seq += len(batch)
        items = [{'p': args.producer, 'seq': s} for s in batch]
        try:
            if args.batch:
                ids = q.enqueue_many(args.tag, items)
            else:
                ids = [q.enqueue(args.tag, items[0])]
        except q4pg.ConnectionLost as e:
            log('lost', seqs=batch, error=str(e))
            time.sleep(0.05)
            continue
        except q4pg.Q4pgError as e:
            log('err', seqs=batch, cls=type(e).__name__, error=str(e))
            time.sleep(0.05)
            continue
        except Exception as e:  # a bare exception out of the client: a bug
            log('bad', seqs=batch, cls=type(e).__name__, error=repr(e))
            time.sleep(0.05)
            continue
        for s, id_ in zip(batch, ids):
            log('ok', seq=s, id=id_)
        if args.pause:
            time.sleep(args.pause)
    log('end')


# Server times travel as integer microseconds since the epoch: exact, and comparable.
US = '(extract(epoch FROM %s) * 1000000)::bigint'


def lease_consume(args, log):
    import psycopg2
    conn = psycopg2.connect(args.dsn)
    conn.autocommit = True
    queue = queue_name(conn, args)
    cur = conn.cursor()
    rng = random.Random()
    while True:
        cur.execute('SELECT id, data, attempts, lease_token::text, ' + US % 'lease_until' + ', '
                    + US % 'now()' + ' FROM q4pg_lease(%s::regclass, %s, %s, '
                    'make_interval(secs => %s))', (queue, args.tag, args.batch or 1, args.lease))
        rows = cur.fetchall()
        for id_, data, attempts, token, until, now in rows:
            log('lease', id=id_, attempts=attempts, token=token, until=until, at=now)
        if not rows:
            cur.execute('SELECT q4pg_count(%s::regclass, include_scheduled => true)', (queue,))
            if stopping(args) and cur.fetchone()[0] == 0:
                break
            time.sleep(0.02)
            continue
        if rng.random() < args.expire_rate:
            log('sleep', ids=[r[0] for r in rows])
            time.sleep(args.lease + 0.3)              # past the lease: the acks below come late
        for id_, data, attempts, token, _, _ in rows:
            message = json.loads(data)
            if message.get('fail') or rng.random() < args.nack_rate:
                error = 'always fails: %s' % message['n'] if message.get('fail') else 'flaky'
                retry_in = None if message.get('fail') else args.retry_in
                cur.execute('SELECT q4pg_nack(%s::regclass, %s, %s::uuid, '
                            'make_interval(secs => %s), %s), ' + US % 'now()',
                            (queue, id_, token, retry_in, error))
                result, now = cur.fetchone()
                log('nack', id=id_, token=token, result=result, error=error,
                    retry_in=retry_in or 0, at=now)
                continue
            hold(args, message)
            cur.execute('BEGIN')
            cur.execute('INSERT INTO acks (id, worker, token, attempts) VALUES (%s, %s, %s, %s)',
                        (id_, os.getpid(), token, attempts))
            cur.execute('SELECT q4pg_ack(%s::regclass, %s, %s::uuid)', (queue, id_, token))
            ok = cur.fetchone()[0]
            cur.execute('COMMIT' if ok else 'ROLLBACK')
            log('ack', id=id_, token=token, ok=ok)
    log('end')


def scheduled_produce(args, log):
    import psycopg2
    conn = psycopg2.connect(args.dsn)
    conn.autocommit = True
    queue = queue_name(conn, args)
    cur = conn.cursor()
    rng = random.Random()
    seq = 0
    while seq < args.count:
        # a few are a little overdue when they arrive; the rest due within --delay-max
        delay = rng.uniform(-0.05, 0) if rng.random() < 0.05 else rng.uniform(0, args.delay_max)
        many = args.batch and seq % 2
        n = min(args.batch or 1, args.count - seq) if many else 1
        items = [{'p': args.producer, 'seq': s} for s in range(seq, seq + n)]
        if many:
            cur.execute("""
                SELECT q4pg_enqueue_many(%s::regclass, %s,
                           ARRAY(SELECT jsonb_set(i, '{due}', to_jsonb(d))::text
                                   FROM unnest(%s::jsonb[]) WITH ORDINALITY AS u(i, o) ORDER BY o),
                           d), """ + US % 'd' + """
                  FROM (SELECT clock_timestamp() + make_interval(secs => %s) AS d) AS s""",
                        (queue, args.tag, [json.dumps(i) for i in items], delay))
        else:
            cur.execute("""
                SELECT q4pg_enqueue(%s::regclass, %s,
                                    jsonb_set(%s::jsonb, '{due}', to_jsonb(d))::text, d), """
                        + US % 'd' + """
                  FROM (SELECT clock_timestamp() + make_interval(secs => %s) AS d) AS s""",
                        (queue, args.tag, json.dumps(items[0]), delay))
        for item, (id_, due) in zip(items, cur.fetchall()):
            log('ok', seq=item['seq'], id=id_, due=due)
        seq += n
        if args.pause:
            time.sleep(args.pause)
    log('end')


RECORD_DELIVERY = ('INSERT INTO deliveries (id, due, delivered_at, clock_at, how, worker) '
                   "VALUES (%s, (%s::jsonb ->> 'due')::timestamptz, %s, %s, %s, %s)")
RECORD_RETRY = ('INSERT INTO retries (id, failed_at, run_at, retry_in, how) '
                'SELECT id, now(), run_at, make_interval(secs => %s), %s FROM {} WHERE id = %s')


def scheduled_consume(args, log):
    import psycopg2
    conn = psycopg2.connect(args.dsn)
    queue = queue_name(conn, args)
    record_retry = RECORD_RETRY.format(queue)
    cur = conn.cursor()
    rng = random.Random()
    how, n = args.how, args.batch or 1
    pid = os.getpid()
    conn.autocommit = how == 'lease'        # a lease is its own transaction
    while True:
        if how == 'dequeue':
            cur.execute('SELECT id, data, now(), clock_timestamp() '
                        'FROM q4pg_dequeue(%s::regclass, %s)', (queue, args.tag))
        elif how == 'dequeue_many':
            cur.execute('SELECT id, data, now(), clock_timestamp() '
                        'FROM q4pg_dequeue_many(%s::regclass, %s, %s)', (queue, args.tag, n))
        elif how == 'take':
            cur.execute('SELECT id, data, now(), clock_timestamp() '
                        'FROM q4pg_take(%s::regclass, %s, %s)', (queue, args.tag, n))
        else:
            cur.execute('SELECT id, data, now(), clock_timestamp(), lease_token::text '
                        "FROM q4pg_lease(%s::regclass, %s, %s, interval '30 seconds')",
                        (queue, args.tag, n))
        rows = cur.fetchall()
        for row in rows:
            id_, data, now, clock = row[:4]
            failing = how in ('take', 'lease') and rng.random() < args.nack_rate
            if how == 'lease':
                cur.execute('BEGIN')
            cur.execute(RECORD_DELIVERY, (id_, data, now, clock, how, pid))
            if how == 'take':
                if failing:
                    cur.execute("SELECT q4pg_fail(%s::regclass, %s, 'again', "
                                "make_interval(secs => %s))", (queue, id_, args.retry_in))
                else:
                    cur.execute('SELECT q4pg_done(%s::regclass, %s)', (queue, id_))
            elif how == 'lease':
                if failing:
                    cur.execute("SELECT q4pg_nack(%s::regclass, %s, %s::uuid, "
                                "make_interval(secs => %s), 'again')",
                                (queue, id_, row[4], args.retry_in))
                else:
                    cur.execute('SELECT q4pg_ack(%s::regclass, %s, %s::uuid)', (queue, id_, row[4]))
            result = cur.fetchone()[0] if how in ('take', 'lease') else True
            if failing and result is not None:
                cur.execute(record_retry, (args.retry_in, how, id_))
            if how == 'lease':
                cur.execute('COMMIT')
            log('got', id=id_, how=how, failed=failing, result=result)
        if how != 'lease':
            conn.commit()
        if not rows:
            cur.execute('SELECT q4pg_count(%s::regclass, include_scheduled => true)', (queue,))
            left = cur.fetchone()[0]
            if how != 'lease':
                conn.commit()
            if stopping(args) and left == 0:
                break
            time.sleep(0.005)
    log('end')


MODES = {'sql-consume': sql_consume, 'client-consume': client_consume, 'listen': listen,
         'produce': produce, 'lease-consume': lease_consume,
         'scheduled-produce': scheduled_produce, 'scheduled-consume': scheduled_consume}


def main():
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=sorted(MODES))
    p.add_argument('--dsn', required=True)
    p.add_argument('--queue', default='mq')
    p.add_argument('--schema')
    p.add_argument('--tag', default='t')
    p.add_argument('--log', required=True)
    p.add_argument('--producer', default='p')
    p.add_argument('--data-type', default='json')
    p.add_argument('--batch', type=int)
    p.add_argument('--count', type=int)
    p.add_argument('--hold-max', type=float, default=0.0)
    p.add_argument('--pause', type=float, default=0.0)
    p.add_argument('--timeout', type=float)
    p.add_argument('--poll-interval', type=float, default=5.0)
    p.add_argument('--stop-file')
    p.add_argument('--lease', type=float, default=1.0)
    p.add_argument('--expire-rate', type=float, default=0.0)
    p.add_argument('--nack-rate', type=float, default=0.0)
    p.add_argument('--retry-in', type=float, default=0.0)
    p.add_argument('--delay-max', type=float, default=0.2)
    p.add_argument('--how', choices=['dequeue', 'dequeue_many', 'take', 'lease'])
    args = p.parse_args()
    log = Log(args.log)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks on demand, for diagnosis
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    try:
        MODES[args.mode](args, log)
    except BaseException as e:
        log('crash', cls=type(e).__name__, error=repr(e), tb=traceback.format_exc())
        raise


if __name__ == '__main__':
    sys.exit(main())
