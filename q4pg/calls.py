"""Each SQL call the clients make, as one typed function: its arguments
checked, the statement (statements.py's text) and its parameters, and what its
rows mean.  No I/O: QueueManager runs a Call with psycopg2, AsyncQueueManager
with psycopg 3, both the same way:

    call = calls.count(tag, ignore_scheduled)
    rows = <run call.query with (queue,) + call.args>      (call.every: no queue)
    return call.result(rows)

`idempotent=False` marks a call that must not run twice (it is sent again
after a lost connection only when it surely did not run).
"""

import datetime
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Tuple

from . import core
from . import statements as sql

__all__ = ['Call', 'create_queue', 'drop_queue', 'set_max_attempts', 'enqueue', 'enqueue_many',
           'lease', 'ack', 'nack', 'extend', 'next_due', 'list_due', 'count', 'cancel',
           'dead_letters', 'replay', 'purge_dead', 'channel', 'settings', 'queues', 'stats',
           'consumers']

Row = Tuple[Any, ...]
When = Optional[Tuple[Optional[datetime.datetime], Optional[datetime.timedelta]]]


class Call(NamedTuple):
    query: str
    args: Tuple[Any, ...]                   # the parameters after the queue
    result: Callable[[List[Row]], Any]      # rows -> what the method returns
    idempotent: bool = True
    every: bool = False                     # about every queue: no queue parameter


def _value(rows: List[Row]) -> Any:
    return rows[0][0]


def _bool(rows: List[Row]) -> bool:
    return bool(rows[0][0])


def _int(rows: List[Row]) -> int:
    return int(rows[0][0])


def _tuples(rows: List[Row]) -> List[Row]:
    return [tuple(row) for row in rows]


def _nothing(rows: List[Row]) -> None:
    return None


def _id(what: str, value: Any) -> None:
    core.check_whole(what, value, core.ID_LEAST)


def create_queue(data_type: str, data_length: int, max_attempts: Optional[int]) -> Call:
    if max_attempts is None:
        return Call(sql.CREATE_QUEUE, (data_type, data_length), _nothing)
    core.check_whole('max_attempts', max_attempts, 1)
    return Call(sql.CREATE_QUEUE_MAX, (data_type, data_length, max_attempts), _nothing)


def drop_queue() -> Call:
    """False when the name resolves to no table."""
    return Call(sql.DROP_QUEUE, (), bool)


def set_max_attempts(max_attempts: Optional[int]) -> Call:
    if max_attempts is not None:
        core.check_whole('max_attempts', max_attempts, 1)
    return Call(sql.SET_MAX_ATTEMPTS, (max_attempts,), _nothing)


def enqueue(tag: str, text: str, when: When) -> Call:
    """`when`: core.schedule()'s (run_at, delay), or None (due now)."""
    if when is None:
        return Call(sql.ENQUEUE, (tag, text), _int, idempotent=False)
    return Call(sql.ENQUEUE_AT, (tag, text) + tuple(when), _int, idempotent=False)


def enqueue_many(tag: str, texts: List[str], when: When) -> Call:
    def ids(rows: List[Row]) -> List[int]:
        return [row[0] for row in rows]
    if when is None:
        return Call(sql.ENQUEUE_MANY, (tag, texts), ids, idempotent=False)
    return Call(sql.ENQUEUE_MANY_AT, (tag, texts) + tuple(when), ids, idempotent=False)


def lease(tag: str, limit: int, seconds: Any) -> Call:
    """The rows leased (decoded by the caller: core.leased())."""
    core.check_whole('limit', limit, 0)
    return Call(sql.LEASE, (tag, limit, core.interval('seconds', seconds)), _tuples,
                idempotent=False)


def ack(id: int, token: str) -> Call:
    _id('id', id)
    return Call(sql.ACK, (id, str(token)), _bool, idempotent=False)


def nack(id: int, token: str, retry_in: Any, error: Optional[str]) -> Call:
    _id('id', id)
    delay = None if retry_in is None else core.interval('retry_in', retry_in, positive=False)
    return Call(sql.NACK, (id, str(token), delay, error), _value, idempotent=False)


def extend(id: int, token: str, seconds: Any) -> Call:
    _id('id', id)
    return Call(sql.EXTEND, (id, str(token), core.interval('seconds', seconds)), _value)


def next_due(tag: str) -> Call:
    return Call(sql.NEXT_DUE_AT, (tag,), _value)


def list_due(tag: Optional[str], limit: Optional[int], ignore_scheduled: bool,
             full: bool) -> Call:
    if limit is not None:
        core.check_whole('limit', limit, -2 ** 31)

    def shaped(rows: List[Row]) -> List[Row]:
        return [tuple(row) if full else tuple(row[:4]) for row in rows]
    return Call(sql.LIST_DUE, (tag, limit, not ignore_scheduled), shaped)


def count(tag: Optional[str], ignore_scheduled: bool) -> Call:
    return Call(sql.COUNT_DUE, (tag, not ignore_scheduled), _int)


def cancel(id: int) -> Call:
    _id('id', id)
    return Call(sql.CANCEL, (id,), _bool, idempotent=False)


def dead_letters(tag: Optional[str], limit: Optional[int]) -> Call:
    if limit is not None:
        core.check_whole('limit', limit, -2 ** 31)
    return Call(sql.DEAD_LETTERS, (tag, limit), _tuples)


def replay(ids: Optional[Iterable[int]], tag: Optional[str]) -> Call:
    if ids is not None:
        ids = list(ids)
        for id_ in ids:
            _id('id', id_)
    return Call(sql.REPLAY, (ids, tag), _int, idempotent=False)


def purge_dead(tag: Optional[str], older_than: Any) -> Call:
    age = None if older_than is None else core.interval('older_than', older_than,
                                                        positive=False)
    return Call(sql.PURGE_DEAD, (tag, age), _int, idempotent=False)


def channel(tag: str) -> Call:
    return Call(sql.CHANNEL, (tag,), lambda rows: str(rows[0][0]))


def settings() -> Call:
    """(data_type, data_length) of the queue."""
    return Call(sql.QUEUE_SETTINGS, (), lambda rows: tuple(rows[0]))


def queues(full: bool) -> Call:
    return Call(sql.QUEUES_FULL if full else sql.QUEUES, (), _tuples, every=True)


def stats(full: bool) -> Call:
    return Call(sql.STATS_FULL if full else sql.STATS, (), _tuples, every=True)


def consumers() -> Call:
    return Call(sql.CONSUMERS, (), _tuples, every=True)
