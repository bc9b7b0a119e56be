"""Fixtures of the reliability and security suite (tests/reliability).

Most tests use the session's cluster from tests/conftest.py.  Tests that crash
the server get a cluster of their own (``crash_cluster``), started WITHOUT -F
so that fsync is on, and never disturb the shared one.

``figures`` collects what the suite did (messages, kills, crashes, connection
cuts, hypothesis inputs, lost messages); at the end of the session it is
written to tests/reliability/figures/last-run.json (not tracked), and, when
the run took the whole suite (not a -k or a single file), passed, and the
environment says Q4PG_RECORD_FIGURES=1, to fast.json or soak.json: the figures docs/development.md
("Reliability") quotes, which an ordinary run leaves alone.
"""

import json
import os
import time

import psycopg2
import pytest

from tests.helpers import TEMPLATE, create_database_with_q4pg
from tests.reliability.helpers import WorkerPool
from tools.pgcluster import Cluster

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURES_DIR = os.path.join(HERE, 'figures')

# The figures every run reports, in the order docs/development.md lists them.
FIGURE_KEYS = ('messages', 'kills', 'kills_while_holding', 'crashes', 'connection_cuts',
               'hypothesis_inputs', 'hostile_inputs', 'lease_expiries', 'dead_letters',
               'redelivered', 'lost', 'duplicated')


class Figures(dict):
    """What the suite did in this session, summed over the tests that ran."""

    def add(self, key, n=1):
        self[key] = self.get(key, 0) + n


_FIGURES = Figures((k, 0) for k in FIGURE_KEYS)
_RAN = {'tests': 0, 'soak': 0, 'failed': 0}
_STARTED = time.time()


@pytest.fixture(scope='session')
def figures():
    """The session's Figures: tests add to them; written out when the session ends."""
    return _FIGURES


_ROOTDIR = [os.getcwd()]


def pytest_configure(config):
    _ROOTDIR[0] = str(config.rootpath)


def _ours(report):
    path = report.nodeid.split('::')[0]
    return os.path.dirname(os.path.abspath(os.path.join(_ROOTDIR[0], path))) == HERE


def pytest_runtest_logreport(report):
    if report.when == 'call' and _ours(report):
        _RAN['tests'] += 1
        if 'soak' in report.keywords:
            _RAN['soak'] += 1
        if report.failed:
            _RAN['failed'] += 1


def _whole_suite(config):
    """True when this run took every test of the suite (no -k, no single files): only
    then are its figures those of the fast or the soak part."""
    if config.option.keyword:
        return False
    args = [os.path.abspath(os.path.join(str(config.invocation_params.dir), a.split('::')[0]))
            for a in config.args]
    return all(os.path.isdir(a) and (HERE + os.sep).startswith(a.rstrip(os.sep) + os.sep)
               for a in args)


def pytest_sessionfinish(session, exitstatus):
    if not _RAN['tests']:
        return
    os.makedirs(FIGURES_DIR, exist_ok=True)
    mode = 'soak' if _RAN['soak'] else 'fast'
    record = dict(_FIGURES)
    record.update(mode=mode, tests=_RAN['tests'], tests_failed=_RAN['failed'],
                  seconds=round(time.time() - _STARTED, 1),
                  finished_at=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    text = json.dumps(record, indent=2, sort_keys=True) + '\n'
    record_it = (_whole_suite(session.config) and not _RAN['failed']
                 and os.environ.get('Q4PG_RECORD_FIGURES') == '1')
    names = ['last-run.json'] + ([mode + '.json'] if record_it else [])
    for name in names:
        with open(os.path.join(FIGURES_DIR, name), 'w') as f:
            f.write(text)


@pytest.fixture(scope='module')
def module_dsn(cluster):
    """A database with q4pg shared by one test module (hypothesis tests need one
    that outlives a single example)."""
    name = cluster.create_database(TEMPLATE, prefix='q4pg_rel_')
    yield cluster.dsn_string(database=name)
    cluster.drop_database(name)


@pytest.fixture
def logdir(tmp_path):
    """A directory for the logs of worker processes (tests/reliability/worker.py)."""
    path = tmp_path / 'logs'
    path.mkdir()
    os.chmod(str(tmp_path), 0o755)
    return str(path)


@pytest.fixture
def workers():
    """Starts worker processes and kills whatever is left of them after the test."""
    pool = WorkerPool()
    yield pool
    pool.kill_all()


class CrashableCluster:
    """A cluster of its own, fsync on, that a test may crash and start again."""

    def __init__(self):
        # The shared harness passes -F (no fsync); durability after a crash
        # is what these tests are about, so this cluster runs without it.
        self.pg = Cluster(postgres_args='-h 127.0.0.1 -c logging_collector=off '
                                        '-c max_connections=100 -c fsync=on '
                                        '-c synchronous_commit=on')
        self.crashes = 0
        self.database = 'q4pg_crash'
        create_database_with_q4pg(self.pg, self.database)
        conn = self.pg.admin(self.database)
        with conn.cursor() as cur:
            cur.execute('SHOW fsync')
            assert cur.fetchone()[0] == 'on'
        conn.close()

    def dsn(self):
        return self.pg.dsn_string(database=self.database)

    def crash(self):
        """Crash-stops the running server (tools/pgcluster.Cluster.stop_immediately:
        SIGQUIT to the postmaster, as pg_ctl stop -m immediate)."""
        proc = self.pg.child_process
        assert proc is not None and proc.poll() is None, 'the server is not running'
        self.pg.stop_immediately()
        self.crashes += 1

    def start(self):
        """Starts the server again and checks that it really recovered from a crash."""
        self.pg.start()
        log = self.pg.read_bootlog()
        assert 'not properly shut down' in log or 'was interrupted' in log, (
            'the server started without crash recovery; its log:\n' + log)


@pytest.fixture(scope='module')
def crash_cluster():
    """A CrashableCluster for one test module."""
    c = CrashableCluster()
    try:
        yield c
    finally:
        if c.pg.child_process is None:
            try:
                c.pg.start()
            except Exception:
                pass
        c.pg.stop()


@pytest.fixture
def pinned_horizon(dsn):
    """An idle REPEATABLE READ transaction that holds its snapshot (the xmin
    horizon) for the whole test, as an analytics query or a forgotten session
    would."""
    pin = psycopg2.connect(dsn)
    pin.autocommit = True
    with pin.cursor() as cur:
        cur.execute('BEGIN ISOLATION LEVEL REPEATABLE READ')
        cur.execute('SELECT 1')
    yield
    with pin.cursor() as cur:
        cur.execute('ROLLBACK')
    pin.close()
