"""The q4pg command line, run as a real subprocess against the test cluster.

Every test starts `python -m q4pg` (or the installed console script) with
libpq's PG* variables or --dsn pointing at the test's database, and checks
its stdout, its one-line stderr, its exit status and, through psql or a
psycopg2 connection, what it did to the database.
"""

import datetime
import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.cli.helpers import (PYTHON_M, ROOT, SCRIPT, assert_error, clean_env, enqueue_sql,
                               json_lines, ok, readline, run_command, scalar)

HOSTILE = 'x"; DROP TABLE mq; --'           # a table name
HOSTILE_SQL = '"x""; DROP TABLE mq; --"'    # the same, in SQL syntax for --queue


# ------------------------------------------------------------------ basics

def control_version():
    with open(os.path.join(ROOT, 'q4pg.control')) as f:
        return re.search(r"default_version\s*=\s*'([^']+)'", f.read()).group(1)


@pytest.mark.parametrize('cmd', [PYTHON_M, [SCRIPT]], ids=['python-m', 'console-script'])
def test_version(cmd):
    proc = run_command(cmd, clean_env({}), ['--version'])
    assert ok(proc).strip() == 'q4pg ' + control_version()


def test_help_lists_every_command_and_the_exit_codes():
    out = ok(run_command(PYTHON_M, clean_env({}), ['--help']))
    for command in ('create-queue', 'enqueue', 'dequeue', 'listen', 'list', 'count', 'cancel',
                    'stats', 'set-max-attempts', 'lease', 'ack', 'nack', 'extend',
                    'dead-letters', 'replay', 'purge-dead'):
        assert command in out
        sub = ok(run_command(PYTHON_M, clean_env({}), [command, '--help']))
        assert sub.startswith('usage: q4pg ' + command)
    assert 'Q4PG_DSN' in out and 'Q4PG_QUEUE' in out and 'exit status' in out


def test_console_script_round_trip(env, mq, conn):
    msg_id = int(ok(run_command([SCRIPT], env, ['enqueue', 'jobs', '{"n": 1}'])))
    line = json_lines(ok(run_command([SCRIPT], env, ['dequeue', 'jobs'])))
    assert line == [{'id': msg_id, 'tag': 'jobs', 'data': {'n': 1},
                     'created_at': line[0]['created_at']}]
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


# ---------------------------------------------------------- create-queue

def test_create_queue_defaults(q4pg, psql):
    assert ok(q4pg('create-queue')) == ''
    assert psql("SELECT data_type, data_length FROM q4pg_queue_settings('mq')").stdout == \
        'json|1023\n'


def test_create_queue_settings_and_repeat(q4pg, psql):
    ok(q4pg('--queue', 'notes', 'create-queue', '--data-type', 'TEXT', '--data-length', '10'))
    assert psql("SELECT data_type, data_length FROM q4pg_queue_settings('notes')").stdout == \
        'text|10\n'
    ok(q4pg('--queue', 'notes', 'create-queue', '--data-type', 'text', '--data-length', '10'))
    proc = q4pg('--queue', 'notes', 'create-queue', '--data-type', 'json')
    assert_error(proc, 3, 'already exists')


def test_create_queue_in_a_schema_and_quoted_names(q4pg, psql):
    psql('CREATE SCHEMA app')
    ok(q4pg('--queue', 'app.jobs', 'create-queue', '--data-type', 'jsonb'))
    ok(q4pg('--queue', '"My Queue"', 'create-queue'))
    ok(q4pg('--queue', 'MyQueue', 'create-queue'))  # unquoted: folds to myqueue
    exists = psql("""SELECT string_agg((to_regclass(n) IS NOT NULL)::text, ' ' ORDER BY o)
                       FROM unnest(array['app.jobs', 'public.jobs', 'public."My Queue"',
                                         'public."my queue"', 'public.myqueue',
                                         'public."MyQueue"']) WITH ORDINALITY AS u(n, o)""")
    assert exists.stdout.split() == ['true', 'false', 'true', 'false', 'true', 'false']
    assert psql("SELECT data_type FROM q4pg_queue_settings('app.jobs')").stdout == 'jsonb\n'


def test_create_queue_over_a_plain_table_is_refused(q4pg, psql):
    psql('CREATE TABLE mq (x int)')
    assert_error(q4pg('create-queue'), 3, 'not a q4pg queue')


# ---------------------------------------------------------------- enqueue

def test_enqueue_one_message_verbatim(q4pg, mq, conn):
    out = ok(q4pg('enqueue', 'jobs', '{"b": [1, 2],  "a": "é"}'))
    msg_id = int(out)
    assert out == '%d\n' % msg_id
    with conn.cursor() as cur:
        cur.execute('SELECT tag, data::text FROM mq WHERE id = %s', (msg_id,))
        assert cur.fetchone() == ('jobs', '{"b": [1, 2],  "a": "é"}')  # json keeps the text


def test_enqueue_on_a_text_queue_stores_any_text(q4pg, psql, conn):
    psql("SELECT q4pg_create_queue('notes', 'text')")
    text = 'it\'s "not" JSON; \\ {'
    msg_id = int(ok(q4pg('--queue', 'notes', 'enqueue', 't', text)))
    assert scalar(conn, 'SELECT data FROM notes WHERE id = %s', msg_id) == text


def test_enqueue_refuses_bad_json_and_too_long(q4pg, psql, conn):
    psql("SELECT q4pg_create_queue('mq', 'json', 20)")
    assert_error(q4pg('enqueue', 'jobs', '{not json'), 3)
    assert_error(q4pg('enqueue', 'jobs', '"%s"' % ('x' * 30)), 3, 'longer than')
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def test_enqueue_from_stdin_in_batches(q4pg, mq, conn):
    messages = [json.dumps({'n': i, 's': 'ünïcode %d' % i}) for i in range(2500)]
    out = ok(q4pg('enqueue', 'bulk', input='\n'.join(messages)))  # no final newline
    ids = [int(line) for line in out.splitlines()]
    assert len(ids) == 2500 and ids == sorted(set(ids))
    with conn.cursor() as cur:
        cur.execute("SELECT id, data::text FROM mq WHERE tag = 'bulk' ORDER BY id")
        assert cur.fetchall() == list(zip(ids, messages))


def test_enqueue_from_stdin_keeps_empty_lines_and_spaces_on_text_queues(q4pg, psql, conn):
    psql("SELECT q4pg_create_queue('notes', 'text')")
    lines = ['first', '', '  padded  ', 'tab\there', 'last\r']
    out = ok(q4pg('--queue', 'notes', 'enqueue', 't', input='\n'.join(lines) + '\n'))
    ids = [int(x) for x in out.split()]
    assert len(ids) == 5
    with conn.cursor() as cur:
        cur.execute('SELECT data FROM notes ORDER BY id')
        assert [r[0] for r in cur.fetchall()] == lines


def test_enqueue_from_empty_stdin_does_nothing(q4pg, mq, conn):
    assert ok(q4pg('enqueue', 't', input='')) == ''
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def test_enqueue_from_stdin_stops_at_a_bad_line_and_prints_exactly_what_it_stored(q4pg, mq,
                                                                                conn):
    lines = ['{"n": %d}' % i for i in range(1500)] + ['{bad'] + ['{"n": 0}'] * 10
    proc = q4pg('enqueue', 't', input='\n'.join(lines) + '\n')
    assert_error(proc, 3)
    printed = [int(x) for x in proc.stdout.split()]
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM mq ORDER BY id')
        stored = [r[0] for r in cur.fetchall()]
    assert printed == stored
    assert len(stored) < 1500


def test_enqueue_empty_line_on_a_json_queue_is_skipped(q4pg, mq, conn):
    assert ok(q4pg('enqueue', 't', input='\n')) == ''     # it cannot be JSON: no message
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def test_enqueue_from_stdin_refuses_invalid_utf8(env, mq, conn):
    proc = subprocess.run(PYTHON_M + ['enqueue', 't'], env=env, input=b'"ok"\n"\xff"\n',
                          capture_output=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.decode().startswith('q4pg: error: line 2 of stdin')
    assert scalar(conn, 'SELECT count(*) FROM mq') == len(proc.stdout.split())


def test_enqueue_from_stdin_sends_lines_as_they_come(env, mq, conn):
    """A slow producer (tail -f) gets each line stored without waiting for a full batch."""
    proc = subprocess.Popen(PYTHON_M + ['enqueue', 't'], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b'{"first": true}\n')
        proc.stdin.flush()
        line = readline(proc.stdout, 20)
        assert int(line) == scalar(conn, 'SELECT id FROM mq')
        proc.stdin.write(b'2\n')
        proc.stdin.close()
        assert proc.wait(30) == 0
        assert scalar(conn, 'SELECT count(*) FROM mq') == 2
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- dequeue

def test_dequeue_prints_a_json_line_and_removes_the_message(q4pg, mq, psql, conn):
    first = enqueue_sql(psql, 'jobs', '{"x": [1, "two", null]}')
    enqueue_sql(psql, 'jobs', '"second"')
    enqueue_sql(psql, 'other', '3')
    out = ok(q4pg('dequeue', 'jobs'))
    assert out.endswith('\n') and out.count('\n') == 1
    msg = json.loads(out)
    assert msg['id'] == first and msg['tag'] == 'jobs' and msg['data'] == {'x': [1, 'two', None]}
    created = datetime.datetime.fromisoformat(msg['created_at'])
    assert created.tzinfo is not None
    assert abs((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()) < 60
    assert json.loads(ok(q4pg('dequeue', 'jobs')))['data'] == 'second'
    assert scalar(conn, 'SELECT count(*) FROM mq') == 1


def test_dequeue_on_a_text_queue_prints_the_string(q4pg, psql):
    psql("SELECT q4pg_create_queue('notes', 'text')")
    enqueue_sql(psql, 't', '123', queue='notes')
    assert json.loads(ok(q4pg('--queue', 'notes', 'dequeue', 't')))['data'] == '123'


def test_dequeue_of_an_empty_tag_exits_1_silently(q4pg, mq, psql):
    enqueue_sql(psql, 'other', '1')
    proc = q4pg('dequeue', 'jobs')
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, '', '')


def _closed_pipe():
    """A pipe whose reading end is closed: writing to the other end fails (EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


def test_dequeue_leaves_the_message_when_its_line_cannot_be_written(env, mq, psql, conn):
    msg_id = enqueue_sql(psql, 'jobs', '"keep me"')
    write_end = _closed_pipe()
    try:
        proc = subprocess.run(PYTHON_M + ['dequeue', 'jobs'], env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert_error(proc, 1, str(msg_id))
    assert scalar(conn, 'SELECT count(*) FROM mq WHERE id = %s', msg_id) == 1


# ------------------------------------------------------- list, count, cancel

def test_list_shows_messages_oldest_first_without_taking_them(q4pg, mq, psql, conn):
    ids = [enqueue_sql(psql, tag, data) for tag, data in
           [('a', '{"n":1}'), ('b', '[2]'), ('a', '"three"'), ('a', '4')]]
    everything = json_lines(ok(q4pg('list')))
    assert [m['id'] for m in everything] == ids
    assert [m['data'] for m in everything] == [{'n': 1}, [2], 'three', 4]
    only_a = json_lines(ok(q4pg('list', 'a', '--limit', '2')))
    assert [(m['id'], m['tag']) for m in only_a] == [(ids[0], 'a'), (ids[2], 'a')]
    assert ok(q4pg('list', 'nobody')) == ''
    assert scalar(conn, 'SELECT count(*) FROM mq') == 4


def test_list_on_a_text_queue_prints_strings(q4pg, psql):
    psql("SELECT q4pg_create_queue('notes', 'text')")
    enqueue_sql(psql, 't', '{"looks": "like json"}', queue='notes')
    assert json_lines(ok(q4pg('--queue', 'notes', 'list')))[0]['data'] == '{"looks": "like json"}'


def test_count(q4pg, mq, psql):
    for tag in ('a', 'a', 'b'):
        enqueue_sql(psql, tag, '1')
    assert ok(q4pg('count')) == '3\n'
    assert ok(q4pg('count', 'a')) == '2\n'
    assert ok(q4pg('count', 'c')) == '0\n'


def test_cancel(q4pg, mq, psql, conn):
    keep = enqueue_sql(psql, 't', '1')
    gone = enqueue_sql(psql, 't', '2')
    assert ok(q4pg('cancel', str(gone))) == 'true\n'
    proc = q4pg('cancel', str(gone))
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, 'false\n', '')
    assert scalar(conn, 'SELECT array_agg(id) FROM mq') == [keep]
    assert_error(q4pg('cancel', 'abc'), 2)
    assert_error(q4pg('cancel', str(2**63)), 2)


# ------------------------------------------------------------------ stats

def test_stats_table_and_json(q4pg, mq, psql):
    psql("SELECT q4pg_create_queue('empty_one', 'text')")
    psql('CREATE SCHEMA app')
    psql("SELECT q4pg_create_queue('app.jobs')")
    for tag in ('alpha', 'alpha', 'a much longer tag'):
        enqueue_sql(psql, tag, '1')
    enqueue_sql(psql, 'x', '1', queue='app.jobs')
    # oldest age: how long the oldest due message has been due (run_at)
    psql("UPDATE mq SET created_at = now() - interval '2 hours 5 minutes', "
         "run_at = now() - interval '2 hours 5 minutes' WHERE tag = 'alpha'")

    lines = ok(q4pg('stats')).splitlines()
    header, rows = lines[0], lines[1:]
    assert header.split() == ['queue', 'tag', 'waiting', 'oldest', 'age', 'scheduled', 'leased',
                              'dead']
    age_end = header.index('oldest age') + len('oldest age')
    header = header[:age_end]
    rows = [row[:age_end] for row in rows]
    # Aligned: queue and tag left-aligned, waiting and oldest age right-aligned,
    # every column at the same offsets in every line.
    tag_start = header.index('tag')
    waiting_start = header.index('waiting')
    waiting_end = waiting_start + len('waiting')
    parsed = []
    for row in rows:
        assert len(row) == len(header), (row, header)
        assert row[tag_start - 2:tag_start] == '  '
        assert row[waiting_end - 1].isdigit() and row[waiting_end:waiting_end + 2] == '  '
        parsed.append((row[:tag_start].strip(), row[tag_start:waiting_start].strip(),
                       row[waiting_start:waiting_end].strip(), row[waiting_end:].strip()))
    assert [p[:3] for p in parsed] == [('app.jobs', 'x', '1'),
                                       ('empty_one', '', '0'),
                                       ('mq', 'a much longer tag', '1'),
                                       ('mq', 'alpha', '2')]
    assert parsed[3][3] == '2h05m'
    assert parsed[1][3] == '-'

    stats = json_lines(ok(q4pg('stats', '--json')))
    by_key = {(s['queue'], s['tag']): s for s in stats}
    assert set(by_key) == {('app.jobs', 'x'), ('empty_one', None), ('mq', 'a much longer tag'),
                           ('mq', 'alpha')}
    alpha = by_key[('mq', 'alpha')]
    assert alpha['waiting'] == 2
    assert 2 * 3600 + 5 * 60 <= alpha['oldest_age_seconds'] < 2 * 3600 + 6 * 60
    datetime.datetime.fromisoformat(alpha['oldest_created_at'])
    assert by_key[('empty_one', None)]['waiting'] == 0


def test_stats_with_no_queues_prints_just_the_header(q4pg):
    assert ok(q4pg('stats')).split() == ['queue', 'tag', 'waiting', 'oldest', 'age',
                                         'scheduled', 'leased', 'dead']
    assert ok(q4pg('stats', '--json')) == ''


def test_consumers_shows_open_dequeue_transactions(q4pg, mq, psql, dsn):
    import psycopg2
    enqueue_sql(psql, 't', '1')
    assert ok(q4pg('consumers')).split() == ['queue', 'pid', 'xact', 'age', 'state', 'application']
    holder = psycopg2.connect(dsn + ' application_name=slow-worker')
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT * FROM q4pg_dequeue('mq', 't')")
            assert cur.fetchone() is not None
            cur.execute('SELECT pg_backend_pid()')
            pid = cur.fetchone()[0]
        rows = ok(q4pg('consumers')).splitlines()[1:]
        assert len(rows) == 1
        assert rows[0].split()[:2] == ['mq', str(pid)]
        assert 'idle in transaction' in rows[0] and rows[0].endswith('slow-worker')
        (row,) = json_lines(ok(q4pg('consumers', '--json')))
        assert (row['queue'], row['pid'], row['application_name']) == ('mq', pid, 'slow-worker')
        assert row['xact_age_seconds'] >= 0
    finally:
        holder.rollback()
        holder.close()
    assert ok(q4pg('consumers', '--json')) == ''


# ----------------------------------------------------------------- listen

def _probe(proc, psql):
    """Waits until the listen process `proc` is running its loop.

    Enqueues a message of its tag and reads the line it prints: from then on
    the listener has acknowledged it or is about to, and waits for the next.
    """
    probe = enqueue_sql(psql, 'jobs', '"probe"')
    assert json.loads(readline(proc.stdout, 30))['id'] == probe
    return probe


def test_listen_is_woken_by_a_psql_producer(spawn, mq, psql, conn):
    proc = spawn('listen', 'jobs', '--limit', '3')
    _probe(proc, psql)
    time.sleep(1)  # let it settle into its wait
    first = enqueue_sql(psql, 'jobs', '{"n": 1}')
    committed = time.monotonic()
    line = json.loads(readline(proc.stdout, 20))
    # Well under the client's 5 s poll interval: the NOTIFY woke it.
    assert time.monotonic() - committed < 3
    assert (line['id'], line['tag'], line['data']) == (first, 'jobs', {'n': 1})
    enqueue_sql(psql, 'other', '0')  # another tag: not for this listener
    second = enqueue_sql(psql, 'jobs', '"two"')
    assert json.loads(readline(proc.stdout, 20))['id'] == second
    assert proc.wait(20) == 0
    assert proc.stdout.read() == b'' and proc.stderr.read() == b''
    assert scalar(conn, 'SELECT array_agg(tag) FROM mq') == ['other']


def test_listen_limit_leaves_the_rest(q4pg, mq, psql, conn):
    ids = [enqueue_sql(psql, 'jobs', str(n)) for n in range(3)]
    out = ok(q4pg('listen', 'jobs', '--limit', '2', timeout=30))
    assert [m['id'] for m in json_lines(out)] == ids[:2]
    assert scalar(conn, 'SELECT array_agg(id) FROM mq') == ids[2:]


def test_listen_timeout(q4pg, mq, psql):
    started = time.monotonic()
    proc = q4pg('listen', 'jobs', '--timeout', '1', timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, '', '')
    assert 0.9 < time.monotonic() - started < 15
    enqueue_sql(psql, 'jobs', '"x"')
    out = ok(q4pg('listen', 'jobs', '--timeout', '1', timeout=30))
    assert [m['data'] for m in json_lines(out)] == ['x']


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_listen_stops_cleanly_on_a_signal_while_waiting(spawn, mq, psql, conn, sig):
    proc = spawn('listen', 'jobs')
    _probe(proc, psql)
    time.sleep(1)  # well into its wait
    proc.send_signal(sig)
    assert proc.wait(20) == 0
    assert proc.stdout.read() == b'' and proc.stderr.read() == b''
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


@pytest.mark.parametrize('round', range(5))
def test_listen_acknowledges_what_it_printed_before_a_signal(spawn, mq, psql, conn, round):
    """SIGINT right after a line came out: that message is done, not given back."""
    proc = spawn('listen', 'jobs')
    _probe(proc, psql)
    msg_id = enqueue_sql(psql, 'jobs', '"done"')
    assert json.loads(readline(proc.stdout, 20))['id'] == msg_id
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    assert proc.stderr.read() == b''
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def test_listen_finishes_the_message_at_hand_on_a_signal(spawn, mq, psql, conn):
    """A signal while a message is being written: printed, acknowledged, exit 0."""
    psql("SELECT q4pg_enqueue_many('mq', 'jobs', array_fill('\"m\"'::text, array[500]))")
    proc = spawn('listen', 'jobs')
    first = json.loads(readline(proc.stdout, 30))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert proc.stderr.read() == b''
    printed = [first['id']] + [json.loads(line)['id'] for line in proc.stdout.read().splitlines()]
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM mq ORDER BY id')
        left = [r[0] for r in cur.fetchall()]
    assert sorted(printed + left) == list(range(printed[0], printed[0] + 500))
    assert len(left) > 0  # it stopped early


def test_listen_leaves_the_message_when_its_line_cannot_be_written(spawn, mq, psql, conn):
    msg_id = enqueue_sql(psql, 'jobs', '"keep me"')
    write_end = _closed_pipe()
    try:
        proc = spawn('listen', 'jobs', '--limit', '1', stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.wait(30) == 1
    stderr = proc.stderr.read().decode()
    assert stderr.startswith('q4pg: error: ') and stderr.count('\n') == 1
    assert str(msg_id) in stderr
    assert scalar(conn, 'SELECT count(*) FROM mq WHERE id = %s', msg_id) == 1


# ------------------------------------------------- connection and --queue

def test_dsn_option_wins_over_the_pg_variables(dsn, mq, psql):
    enqueue_sql(psql, 't', '1')
    broken = clean_env({'PGHOST': '127.0.0.1', 'PGPORT': '1'})
    assert ok(run_command(PYTHON_M, broken, ['--dsn', dsn, 'count'])) == '1\n'
    assert ok(run_command(PYTHON_M, broken, ['count', '--dsn', dsn])) == '1\n'  # after the command too
    assert ok(run_command(PYTHON_M, dict(broken, Q4PG_DSN=dsn), ['count'])) == '1\n'
    proc = run_command(PYTHON_M, dict(broken, Q4PG_DSN='host=127.0.0.1 port=1'), ['--dsn', dsn, 'count'])
    assert ok(proc) == '1\n'


def test_queue_from_the_environment_and_after_the_command(q4pg, psql):
    psql("SELECT q4pg_create_queue('other')")
    enqueue_sql(psql, 't', '1', queue='other')
    assert ok(q4pg('count', env_extra={'Q4PG_QUEUE': 'other'})) == '1\n'
    assert ok(q4pg('count', '--queue', 'other')) == '1\n'
    proc = q4pg('--queue', 'other', 'count', env_extra={'Q4PG_QUEUE': 'nope'})
    assert ok(proc) == '1\n'


def test_hostile_queue_name_is_a_name_not_sql(q4pg, mq, psql, conn):
    keep = enqueue_sql(psql, 't', '"keep"')
    ok(q4pg('--queue', HOSTILE_SQL, 'create-queue', '--data-type', 'text'))
    assert scalar(conn, "SELECT count(*) FROM pg_class WHERE relname = %s AND relkind IN ('r', 'p')",
                  HOSTILE) == 1
    msg_id = int(ok(q4pg('--queue', HOSTILE_SQL, 'enqueue', "t'; --", "'); DROP TABLE mq; --")))
    assert ok(q4pg('--queue', HOSTILE_SQL, 'count')) == '1\n'
    listed = json_lines(ok(q4pg('--queue', HOSTILE_SQL, 'list')))
    assert [(m['id'], m['tag'], m['data']) for m in listed] == \
        [(msg_id, "t'; --", "'); DROP TABLE mq; --")]
    assert json.loads(ok(q4pg('--queue', HOSTILE_SQL, 'dequeue', "t'; --")))['id'] == msg_id
    stats = json_lines(ok(q4pg('stats', '--json')))
    assert {(s['queue'], s['waiting']) for s in stats} == {('mq', 1), (HOSTILE_SQL, 0)}
    # Not valid SQL names: refused by parse_ident, nothing run.
    assert_error(q4pg('--queue', 'mq; DROP TABLE mq', 'count'), 3, '--queue')
    assert_error(q4pg('--queue', "mq'; DROP TABLE mq; --", 'dequeue', 't'), 3, '--queue')
    assert_error(q4pg('--queue', 'a.b.c', 'count'), 3, '--queue')
    assert scalar(conn, 'SELECT array_agg(id) FROM mq') == [keep]


# ------------------------------------------------------------ exit codes

def test_no_such_queue_exits_3(q4pg):
    for args in (['enqueue', 't', '1'], ['enqueue', 't'], ['dequeue', 't'], ['list'],
                 ['count'], ['cancel', '1'], ['listen', 't', '--timeout', '0']):
        assert_error(q4pg('--queue', 'nope', *args, input='1\n'), 3, 'nope')


def test_a_table_that_is_no_queue_exits_3(q4pg, psql):
    psql('CREATE TABLE plain (id bigint, tag text, data json, created_at timestamptz)')
    assert_error(q4pg('--queue', 'plain', 'dequeue', 't'), 3, 'not a q4pg queue')
    assert_error(q4pg('--queue', 'plain', 'enqueue', 't', '1'), 3, 'not a q4pg queue')


def test_no_extension_exits_3_and_says_create_extension(bare_dsn):
    env = clean_env({})
    for args in (['create-queue'], ['enqueue', 't', '1'], ['dequeue', 't'], ['list'],
                 ['count'], ['cancel', '1'], ['stats'], ['listen', 't', '--timeout', '0']):
        proc = run_command(PYTHON_M, env, ['--dsn', bare_dsn] + args)
        assert_error(proc, 3, 'CREATE EXTENSION q4pg')


def test_unreachable_server_exits_4(mq):
    env = clean_env({'PGHOST': '127.0.0.1', 'PGPORT': '1', 'PGCONNECT_TIMEOUT': '5'})
    for args in (['count'], ['stats'], ['dequeue', 't'], ['enqueue', 't', '1'], ['create-queue']):
        assert_error(run_command(PYTHON_M, env, args), 4, 'port 1')
    assert_error(run_command(PYTHON_M, clean_env({}), ['--dsn', 'host=127.0.0.1 port=1', 'count']), 4)


@pytest.mark.parametrize('args', [
    [],
    ['frobnicate'],
    ['enqueue'],
    ['dequeue'],
    ['cancel'],
    ['listen', 't', '--limit', '0'],
    ['listen', 't', '--timeout', '-1'],
    ['list', '--limit', 'x'],
    ['create-queue', '--data-type', 'xml'],
    ['create-queue', '--data-length', '0'],
    ['count', 'a', 'b'],
    ['--dsn', 'not a dsn', 'count'],
    ['--dsn', 'nosuchoption=1', 'count'],
], ids=lambda a: ' '.join(a) or 'nothing')
def test_usage_errors_exit_2_with_one_line(q4pg, args):
    assert_error(q4pg(*args), 2)


def test_refused_arguments_exit_3(q4pg, mq, conn):
    # A NUL character cannot go into PostgreSQL text: the client refuses it.
    assert_error(q4pg('enqueue', 't', input='"a\x00b"\n'), 3)
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def test_no_permission_exits_3(cluster, dbname, mq, psql):
    role = 'q4pg_cli_' + dbname[-12:]
    psql('CREATE ROLE %s LOGIN' % role)
    try:
        env = clean_env(dict(cluster.env(), PGDATABASE=dbname, PGUSER=role))
        for args in (['count'], ['enqueue', 't', '1'], ['dequeue', 't']):
            assert_error(run_command(PYTHON_M, env, args), 3, 'permission denied')
        psql('GRANT SELECT ON mq TO %s' % role)
        assert ok(run_command(PYTHON_M, env, ['count'])) == '0\n'
    finally:
        psql('DROP OWNED BY %s' % role)
        psql('DROP ROLE %s' % role)
