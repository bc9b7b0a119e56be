"""The asyncio client's listen hub: ONE server session per event loop and listen
DSN for all the AsyncListeners of that loop (aio_listen.py), whatever their
queues and tags.

Why: PostgreSQL signals every backend that LISTENs on anything at each commit
that sent NOTIFY, whatever the channel.  A LISTEN session per listener made a
thousand idle asyncio listeners a thousand processes woken per message.

The hub's session LISTENs on the own channel (q4pg_own_channel) of every
(queue, tag) a local listener waits on, and makes the listener protocol's calls
(docs/listeners.md: q4pg_go_idle, q4pg_unregister_idle, q4pg_next_due) for them,
one slot per (queue, tag).  The server sees one listener per slot; the slot
shares its registration among the local listeners:

- registered while at least one local listener of it is not busy (looking,
  going idle or asleep); the last one to take a message unregisters it (in the
  background: its message is not delayed), the last one to leave unregisters
  it handing a wake-up over (q4pg_unregister_idle(..., true)).
- a wake-up ("poke": a notification, or a local listener that found a
  message) wakes ONE sleeping local listener, which looks.  A listener that
  finds a message pokes the next one before it works: a batch of n, which
  wakes the session once, is taken by as many listeners as are idle, one
  after the other, and the last poke costs one look that finds nothing.  A
  poke that finds nobody asleep is counted (`heard`): a listener whose last
  look began before it looks again instead of sleeping; one that is busy looks
  again when done anyway (the protocol's drain).
- `safe`: the slot's last q4pg_go_idle said 'may_sleep' and no notification
  came since (one may be a wake-up handed over while its producer still runs:
  q4pg_go_idle again before sleeping, as the protocol says).  A listener may
  sleep after an empty look that began while the slot was safe, if it still is
  (`gen` counts the changes).
- the session lost (server restart, pg_terminate_backend, network cut): every
  slot is unregistered and unsafe, every sleeper poked; the listeners look
  again, and their next q4pg_go_idle connects anew and LISTENs again.

The calls that change a slot's registration are shielded from cancellation: a
cancelled listener never leaves the session registered for a tag nobody
waits on (producers would choose it over a listener that is there).
"""

import asyncio
import collections
import logging
import time
import weakref
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

import psycopg
from psycopg import sql as pgsql

from . import statements as sql
from .aio_db import _connect, _execute
from .errors import ConnectionLost, Q4pgError, wrap_error
from .listener import _ASK_AGAIN_MAX, _BACKOFF_FIRST

__all__ = ['Hub', 'Member', 'hub']

log = logging.getLogger('q4pg')

_hubs: 'weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[str, Hub]]' = \
    weakref.WeakKeyDictionary()


def hub(dsn: str) -> 'Hub':
    """The running event loop's hub for `dsn` (made at the first call)."""
    loop = asyncio.get_running_loop()
    hubs = _hubs.setdefault(loop, {})
    found = hubs.get(dsn)
    if found is None:
        found = hubs[dsn] = Hub(dsn, loop)
    return found


class _Slot:
    """A (queue, tag) of the hub: its local listeners and the session's registration."""

    def __init__(self, queue: str, tag: str, channel: str) -> None:
        self.args = (queue, tag)
        self.channel = channel         # the shared channel: the slot's key
        self.own = True                # False: the server has no own channels (1.0, 1.1)
        self.listening: Optional[str] = None   # the channel LISTENed on, in `session`
        self.session = 0
        self.users = self.busy = 0
        self.sleepers: Deque['asyncio.Future[str]'] = collections.deque()
        self.heard = self.gen = self.notified = 0
        self.registered = self.safe = False
        self.lock = asyncio.Lock()

    def poke(self, why: str = 'poke') -> None:
        """Wakes one sleeping local listener, or, none asleep, counts the wake-up."""
        while self.sleepers:
            fut = self.sleepers.popleft()
            if not fut.done():
                fut.set_result(why)
                return
        self.heard += 1

    def unsafe(self) -> None:
        self.safe = False
        self.gen += 1


class Member:
    """One AsyncListener's place in a slot of the hub."""

    def __init__(self, hub_: 'Hub', slot: _Slot) -> None:
        self.hub, self.slot = hub_, slot
        self.busy = self.left = False
        self.finalizer: Optional[weakref.finalize] = None
        self.mark: Tuple[int, int, bool] = (slot.heard, slot.gen, False)
        self._sleep: Optional['asyncio.Future[str]'] = None

    def look(self) -> None:
        """Called as a look begins."""
        s = self.slot
        self.mark = (s.heard, s.gen, s.safe)

    def after_empty_look(self) -> str:
        """'look' (woken since the look began: again), 'sleep' or 'register'."""
        s = self.slot
        heard, gen, safe = self.mark
        if s.heard != heard:
            return 'look'
        return 'sleep' if safe and s.gen == gen and s.safe else 'register'

    def took(self) -> None:
        """The look found a message: pokes the next idle listener of the slot;
        the last not busy unregisters the slot (in the background)."""
        s = self.slot
        self.busy = True
        s.busy += 1
        s.poke()
        if s.users <= s.busy and s.registered:
            self.hub._spawn(self.hub._unregister(s, hand_over=False))

    def done(self) -> None:
        """Done with the message taken: looks again."""
        if self.busy:
            self.busy = False
            self.slot.busy -= 1

    async def listen(self) -> None:
        """Connects the hub and LISTENs on the slot's channel, unless done already."""
        if self.slot.session != self.hub.session or self.hub._conn is None:
            await asyncio.shield(self.hub._listen(self.slot))

    async def go_idle(self) -> Tuple[str, Any]:
        """q4pg_go_idle for the slot, asked again at once for 'ask_again':
        ('may_sleep' / 'producer_running' / 'look' (another listener made the slot
        safe meanwhile), seconds until the next message is due or None)."""
        return await asyncio.shield(self.hub._go_idle(self.slot))

    async def due_in(self) -> Any:
        return (await self.hub._row(sql.DUE_IN, self.slot.args))[0]

    async def sleep(self, seconds: float, stopping: asyncio.Event) -> str:
        """Sleeps until poked ('poke'; 'lost': the session was), `stopping` is set
        (then wake() is called: 'stop') or `seconds` pass ('timeout').  A poke
        this listener will not act on (cancelled) goes to another."""
        s = self.slot
        if stopping.is_set():
            return 'stop'
        if s.heard != self.mark[0]:
            return 'poke'
        loop = asyncio.get_running_loop()
        self._sleep = fut = loop.create_future()
        s.sleepers.append(fut)
        timer = loop.call_later(seconds, lambda: fut.done() or fut.set_result('timeout'))
        try:
            return await fut
        except asyncio.CancelledError:
            self.pass_on(fut)
            raise
        finally:
            timer.cancel()
            self._sleep = None
            if fut in s.sleepers:
                s.sleepers.remove(fut)

    def pass_on(self, fut: 'Optional[asyncio.Future[str]]') -> None:
        """A poke received and not acted on goes to another listener of the slot."""
        if fut is not None and fut.done() and not fut.cancelled() and fut.result() == 'poke':
            self.slot.poke()

    def wake(self) -> None:
        """Ends a sleep() under way with 'stop'."""
        if self._sleep is not None and not self._sleep.done():
            self._sleep.set_result('stop')

    async def leave(self) -> None:
        if not self.left:
            self.left = True
            if self.finalizer is not None:
                self.finalizer.detach()
            await asyncio.shield(self.hub._leave(self))


class Hub:
    """The session shared by the listeners of one event loop and listen DSN."""

    def __init__(self, dsn: str, loop: asyncio.AbstractEventLoop) -> None:
        self.dsn, self._loop = dsn, loop
        self._conn: Any = None
        self.pid: Optional[int] = None
        self.session = 0                          # counts the connections made; 0: none
        self._slots: Dict[str, _Slot] = {}
        self._channels: Dict[str, _Slot] = {}     # LISTENed channel -> slot
        self._lock = asyncio.Lock()               # one statement at a time on the session
        self._armed: Optional[int] = None         # the socket watched while no statement runs
        self._tasks: Set['asyncio.Task[Any]'] = set()
        self._failure: Optional[Tuple[float, ConnectionLost]] = None   # until, error

    def join(self, listener: Any, queue: str, tag: str, channel: str) -> Member:
        """A place for `listener` in the slot of (queue, tag), whose shared
        channel is `channel`.  Should the listener be dropped without leaving
        (its task died), its place is given up when it is garbage-collected."""
        slot = self._slots.get(channel)
        if slot is None:
            slot = self._slots[channel] = _Slot(queue, tag, channel)
        slot.users += 1
        member = Member(self, slot)
        member.finalizer = weakref.finalize(listener, self._abandoned, member)
        member.finalizer.atexit = False
        return member

    def _abandoned(self, member: Member) -> None:
        if not member.left and not self._loop.is_closed():
            member.left = True
            self._loop.call_soon_threadsafe(lambda: self._spawn(self._leave(member)))

    # -- the slots' calls (shielded by Member) ------------------------------------------

    async def _listen(self, slot: _Slot) -> None:
        async with slot.lock:
            await self._listen_locked(slot)

    async def _listen_locked(self, slot: _Slot) -> None:
        """LISTENs on the slot's channel in the current session (connecting it),
        unless done already (the slot's lock held)."""
        async with self._lock:
            conn = await self._open()
            if slot.session == self.session:
                return
            self._disarm()
            try:
                own = None
                if slot.own:
                    try:
                        own = (await _execute(conn, sql.OWN_CHANNEL, slot.args))[0][0]
                    except psycopg.errors.UndefinedFunction:
                        slot.own = False         # q4pg 1.0 or 1.1: the shared channel
                channel = own or slot.channel
                await conn.execute(pgsql.SQL('LISTEN {}').format(pgsql.Identifier(channel)))
            except psycopg.Error as e:
                raise self._failed(e, conn) from e
            finally:
                self._arm()
            if slot.listening is not None:
                self._channels.pop(slot.listening, None)
            slot.listening, slot.session = channel, self.session
            self._channels[channel] = slot

    async def _go_idle(self, slot: _Slot) -> Tuple[str, Any]:
        async with slot.lock:
            if slot.safe:
                return 'look', None
            await self._listen_locked(slot)
            query = sql.GO_IDLE_OWN_DUE if slot.own else sql.GO_IDLE_DUE
            notified, state, due = slot.notified, None, None
            for _ in range(_ASK_AGAIN_MAX):
                state, due = await self._row(query, slot.args * 2, slot)
                slot.registered = True
                if state != 'ask_again':
                    break
            if state == 'may_sleep' and slot.notified == notified:
                slot.safe = True
                slot.gen += 1
            return state, due

    async def _unregister(self, slot: _Slot, hand_over: bool) -> None:
        """Unregisters the slot when no local listener of it is left not busy."""
        async with slot.lock:
            if slot.users > slot.busy or not slot.registered:
                return
            slot.registered = False
            slot.unsafe()
            try:
                await self._row(sql.UNREGISTER_HAND_OVER if hand_over and slot.own
                                else sql.UNREGISTER_IDLE, slot.args)
            except ConnectionLost:
                pass          # the session is gone, and its registrations with it
            except Q4pgError as e:
                log.warning('q4pg: could not unregister the listeners of queue %s, tag %r: %s',
                            slot.args[0], slot.args[1], e)

    async def _leave(self, member: Member) -> None:
        slot = member.slot
        slot.users -= 1
        member.done()
        member.pass_on(member._sleep)
        if slot.heard != member.mark[0]:
            slot.poke()          # a wake-up nobody took since our last look: to a sleeper
        await self._unregister(slot, hand_over=True)
        if slot.users == 0 and self._slots.get(slot.channel) is slot:
            del self._slots[slot.channel]
            if slot.listening is not None:
                self._channels.pop(slot.listening, None)
                if slot.session == self.session and self._conn is not None and self._slots:
                    try:
                        await self._run(pgsql.SQL('UNLISTEN {}').format(
                            pgsql.Identifier(slot.listening)), ())
                    except Q4pgError:
                        pass
        if not self._slots and _hubs.get(self._loop, {}).get(self.dsn) is self:
            del _hubs[self._loop][self.dsn]
            async with self._lock:
                conn, self._conn, self.pid = self._conn, None, None
                self._disarm()
                if conn is not None:
                    await conn.close()

    # -- the session --------------------------------------------------------------------

    async def _row(self, query: str, args: Tuple[Any, ...],
                   slot: Optional[_Slot] = None) -> Tuple[Any, ...]:
        """Runs a one-row statements.py call written for a listen session (its last
        parameter is the session's pid); for `slot`, only in the session that
        LISTENs on its channel."""
        async with self._lock:
            conn = await self._open()
            if slot is not None and slot.session != self.session:
                raise ConnectionLost('q4pg: the listen session was lost meanwhile')
            rows = await self._execute(conn, query, args + (self.pid,))
        if not rows:
            raise Q4pgError('q4pg: the listen connection does not keep a server session of '
                            'its own (a pooler in transaction mode?): give listen_dsn')
        return rows[0]

    async def _run(self, query: Any, args: Tuple[Any, ...]) -> List[Any]:
        async with self._lock:
            return await self._execute(await self._open(), query, args)

    async def _execute(self, conn: Any, query: Any, args: Tuple[Any, ...]) -> List[Any]:
        """Runs `query` on the session (the lock held): notifications that psycopg
        reads meanwhile go to _on_notify; the socket is watched again after."""
        self._disarm()
        try:
            return await _execute(conn, query, args)
        except psycopg.Error as e:
            raise self._failed(e, conn) from e
        finally:
            self._arm()

    async def _open(self) -> Any:
        """The session's connection (the lock held), connected when it is not."""
        if self._conn is None:
            if self._failure is not None and self._failure[0] > time.monotonic():
                raise self._failure[1]
            try:
                conn = await _connect(self.dsn)
            except ConnectionLost as e:   # the listeners retry: once per back-off, not each
                self._failure = (time.monotonic() + _BACKOFF_FIRST, e)
                raise
            try:
                cur = await conn.execute('SELECT pg_catalog.pg_backend_pid()')
                self.pid = (await cur.fetchone())[0]
            except psycopg.Error as e:
                await conn.close()
                raise wrap_error(e, conn) from e
            conn.add_notify_handler(self._on_notify)
            self._conn = conn
            self.session += 1
        return self._conn

    def _failed(self, e: 'psycopg.Error', conn: Any) -> Q4pgError:
        error = wrap_error(e, conn)
        if isinstance(error, ConnectionLost) or conn.closed:
            self._lost(error)
        return error

    def _arm(self) -> None:
        if self._conn is not None and self._armed is None and not self._conn.closed:
            self._armed = self._conn.pgconn.socket
            self._loop.add_reader(self._armed, self._readable)

    def _disarm(self) -> None:
        if self._armed is not None:
            self._loop.remove_reader(self._armed)
            self._armed = None

    def _readable(self) -> None:
        """The idle session's socket has something: notifications, or its end."""
        conn = self._conn
        if conn is None:
            self._disarm()
            return
        try:
            conn.pgconn.consume_input()
            while True:
                n = conn.pgconn.notifies()
                if n is None:
                    break
                self._notified(n.relname.decode())
        except psycopg.Error as e:
            self._lost(wrap_error(e, conn))
            return
        if conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK:
            self._lost(ConnectionLost('q4pg: the listen session\'s connection was closed'))

    def _on_notify(self, n: Any) -> None:
        self._notified(n.channel)

    def _notified(self, channel: str) -> None:
        slot = self._channels.get(channel)
        if slot is None:
            return
        slot.notified += 1
        if slot.own:
            slot.unsafe()        # q4pg_go_idle again before anyone sleeps (a hand-over?)
        slot.poke()

    def _lost(self, error: Q4pgError) -> None:
        """The session is gone: every local listener looks again and registers anew."""
        conn, self._conn, self.pid = self._conn, None, None
        self._disarm()
        if conn is None:
            return
        log.warning('q4pg: the listen session of %d listener(s) was lost: %s; they look again '
                    'and listen anew', sum(s.users for s in self._slots.values()), error)
        self._spawn(conn.close())
        self._channels.clear()
        for slot in self._slots.values():
            slot.registered = False
            slot.session, slot.listening = 0, None
            slot.unsafe()
            slot.heard += 1
            for fut in slot.sleepers:
                if not fut.done():
                    fut.set_result('lost')
            slot.sleepers.clear()

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
