"""Values a queue cannot give back faithfully are refused client-side with
InvalidMessage: None (null: a consumer would read it as an empty queue), NaN
and Infinity (not JSON) (issues 10.3 and 10.7)."""

import pytest

import q4pg


@pytest.fixture
def jq(make_queue):
    return make_queue('jq', 'jsonb')


def refused(q, call, *fragments):
    """call() raises a client-side InvalidMessage whose message holds the fragments;
    nothing is stored."""
    before = q.count()
    with pytest.raises(q4pg.InvalidMessage) as info:
        call()
    assert info.value.pgcode is None, info.value
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    assert q.count() == before
    return info.value


@pytest.mark.parametrize('queue', ['q', 'jq'])
def test_none_is_refused(request, queue):
    q = request.getfixturevalue(queue)
    refused(q, lambda: q.enqueue('t', None), 'null')
    e = refused(q, lambda: q.enqueue_many('t', [1, None, 3]), 'null', 'item 1')
    assert e.index == 1
    for text in ('null', ' null\n', '\tnull '):
        refused(q, lambda: q.enqueue('t', text, raw=True), 'null')
    assert refused(q, lambda: q.enqueue_many('t', ['1', 'null'], raw=True), 'null').index == 1
    # null inside a value, and the string "null", are values
    q.enqueue_many('t', [{'a': None}, [None], 'null', '"null"'])
    q.enqueue('t', '{"a": null}', raw=True)
    with q.dequeue_many('t', 10) as messages:
        assert [m.data for m in messages] == [{'a': None}, [None], 'null', '"null"',
                                             {'a': None}]


def test_a_text_queue_stores_the_word_null(make_queue):
    tq = make_queue('tq', 'text')
    tq.enqueue('t', 'null')
    tq.enqueue('t', 'null', raw=True)
    assert [row[2] for row in tq.list()] == ['null', 'null']
    refused(tq, lambda: tq.enqueue('t', None), 'str')


def test_nan_and_infinity_are_refused_naming_the_problem(q):
    for value in (float('nan'), float('inf'), -float('inf'), {'a': [1, float('nan')]}):
        refused(q, lambda: q.enqueue('t', value), 'NaN or Infinity')
    e = refused(q, lambda: q.enqueue_many('t', [1.5, float('inf')]), 'NaN or Infinity', 'item 1')
    assert e.index == 1
    q.enqueue('t', 1e308)
    assert q.dequeue_immediate('t') == 1e308
