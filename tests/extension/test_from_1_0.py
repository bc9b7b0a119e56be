"""What users of q4pg 1.0 meet on 1.1.

- ALTER EXTENSION q4pg UPDATE keeps every message and makes 1.0's queues work
  as 1.1 queues (scheduling, leases), also a queue owned by another role; a
  role that may not alter every queue table is refused before anything
  changes.  (That an updated install equals a fresh one, object by object, is
  tests/test_upgrade.py's.)
- The 1.0 Python client runs the README's tutorial against a 1.1 database
  unchanged.  The client is the released package, frozen beside this file
  (q4pg-1.0-client.tar.gz, made by `git archive --format=tar.gz v1.0 q4pg`):
  a clone need not carry tags or history.
- A dump of a 1.0 database restored into 1.1: its queue tables have 1.0's
  columns; calls on them say so (55000) until their owner's
  q4pg_create_queue brings them to 1.1, messages intact.
"""

import os
import pathlib
import subprocess
import sys
import tarfile
import io

import psycopg2
import pytest

import q4pg

ROOT = pathlib.Path(__file__).resolve().parents[2]


def connect(cluster, name, user=None):
    conn = psycopg2.connect(cluster.dsn_string(database=name) + (' user=%s' % user if user else ''))
    conn.autocommit = True
    return conn


@pytest.fixture
def db_1_0(cluster):
    """A database with q4pg 1.0 installed, a queue 'mq' with two messages and a
    queue app.jobs owned by role q4pg_app with one; its name."""
    name = cluster.create_database('template1', prefix='q4pg_v10_')
    conn = connect(cluster, name)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'q4pg_app'")
        if not cur.fetchone():
            cur.execute('CREATE ROLE q4pg_app LOGIN')
        cur.execute("CREATE EXTENSION q4pg VERSION '1.0'")
        cur.execute('CREATE SCHEMA app AUTHORIZATION q4pg_app')
        cur.execute("SELECT q4pg_create_queue('mq')")
        cur.execute("""SELECT q4pg_enqueue('mq', 'a', '{"n": 1}'), q4pg_enqueue('mq', 'a', '{"n": 2}')""")
        cur.execute('SET ROLE q4pg_app')
        cur.execute("SELECT q4pg_create_queue('app.jobs', 'text', 100)")
        cur.execute("SELECT q4pg_enqueue('app.jobs', 'b', 'hello')")
        cur.execute('RESET ROLE')
    conn.close()
    yield name
    cluster.drop_database(name)


def test_update_keeps_messages_and_makes_1_0_queues_1_1_queues(cluster, db_1_0):
    conn = connect(cluster, db_1_0)
    with conn.cursor() as cur:
        cur.execute('ALTER EXTENSION q4pg UPDATE')
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'q4pg'")
        assert cur.fetchone() == (q4pg.__version__,)
        cur.execute("SELECT data FROM q4pg_list('mq') ORDER BY id")
        assert cur.fetchall() == [('{"n": 1}',), ('{"n": 2}',)]
        # the 1.0 messages are due, in their order
        cur.execute("SELECT data FROM q4pg_lease('mq', 'a', 1, '1 minute')")
        assert cur.fetchall() == [('{"n": 1}',)]
        cur.execute("SELECT data FROM q4pg_dequeue('mq', 'a')")
        assert cur.fetchall() == [('{"n": 2}',)]
        # the other role's queue: its generated functions are its owner's again
        cur.execute('SET ROLE q4pg_app')
        cur.execute("SELECT q4pg_enqueue('app.jobs', 'b', 'later', now() + interval '1 hour')")
        cur.execute("SELECT data FROM q4pg_dequeue('app.jobs', 'b')")
        assert cur.fetchall() == [('hello',)]
        cur.execute("SELECT count(*) FROM q4pg_dequeue('app.jobs', 'b')")
        assert cur.fetchone() == (0,)
        cur.execute('RESET ROLE')
        cur.execute("""SELECT DISTINCT p.proowner::regrole::text FROM pg_proc AS p
                        WHERE p.pronamespace = 'app'::regnamespace""")
        assert cur.fetchall() == [('q4pg_app',)]
    conn.close()


def test_update_is_refused_before_anything_changes_for_a_role_that_may_not_alter_every_queue(
        cluster):
    name = cluster.create_database('template1', prefix='q4pg_v10_')
    try:
        conn = connect(cluster, name)
        with conn.cursor() as cur:
            for role in ('q4pg_dba', 'q4pg_app'):
                cur.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (role,))
                if not cur.fetchone():
                    cur.execute('CREATE ROLE %s LOGIN' % role)
            cur.execute('GRANT CREATE ON DATABASE %s TO q4pg_dba' % name)
            cur.execute('GRANT CREATE ON SCHEMA public TO q4pg_dba, q4pg_app')
            # the extension's owner, no superuser, who owns 'mq' but not 'jobs'
            cur.execute('SET ROLE q4pg_dba')
            cur.execute("CREATE EXTENSION q4pg VERSION '1.0'")
            cur.execute("SELECT q4pg_create_queue('mq')")
            cur.execute('SET ROLE q4pg_app')
            cur.execute("SELECT q4pg_create_queue('jobs')")
            cur.execute("SELECT q4pg_enqueue('jobs', 't', '1')")
            cur.execute('SET ROLE q4pg_dba')
            with pytest.raises(psycopg2.errors.InsufficientPrivilege) as refused:
                cur.execute('ALTER EXTENSION q4pg UPDATE')
            assert 'jobs (owner q4pg_app)' in str(refused.value)
            assert 'mq' not in str(refused.value).split('may not alter')[1]
            cur.execute('RESET ROLE')
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'q4pg'")
            assert cur.fetchone() == ('1.0',)
            cur.execute("""SELECT count(*) FROM pg_attribute
                            WHERE attrelid = 'mq'::regclass AND attname = 'run_at'""")
            assert cur.fetchone() == (0,)
            # a member of both owners may
            cur.execute('GRANT q4pg_app TO q4pg_dba')
            cur.execute('SET ROLE q4pg_dba')
            cur.execute('ALTER EXTENSION q4pg UPDATE')
            cur.execute("SELECT data FROM q4pg_dequeue('jobs', 't')")
            assert cur.fetchall() == [('1',)]
            cur.execute('RESET ROLE')
        conn.close()
    finally:
        cluster.drop_database(name)


TUTORIAL = r'''
import sys, q4pg
assert q4pg.__file__.startswith(sys.argv[2]), q4pg.__file__
q = q4pg.QueueManager(sys.argv[1])
q.create_table()
ids = [q.enqueue('tag', {'the_data': 'must_be'}), q.enqueue('tag', {'n': 2})]
assert q.count('tag') == 2, q.count('tag')
assert [m for m in q.list('tag')][0]
with q.dequeue('tag') as data:
    assert data == {'the_data': 'must_be'}, data
assert q.dequeue_immediate('tag') == {'n': 2}
assert q.cancel(q.enqueue('tag', 'x')) is True
for data in q.listen('tag', timeout=0.2):
    raise AssertionError(data)
print('tutorial ok')
'''


def test_the_1_0_python_client_runs_the_tutorial_on_1_1(cluster, dsn, tmp_path):
    archive = pathlib.Path(__file__).with_name('q4pg-1.0-client.tar.gz')
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path)
    tagged = subprocess.run(['git', '-C', str(ROOT), 'archive', 'v1.0', 'q4pg'],
                            capture_output=True)
    if tagged.returncode == 0:  # where the tag is at hand, the frozen copy is the tagged one
        with tarfile.open(fileobj=io.BytesIO(tagged.stdout)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    assert (tmp_path / member.name).read_bytes() == tar.extractfile(member).read()
    assert "__version__ = '1.0'" in (tmp_path / 'q4pg' / '__init__.py').read_text()
    proc = subprocess.run([sys.executable, '-c', TUTORIAL, dsn, str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'tutorial ok'


def test_a_1_0_dump_restored_into_1_1_is_brought_to_1_1_by_create_queue(cluster, db_1_0, run,
                                                                          restored, tmp_path):
    path = tmp_path / 'v10.dump'
    run('pg_dump', '-Fc', '-f', str(path), '-d', db_1_0)
    run('pg_restore', '-d', restored, str(path))
    conn = connect(cluster, restored)
    with conn.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'q4pg'")
        assert cur.fetchone() == (q4pg.__version__,)
        with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState) as old:
            cur.execute("SELECT q4pg_enqueue('mq', 'a', '{}')")
        assert 'shape of an older q4pg' in str(old.value)
        assert "q4pg_create_queue('public.mq', 'json', 1023)" in old.value.diag.message_hint
        cur.execute("SELECT q4pg_create_queue('public.mq', 'json', 1023)")
        cur.execute("SELECT data FROM q4pg_dequeue('mq', 'a')")
        assert cur.fetchall() == [('{"n": 1}',)]
        cur.execute('SET ROLE q4pg_app')
        cur.execute("SELECT q4pg_create_queue('app.jobs', 'text', 100)")
        cur.execute("SELECT data FROM q4pg_lease('app.jobs', 'b', 5, '1 minute')")
        assert cur.fetchall() == [('hello',)]
    conn.close()
