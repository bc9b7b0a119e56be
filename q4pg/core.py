"""The consumer core both front ends share: QueueManager (client.py, psycopg2,
threads) and AsyncQueueManager (aio.py, psycopg 3, asyncio).

No I/O here: each front end sends statements.py's SQL its own way and asks
this module what to send, what a row means and what to do next.

    Message, LeasedMessage     what a dequeue and a lease hand out
    encode(), decode(), message(), leased()
                               data to stored text and back, per data type
    check_*(), interval(), schedule(), other(), at()
                               argument checks, made before anything is sent
    Ending, ending(), lease_ending()
                               the lifecycle: how leaving a `dequeue` or `lease`
                               block ends its message
    heartbeat_interval()       the heartbeat policy: every third of the lease
    error_text(), said_*()     what is recorded as last_error, and what is logged

The lifecycle, in both front ends:

    dequeue (a transaction)    normal end: done (commit; a batch: q4pg_done_many
                               first); an Exception: fail (q4pg_fail counts it,
                               then commit); any other BaseException
                               (KeyboardInterrupt, SystemExit, asyncio's
                               CancelledError): give back uncounted (rollback)
    lease (no transaction)     normal end: ack (LeaseLost when the lease was
                               lost meanwhile); an Exception or another
                               BaseException: the heartbeat stops and the
                               message is given back at once (q4pg_nack; the
                               lease counted the attempt when it was taken)
"""

import datetime
import enum
import json
import logging
import math
from typing import Any, List, NamedTuple, Optional, Tuple, Type

from . import arguments
from .errors import InvalidArgument, InvalidMessage, LeaseLost, UndecodableMessage, one_line

__all__ = ['Message', 'LeasedMessage', 'DATA_TYPES', 'encode', 'decode', 'message', 'leased',
           'check_manager', 'check_whole', 'check_seconds', 'check_listen', 'interval',
           'schedule', 'other', 'at', 'Ending', 'ending', 'lease_ending', 'heartbeat_interval',
           'error_text', 'lease_lost', 'said_dead', 'said_lease_lost', 'ids_of']

log = logging.getLogger('q4pg')

DATA_TYPES = ('json', 'jsonb', 'text')
ID_LEAST = -2 ** 63      # a bigint's smallest value: the server refuses ids it does not know
ERROR_MAX = 2000         # characters of an error text recorded as last_error
_JSON_SPACE = ' \t\n\r'


class Message(NamedTuple):
    """A dequeued message: `data` decoded (the stored text with raw=True), `raw` the
    text stored in the queue."""
    id: int
    tag: str
    data: Any
    created_at: datetime.datetime
    raw: str


class LeasedMessage(NamedTuple):
    """A leased message: a Message's fields, then the failures counted so far
    (`attempts`, this lease included), the last one's text (`last_error`), and
    the lease (`lease_token`, a UUID as text; `lease_until`, when it ends)."""
    id: int
    tag: str
    data: Any
    created_at: datetime.datetime
    raw: str
    attempts: int
    last_error: Optional[str]
    lease_token: str
    lease_until: datetime.datetime


# -- data ---------------------------------------------------------------------------

def encode(data_type: str, data: Any, raw: bool) -> str:
    """The text to store for `data` in a queue of `data_type`."""
    null = InvalidMessage('q4pg: data must not be null (None): a consumer would get None, '
                          'as from an empty queue')
    if raw or data_type == 'text':
        if not isinstance(data, str):
            raise InvalidMessage('q4pg: data must be a str (%s), not %s'
                                 % ('raw=True' if raw else 'text queue', type(data).__name__))
        if data_type != 'text' and data.strip(_JSON_SPACE) == 'null':
            raise null
        return data
    if data is None:
        raise null
    try:
        return json.dumps(data, separators=(',', ':'), ensure_ascii=False, allow_nan=False)
    except ValueError as e:
        if 'Out of range float' in str(e):
            raise InvalidMessage('q4pg: data holds NaN or Infinity, which JSON cannot '
                                 'represent') from e
        raise InvalidMessage('q4pg: data is not JSON-serializable: %s' % e) from e
    except (TypeError, RecursionError) as e:
        raise InvalidMessage('q4pg: data is not JSON-serializable: %s' % e) from e


def decode(data_type: str, text: str, id: Optional[int] = None,
           tag: Optional[str] = None) -> Any:
    """Stored text as a dequeue gives it: the JSON value on json/jsonb queues,
    else the text; UndecodableMessage (with `raw`) when Python cannot read it."""
    if data_type == 'text':
        return text
    cause: Optional[BaseException] = None
    try:
        value = json.loads(text)
        if value is not None:
            return value
        # stored before q4pg 1.1 refused it: None would look like no message
        reason = ('it is the JSON null, which a consumer could not tell from an empty '
                  'queue (q4pg 1.0 accepted it)')
    except RecursionError as e:
        reason = 'its JSON is nested deeper than Python reads'
        cause = e
    except ValueError as e:
        reason = 'it is not JSON (is data_type %r right for this queue?): %s' % (data_type, e)
        cause = e
    if id is None:
        text_ = 'q4pg: stored data cannot be decoded: %s' % reason
    else:
        text_ = ('q4pg: message %d (tag %r) cannot be decoded: %s; it stays in the queue, '
                 'counted as a failure: take it with raw=True, or cancel(%d)'
                 % (id, tag, reason, id))
    raise UndecodableMessage(text_, id=id, tag=tag, raw=text) from cause


def message(data_type: str, row: Tuple[Any, ...], raw: bool) -> Message:
    """A taken row (id, tag, data, created_at, ...) as a Message; data decoded unless `raw`."""
    id_, tag, text, created_at = row[:4]
    return Message(id_, tag, text if raw else decode(data_type, text, id_, tag), created_at,
                   text)


def leased(data_type: str, row: Tuple[Any, ...], raw: bool) -> LeasedMessage:
    """A q4pg_lease row as a LeasedMessage; data decoded unless `raw`."""
    return LeasedMessage(*message(data_type, row, raw), *row[4:8])


# -- arguments ----------------------------------------------------------------------

def check_whole(what: str, value: Any, least: int) -> None:
    """Refuses a `value` that is no int of at least `least`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument('q4pg: %s must be an int, not %r' % (what, value))
    if value < least:
        raise InvalidArgument('q4pg: %s must be at least %d, not %d' % (what, least, value))


def check_seconds(what: str, value: Any, positive: bool) -> None:
    """Refuses a `value` that is no finite number of seconds, zero or more (more than zero
    when `positive`)."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0 or (positive and value == 0)):
        raise InvalidArgument('q4pg: %s must be a number of seconds, %s, not %r'
                              % (what, 'more than 0' if positive else '0 or more', value))


def interval(what: str, value: Any, positive: bool = True) -> datetime.timedelta:
    """A number of seconds (or a timedelta) as a timedelta, checked."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    check_seconds(what, value, positive)
    return datetime.timedelta(seconds=value)


def schedule(when: Any) -> Tuple[Optional[datetime.datetime], Optional[datetime.timedelta]]:
    """`when` as (run_at, delay): a datetime is a due time (a naive one is read in
    the server session's time zone), a timedelta or a number of seconds a delay
    from now (the server's clock)."""
    if isinstance(when, datetime.datetime):
        return when, None
    if isinstance(when, datetime.date):
        raise InvalidArgument('q4pg: schedule must be a datetime, a timedelta or seconds, not a '
                              'date (%r)' % (when,))
    return None, interval('schedule', when, positive=False)


def check_manager(dsn: Any, table_name: Any, data_type: Any, data_length: Any,
                  excepted_times_to_ignore: Any, schema: Any, max_connections: Any,
                  poll_interval: Any, listen_dsn: Any) -> str:
    """Checks a manager's constructor arguments (InvalidArgument naming the bad
    one); the queue as an SQL name, the value the server reads as regclass."""
    if not isinstance(data_type, str) or data_type.lower() not in DATA_TYPES:
        raise InvalidArgument('q4pg: data_type %r is not supported (use json, jsonb or '
                              'text)' % (data_type,))
    if schema is not None:
        arguments.check_name('schema', schema, 1)
        if isinstance(table_name, str) and len(arguments.sql_name(table_name) or ()) == 2:
            raise InvalidArgument('q4pg: table_name %r names its schema already: leave '
                                  'out schema=%r' % (table_name, schema))
    arguments.check_name('table_name', table_name, 2)
    arguments.check_int('data_length', data_length, 1)
    arguments.check_int('excepted_times_to_ignore', excepted_times_to_ignore, 0)
    arguments.check_int('max_connections', max_connections, 1)
    check_seconds('poll_interval', poll_interval, positive=True)
    if not isinstance(dsn, str):
        raise InvalidArgument('q4pg: dsn must be a str, not %r' % (dsn,))
    if listen_dsn is not None and not isinstance(listen_dsn, str):
        raise InvalidArgument('q4pg: listen_dsn must be a str or None, not %r' % (listen_dsn,))
    return table_name if schema is None else '%s.%s' % (schema, table_name)


def check_listen(timeout: Optional[float], stop_after_idle: Optional[float],
                 limit: Optional[int], lease: Optional[float]) -> None:
    """Checks listen()'s arguments."""
    if timeout is not None:
        check_seconds('timeout', timeout, positive=True)
    if stop_after_idle is not None:
        check_seconds('stop_after_idle', stop_after_idle, positive=False)
    if limit is not None:
        check_whole('limit', limit, 0)
    if lease is not None:
        check_seconds('lease', lease, positive=True)


def other(other_sess: Any, conn: Any) -> Any:
    """The caller's session, given as other_sess (the original API's name) or conn."""
    if other_sess is not None and conn is not None and other_sess is not conn:
        raise InvalidArgument('q4pg: give other_sess or conn, not both')
    return other_sess if other_sess is not None else conn


def at(error: InvalidMessage, index: Optional[int]) -> InvalidMessage:
    """`error` about item `index` of a batch."""
    if index is None:
        return error
    text = str(error)
    text = text[len('q4pg: '):] if text.startswith('q4pg: ') else text
    located = InvalidMessage('q4pg: item %d: %s' % (index, text), pgcode=error.pgcode,
                             pgerror=error.pgerror)
    located.index = index
    return located


# -- the lifecycle ------------------------------------------------------------------

class Ending(enum.Enum):
    """How a held message ends."""
    DONE = 'done'            # dequeue: removed, committed
    FAIL = 'fail'            # dequeue: a failure counted (q4pg_fail), committed
    GIVE_BACK = 'give back'  # dequeue: rolled back, uncounted
    ACK = 'ack'              # lease: removed (q4pg_ack)
    NACK = 'nack'            # lease: given back now (q4pg_nack, the error recorded)


def ending(exc_type: Optional[Type[BaseException]]) -> Ending:
    """How leaving a dequeue block with `exc_type` (None: normally) ends its messages.
    Cancellation (asyncio.CancelledError, a BaseException) is not the job's failure."""
    if exc_type is None:
        return Ending.DONE
    if issubclass(exc_type, Exception):
        return Ending.FAIL
    return Ending.GIVE_BACK


def lease_ending(exc_type: Optional[Type[BaseException]]) -> Ending:
    """How leaving a lease block with `exc_type` ends its message: a lease is given
    back at once whatever ended the block, so that it need not wait to expire."""
    return Ending.ACK if exc_type is None else Ending.NACK


def heartbeat_interval(seconds: float) -> float:
    """How often a heartbeat extends a lease of `seconds`: every third of it, so that
    two beats may fail before it runs out."""
    return seconds / 3.0


def error_text(exc: BaseException) -> str:
    """An exception as recorded in last_error: 'Type: message', on one line."""
    text = one_line(exc)
    text = '%s: %s' % (type(exc).__name__, text) if text else type(exc).__name__
    return text[:ERROR_MAX]


def lease_lost(msg: LeasedMessage) -> LeaseLost:
    """The error of a block that ended well after its lease was lost."""
    return LeaseLost('q4pg: the lease of message %d (tag %r) was lost before its work '
                     'ended: another consumer leased it since, so it may be processed '
                     'twice (make the lease longer than a stall can be)'
                     % (msg.id, msg.tag), id=msg.id)


def said_dead(queue: str, id_: int, error: Optional[str]) -> None:
    """Logs (WARNING) that message `id_` became a dead letter."""
    log.warning('q4pg: message %d of queue %s failed once too often and is now a dead '
                'letter (last error: %s)', id_, queue, error)


def said_lease_lost(queue: str, id_: int, ended: bool) -> None:
    """Logs (WARNING) that the lease of message `id_` was lost before its work ended
    (`ended`: well, so it may have been done twice) or failed."""
    log.warning('q4pg: the lease of message %d of queue %s was lost before its work %s: '
                'another consumer leased it since%s', id_, queue,
                'ended' if ended else 'failed', ', so it may be processed twice' if ended else '')


def ids_of(messages: List[Any]) -> List[int]:
    """The ids of held messages (Messages, or taken rows)."""
    return [m[0] for m in messages]
