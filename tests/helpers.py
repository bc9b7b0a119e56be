"""Helpers shared by every test module (from tests.helpers import WAIT, wait_until).

Fixtures are in tests/conftest.py; what only the reliability suite needs is in
tests/reliability/helpers.py.
"""

import os
import time

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from q4pg import install as q4pg_install

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


def query(dsn, sql, args=None):
    """Runs one statement on a fresh autocommit connection; returns all rows (or None)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


# What a listener's LISTEN connection runs (pg_stat_activity.query): LISTEN,
# q4pg_go_idle (1.0: q4pg_register_idle) / q4pg_unregister_idle, and,
# registered, when the next message comes due (q4pg_next_due with the server
# pid check of every query written for that connection); its pooled
# connections run dequeues, COMMIT and ROLLBACK.  The same test in SQL, for a WHERE clause on pg_stat_activity:
LISTEN_CONNECTION = ("(query ILIKE 'LISTEN %%' OR query LIKE '%%q4pg\\_go\\_idle(%%' "
                     "OR query LIKE '%%q4pg\\_register\\_idle(%%' "
                     "OR query LIKE '%%q4pg\\_unregister\\_idle(%%' "
                     "OR (query LIKE '%%q4pg\\_next\\_due(%%' AND query LIKE '%%pg\\_backend\\_pid()%%'))")


def is_listen_connection(query_text):
    q = query_text.strip()
    return (q.upper().startswith('LISTEN ') or 'q4pg_go_idle(' in q
            or 'q4pg_register_idle(' in q
            or 'q4pg_unregister_idle(' in q
            or ('q4pg_next_due(' in q and 'pg_backend_pid()' in q))


def disconnected(conn, application_name):
    """True when no session of `application_name` is left (its statistics are flushed)."""
    with conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM pg_stat_activity WHERE application_name = %s',
                    (application_name,))
        return cur.fetchone()[0] == 0


def is_enqueue(query_text):
    """Whether a backend's last query was an enqueue: q4pg_enqueue, or the client's
    prepared statement through the queue's direct door (q4pg/door.py)."""
    return query_text.startswith(('SELECT q4pg_enqueue(', 'EXECUTE q4pg_enqueue_',
                                  'PREPARE q4pg_enqueue_'))


def create_database_with_q4pg(pg, name):
    """Creates database `name` in cluster pg (a tools.pgcluster.Cluster) and installs
    q4pg into it, in schema public, in the session's form (INSTALL)."""
    conn = pg.admin()
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE %s' % name)
    finally:
        conn.close()
    install_q4pg(pg.dsn_string(database=name))


# How the session's databases get q4pg: 'extension' (CREATE EXTENSION q4pg) or
# 'sql' (q4pg install, the Python package's installer).  make test runs pytest
# once in each form; tests about one form only skip themselves in the other.
INSTALL = os.environ.get('Q4PG_INSTALL', 'extension')
if INSTALL not in ('extension', 'sql'):
    raise RuntimeError('Q4PG_INSTALL must be extension or sql, not %r' % INSTALL)


def install_q4pg(dsn, schema='public', version=None, form=None):
    """Installs q4pg into the database of dsn, in `form` (default: the session's)."""
    form = form or INSTALL
    if form == 'sql':
        q4pg_install.install(dsn, schema, version)
        return
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL('CREATE EXTENSION q4pg SCHEMA {}{}').format(
                sql.Identifier(schema),
                sql.SQL(' VERSION {}').format(sql.Literal(version)) if version else sql.SQL('')))
    finally:
        conn.close()


def uninstall_q4pg_cascade(dsn):
    """DROP EXTENSION q4pg CASCADE, or q4pg uninstall --cascade: whichever undoes the install."""
    found = q4pg_install.installed(dsn)
    if found.form == 'sql':
        q4pg_install.uninstall(dsn, cascade=True)
        return
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute('DROP EXTENSION q4pg CASCADE')
    finally:
        conn.close()


EXTENSION_MEMBERS = """
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend AS d
      JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND e.extname = 'q4pg' AND d.deptype = 'e'"""

# q4pg install's objects: those its record lists, and the record itself.
INSTALL_MEMBERS = """
    SELECT a.classid, a.objid FROM {record} AS r, pg_catalog.jsonb_array_elements(r.members) AS m,
           pg_catalog.pg_get_object_address(
               m->>0, ARRAY(SELECT pg_catalog.jsonb_array_elements_text(m->1)),
               ARRAY(SELECT pg_catalog.jsonb_array_elements_text(m->2))) AS a
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid,
           '{record}'::pg_catalog.regclass::pg_catalog.oid"""


def members_sql(cur):
    """SQL text giving (classid, objid) of every object of q4pg's own in cur's
    database, however it was installed (the extension's members, or what
    q4pg install recorded); no rows without q4pg."""
    cur.execute("SELECT n.nspname FROM pg_catalog.pg_class AS c "
                "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
                "WHERE c.relname = 'q4pg_install' AND c.relkind = 'r'")
    row = cur.fetchone()
    if row is None:
        return EXTENSION_MEMBERS
    record = '%s.q4pg_install' % psycopg2.extensions.quote_ident(row[0], cur)
    return INSTALL_MEMBERS.replace('{record}', record)


def installed_version(cur):
    """The version of q4pg in cur's database, however installed; None without q4pg."""
    cur.execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'q4pg'")
    row = cur.fetchone()
    if row is not None:
        return row[0]
    found = q4pg_install.installed(cur.connection.dsn)
    return found.version if found is not None else None
