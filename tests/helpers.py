"""Helpers shared by every test module (from tests.helpers import WAIT, wait_until).

Fixtures are in tests/conftest.py; what only the reliability suite needs is in
tests/reliability/helpers.py.
"""

import time

WAIT = 10  # seconds: a generous liveness timeout, never a speed requirement
TEMPLATE = 'q4pg_template'  # the session's database with the extension (tests/conftest.py)


def wait_until(predicate, timeout=WAIT, what='the condition', interval=0.05):
    """Calls predicate until it returns something true and returns that; fails
    (AssertionError) after timeout seconds.

    Only a liveness bound: timeouts are generous, nothing asserts speed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('gave up after %s s waiting for %s' % (timeout, what))
        time.sleep(interval)


def create_database_with_q4pg(pg, name):
    """Creates database `name` in cluster pg (a tools.pgcluster.Cluster) and installs
    the extension into it."""
    conn = pg.admin()
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE %s' % name)
    finally:
        conn.close()
    conn = pg.admin(name)
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE EXTENSION q4pg')
    finally:
        conn.close()
