"""Leases expiring without acks (issue 19's early warning) against a known
state: q4pg_metrics' expired and q4pg_warnings' leases_expired in SQL, the
gauge q4pg_leases_expired and q4pg_warnings{warning="leases_expired"} read by
prometheus_client's parser, q4pg top; a lease acked in time is not counted;
a SIGKILLed consumer's lease shows up once it runs out."""

import re
import signal

import psycopg2
import pytest

from tests.cli.helpers import ok, readline
from tests.cli.test_metrics import fetch, scrape, value
from tests.helpers import wait_until
from tests.reliability.helpers import WorkerPool


def metrics(conn, tags=0):
    """{(queue, tag): (due, leased, dead, expired)} of q4pg_metrics(tags)."""
    with conn.cursor() as cur:
        cur.execute('SELECT queue::text, tag, due, leased, dead, expired FROM q4pg_metrics(%s)',
                    (tags,))
        return {(r[0], r[1]): r[2:] for r in cur.fetchall()}


def expired_warnings(conn, **args):
    """{queue: (age in seconds, detail)} of q4pg_warnings(**args)' leases_expired rows."""
    names = ', '.join('%s => %%(%s)s' % (k, k) for k in args)
    with conn.cursor() as cur:
        cur.execute('SELECT queue::text, extract(epoch FROM age), detail FROM q4pg_warnings(%s) '
                    "WHERE warning = 'leases_expired'" % names, args)
        return {r[0]: (float(r[1]), r[2]) for r in cur.fetchall()}


def test_leases_that_ran_out_are_counted_and_warned_about(q4pg, psql, conn):
    psql("SELECT q4pg_create_queue('mq', max_attempts => 3), "
         "q4pg_create_queue('last', max_attempts => 1), q4pg_create_queue('quiet')")
    psql("SELECT q4pg_enqueue('mq', 'a', '1') FROM generate_series(1, 6)")
    psql("SELECT q4pg_enqueue('mq', 'b', '2'), q4pg_enqueue('last', 'a', '3')")
    with conn.cursor() as cur:
        # 4 leases of 2 s, one acked at once; a lease of an hour; the last allowed attempt
        cur.execute("SELECT id, lease_token FROM q4pg_lease('mq', 'a', 4, '2 seconds')")
        leases = cur.fetchall()
        cur.execute('SELECT q4pg_ack(%s, %s, %s)', ('mq',) + leases[0])
        assert cur.fetchone()[0] is True
        cur.execute("SELECT count(*) FROM q4pg_lease('mq', 'b', 1, '1 hour')")
        cur.execute("SELECT count(*) FROM q4pg_lease('last', 'a', 1, '2 seconds')")
    # before the leases run out: none expired, no warning
    assert metrics(conn)[('mq', None)] == (2, 4, 0, 0)
    assert expired_warnings(conn) == {}

    wait_until(lambda: [metrics(conn)[(q, None)][3] for q in ('mq', 'last')] == [3, 1],
               what='the 4 leases run out')
    # mq: the 3 unacked are due again (and expired), the acked one gone, b's lease live
    assert metrics(conn, tags=5) == {
        ('mq', None): (5, 1, 0, 3), ('mq', 'a'): (5, 0, 0, 3), ('mq', 'b'): (0, 1, 0, 0),
        ('last', None): (0, 0, 1, 1), ('last', 'a'): (0, 0, 1, 1),   # dead on its last attempt
        ('quiet', None): (0, 0, 0, 0)}
    warned = expired_warnings(conn)
    assert sorted(warned) == ['last', 'mq']
    assert warned['mq'][0] > 0
    assert warned['mq'][1] == '3 message(s) whose lease ran out without an ack or a nack'
    assert sorted(expired_warnings(conn, expired_leases=2)) == ['mq']
    assert expired_warnings(conn, expired_leases=None) == {}
    with pytest.raises(psycopg2.errors.InvalidParameterValue, match='expired_leases must be'):
        expired_warnings(conn, expired_leases=0)

    # the exposition, as Prometheus parses it
    s = scrape(q4pg)
    assert value(s, 'q4pg_leases_expired', queue='mq') == 3
    assert value(s, 'q4pg_leases_expired', queue='last') == 1
    assert value(s, 'q4pg_leases_expired', queue='quiet') == 0
    assert value(s, 'q4pg_messages', queue='mq', state='due') == 5     # counted there too
    assert value(s, 'q4pg_warnings', warning='leases_expired') == 2
    s = scrape(q4pg, '--expired-leases', '2')
    assert value(s, 'q4pg_warnings', warning='leases_expired') == 1

    # a new lease ends it; a dead letter stays expired until replayed
    psql("SELECT count(*) FROM q4pg_lease('mq', 'a', 5, '1 hour')")
    psql("SELECT q4pg_replay('last')")
    assert metrics(conn)[('mq', None)] == (0, 6, 0, 0)
    assert metrics(conn)[('last', None)] == (1, 0, 0, 0)
    s = scrape(q4pg)
    assert value(s, 'q4pg_leases_expired', queue='mq') == 0
    assert value(s, 'q4pg_warnings', warning='leases_expired') == 0


def test_a_killed_consumers_lease_shows_up(q4pg, psql, conn, dsn, tmp_path):
    psql("SELECT q4pg_create_queue('mq')")
    psql("""SELECT q4pg_enqueue('mq', 't', '{"n": 1}')""")
    pool = WorkerPool()
    try:
        # it leases the message for 1.5 s, sleeps past the lease: killed meanwhile
        worker = pool.start('consumer', 'lease-consume', str(tmp_path), dsn=dsn, lease=1.5,
                            expire_rate=1.0)
        wait_until(lambda: any(e['ev'] == 'sleep' for e in worker.events()) or not worker.alive(),
                   what='the consumer holding its lease')
        assert worker.alive(), worker.stderr()
        worker.kill(signal.SIGKILL)
        lease = next(e for e in worker.events() if e['ev'] == 'lease')
    finally:
        pool.kill_all()
    with conn.cursor() as cur:          # its lease still set, nobody acked or nacked
        cur.execute('SELECT lease_token::text FROM mq WHERE id = %s', (lease['id'],))
        assert cur.fetchone()[0] == lease['token']
    wait_until(lambda: value(scrape(q4pg), 'q4pg_leases_expired', queue='mq') == 1,
               what='the lease run out')
    s = scrape(q4pg)
    assert value(s, 'q4pg_warnings', warning='leases_expired') == 1
    assert value(s, 'q4pg_messages', queue='mq', state='due') == 1
    # q4pg top: the expired column and the warning
    out = ok(q4pg('top', '--once'))
    row = next(line for line in out.splitlines() if ' mq ' in line)
    assert [c.strip() for c in row.split('│')[2:7]] == ['1', '0', '0', '0', '1'], row
    assert re.search(r'! leases_expired on mq: 1 message\(s\) whose lease ran out without an '
                     r'ack or a nack, the oldest \S+ ago', out), out


def test_served_between_counts_the_warning_stays(spawn, psql, conn):
    psql("SELECT q4pg_create_queue('mq')")
    psql("SELECT q4pg_enqueue('mq', 'a', '1')")
    psql("SELECT count(*) FROM q4pg_lease('mq', 'a', 1, '1 hour')")
    psql("UPDATE mq SET run_at = now() - interval '1 second'")     # the lease's end passed
    proc = spawn('metrics', '--listen', '127.0.0.1:0', '--count-every', '3600')
    url = readline(proc.stdout, 30).decode().split()[1]
    for _ in range(2):          # counted, then read between counts: the counted warning kept
        samples = fetch(url)
        assert value(samples, 'q4pg_leases_expired', queue='mq') == 1
        assert value(samples, 'q4pg_warnings', warning='leases_expired') == 1
    assert value(samples, 'q4pg_messages_counted_age_seconds') > 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
