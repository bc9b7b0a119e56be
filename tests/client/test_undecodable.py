"""A message the client cannot decode is a q4pg error that names it, and never
blocks its tag: raw=True or cancel() takes the consumer past it (issue 10.2).

PostgreSQL accepts JSON nested far deeper than Python's json module reads.
"""

import pytest

import q4pg

DEEP = '[' * 5000 + ']' * 5000


@pytest.fixture
def deep(make_queue):
    """A json queue holding DEEP, then a good message, on tag t: (queue, [their ids])."""
    q = make_queue('deep', 'json', 20000, poll_interval=60)
    return q, [q.enqueue('t', DEEP, raw=True), q.enqueue('t', {'after': 1})]


def every_dequeue(q):
    return [
        ('dequeue', lambda: q.dequeue('t').__enter__()),
        ('dequeue_message', lambda: q.dequeue_message('t').__enter__()),
        ('dequeue_many', lambda: q.dequeue_many('t', 5).__enter__()),
        ('dequeue_immediate', lambda: q.dequeue_immediate('t')),
        ('listen', lambda: next(q.listen('t', stop_after_idle=5))),
        ('listener', lambda: next(q.listener('t', stop_after_idle=5))),
    ]


def test_every_dequeue_raises_undecodable_message_naming_it_and_gives_it_back(deep):
    q, (bad, good) = deep
    for name, call in every_dequeue(q):
        with pytest.raises(q4pg.UndecodableMessage) as info:
            call()
        e = info.value
        assert isinstance(e, q4pg.InvalidMessage), name
        assert (e.id, e.tag, e.raw) == (bad, 't', DEEP), name
        assert 'message %d' % bad in str(e) and 'raw=True' in str(e), name
        assert e.pgcode is None
        assert [row[0] for row in q.list('t')] == [bad, good], name   # nothing taken


def test_raw_gives_the_stored_text_and_the_tag_moves_on(deep):
    q, (bad, good) = deep
    with q.dequeue_message('t', raw=True) as message:
        assert (message.id, message.data, message.raw) == (bad, DEEP, DEEP)
    with q.dequeue_many('t', 5, raw=True) as messages:
        assert [(m.id, m.data) for m in messages] == [(good, '{"after":1}')]
    assert q.count() == 0


def test_raw_listen_and_dequeue_immediate(deep):
    q, (bad, good) = deep
    assert [m.data for m in q.listen('t', stop_after_idle=0.3, limit=1, raw=True, full=True)] == [DEEP]
    assert q.dequeue_immediate('t', raw=True) == '{"after":1}'
    with q.dequeue('t', raw=True) as data:
        assert data is None


def test_cancel_works_after_the_error(deep):
    q, (bad, good) = deep
    with pytest.raises(q4pg.UndecodableMessage) as info:
        q.dequeue_immediate('t')
    assert q.cancel(info.value.id) is True
    assert q.dequeue_immediate('t') == {'after': 1}


def test_list_shows_it_as_stored(deep):
    q, (bad, good) = deep
    assert [row[:3] for row in q.list()] == [(bad, 't', DEEP), (good, 't', '{"after":1}')]


def test_decode(deep):
    q, _ = deep
    assert q.decode('{"a": [1]}') == {'a': [1]}
    with pytest.raises(q4pg.UndecodableMessage) as info:
        q.decode(DEEP)
    assert info.value.raw == DEEP and info.value.id is None


def test_a_manager_with_the_wrong_data_type(make_queue, dsn):
    texts = make_queue('texts', 'text')
    first = texts.enqueue('t', 'plain words')
    with q4pg.QueueManager(dsn, 'texts', 'json') as wrong:
        with pytest.raises(q4pg.UndecodableMessage) as info:
            wrong.dequeue_immediate('t')
    assert (info.value.id, info.value.raw) == (first, 'plain words')
    assert 'data_type' in str(info.value)
    assert texts.count() == 1


def test_a_stored_json_null_is_never_handed_out_as_none(make_queue, conn):
    """q4pg 1.1 refuses the JSON null (it would come out as None, like no
    message at all); one stored before (1.0 accepted it) is an
    UndecodableMessage, counted and kept, never eaten."""
    q = make_queue('nulls', 'jsonb', poll_interval=60)
    with pytest.raises(q4pg.InvalidMessage):
        q.enqueue('t', 'null', raw=True)
    with conn.cursor() as cur:
        with pytest.raises(Exception) as refused:
            cur.execute("INSERT INTO nulls (tag, data) VALUES ('t', 'null')")
        assert refused.value.pgcode == '23514'
        conn.rollback()
        # as a 1.0 queue could hold it
        cur.execute('ALTER TABLE nulls DROP CONSTRAINT q4pg_data_not_json_null')
        cur.execute("INSERT INTO nulls (tag, data) VALUES ('t', 'null') RETURNING id")
        null_id = cur.fetchone()[0]
    conn.commit()
    for call in (lambda: q.dequeue('t').__enter__(), lambda: next(q.listen('t', stop_after_idle=5))):
        with pytest.raises(q4pg.UndecodableMessage) as info:
            call()
        assert info.value.id == null_id and 'JSON null' in str(info.value)
    assert q.list('t', full=True)[0][5] == 2        # two failures counted, still there
    with q.dequeue('t', raw=True) as data:
        assert data == 'null'
    assert q.count() == 0
