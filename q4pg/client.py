"""QueueManager: the Python client of the q4pg extension.

The client holds no queue logic.  It calls the SQL functions of the extension
(sql/q4pg--<version>.sql) through the database layer (db.py), passes the queue
as a *value* cast to regclass.  What is shared with the asyncio client
(aio.py) is core.py's: the message types, encoding and decoding, argument
checks, the lifecycle of a held message.  Listening is listener.py's, keeping
leases alive lease.py's.

It keeps the original py-q4pg API (docs/python.md): other_sess,
schedule, ignore_scheduled, excepted_times_to_ignore, drop_table, reset_table,
listen(tag, timeout) handing out None.
"""

import datetime
import logging
from typing import Any, ContextManager, Iterable, Iterator, List, Optional, Tuple

from . import calls, core, db, hints, v10
from .core import LeasedMessage, Message
from .errors import ExtensionNotInstalled, InvalidArgument, InvalidMessage, Q4pgError
from .held import Held
from .lease import leased_now, leasing
from .listener import Listener

__all__ = ['QueueManager', 'Message', 'LeasedMessage', 'DATA_TYPES']

log = logging.getLogger('q4pg')

DATA_TYPES = core.DATA_TYPES


def _session_like(value: Any) -> bool:
    """Whether `value` looks like a session to run in (a psycopg2 connection or
    cursor, an SQLAlchemy Session or Connection) rather than a number."""
    return any(callable(getattr(value, name, None))
               for name in ('cursor', 'execute', 'exec_driver_sql'))


class QueueManager:
    """A q4pg queue: enqueue, dequeue, lease, listen, list, count, cancel.

    `table_name` is an SQL name, read by the server as SQL reads it:
    'app.jobs' is table jobs in schema app, 'Jobs' is jobs, '"Jobs"' is Jobs.
    `schema`, an SQL name too, qualifies an unqualified table_name (default:
    the connection's current schema).  `excepted_times_to_ignore=N` (0: the
    queue's own max_attempts): a message that failed N times (an exception
    inside `with dequeue()` or a listen() loop) is set aside as a dead letter.
    Thread-safe: calls share a pool of at most `max_connections` connections.
    `listen_dsn`, when given, is where listeners connect to LISTEN (a session
    of their own: directly, or a session-mode pool); everything else goes to
    `dsn`, which may be a transaction-mode pool such as PgBouncer's.
    """

    def __init__(self, dsn: str = '', table_name: str = 'mq', data_type: str = 'json',
                 data_length: int = 1023, excepted_times_to_ignore: int = 0, *,
                 schema: Optional[str] = None, max_connections: int = 10,
                 poll_interval: float = 5.0, listen_dsn: Optional[str] = None) -> None:
        queue = core.check_manager(dsn, table_name, data_type, data_length,
                                   excepted_times_to_ignore, schema, max_connections,
                                   poll_interval, listen_dsn)
        # InvalidDsn for a bad dsn or listen_dsn
        self._db = db.Database(dsn, max_connections, listen_dsn=listen_dsn)
        self.dsn, self.listen_dsn = dsn, listen_dsn
        self.table_name, self.schema = table_name, schema
        self.data_type, self.data_length = data_type.lower(), data_length
        self.excepted_times_to_ignore = excepted_times_to_ignore
        self.poll_interval = poll_interval
        # The queue as an SQL name: the value the server reads as regclass.
        self._queue = queue
        # Which q4pg the database has: on 1.0, calls go the 1.0 way (v10.py)
        self._server = v10.Server(self._db, self._queue)

    @classmethod
    def existing(cls, dsn: str = '', table_name: str = 'mq', *, schema: Optional[str] = None,
                 max_connections: int = 10, poll_interval: float = 5.0,
                 listen_dsn: Optional[str] = None,
                 excepted_times_to_ignore: int = 0) -> 'QueueManager':
        """A QueueManager for a queue that exists, with the data type and length
        its table has (q4pg_queue_settings); QueueNotFound when there is none."""
        q = cls(dsn, table_name, excepted_times_to_ignore=excepted_times_to_ignore,
                schema=schema, max_connections=max_connections, poll_interval=poll_interval,
                listen_dsn=listen_dsn)
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

    def _run(self, query: str, args: Tuple[Any, ...], other_sess: Any = None,
             idempotent: bool = True) -> List[db.Row]:
        """Runs a query about this queue on its own (one round trip), or in the
        caller's session `other_sess`; `idempotent=False` for one that must not
        run twice."""
        old = self._server.old(other_sess)
        sent, sent_args = v10.as_1_0(old, query, args)
        try:
            if other_sess is not None:
                return db.Database.caller(other_sess).run(sent, (self._queue,) + sent_args)
            return self._db.run(sent, (self._queue,) + sent_args, idempotent=idempotent)
        except ExtensionNotInstalled as e:
            # Nothing ran: on a database found to have q4pg 1.0, the call goes again its way.
            if old is not None or self._server.after_missing(e, other_sess) is None:
                raise
        return self._run(query, args, other_sess, idempotent)

    def _call(self, call: calls.Call, other_sess: Any = None) -> Any:
        """Runs a call (calls.py) about this queue, or every queue; its result."""
        if call.every:
            return call.result(self._run_all(call.query))
        return call.result(self._run(call.query, call.args, other_sess, call.idempotent))

    def _run_all(self, query: str) -> List[db.Row]:
        """Runs a query about every queue on its own (one round trip)."""
        old = self._server.old()
        sent, _ = v10.as_1_0(old, query, ())
        try:
            return self._db.run(sent)
        except Q4pgError as e:
            # 42703: 1.1's columns of q4pg_queues() or q4pg_stats() on 1.0
            if (old is not None or e.pgcode not in ('42883', '42703')
                    or self._server.after_missing(e) is None):
                raise
        return self._run_all(query)

    @property
    def _max_attempts(self) -> Optional[int]:
        """What q4pg_fail is told: excepted_times_to_ignore, or None (the queue's setting)."""
        return self.excepted_times_to_ignore or None

    def _encode(self, data: Any, raw: bool) -> str:
        """The text to store for `data`."""
        return core.encode(self.data_type, data, raw)

    def decode(self, text: str) -> Any:
        """Stored text as a dequeue gives it: the JSON value on json/jsonb queues,
        else the text; UndecodableMessage (with `raw`) when Python cannot read it."""
        return core.decode(self.data_type, text)

    def _message(self, row: db.Row, raw: bool) -> Message:
        """A taken row (id, tag, data, created_at, ...) as a Message; data decoded unless `raw`."""
        return core.message(self.data_type, row, raw)

    def _leased_message(self, row: db.Row, raw: bool) -> LeasedMessage:
        """A q4pg_lease row as a LeasedMessage; data decoded unless `raw`."""
        return core.leased(self.data_type, row, raw)

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

    # -- the queue ----------------------------------------------------------------

    def create_table(self, other_sess: Any = None, *, max_attempts: Optional[int] = None) -> None:
        """Creates the queue; harmless when it exists with the same settings.

        `max_attempts`: failures after which a message is set aside as a dead
        letter (None: no limit, or the existing queue's setting).
        """
        call = calls.create_queue(self.data_type, self.data_length, max_attempts)
        try:
            self._call(call, other_sess)
        except InvalidArgument as e:
            hinted = hints.schema_missing(e, self._queue)     # 3F000: CREATE SCHEMA first
            if hinted is None:
                raise
            raise hinted from e

    def drop_table(self, other_sess: Any = None) -> bool:
        """Drops the queue and its messages (q4pg_drop_queue); False when there is no
        such table.  A table that is no queue is refused (QueueNotFound)."""
        return self._call(calls.drop_queue(), other_sess)

    def reset_table(self, other_sess: Any = None) -> None:
        """Drops the queue (if there is one) and creates it anew, empty, in one transaction."""
        if other_sess is not None:
            self.drop_table(other_sess)
            self.create_table(other_sess)
            return
        self._db.begin(db.DROP_QUEUE + '; ' + db.CREATE_QUEUE,
                       (self._queue, self._queue, self.data_type, self.data_length)).commit()

    def set_max_attempts(self, max_attempts: Optional[int]) -> None:
        """Sets the queue's max_attempts (None: no limit); messages already at or over
        it become dead letters at once."""
        self._call(calls.set_max_attempts(max_attempts))

    # -- producing ----------------------------------------------------------------

    def enqueue(self, tag: str, data: Any, other_sess: Any = None, schedule: Any = None, *,
                conn: Any = None, raw: bool = False) -> int:
        """Adds a message; returns its id.

        `schedule`: not delivered before then: a datetime (aware; a naive one
        is read in the server session's time zone), or a timedelta or number
        of seconds from now.  With `other_sess` (or `conn`: a psycopg2
        connection or cursor, an SQLAlchemy Session or Connection) it runs in
        that session's current transaction and does not commit.  With
        `raw=True`, `data` is the text to store, sent verbatim.  None (JSON
        null) is refused: a consumer could not tell it from an empty queue.
        """
        session = core.other(other_sess, conn)
        text = self._encode(data, raw)
        when = None if schedule is None else core.schedule(schedule)
        return self._call(calls.enqueue(tag, text, when), session)

    def enqueue_many(self, tag: str, iterable: Iterable[Any], other_sess: Any = None,
                     schedule: Any = None, *, conn: Any = None,
                     raw: bool = False) -> List[int]:
        """Adds one message per item in one statement, all or nothing; returns their ids.

        `schedule` and `other_sess` as for enqueue().  A refused item raises
        InvalidMessage whose `index` says which (not in the caller's session,
        whose transaction the error aborted).
        """
        session = core.other(other_sess, conn)
        when = None if schedule is None else core.schedule(schedule)
        texts = []
        for index, data in enumerate(iterable):
            try:
                texts.append(self._encode(data, raw))
            except InvalidMessage as e:
                raise core.at(e, index) from e.__cause__
        try:
            return self._call(calls.enqueue_many(tag, texts, when), session)
        except InvalidMessage as e:
            if session is not None or not texts:
                raise
            raise core.at(e, self._refused_item(tag, texts)) from e

    # -- consuming ----------------------------------------------------------------

    def dequeue_message(self, tag: str, other_sess: Any = None, *,
                        raw: bool = False) -> ContextManager[Optional[Message]]:
        """Context manager: the first due Message of `tag` no one holds, or None.

        Leaving the block normally removes the message (commit); leaving it
        by an exception gives it back with a failure counted against it
        (attempts + 1; set aside as a dead letter at max_attempts); by
        KeyboardInterrupt or SystemExit, uncounted.  A message the client
        cannot decode counts a failure and raises UndecodableMessage;
        `raw=True` gives the stored text as data, undecoded.  With
        `other_sess`, all this happens in the caller's transaction, which the
        caller ends.
        """
        return Held(self, tag, 1, raw, other_sess, 'message')

    def dequeue(self, tag: str, other_sess: Any = None, *,
                raw: bool = False) -> ContextManager[Any]:
        """Context manager: the first due message's data, or None (see dequeue_message)."""
        return Held(self, tag, 1, raw, other_sess, 'data')

    def dequeue_many(self, tag: str, limit: int, other_sess: Any = None, *,
                     raw: bool = False) -> ContextManager[List[Message]]:
        """Context manager: up to `limit` due Messages of `tag`, in order (maybe none);
        an exception counts a failure against each."""
        core.check_whole('limit', limit, -2 ** 31)   # a negative one is the server's to refuse
        return Held(self, tag, limit, raw, other_sess, 'many')

    def dequeue_immediate(self, tag: str, other_sess: Any = None, *, raw: bool = False) -> Any:
        """Removes the first due message of `tag` at once; its data, or None.

        Decoded before it is removed: a message the client cannot decode stays
        (UndecodableMessage, a failure counted).
        """
        with self.dequeue(tag, other_sess, raw=raw) as data:
            return data

    def lease(self, tag: str, seconds: float = 30, *,
              raw: bool = False) -> ContextManager[Optional[LeasedMessage]]:
        """Context manager: the first due message of `tag`, leased for `seconds`
        (a LeasedMessage), or None.  No transaction stays open meanwhile.

        While the block runs, a heartbeat thread extends the lease every third
        of `seconds`.  Leaving the block normally acknowledges the message
        (removes it); leaving it by an exception gives it back (q4pg_nack,
        the exception's text recorded); the lease counted the attempt.  When
        the lease was lost meanwhile (another consumer leased the message
        after the lease ran out: the heartbeat could not reach the server, or
        the process stalled), the heartbeat says so at WARNING and leaving
        the block normally raises LeaseLost.  A message the client cannot
        decode is given back and raises UndecodableMessage.
        """
        return leasing(self, tag, seconds, raw=raw)

    def take_leases(self, tag: str, limit: int = 1, seconds: float = 30, *,
                    raw: bool = False) -> List[LeasedMessage]:
        """Leases up to `limit` due messages of `tag` for `seconds`, with no heartbeat:
        finish each with ack(), nack() or extend() (what the command line does)."""
        return leased_now(self, self._call(calls.lease(tag, limit, seconds)), raw)

    def ack(self, id: int, token: str) -> bool:
        """Acknowledges a leased message (removes it); False when the lease was lost."""
        return self._call(calls.ack(id, token))

    def nack(self, id: int, token: str, *, retry_in: Any = None,
             error: Optional[str] = None) -> Optional[str]:
        """Gives a leased message back, due again after `retry_in` (seconds or a
        timedelta; None: now), `error` recorded: 'retry', 'dead' (it reached
        max_attempts), or None when the lease was lost."""
        return self._call(calls.nack(id, token, retry_in, error))

    def extend(self, id: int, token: str, seconds: float) -> Optional[datetime.datetime]:
        """Extends a lease to `seconds` from now; the new end, or None when the lease
        was lost."""
        return self._call(calls.extend(id, token, seconds))

    def next_due(self, tag: str) -> Optional[datetime.datetime]:
        """When the next message of `tag` not due yet (scheduled, or under a lease)
        comes due; None when there is none."""
        return self._call(calls.next_due(tag))

    # -- looking ------------------------------------------------------------------

    def list(self, tag: Optional[str] = None, *args: Any, limit: Optional[int] = None,
             other_sess: Any = None, ignore_scheduled: bool = True,
             full: bool = False) -> List[Tuple[Any, ...]]:
        """[(id, tag, data_text, created_at), ...] in delivery order; data undecoded.

        `ignore_scheduled` (default): due messages only; False: scheduled ones
        and those under a lease too.  `full=True` adds (run_at, attempts,
        last_error, leased_until) to each row.  Dead letters are never listed
        (dead_letters()).  Positional arguments after `tag` are read as the
        original API's (other_sess, ignore_scheduled), or as 1.0's `limit`
        when the first is no session.
        """
        if len(args) > 2:
            raise TypeError('list() takes at most 3 positional arguments')
        if args:
            if args[0] is not None and _session_like(args[0]):
                other_sess = args[0]
            elif args[0] is not None:
                limit = args[0]
            args = args[1:]
            if args:
                ignore_scheduled = args[0]
        return self._call(calls.list_due(tag, limit, ignore_scheduled, full), other_sess)

    def count(self, tag: Optional[str] = None, other_sess: Any = None,
              ignore_scheduled: bool = True) -> int:
        """The number of messages of `tag` (None: of every tag), held ones included;
        `ignore_scheduled` (default): due ones only.  Dead letters never count."""
        return self._call(calls.count(tag, ignore_scheduled), other_sess)

    def cancel(self, id: int, other_sess: Any = None) -> bool:
        """Removes a message (waiting, scheduled or dead); False when there is none,
        a consumer holds it or a live lease has it."""
        return self._call(calls.cancel(id), other_sess)

    def dead_letters(self, tag: Optional[str] = None, limit: Optional[int] = None
                     ) -> List[Tuple[int, str, str, datetime.datetime, int, Optional[str],
                                     datetime.datetime]]:
        """[(id, tag, data_text, created_at, attempts, last_error, dead_at), ...]:
        the messages set aside after too many failures."""
        return self._call(calls.dead_letters(tag, limit))

    def replay(self, ids: Optional[Iterable[int]] = None, tag: Optional[str] = None) -> int:
        """Makes dead letters due again (attempts 0, last_error kept): those of `ids`,
        else all (of `tag`); how many."""
        return self._call(calls.replay(ids, tag))

    def purge_dead(self, tag: Optional[str] = None, older_than: Any = None) -> int:
        """Deletes dead letters (of `tag`; set aside more than `older_than` seconds
        or a timedelta ago); how many."""
        return self._call(calls.purge_dead(tag, older_than))

    def channel(self, tag: str) -> str:
        """The NOTIFY channel of `tag` on this queue."""
        return self._call(calls.channel(tag))

    def settings(self) -> Tuple[str, int]:
        """(data_type, data_length) of the queue, as its table says (q4pg_queue_settings)."""
        return self._call(calls.settings())

    def queues(self, *, full: bool = False) -> List[Tuple[Any, ...]]:
        """[(queue, data_type, data_length), ...]: every queue the role may read;
        `full=True` adds max_attempts."""
        return self._call(calls.queues(full))

    def stats(self, *, full: bool = False) -> List[Tuple[Any, ...]]:
        """[(queue, tag, waiting, oldest_created_at, oldest_age), ...] of every readable
        queue and tag (waiting: due now; oldest_age: how long the oldest due message
        has been due); an empty queue has one row, tag None and zeros.  `full=True`
        adds (scheduled, leased, dead)."""
        return self._call(calls.stats(full))

    def consumers(self) -> List[Tuple[str, int, datetime.datetime, datetime.timedelta,
                                      str, str]]:
        """[(queue, pid, xact_start, xact_age, state, application_name), ...]: the open
        transactions that ran a dequeue on any queue, oldest first (q4pg_consumers)."""
        return self._call(calls.consumers())

    # -- listening ----------------------------------------------------------------

    def listen(self, tag: str, timeout: Optional[float] = None, *,
               stop_after_idle: Optional[float] = None, limit: Optional[int] = None,
               full: bool = False, raw: bool = False,
               lease: Optional[float] = None) -> Iterator[Any]:
        """Generator: waits for messages of `tag` and yields each one's data (Message if
        `full`; LeasedMessage with `lease`).

        `timeout`: yields None each time that many seconds pass without a
        message, and goes on listening (as the original library did).
        `stop_after_idle`: stops after that many seconds without a message;
        `limit`: after that many items.  Each item is held in a transaction
        until the loop asks for the next one (then it is removed), or with
        `lease=seconds` leased, kept leased by a heartbeat, and acknowledged
        then.  A generator cannot tell an exception in the loop body from
        `break`: leaving the loop early gives the item back with a failure
        counted (listener() tells them apart).  A message the client cannot
        decode counts a failure and raises UndecodableMessage.
        """
        core.check_listen(timeout, stop_after_idle, limit, lease)
        return self._listen(tag, timeout, stop_after_idle, limit, full, raw, lease)

    def _listen(self, tag: str, timeout: Optional[float], stop_after_idle: Optional[float],
                limit: Optional[int], full: bool, raw: bool,
                lease: Optional[float]) -> Iterator[Any]:
        listener = self.listener(tag, timeout=timeout, stop_after_idle=stop_after_idle,
                                 limit=limit, full=full, raw=raw, lease=lease)
        try:
            # Not `yield from`: it would close the listener itself, without saying why.
            for item in listener:
                yield item
        except GeneratorExit:
            listener.close(ack=False, error='the listen() loop was left holding the message '
                                            '(an exception, break or close())')
            raise
        finally:
            listener.close(ack=False, count=False)

    def listener(self, tag: str, timeout: Optional[float] = None, *,
                 stop_after_idle: Optional[float] = None, limit: Optional[int] = None,
                 full: bool = False, raw: bool = False,
                 lease: Optional[float] = None) -> Listener:
        """Like listen(), as a context manager: leaving the block normally (break
        included) removes the current item; leaving it by an exception gives it
        back with a failure counted (KeyboardInterrupt, SystemExit: uncounted)."""
        core.check_listen(timeout, stop_after_idle, limit, lease)

        def item(row: db.Row) -> Any:
            if lease is not None:
                message: Any = self._leased_message(row, raw)
            else:
                message = self._message(row, raw)
            return message if full else message.data

        old = self._server.old()
        if old is not None:
            return old.listener(self._db, self._queue, tag, lease, self._max_attempts,
                                decode=item, poll_interval=self.poll_interval, timeout=timeout,
                                stop_after_idle=stop_after_idle, limit=limit)
        return Listener(self._db, self._queue, tag, decode=item,
                        poll_interval=self.poll_interval, timeout=timeout,
                        stop_after_idle=stop_after_idle, limit=limit, lease=lease,
                        max_attempts=self._max_attempts)
