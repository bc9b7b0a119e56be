"""q4pg enqueue from standard input (issue 10.6): a refused line is named by its
number, with how many messages were stored; blank lines are skipped on json
queues (they cannot be JSON); null is refused (issue 10.3)."""

from tests.cli.helpers import assert_error, ok, scalar


def stored(conn):
    with conn.cursor() as cur:
        cur.execute('SELECT id, data::text FROM mq ORDER BY id')
        return cur.fetchall()


def test_a_bad_line_is_named_and_its_batch_stored_none(q4pg, mq, conn):
    proc = q4pg('enqueue', 't', input='1\n2\n3\n{bad\n5\n')
    line = assert_error(proc, 3, 'line 4 of stdin', 'invalid input syntax for type json',
                        '0 message(s) stored', 'none from line 1 on')
    assert proc.stdout == ''
    assert stored(conn) == [], line


def test_a_bad_line_in_the_second_batch(q4pg, mq, conn):
    lines = ['{"n": %d}' % n for n in range(1500)]
    lines[1234] = '"%s"' % ('x' * 2000)        # longer than the queue's 1023 characters
    proc = q4pg('enqueue', 't', input='\n'.join(lines) + '\n')
    assert_error(proc, 3, 'line 1235 of stdin', 'longer than', '1000 message(s) stored',
                 'none from line 1001 on')
    printed = [int(x) for x in proc.stdout.split()]
    assert [row[0] for row in stored(conn)] == printed and len(printed) == 1000


def test_blank_lines_are_skipped_on_json_queues(q4pg, mq, conn):
    out = ok(q4pg('enqueue', 't', input='1\n\n  \n\t\n2\n\n'))
    assert len(out.split()) == 2
    assert [row[1] for row in stored(conn)] == ['1', '2']


def test_a_trailing_empty_line_keeps_the_line_before(q4pg, mq, conn):
    assert len(ok(q4pg('enqueue', 't', input='{"only": true}\n\n')).split()) == 1
    assert [row[1] for row in stored(conn)] == ['{"only": true}']


def test_null_is_refused(q4pg, mq, conn):
    assert_error(q4pg('enqueue', 't', 'null'), 3, 'null')
    assert_error(q4pg('enqueue', 't', input='1\n null \n'), 3, 'line 2 of stdin', 'null')
    assert stored(conn) == []


def test_a_line_that_is_no_utf8_says_what_was_stored(env, mq, conn):
    import subprocess
    from tests.cli.helpers import PYTHON_M
    proc = subprocess.run(PYTHON_M + ['enqueue', 't'], env=env, input=b'"ok"\n"\xff"\n',
                          capture_output=True, timeout=60)
    assert proc.returncode == 3
    assert 'message(s) stored' in proc.stderr.decode()
    assert scalar(conn, 'SELECT count(*) FROM mq') == len(proc.stdout.split())
