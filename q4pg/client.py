"""QueueManager: the Python client of the q4pg extension.

The client holds no queue logic.  It calls the SQL functions of the extension
(sql/q4pg--1.0.sql) through the database layer (db.py), passes the queue as a
*value* cast to regclass, and encodes and decodes the data.  Listening is
listener.py's.
"""

import contextlib
import datetime
import json
import math
from typing import Any, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from . import db
from .errors import InvalidArgument, InvalidMessage, UndecodableMessage
from .listener import Listener

__all__ = ['QueueManager', 'Message', 'DATA_TYPES']

DATA_TYPES = ('json', 'jsonb', 'text')

_JSON_SPACE = ' \t\n\r'


class Message(NamedTuple):
    """A dequeued message: `data` decoded (the stored text with raw=True), `raw` the
    text stored in the queue."""
    id: int
    tag: str
    data: Any
    created_at: datetime.datetime
    raw: str


def _sql_name_parts(name: str) -> Optional[int]:
    """How many dot-separated parts SQL reads in `name` (a dot between double
    quotes is part of a name); None when its double quotes do not pair up."""
    parts, quoted = 1, False
    for ch in name:
        if ch == '"':
            quoted = not quoted
        elif ch == '.' and not quoted:
            parts += 1
    return None if quoted else parts


def _check_name(what: str, name: Any, most_parts: int) -> None:
    """Refuses what cannot be an SQL name of at most `most_parts` parts; the
    server reads the rest (and refuses what does not parse)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument('q4pg: %s must be a non-empty str, not %r' % (what, name))
    try:
        name.encode('utf-8')
    except UnicodeEncodeError:
        raise InvalidArgument('q4pg: %s %r is not valid UTF-8' % (what, name)) from None
    if '\0' in name:
        raise InvalidArgument('q4pg: %s %r holds a NUL character' % (what, name))
    parts = _sql_name_parts(name)
    if parts is None:
        raise InvalidArgument('q4pg: %s %r is not a valid SQL name: a double quote is not '
                              'closed' % (what, name))
    if parts > most_parts:
        raise InvalidArgument('q4pg: %s %r has %d dotted parts, at most %d here (give name or '
                              'schema.name; double-quote a name with dots)'
                              % (what, name, parts, most_parts))


def _whole(what: str, value: Any, least: int) -> None:
    """Refuses a `value` that is no int of at least `least`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument('q4pg: %s must be an int, not %r' % (what, value))
    if value < least:
        raise InvalidArgument('q4pg: %s must be at least %d, not %d' % (what, least, value))


def _seconds(what: str, value: Any, positive: bool) -> None:
    """Refuses a `value` that is no finite number of seconds, zero or more (more than zero
    when `positive`)."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0 or (positive and value == 0)):
        raise InvalidArgument('q4pg: %s must be a number of seconds, %s, not %r'
                              % (what, 'more than 0' if positive else '0 or more', value))


def _at(error: InvalidMessage, index: Optional[int]) -> InvalidMessage:
    """`error` about item `index` of a batch."""
    if index is None:
        return error
    text = str(error)
    text = text[len('q4pg: '):] if text.startswith('q4pg: ') else text
    located = InvalidMessage('q4pg: item %d: %s' % (index, text), pgcode=error.pgcode,
                             pgerror=error.pgerror)
    located.index = index
    return located


class QueueManager:
    """A q4pg queue: enqueue, dequeue, listen, list, count, cancel.

    `table_name` is an SQL name, read by the server as SQL reads it:
    'app.jobs' is table jobs in schema app, 'Jobs' is jobs, '"Jobs"' is Jobs.
    `schema`, an SQL name too, qualifies an unqualified table_name (default:
    the connection's current schema).  Thread-safe: calls share a pool of at
    most `max_connections` connections.  `listen_dsn`, when given, is where
    listeners connect to LISTEN (a session of their own: directly, or a
    session-mode pool); everything else goes to `dsn`, which may be a
    transaction-mode pool such as PgBouncer's.
    """

    def __init__(self, dsn: str = '', table_name: str = 'mq', data_type: str = 'json',
                 data_length: int = 1023, *, schema: Optional[str] = None,
                 max_connections: int = 10, poll_interval: float = 5.0,
                 listen_dsn: Optional[str] = None) -> None:
        if not isinstance(data_type, str) or data_type.lower() not in DATA_TYPES:
            raise InvalidArgument('q4pg: data_type %r is not supported (use json, jsonb or '
                                  'text)' % (data_type,))
        if schema is not None:
            _check_name('schema', schema, 1)
            if isinstance(table_name, str) and _sql_name_parts(table_name) == 2:
                raise InvalidArgument('q4pg: table_name %r names its schema already: leave '
                                      'out schema=%r' % (table_name, schema))
        _check_name('table_name', table_name, 2)
        _whole('data_length', data_length, -2 ** 31)    # its minimum is the server's to say
        _whole('max_connections', max_connections, 1)
        _seconds('poll_interval', poll_interval, positive=True)
        if listen_dsn is not None and not isinstance(listen_dsn, str):
            raise InvalidArgument('q4pg: listen_dsn must be a str or None, not %r' % (listen_dsn,))
        # InvalidDsn for a bad dsn or listen_dsn
        self._db = db.Database(dsn, max_connections, listen_dsn=listen_dsn)
        self.dsn, self.listen_dsn = dsn, listen_dsn
        self.table_name, self.schema = table_name, schema
        self.data_type, self.data_length = data_type.lower(), data_length
        self.poll_interval = poll_interval
        # The queue as an SQL name: the value the server reads as regclass.
        self._queue = table_name if schema is None else '%s.%s' % (schema, table_name)

    @classmethod
    def existing(cls, dsn: str = '', table_name: str = 'mq', *, schema: Optional[str] = None,
                 max_connections: int = 10, poll_interval: float = 5.0,
                 listen_dsn: Optional[str] = None) -> 'QueueManager':
        """A QueueManager for a queue that exists, with the data type and length
        its table has (q4pg_queue_settings); QueueNotFound when there is none."""
        q = cls(dsn, table_name, schema=schema, max_connections=max_connections,
                poll_interval=poll_interval, listen_dsn=listen_dsn)
        try:
            q.data_type, q.data_length = q.settings()
        except BaseException:
            q.close()
            raise
        return q

    def __repr__(self) -> str:
        return '<q4pg.QueueManager %s>' % self.name

    @property
    def name(self) -> str:
        """The queue as an SQL name: table_name, qualified by schema when given."""
        return self._queue

    def __enter__(self) -> 'QueueManager':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the pooled connections (those in use when they are given back)."""
        self._db.close()

    # -- running the SQL functions ------------------------------------------------

    def _run(self, query: str, args: Tuple[Any, ...], conn: Any = None,
             idempotent: bool = True) -> List[db.Row]:
        """Runs a query about this queue on its own (one round trip), or in the
        caller's `conn`; `idempotent=False` for one that must not run twice."""
        args = (self._queue,) + args
        if conn is not None:
            return db.Database.run_in(conn, query, args)
        return self._db.run(query, args, idempotent=idempotent)

    def _encode(self, data: Any, raw: bool) -> str:
        """The text to store for `data`."""
        null = InvalidMessage('q4pg: data must not be null (None): a consumer would get None, '
                              'as from an empty queue')
        if raw or self.data_type == 'text':
            if not isinstance(data, str):
                raise InvalidMessage('q4pg: data must be a str (%s), not %s'
                                     % ('raw=True' if raw else 'text queue', type(data).__name__))
            if self.data_type != 'text' and data.strip(_JSON_SPACE) == 'null':
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

    def decode(self, text: str) -> Any:
        """Stored text as a dequeue gives it: the JSON value on json/jsonb queues,
        else the text; UndecodableMessage (with `raw`) when Python cannot read it."""
        return self._decode(text, None, None)

    def _decode(self, text: str, id: Optional[int], tag: Optional[str]) -> Any:
        if self.data_type == 'text':
            return text
        try:
            return json.loads(text)
        except RecursionError as e:
            reason = 'its JSON is nested deeper than Python reads'
            cause: BaseException = e
        except ValueError as e:
            reason = 'it is not JSON (is data_type %r right for this queue?): %s' % (
                self.data_type, e)
            cause = e
        if id is None:
            message = 'q4pg: stored data cannot be decoded: %s' % reason
        else:
            message = ('q4pg: message %d (tag %r) cannot be decoded: %s; it stays in the queue: '
                       'take it with raw=True, or cancel(%d)' % (id, tag, reason, id))
        raise UndecodableMessage(message, id=id, tag=tag, raw=text) from cause

    def _message(self, row: db.Row, raw: bool) -> Message:
        """A dequeued row as a Message; data decoded unless `raw`."""
        id_, tag, text, created_at = row
        return Message(id_, tag, text if raw else self._decode(text, id_, tag), created_at, text)

    @contextlib.contextmanager
    def _held(self, query: str, args: Tuple[Any, ...], raw: bool) -> Iterator[List[Message]]:
        """The Messages a dequeue query takes, held until the block ends:
        committed when it ends normally, rolled back by an exception (one that
        decoding raises included)."""
        transaction = self._db.begin(query, (self._queue,) + args)
        try:
            yield [self._message(row, raw) for row in transaction.rows]
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()

    def _refused_item(self, tag: str, texts: List[str]) -> Optional[int]:
        """The index of the first of `texts` that the server refuses (it refused
        them all together), found by storing prefixes in transactions that are
        rolled back; None when the refusal is not about an item (the tag...)."""
        def accepted(n: int) -> bool:
            try:
                self._db.begin(db.ENQUEUE_MANY, (self._queue, tag, texts[:n])).rollback()
            except InvalidMessage:
                return False
            return True

        if not accepted(0):
            return None
        good, bad = 0, len(texts)   # texts[:good] is accepted, texts[:bad] refused
        while bad - good > 1:
            middle = (good + bad) // 2
            if accepted(middle):
                good = middle
            else:
                bad = middle
        return bad - 1

    # -- the API ----------------------------------------------------------------

    def create_table(self) -> None:
        """Creates the queue; harmless when it exists with the same settings."""
        self._run(db.CREATE_QUEUE, (self.data_type, self.data_length))

    def enqueue(self, tag: str, data: Any, *, conn: Any = None, raw: bool = False) -> int:
        """Adds a message; returns its id.

        With `conn` (a psycopg2 connection) it runs in that connection's
        current transaction and does not commit.  With `raw=True`, `data` is
        the text to store, sent verbatim.  None (JSON null) is refused: a
        consumer could not tell it from an empty queue.
        """
        return int(self._run(db.ENQUEUE, (tag, self._encode(data, raw)), conn, False)[0][0])

    def enqueue_many(self, tag: str, iterable: Iterable[Any], *, conn: Any = None,
                     raw: bool = False) -> List[int]:
        """Adds one message per item in one statement, all or nothing; returns their ids.

        A refused item raises InvalidMessage whose `index` says which (not in
        the caller's `conn`, whose transaction the error aborted).
        """
        texts = []
        for index, data in enumerate(iterable):
            try:
                texts.append(self._encode(data, raw))
            except InvalidMessage as e:
                raise _at(e, index) from e.__cause__
        try:
            rows = self._run(db.ENQUEUE_MANY, (tag, texts), conn, False)
        except InvalidMessage as e:
            if conn is not None or not texts:
                raise
            raise _at(e, self._refused_item(tag, texts)) from e
        return [row[0] for row in rows]

    @contextlib.contextmanager
    def dequeue_message(self, tag: str, *, raw: bool = False) -> Iterator[Optional[Message]]:
        """Context manager: the oldest free Message of `tag`, or None.

        Leaving the block normally removes the message (commit); leaving it
        by an exception leaves it in the queue (rollback).  A message the
        client cannot decode raises UndecodableMessage and stays; `raw=True`
        gives the stored text as data, undecoded.
        """
        with self._held(db.DEQUEUE, (tag,), raw) as messages:
            yield messages[0] if messages else None

    @contextlib.contextmanager
    def dequeue(self, tag: str, *, raw: bool = False) -> Iterator[Any]:
        """Context manager: the oldest free message's data, or None (see dequeue_message)."""
        with self.dequeue_message(tag, raw=raw) as message:
            yield None if message is None else message.data

    @contextlib.contextmanager
    def dequeue_many(self, tag: str, limit: int, *, raw: bool = False) -> Iterator[List[Message]]:
        """Context manager: up to `limit` Messages of `tag`, oldest first (maybe none)."""
        _whole('limit', limit, -2 ** 31)   # a negative one is the server's to refuse
        with self._held(db.DEQUEUE_MANY, (tag, limit), raw) as messages:
            yield messages

    def dequeue_immediate(self, tag: str, *, raw: bool = False) -> Any:
        """Removes the oldest free message of `tag` at once; its data, or None.

        Decoded before it is removed: a message the client cannot decode stays
        (UndecodableMessage).
        """
        with self.dequeue(tag, raw=raw) as data:
            return data

    def list(self, tag: Optional[str] = None,
             limit: Optional[int] = None) -> List[Tuple[int, str, str, datetime.datetime]]:
        """[(id, tag, data_text, created_at), ...] oldest first; data undecoded."""
        if limit is not None:
            _whole('limit', limit, -2 ** 31)
        return [tuple(row) for row in self._run(db.LIST, (tag, limit))]

    def count(self, tag: Optional[str] = None) -> int:
        """The number of messages of `tag` (None: of every tag), held ones included."""
        return int(self._run(db.COUNT, (tag,))[0][0])

    def cancel(self, id: int) -> bool:
        """Removes a waiting message; False when there is none or a consumer holds it."""
        _whole('id', id, -2 ** 63)
        return bool(self._run(db.CANCEL, (id,), idempotent=False)[0][0])

    def channel(self, tag: str) -> str:
        """The NOTIFY channel of `tag` on this queue."""
        return str(self._run(db.CHANNEL, (tag,))[0][0])

    def settings(self) -> Tuple[str, int]:
        """(data_type, data_length) of the queue, as its table says (q4pg_queue_settings)."""
        data_type, data_length = self._run(db.QUEUE_SETTINGS, ())[0]
        return data_type, data_length

    def queues(self) -> List[Tuple[str, str, int]]:
        """[(queue, data_type, data_length), ...]: every queue the role may read."""
        return [tuple(row) for row in self._db.run(db.QUEUES)]

    def stats(self) -> List[Tuple[str, str, int, datetime.datetime, datetime.timedelta]]:
        """[(queue, tag, waiting, oldest_created_at, oldest_age), ...] of every readable queue."""
        return [tuple(row) for row in self._db.run(db.STATS)]

    def consumers(self) -> List[Tuple[str, int, datetime.datetime, datetime.timedelta,
                                      str, str]]:
        """[(queue, pid, xact_start, xact_age, state, application_name), ...]: the open
        transactions that ran a dequeue on any queue, oldest first (q4pg_consumers)."""
        return [tuple(row) for row in self._db.run(db.CONSUMERS)]

    def listen(self, tag: str, *, timeout: Optional[float] = None, limit: Optional[int] = None,
               full: bool = False, raw: bool = False) -> Iterator[Any]:
        """Generator: waits for messages of `tag` and yields each one's data (Message if `full`).

        Each item is held in a transaction until the loop asks for the next
        one (then it is removed); an exception in the loop body, `break` or
        closing the generator leaves it in the queue.  Stops after `limit`
        items, or after `timeout` seconds without a message.  A message the
        client cannot decode raises UndecodableMessage and stays (see
        dequeue_message); `raw=True` gives the stored text.
        """
        self._check_listen(timeout, limit)
        return self._listen(tag, timeout, limit, full, raw)

    def _listen(self, tag: str, timeout: Optional[float], limit: Optional[int], full: bool,
                raw: bool) -> Iterator[Any]:
        listener = self.listener(tag, timeout=timeout, limit=limit, full=full, raw=raw)
        try:
            yield from listener
        finally:
            listener.close(ack=False)

    @staticmethod
    def _check_listen(timeout: Optional[float], limit: Optional[int]) -> None:
        if timeout is not None:
            _seconds('timeout', timeout, positive=False)
        if limit is not None:
            _whole('limit', limit, 0)

    def listener(self, tag: str, *, timeout: Optional[float] = None,
                 limit: Optional[int] = None, full: bool = False, raw: bool = False) -> Listener:
        """Like listen(), as a context manager: leaving the block normally (break
        included) removes the current item, leaving it by an exception keeps it."""
        self._check_listen(timeout, limit)

        def item(row: db.Row) -> Any:
            message = self._message(row, raw)
            return message if full else message.data

        return Listener(self._db, self._queue, tag, decode=item,
                        poll_interval=self.poll_interval, timeout=timeout, limit=limit)
