"""Fixtures of the PgBouncer tests: a real PgBouncer (tools/pgbouncer.py) in front of
the session's cluster, in transaction pooling with 2 server connections per
database, as most deployments run it."""

import pytest

from tools.pgbouncer import PgBouncer

POOL_SIZE = 2  # server connections per database (and user) behind the pooler


@pytest.fixture(scope='session')
def bouncer(cluster):
    """The session's PgBouncer: pool_mode = transaction, POOL_SIZE servers per database."""
    with PgBouncer(cluster, pool_mode='transaction', pool_size=POOL_SIZE) as b:
        yield b


@pytest.fixture
def pooled_dsn(bouncer, dbname):
    """libpq connection string of the test's database through the session's PgBouncer."""
    return bouncer.dsn_string(database=dbname)
