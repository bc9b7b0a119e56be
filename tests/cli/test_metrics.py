"""q4pg metrics: every metric against a known state, the exposition read by
prometheus_client's own parser, --listen, a plain role, the missing extra,
and the Grafana dashboard of docs/ naming only metrics that exist."""

import json
import os
import re
import signal
import urllib.request

import psycopg2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.helpers import ROOT, assert_error, ok, readline
from tests.helpers import wait_until

DASHBOARD = os.path.join(ROOT, 'docs', 'grafana-q4pg.json')
MONITORING = os.path.join(ROOT, 'docs', 'monitoring.md')


def parse(text):
    """{(sample name, frozenset of labels): value}, and the family names (TYPE lines)."""
    samples, families = {}, set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def scrape(q4pg, *args, env_extra=None):
    return parse(ok(q4pg('metrics', *args, env_extra=env_extra)))[0]


@pytest.fixture
def sessions(dsn):
    """connect(application_name, isolation=None) -> an open psycopg2 connection, closed
    after the test (autocommit unless isolation is given)."""
    opened = []

    def connect(app, isolation=None, user=None):
        c = psycopg2.connect(dsn + ' application_name=' + app + (' user=' + user if user else ''))
        if isolation:
            c.set_session(isolation_level=isolation)
        else:
            c.autocommit = True
        opened.append(c)
        return c

    yield connect
    for c in opened:
        c.close()


@pytest.fixture
def known_state(psql):
    """Queue mq (max_attempts 1): tag a 3 due and 1 leased (one dequeued before), tag b 2
    scheduled, tag c 1 dead; 8 rows inserted, 1 deleted, 2 updated.  Queue quiet: empty."""
    psql("SELECT q4pg_create_queue('mq', max_attempts => 1), q4pg_create_queue('quiet')")
    psql("SELECT q4pg_enqueue('mq', 'a', '1') FROM generate_series(1, 5)")
    psql("SELECT q4pg_enqueue('mq', 'b', '2', now() + interval '1 hour') FROM generate_series(1, 2)")
    psql("SELECT q4pg_enqueue('mq', 'c', '3')")
    psql("SELECT id FROM q4pg_dequeue('mq', 'a')")
    psql("SELECT id FROM q4pg_lease('mq', 'a', 1, '1 hour')")
    psql("BEGIN; SELECT q4pg_fail('mq', id, 'boom') FROM q4pg_take('mq', 'c'); COMMIT")


def test_every_metric_against_a_known_state(q4pg, known_state, sessions):
    # the counters come from the table statistics, flushed by each session as it ends
    wait_until(lambda: value(scrape(q4pg), 'q4pg_rows_inserted_total', queue='mq') == 8,
               what='the statistics of 8 inserts')
    s = scrape(q4pg)
    for state, n in (('due', 3), ('scheduled', 2), ('leased', 1), ('dead', 1)):
        assert value(s, 'q4pg_messages', queue='mq', state=state) == n, state
        assert value(s, 'q4pg_messages', queue='quiet', state=state) == 0, state
    assert value(s, 'q4pg_rows_deleted_total', queue='mq') == 1
    assert value(s, 'q4pg_rows_updated_total', queue='mq') == 2
    assert value(s, 'q4pg_rows_inserted_total', queue='quiet') == 0
    assert value(s, 'q4pg_tags', queue='mq') == 3
    assert value(s, 'q4pg_tags', queue='quiet') == 0
    assert value(s, 'q4pg_oldest_due_age_seconds', queue='mq') > 0
    assert value(s, 'q4pg_oldest_due_age_seconds', queue='quiet') == 0
    assert value(s, 'q4pg_table_size_bytes', queue='mq') > 0
    assert value(s, 'q4pg_table_live_rows', queue='mq') == 7
    assert value(s, 'q4pg_table_dead_rows', queue='mq') >= 1
    assert value(s, 'q4pg_autovacuums_total', queue='mq') == 0
    assert value(s, 'q4pg_last_autovacuum_timestamp_seconds', queue='mq') is None  # never
    assert value(s, 'q4pg_up') == 1
    assert value(s, 'q4pg_scrape_duration_seconds') > 0
    # no tags unless asked for; then the N tags with the most messages
    assert not [k for k in s if k[0].startswith('q4pg_tag_')]
    s = scrape(q4pg, '--tags', '2')
    assert value(s, 'q4pg_tag_messages', queue='mq', tag='a', state='due') == 3
    assert value(s, 'q4pg_tag_messages', queue='mq', tag='a', state='leased') == 1
    assert value(s, 'q4pg_tag_messages', queue='mq', tag='b', state='scheduled') == 2
    assert value(s, 'q4pg_tag_messages', queue='mq', tag='c', state='dead') is None  # capped
    assert value(s, 'q4pg_tag_oldest_due_age_seconds', queue='mq', tag='a') > 0
    assert value(s, 'q4pg_tag_oldest_due_age_seconds', queue='mq', tag='b') == 0

    # a consumer holding a message, an idle listener, a transaction pinning the horizon
    consumer = sessions('consumer-1')
    with consumer.cursor() as cur:
        cur.execute("BEGIN; SELECT id FROM q4pg_dequeue('mq', 'a')")
        cur.execute('SELECT pg_backend_pid()')
        consumer_pid = cur.fetchone()[0]
    listener = sessions('listener-1')
    with listener.cursor() as cur:
        cur.execute("LISTEN x; SELECT q4pg_go_idle('mq', 'a'), q4pg_go_idle('mq', 'a')")
        assert cur.fetchone()[1] == 'may_sleep'
        cur.execute('SELECT pg_backend_pid()')
        listener_pid = cur.fetchone()[0]
    pinner = sessions('pinner', isolation='REPEATABLE READ')
    with pinner.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        pinner_pid = cur.fetchone()[0]
    wait_until(lambda: value(scrape(q4pg, '--older-than', '0.3'), 'q4pg_warnings',
                             warning='consumer_held') == 1, what='the consumer warned about')
    s = scrape(q4pg, '--older-than', '0.3')
    assert value(s, 'q4pg_consumers', queue='mq') == 1
    assert value(s, 'q4pg_idle_listeners', queue='mq') == 1
    assert value(s, 'q4pg_messages', queue='mq', state='due') == 3   # its delete is not committed
    assert value(s, 'q4pg_warnings', warning='horizon') == 2          # the consumer and the pinner
    assert value(s, 'q4pg_warnings', warning='horizon_not_visible') == 0
    assert value(s, 'q4pg_xmin_horizon_age_seconds', holder='backend') >= 0.3
    assert value(s, 'q4pg_xmin_horizon_age_xids', holder='replication_slot') == 0
    oldest = [dict(k[1]) for k in s if k[0] == 'q4pg_xmin_horizon_oldest_info']
    assert len(oldest) == 1 and oldest[0]['holder'] == 'backend'
    assert oldest[0]['pid'] in (str(consumer_pid), str(pinner_pid))
    # the warnings in SQL name the pinner's pid, application and state
    with sessions('checker').cursor() as cur:
        cur.execute("SELECT warning, name, state FROM q4pg_warnings('0') WHERE pid = %s",
                    (pinner_pid,))
        assert cur.fetchall() == [('horizon', 'pinner', 'idle in transaction')]

    # the consumer and the listener killed: nothing held, nobody listening
    with sessions('killer').cursor() as cur:
        cur.execute('SELECT pg_terminate_backend(%s), pg_terminate_backend(%s)',
                    (consumer_pid, listener_pid))
    wait_until(lambda: value(scrape(q4pg), 'q4pg_consumers', queue='mq') == 0,
               what='the consumer gone')
    s = scrape(q4pg, '--older-than', '0')
    assert value(s, 'q4pg_idle_listeners', queue='mq') == 0
    assert value(s, 'q4pg_messages', queue='mq', state='due') == 3
    assert value(s, 'q4pg_warnings', warning='consumer_held') == 0
    assert value(s, 'q4pg_warnings', warning='horizon') == 1          # the pinner still
    pinner.rollback()
    s = scrape(q4pg, '--older-than', '0')
    assert value(s, 'q4pg_warnings', warning='horizon') == 0
    assert not [k for k in s if k[0] == 'q4pg_xmin_horizon_oldest_info']


def test_a_plain_role_is_told_what_it_cannot_see(q4pg, psql, sessions, dbname):
    psql("SELECT q4pg_create_queue('mq'); DROP ROLE IF EXISTS q4pg_watcher; "
         "CREATE ROLE q4pg_watcher LOGIN; GRANT SELECT ON mq TO q4pg_watcher")
    pinner = sessions('pinner', isolation='REPEATABLE READ')
    with pinner.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        pid = cur.fetchone()[0]
    watcher = sessions('watcher', user='q4pg_watcher')
    with watcher.cursor() as cur:
        cur.execute("SELECT warning, name, state, age FROM q4pg_warnings('0') WHERE pid = %s",
                    (pid,))
        assert cur.fetchall() == [('horizon_not_visible', 'pinner', None, None)]
    s = scrape(q4pg, '--older-than', '0', env_extra={'PGUSER': 'q4pg_watcher'})
    assert value(s, 'q4pg_up') == 1
    assert value(s, 'q4pg_warnings', warning='horizon_not_visible') == 1
    assert value(s, 'q4pg_warnings', warning='horizon') == 0
    assert value(s, 'q4pg_messages', queue='mq', state='due') == 0
    pinner.rollback()
    psql('DROP OWNED BY q4pg_watcher; DROP ROLE q4pg_watcher')


def test_listen_serves_the_metrics_and_stops_on_sigterm(spawn, mq, psql):
    psql("SELECT q4pg_enqueue('mq', 'a', '1')")
    proc = spawn('metrics', '--listen', '127.0.0.1:0', '--count-every', '0')
    line = readline(proc.stdout, 30).decode()
    url = re.match(r'serving (http://127\.0\.0\.1:\d+/metrics)$', line.strip()).group(1)
    for due in (1, 2, 3):                   # read anew at each scrape
        samples = fetch(url)
        assert value(samples, 'q4pg_up') == 1
        assert value(samples, 'q4pg_messages', queue='mq', state='due') == due
        assert value(samples, 'q4pg_messages_counted_age_seconds') == 0
        psql("SELECT q4pg_enqueue('mq', 'a', '1')")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert proc.stderr.read() == b''


def test_listen_counts_at_most_every_count_every_seconds(spawn, mq, psql, sessions):
    psql("SELECT q4pg_enqueue('mq', 'a', '1')")
    proc = spawn('metrics', '--listen', '127.0.0.1:0', '--count-every', '3600',
                 '--older-than', '0')
    url = readline(proc.stdout, 30).decode().split()[1]
    assert value(fetch(url), 'q4pg_messages', queue='mq', state='due') == 1
    psql("SELECT q4pg_enqueue('mq', 'a', '1')")
    pinner = sessions('pinner', isolation='REPEATABLE READ')
    pinner.cursor().execute('SELECT 1')
    samples = fetch(url)
    assert value(samples, 'q4pg_messages', queue='mq', state='due') == 1     # counted before
    assert value(samples, 'q4pg_messages_counted_age_seconds') > 0
    assert value(samples, 'q4pg_warnings', warning='horizon') == 1           # read now
    # a new queue is counted at once
    psql("SELECT q4pg_create_queue('mq2')")
    psql("SELECT q4pg_enqueue('mq2', 'a', '1')")
    samples = fetch(url)
    assert value(samples, 'q4pg_messages', queue='mq2', state='due') == 1
    assert value(samples, 'q4pg_messages', queue='mq', state='due') == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return parse(response.read().decode())[0]


def test_listen_reports_a_database_away_as_down(spawn, env, cluster):
    from tools.pgcluster import _free_port
    env['PGPORT'] = str(_free_port())       # nothing listens there
    proc = spawn('metrics', '--listen', '127.0.0.1:0')
    url = readline(proc.stdout, 30).decode().split()[1]
    samples = fetch(url)
    assert value(samples, 'q4pg_up') == 0
    assert not [k for k in samples if k[0] == 'q4pg_messages']
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert b'scrape failed' in proc.stderr.read()


def test_bad_arguments_and_missing_pieces(q4pg, tmp_path, env):
    assert_error(q4pg('metrics', '--listen', 'nope'), 2, '--listen', 'HOST:PORT')
    assert_error(q4pg('metrics', '--listen', '127.0.0.1:70000'), 2, '--listen')
    assert_error(q4pg('metrics', '--tags', '-1'), 2, '--tags')
    assert_error(q4pg('top', '--interval', '0'), 2, '--interval')
    assert_error(q4pg('metrics', '--older-than', 'inf'), 2, '--older-than')
    # a database without q4pg
    assert_error(q4pg('metrics', env_extra={'PGDATABASE': 'postgres'}), 3,
                 'q4pg is not installed')
    # without the optional packages: what to install
    for name in ('prometheus_client', 'rich'):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / '__init__.py').write_text('raise ImportError("hidden")\n')
    hidden = {'PYTHONPATH': str(tmp_path)}
    assert_error(q4pg('metrics', env_extra=hidden), 3, "pip install 'q4pg[metrics]'")
    assert_error(q4pg('top', '--once', env_extra=hidden), 3, "pip install 'q4pg[top]'")


def exposed_names(q4pg, psql, sessions):
    """The family and sample names of an exposition where every metric has a value."""
    psql("SELECT q4pg_create_queue('mq'); SELECT q4pg_enqueue('mq', 'a', '1')")
    pinner = sessions('pinner', isolation='REPEATABLE READ')
    pinner.cursor().execute('SELECT 1')
    samples, families = parse(ok(q4pg('metrics', '--tags', '5')))
    return families | {name for name, _ in samples}


def test_the_dashboard_and_the_docs_name_only_exposed_metrics(q4pg, psql, sessions):
    names = exposed_names(q4pg, psql, sessions)
    with open(DASHBOARD, encoding='utf-8') as f:
        dashboard = json.load(f)
    exprs = [t['expr'] for p in dashboard['panels'] for t in p.get('targets', [])]
    assert len(exprs) >= 8
    exprs += [v['definition'] for v in dashboard['templating']['list']]
    used = {n for e in exprs for n in re.findall(r'\bq4pg_[a-z_]+', e)}
    assert used and used <= names, used - names
    # the reference table of docs/monitoring.md lists every metric, and only those
    with open(MONITORING, encoding='utf-8') as f:
        table = set(re.findall(r'^\| `(q4pg_[a-z_]+)`', f.read(), re.M))
    # (a counter's family is named without _total: the table names its samples)
    assert table == {n for n in names if n + '_total' not in names}, table ^ names
