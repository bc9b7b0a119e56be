"""The asyncio client's database layer, on psycopg 3 and psycopg_pool (pip
install 'q4pg[async]'): what db.py is to the sync client.

    AsyncDatabase        a psycopg_pool.AsyncConnectionPool of autocommit
                         connections: run(), begin() -> AsyncTransaction,
                         close() (the listeners' session: aio_hub.py)
    AsyncCallerSession   the caller's session (other_sess): a psycopg
                         AsyncConnection or AsyncCursor, an SQLAlchemy
                         AsyncSession or AsyncConnection

It sends statements.py's SQL, the sync client's, through client-side binding
(psycopg.AsyncClientCursor): then BEGIN travels with a dequeue, and COMMIT
with q4pg_done_many, in one round trip each, as in db.py.

Cancellation: a statement interrupted by task.cancel() or asyncio.timeout()
is cancelled in the server by psycopg, and the connection goes back to the
pool, which rolls back whatever transaction it was in (or closes it when it
cannot), shielded from a second cancellation: a pooled connection is never
left in a transaction, broken or not.
"""

import asyncio
import logging
from typing import Any, List, Optional, Sequence, Tuple

try:
    import psycopg
    from psycopg.pq import TransactionStatus
    from psycopg_pool import AsyncConnectionPool
except ImportError as e:      # pragma: no cover: the extra is missing
    raise ImportError("q4pg: the asyncio client needs psycopg 3 and psycopg_pool: "
                      "pip install 'q4pg[async]'") from e

from . import door
from . import statements as sql
from .db import check_dsn
from .errors import (ConnectionLost, InvalidArgument, Q4pgError, UpgradeNeeded, outcome_unknown,
                     sqlalchemy_cause, wrap_error)

__all__ = ['AsyncDatabase', 'AsyncTransaction', 'AsyncCallerSession']

log = logging.getLogger('q4pg')

Row = Tuple[Any, ...]

_CONNECT_KWARGS = {'autocommit': True, 'cursor_factory': psycopg.AsyncClientCursor,
                   'fallback_application_name': 'q4pg'}
NEEDS_1_1 = ("q4pg: this database has q4pg 1.0; the asyncio client needs 1.1 or later: "
             "upgrade it with `q4pg upgrade` (or ALTER EXTENSION q4pg UPDATE)")


async def _execute(conn: Any, query: str, args: Optional[Sequence[Any]]) -> List[Row]:
    """Runs `query` (maybe several statements) on `conn`; the rows of the last
    statement that returns rows."""
    cur = conn.cursor()
    await cur.execute(query, tuple(args) if args else None)
    rows: List[Row] = []
    while True:
        if cur.description is not None:
            rows = await cur.fetchall()
        if not cur.nextset():
            return rows


async def _run(conn: Any, query: str, args: Sequence[Any], begin: bool = False,
               then: str = '') -> List[Row]:
    """Runs `query` (a statements.py text) on one of our connections, after BEGIN
    when `begin`, followed by `then`: through the direct door when the
    connection has it (door.plan, as db._run), else as it is."""
    doors = getattr(conn, 'q4pg_doors', None)
    if doors is None or not doors.enabled:
        return await _execute(conn, ('BEGIN; ' if begin else '') + query + then, args)
    steps = door.plan(doors, query, args, begin, then)
    sent = next(steps)
    try:
        while True:
            try:
                got: Any = await _execute(conn, *sent)
            except psycopg.Error as e:
                got = door.Failed(e.sqlstate, e.diag.message_primary or '',
                                  conn.info.transaction_status == TransactionStatus.IDLE, e)
            sent = steps.send(got)
    except StopIteration as stop:
        return stop.value


async def _connect(dsn: str) -> Any:
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, **_CONNECT_KWARGS)
        await _find_q4pg(conn)
        return conn
    except psycopg.Error as e:
        raise wrap_error(e) from e


async def _find_q4pg(conn: Any) -> bool:
    """Puts q4pg's schema on the session's search_path (statements.CONNECT);
    whether the database's q4pg is 1.0.  The connection's q4pg_doors: what it
    knows of the direct door (door.py)."""
    rows = await _execute(conn, sql.CONNECT, None)
    conn.q4pg_doors = door.session(rows[0], conn.info.backend_pid)
    return bool(rows[0][1])


class AsyncTransaction:
    """A transaction left open by AsyncDatabase.begin(): its rows, commit(), rollback()."""

    __slots__ = ('_db', '_conn', 'rows')

    def __init__(self, database: 'AsyncDatabase', conn: Any, rows: List[Row]) -> None:
        self._db, self._conn, self.rows = database, conn, rows

    async def run(self, query: str, args: Sequence[Any] = ()) -> List[Row]:
        """Runs `query` in the transaction; an error rolls it back and is raised."""
        assert self._conn is not None
        try:
            return await _run(self._conn, query, args)
        except psycopg.Error as e:
            err = wrap_error(e, self._conn)
            await self.rollback()
            raise err from e

    async def commit(self, query: Optional[str] = None, args: Sequence[Any] = ()) -> None:
        """Commits (after `query`, if given, in the same round trip); ConnectionLost
        (outcome unknown) when the connection breaks meanwhile."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if query is None:
                await _execute(conn, 'COMMIT', None)
            else:
                await _run(conn, query, args, then='; COMMIT')
        except psycopg.Error as e:
            raise outcome_unknown(wrap_error(e, conn), 'COMMIT') from e
        finally:
            await self._db.put(conn)

    async def rollback(self) -> None:
        """Rolls back: the pool does, when the connection goes back (never raises)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._db.put(conn)


class AsyncDatabase:
    """A pool of at most `max_connections` autocommit connections to `dsn`,
    opened at the first call; the listeners' session (aio_hub.py) goes to
    `listen_dsn`."""

    def __init__(self, dsn: str, max_connections: int, listen_dsn: Optional[str] = None) -> None:
        check_dsn(dsn)
        if listen_dsn is not None:
            check_dsn(listen_dsn, 'listen_dsn connection string')
        self.dsn = dsn
        self.listen_dsn = dsn if listen_dsn is None else listen_dsn
        self.q4pg_1_0: Optional[bool] = None
        self._pool = AsyncConnectionPool(dsn, min_size=0, max_size=max_connections,
                                         kwargs=dict(_CONNECT_KWARGS), configure=self._configure,
                                         open=False, name='q4pg')
        self._opened = False
        self._closed = False

    async def _configure(self, conn: Any) -> None:
        self.q4pg_1_0 = await _find_q4pg(conn)

    async def get(self) -> Any:
        """A pooled connection (opens the pool the first time)."""
        if self._closed:
            raise Q4pgError('q4pg: this AsyncQueueManager is closed')
        if not self._opened:
            self._opened = True
            await self._pool.open(wait=False)
        try:
            conn = await self._pool.getconn()
        except psycopg.Error as e:
            raise wrap_error(e) from e
        except Exception as e:            # psycopg_pool.PoolTimeout: no connection came
            raise ConnectionLost('q4pg: cannot connect: %s' % e) from e
        if self.q4pg_1_0:
            await self.put(conn)
            raise UpgradeNeeded(NEEDS_1_1)
        return conn

    async def put(self, conn: Any) -> None:
        """Gives `conn` back to the pool, which rolls back a transaction left open
        (or closes a connection still busy or broken); shielded: a second
        cancellation cannot leave it half given back."""
        status = conn.info.transaction_status
        if status != TransactionStatus.IDLE and not conn.closed:
            # psycopg_pool warns about a connection returned in a transaction: we
            # do it on purpose (a given-back message), so roll back here first.
            try:
                await asyncio.shield(conn.rollback())
            except BaseException:
                await asyncio.shield(conn.close())
        await asyncio.shield(self._pool.putconn(conn))

    async def run(self, query: str, args: Sequence[Any] = (), *,
                  idempotent: bool = True) -> List[Row]:
        """Runs `query` on its own (autocommit: one round trip); its rows.  A lost
        connection is tried once more when the statement is `idempotent` or the
        server said so before running it (57P01)."""
        conn, rows = await self._execute(query, args, idempotent)
        await self.put(conn)
        return rows

    async def begin(self, query: str, args: Sequence[Any]) -> AsyncTransaction:
        """Runs `query` in a new transaction (BEGIN in the same round trip) and
        leaves it open."""
        conn, rows = await self._execute(query, args, idempotent=True, begin=True)
        return AsyncTransaction(self, conn, rows)

    async def _execute(self, query: str, args: Sequence[Any], idempotent: bool,
                       begin: bool = False) -> Tuple[Any, List[Row]]:
        for attempt in (1, 2):
            conn = await self.get()
            try:
                return conn, await _run(conn, query, args, begin)
            except psycopg.Error as e:
                await self.put(conn)
                error = wrap_error(e, conn)
                if not isinstance(error, ConnectionLost):
                    raise error from e
                if attempt == 1 and (idempotent or error.pgcode == '57P01'):
                    log.info('q4pg: dropped a pooled connection that died idle: %s', error)
                    continue
                if not idempotent and error.pgcode != '57P01':
                    error = outcome_unknown(error, 'the call')
                raise error from e
            except BaseException:       # CancelledError...: the pool takes it back, cleaned
                await self.put(conn)
                raise
        raise AssertionError('unreachable')

    def stats(self) -> dict:
        """psycopg_pool's counters (pool_size, pool_available, requests_waiting...)."""
        return self._pool.get_stats()

    async def close(self) -> None:
        self._closed = True
        if self._opened:
            await self._pool.close()


class AsyncCallerSession:
    """The caller's session (other_sess): calls run in its current transaction and
    are never committed or rolled back here (an autocommit psycopg connection:
    each call its own transaction)."""

    def __init__(self, other_sess: Any) -> None:
        self._conn = self._cursor = self._sa = self._sa_session = None
        if isinstance(other_sess, psycopg.AsyncConnection):
            self._conn = other_sess
        elif isinstance(other_sess, psycopg.AsyncCursor):
            self._conn, self._cursor = other_sess.connection, other_sess
        elif callable(getattr(other_sess, 'exec_driver_sql', None)):    # SA AsyncConnection
            self._sa = other_sess
        elif (callable(getattr(other_sess, 'connection', None))
              and callable(getattr(other_sess, 'execute', None))):       # SA AsyncSession
            self._sa_session = other_sess
        else:
            raise InvalidArgument('q4pg: other_sess must be a psycopg AsyncConnection or '
                                  'AsyncCursor, or an SQLAlchemy AsyncSession or '
                                  'AsyncConnection, not %s' % type(other_sess).__name__)

    async def run(self, query: str, args: Sequence[Any] = ()) -> List[Row]:
        """Runs `query` in the caller's current transaction; its rows."""
        if self._sa_session is not None:
            self._sa, self._sa_session = await self._sa_session.connection(), None
        if self._sa is not None:
            try:
                result = await self._sa.exec_driver_sql(query, tuple(args))
                return [tuple(row) for row in result.fetchall()] if result.returns_rows else []
            except Exception as e:
                orig = sqlalchemy_cause(e)
                if orig is None:
                    raise
                raise wrap_error(orig) from e
        cur = self._cursor if self._cursor is not None else self._conn.cursor()
        try:
            await cur.execute(query, tuple(args) if args else None)
            return await cur.fetchall() if cur.description is not None else []
        except psycopg.Error as e:
            raise wrap_error(e, self._conn) from e

    def usable(self) -> bool:
        """False when the caller's transaction is known to be aborted."""
        conn = self._conn
        if conn is None:
            sync = getattr(getattr(self._sa, 'sync_connection', None), 'connection', None)
            conn = getattr(getattr(sync, 'dbapi_connection', None), 'driver_connection', None)
        if not isinstance(conn, psycopg.AsyncConnection):
            return True
        return not conn.closed and conn.info.transaction_status != TransactionStatus.INERROR

    def autocommit(self) -> bool:
        return self._conn is not None and bool(self._conn.autocommit)
