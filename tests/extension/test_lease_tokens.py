"""A lease's token names the ring slot it was leased in (its last byte), where
ack, nack and extend look first; a token naming another slot (a lease of 1.1,
or a message the ring's maintenance moved) is still honoured, by a look into
every slot."""

import pytest


def _one(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0] if cur.description else None


def _lease(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT id, lease_token FROM q4pg_lease('mq', 't', 1, '1 min')")
        return cur.fetchone()


def _retoken(conn, id_, last_byte):
    """Gives the lease another token, its last byte last_byte (as 1.1 or a move would)."""
    return _one(conn, "UPDATE mq SET lease_token = encode(set_byte(uuid_send(lease_token), 15, %s), 'hex')::uuid "
                      "WHERE id = %s RETURNING lease_token", (last_byte, id_))


def test_the_token_names_the_slot_of_the_lease(conn):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    _one(conn, "SELECT q4pg_enqueue('mq', 't', '1')")
    id_, token = _lease(conn)
    slot = _one(conn, 'SELECT slot FROM mq WHERE id = %s', (id_,))
    assert _one(conn, 'SELECT get_byte(uuid_send(%s::uuid), 15)', (token,)) == slot
    _one(conn, "SELECT q4pg_enqueue('mq', 't', '2')")
    assert _lease(conn)[1] != token           # random but for the slot


@pytest.mark.parametrize('last_byte', [3, 4, 200])
def test_a_token_naming_another_slot_still_acks_nacks_and_extends(conn, last_byte):
    _one(conn, "SELECT q4pg_create_queue('mq')")
    for n in range(3):
        _one(conn, "SELECT q4pg_enqueue('mq', 't', %s)", (str(n),))
    id_, token = _lease(conn)
    token = _retoken(conn, id_, last_byte)
    assert _one(conn, "SELECT q4pg_extend('mq', %s, %s, '2 min')", (id_, token)) is not None
    assert _one(conn, "SELECT q4pg_ack('mq', %s, %s)", (id_, token)) is True
    id_, token = _lease(conn)
    token = _retoken(conn, id_, last_byte)
    assert _one(conn, "SELECT q4pg_nack('mq', %s, %s, NULL, 'failed')", (id_, token)) == 'retry'
    assert _one(conn, "SELECT last_error FROM mq WHERE id = %s", (id_,)) == 'failed'
    # a wrong token is refused, wherever it points
    id_, token = _lease(conn)
    wrong = _one(conn, "SELECT encode(set_byte(uuid_send(gen_random_uuid()), 15, %s), 'hex')::uuid",
                 (last_byte,))
    assert _one(conn, "SELECT q4pg_ack('mq', %s, %s)", (id_, wrong)) is False
    assert _one(conn, "SELECT q4pg_ack('mq', %s, %s)", (id_, None)) is False
    assert _one(conn, "SELECT q4pg_ack('mq', %s, %s)", (id_, token)) is True
