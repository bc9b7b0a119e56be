"""The asyncio client's listener and heartbeat: listener.py and lease.py for
AsyncQueueManager, following the same listener protocol (README.md,
"Notifications": q4pg_go_idle's registration, 'ask_again', the producer
barrier, q4pg_next_due) and the same heartbeat policy (core.heartbeat_interval).

The listeners of an event loop share ONE server session, the hub's
(aio_hub.py: it LISTENs, registers them and hands each wake-up to one of them);
each takes its items on a pooled connection.  An idle listener is a task
waiting for the hub, so one event loop holds thousands at the cost of one
connection in all (and the pool).
"""

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from . import core
from . import statements as sql
from .aio_db import AsyncTransaction
from .aio_hub import Member, hub
from .core import Ending, ending, error_text
from .errors import ConnectionLost, Q4pgError, UndecodableMessage
from .listener import (_BACKOFF_FIRST, _BACKOFF_MAX, _BARRIER_FIRST, _BARRIER_MAX,
                       _STOP, _TICK, Listener)

if TYPE_CHECKING:
    from .aio import AsyncQueueManager

__all__ = ['AsyncListener', 'heartbeat', 'leased_rows']

log = logging.getLogger('q4pg')

# The protocol's timings and deadlines are listener.py's.
_until = Listener._until


async def leased_rows(q: 'AsyncQueueManager', rows: List[Any], raw: bool) -> List[Any]:
    """Rows just leased as LeasedMessages; when one cannot be decoded, all are
    given back (its error recorded) and UndecodableMessage raised."""
    try:
        return [core.leased(q.data_type, row, raw) for row in rows]
    except UndecodableMessage as e:
        for row in rows:
            try:
                await q.nack(row[0], row[6], error=error_text(e) if row[0] == e.id else None)
            except Q4pgError:
                pass
        raise


async def heartbeat(q: 'AsyncQueueManager', leases: List[Tuple[int, str]],
                    seconds: float) -> bool:
    """Extends `leases` every core.heartbeat_interval(seconds) until cancelled;
    True once one was refused (lost: said at WARNING)."""
    interval = core.heartbeat_interval(seconds)
    lease = core.interval('seconds', seconds)
    live, lost = list(leases), False
    while live:
        try:
            await asyncio.sleep(interval)
        except asyncio.CancelledError:
            return lost
        try:
            refused = await q._db.run(sql.EXTEND_MANY, ([i for i, _ in live],
                                                       [t for _, t in live], q._queue, lease))
        except asyncio.CancelledError:
            return lost
        except Q4pgError as e:
            log.warning('q4pg: could not extend the lease of message(s) %s of queue %s: %s; '
                        'trying again in %.1f s', ', '.join(str(i) for i, _ in live),
                        q._queue, e, interval)
            continue
        for (id_,) in refused:
            lost = True
            log.warning('q4pg: the lease of message %d of queue %s was lost: another '
                        'consumer leased it since (or it was cancelled or set aside); '
                        'its work may be done twice', id_, q._queue)
        live = [(i, t) for i, t in live if (i,) not in refused]
    return lost


class AsyncListener:
    """`async for` over the items of a tag as they arrive; `async with` ends the
    item at hand as core.ending() says.  See AsyncQueueManager.listener()."""

    def __init__(self, q: 'AsyncQueueManager', tag: str, *, decode: Callable[[Any], Any],
                 timeout: Optional[float], stop_after_idle: Optional[float],
                 limit: Optional[int], lease: Optional[float]) -> None:
        self._q, self._tag, self._decode = q, tag, decode
        self._timeout, self._stop_after_idle, self._limit = timeout, stop_after_idle, limit
        self._lease = lease
        self._member: Optional[Member] = None
        self._held: Optional[AsyncTransaction] = None
        self._leased: Optional[Tuple[int, str]] = None
        self._beat: Optional['asyncio.Future[bool]'] = None
        self._idle_since: Optional[float] = None
        self._due: Optional[float] = None
        self._due_fresh = self._listened = False
        self._delivered = 0
        self._closed = False
        self._stopping = asyncio.Event()

    def __aiter__(self) -> 'AsyncListener':
        return self

    async def __anext__(self) -> Any:
        item = await self._next()
        if item is _STOP:
            raise StopAsyncIteration
        return None if item is _TICK else item

    async def __aenter__(self) -> 'AsyncListener':
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        end = ending(exc_type)
        await self.close(end, error_text(exc) if end is Ending.FAIL else None)

    def stop(self) -> None:
        """Ends the iteration at the next request for an item (which first ends
        the item at hand well), without waiting for another message.  Safe in a
        signal handler installed with loop.add_signal_handler()."""
        self._stopping.set()
        if self._member is not None:
            self._member.wake()

    async def close(self, end: Ending = Ending.GIVE_BACK, error: Optional[str] = None) -> None:
        """Ends the item at hand (DONE: removed; FAIL: given back, `error` counted;
        GIVE_BACK: given back uncounted) and leaves the hub (aio_hub.py)."""
        self._closed = True
        try:
            await self._finish(end, error)
        finally:
            member, self._member = self._member, None
            if member is not None:
                await member.leave()

    async def _next(self) -> Any:
        had_item = self._held is not None or self._leased is not None
        await self._finish(Ending.DONE)
        if (self._closed or self._stopping.is_set()
                or (self._limit is not None and self._delivered >= self._limit)):
            return _STOP
        now = time.monotonic()
        if had_item or self._idle_since is None:
            self._idle_since = now
        stop_at = None if self._stop_after_idle is None else self._idle_since + self._stop_after_idle
        tick_at = None if self._timeout is None else now + self._timeout
        delay, barrier = _BACKOFF_FIRST, _BARRIER_FIRST
        while True:
            try:
                member = await self._listen()
                member.look()
                item = await self._take()
                if item is not _STOP:
                    member.took()
                    self._delivered += 1
                    return item
                delay = _BACKOFF_FIRST
                verdict = member.after_empty_look()
                if verdict == 'look':
                    continue
                if verdict == 'register':
                    state, due = await member.go_idle()
                    if state != 'producer_running':     # 'may_sleep': one last look
                        self._due, self._due_fresh = due, state == 'may_sleep'
                        continue
                    wait = barrier
                    barrier = min(barrier * 2, _BARRIER_MAX, self._q.poll_interval)
                else:
                    barrier = _BARRIER_FIRST
                    if not self._due_fresh:
                        self._due = await member.due_in()
                    self._due_fresh = False
                    wait = self._q.poll_interval
                    if self._due is not None:
                        wait = max(0.001, min(wait, float(self._due)))
                wait, end = _until(wait, stop_at, tick_at)
                if end is not None:
                    return end
                woke = await member.sleep(wait, self._stopping)
                if self._stopping.is_set():
                    if woke == 'poke':
                        member.slot.poke()      # not acted on: to another listener
                    return _STOP
            except ConnectionLost as e:
                await self._finish(Ending.GIVE_BACK)
                if not self._listened:
                    raise
                delay, end = _until(delay, stop_at, tick_at)
                if end is not None:
                    return end
                log.warning('q4pg: listener on queue %s, tag %r: %s; listening again in %.1f s',
                            self._q.name, self._tag, e, delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    return _STOP
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, _BACKOFF_MAX)

    async def _listen(self) -> Member:
        """Our place in the hub, LISTENing (again, after the session was lost)."""
        if self._member is None:
            channel = await self._q.channel(self._tag)
            if self._member is None:
                self._member = hub(self._q._db.listen_dsn).join(self, self._q._queue,
                                                                self._tag, channel)
        member = self._member
        await member.listen()
        self._listened = True
        return member

    async def _take(self) -> Any:
        q = self._q
        if self._lease is not None:
            call_rows = await q._db.run(sql.LEASE, (q._queue, self._tag, 1,
                                                    core.interval('lease', self._lease)),
                                        idempotent=False)
            if not call_rows:
                return _STOP
            row = call_rows[0]
            self._leased = (row[0], row[6])
        else:
            tx = await q._db.begin(sql.DEQUEUE, (q._queue, self._tag))
            if not tx.rows:
                await tx.commit()      # not rollback: keeps the session's route (listener.py)
                return _STOP
            self._held, row = tx, tx.rows[0]
        try:
            item = self._decode(row)
        except Exception as e:
            await self._finish(Ending.FAIL, error_text(e))
            raise
        except BaseException:
            await self._finish(Ending.GIVE_BACK)
            raise
        if self._leased is not None:
            self._beat = asyncio.ensure_future(heartbeat(q, [self._leased], self._lease))
        return item

    async def _finish(self, end: Ending, error: Optional[str] = None) -> None:
        """Ends the item at hand, if any, as `end` says."""
        q = self._q
        if self._member is not None:
            self._member.done()
        if self._leased is not None:
            (id_, token), self._leased = self._leased, None
            beat, self._beat = self._beat, None
            if beat is not None:
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)
            try:
                if end is Ending.DONE:
                    if not await q.ack(id_, token):
                        core.said_lease_lost(q.name, id_, ended=True)
                else:
                    error = error or 'the listener was closed holding the message'
                    if await asyncio.shield(q.nack(id_, token, error=error)) == 'dead':
                        core.said_dead(q.name, id_, error)
            except Q4pgError as e:
                log.warning('q4pg: could not end leased message %d of tag %r, its lease will '
                            'run out: %s', id_, self._tag, e)
            return
        tx, self._held = self._held, None
        if tx is None:
            return
        if end is Ending.GIVE_BACK:
            await tx.rollback()
            return
        if end is Ending.FAIL:
            await q._count_failure(tx.run, [tx.rows[0][0]],
                                   error or 'the listener was closed holding the message')
        try:
            await tx.commit()
        except ConnectionLost as e:
            log.warning('q4pg: could not end a message of tag %r, it may be delivered again: '
                        '%s', self._tag, e)
