"""The command line's 1.1 commands (issue 11): due times (enqueue --at,
--delay), list/count --due, leases (lease, ack, nack, extend, listen --lease),
dead letters (dead-letters, replay, purge-dead, set-max-attempts,
create-queue --max-attempts), stats with scheduled/leased/dead, a URL --dsn."""

import datetime
import json
import time

import pytest

from tests.cli.helpers import assert_error, enqueue_sql, json_lines, ok, scalar


def test_enqueue_with_a_delay_or_a_due_time(q4pg, mq, conn):
    later = int(ok(q4pg('enqueue', 't', '"later"', '--delay', '3600')))
    at = (datetime.datetime.now(datetime.timezone.utc)
          + datetime.timedelta(hours=2)).isoformat()
    at_id = int(ok(q4pg('enqueue', 't', '"at"', '--at', at)))
    now = int(ok(q4pg('enqueue', 't', '"now"', '--at', '2000-01-01T00:00:00Z')))
    stdin_ids = [int(i) for i in ok(q4pg('enqueue', 'u', '--delay', '60',
                                         input='1\n2\n')).split()]
    assert ok(q4pg('count', 't', '--due')) == '1\n'
    assert ok(q4pg('count', 't')) == '1\n'          # due ones, as in SQL and Python
    assert ok(q4pg('count', 't', '--all')) == '3\n'
    assert ok(q4pg('count', '--due')) == '1\n'
    assert [m['id'] for m in json_lines(ok(q4pg('list')))] == [now]
    listed = json_lines(ok(q4pg('list', '--all')))
    assert sorted(m['id'] for m in listed) == sorted([now, later, at_id] + stdin_ids)
    by_id = {m['id']: m for m in listed}
    run_at = datetime.datetime.fromisoformat(by_id[at_id]['run_at'])
    assert abs(run_at - datetime.datetime.fromisoformat(at)) < datetime.timedelta(seconds=1)
    assert by_id[later]['attempts'] == 0 and by_id[later]['last_error'] is None
    assert [m['id'] for m in json_lines(ok(q4pg('list', '--due')))] == [now]
    assert json.loads(ok(q4pg('dequeue', 't')))['id'] == now
    proc = q4pg('dequeue', 't')
    assert proc.returncode == 1 and proc.stdout == ''   # the others are not due


def test_enqueue_due_time_errors(q4pg, mq, conn):
    for args in (['--at', 'tomorrow'], ['--delay', '-1'], ['--delay', 'x'],
                 ['--at', '2030-01-01T00:00:00Z', '--delay', '1']):
        assert_error(q4pg('enqueue', 't', '1', *args), 2)
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def lease(q4pg, tag, *args):
    return json_lines(ok(q4pg('lease', tag, *args)))


def test_lease_ack(q4pg, mq, psql, conn):
    first = enqueue_sql(psql, 't', '{"n": 1}')
    [m] = lease(q4pg, 't', '--seconds', '60')
    assert m['id'] == first and m['data'] == {'n': 1} and m['attempts'] == 1
    assert m['last_error'] is None and len(m['lease_token']) == 36
    datetime.datetime.fromisoformat(m['lease_until'])
    proc = q4pg('lease', 't')
    assert proc.returncode == 1 and proc.stdout == ''   # leased: nothing else due
    assert ok(q4pg('ack', str(first), m['lease_token'])) == 'true\n'
    proc = q4pg('ack', str(first), m['lease_token'])
    assert proc.returncode == 1 and proc.stdout == 'false\n'
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def test_lease_nack_extend(q4pg, mq, psql, conn):
    ids = [enqueue_sql(psql, 't', str(n)) for n in range(3)]
    leased = lease(q4pg, 't', '--limit', '2', '--seconds', '60')
    assert [m['id'] for m in leased] == ids[:2]
    a, b = leased
    until = ok(q4pg('extend', str(a['id']), a['lease_token'], '--seconds', '600')).strip()
    assert datetime.datetime.fromisoformat(until) > datetime.datetime.fromisoformat(
        a['lease_until'])
    assert ok(q4pg('nack', str(b['id']), b['lease_token'], '--error', 'disk full',
                   '--retry-in', '3600')) == 'retry\n'
    proc = q4pg('nack', str(b['id']), b['lease_token'])
    assert proc.returncode == 1 and proc.stdout == 'lost\n'
    proc = q4pg('extend', str(b['id']), b['lease_token'])
    assert proc.returncode == 1 and proc.stdout == 'lost\n'
    listed = {m['id']: m for m in json_lines(ok(q4pg('list', '--all')))}
    assert listed[b['id']]['last_error'] == 'disk full'
    assert listed[a['id']]['leased_until'] is not None
    # a leased message lists with its due time: the lease's end
    assert listed[a['id']]['run_at'] == listed[a['id']]['leased_until']
    assert_error(q4pg('ack', '1', 'not-a-token'), 2, 'lease token')
    assert_error(q4pg('lease', 't', '--seconds', '0'), 2)


def test_a_lease_that_ran_out_is_refused_after_another_consumer_leased(q4pg, mq, psql):
    first = enqueue_sql(psql, 't', '1')
    [old] = lease(q4pg, 't', '--seconds', '0.3')
    time.sleep(0.5)
    [new] = lease(q4pg, 't', '--seconds', '60')
    assert new['id'] == first and new['attempts'] == 2
    proc = q4pg('ack', str(first), old['lease_token'])
    assert proc.returncode == 1 and proc.stdout == 'false\n'
    assert ok(q4pg('ack', str(first), new['lease_token'])) == 'true\n'


def test_dead_letters_replay_purge(q4pg, psql, conn):
    ok(q4pg('create-queue', '--max-attempts', '1'))
    ids = [enqueue_sql(psql, tag, '"poison"') for tag in ('a', 'a', 'b')]
    for tag, id_ in zip(('a', 'a', 'b'), ids):
        [m] = lease(q4pg, tag)
        assert m['id'] == id_
        assert ok(q4pg('nack', str(m['id']), m['lease_token'], '--error', 'bad')) == 'dead\n'
    dead = json_lines(ok(q4pg('dead-letters')))
    assert sorted(d['id'] for d in dead) == ids
    assert all(d['attempts'] == 1 and d['last_error'] == 'bad' and d['dead_at'] for d in dead)
    assert [d['id'] for d in json_lines(ok(q4pg('dead-letters', 'b')))] == [ids[2]]
    assert ok(q4pg('count')) == '0\n'
    assert ok(q4pg('replay', str(ids[0]))) == '1\n'
    proc = q4pg('replay', str(ids[0]))
    assert proc.returncode == 1 and proc.stdout == '0\n'
    assert ok(q4pg('replay', '--tag', 'b')) == '1\n'
    assert ok(q4pg('count')) == '2\n'
    assert ok(q4pg('purge-dead', '--older-than', '3600')) == '0\n'
    assert ok(q4pg('purge-dead', 'a')) == '1\n'
    assert json_lines(ok(q4pg('dead-letters'))) == []
    assert scalar(conn, 'SELECT count(*) FROM mq') == 2


def test_set_max_attempts(q4pg, mq, psql, conn):
    first = enqueue_sql(psql, 't', '1')
    for _ in range(2):
        [m] = lease(q4pg, 't')
        assert ok(q4pg('nack', str(m['id']), m['lease_token'])) == 'retry\n'
    assert ok(q4pg('set-max-attempts', '2')) == ''       # at the limit: set aside now
    assert [d['id'] for d in json_lines(ok(q4pg('dead-letters')))] == [first]
    assert ok(q4pg('set-max-attempts', 'none')) == ''
    assert scalar(conn, "SELECT max_attempts FROM q4pg_queues() WHERE queue = 'mq'::regclass") \
        is None
    assert_error(q4pg('set-max-attempts', '0'), 2)
    assert_error(q4pg('--queue', 'nosuch', 'set-max-attempts', '3'), 3)


def test_stats_shows_scheduled_leased_and_dead(q4pg, mq, psql):
    enqueue_sql(psql, 't', '1')
    ok(q4pg('enqueue', 't', '2', '--delay', '3600'))
    enqueue_sql(psql, 't', '3')
    lease(q4pg, 't', '--seconds', '600')
    psql("SELECT q4pg_set_max_attempts('mq', 1)")
    [m] = lease(q4pg, 't')
    ok(q4pg('nack', str(m['id']), m['lease_token']))
    [row] = json_lines(ok(q4pg('stats', '--json')))
    assert (row['waiting'], row['scheduled'], row['leased'], row['dead']) == (0, 1, 1, 1)
    lines = ok(q4pg('stats')).splitlines()
    assert lines[0].split() == ['queue', 'tag', 'waiting', 'oldest', 'age', 'scheduled',
                                'leased', 'dead']
    assert lines[1].split()[-3:] == ['1', '1', '1']


def test_listen_with_a_lease(q4pg, mq, psql, conn):
    first = enqueue_sql(psql, 't', '1')
    [line] = json_lines(ok(q4pg('listen', 't', '--lease', '30', '--limit', '1')))
    assert line['id'] == first
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0
    assert_error(q4pg('listen', 't', '--lease', '0'), 2)


@pytest.mark.parametrize('scheme', ['postgresql', 'postgres'])
def test_a_url_dsn(q4pg, mq, cluster, dbname, scheme):
    d = cluster.dsn()
    url = '%s://%s@%s:%s/%s' % (scheme, d['user'], d['host'], d['port'], dbname)
    msg_id = int(ok(q4pg('--dsn', url, 'enqueue', 't', '1')))
    assert json.loads(ok(q4pg('--dsn', url, 'dequeue', 't')))['id'] == msg_id
    assert_error(q4pg('--dsn', 'postgresql://h/db?nosuchoption=1', 'count'), 2)
