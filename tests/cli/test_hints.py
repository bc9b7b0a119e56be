"""Refusals that say what to do next (q4pg/hints.py): q4pg install as a role
that may not create its schema, and create-queue in a schema that does not exist."""

import uuid

import psycopg2
import pytest
from psycopg2 import sql

import q4pg
from tests.cli.helpers import assert_error, ok
from tests.cli.test_install import admin, cli, db, q4pg_anywhere  # noqa: F401 (fixtures)


@pytest.fixture
def nobody(db, admin):  # noqa: F811
    """The DSN of a login role without CREATE on the database (nor on public)."""
    role = 'q4pg_nobody_' + uuid.uuid4().hex[:8]
    with admin.cursor() as cur:
        cur.execute(sql.SQL('CREATE ROLE {} LOGIN').format(sql.Identifier(role)))
        cur.execute(sql.SQL('REVOKE CREATE ON DATABASE {} FROM PUBLIC').format(
            sql.Identifier(db['name'])))
    yield '%s user=%s' % (db['dsn'], role), role
    with admin.cursor() as cur:
        cur.execute(sql.SQL('DROP OWNED BY {0}; DROP ROLE {0}').format(sql.Identifier(role)))


def test_install_without_create_on_the_database_says_what_to_do(db, admin, nobody):  # noqa: F811
    dsn, role = nobody
    line = assert_error(cli(dsn, 'install'), 3, 'permission denied for database %s' % db['name'],
                        'q4pg install --schema <schema>',
                        'CREATE SCHEMA q4pg AUTHORIZATION %s' % role,
                        'GRANT CREATE ON DATABASE %s TO %s' % (db['name'], role))
    assert 'Traceback' not in line
    line = assert_error(cli(dsn, 'install', '--schema', 'Mine'), 3,
                        'q4pg install creates schema "Mine"',
                        'CREATE SCHEMA "Mine" AUTHORIZATION %s' % role)
    # the schema exists, but the role may not create in it
    with admin.cursor() as cur:
        cur.execute('CREATE SCHEMA q4pg')
    assert_error(cli(dsn, 'install'), 3, 'permission denied for schema q4pg',
                 'q4pg install --schema <schema>',
                 'GRANT USAGE, CREATE ON SCHEMA q4pg TO %s' % role)
    assert not q4pg_anywhere(admin)
    # what the hint says works
    with admin.cursor() as cur:
        cur.execute(sql.SQL('GRANT USAGE, CREATE ON SCHEMA q4pg TO {}').format(
            sql.Identifier(role)))
    assert ok(cli(dsn, 'install')).startswith('q4pg ')


def test_the_library_gives_the_same_hint(nobody):
    dsn, role = nobody
    with pytest.raises(q4pg.PermissionDenied, match='q4pg install --schema') as info:
        q4pg.install.install(dsn)
    assert info.value.pgcode == '42501'
    assert info.value.pgerror.startswith('permission denied for database')


def test_create_queue_in_a_schema_that_does_not_exist_says_so_and_how(db, admin):  # noqa: F811
    assert ok(cli(db['dsn'], 'install')).startswith('q4pg ')
    for queue, schema in (('app.jobs', 'app'), ('"My App".jobs', '"My App"')):
        assert_error(cli(db['dsn'], '--queue', queue, 'create-queue'), 3,
                     'schema "%s" does not exist. Queue %s needs it' % (schema.strip('"'), queue),
                     'CREATE SCHEMA %s' % schema, 'give the queue a schema that exists')
    with q4pg.QueueManager(db['dsn'], 'app.jobs') as q:
        with pytest.raises(q4pg.InvalidArgument, match=r'CREATE SCHEMA app\b') as info:
            q.create_table(max_attempts=3)
        assert info.value.pgcode == '3F000'
    with admin.cursor() as cur:
        cur.execute('CREATE SCHEMA app')
    assert ok(cli(db['dsn'], '--queue', 'app.jobs', 'create-queue')) == ''
    assert ok(cli(db['dsn'], '--queue', 'app.jobs', 'count')) == '0\n'
