"""QueueManager: the Python client of the q4pg extension.

The client holds no queue logic.  It calls the SQL functions of the extension
(sql/q4pg--1.0.sql) through the database layer (db.py), passes the queue as a
*value* cast to regclass, and encodes and decodes the data.  Listening is
listener.py's.
"""

import contextlib
import datetime
import json
from typing import Any, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from . import db
from .errors import InvalidArgument, InvalidMessage
from .listener import Listener

__all__ = ['QueueManager', 'Message', 'DATA_TYPES']

DATA_TYPES = ('json', 'jsonb', 'text')


class Message(NamedTuple):
    """A dequeued message: `data` decoded, `raw` the text stored in the queue."""
    id: int
    tag: str
    data: Any
    created_at: datetime.datetime
    raw: str


def _encodable(text: str) -> bool:
    """True when `text` can be sent to the server (UTF-8: no lone surrogates)."""
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True


def _quote_ident(name: str) -> str:
    """`name` as a quoted SQL identifier (what quote_ident gives, always quoted)."""
    return '"%s"' % name.replace('"', '""')


class QueueManager:
    """A q4pg queue: enqueue, dequeue, listen, list, count, cancel.

    `table_name` is the table's name exactly as given; `schema` defaults to
    the connection's current schema.  Thread-safe: calls share a pool of at
    most `max_connections` connections.
    """

    def __init__(self, dsn: str = '', table_name: str = 'mq', data_type: str = 'json',
                 data_length: int = 1023, *, schema: Optional[str] = None,
                 max_connections: int = 10, poll_interval: float = 5.0) -> None:
        data_type = str(data_type).lower()
        if data_type not in DATA_TYPES:
            raise InvalidArgument('q4pg: data type %r is not supported (use json, jsonb or text)'
                                  % data_type)
        for what, name in (('table name', table_name), ('schema', schema)):
            if name is not None and (not isinstance(name, str) or not name or '\0' in name
                                     or not _encodable(name)):
                raise InvalidArgument('q4pg: %s %r is not valid' % (what, name))
        if max_connections < 1:
            raise InvalidArgument('q4pg: max_connections must be at least 1')
        if not poll_interval > 0:
            raise InvalidArgument('q4pg: poll_interval must be more than 0 seconds')
        self.dsn = dsn
        self.table_name = table_name
        self.schema = schema
        self.data_type = data_type
        self.data_length = data_length
        self.poll_interval = poll_interval
        self._db = db.Database(dsn, max_connections)
        # The queue's name in SQL syntax, quoted: the value passed as regclass.
        self._queue = '.'.join(_quote_ident(part) for part in (schema, table_name)
                               if part is not None)

    @classmethod
    def existing(cls, dsn: str = '', table_name: str = 'mq', *, schema: Optional[str] = None,
                 max_connections: int = 10, poll_interval: float = 5.0) -> 'QueueManager':
        """A QueueManager for a queue that exists, with the data type and length
        its table has (q4pg_queue_settings); QueueNotFound when there is none."""
        q = cls(dsn, table_name, schema=schema, max_connections=max_connections,
                poll_interval=poll_interval)
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
        """The queue as people write it: [schema.]table."""
        return '.'.join(p for p in (self.schema, self.table_name) if p is not None)

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
        if raw or self.data_type == 'text':
            if not isinstance(data, str):
                raise InvalidMessage('q4pg: data must be a str (%s), not %s'
                                     % ('raw=True' if raw else 'text queue', type(data).__name__))
            return data
        try:
            return json.dumps(data, separators=(',', ':'), ensure_ascii=False)
        except (TypeError, ValueError, RecursionError) as e:
            raise InvalidMessage('q4pg: data is not JSON-serializable: %s' % e) from e

    def decode(self, text: str) -> Any:
        """Stored text as dequeue gives it: the JSON value on json/jsonb queues, else the text."""
        if self.data_type == 'text':
            return text
        try:
            return json.loads(text)
        except ValueError as e:
            raise InvalidMessage('q4pg: stored data is not JSON (is data_type %r right for '
                                 'this queue?): %s' % (self.data_type, e)) from e

    def _message(self, row: db.Row) -> Message:
        id_, tag, text, created_at = row
        return Message(id_, tag, self.decode(text), created_at, text)

    @contextlib.contextmanager
    def _held(self, query: str, args: Tuple[Any, ...]) -> Iterator[List[Message]]:
        """The Messages a dequeue query takes, held until the block ends:
        committed when it ends normally, rolled back by an exception."""
        transaction = self._db.begin(query, (self._queue,) + args)
        try:
            yield [self._message(row) for row in transaction.rows]
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()

    # -- the API ----------------------------------------------------------------

    def create_table(self) -> None:
        """Creates the queue; harmless when it exists with the same settings."""
        self._run(db.CREATE_QUEUE, (self.data_type, self.data_length))

    def enqueue(self, tag: str, data: Any, *, conn: Any = None, raw: bool = False) -> int:
        """Adds a message; returns its id.

        With `conn` (a psycopg2 connection) it runs in that connection's
        current transaction and does not commit.  With `raw=True`, `data` is
        the text to store, sent verbatim.
        """
        return self._run(db.ENQUEUE, (tag, self._encode(data, raw)), conn, False)[0][0]

    def enqueue_many(self, tag: str, iterable: Iterable[Any], *, conn: Any = None,
                     raw: bool = False) -> List[int]:
        """Adds one message per item in one statement, all or nothing; returns their ids."""
        texts = [self._encode(data, raw) for data in iterable]
        return [row[0] for row in self._run(db.ENQUEUE_MANY, (tag, texts), conn, False)]

    @contextlib.contextmanager
    def dequeue_message(self, tag: str) -> Iterator[Optional[Message]]:
        """Context manager: the oldest free Message of `tag`, or None.

        Leaving the block normally removes the message (commit); leaving it
        by an exception leaves it in the queue (rollback).
        """
        with self._held(db.DEQUEUE, (tag,)) as messages:
            yield messages[0] if messages else None

    @contextlib.contextmanager
    def dequeue(self, tag: str) -> Iterator[Any]:
        """Context manager: the oldest free message's data, or None (see dequeue_message)."""
        with self.dequeue_message(tag) as message:
            yield None if message is None else message.data

    @contextlib.contextmanager
    def dequeue_many(self, tag: str, limit: int) -> Iterator[List[Message]]:
        """Context manager: up to `limit` Messages of `tag`, oldest first (maybe none)."""
        with self._held(db.DEQUEUE_MANY, (tag, limit)) as messages:
            yield messages

    def dequeue_immediate(self, tag: str) -> Any:
        """Removes the oldest free message of `tag` at once; its decoded data, or None."""
        with self.dequeue(tag) as data:
            return data

    def list(self, tag: Optional[str] = None,
             limit: Optional[int] = None) -> List[Tuple[int, str, str, datetime.datetime]]:
        """[(id, tag, data_text, created_at), ...] oldest first; data undecoded."""
        return [tuple(row) for row in self._run(db.LIST, (tag, limit))]  # type: ignore[misc]

    def count(self, tag: Optional[str] = None) -> int:
        """The number of messages of `tag` (None: of every tag), held ones included."""
        return self._run(db.COUNT, (tag,))[0][0]

    def cancel(self, id: int) -> bool:
        """Removes a waiting message; False when there is none or a consumer holds it."""
        return self._run(db.CANCEL, (id,), idempotent=False)[0][0]

    def channel(self, tag: str) -> str:
        """The NOTIFY channel of `tag` on this queue."""
        return self._run(db.CHANNEL, (tag,))[0][0]

    def settings(self) -> Tuple[str, int]:
        """(data_type, data_length) of the queue, as its table says (q4pg_queue_settings)."""
        data_type, data_length = self._run(db.QUEUE_SETTINGS, ())[0]
        return data_type, data_length

    def parse_name(self, name: str) -> Tuple[Optional[str], str]:
        """(schema or None, table) of an SQL name ('app.jobs', '"My Queue"'), split
        by the server's parse_ident(); InvalidArgument when it is none."""
        parts = self._db.run(db.PARSE_IDENT, (name,))[0][0]
        if len(parts) > 2:
            raise InvalidArgument('"%s" is not a valid queue name; give name or schema.name, '
                                  'double-quote names with special characters' % name)
        return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])

    def queues(self) -> List[Tuple[str, str, int]]:
        """[(queue, data_type, data_length), ...]: every queue the role may read."""
        return [tuple(row) for row in self._db.run(db.QUEUES)]  # type: ignore[misc]

    def stats(self) -> List[Tuple[str, str, int, datetime.datetime, datetime.timedelta]]:
        """[(queue, tag, waiting, oldest_created_at, oldest_age), ...] of every readable queue."""
        return [tuple(row) for row in self._db.run(db.STATS)]  # type: ignore[misc]

    def consumers(self) -> List[Tuple[str, int, datetime.datetime, datetime.timedelta,
                                      str, str]]:
        """[(queue, pid, xact_start, xact_age, state, application_name), ...]: the open
        transactions that ran a dequeue on any queue, oldest first (q4pg_consumers)."""
        return [tuple(row) for row in self._db.run(db.CONSUMERS)]  # type: ignore[misc]

    def listen(self, tag: str, *, timeout: Optional[float] = None, limit: Optional[int] = None,
               full: bool = False) -> Iterator[Any]:
        """Generator: waits for messages of `tag` and yields each one's data (Message if `full`).

        Each item is held in a transaction until the loop asks for the next
        one (then it is removed); an exception in the loop body, `break` or
        closing the generator leaves it in the queue.  Stops after `limit`
        items, or after `timeout` seconds without a message.
        """
        listener = self.listener(tag, timeout=timeout, limit=limit, full=full)
        try:
            for item in listener:
                yield item
        finally:
            listener.close(ack=False)

    def listener(self, tag: str, *, timeout: Optional[float] = None,
                 limit: Optional[int] = None, full: bool = False) -> Listener:
        """Like listen(), as a context manager: leaving the block normally (break
        included) removes the current item, leaving it by an exception keeps it."""
        def decode(row: db.Row) -> Any:
            message = self._message(row)
            return message if full else message.data

        return Listener(self._db, self._queue, tag, decode=decode,
                        poll_interval=self.poll_interval, timeout=timeout, limit=limit,
                        name=self.name)
