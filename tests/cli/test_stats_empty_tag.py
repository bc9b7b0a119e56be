"""q4pg stats shows the empty tag '' as '', not as the blank of an empty queue
(issue 10)."""

from tests.cli.helpers import enqueue_sql, ok


def test_the_empty_tag_is_visible(q4pg, mq, psql):
    psql("SELECT q4pg_create_queue('idle')")
    enqueue_sql(psql, '', '1')
    rows = [line.split() for line in ok(q4pg('stats')).splitlines()[1:]]
    assert [row[:3] for row in rows] == [['idle', '0', '-'], ['mq', "''", '1']]
