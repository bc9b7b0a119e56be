"""AsyncQueueManager: the asyncio client (pip install 'q4pg[async]').

The sync client's API, awaited: the same names, arguments and defaults, the
same calls (calls.py), data handling and lifecycle (core.py); only the I/O
differs (aio_db.py: psycopg 3 and psycopg_pool).

    q = q4pg.AsyncQueueManager(dsn, table_name='mq')
    await q.enqueue('mail', {'to': 'ops@example.com'})
    async with q.dequeue('mail') as data: ...
    async for job in q.listen('mail'): ...
    async with q.lease('mail', seconds=30) as msg: ...
    await q.close()

Cancellation (task.cancel(), asyncio.timeout()) is not the job's failure:

    dequeue   cancelled while it waits or inside the block: the message goes back
              uncounted (rolled back), as after KeyboardInterrupt in the sync
              client; cancelled during the commit round trip: the COMMIT was
              sent, the server decides, the cancellation is raised
    lease     the heartbeat task stops and the message is given back at once
              (q4pg_nack, 'CancelledError' recorded; the lease counted the
              attempt when it was taken); if that cannot run, the lease expires
    listen    through listener() (async with): the item at hand goes back
              uncounted; a bare `async for ... in listen()` cannot tell an
              exception, break or cancellation in its body from one another
              (as in the sync client): leaving it early counts a failure

No pooled connection is ever left in a transaction (aio_db.py).  Servers with
q4pg 1.0 are refused (UpgradeNeeded): the rolling upgrade is the sync client's.
"""

import asyncio
import contextlib
from typing import Any, AsyncIterator, Iterable, List, Optional, Tuple

from . import calls, core, hints
from . import statements as sql
from .aio_db import AsyncCallerSession, AsyncDatabase, AsyncTransaction
from .aio_listen import AsyncListener, heartbeat, leased_rows
from .core import Ending, LeasedMessage, Message, ending, error_text
from .errors import InvalidArgument, InvalidMessage, Q4pgError, UndecodableMessage

__all__ = ['AsyncQueueManager']


class AsyncQueueManager:
    """A q4pg queue for asyncio: QueueManager's API, awaited (see the module's
    docstring).  Safe to share between the tasks of one event loop: calls share a
    pool of at most `max_connections` connections, opened at the first call."""

    def __init__(self, dsn: str = '', table_name: str = 'mq', data_type: str = 'json',
                 data_length: int = 1023, excepted_times_to_ignore: int = 0, *,
                 schema: Optional[str] = None, max_connections: int = 10,
                 poll_interval: float = 5.0, listen_dsn: Optional[str] = None) -> None:
        self._queue = core.check_manager(dsn, table_name, data_type, data_length,
                                         excepted_times_to_ignore, schema, max_connections,
                                         poll_interval, listen_dsn)
        self._db = AsyncDatabase(dsn, max_connections, listen_dsn=listen_dsn)
        self.dsn, self.listen_dsn = dsn, listen_dsn
        self.table_name, self.schema = table_name, schema
        self.data_type, self.data_length = data_type.lower(), data_length
        self.excepted_times_to_ignore = excepted_times_to_ignore
        self.poll_interval = poll_interval

    @classmethod
    async def existing(cls, dsn: str = '', table_name: str = 'mq', **kwargs: Any
                       ) -> 'AsyncQueueManager':
        """A manager for a queue that exists, with its table's data type and length."""
        q = cls(dsn, table_name, **kwargs)
        try:
            q.data_type, q.data_length = await q.settings()
        except BaseException:
            await q.close()
            raise
        return q

    def __repr__(self) -> str:
        return '<q4pg.AsyncQueueManager %s>' % self.name

    @property
    def name(self) -> str:
        """The queue as an SQL name: table_name, qualified by schema when given."""
        return self._queue

    async def __aenter__(self) -> 'AsyncQueueManager':
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the pool."""
        await self._db.close()

    # -- running calls ------------------------------------------------------------

    async def _run(self, query: str, args: Tuple[Any, ...], other_sess: Any = None,
                   idempotent: bool = True) -> List[Any]:
        if other_sess is not None:
            return await AsyncCallerSession(other_sess).run(query, (self._queue,) + args)
        return await self._db.run(query, (self._queue,) + args, idempotent=idempotent)

    async def _call(self, call: calls.Call, other_sess: Any = None) -> Any:
        if call.every:
            return call.result(await self._db.run(call.query))
        return call.result(await self._run(call.query, call.args, other_sess, call.idempotent))

    @property
    def _max_attempts(self) -> Optional[int]:
        return self.excepted_times_to_ignore or None

    def decode(self, text: str) -> Any:
        """Stored text as a dequeue gives it (UndecodableMessage when Python cannot read it)."""
        return core.decode(self.data_type, text)

    # -- the queue ----------------------------------------------------------------

    async def create_table(self, other_sess: Any = None, *,
                           max_attempts: Optional[int] = None) -> None:
        """Creates the queue; harmless when it exists with the same settings."""
        call = calls.create_queue(self.data_type, self.data_length, max_attempts)
        try:
            await self._call(call, other_sess)
        except InvalidArgument as e:
            hinted = hints.schema_missing(e, self._queue)
            if hinted is None:
                raise
            raise hinted from e

    async def drop_table(self, other_sess: Any = None) -> bool:
        """Drops the queue and its messages; False when there is no such table."""
        return await self._call(calls.drop_queue(), other_sess)

    async def reset_table(self, other_sess: Any = None) -> None:
        """Drops the queue (if any) and creates it anew, empty, in one transaction."""
        if other_sess is not None:
            await self.drop_table(other_sess)
            await self.create_table(other_sess)
            return
        await (await self._db.begin(sql.DROP_QUEUE + '; ' + sql.CREATE_QUEUE, (
            self._queue, self._queue, self.data_type, self.data_length))).commit()

    async def set_max_attempts(self, max_attempts: Optional[int]) -> None:
        await self._call(calls.set_max_attempts(max_attempts))

    # -- producing ----------------------------------------------------------------

    async def enqueue(self, tag: str, data: Any, other_sess: Any = None, schedule: Any = None,
                      *, conn: Any = None, raw: bool = False) -> int:
        """Adds a message; returns its id (see QueueManager.enqueue)."""
        session = core.other(other_sess, conn)
        text = core.encode(self.data_type, data, raw)
        when = None if schedule is None else core.schedule(schedule)
        return await self._call(calls.enqueue(tag, text, when), session)

    async def enqueue_many(self, tag: str, iterable: Iterable[Any], other_sess: Any = None,
                           schedule: Any = None, *, conn: Any = None,
                           raw: bool = False) -> List[int]:
        """Adds one message per item in one statement, all or nothing; their ids."""
        session = core.other(other_sess, conn)
        when = None if schedule is None else core.schedule(schedule)
        texts = []
        for index, data in enumerate(iterable):
            try:
                texts.append(core.encode(self.data_type, data, raw))
            except InvalidMessage as e:
                raise core.at(e, index) from e.__cause__
        return await self._call(calls.enqueue_many(tag, texts, when), session)

    # -- consuming ----------------------------------------------------------------

    def dequeue_message(self, tag: str, other_sess: Any = None, *,
                        raw: bool = False) -> 'AsyncHeld':
        """`async with`: the first due Message of `tag`, or None (QueueManager's rules;
        cancellation gives it back uncounted)."""
        return AsyncHeld(self, tag, 1, raw, other_sess, 'message')

    def dequeue(self, tag: str, other_sess: Any = None, *, raw: bool = False) -> 'AsyncHeld':
        """`async with`: the first due message's data, or None."""
        return AsyncHeld(self, tag, 1, raw, other_sess, 'data')

    def dequeue_many(self, tag: str, limit: int, other_sess: Any = None, *,
                     raw: bool = False) -> 'AsyncHeld':
        """`async with`: up to `limit` due Messages of `tag`."""
        core.check_whole('limit', limit, -2 ** 31)
        return AsyncHeld(self, tag, limit, raw, other_sess, 'many')

    async def dequeue_immediate(self, tag: str, other_sess: Any = None, *,
                                raw: bool = False) -> Any:
        """Removes the first due message of `tag` at once; its data, or None."""
        async with self.dequeue(tag, other_sess, raw=raw) as data:
            return data

    async def _count_failure(self, run: Any, ids: List[int], error: str) -> None:
        """q4pg_fail against `ids` in the transaction of `run`; logged, never raised."""
        try:
            for id_, outcome in await run(sql.FAIL, (self._queue, error, self._max_attempts,
                                                     ids)):
                if outcome == 'dead':
                    core.said_dead(self._queue, id_, error)
        except Q4pgError as e:
            core.log.warning('q4pg: could not count a failure against message(s) %s of queue '
                             '%s: %s', ', '.join(map(str, ids)), self._queue, e)

    @contextlib.asynccontextmanager
    async def lease(self, tag: str, seconds: float = 30, *,
                    raw: bool = False) -> AsyncIterator[Optional[LeasedMessage]]:
        """`async with`: the first due message of `tag` leased for `seconds`, or None;
        a heartbeat task extends it every third of `seconds`.  A normal end acks it
        (LeaseLost when it was lost); an exception or cancellation nacks it."""
        call = calls.lease(tag, 1, seconds)
        rows = await self._call(call)
        if not rows:
            yield None
            return
        msg = (await leased_rows(self, rows, raw))[0]
        beat = asyncio.ensure_future(heartbeat(self, [(msg.id, msg.lease_token)],
                                               call.args[2].total_seconds()))
        try:
            yield msg
        except BaseException as e:
            lost = await _stop(beat)
            await self._give_back(msg, error_text(e), lost)
            raise
        await _stop(beat)
        if not await self.ack(msg.id, msg.lease_token):
            raise core.lease_lost(msg)

    async def _give_back(self, msg: LeasedMessage, error: str, lost: bool) -> None:
        try:
            outcome = await asyncio.shield(self.nack(msg.id, msg.lease_token, error=error))
        except (Q4pgError, asyncio.CancelledError) as e:
            core.log.warning('q4pg: could not give back leased message %d of queue %s, its '
                             'lease will run out: %s', msg.id, self._queue, error_text(e))
            return
        if outcome is None and not lost:
            core.said_lease_lost(self._queue, msg.id, ended=False)
        elif outcome == 'dead':
            core.said_dead(self._queue, msg.id, error)

    async def take_leases(self, tag: str, limit: int = 1, seconds: float = 30, *,
                          raw: bool = False) -> List[LeasedMessage]:
        """Leases up to `limit` due messages for `seconds`, with no heartbeat."""
        return await leased_rows(self, await self._call(calls.lease(tag, limit, seconds)), raw)

    async def ack(self, id: int, token: str) -> bool:
        return await self._call(calls.ack(id, token))

    async def nack(self, id: int, token: str, *, retry_in: Any = None,
                   error: Optional[str] = None) -> Optional[str]:
        return await self._call(calls.nack(id, token, retry_in, error))

    async def extend(self, id: int, token: str, seconds: float) -> Any:
        return await self._call(calls.extend(id, token, seconds))

    async def next_due(self, tag: str) -> Any:
        return await self._call(calls.next_due(tag))

    # -- looking ------------------------------------------------------------------

    async def list(self, tag: Optional[str] = None, *, limit: Optional[int] = None,
                   other_sess: Any = None, ignore_scheduled: bool = True,
                   full: bool = False) -> List[Tuple[Any, ...]]:
        return await self._call(calls.list_due(tag, limit, ignore_scheduled, full), other_sess)

    async def count(self, tag: Optional[str] = None, other_sess: Any = None,
                    ignore_scheduled: bool = True) -> int:
        return await self._call(calls.count(tag, ignore_scheduled), other_sess)

    async def cancel(self, id: int, other_sess: Any = None) -> bool:
        return await self._call(calls.cancel(id), other_sess)

    async def dead_letters(self, tag: Optional[str] = None,
                           limit: Optional[int] = None) -> List[Tuple[Any, ...]]:
        return await self._call(calls.dead_letters(tag, limit))

    async def replay(self, ids: Optional[Iterable[int]] = None,
                     tag: Optional[str] = None) -> int:
        return await self._call(calls.replay(ids, tag))

    async def purge_dead(self, tag: Optional[str] = None, older_than: Any = None) -> int:
        return await self._call(calls.purge_dead(tag, older_than))

    async def channel(self, tag: str) -> str:
        return await self._call(calls.channel(tag))

    async def settings(self) -> Tuple[str, int]:
        return await self._call(calls.settings())

    async def queues(self, *, full: bool = False) -> List[Tuple[Any, ...]]:
        return await self._call(calls.queues(full))

    async def stats(self, *, full: bool = False) -> List[Tuple[Any, ...]]:
        return await self._call(calls.stats(full))

    async def consumers(self) -> List[Tuple[Any, ...]]:
        return await self._call(calls.consumers())

    # -- listening ----------------------------------------------------------------

    def listener(self, tag: str, timeout: Optional[float] = None, *,
                 stop_after_idle: Optional[float] = None, limit: Optional[int] = None,
                 full: bool = False, raw: bool = False,
                 lease: Optional[float] = None) -> AsyncListener:
        """`async with q.listener(tag) as jobs: async for job in jobs: ...`: leaving
        the block normally removes the item at hand; by an exception gives it back
        with a failure counted; by cancellation, uncounted.  jobs.stop() (a
        SIGTERM handler) ends the iteration after the item at hand."""
        core.check_listen(timeout, stop_after_idle, limit, lease)

        def item(row: Any) -> Any:
            message: Any = (core.leased(self.data_type, row, raw) if lease is not None
                            else core.message(self.data_type, row, raw))
            return message if full else message.data

        return AsyncListener(self, tag, decode=item, timeout=timeout,
                             stop_after_idle=stop_after_idle, limit=limit, lease=lease)

    async def listen(self, tag: str, timeout: Optional[float] = None, *,
                     stop_after_idle: Optional[float] = None, limit: Optional[int] = None,
                     full: bool = False, raw: bool = False,
                     lease: Optional[float] = None) -> AsyncIterator[Any]:
        """`async for`: each message's data as it arrives (see QueueManager.listen)."""
        listener = self.listener(tag, timeout, stop_after_idle=stop_after_idle, limit=limit,
                                 full=full, raw=raw, lease=lease)
        try:
            async for item in listener:
                yield item
        except GeneratorExit:
            await listener.close(Ending.FAIL, 'the listen() loop was left holding the message '
                                              '(an exception, break or aclose())')
            raise
        finally:
            await listener.close(Ending.GIVE_BACK)


async def _stop(beat: 'asyncio.Future[bool]') -> bool:
    """Stops a heartbeat task; whether it saw the lease lost."""
    beat.cancel()
    try:
        return bool(await asyncio.shield(beat))
    except BaseException:
        return False


class AsyncHeld:
    """`async with` over the messages one dequeue took: core.ending() decides how
    they end (QueueManager's Held, awaited)."""

    __slots__ = ('_q', '_tag', '_n', '_raw', '_other', '_shape', '_tx', '_session', '_own',
                 '_messages')

    def __init__(self, q: AsyncQueueManager, tag: str, n: int, raw: bool, other_sess: Any,
                 shape: str) -> None:
        self._q, self._tag, self._n, self._raw = q, tag, n, raw
        self._other, self._shape = other_sess, shape
        self._tx: Optional[AsyncTransaction] = None
        self._session: Optional[AsyncCallerSession] = None
        self._own = False
        self._messages: List[Message] = []

    def _take(self) -> Tuple[str, Tuple[Any, ...]]:
        q = self._q
        if self._n == 1:
            return sql.DEQUEUE, (q._queue, self._tag)
        return sql.TAKE, (q._queue, self._tag, self._n)

    async def __aenter__(self) -> Any:
        q = self._q
        if self._other is not None:
            self._session = session = AsyncCallerSession(self._other)
            self._own = session.autocommit()
            if self._own:
                await session.run('BEGIN')
            run = session.run
            try:
                rows = await session.run(*self._take())
            except BaseException:
                await self._end_session(Ending.GIVE_BACK)
                raise
        else:
            self._tx = await q._db.begin(*self._take())
            rows, run = self._tx.rows, self._tx.run
        try:
            self._messages = [core.message(q.data_type, row, self._raw) for row in rows]
        except UndecodableMessage as e:
            await q._count_failure(run, [e.id], error_text(e))
            await self._end(Ending.DONE, done=False)
            raise
        except BaseException:
            await self._end(Ending.GIVE_BACK)
            raise
        if self._shape == 'many':
            return self._messages
        first = self._messages[0] if self._messages else None
        return first if self._shape == 'message' or first is None else first.data

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        end = ending(exc_type)
        if end is Ending.FAIL and self._messages and (
                self._session is None or self._session.usable()):
            run = self._tx.run if self._tx is not None else self._session.run
            await self._q._count_failure(run, core.ids_of(self._messages), error_text(exc))
        await self._end(end)
        return False

    async def _end(self, end: Ending, done: bool = True) -> None:
        finish: Optional[str] = None
        args: Tuple[Any, ...] = ()
        if done and end is Ending.DONE and self._n != 1 and self._messages:
            finish, args = sql.DONE, (self._q._queue, core.ids_of(self._messages))
        if self._session is not None:
            if finish is not None:
                await self._session.run(finish, args)
            await self._end_session(end)
            return
        tx, self._tx = self._tx, None
        if tx is None:
            return
        if end is Ending.GIVE_BACK:
            await tx.rollback()
        else:
            await tx.commit(finish, args)

    async def _end_session(self, end: Ending) -> None:
        if self._own and self._session is not None:
            keep = end is not Ending.GIVE_BACK and self._session.usable()
            await self._session.run('COMMIT' if keep else 'ROLLBACK')
