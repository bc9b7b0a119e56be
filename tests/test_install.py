"""q4pg install's Python side (q4pg.install): how it finds upgrade paths, and
that an upgrade runs a chain of scripts in order, in one transaction, and
keeps its record of what q4pg is made of.  The scripts here are made up
(versions 1.0.1 and up do not exist): the real upgrades are tests/test_upgrades.py's.
The command line's tests are tests/cli/test_install.py.
"""

import psycopg2
import pytest

import q4pg
from q4pg import install
from tests.helpers import query

REAL = install.scripts()
BASE = REAL.versions[0]         # the oldest released version: its real install script

# 1.0.1 adds a function; 1.0.2 replaces it by another whose body has % signs
# (the script goes to the server as it is) and a comment naming @extschema@.
STEP1 = '''\\echo Use "ALTER EXTENSION q4pg UPDATE" to load this file. \\quit
CREATE FUNCTION @extschema@.q4pg_hello() RETURNS text LANGUAGE sql
SET search_path = pg_catalog, pg_temp RETURN 'hello';
'''
STEP2 = '''\\echo Use "ALTER EXTENSION q4pg UPDATE" to load this file. \\quit
DROP FUNCTION @extschema@.q4pg_hello();
CREATE FUNCTION @extschema@.q4pg_bye() RETURNS text LANGUAGE sql
SET search_path = pg_catalog, pg_temp RETURN format('%s %%', 'bye');
COMMENT ON FUNCTION @extschema@.q4pg_bye() IS 'in @extschema@';
'''


def made_up(*steps):
    """Scripts: the oldest real install script, and upgrade steps to 1.0.1, 1.0.2..."""
    files = {'q4pg--%s.sql' % BASE: REAL.install_script(BASE)}
    versions = [BASE, '1.0.1', '1.0.2', '1.0.3']
    for n, text in enumerate(steps):
        files['q4pg--%s--%s.sql' % (versions[n], versions[n + 1])] = text
    scripts = install.Scripts(files, BASE, 'made up')
    scripts.default_version = versions[len(steps)]     # the newest: upgrade's target
    return scripts


def functions(dsn):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT proname FROM pg_proc WHERE proname IN ('q4pg_hello', 'q4pg_bye') "
                        "ORDER BY 1")
            names = [row[0] for row in cur.fetchall()]
            cur.execute('SELECT members FROM q4pg_install')
            recorded = {tuple(m[1])[-1] for m in cur.fetchone()[0] if m[0] == 'function'}
            return names, sorted(recorded & {'q4pg_hello', 'q4pg_bye'})
    finally:
        conn.close()


def functions_left(dsn):
    return [row[0] for row in query(dsn, "SELECT proname FROM pg_proc WHERE proname LIKE 'q4pg%'")]


def test_upgrade_paths_are_the_shortest_chain_of_scripts():
    files = {'q4pg--1.0.sql': '', 'q4pg--1.1.sql': '', 'q4pg--1.0--1.1.sql': '',
             'q4pg--1.1--1.2.sql': '', 'q4pg--1.2--1.10.sql': '', 'q4pg--1.0--1.2.sql': ''}
    scripts = install.Scripts(files, '1.1', 'test')
    assert scripts.versions == ['1.0', '1.1']
    assert scripts.upgrade_path('1.0', '1.10') == ['q4pg--1.0--1.2.sql', 'q4pg--1.2--1.10.sql']
    assert scripts.upgrade_path('1.0', '1.1') == ['q4pg--1.0--1.1.sql']
    assert scripts.upgrade_path('1.1', '1.1') == []
    assert scripts.upgrade_path('1.1', '1.0') is None
    with pytest.raises(q4pg.Q4pgError, match='no install script of version 2.0'):
        install.Scripts(files, '2.0', 'test')


def test_upgrade_runs_each_script_in_order_and_records_what_they_made(bare_dsn):
    scripts = made_up(STEP1, STEP2)
    assert install.install(bare_dsn, 'public', BASE, source=scripts) == BASE
    assert install.upgrade(bare_dsn, '1.0.1', source=scripts) == (BASE, '1.0.1')
    assert functions(bare_dsn) == (['q4pg_hello'], ['q4pg_hello'])
    assert install.upgrade(bare_dsn, source=scripts) == ('1.0.1', '1.0.2')
    assert functions(bare_dsn) == (['q4pg_bye'], ['q4pg_bye'])
    assert install.installed(bare_dsn) == install.Installed('sql', 'public', '1.0.2')
    conn = psycopg2.connect(bare_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_bye(), obj_description('q4pg_bye'::regproc)")
        assert cur.fetchone() == ('bye %', 'in public')
    conn.close()
    install.uninstall(bare_dsn)
    assert install.installed(bare_dsn) is None
    assert functions_left(bare_dsn) == []


def test_an_upgrade_that_fails_changes_nothing(bare_dsn):
    broken = STEP2.replace('RETURN format', 'RETURN formaat')
    scripts = made_up(STEP1, broken)
    install.install(bare_dsn, 'public', BASE, source=scripts)
    with pytest.raises(q4pg.Q4pgError, match='formaat'):
        install.upgrade(bare_dsn, source=scripts)
    # the first step, which worked, was rolled back with the second
    assert install.installed(bare_dsn).version == BASE
    conn = psycopg2.connect(bare_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_proc WHERE proname IN ('q4pg_hello', 'q4pg_bye')")
        assert cur.fetchone() == (0,)
    conn.close()
    assert install.upgrade(bare_dsn, '1.0.1', source=scripts) == (BASE, '1.0.1')


def test_what_only_an_extension_script_may_do_is_left_out():
    text = ('\\echo Use "CREATE EXTENSION q4pg" to load this file. \\quit\n'
            "CREATE TABLE @extschema@.t (id int);\n"
            "SELECT pg_catalog.pg_extension_config_dump('@extschema@.t', '');\n"
            "ALTER EXTENSION q4pg DROP FUNCTION @extschema@.f(\n  integer);\n"
            "SELECT 1;\n")
    assert install._script_sql(text, '"My Schema"') == (
        '\nCREATE TABLE "My Schema".t (id int);\n\n\nSELECT 1;\n')
    with pytest.raises(q4pg.Q4pgError, match='@extowner@'):
        install._script_sql('GRANT ALL ON x TO @extowner@;', 'public')


def test_an_upgrade_that_remakes_a_queue_table_does_not_make_it_q4pg_s(bare_dsn):
    """1.1 -> 1.2 makes each queue a ring (a new table of the queue's name, its slots):
    with q4pg and the queue in one schema, the new tables are still the queue's, so
    uninstalling with cascade keeps the queue and its message."""
    assert install.install(bare_dsn, 'public', '1.1') == '1.1'
    conn = psycopg2.connect(bare_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('mq')")
        cur.execute("SELECT q4pg_enqueue('mq', 't', '{\"n\": 1}')")
    assert install.upgrade(bare_dsn) == ('1.1', q4pg.__version__)
    install.uninstall(bare_dsn, cascade=True)
    with conn.cursor() as cur:
        cur.execute('SELECT tag, data::text FROM public.mq')
        assert cur.fetchall() == [('t', '{"n": 1}')]
    conn.close()
