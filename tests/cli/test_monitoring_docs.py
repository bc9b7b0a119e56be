"""docs/monitoring.md's examples run as written: its SQL through psql, its
shell lines through bash (the served metrics scraped, q4pg top quit with q,
the port made one of the tests'), and its Prometheus rules name only
metrics that q4pg metrics exposes."""

import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.cli.helpers import readline
from tests.cli.test_metrics import MONITORING, exposed_names, sessions  # noqa: F401 (fixture)
from tests.cli.test_top import terminal  # noqa: F401 (fixture)
from tools.pgcluster import _free_port

with open(MONITORING, encoding='utf-8') as _f:
    DOC = _f.read()


def blocks(language):
    return re.findall(r'```%s(?: [a-z ]*)?\n(.*?)```' % language, DOC, re.S)   # (flags: tests/docs)


@pytest.fixture
def queue(psql):
    psql("SELECT q4pg_create_queue('mq'); SELECT q4pg_enqueue('mq', 'a', '1')")


def test_the_sql_runs(psql, queue):
    assert blocks('sql')
    for block in blocks('sql'):
        out = psql(block).stdout
        assert 'mq' in out


def shell_lines():
    return [line for block in blocks('sh') for line in block.splitlines() if line.strip()]


def test_the_shell_lines_run(env, queue, tmp_path, spawn, terminal):  # noqa: F811
    env['PATH'] = os.path.dirname(sys.executable) + ':' + env['PATH']     # the q4pg command
    lines = shell_lines()
    assert len(lines) == 5
    for line in lines:
        if line.startswith('q4pg metrics --listen'):
            port = _free_port()
            proc = spawn(*line.replace(':9187', ':%d' % port).split()[1:])
            url = readline(proc.stdout, 30).decode().split()[1]
            with urllib.request.urlopen(url, timeout=30) as response:
                assert b'q4pg_messages{queue="mq",state="due"} 1.0' in response.read()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        elif line == 'q4pg top':
            t = terminal('top')
            t.read_until(b'q4pg top')
            t.type(b'q')
            assert t.exit_status() == 0
        else:
            done = subprocess.run(['bash', '-ec', line], env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and done.stderr == '', (line, done.stderr)
    assert 'q4pg_up 1.0' in (tmp_path / 'q4pg.prom').read_text()


def test_the_prometheus_rules_name_exposed_metrics(q4pg, psql, sessions):  # noqa: F811
    names = exposed_names(q4pg, psql, sessions)
    (yaml,) = blocks('yaml')
    used = set(re.findall(r'\bq4pg_[a-z_]+', yaml))
    assert len(used) >= 4 and used <= names, used - names
