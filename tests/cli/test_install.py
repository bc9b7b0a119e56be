"""q4pg install, upgrade and uninstall: the extension's own scripts run as plain
SQL, for a role that may create in one schema and nothing else (a managed
PostgreSQL's user), without CREATE EXTENSION and without the server's files.

These tests install q4pg themselves, into databases without it, whatever the
session's form (Q4PG_INSTALL).
"""

import re
import uuid

import psycopg2
import pytest
from psycopg2 import sql

import q4pg
from q4pg import install
from tests.cli.helpers import PYTHON_M, assert_error, clean_env, ok, run_command, scalar
from tests.client.test_tutorial import test_tutorial_json_queue as tutorial

VERSION = install.scripts().default_version


@pytest.fixture
def db(cluster):
    """A fresh database without q4pg: {'dsn', 'name'}; dropped afterwards."""
    name = cluster.create_database('template1', prefix='q4pg_test_')
    yield {'dsn': cluster.dsn_string(database=name), 'name': name}
    cluster.drop_database(name)


@pytest.fixture
def admin(db):
    """An autocommit superuser connection to db."""
    conn = psycopg2.connect(db['dsn'])
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def app_role(cluster, db, admin):
    """The DSN of a login role that may only use and create in schema q4pg (made
    by the DBA): no superuser, no CREATE on the database or on public."""
    role = 'q4pg_app_' + uuid.uuid4().hex[:8]
    with admin.cursor() as cur:
        cur.execute(sql.SQL('CREATE ROLE {} LOGIN').format(sql.Identifier(role)))
        cur.execute(sql.SQL('CREATE SCHEMA q4pg; GRANT USAGE, CREATE ON SCHEMA q4pg TO {}')
                    .format(sql.Identifier(role)))
        cur.execute(sql.SQL('REVOKE CREATE ON SCHEMA public FROM PUBLIC; '
                            'REVOKE CREATE ON DATABASE {} FROM PUBLIC').format(
                                sql.Identifier(db['name'])))
        cur.execute('SELECT has_database_privilege(%s, current_database(), %s), '
                    'has_schema_privilege(%s, %s, %s), rolsuper FROM pg_roles WHERE rolname = %s',
                    (role, 'CREATE', role, 'public', 'CREATE', role))
        assert cur.fetchone() == (False, False, False)
    yield '%s user=%s' % (db['dsn'], role)
    with admin.cursor() as cur:
        cur.execute(sql.SQL('DROP OWNED BY {0}; DROP ROLE {0}').format(sql.Identifier(role)))


def cli(dsn, *args):
    return run_command(PYTHON_M, clean_env({}), ['--dsn', dsn] + list(args))


def objects(conn, schema):
    """What schema holds: sorted (kind, name) of its relations, functions and types."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT 'rel ' || c.relkind::text, c.relname::text FROM pg_class AS c
             WHERE c.relnamespace = to_regnamespace(%(s)s)
            UNION ALL SELECT 'proc', p.proname::text FROM pg_proc AS p
             WHERE p.pronamespace = to_regnamespace(%(s)s)
            UNION ALL SELECT 'type', t.typname::text FROM pg_type AS t
             WHERE t.typnamespace = to_regnamespace(%(s)s)
            ORDER BY 1, 2""", {'s': schema})
        return cur.fetchall()


def q4pg_anywhere(conn):
    """Whether the database holds any q4pg install, record or function."""
    return scalar(conn, "SELECT EXISTS (SELECT FROM pg_class WHERE relname = 'q4pg_install') "
                        "OR EXISTS (SELECT FROM pg_proc WHERE proname = 'q4pg_enqueue') "
                        "OR EXISTS (SELECT FROM pg_extension WHERE extname = 'q4pg')")


def test_a_role_that_may_create_in_one_schema_installs_q4pg_and_runs_the_tutorial(
        app_role, admin):
    out = ok(cli(app_role, 'install'))
    assert out == 'q4pg %s installed in schema q4pg\n' % VERSION
    assert install.installed(app_role) == install.Installed('sql', 'q4pg', VERSION)
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'q4pg'")
        assert cur.fetchone() == (0,)
        cur.execute("SET search_path = q4pg, public")   # the tutorial's checks read q4pg's tables
    # The tutorial (docs/python.md), unchanged, as that role: its connections find q4pg's
    # schema and put it first on their search_path, so mq goes there too.
    tutorial(app_role, admin)
    assert scalar(admin, "SELECT to_regclass('q4pg.mq')::text") == 'mq'
    assert scalar(admin, "SELECT pg_get_userbyid(relowner) FROM pg_class "
                         "WHERE oid = 'q4pg.mq'::regclass") == app_role.rsplit('user=', 1)[1]
    # The command line, too.
    assert ok(cli(app_role, 'enqueue', 't', '{"n": 1}')) == '5\n'
    assert ok(cli(app_role, 'count')) == '1\n'


def test_a_role_that_may_create_nowhere_gets_the_servers_refusal(db, admin):
    role = 'q4pg_nobody_' + uuid.uuid4().hex[:8]
    with admin.cursor() as cur:
        cur.execute(sql.SQL('CREATE ROLE {} LOGIN').format(sql.Identifier(role)))
        cur.execute(sql.SQL('REVOKE CREATE ON DATABASE {} FROM PUBLIC').format(
            sql.Identifier(db['name'])))
    try:
        dsn = '%s user=%s' % (db['dsn'], role)
        assert_error(cli(dsn, 'install'), 3, 'permission denied for database')
        with admin.cursor() as cur:
            cur.execute('CREATE SCHEMA q4pg')
        assert_error(cli(dsn, 'install'), 3, 'permission denied for schema q4pg')
        assert not q4pg_anywhere(admin)
        assert objects(admin, 'q4pg') == []
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL('DROP ROLE {}').format(sql.Identifier(role)))


def test_install_refuses_a_second_install_in_any_schema(db, admin):
    assert ok(cli(db['dsn'], 'install')) == 'q4pg %s installed in schema q4pg\n' % VERSION
    before = objects(admin, 'q4pg')
    for args in (['install'], ['install', '--schema', 'q4pg'], ['install', '--schema', 'other']):
        assert_error(cli(db['dsn'], *args), 3,
                     'q4pg %s is installed in this database already, in schema q4pg' % VERSION,
                     'q4pg upgrade')
    assert objects(admin, 'q4pg') == before
    assert scalar(admin, "SELECT to_regnamespace('other')") is None
    # CREATE EXTENSION refuses too, in any schema (sql/src/01_one_install.sql)
    for statement in ('CREATE EXTENSION q4pg', 'CREATE EXTENSION q4pg SCHEMA q4pg'):
        with pytest.raises(psycopg2.Error) as error, admin.cursor() as cur:
            cur.execute(statement)
        assert error.value.pgcode == '42710'
        assert ('q4pg is installed in this database already, by q4pg install, in schema q4pg'
                in error.value.diag.message_primary)
    assert objects(admin, 'q4pg') == before
    assert install.installed(db['dsn']) == install.Installed('sql', 'q4pg', VERSION)


def test_install_upgrade_uninstall_refuse_an_extension(db, admin):
    with admin.cursor() as cur:
        cur.execute('CREATE EXTENSION q4pg')
    assert_error(cli(db['dsn'], 'install'), 3, 'installed in this database as an extension',
                 'ALTER EXTENSION q4pg UPDATE')
    assert_error(cli(db['dsn'], 'install', '--schema', 'elsewhere'), 3, 'as an extension')
    assert_error(cli(db['dsn'], 'upgrade'), 3, 'as an extension', 'ALTER EXTENSION q4pg UPDATE')
    assert_error(cli(db['dsn'], 'uninstall', '--cascade'), 3, 'as an extension',
                 'DROP EXTENSION q4pg')
    assert scalar(admin, "SELECT to_regnamespace('q4pg') IS NULL "
                         "AND to_regnamespace('elsewhere') IS NULL") is True
    assert scalar(admin, "SELECT count(*) FROM pg_class WHERE relname = 'q4pg_install'") == 0


@pytest.mark.parametrize('schema', ['a"b', "a'b", 'a$b', 'a%b', 'a\\b', 'a\nb', 'x' * 64, ''])
def test_a_schema_name_the_scripts_cannot_carry_is_refused(db, admin, schema):
    proc = cli(db['dsn'], 'install', '--schema', schema)
    if schema:
        assert_error(proc, 2, 'schema name')
    else:
        assert_error(proc, 2, 'non-empty')
    assert not q4pg_anywhere(admin)
    assert scalar(admin, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'a%%' "
                         "OR nspname LIKE 'xx%%'") == 0


def test_a_schema_name_that_needs_quoting_works(db, admin):
    assert ok(cli(db['dsn'], 'install', '--schema', 'My Queues; v2')) == (
        'q4pg %s installed in schema My Queues; v2\n' % VERSION)
    with q4pg.QueueManager(db['dsn'], 'mq') as q:
        q.create_table()
        q.enqueue('t', {'n': 1})
        assert list(q.listen('t', timeout=5, limit=1)) == [{'n': 1}]
        assert q.queues() == [('mq', 'json', 1023)]
    assert scalar(admin, "SELECT to_regclass('\"My Queues; v2\".mq')::text") is not None


def test_upgrade_when_there_is_nothing_to_do_or_nothing_installed(db):
    assert_error(cli(db['dsn'], 'upgrade'), 3, 'q4pg is not installed in this database',
                 'q4pg install')
    assert_error(cli(db['dsn'], 'uninstall'), 3, 'q4pg is not installed in this database')
    assert_error(cli(db['dsn'], 'install', '--to', '0.9'), 3, 'no install script of version 0.9')
    ok(cli(db['dsn'], 'install'))
    assert ok(cli(db['dsn'], 'upgrade')) == (
        'q4pg %s is installed in schema q4pg already: nothing to do\n' % VERSION)
    assert_error(cli(db['dsn'], 'upgrade', '--to', '0.9'), 3,
                 'no upgrade path from %s to 0.9' % VERSION)
    assert install.installed(db['dsn']).version == VERSION


def test_bad_and_unreachable_dsn(db):
    for command in ('install', 'upgrade', 'uninstall'):
        assert_error(cli('nonsense', command), 2, 'bad connection string')
        assert_error(cli('host=127.0.0.1 port=1 connect_timeout=5', command), 4)


def test_uninstall_refuses_while_queues_exist_and_cascade_keeps_their_messages(db, admin):
    ok(cli(db['dsn'], 'install'))
    made = objects(admin, 'q4pg')
    with q4pg.QueueManager(db['dsn'], 'mq', 'text', 50) as q:
        q.create_table()
        q.enqueue_many('t', ['one', 'two'])
    with q4pg.QueueManager(db['dsn'], 'public.jobs') as q:
        q.create_table()
    with admin.cursor() as cur:
        cur.execute('CREATE VIEW public.waiting AS SELECT * FROM q4pg.q4pg_stats()')
    message = assert_error(cli(db['dsn'], 'uninstall'), 3, 'while queues exist',
                           'jobs', 'q4pg.mq', 'cascade')
    assert 'waiting' not in message        # queues are what to say first
    with admin.cursor() as cur:
        cur.execute("SELECT q4pg.q4pg_drop_queue('public.jobs'); "
                    "SELECT q4pg.q4pg_drop_queue('q4pg.mq')")
    assert_error(cli(db['dsn'], 'uninstall'), 3, 'other objects depend on it', 'view waiting')
    with admin.cursor() as cur:
        cur.execute('DROP VIEW public.waiting')
    with q4pg.QueueManager(db['dsn'], 'mq', 'text', 50) as q:
        q.create_table()
        q.enqueue_many('t', ['one', 'two'])
    assert install.installed(db['dsn']).version == VERSION

    # --cascade: as DROP EXTENSION q4pg CASCADE, the queue's table stays, messages
    # and all, without its trigger; everything q4pg install made is gone.
    assert ok(cli(db['dsn'], 'uninstall', '--cascade')) == (
        'q4pg uninstalled from schema q4pg (the schema stays)\n')
    assert not q4pg_anywhere(admin)
    assert scalar(admin, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'q4pg.mq'::regclass "
                         "AND NOT tgisinternal") == 0
    assert scalar(admin, 'SELECT array_agg(data ORDER BY id) FROM q4pg.mq') == ['one', 'two']
    left = objects(admin, 'q4pg')
    assert not [o for o in left if o in made]
    generated = re.compile(r'^q4pg_mq_[a-z_]+$')     # the queue's own
    assert [name for kind, name in left if kind == 'proc' and not generated.match(name)] == []

    # installed again, q4pg_create_queue with its settings adopts the table
    ok(cli(db['dsn'], 'install'))
    with q4pg.QueueManager(db['dsn'], 'mq', 'text', 50) as q:
        q.create_table()
        with q.dequeue_many('t', 5) as messages:
            assert [m.data for m in messages] == ['one', 'two']
    assert objects(admin, 'q4pg') == sorted(made + [o for o in left if o not in made])

    # without queues, uninstall needs no --cascade and leaves an empty schema
    with admin.cursor() as cur:
        cur.execute("SELECT q4pg.q4pg_drop_queue('q4pg.mq')")
    ok(cli(db['dsn'], 'uninstall'))
    assert objects(admin, 'q4pg') == []
    assert not q4pg_anywhere(admin)


OLDER = [v for v in install.scripts().versions
         if v != VERSION and install.scripts().upgrade_path(v, VERSION) is not None]


@pytest.mark.parametrize('version', OLDER or [pytest.param(None, marks=pytest.mark.skip(
    reason='no upgrade script leads to %s, the default version, from an older one' % VERSION))])
def test_a_role_that_may_create_in_one_schema_upgrades_its_install(app_role, admin, version):
    assert ok(cli(app_role, 'install', '--to', version)) == (
        'q4pg %s installed in schema q4pg\n' % version)
    with q4pg.QueueManager(app_role, 'mq') as q:
        q.create_table()
        ids = q.enqueue_many('t', [1, 2])
    assert ok(cli(app_role, 'upgrade')) == (
        'q4pg upgraded from %s to %s in schema q4pg\n' % (version, VERSION))
    assert install.installed(app_role) == install.Installed('sql', 'q4pg', VERSION)
    with q4pg.QueueManager(app_role, 'mq') as q:
        q.create_table()
        with q.dequeue_many('t', 5) as messages:
            assert [(m.id, m.data) for m in messages] == list(zip(ids, [1, 2]))
    assert ok(cli(app_role, 'upgrade')) == (
        'q4pg %s is installed in schema q4pg already: nothing to do\n' % VERSION)


def test_a_dump_of_q4pg_install_in_its_own_schema_restores_with_everything(
        app_role, admin, cluster, restored, run, tmp_path):
    """pg_dump keeps q4pg install's objects and record as the ordinary objects they
    are: the restored database has q4pg, its queues and messages, in schema q4pg."""
    ok(cli(app_role, 'install'))
    with q4pg.QueueManager(app_role, 'mq', 'text', 10) as q:
        q.create_table()
        ids = q.enqueue_many('t', ['one', 'two'])
    dump = str(tmp_path / 'db.dump')
    run('pg_dump', '-Fc', '-f', dump, '-d', scalar(admin, 'SELECT current_database()'))
    assert 'EXTENSION' not in run('pg_restore', '-l', dump).stdout
    run('pg_restore', '--exit-on-error', '-d', restored, dump)
    new_dsn = cluster.dsn_string(database=restored)
    assert install.installed(new_dsn) == install.Installed('sql', 'q4pg', VERSION)
    with q4pg.QueueManager(new_dsn, 'mq', 'text', 10) as q:
        q.create_table()                              # the same settings: the same queue
        assert q.enqueue('t', 'three') > ids[-1]
        with q.dequeue_many('t', 5) as messages:
            assert [m.data for m in messages] == ['one', 'two', 'three']
        with pytest.raises(q4pg.InvalidMessage):     # its length limit came along
            q.enqueue('t', 'x' * 11)
    assert ok(cli(new_dsn, 'upgrade')).endswith('nothing to do\n')
    assert_error(cli(new_dsn, 'uninstall'), 3, 'while queues exist', 'q4pg.mq')
