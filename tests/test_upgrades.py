"""Upgrades: an upgraded install equals a fresh one, in the session's form
(Q4PG_INSTALL: ALTER EXTENSION q4pg UPDATE, or q4pg upgrade), and queues keep
their messages.  And the two forms install the same objects.

For every version that has an install script and an upgrade path to the
default version: install it, make queues with messages (one owned by another
role), upgrade, and compare with a fresh install of the default version and
the same queues made there: a fingerprint of q4pg's own objects (functions by
pg_get_functiondef, types, tables and their columns, policies, grants,
comments) and of each queue (columns, indexes, constraints, triggers, options,
comment, its generated functions), compared both ways.
"""

import hashlib
import re
import uuid

import psycopg2
import pytest
from psycopg2 import sql

from q4pg import install
from tests.helpers import INSTALL, install_q4pg, members_sql, query

SCRIPTS = install.scripts()
DEFAULT = SCRIPTS.default_version
OLDER = [v for v in SCRIPTS.versions
         if v != DEFAULT and SCRIPTS.upgrade_path(v, DEFAULT) is not None]

# Text that describes each of q4pg's objects (given as (classid, objid) by
# members_sql) in every detail an upgrade could get wrong.
OBJECTS = """
WITH m AS ({members})
SELECT pg_catalog.pg_describe_object(m.classid, m.objid, 0) || ': ' || coalesce(d.detail, '')
  FROM m
  LEFT JOIN LATERAL (
      SELECT pg_catalog.pg_get_functiondef(p.oid) || ' acl ' || coalesce(p.proacl::text, '')
        FROM pg_catalog.pg_proc AS p WHERE m.classid = 'pg_proc'::regclass AND p.oid = m.objid
      UNION ALL
      SELECT format('kind %s persistence %s rls %s acl %s options %s', c.relkind, c.relpersistence,
                    c.relrowsecurity, c.relacl, c.reloptions)
        FROM pg_catalog.pg_class AS c WHERE m.classid = 'pg_class'::regclass AND c.oid = m.objid
      UNION ALL
      SELECT format('type %s %s %s', t.typtype, t.typacl,
                    (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                       FROM pg_catalog.pg_enum AS e WHERE e.enumtypid = t.oid))
        FROM pg_catalog.pg_type AS t WHERE m.classid = 'pg_type'::regclass AND t.oid = m.objid
  ) AS d(detail) ON true
UNION ALL
SELECT format('column %s.%s %s notnull %s identity %s default %s acl %s', a.attrelid::regclass,
              a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
              pg_get_expr(ad.adbin, ad.adrelid), a.attacl)
  FROM m
  JOIN pg_catalog.pg_type AS t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
                               OR m.classid = 'pg_class'::regclass AND t.typrelid = m.objid
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = t.typrelid AND a.attnum > 0
                                   AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
UNION ALL
SELECT format('index %s', pg_get_indexdef(i.indexrelid))
  FROM m JOIN pg_catalog.pg_index AS i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
UNION ALL
SELECT format('constraint %s %s', co.conname, pg_get_constraintdef(co.oid))
  FROM m JOIN pg_catalog.pg_constraint AS co ON m.classid = 'pg_class'::regclass
                                            AND co.conrelid = m.objid
UNION ALL
SELECT format('policy %s on %s: %s %s roles %s using %s check %s', po.polname,
              po.polrelid::regclass, po.polcmd, po.polpermissive, po.polroles::regrole[],
              pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
  FROM m JOIN pg_catalog.pg_policy AS po ON m.classid = 'pg_class'::regclass
                                        AND po.polrelid = m.objid
UNION ALL
SELECT format('comment on %s: %s', pg_describe_object(m.classid, m.objid, de.objsubid),
              de.description)
  FROM m JOIN pg_catalog.pg_description AS de ON de.classoid = m.classid AND de.objoid = m.objid
"""

# The same for a queue table: its columns, indexes, constraints, triggers,
# options, owner, comment and grants, and the generated functions of its schema.
QUEUE = """
SELECT format('table %s owner %s options %s acl %s comment %s', c.oid::regclass,
              pg_get_userbyid(c.relowner), c.reloptions, c.relacl, obj_description(c.oid, 'pg_class'))
  FROM pg_catalog.pg_class AS c WHERE c.oid = %(queue)s::regclass
UNION ALL
SELECT format('column %s %s notnull %s identity %s default %s', a.attname,
              format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
              pg_get_expr(ad.adbin, ad.adrelid))
  FROM pg_catalog.pg_attribute AS a
  LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE a.attrelid = %(queue)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('index %s', pg_get_indexdef(i.indexrelid))
  FROM pg_catalog.pg_index AS i WHERE i.indrelid = %(queue)s::regclass
UNION ALL
SELECT format('constraint %s %s', co.conname, pg_get_constraintdef(co.oid))
  FROM pg_catalog.pg_constraint AS co WHERE co.conrelid = %(queue)s::regclass
UNION ALL
SELECT format('trigger %s', pg_get_triggerdef(t.oid))
  FROM pg_catalog.pg_trigger AS t WHERE t.tgrelid = %(queue)s::regclass AND NOT t.tgisinternal
UNION ALL
SELECT format('generated %s owner %s acl %s', pg_get_functiondef(p.oid),
              pg_get_userbyid(p.proowner), p.proacl)
  FROM pg_catalog.pg_proc AS p
 WHERE p.pronamespace = (SELECT relnamespace FROM pg_class WHERE oid = %(queue)s::regclass)
   AND p.proname ~ '^q4pg_' AND p.prosrc LIKE '%%-- q4pg %% generated function, queue %%'
""".replace('%s', '%%s')      # format()'s, not psycopg2's


def door_prefix(relname):
    """q4pg_door_prefix (sql/src/40_queue_functions.sql), for an ASCII name."""
    if re.fullmatch('[a-z_][a-z0-9_]*', relname) and len(relname) <= 45:
        return 'q4pg_%s_' % relname
    return 'q4pg_%s_%s_' % (re.sub('[^a-z0-9_]', '_', relname.lower())[:36],
                            hashlib.md5(relname.encode()).hexdigest()[:8])


MARKER = re.compile(r'(-- q4pg [0-9.]+ generated function, queue )[0-9a-f]{32}')


def fingerprint(dsn, queues=()):
    """(q4pg's objects, {queue: its fingerprint}) of a database, as sets of lines.

    A queue's lock key (in its trigger) and its table's oid (in its generated
    functions' guard and, digested, in their marker line) differ from database to
    database: they are written <key>, <oid> and <marker>."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(OBJECTS.format(members=members_sql(cur)))
            objects = {row[0] for row in cur.fetchall()}
            by_queue = {}
            for queue in queues:
                cur.execute(QUEUE, {'queue': queue})
                lines = [row[0] for row in cur.fetchall()]
                keys = set(re.findall(r"q4pg_notify\('(-?\d+)'\)", '\n'.join(lines)))
                assert len(keys) == 1, lines
                key = int(keys.pop())
                cur.execute('SELECT %s::regclass::oid, (SELECT relname FROM pg_class WHERE oid = %s::regclass)',
                            (queue, queue))
                oid, relname = cur.fetchone()
                prefix = door_prefix(relname)
                hex_key = re.compile(r'(q4pg_|q4pg\.(?:taken|removed)_)%x(?![0-9a-f])' % (key & 0xffffffff))
                by_queue[queue] = {MARKER.sub(r'\1<marker>', hex_key.sub(
                                       r'\1<key>', line.replace(str(key), '<key>')
                                                     .replace('%d::pg_catalog.oid' % oid, '<oid>')))
                                   for line in lines   # its schema's, not other queues'
                                   if not line.startswith('generated ') or prefix in line}
        return objects, by_queue
    finally:
        conn.close()


def assert_same(got, expected, what):
    assert not got - expected and not expected - got, (
        '%s differ:\nonly in the first:\n  %s\nonly in the second:\n  %s' % (
            what, '\n  '.join(sorted(got - expected)), '\n  '.join(sorted(expected - got))))


@pytest.fixture
def new_database(cluster):
    """new_database() -> the DSN of a fresh database without q4pg; all dropped afterwards."""
    names = []

    def make():
        names.append(cluster.create_database('template1', prefix='q4pg_test_'))
        return cluster.dsn_string(database=names[-1])

    yield make
    for name in names:
        cluster.drop_database(name)


@pytest.fixture
def other_role(cluster):
    """A role that owns a queue of its own; dropped with what it owns afterwards."""
    role = 'q4pg_owner_' + uuid.uuid4().hex[:8]
    conn = cluster.admin()
    with conn.cursor() as cur:
        cur.execute(sql.SQL('CREATE ROLE {}').format(sql.Identifier(role)))
    conn.close()
    yield role
    conn = cluster.admin()
    with conn.cursor() as cur:
        cur.execute(sql.SQL('DROP ROLE {}').format(sql.Identifier(role)))
    conn.close()


def make_queues(dsn, role):
    """Queues of each data type with messages, one in another schema, one owned by
    `role`; their names."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL('CREATE SCHEMA app; GRANT USAGE, CREATE ON SCHEMA app TO {0}; '
                            'GRANT USAGE ON SCHEMA public TO {0}').format(sql.Identifier(role)))
        cur.execute("SELECT q4pg_create_queue('mq'), q4pg_create_queue('app.jobs', 'jsonb', 50), "
                    "q4pg_create_queue('\"Text Queue\"', 'text', 20)")
        cur.execute(sql.SQL('SET ROLE {}').format(sql.Identifier(role)))
        cur.execute("SELECT q4pg_create_queue('app.owned', 'text', 100)")
        cur.execute("SELECT q4pg_enqueue_many('app.owned', 't', ARRAY['a', 'b', 'c'])")
        cur.execute('RESET ROLE')
        cur.execute("""SELECT q4pg_enqueue_many('mq', 't', ARRAY['{"n": 1}', '[2]', '"3"']),
                              q4pg_enqueue('app.jobs', 'other', '{"b": 1, "a": [true]}'),
                              q4pg_enqueue('"Text Queue"', '', 'é')""")
        cur.execute("BEGIN; SELECT * FROM q4pg_dequeue('mq', 't'); COMMIT")
    conn.close()
    return ['mq', 'app.jobs', '"Text Queue"', 'app.owned']


def messages(dsn, queues):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            result = {}
            for queue in queues:
                cur.execute('SELECT id, tag, data, created_at FROM q4pg_list(%s)', (queue,))
                result[queue] = cur.fetchall()
            return result
    finally:
        conn.close()


def use_queues(dsn, queues, role):
    """Calls that build each queue's generated functions, as its owner (an upgrade
    that changes them leaves the rebuilding to the next call)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for queue in queues:
            if queue == 'app.owned':
                cur.execute(sql.SQL('SET ROLE {}').format(sql.Identifier(role)))
            cur.execute("BEGIN; SELECT * FROM q4pg_dequeue(%s, 'no such tag'); ROLLBACK",
                        (queue,))
            cur.execute('RESET ROLE')
    conn.close()


def drop_owned(dsns, role):
    for dsn in dsns:
        query(dsn, sql.SQL('DROP OWNED BY {}').format(sql.Identifier(role)))


def recorded(dsn):
    """The objects q4pg install's record lists."""
    return sorted(map(repr, query(dsn, 'SELECT members FROM q4pg_install')[0][0]))


def upgrade_q4pg(dsn):
    if INSTALL == 'sql':
        install.upgrade(dsn)
    else:
        query(dsn, 'ALTER EXTENSION q4pg UPDATE')


@pytest.mark.parametrize('version', OLDER or [pytest.param(None, marks=pytest.mark.skip(
    reason='no upgrade script leads to %s, the default version, from an older one' % DEFAULT))])
def test_an_upgraded_install_equals_a_fresh_one_and_keeps_the_messages(
        new_database, other_role, version):
    upgraded, fresh = new_database(), new_database()
    try:
        install_q4pg(upgraded, version=version)
        queues = make_queues(upgraded, other_role)
        before = messages(upgraded, queues)
        upgrade_q4pg(upgraded)
        assert install.installed(upgraded).version == DEFAULT
        assert messages(upgraded, queues) == before
        use_queues(upgraded, queues, other_role)

        install_q4pg(fresh)
        make_queues(fresh, other_role)
        use_queues(fresh, queues, other_role)
        got, expected = fingerprint(upgraded, queues), fingerprint(fresh, queues)
        if INSTALL == 'sql':        # the records list the same objects
            assert recorded(upgraded) == recorded(fresh)
        assert_same(got[0], expected[0], "q4pg's objects")
        for queue in queues:
            assert_same(got[1][queue], expected[1][queue], 'queue %s' % queue)
    finally:
        drop_owned([upgraded, fresh], other_role)


def test_both_forms_install_the_same_objects_and_queues(new_database, other_role):
    as_extension, as_sql = new_database(), new_database()
    try:
        install_q4pg(as_extension, form='extension')
        install_q4pg(as_sql, form='sql')
        queues = make_queues(as_extension, other_role)
        make_queues(as_sql, other_role)
        extension, plain = fingerprint(as_extension, queues), fingerprint(as_sql, queues)
        record = {line for line in plain[0] if 'q4pg_install' in line}   # q4pg install's own
        assert record
        assert_same(plain[0] - record, extension[0], "q4pg's objects")
        assert len(extension[0]) > 20
        for queue in queues:
            assert_same(plain[1][queue], extension[1][queue], 'queue %s' % queue)
    finally:
        drop_owned([as_extension, as_sql], other_role)


def test_the_package_finds_the_upgrade_paths_the_server_finds(conn):
    """The package's scripts are sql/'s, which make install gave the server."""
    with conn.cursor() as cur:
        cur.execute("SELECT source, target, path FROM pg_extension_update_paths('q4pg') "
                    "WHERE path IS NOT NULL")
        server = {(source, target): path.split('--') for source, target, path in cur.fetchall()}
        cur.execute("SELECT version FROM pg_available_extension_versions WHERE name = 'q4pg'")
        assert sorted(row[0] for row in cur.fetchall()) == sorted(SCRIPTS.versions)
    package = {}
    for source in SCRIPTS.versions:
        for target in SCRIPTS.versions:
            path = SCRIPTS.upgrade_path(source, target)
            if source != target and path is not None:
                package[source, target] = [source] + [
                    name[len('q4pg--'):-len('.sql')].split('--')[1] for name in path]
    assert package == server
