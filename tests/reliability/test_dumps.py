"""Dumps: pg_dump and restore keep every waiting message, and the restored queues work.

For each format (custom archive through pg_restore, plain SQL through psql), a
database with queues of every data type, one in a schema and under a name
full of quotes, dots and semicolons, one whose name needs quoting ("Text
Queue"), one emptied before the dump (its ids must still go on from where they
were, not from the largest id left), and one message held by a consumer while
the dump runs (the dump's snapshot still sees it: it is restored as waiting),
and in 'mq' a scheduled message, a leased one and a dead letter (restored
with every column: due time, attempts, last error, lease, death).
After the restore every queue keeps its settings (its length limit too), new
ids go on above the old ones, NOTIFY wakes a listener, and every waiting
message can be taken, in order.

Both forms of install (make test runs this in each, Q4PG_INSTALL): the
extension is dumped as CREATE EXTENSION, q4pg install's functions, tables and
record as the ordinary objects they are; either way the restored database has
q4pg at the same version, and q4pg upgrade (or ALTER EXTENSION) works there.
"""

import threading
import uuid

import psycopg2
import pytest

import q4pg
from q4pg import install as q4pg_install
from tests.helpers import INSTALL, wait_until
from tests.reliability.helpers import quiet

ODD_SCHEMA = 'app; "x".y'
ODD_TABLE = 'q.u"e;ue --'
# Each queue's message under 'other tag': non-ASCII, and what its type accepts.
OTHER = {'json': {'\u00fc': '\u65e5\u672c'}, 'text': '\u00fc \u65e5\u672c'}


def contents(dsn):
    """{queue: [(id, tag, data, created_at), ...]} for every queue in the database."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT queue::text, data_type, data_length FROM q4pg_queues()')
            queues = cur.fetchall()
            result = {}
            for name, data_type, data_length in queues:
                # every column of every row: scheduled, leased and dead ones too
                cur.execute('SELECT id, tag, data::text, created_at, run_at, attempts, last_error, '
                            'lease_token::text, dead_at FROM %s ORDER BY id' % name)
                result[name, data_type, data_length] = cur.fetchall()
        return result
    finally:
        conn.close()


@pytest.mark.parametrize('fmt', ['custom', 'plain'])
def test_dump_and_restore_keep_messages_and_ids(cluster, dbname, dsn, restored, tmp_path, fmt,
                                                run, figures):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA %s' % psycopg2.extensions.quote_ident(ODD_SCHEMA, conn))
    queues = {
        'json': q4pg.QueueManager(dsn, 'mq'),
        'jsonb': q4pg.QueueManager(dsn, 'mqb', 'jsonb', 50),
        'text': q4pg.QueueManager(dsn, quoted(ODD_TABLE), 'text', 100,
                                  schema=quoted(ODD_SCHEMA)),
        'emptied': q4pg.QueueManager(dsn, 'emptied'),
        'quoted': q4pg.QueueManager(dsn, '"Text Queue"', 'text', 20),
    }
    for q in queues.values():
        q.create_table()
    last_id = {}
    for name, q in queues.items():
        if q.data_type == 'text':
            items = ['plain %d \u2603 \'"; --' % n for n in range(50)]
        else:
            items = [{'n': n, 'nested': {'s': '\u65e5\u672c\'"; --'[: n % 7]}} for n in range(50)]
        q.enqueue_many('t', items)
        q.enqueue('other tag', OTHER['text' if q.data_type == 'text' else 'json'])
        last_id[name] = q.enqueue('t', items[1])
        with q.dequeue('t') as data:      # the oldest ten are gone, the oldest first
            assert data == items[0]
        with q.dequeue_many('t', 9):
            pass
    with conn.cursor() as cur:          # a message of every state of 1.1 in 'mq'
        cur.execute("SELECT q4pg_enqueue('mq', 'later', '1', now() + interval '1 day')")
        cur.execute("SELECT q4pg_lease('mq', 'leased', 1, '1 day') FROM (SELECT q4pg_enqueue("
                    "'mq', 'leased', '2')) AS e")
        cur.execute("SELECT q4pg_enqueue('mq', 'dead', '3')")
        cur.execute("SELECT q4pg_fail('mq', id, 'the error', max_attempts => 1) "
                    "FROM q4pg_take('mq', 'dead')")
        cur.execute("SELECT attempts, last_error FROM q4pg_dead_letters('mq')")
        assert cur.fetchall() == [(1, 'the error')]
    with queues['emptied'].dequeue_many('t', 100):
        pass
    with queues['emptied'].dequeue_many('other tag', 100):
        pass
    assert queues['emptied'].count() == 0
    held = psycopg2.connect(dsn)        # a consumer holds a message during the dump
    with held.cursor() as cur:
        cur.execute("SELECT id FROM q4pg_dequeue('mq', 't')")
        held_id = cur.fetchone()[0]

    before = contents(dsn)
    assert any(held_id == row[0] for row in before['mq', 'json', 1023])
    dump = str(tmp_path / ('db.' + fmt))
    if fmt == 'custom':
        run('pg_dump', '-Fc', '-f', dump, '-d', dbname)
        listed = run('pg_restore', '-l', dump).stdout
        if INSTALL == 'extension':
            assert 'EXTENSION - q4pg' in listed
        else:               # q4pg install's objects are ordinary ones, its record too
            assert 'EXTENSION - q4pg' not in listed
            assert ' TABLE public q4pg_install ' in listed
            assert ' TABLE DATA public q4pg_install ' in listed
            assert ' FUNCTION public q4pg_enqueue(' in listed
        run('pg_restore', '--exit-on-error', '-d', restored, dump)
    else:
        run('pg_dump', '-Fp', '-f', dump, '-d', dbname)
        run('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', restored, '-f', dump)
    held.commit()                       # afterwards: gone here, but the dump has it
    held.close()

    new_dsn = cluster.dsn_string(database=restored)
    # the direct door came along bound to the old table: it refuses until asked again
    check = psycopg2.connect(new_dsn)
    check.autocommit = True
    with check.cursor() as cur:
        with pytest.raises(psycopg2.Error) as error:
            cur.execute("SELECT public.q4pg_mqb_enqueue('t', '1', NULL)")
        assert error.value.pgcode == '55000'
        cur.execute('SELECT count(*) FROM mqb')
        count = cur.fetchone()[0]
        cur.execute("SELECT q4pg_door('mqb')")
        assert cur.fetchone() == ('public.q4pg_mqb_',)
        cur.execute("SELECT * FROM public.q4pg_mqb_dequeue_many('t', 0)")   # works again, takes nothing
        cur.execute('SELECT count(*) FROM mqb')
        assert cur.fetchone() == (count,)
    check.close()
    after = contents(new_dsn)
    assert after == before
    assert q4pg_install.installed(new_dsn) == q4pg_install.installed(dsn)
    if INSTALL == 'sql':    # the record's objects are found there: uninstall sees the queues
        with pytest.raises(q4pg.Q4pgError, match='while queues exist: .*emptied'):
            q4pg_install.uninstall(new_dsn)
    figures.add('messages', sum(len(rows) for rows in after.values()))
    for name, q in queues.items():
        q.close()
        app = 'q4pg-dump-' + uuid.uuid4().hex[:8]
        r = q4pg.QueueManager(new_dsn + ' application_name=' + app, q.table_name, q.data_type,
                              q.data_length, schema=q.schema, poll_interval=60)
        with r:
            # every queue, in the order of their schema-qualified names
            assert r.queues() == [('"app; ""x"".y"."q.u""e;ue --"', 'text', 100),
                                  ('"Text Queue"', 'text', 20), ('emptied', 'json', 1023),
                                  ('mq', 'json', 1023), ('mqb', 'jsonb', 50)]
            r.create_table()            # the same settings: the same queue
            item = 'new' if q.data_type == 'text' else {'new': True}
            new_id = r.enqueue('t', item)
            assert new_id > last_id[name], (name, new_id, last_id[name])
            # the NOTIFY trigger came along: a listener asleep (poll interval 60 s)
            # wakes up within 20 s
            def wake():
                wait_until(lambda: quiet(new_dsn, app), 20, 'the listener to sleep')
                r.enqueue('wake', item)
            producer = threading.Thread(target=wake)
            producer.start()
            assert list(r.listen('wake', stop_after_idle=20, limit=1)) == [item]
            producer.join()
            # and every waiting message can be taken, in order
            key = [k for k in after if k[0] == regclass_text(new_dsn, q)]
            assert len(key) == 1
            waiting = [row[0] for row in after[key[0]] if row[1] == 't']
            with r.dequeue_many('t', 1000) as messages:
                assert [m.id for m in messages] == waiting + [new_id]
            other = OTHER['text' if q.data_type == 'text' else 'json']
            assert r.dequeue_immediate('other tag') == (None if name == 'emptied' else other)
            with pytest.raises(q4pg.InvalidMessage):    # the length limit came along
                r.enqueue('t', 'x' * (q.data_length + 1) if q.data_type == 'text'
                          else {'s': 'x' * q.data_length})


def quoted(name):
    """name as a quoted SQL identifier (QueueManager takes SQL names)."""
    return '"%s"' % name.replace('"', '""')


def regclass_text(dsn, q):
    """How PostgreSQL writes the queue of QueueManager q (as q4pg_queues() does)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT %s::regclass::text', (q.name,))
            return cur.fetchone()[0]
    finally:
        conn.close()
