"""NOTIFY cost (diagnostic): a per-row pg_notify trigger, and a plain INSERT
into the q4pg queue (its gated trigger), nobody waiting and with 16 listeners
idle on the tag, against a plain INSERT."""

import psycopg2

from bench.harness import Store, Subject
from bench.subjects import writer

IDLE_LISTENERS = 16


def run(bench):
    s = bench.stores
    # DELETE, not the table store's TRUNCATE ... RESTART IDENTITY, which
    # restarts the ring's state sequence too (the next INSERT finds no slot)
    q = Store(bench, 'q', 'DELETE FROM q', count='SELECT count(*) FROM q', vacuum='q')
    bench.compare('notify', 'NOTIFY cost (diagnostic)',
                  writer(bench, 'INSERT', 'scripts/enqueue_raw.sql', s['raw'], 'baseline'),
                  [writer(bench, 'INSERT + per-row pg_notify trigger',
                          'scripts/notify_row_trigger.sql', s['raw_notify'], 'diagnostic',
                          countable=False),
                   writer(bench, 'INSERT into the q4pg queue (gated trigger, nobody waits)',
                          'scripts/notify_queue_insert.sql', q, 'diagnostic'),
                   with_idle_listeners(bench, writer(
                       bench, 'INSERT into the q4pg queue, %d listeners idle on the tag'
                       % IDLE_LISTENERS, 'scripts/notify_queue_insert.sql', q, 'diagnostic'))],
                  unit='msg/s')


def with_idle_listeners(bench, subject):
    """`subject` run while IDLE_LISTENERS sessions are registered idle on the
    queue's tag (q4pg_go_idle; on their own channel where the server has
    them): every INSERT runs the trigger, which chooses whom to wake and
    NOTIFYs.  They do not LISTEN (nobody reads the notifications): what is
    measured is the producers' side."""
    def run(c):
        sessions = []
        try:
            for _ in range(IDLE_LISTENERS):
                conn = psycopg2.connect(bench.dsn)
                conn.autocommit = True
                sessions.append(conn)
                with conn.cursor() as cur:
                    try:
                        go_idle = "SELECT q4pg_go_idle('q', 't', true)"
                        cur.execute(go_idle)
                    except psycopg2.errors.UndefinedFunction:     # before 1.2's own channels
                        go_idle = "SELECT q4pg_go_idle('q', 't')"
                        cur.execute(go_idle)
                    cur.execute(go_idle)
                    assert cur.fetchone()[0] == 'may_sleep'
            return subject.run(c)
        finally:
            for conn in sessions:
                conn.close()
    return Subject(subject.label, run, subject.kind, subject.clients)
