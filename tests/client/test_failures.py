"""Failures count against a message (issue 11, item 2): exceptions inside
`with dequeue()`, in listen() loops and listener() blocks, and messages the
client cannot decode; after max_attempts (excepted_times_to_ignore, else the
queue's) a message is set aside as a dead letter; dead_letters, replay,
purge_dead."""

import logging

import pytest

import q4pg

Q_OPTIONS = dict(poll_interval=60)


def row(q, id_):
    """(attempts, last_error) of a live message, from list(full=True)."""
    [found] = [r for r in q.list(ignore_scheduled=False, full=True) if r[0] == id_]
    return found[5], found[6]


def fail_once(q, tag='t', exc=ZeroDivisionError):
    with pytest.raises(exc):
        with q.dequeue(tag) as data:
            assert data is not None
            raise exc('failed on purpose')


def test_an_exception_inside_dequeue_counts_a_failure(q):
    first = q.enqueue('t', 'one')
    second = q.enqueue('t', 'two')
    fail_once(q)
    attempts, error = row(q, first)
    assert attempts == 1 and error == 'ZeroDivisionError: failed on purpose'
    assert row(q, second) == (0, None)
    assert q.count('t') == 2                            # given back, due again
    fail_once(q, exc=KeyError)
    assert row(q, first)[0] + row(q, second)[0] == 2


def test_keyboard_interrupt_gives_the_message_back_uncounted(q):
    first = q.enqueue('t', 'one')
    with pytest.raises(KeyboardInterrupt):
        with q.dequeue('t'):
            raise KeyboardInterrupt
    assert row(q, first) == (0, None)


def test_a_dead_letter_after_excepted_times_to_ignore(dsn, make_queue, caplog):
    make_queue('mq')
    q = q4pg.QueueManager(dsn, 'mq', excepted_times_to_ignore=2, poll_interval=60)
    first = q.enqueue('t', 'poison')
    fail_once(q)
    assert q.dead_letters() == []
    with caplog.at_level(logging.WARNING, logger='q4pg'):
        fail_once(q)
    assert 'dead letter' in caplog.text and str(first) in caplog.text
    with q.dequeue('t') as data:                        # set aside: not delivered
        assert data is None
    assert q.count('t', ignore_scheduled=False) == 0
    [dead] = q.dead_letters('t')
    assert dead[:3] == (first, 't', '"poison"')
    assert dead[4] == 2 and dead[5] == 'ZeroDivisionError: failed on purpose'
    assert dead[6] is not None
    assert q.replay([first]) == 1
    assert q.dead_letters() == [] and row(q, first)[0] == 0
    fail_once(q)
    fail_once(q)
    assert q.purge_dead(older_than=3600) == 0
    assert q.purge_dead('other') == 0
    assert q.purge_dead('t') == 1
    assert q.dead_letters() == [] and q.count(ignore_scheduled=False) == 0
    q.close()


def test_the_queues_own_max_attempts(make_queue):
    q = make_queue('limited', max_connections=2, poll_interval=60)
    with pytest.raises(q4pg.QueueExists):              # another setting than the queue's
        q.create_table(max_attempts=1)
    q.drop_table()
    q.create_table(max_attempts=1)
    q.create_table()                                    # keeps the setting
    assert q.queues(full=True) == [('limited', 'json', 1023, 1)]
    first = q.enqueue('t', 'poison')
    fail_once(q)
    assert [d[0] for d in q.dead_letters()] == [first]
    [stats] = q.stats(full=True)
    assert stats[:3] == ('limited', 't', 0) and stats[5:] == (0, 0, 1)
    assert [s[:3] for s in q.stats()] == [('limited', 't', 0)]   # 1.0's five columns
    assert len(q.stats()[0]) == 5
    q.set_max_attempts(None)
    assert q.replay(tag='t') == 1
    fail_once(q)
    fail_once(q)
    assert row(q, first)[0] == 2
    q.set_max_attempts(2)                               # at the limit already: set aside now
    assert [d[0] for d in q.dead_letters()] == [first]
    with pytest.raises(q4pg.InvalidArgument):
        q.set_max_attempts(0)
    with pytest.raises(q4pg.InvalidArgument):
        q.create_table(max_attempts=0)


def test_dequeue_many_counts_against_each(q):
    ids = q.enqueue_many('t', [1, 2, 3])
    with pytest.raises(RuntimeError):
        with q.dequeue_many('t', 2) as messages:
            assert [m.id for m in messages] == ids[:2]
            raise RuntimeError('batch failed')
    assert [row(q, i)[0] for i in ids] == [1, 1, 0]


DEEP = '[' * 5000 + ']' * 5000


def test_an_undecodable_message_counts_a_failure(dsn, make_queue):
    make_queue('deep', 'json', 20000)
    q = q4pg.QueueManager(dsn, 'deep', 'json', 20000, 2, poll_interval=60)
    bad = q.enqueue('t', DEEP, raw=True)
    good = q.enqueue('t', {'after': 1})
    with pytest.raises(q4pg.UndecodableMessage) as info:
        q.dequeue_immediate('t')
    assert info.value.id == bad and info.value.raw == DEEP
    attempts, error = row(q, bad)
    assert attempts == 1 and 'UndecodableMessage' in error and 'nested' in error
    with pytest.raises(q4pg.UndecodableMessage):
        with q.dequeue_many('t', 5):
            pass
    assert row(q, good) == (0, None)                     # the others go back uncounted
    assert [d[0] for d in q.dead_letters()] == [bad]     # the second failure set it aside
    assert q.dequeue_immediate('t') == {'after': 1}
    q.close()


# -- listen() and listener() ---------------------------------------------------------

def test_an_exception_in_a_listener_block_counts(q):
    first = q.enqueue('t', 'one')
    with pytest.raises(ValueError):
        with q.listener('t', stop_after_idle=5) as items:
            for data in items:
                raise ValueError('listener body failed')
    assert row(q, first) == (1, 'ValueError: listener body failed')
    with q.listener('t', stop_after_idle=5) as items:
        for data in items:
            break                                        # leaving normally acknowledges
    assert q.count() == 0


def test_leaving_a_listen_loop_early_counts(q):
    first = q.enqueue('t', 'one')
    with pytest.raises(ValueError):
        for data in q.listen('t', stop_after_idle=5):
            raise ValueError('loop body failed')
    attempts, error = row(q, first)
    assert attempts == 1 and 'listen() loop was left' in error
    assert list(q.listen('t', stop_after_idle=0.2)) == ['one']   # acknowledged at the end
    assert q.count() == 0


def test_listen_with_excepted_times_to_ignore_sets_aside(dsn, make_queue):
    make_queue('mq')
    q = q4pg.QueueManager(dsn, 'mq', excepted_times_to_ignore=1, poll_interval=60)
    first = q.enqueue('t', 'poison')
    q.enqueue('t', 'fine')
    with pytest.raises(ValueError):
        with q.listener('t', stop_after_idle=5) as items:
            for data in items:
                raise ValueError(data)
    assert [d[0] for d in q.dead_letters()] == [first]
    assert list(q.listen('t', stop_after_idle=0.2)) == ['fine']
    q.close()


def test_an_undecodable_message_in_listen_counts(dsn, make_queue):
    make_queue('deep', 'json', 20000)
    q = q4pg.QueueManager(dsn, 'deep', 'json', 20000, poll_interval=60)
    bad = q.enqueue('t', DEEP, raw=True)
    with pytest.raises(q4pg.UndecodableMessage):
        next(q.listen('t', stop_after_idle=5))
    assert row(q, bad)[0] == 1
    q.close()
