"""Listener: takes the messages of one tag as they arrive, following the
listener protocol of README.md ("Notifications").

It sits between the client (client.py, which makes it and decodes what it
takes) and the database layer (db.py), which it uses through Database and
ListenConnection only.
"""

import contextlib
import logging
import os
import select
import time
from typing import Any, Callable, Iterator, Optional

from . import db
from .errors import ConnectionLost, Q4pgError

__all__ = ['Listener']

log = logging.getLogger('q4pg')

_BACKOFF_FIRST = 0.1  # seconds before the first reconnection attempt
_BACKOFF_MAX = 5.0
# q4pg_register_idle says false while a producer that started before the
# registration still runs.  We are registered all the same, so producers that
# start later notify us; only that old producer's commit can come unannounced.
# So sleep on the LISTEN connection (a notification wakes us) for a back-off,
# then look again: 5 ms, doubling up to 1 s (or poll_interval when shorter).
_BARRIER_FIRST = 0.005
_BARRIER_MAX = 1.0
_STOP = object()  # "no more items"


class Listener:
    """Iterates the messages of a tag as they arrive (see QueueManager.listen).

    Made by QueueManager.listen() and QueueManager.listener().  One dedicated
    autocommit connection LISTENs and never runs a transaction; each item is
    dequeued on a pooled connection in a transaction of its own, committed
    when the next item is asked for.  A lost connection is made again with
    backoff, once the listener has been connected.

    `decode` turns a dequeued row (id, tag, data, created_at) into the item to
    hand out; when it raises, the message is given back and the error raised.
    """

    def __init__(self, database: db.Database, queue: str, tag: str, *,
                 decode: Callable[[db.Row], Any], poll_interval: float,
                 timeout: Optional[float] = None, limit: Optional[int] = None) -> None:
        self._db, self._queue, self._tag = database, queue, tag
        self._decode = decode
        self._poll_interval, self._timeout, self._limit = poll_interval, timeout, limit
        self._conn: Optional[db.ListenConnection] = None
        self._channel: Optional[str] = None
        self._held: Optional[db.Transaction] = None  # the current item's transaction
        self._delivered = 0
        self._listened = False  # connected once: from now on, reconnect instead of raising
        self._lost_at: Optional[float] = None  # when a connection was lost, until LISTENing again
        self._registered = False  # q4pg_register_idle recorded us on the LISTEN connection
        self._safe = False        # ... and said no producer can have missed it
        self._closed = False
        self._stopping = False
        # stop() writes here to wake a sleeping listener; safe in a signal handler
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = self._next()
        if item is _STOP:
            raise StopIteration
        return item

    def __enter__(self) -> 'Listener':
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(ack=exc_type is None)

    def __del__(self) -> None:
        if self._held is not None or self._conn is not None:
            with contextlib.suppress(Exception):
                self.close(ack=False)

    def stop(self) -> None:
        """Asks the listener to stop: the iteration ends at the next request for
        an item, which first acknowledges the current one, without waiting
        for another message.  Safe to call from a signal handler or another
        thread."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b'.')

    def close(self, ack: bool = False) -> None:
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

    def _next(self) -> Any:
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
                        self._unregister()
                    except ConnectionLost as e:
                        # The LISTEN connection died: deliver what we hold,
                        # LISTEN again on the next call.
                        self._lost(e, 'LISTENing again on the next call')
                        self._hang_up()
                    self._delivered += 1
                    return item
                delay = _BACKOFF_FIRST
                if not self._safe:
                    # Idle: register, so producers notify us.  Safe to sleep
                    # only once no producer that missed the registration can
                    # still commit; look once more before sleeping.
                    if self._register():
                        continue
                    wait = barrier
                    barrier = min(barrier * 2, _BARRIER_MAX, self._poll_interval)
                else:
                    barrier = _BARRIER_FIRST
                    wait = self._poll_interval
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
                self._lost(e, 'reconnecting in %.1f s' % delay)
                select.select([self._wake_r], [], [], delay)
                if self._stopping or (deadline is not None and time.monotonic() >= deadline):
                    return _STOP
                delay = min(delay * 2, _BACKOFF_MAX)

    def _lost(self, error: Q4pgError, what_now: str) -> None:
        """Logs a lost connection (WARNING, logger q4pg) and remembers when."""
        if self._lost_at is None:
            self._lost_at = time.monotonic()
        log.warning('q4pg: listener on queue %s, tag %r: %s; %s',
                    self._queue, self._tag, error, what_now)

    def _call(self, query: str) -> Any:
        """Runs one q4pg_* call about our queue and tag on the LISTEN connection."""
        assert self._conn is not None
        return self._conn.call(query, (self._queue, self._tag))

    def _register(self) -> bool:
        """Registers this listener as idle (q4pg_register_idle); True when it may sleep."""
        self._registered = True
        self._safe = bool(self._call(db.REGISTER_IDLE))
        return self._safe

    def _unregister(self) -> None:
        """Busy again: producers need not notify us (q4pg_unregister_idle)."""
        if self._registered and self._conn is not None:
            self._registered = self._safe = False
            self._call(db.UNREGISTER_IDLE)

    def _listen(self) -> None:
        """Connects the LISTEN connection and LISTENs, unless done already."""
        if self._conn is not None:
            return
        if self._channel is None:
            self._channel = self._db.run(db.CHANNEL, (self._queue, self._tag))[0][0]
        self._conn = self._db.listen(self._channel)
        self._listened = True
        if self._lost_at is not None:
            log.warning('q4pg: listener on queue %s, tag %r: reconnected after %.1f s',
                        self._queue, self._tag, time.monotonic() - self._lost_at)
            self._lost_at = None

    def _take(self) -> Any:
        """Dequeues one message in a new transaction on a pooled connection; _STOP if none."""
        transaction = self._db.begin(db.DEQUEUE, (self._queue, self._tag))
        if not transaction.rows:
            transaction.rollback()
            return _STOP
        self._held = transaction
        try:
            return self._decode(transaction.rows[0])
        except BaseException:
            self._finish(ack=False)
            raise

    def _sleep(self, seconds: float) -> None:
        """Sleeps until a notification arrives on the LISTEN connection, stop() is
        called or `seconds` pass.  Whatever woke us, the caller queries again."""
        assert self._conn is not None
        if self._stopping:
            return
        count = self._conn.wait(seconds, self._wake_r)
        with contextlib.suppress(OSError):
            os.read(self._wake_r, 4096)
        if count:
            log.debug('q4pg: %d notification(s) on %s', count, self._channel)

    def _finish(self, ack: bool) -> None:
        """Commits (`ack`) or rolls back the current item's transaction, if any."""
        transaction, self._held = self._held, None
        if transaction is None:
            return
        if not ack:
            transaction.rollback()
            return
        try:
            transaction.commit()
        except Q4pgError as e:
            if not db.retryable(e):
                raise
            log.warning('q4pg: could not acknowledge a message of tag %r, it may be '
                        'delivered again: %s', self._tag, e)

    def _hang_up(self) -> None:
        """Closes the LISTEN connection (a new one LISTENs again) and with it
        our registration; a registration left behind by a connection that
        died is cleared by the next listener's q4pg_register_idle."""
        with contextlib.suppress(Q4pgError):
            self._unregister()
        self._registered = self._safe = False
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
