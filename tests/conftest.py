"""Fixtures: one real PostgreSQL cluster per test session, one database per test.

The session's cluster (tools/pgcluster.py: testing.postgresql, run as user
postgres when we are root) gets a template database with the extension
installed; each test gets a fresh copy of it (CREATE DATABASE ... TEMPLATE),
so tests are isolated without paying for CREATE EXTENSION each time.
"""

import os
import subprocess
import sys

import psycopg2
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

from pgcluster import Cluster  # noqa: E402

TEMPLATE = 'q4pg_template'


@pytest.fixture(scope='session')
def cluster():
    """The session's PostgreSQL cluster (a tools/pgcluster.Cluster)."""
    with Cluster() as pg:
        conn = pg.admin()
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE %s' % TEMPLATE)
        conn.close()
        conn = pg.admin(TEMPLATE)
        with conn.cursor() as cur:
            cur.execute('CREATE EXTENSION q4pg')
        conn.close()
        yield pg


@pytest.fixture
def dbname(cluster):
    """A fresh database with the extension installed, dropped after the test."""
    name = cluster.create_database(TEMPLATE, prefix='q4pg_test_')
    yield name
    cluster.drop_database(name)


@pytest.fixture
def dsn(cluster, dbname):
    """libpq connection string of a fresh database with the extension installed."""
    return cluster.dsn_string(database=dbname)


@pytest.fixture
def bare_dsn(cluster):
    """libpq connection string of a fresh database WITHOUT the extension."""
    name = cluster.create_database('template1', prefix='q4pg_test_')
    yield cluster.dsn_string(database=name)
    cluster.drop_database(name)


@pytest.fixture
def restored(cluster):
    """The name of an empty database (template0) to restore a dump into, dropped afterwards."""
    name = cluster.create_database('template0', prefix='q4pg_restored_')
    yield name
    cluster.drop_database(name)


@pytest.fixture
def conn(dsn):
    """An autocommit psycopg2 connection to the test's database, for set-up and checks."""
    c = psycopg2.connect(dsn)
    c.autocommit = True
    yield c
    c.close()


@pytest.fixture
def psql(cluster, dbname):
    """Runs psql against the test's database: psql(sql, *args) -> CompletedProcess.

    Raises CalledProcessError (with psql's stderr) when psql fails.
    """
    env = dict(os.environ, **cluster.env())
    env['PGDATABASE'] = dbname

    def run(sql, *args, check=True):
        return subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql, *args],
                              env=env, capture_output=True, text=True, check=check)

    return run


@pytest.fixture
def pg_env(cluster, dbname):
    """libpq environment variables (PGHOST, PGPORT, ...) pointing at the test's database."""
    return dict(cluster.env(), PGDATABASE=dbname)
