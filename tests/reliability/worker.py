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


MODES = {'sql-consume': sql_consume, 'client-consume': client_consume, 'listen': listen,
         'produce': produce}


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
