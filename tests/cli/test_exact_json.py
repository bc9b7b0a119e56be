"""The command line prints the JSON a json queue stored, exactly: however deep
(no message is undecodable for it, so none blocks a tag), however precise its
numbers, on one line (issue 10.2)."""

import json

from tests.cli.helpers import enqueue_sql, json_lines, ok, scalar

DEEP = '[' * 5000 + ']' * 5000
PRECISE = '{"pi": 3.14159265358979323846264338327950288, "big": 1e400}'
MULTILINE = '{\n  "a": [1,\r\n 2],\n  "s": "line\\nbreak \u2028"\n}'


def test_list_dequeue_and_listen_print_deep_json(q4pg, psql, conn):
    psql("SELECT q4pg_create_queue('mq', 'json', 20000)")
    bad = enqueue_sql(psql, 't', DEEP)
    good = enqueue_sql(psql, 't', '{"after": 1}')
    listed = ok(q4pg('list')).splitlines()
    assert listed[0].startswith('{"id":%d,"tag":"t","data":%s,"created_at":"' % (bad, DEEP))
    assert json.loads(listed[1])['data'] == {'after': 1}
    out = ok(q4pg('dequeue', 't'))
    assert out.startswith('{"id":%d,"tag":"t","data":%s,' % (bad, DEEP)) and out.count('\n') == 1
    assert json_lines(ok(q4pg('listen', 't', '--limit', '1')))[0]['id'] == good
    assert scalar(conn, 'SELECT count(*) FROM mq') == 0


def test_numbers_and_line_breaks_are_printed_as_stored(q4pg, mq, psql):
    precise = enqueue_sql(psql, 't', PRECISE)
    multiline = enqueue_sql(psql, 't', MULTILINE)
    lines = ok(q4pg('list')).rstrip('\n').split('\n')   # not splitlines(): U+2028 stays
    assert len(lines) == 2
    assert '"data":%s,' % PRECISE in lines[0]
    assert json.loads(lines[1])['data'] == json.loads(MULTILINE)
    assert json.loads(ok(q4pg('dequeue', 't')))['id'] == precise
    assert json.loads(ok(q4pg('dequeue', 't')))['id'] == multiline


def test_jsonb_queues_print_the_normalized_text(q4pg, psql):
    psql("SELECT q4pg_create_queue('jq', 'jsonb')")
    enqueue_sql(psql, 't', '{"b": 1,\n "a": 0.1000000000000000000001}', queue='jq')
    line = ok(q4pg('--queue', 'jq', 'dequeue', 't'))
    assert '"data":{"a": 0.1000000000000000000001, "b": 1},' in line
