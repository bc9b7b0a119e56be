"""Helpers of the command line's tests (from tests.cli.helpers import ...); their
fixtures (env, q4pg, mq, spawn) are in tests/cli/conftest.py."""

import json
import os
import re
import select
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_M = [sys.executable, '-m', 'q4pg']
SCRIPT = os.path.join(os.path.dirname(sys.executable), 'q4pg')  # the console script


def clean_env(extra):
    """os.environ without PG*/Q4PG_* variables, plus extra.

    PYTHONUNBUFFERED goes too: the command line must flush what it prints
    itself (listen's lines as they come), as it does for anyone.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PG', 'Q4PG_')) and k != 'PYTHONUNBUFFERED'}
    env.update(extra)
    return env


def run_command(cmd, env, args, input=None, timeout=60):
    return subprocess.run(cmd + list(args), env=env, input=input, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def assert_error(proc, code, *fragments):
    """proc failed with exit status code and exactly one stderr line 'q4pg: error: ...'."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r'q4pg: error: \S', lines[0]), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def ok(proc):
    """proc's stdout, after checking it exited 0 with nothing on stderr."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == ''
    return proc.stdout


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


def scalar(conn, query, *params):
    with conn.cursor() as cur:
        cur.execute(query, params or None)
        return cur.fetchone()[0]


def enqueue_sql(psql, tag, data, queue='mq'):
    """Enqueues with psql (the psql fixture); the id."""
    return int(psql('SELECT q4pg_enqueue(%s, %s, %s)' % (
        literal(queue), literal(tag), literal(data))).stdout)


def literal(text):
    """text as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def readline(stream, timeout):
    """One line from a subprocess's binary stdout, or fail after timeout seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, 'no output within %s s' % timeout
    return stream.readline()
