"""The ports of the throwaway clusters and PgBouncers (make test, make demo, make
bench) can be chosen, for a machine shared with others: Q4PG_TEST_PORTS names
them ("20000-20999", "5433", or several, comma-separated)."""

import os
import pathlib
import socket
import subprocess
import sys

import pytest

from tools import pgcluster
from tools.pgbouncer import PgBouncer

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_ports(n, start=21000, end=24999):
    """n consecutive ports from `start` that nothing listens on now (the lowest of them)."""
    for low in range(start, end - n, n):
        if all(bindable(port) for port in range(low, low + n)):
            return low
    pytest.skip('no %d consecutive free ports' % n)


def bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
        return True


def run_cluster(ports, *cmd):
    """python -m tools.pgcluster run -- cmd, with Q4PG_TEST_PORTS=ports."""
    env = dict(os.environ, Q4PG_TEST_PORTS=ports)
    return subprocess.run([sys.executable, '-m', 'tools.pgcluster', 'run', '--'] + list(cmd),
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_run_command_takes_its_port_from_the_range():
    low = free_ports(3)
    proc = run_cluster('%d-%d' % (low, low + 2), 'psql', '-XAtc', 'SHOW port')
    assert proc.returncode == 0, proc.stderr
    assert low <= int(proc.stdout) <= low + 2


def test_a_single_port_is_the_one_taken():
    low = free_ports(1)
    proc = run_cluster(' %d ' % low, 'psql', '-XAtc', 'SHOW port')
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == low


def test_a_taken_port_says_none_is_free():
    low = free_ports(1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', low))
        s.listen()
        proc = run_cluster(str(low), 'true')
    assert proc.returncode != 0
    assert 'no free port in %d (Q4PG_TEST_PORTS)' % low in proc.stderr


@pytest.mark.parametrize('bad', ['20000-', 'x', '30000-20000', '0', '70000', '20000-20010,y'])
def test_a_bad_value_is_refused_naming_the_variable(bad):
    proc = run_cluster(bad, 'true')
    assert proc.returncode == 2
    assert 'Q4PG_TEST_PORTS=%r' % bad in proc.stderr


def test_clusters_and_pgbouncers_of_the_tests_take_ports_from_the_range(monkeypatch):
    low = free_ports(4)
    monkeypatch.setenv('Q4PG_TEST_PORTS', '%d-%d,%d' % (low, low + 1, low + 3))
    chosen = {low, low + 1, low + 3}
    with pgcluster.Cluster() as pg:
        assert pg.dsn()['port'] in chosen
        with PgBouncer(pg) as bouncer:
            assert bouncer.port in chosen - {pg.dsn()['port']}


def test_without_the_variable_ports_are_below_32768(monkeypatch):
    monkeypatch.delenv('Q4PG_TEST_PORTS', raising=False)
    assert all(pgcluster.PORT_RANGE[0] <= pgcluster._free_port() <= 32767 for _ in range(20))
