"""QueueManager's arguments are checked at construction (docs/python.md: "Arguments are
checked at once"), before anything is sent; and what the checks let through
the server accepts."""

import pytest

import q4pg


@pytest.mark.parametrize('kwargs, named', [
    (dict(data_length=-1), 'data_length'),
    (dict(data_length=0), 'data_length'),
    (dict(data_length=2 ** 31), 'data_length'),
    (dict(data_length='10'), 'data_length'),
    (dict(data_type='xml'), 'data_type'),
    (dict(data_type=None), 'data_type'),
    (dict(max_connections=0), 'max_connections'),
    (dict(max_connections=2.5), 'max_connections'),
    (dict(excepted_times_to_ignore=-1), 'excepted_times_to_ignore'),
    (dict(excepted_times_to_ignore=2 ** 31), 'excepted_times_to_ignore'),
    (dict(poll_interval=0), 'poll_interval'),
    (dict(table_name=''), 'table_name'),
    (dict(table_name='.jobs'), 'table_name'),
    (dict(table_name='app.'), 'table_name'),
    (dict(table_name='a..b'), 'table_name'),
    (dict(table_name='a.b.c'), 'table_name'),
    (dict(table_name='""'), 'table_name'),
    (dict(table_name='"open'), 'table_name'),
    (dict(table_name='my table'), 'table_name'),
    (dict(table_name='x' * 64), 'table_name'),
    (dict(table_name='app.' + 'é' * 32), 'table_name'),
    (dict(table_name=None), 'table_name'),
    (dict(table_name='jobs', schema='a.b'), 'schema'),
    (dict(table_name='app.jobs', schema='app'), 'table_name'),
    (dict(dsn=5), 'dsn'),
    (dict(listen_dsn=5), 'listen_dsn'),
])
def test_a_bad_argument_is_refused_at_construction(kwargs, named):
    with pytest.raises(q4pg.InvalidArgument) as info:
        q4pg.QueueManager(**dict(dict(dsn='dbname=nowhere host=/nonexistent'), **kwargs))
    assert named in str(info.value)
    assert info.value.pgcode is None


@pytest.mark.parametrize('name', [
    'x' * 63, '"a.b"', 'Jobs', '"Jobs"', '  spaced  ', 'q$1', '_q', 'é' * 31, '"say ""hi"""',
    'public.jobs', '"public" . "jobs"', 'public."x.y"',
])
def test_names_the_checks_accept_the_server_accepts(dsn, name):
    q = q4pg.QueueManager(dsn, name, data_length=1)
    try:
        q.create_table()
        q.enqueue('t', 1)
        assert q.count('t') == 1
        assert q.drop_table()
    finally:
        q.close()


def test_the_extreme_lengths_the_checks_accept_the_server_accepts(dsn):
    for length in (1, 2 ** 31 - 1):
        q = q4pg.QueueManager(dsn, 'len%d' % length, data_length=length, max_connections=1)
        try:
            q.create_table()
            assert q.settings() == ('json', length)
        finally:
            q.close()
