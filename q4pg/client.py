"""QueueManager: the Python client of the q4pg extension.

The client holds no queue logic.  It calls the SQL functions of the extension
(sql/q4pg--1.0.sql) with explicit casts, passes the queue as a *value* cast to
regclass, and decodes the results.  Type names in casts are qualified with
pg_catalog so that a caller's search_path cannot swap them.
"""

import contextlib
import datetime
import json
import logging
import os
import select
import threading
import time
from typing import Any, NamedTuple

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from .errors import ConnectionLost, InvalidArgument, InvalidMessage, Q4pgError, wrap_error

__all__ = ['QueueManager', 'Message', 'Listener']

log = logging.getLogger('q4pg')

DATA_TYPES = ('json', 'jsonb', 'text')

# The queue is always the first parameter (the quoted name, cast to regclass).
_CREATE_QUEUE = 'SELECT q4pg_create_queue(%s::pg_catalog.text, %s::pg_catalog.text, %s::integer)'
_ENQUEUE = ('SELECT q4pg_enqueue(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
            '%s::pg_catalog.text)')
_ENQUEUE_MANY = ('SELECT * FROM q4pg_enqueue_many(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
                 '%s::pg_catalog.text[])')
_DEQUEUE = ('SELECT id, tag, data, created_at '
            'FROM q4pg_dequeue(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)')
_DEQUEUE_MANY = ('SELECT id, tag, data, created_at '
                 'FROM q4pg_dequeue_many(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
                 '%s::integer)')
_LIST = ('SELECT id, tag, data, created_at '
         'FROM q4pg_list(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, %s::integer)')
_COUNT = 'SELECT q4pg_count(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)'
_CANCEL = 'SELECT q4pg_cancel(%s::pg_catalog.text::pg_catalog.regclass, %s::bigint)'
_CHANNEL = 'SELECT q4pg_channel(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)'
_WAIT = 'SELECT q4pg_register_idle(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)'
_UNWAIT = 'SELECT q4pg_unregister_idle(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)'
_QUEUES = 'SELECT queue::pg_catalog.text, data_type, data_length FROM q4pg_queues()'
_STATS = ('SELECT queue::pg_catalog.text, tag, waiting, oldest_created_at, oldest_age '
          'FROM q4pg_stats()')
_CONSUMERS = ('SELECT queue::pg_catalog.text, pid, xact_start, xact_age, state, application_name '
              'FROM q4pg_consumers()')

_BACKOFF_FIRST = 0.1  # seconds before the first reconnection attempt
_BACKOFF_MAX = 5.0
# While a producer that may have missed our registration runs, q4pg_register_idle says
# "don't sleep yet": look again after this long, doubling up to the maximum.
_BARRIER_FIRST = 0.002
_BARRIER_MAX = 0.1
_STOP = object()  # a listener's "no more items"


class Message(NamedTuple):
    """A dequeued message: `data` decoded, `raw` the text stored in the queue."""
    id: int
    tag: str
    data: Any
    created_at: datetime.datetime
    raw: str


def _retryable(error):
    """True for a lost connection, or another psycopg2 OperationalError (deadlock, cancel...)."""
    return isinstance(error, ConnectionLost) or isinstance(
        error.__cause__, (psycopg2.OperationalError, psycopg2.InterfaceError))


def _encodable(text):
    """True when `text` can be sent to the server (UTF-8: no lone surrogates)."""
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True


def _connect(dsn):
    """A new connection; ConnectionLost when the database cannot be reached."""
    try:
        return psycopg2.connect(dsn)
    except psycopg2.Error as e:
        raise wrap_error(e) from e


class _Pool:
    """At most `size` connections to `dsn`, reused; get() blocks while all are busy."""

    def __init__(self, dsn, size):
        self._dsn = dsn
        self._size = size
        self._cond = threading.Condition()
        self._idle = []
        self._open = 0  # connections out there: idle ones and those in use
        self._closed = False

    def get(self):
        """A connection, and whether it is new (a reused one may have died idle)."""
        with self._cond:
            while True:
                if self._closed:
                    raise Q4pgError('q4pg: the QueueManager is closed')
                if self._idle:
                    return self._idle.pop(), False
                if self._open < self._size:
                    self._open += 1
                    break
                self._cond.wait()
        try:
            return _connect(self._dsn), True
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def release(self, conn):
        """Takes a connection back: rolls back what it left open; closes a broken one."""
        if not conn.closed and (conn.info.transaction_status
                                != psycopg2.extensions.TRANSACTION_STATUS_IDLE):
            try:
                conn.rollback()
            except psycopg2.Error:
                pass
        reuse = (not conn.closed and conn.info.transaction_status
                 == psycopg2.extensions.TRANSACTION_STATUS_IDLE)
        with self._cond:
            if reuse and not self._closed:
                self._idle.append(conn)
                conn = None
            else:
                self._open -= 1
            self._cond.notify()
        if conn is not None:
            conn.close()

    def close(self):
        """Closes the idle connections now, and the others when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()


class QueueManager:
    """A q4pg queue: enqueue, dequeue, listen, list, count, cancel.

    `table_name` is the table's name exactly as given; `schema` defaults to
    the connection's current schema.  Thread-safe: calls share a pool of at
    most `max_connections` connections.
    """

    def __init__(self, dsn='', table_name='mq', data_type='json', data_length=1023, *,
                 schema=None, max_connections=10, poll_interval=5.0):
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
        self._pool = _Pool(dsn, max_connections)

    def __repr__(self):
        return '<q4pg.QueueManager %s>' % '.'.join(
            p for p in (self.schema, self.table_name) if p is not None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Closes the pooled connections (those in use when they are given back)."""
        self._pool.close()

    # -- running the SQL functions ------------------------------------------------

    def _queue(self, conn):
        """The queue's name in SQL syntax, quoted: the value passed as regclass."""
        parts = (self.table_name,) if self.schema is None else (self.schema, self.table_name)
        return sql.Identifier(*parts).as_string(conn)

    def _begin(self, query, args, queue=True):
        """Runs `query` on a pooled connection and leaves its transaction open.

        Returns (connection, rows).  A pooled connection that died while idle
        is dropped and the statement tried again: nothing was committed.
        """
        while True:
            conn, new = self._pool.get()
            try:
                with conn.cursor() as cur:
                    cur.execute(query, ((self._queue(conn),) if queue else ()) + tuple(args))
                    return conn, cur.fetchall()
            except (psycopg2.Error, ValueError) as e:
                self._pool.release(conn)
                if not new and conn.closed:
                    log.info('q4pg: dropped a pooled connection that died idle: %s',
                             ' '.join(str(e).split()))
                    continue
                raise wrap_error(e, conn) from e
            except BaseException:          # KeyboardInterrupt...: don't lose the pool's slot
                self._pool.release(conn)
                raise

    def _commit(self, conn):
        """Commits `conn`'s transaction and gives the connection back to the pool."""
        try:
            conn.commit()
        except psycopg2.Error as e:
            err = wrap_error(e, conn)
            if isinstance(err, ConnectionLost):
                err = ConnectionLost('q4pg: connection lost during COMMIT, the outcome is '
                                     'unknown: %s' % err, pgcode=err.pgcode, pgerror=err.pgerror)
            raise err from e
        finally:
            self._pool.release(conn)

    def _run(self, query, args, conn=None, queue=True):
        """Runs `query` in a transaction of its own, or in the caller's `conn`; its rows."""
        if conn is not None:
            try:
                with conn.cursor() as cur:
                    cur.execute(query, ((self._queue(conn),) if queue else ()) + tuple(args))
                    return cur.fetchall()
            except (psycopg2.Error, ValueError) as e:
                raise wrap_error(e, conn) from e
        pooled, rows = self._begin(query, args, queue)
        self._commit(pooled)
        return rows

    def _encode(self, data, raw):
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

    def _decode(self, text):
        if self.data_type == 'text':
            return text
        try:
            return json.loads(text)
        except ValueError as e:
            raise InvalidMessage('q4pg: stored data is not JSON (is data_type %r right for '
                                 'this queue?): %s' % (self.data_type, e)) from e

    def _message(self, row):
        id_, tag, text, created_at = row
        return Message(id_, tag, self._decode(text), created_at, text)

    # -- the API ----------------------------------------------------------------

    def create_table(self):
        """Creates the queue; harmless when it exists with the same settings."""
        self._run(_CREATE_QUEUE, (self.data_type, self.data_length))

    def enqueue(self, tag, data, *, conn=None, raw=False):
        """Adds a message; returns its id.

        With `conn` (a psycopg2 connection) it runs in that connection's
        current transaction and does not commit.  With `raw=True`, `data` is
        the text to store, sent verbatim.
        """
        return self._run(_ENQUEUE, (tag, self._encode(data, raw)), conn)[0][0]

    def enqueue_many(self, tag, iterable, *, conn=None, raw=False):
        """Adds one message per item in one statement, all or nothing; returns their ids."""
        texts = [self._encode(data, raw) for data in iterable]
        return [row[0] for row in self._run(_ENQUEUE_MANY, (tag, texts), conn)]

    @contextlib.contextmanager
    def dequeue_message(self, tag):
        """Context manager: the oldest free Message of `tag`, or None.

        Leaving the block normally removes the message (commit); leaving it
        by an exception leaves it in the queue (rollback).
        """
        conn, rows = self._begin(_DEQUEUE, (tag,))
        try:
            yield self._message(rows[0]) if rows else None
        except BaseException:
            self._pool.release(conn)
            raise
        self._commit(conn)

    @contextlib.contextmanager
    def dequeue(self, tag):
        """Context manager: the oldest free message's data, or None (see dequeue_message)."""
        with self.dequeue_message(tag) as message:
            yield None if message is None else message.data

    @contextlib.contextmanager
    def dequeue_many(self, tag, limit):
        """Context manager: up to `limit` Messages of `tag`, oldest first (maybe none)."""
        conn, rows = self._begin(_DEQUEUE_MANY, (tag, limit))
        try:
            yield [self._message(row) for row in rows]
        except BaseException:
            self._pool.release(conn)
            raise
        self._commit(conn)

    def dequeue_immediate(self, tag):
        """Removes the oldest free message of `tag` at once; its decoded data, or None."""
        with self.dequeue(tag) as data:
            return data

    def list(self, tag=None, limit=None):
        """[(id, tag, data_text, created_at), ...] oldest first; data undecoded."""
        return [tuple(row) for row in self._run(_LIST, (tag, limit))]

    def count(self, tag=None):
        """The number of messages of `tag` (None: of every tag), held ones included."""
        return self._run(_COUNT, (tag,))[0][0]

    def cancel(self, id):
        """Removes a waiting message; False when there is none or a consumer holds it."""
        return self._run(_CANCEL, (id,))[0][0]

    def channel(self, tag):
        """The NOTIFY channel of `tag` on this queue."""
        return self._run(_CHANNEL, (tag,))[0][0]

    def queues(self):
        """[(queue, data_type, data_length), ...]: every queue the role may read."""
        return [tuple(row) for row in self._run(_QUEUES, (), queue=False)]

    def stats(self):
        """[(queue, tag, waiting, oldest_created_at, oldest_age), ...] of every readable queue."""
        return [tuple(row) for row in self._run(_STATS, (), queue=False)]

    def consumers(self):
        """[(queue, pid, xact_start, xact_age, state, application_name), ...]: the open
        transactions that ran a dequeue on any queue, oldest first (q4pg_consumers)."""
        return [tuple(row) for row in self._run(_CONSUMERS, (), queue=False)]

    def listen(self, tag, *, timeout=None, limit=None, full=False):
        """Generator: waits for messages of `tag` and yields each one's data (Message if `full`).

        Each item is held in a transaction until the loop asks for the next
        one (then it is removed); an exception in the loop body, `break` or
        closing the generator leaves it in the queue.  Stops after `limit`
        items, or after `timeout` seconds without a message.
        """
        listener = Listener(self, tag, timeout=timeout, limit=limit, full=full)
        try:
            for item in listener:
                yield item
        finally:
            listener.close(ack=False)

    def listener(self, tag, *, timeout=None, limit=None, full=False):
        """Like listen(), as a context manager: leaving the block normally (break
        included) removes the current item, leaving it by an exception keeps it."""
        return Listener(self, tag, timeout=timeout, limit=limit, full=full)


class Listener:
    """Iterates the messages of a tag as they arrive (see QueueManager.listen).

    One dedicated autocommit connection LISTENs and never runs a transaction;
    each item is dequeued on a pooled connection in a transaction of its own,
    committed when the next item is asked for.  A lost connection is made
    again with backoff, once the listener has been connected.
    """

    def __init__(self, manager, tag, *, timeout=None, limit=None, full=False):
        self._manager = manager
        self._tag = tag
        self._timeout = timeout
        self._limit = limit
        self._full = full
        self._conn = None      # the LISTEN connection
        self._channel = None
        self._worker = None    # the pooled connection holding the current item
        self._delivered = 0
        self._listened = False  # connected once: from now on, reconnect instead of raising
        self._registered = False  # q4pg_register_idle recorded us on the LISTEN connection
        self._safe = False        # ... and said no producer can have missed it
        self._closed = False
        self._stopping = False
        # stop() writes here to wake a sleeping listener; safe in a signal handler
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._next()
        if item is _STOP:
            raise StopIteration
        return item

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(ack=exc_type is None)

    def __del__(self):
        if self._worker is not None or self._conn is not None:
            with contextlib.suppress(Exception):
                self.close(ack=False)

    def stop(self):
        """Asks the listener to stop: the iteration ends at the next request for
        an item, which first acknowledges the current one, without waiting
        for another message.  Safe to call from a signal handler or another
        thread."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b'.')

    def close(self, ack=False):
        """Stops: commits (`ack`) or rolls back the current item, closes the LISTEN connection."""
        self._closed = True
        try:
            self._finish(ack)
        finally:
            self._hang_up()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def _next(self):
        """The next item, or _STOP; first acknowledges the current one."""
        self._finish(ack=True)
        if (self._closed or self._stopping
                or (self._limit is not None and self._delivered >= self._limit)):
            return _STOP
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        delay = _BACKOFF_FIRST
        barrier = _BARRIER_FIRST
        while True:
            try:
                self._listen()
                item = self._take()
                if item is not _STOP:
                    try:
                        self._unwait()
                    except ConnectionLost:
                        # The LISTEN connection died: deliver what we hold,
                        # LISTEN again on the next call.
                        self._hang_up()
                    self._delivered += 1
                    return item
                delay = _BACKOFF_FIRST
                if not self._safe:
                    # Idle: register, so producers notify us.  Safe to sleep
                    # only once no producer that missed the registration can
                    # still commit; look once more before sleeping.
                    if self._wait():
                        continue
                    wait, barrier = barrier, min(barrier * 2, _BARRIER_MAX)
                else:
                    barrier = _BARRIER_FIRST
                    wait = self._manager.poll_interval
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return _STOP
                self._sleep(wait)
                if self._stopping:
                    return _STOP
            except ConnectionLost as e:
                self._finish(ack=False)   # never leave a message held while we reconnect
                if not self._listened:
                    raise
                self._hang_up()
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - time.monotonic()))
                log.warning('q4pg: listener on %r, tag %r: %s; reconnecting in %.1f s',
                            self._manager, self._tag, e, delay)
                select.select([self._wake_r], [], [], delay)
                if self._stopping or (deadline is not None and time.monotonic() >= deadline):
                    return _STOP
                delay = min(delay * 2, _BACKOFF_MAX)

    def _call(self, query):
        """Runs one q4pg_* call about our queue and tag on the LISTEN connection."""
        conn = self._conn
        try:
            with conn.cursor() as cur:
                cur.execute(query, (self._manager._queue(conn), self._tag))
                return cur.fetchone()[0]
        except psycopg2.Error as e:
            raise wrap_error(e, conn) from e

    def _wait(self):
        """Registers this listener as idle (q4pg_register_idle); True when it may sleep."""
        self._registered = True
        self._safe = self._call(_WAIT)
        return self._safe

    def _unwait(self):
        """Busy again: producers need not notify us (q4pg_unregister_idle)."""
        if self._registered and self._conn is not None:
            self._registered = self._safe = False
            self._call(_UNWAIT)

    def _listen(self):
        """Connects the LISTEN connection and LISTENs, unless done already."""
        if self._conn is not None:
            return
        if self._channel is None:
            self._channel = self._manager.channel(self._tag)
        conn = _connect(self._manager.dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL('LISTEN {}').format(sql.Identifier(self._channel)))
        except psycopg2.Error as e:
            conn.close()
            raise wrap_error(e, conn) from e
        self._conn = conn
        self._listened = True

    def _take(self):
        """Dequeues one message in a new transaction on a pooled connection; _STOP if none."""
        manager = self._manager
        conn, rows = manager._begin(_DEQUEUE, (self._tag,))
        if not rows:
            manager._pool.release(conn)
            return _STOP
        self._worker = conn
        try:
            message = manager._message(rows[0])
        except BaseException:
            self._finish(ack=False)
            raise
        return message if self._full else message.data

    def _sleep(self, seconds):
        """Sleeps until a notification arrives on the LISTEN connection or `seconds` pass.

        The one place a listener goes to sleep: a notification read earlier is
        still in conn.notifies, so it is checked before select().  Whatever
        woke us, the caller queries again (a notification is only a hint).
        """
        conn = self._conn
        try:
            conn.poll()
            if not conn.notifies and not self._stopping:
                select.select([conn, self._wake_r], [], [], seconds)
                conn.poll()
        except psycopg2.Error as e:
            raise wrap_error(e, conn) from e
        with contextlib.suppress(OSError):
            os.read(self._wake_r, 4096)
        if conn.closed:
            raise ConnectionLost('q4pg: the LISTEN connection is closed')
        if conn.notifies:
            log.debug('q4pg: %d notification(s) on %s', len(conn.notifies), self._channel)
            del conn.notifies[:]

    def _finish(self, ack):
        """Commits (`ack`) or rolls back the current item's transaction, if any."""
        conn, self._worker = self._worker, None
        if conn is None:
            return
        if not ack:
            self._manager._pool.release(conn)
            return
        try:
            self._manager._commit(conn)
        except Q4pgError as e:
            if not _retryable(e):
                raise
            log.warning('q4pg: could not acknowledge a message of tag %r, it may be '
                        'delivered again: %s', self._tag, e)

    def _hang_up(self):
        """Closes the LISTEN connection (a new one LISTENs again) and with it
        our registration; a registration left behind by a connection that
        died is cleared by the next listener's q4pg_register_idle."""
        with contextlib.suppress(Q4pgError):
            self._unwait()
        self._registered = self._safe = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg2.Error):
                conn.close()
