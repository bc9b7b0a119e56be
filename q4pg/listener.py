"""Listener: takes the messages of one tag as they arrive, following the
listener protocol of docs/listeners.md.

It sits between the client (client.py, which makes it and decodes what it
takes) and the database layer (db.py), which it uses through Database,
Transaction and ListenConnection only; with leases, lease.py's Heartbeat
keeps the message at hand leased.
"""

import contextlib
import datetime
import logging
import os
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

from . import db
from .core import Ending, ending, error_text, said_dead, said_lease_lost
from .errors import ConnectionLost, Q4pgError
from .lease import Heartbeat

__all__ = ['Listener']

log = logging.getLogger('q4pg')

_BACKOFF_FIRST = 0.1  # seconds before the first reconnection attempt
_BACKOFF_MAX = 5.0
# q4pg_go_idle says 'producer_running' while a producer that started before
# the registration still runs.  We are registered all the same, so producers
# that start later notify us; only that old producer's commit can come
# unannounced.  So sleep on the LISTEN connection (a notification wakes us) for
# a back-off, then look again: 5 ms, doubling up to 1 s (or poll_interval when
# shorter).
_BARRIER_FIRST = 0.005
_BARRIER_MAX = 1.0
# q4pg_go_idle says 'ask_again' when the call made the registration: asked
# again at once (it has committed by then: autocommit).  Should it say so this
# many times in a row (a producer's probe held the presence lock each time),
# back off as for 'producer_running'.
_ASK_AGAIN_MAX = 3
_STOP = object()  # "no more items"
_TICK = object()  # `timeout` seconds passed without a message


def record_failures(run: Callable[[str, Any], List[db.Row]], queue: str, ids: List[int],
                    error: str, max_attempts: Optional[int]) -> None:
    """Counts a failure against each message of `ids` (q4pg_fail, through `run`,
    in the transaction that took them); says at WARNING which became dead letters."""
    for id_, outcome in run(db.FAIL, (queue, error, max_attempts, ids)):
        if outcome == 'dead':
            said_dead(queue, id_, error)


class Listener:
    """Iterates the messages of a tag as they arrive (see QueueManager.listen).

    Made by QueueManager.listen() and QueueManager.listener().  One dedicated
    autocommit connection LISTENs and never runs a transaction.  Each item is
    taken on a pooled connection: removed in a transaction of its own
    (q4pg_dequeue), finished when the next item is asked for (COMMIT) or, when
    the work failed, put back with a failure counted (q4pg_fail and COMMIT); or, with
    `lease` (seconds), leased (q4pg_lease), kept leased by a heartbeat while
    the work runs, and acknowledged (q4pg_ack) or given back (q4pg_nack).  A
    lost connection is made again with backoff, once the listener has been
    connected.

    `decode` turns a taken row (id, tag, data, created_at, attempts,
    last_error[, lease_token, lease_until]) into the item to hand out; when it
    raises, the message is given back with the error counted, and the error
    raised.  `timeout`: hand out None after that many seconds without a
    message (and go on); `stop_after_idle`: stop after that many seconds
    without a message; `limit`: stop after that many items.  `max_attempts`
    is passed to q4pg_fail (None: the queue's setting).
    """

    def __init__(self, database: db.Database, queue: str, tag: str, *,
                 decode: Callable[[db.Row], Any], poll_interval: float,
                 timeout: Optional[float] = None, stop_after_idle: Optional[float] = None,
                 limit: Optional[int] = None, lease: Optional[float] = None,
                 max_attempts: Optional[int] = None) -> None:
        self._db, self._queue, self._tag = database, queue, tag
        self._decode = decode
        self._poll_interval, self._timeout, self._limit = poll_interval, timeout, limit
        self._stop_after_idle = stop_after_idle
        self._lease, self._max_attempts = lease, max_attempts
        self._conn: Optional[db.ListenConnection] = None
        self._channel: Optional[str] = None
        self._held: Optional[db.Transaction] = None  # the current item's transaction
        self._leased: Optional[Tuple[int, str]] = None  # the current item's (id, token)
        self._heartbeat = Heartbeat(database, queue) if lease is not None else None
        self._idle_since: Optional[float] = None  # when the last message was handed out
        self._due: Optional[float] = None  # seconds until the next message comes due (the
        #                                    registration's answer; None: none scheduled)
        self._due_fresh = False  # the server said _due since the listener last slept
        self._delivered = 0
        self._listened = False  # connected once: from now on, reconnect instead of raising
        self._lost_at: Optional[float] = None  # when a connection was lost, until LISTENing again
        self._registered = False  # q4pg_go_idle recorded us on the LISTEN connection
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
        return None if item is _TICK else item

    def __enter__(self) -> 'Listener':
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        end = ending(exc_type)
        if end is Ending.DONE:
            self.close(ack=True)
        elif end is Ending.FAIL:
            self.close(ack=False, error=error_text(exc))
        else:                       # KeyboardInterrupt, SystemExit: given back uncounted
            self.close(ack=False, count=False)

    def __del__(self) -> None:
        if self._held is not None or self._leased is not None or self._conn is not None:
            with contextlib.suppress(Exception):
                self.close(ack=False, count=False)

    def stop(self) -> None:
        """Asks the listener to stop: the iteration ends at the next request for
        an item, which first acknowledges the current one, without waiting
        for another message.  Safe to call from a signal handler or another
        thread."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b'.')

    def close(self, ack: bool = False, error: Optional[str] = None, count: bool = True) -> None:
        """Stops, and closes the LISTEN connection.  The current item, if any, is
        acknowledged (`ack`: removed), or else given back: with a failure counted
        against it (`error`: the text recorded), or uncounted when not `count`."""
        self._closed = True
        try:
            self._finish(ack, error, count)
        finally:
            if self._heartbeat is not None:
                self._heartbeat.close()
            self._hang_up()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def _next(self) -> Any:
        """The next item, _TICK or _STOP; first acknowledges the current one."""
        had_item = self._held is not None or self._leased is not None
        self._finish(ack=True)
        if (self._closed or self._stopping
                or (self._limit is not None and self._delivered >= self._limit)):
            return _STOP
        now = time.monotonic()
        if had_item or self._idle_since is None:
            self._idle_since = now
        stop_at = (None if self._stop_after_idle is None
                   else self._idle_since + self._stop_after_idle)
        tick_at = None if self._timeout is None else now + self._timeout
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
                    # Registered without a break since the barrier passed:
                    # on the shared channel every producer since notifies
                    # us, so an empty look after a wake-up needs no new
                    # registration (on an own channel, see below).  But NOTIFY
                    # cannot say when a scheduled message (or an expired
                    # lease) comes due: the server can, and did in the
                    # registration's round trip; after a wake-up, ask again.
                    if not self._due_fresh:
                        self._due = self._call(db.DUE_IN)
                    self._due_fresh = False
                    wait = self._poll_interval
                    if self._due is not None:
                        wait = max(0.001, min(wait, float(self._due)))
                wait, end = self._until(wait, stop_at, tick_at)
                if end is not None:
                    return end
                woken = self._sleep(wait)
                if self._stopping:
                    return _STOP
                # On an own channel, producers wake one listener each, and a
                # wake-up may be handed to us by one that left while a
                # producer that chose it still runs: after a notification,
                # q4pg_go_idle again after the next look (the registration
                # stands: one round trip, which also says when the next
                # message comes due).
                if woken and self._conn is not None and self._conn.own:
                    self._safe = False
            except ConnectionLost as e:
                self._finish(ack=False, count=False)   # never hold a message while we reconnect
                if not self._listened:
                    raise
                self._hang_up()
                delay, end = self._until(delay, stop_at, tick_at)
                if end is not None:
                    return end
                self._lost(e, 'reconnecting in %.1f s' % delay)
                db.ready([self._wake_r], delay)
                if self._stopping:
                    return _STOP
                delay = min(delay * 2, _BACKOFF_MAX)

    @staticmethod
    def _until(wait: float, stop_at: Optional[float],
               tick_at: Optional[float]) -> Tuple[float, Any]:
        """`wait` cut short by the deadlines; (wait, None), or (0, _STOP or _TICK)
        when a deadline has come."""
        now = time.monotonic()
        for deadline, end in ((stop_at, _STOP), (tick_at, _TICK)):
            if deadline is not None:
                if deadline <= now:
                    return 0.0, end
                wait = min(wait, deadline - now)
        return wait, None

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
        """Registers this listener as idle (q4pg_go_idle); True when it may sleep
        ('may_sleep'), False while a producer older than the registration may
        still commit ('producer_running').  Learns when the next message comes
        due in the same round trip."""
        assert self._conn is not None
        self._registered = True
        query = db.GO_IDLE_OWN_DUE if self._conn.own else db.GO_IDLE_DUE
        for _ in range(_ASK_AGAIN_MAX):
            state, self._due = self._conn.row(query, (self._queue, self._tag) * 2)
            if state != 'ask_again':
                break
        self._due_fresh = True
        self._safe = state == 'may_sleep'
        return self._safe

    def _unregister(self, leaving: bool = False) -> None:
        """Busy again, or `leaving`: producers need not notify us
        (q4pg_unregister_idle; leaving an own channel, a wake-up meant for us
        is handed to another listener)."""
        if self._registered and self._conn is not None:
            self._registered = self._safe = False
            self._call(db.UNREGISTER_HAND_OVER if leaving and self._conn.own
                       else db.UNREGISTER_IDLE)

    def _listen(self) -> None:
        """Connects the LISTEN connection and LISTENs, unless done already."""
        if self._conn is not None:
            return
        if self._channel is None:
            self._channel = self._db.run(db.CHANNEL, (self._queue, self._tag))[0][0]
        self._conn = self._db.listen(self._channel, own=(self._queue, self._tag))
        self._listened = True
        if self._lost_at is not None:
            log.warning('q4pg: listener on queue %s, tag %r: reconnected after %.1f s',
                        self._queue, self._tag, time.monotonic() - self._lost_at)
            self._lost_at = None

    def _take(self) -> Any:
        """Takes one message (in a new transaction on a pooled connection, or
        leased); the item, or _STOP if there is none."""
        if self._lease is not None:
            return self._take_leased()
        transaction = self._db.begin(db.DEQUEUE, (self._queue, self._tag))
        if not transaction.rows:
            # COMMIT, not ROLLBACK: it costs the same here, and a rollback
            # would make the session forget its route to the queue's
            # generated functions (q4pg_build_route: settings, transactional),
            # found again at the next take, at a cost of a few catalog reads.
            transaction.commit()
            return _STOP
        self._held = transaction
        try:
            return self._decode(transaction.rows[0])
        except Exception as e:
            self._finish(ack=False, error=error_text(e))
            raise
        except BaseException:
            self._finish(ack=False, count=False)
            raise

    def _take_leased(self) -> Any:
        assert self._lease is not None and self._heartbeat is not None
        rows = self._db.run(db.LEASE, (self._queue, self._tag, 1,
                                       datetime.timedelta(seconds=self._lease)),
                            idempotent=False)
        if not rows:
            return _STOP
        row = rows[0]
        self._leased = (row[0], row[6])
        try:
            item = self._decode(row)
        except BaseException as e:
            self._finish(ack=False, error=error_text(e))
            raise
        self._heartbeat.start([self._leased], self._lease)
        return item

    def _sleep(self, seconds: float) -> int:
        """Sleeps until a notification arrives on the LISTEN connection, stop() is
        called or `seconds` pass; the number of notifications.  Whatever woke
        us, the caller queries again."""
        assert self._conn is not None
        if self._stopping:
            return 0
        count = self._conn.wait(seconds, self._wake_r)
        with contextlib.suppress(OSError):
            os.read(self._wake_r, 4096)
        if count:
            log.debug('q4pg: %d notification(s) on %s', count, self._conn.channel)
        return count

    def _finish(self, ack: bool, error: Optional[str] = None, count: bool = True) -> None:
        """Ends the current item, if any: acknowledged (`ack`), or given back with a
        failure counted (`error`) or uncounted (not `count`; a lease counted
        its attempt when it was taken)."""
        if self._leased is not None:
            self._finish_lease(ack, error)
            return
        transaction, self._held = self._held, None
        if transaction is None:
            return
        if not ack and not count:
            transaction.rollback()
            return
        ids = [row[0] for row in transaction.rows]
        try:
            if ack:
                transaction.commit()
                return
            try:
                record_failures(transaction.run, self._queue, ids,
                                error or 'the listener was closed holding the message',
                                self._max_attempts)
            finally:
                transaction.commit()
        except Q4pgError as e:
            if not db.retryable(e):
                raise
            log.warning('q4pg: could not %s a message of tag %r, it may be delivered again: %s',
                        'acknowledge' if ack else 'count a failure against', self._tag, e)

    def _finish_lease(self, ack: bool, error: Optional[str]) -> None:
        assert self._leased is not None and self._heartbeat is not None
        (id_, token), self._leased = self._leased, None
        self._heartbeat.stop()
        try:
            if ack:
                if not self._db.run(db.ACK, (self._queue, id_, token))[0][0]:
                    said_lease_lost(self._queue, id_, ended=True)
                return
            outcome = self._db.run(db.NACK, (self._queue, id_, token, None,
                                             error or 'the listener was closed holding the '
                                             'message'))[0][0]
            if outcome == 'dead':
                said_dead(self._queue, id_, error)
        except Q4pgError as e:
            if not db.retryable(e):
                raise
            log.warning('q4pg: could not %s leased message %d of tag %r, its lease will run '
                        'out: %s', 'acknowledge' if ack else 'give back', id_, self._tag, e)

    def _hang_up(self) -> None:
        """Closes the LISTEN connection (a new one LISTENs again) and with it
        our registration; a registration left behind by a connection that
        died is cleared by the next listener's q4pg_go_idle."""
        with contextlib.suppress(Q4pgError):
            self._unregister(leaving=True)
        self._registered = self._safe = False
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
