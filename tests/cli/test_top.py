"""q4pg top: --once as a snapshot, and the live view driven in a pseudo-terminal
(it draws, sees dead letters grow, and quits cleanly on q and on Ctrl-C)."""

import os
import pty
import select
import signal
import time

import psycopg2
import pytest

from tests.cli.helpers import PYTHON_M, ROOT, ok

LEAVE_SCREEN = b'\x1b[?1049l'     # the alternate screen left: the terminal as it was


def test_once_prints_a_snapshot_with_the_warnings(q4pg, psql, dsn):
    psql("SELECT q4pg_create_queue('mq', max_attempts => 1)")
    psql("SELECT q4pg_enqueue('mq', 'a', '1') FROM generate_series(1, 4)")
    psql("SELECT id FROM q4pg_lease('mq', 'a', 1, '1 hour')")
    pinner = psycopg2.connect(dsn + ' application_name=pinner')
    pinner.set_session(isolation_level='REPEATABLE READ')    # its snapshot pins the horizon
    try:
        with pinner.cursor() as cur:
            cur.execute('SELECT pg_backend_pid()')
            pid = cur.fetchone()[0]
        time.sleep(0.2)
        out = ok(q4pg('top', '--once', '--older-than', '0.1'))
    finally:
        pinner.close()
    row = next(line for line in out.splitlines() if ' mq ' in line)
    assert [c.strip() for c in row.split('│')[2:6]] == ['3', '0', '1', '0'], row  # due...dead
    assert 'pinner' in out and str(pid) in out
    assert '! horizon: pid %d (pinner) idle in transaction' % pid in out
    out = ok(q4pg('top', '--once'))
    assert 'no warnings' in out


class Terminal:
    """`python -m q4pg ARGS` in a pseudo-terminal of its own (its controlling
    terminal: Ctrl-C there is a SIGINT), 120 columns wide."""

    def __init__(self, args, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:                                   # the child
            os.chdir(ROOT)
            os.execve(PYTHON_M[0], PYTHON_M + list(args),
                      dict(env, COLUMNS='120', LINES='40', TERM='xterm'))
        self.output = b''

    def read_until(self, needle, timeout=30):
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, 'no %r within %s s; output: %r' % (needle, timeout, self.output[-2000:])
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:                             # the child is gone
                    break
        assert needle in self.output, self.output[-2000:]

    def type(self, keys):
        os.write(self.fd, keys)

    def exit_status(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.output += os.read(self.fd, 65536) if select.select(
                    [self.fd], [], [], 0.1)[0] else b''
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = None
                return os.waitstatus_to_exitcode(status)
        raise AssertionError('still running after %s s' % timeout)

    def close(self):
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal(env):
    opened = []

    def start(*args):
        t = Terminal(args, env)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


@pytest.mark.parametrize('quit_key', [b'q', b'\x03'], ids=['q', 'ctrl-c'])
def test_live_view_refreshes_and_quits_cleanly(terminal, psql, quit_key):
    psql("SELECT q4pg_create_queue('mq', max_attempts => 1)")
    psql("SELECT q4pg_enqueue('mq', 'a', '1') FROM generate_series(1, 3)")
    t = terminal('top', '--interval', '0.3', '--count-every', '0')
    t.read_until(b'q4pg top')
    t.read_until(b'no warnings')
    # a dead letter made between two refreshes is warned about
    psql("BEGIN; SELECT q4pg_fail('mq', id, 'boom') FROM q4pg_take('mq', 'a'); COMMIT")
    t.read_until(b'dead_letters on mq: 1 more since the last refresh')
    t.type(quit_key)
    assert t.exit_status() == 0
    assert LEAVE_SCREEN in t.output
    assert b'Traceback' not in t.output and b'error' not in t.output
