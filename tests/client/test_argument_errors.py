"""Bad arguments are InvalidArgument naming the argument, raised before anything
is sent; a connection string that does not parse is InvalidDsn, a ConnectionLost
(issue 10.7)."""

import math

import pytest

import q4pg


def bad_argument(call, name):
    with pytest.raises(q4pg.InvalidArgument) as info:
        call()
    assert name in str(info.value), (name, str(info.value))
    assert isinstance(info.value, ValueError)
    assert info.value.pgcode is None
    return info.value


@pytest.mark.parametrize('kwargs, name', [
    (dict(data_length='abc'), 'data_length'),
    (dict(data_length=10.5), 'data_length'),
    (dict(data_type=None), 'data_type'),
    (dict(max_connections='2'), 'max_connections'),
    (dict(max_connections=0), 'max_connections'),
    (dict(poll_interval='1'), 'poll_interval'),
    (dict(poll_interval=math.nan), 'poll_interval'),
    (dict(poll_interval=math.inf), 'poll_interval'),
    (dict(poll_interval=-1), 'poll_interval'),
    (dict(table_name=None), 'table_name'),
    (dict(table_name='a.b.c'), 'table_name'),
    (dict(table_name='"unclosed'), 'table_name'),
    (dict(table_name='m\0q'), 'table_name'),
    (dict(table_name='app.jobs', schema='app'), 'table_name'),
    (dict(schema='a.b'), 'schema'),
    (dict(schema=''), 'schema'),
    (dict(listen_dsn=b'host=x'), 'listen_dsn'),
], ids=lambda x: repr(x) if isinstance(x, dict) else x)
def test_constructor(dsn, kwargs, name):
    bad_argument(lambda: q4pg.QueueManager(dsn, **kwargs), name)


def test_methods(q):
    bad_argument(lambda: q.cancel('abc'), 'id')
    bad_argument(lambda: q.cancel(True), 'id')
    bad_argument(lambda: q.cancel(1.0), 'id')
    bad_argument(lambda: q.dequeue_many('t', '3').__enter__(), 'limit')
    bad_argument(lambda: q.list('t', 'x'), 'limit')
    for kwargs in (dict(timeout=-1), dict(timeout=math.nan), dict(timeout='1'),
                   dict(limit=-1), dict(limit=2.5)):
        name = next(iter(kwargs))
        bad_argument(lambda: q.listen('t', **kwargs), name)     # at once, not at next()
        bad_argument(lambda: q.listener('t', **kwargs), name)
    assert q.count() == 0
    assert list(q.listen('t', timeout=0, limit=0)) == []


def test_a_dsn_that_does_not_parse(cluster):
    for dsn in ('garbage', 'nosuchoption=1', "host='unclosed"):
        with pytest.raises(q4pg.InvalidDsn) as info:
            q4pg.QueueManager(dsn)
        assert isinstance(info.value, q4pg.ConnectionLost)
        assert 'connection string' in str(info.value)
        with pytest.raises(q4pg.InvalidDsn, match='bad listen_dsn connection string'):
            q4pg.QueueManager(cluster.dsn_string(), listen_dsn=dsn)
