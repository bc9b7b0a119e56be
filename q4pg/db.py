"""The client's database layer: connections, a pool, transactions, and the SQL text
of the calls the client makes.

Round trips: pooled connections are in autocommit mode.  A statement that
needs no transaction of its own (enqueue, count...) is one round trip; a
dequeue sends BEGIN with its statement ("BEGIN; SELECT ...") and then COMMIT or
ROLLBACK: two.  The pool knows each connection's transaction state (libpq's)
and never lends one that is in a transaction or broken.

The layers above (listener.py, client.py) use only what this module offers:

    Database          connections to one database, pooled: run(), begin(), run_in(),
                      listen() (on listen_dsn when given), close()
    Transaction       a transaction left open by begin(): its rows, commit(), rollback()
    ListenConnection  the dedicated autocommit connection a listener LISTENs on
                      (db_sessions.py, with CallerSession and DedicatedConnection)
    transaction()     a connection in one transaction (q4pg install, install.py)
    the SQL constants the queries (statements.py's, re-exported); the queue is
                      always their first parameter

Every error comes out as a q4pg error (errors.wrap_error).
"""

import contextlib
import logging
import math
import select
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import psycopg2
import psycopg2.extensions

from . import door
from .errors import (ConnectionLost, InvalidDsn, Q4pgError, one_line, outcome_unknown,
                     wrap_error)
# The SQL text, shared with the asyncio client: db.ENQUEUE... as before.
from .statements import *  # noqa: F401,F403
from .statements import CONNECT

__all__ = ['Database', 'Transaction', 'ListenConnection', 'CallerSession', 'DedicatedConnection',
           'Row', 'check_dsn', 'retryable', 'NOT_A_SESSION', 'transaction']

log = logging.getLogger('q4pg')

Row = Tuple[Any, ...]

class _Connection(psycopg2.extensions.connection):
    """A psycopg2 connection that remembers what CONNECT said: q4pg_1_0 (None: not
    asked), and what it knows of the direct door (q4pg_doors, door.py; None: no door)."""
    q4pg_1_0: Optional[bool] = None
    q4pg_doors: Optional[door.Doors] = None


def check_dsn(dsn: str, what: str = 'connection string') -> None:
    """Raises InvalidDsn ('bad <what>: ...') unless libpq can parse `dsn` (nothing
    is sent anywhere)."""
    try:
        psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as e:
        raise InvalidDsn('q4pg: bad %s: %s' % (what, one_line(e))) from e


def retryable(error: Q4pgError) -> bool:
    """True for a lost connection, or another psycopg2 OperationalError (deadlock,
    cancel...): an error after which the same call may well work."""
    return isinstance(error, ConnectionLost) or isinstance(
        error.__cause__, (psycopg2.OperationalError, psycopg2.InterfaceError))


def _connect(dsn: str, find_q4pg: bool = True, **kwargs: Any) -> Any:
    """A new autocommit connection; ConnectionLost when the database cannot be reached.

    Its application_name is q4pg unless the DSN (or PGAPPNAME) gives one.
    `kwargs` go to psycopg2.connect (async_=True: an asynchronous connection,
    still connecting).  find_q4pg: q4pg's schema goes first on its search_path
    when it is not on it, and its q4pg_1_0 says whether q4pg there is 1.0
    (CONNECT; not on an asynchronous connection).
    """
    try:
        if 'fallback_application_name' not in psycopg2.extensions.parse_dsn(dsn):
            kwargs['fallback_application_name'] = 'q4pg'
        conn = psycopg2.connect(dsn, connection_factory=_Connection, **kwargs)
        if not kwargs.get('async_'):
            conn.autocommit = True
            if find_q4pg:
                row = _execute(conn, CONNECT, ())[0]
                conn.q4pg_1_0 = row[1]
                conn.q4pg_doors = door.session(row, conn.info.backend_pid)
        return conn
    except psycopg2.Error as e:
        raise wrap_error(e) from e


@contextlib.contextmanager
def transaction(dsn: str) -> Iterator[Callable[..., List[Row]]]:
    """A new connection in one transaction, for q4pg's installer: yields
    run(query, args=None) -> rows (query: text or a psycopg2.sql object; args
    None: the query text goes as it is, % signs and all); commits when the block ends, rolls back when it raises.
    Errors come out as q4pg errors."""
    check_dsn(dsn)
    conn = _connect(dsn, find_q4pg=False)
    conn.autocommit = False

    def run(query: Any, args: Any = None) -> List[Row]:
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description is not None else []
        except psycopg2.Error as e:
            raise wrap_error(e, conn) from e

    try:
        yield run
        try:
            conn.commit()
        except psycopg2.Error as e:
            raise wrap_error(e, conn) from e
    finally:
        conn.close()          # without a commit: rolled back


def ready(objects: Sequence[Any], seconds: Optional[float], write: bool = False) -> List[int]:
    """Waits until one of `objects` (file descriptors, or objects with fileno()) is
    readable (writable with `write`), or `seconds` pass (None: no limit); the
    descriptors that are.  poll(), not select(): select() refuses descriptors
    of 1024 and more, which a process holding hundreds of listeners has."""
    if not hasattr(select, 'poll'):                    # Windows
        found = select.select([] if write else objects, objects if write else [], [], seconds)
        return [o if isinstance(o, int) else o.fileno() for o in found[1 if write else 0]]
    poller = select.poll()
    for o in objects:
        poller.register(o, select.POLLOUT if write else select.POLLIN)
    timeout = None if seconds is None else max(0, int(math.ceil(seconds * 1000)))
    return [fd for fd, _ in poller.poll(timeout)]


def _idle(conn: Any) -> bool:
    """True when `conn` is open and outside any transaction (as libpq last heard)."""
    return (not conn.closed and conn.info.transaction_status
            == psycopg2.extensions.TRANSACTION_STATUS_IDLE)


def _alive(conn: Any) -> bool:
    """False when an idle pooled connection is broken or about to be.

    Nothing arrives on an idle connection that does not LISTEN but the end of
    the session: the error that ends it (a terminated backend, a shutdown) or
    the end of the stream.  So a connection with anything to read is dropped,
    without a round trip.
    """
    try:
        return _idle(conn) and not ready([conn], 0)
    except (OSError, ValueError):
        return False


def _execute(conn: Any, query: str, args: Sequence[Any]) -> List[Row]:
    with conn.cursor() as cur:
        cur.execute(query, tuple(args))
        return cur.fetchall() if cur.description is not None else []


def _run(conn: Any, query: str, args: Sequence[Any], begin: bool = False,
         then: str = '') -> List[Row]:
    """Runs `query` (a statements.py text) on one of our connections, after BEGIN
    when `begin` (in the same round trip), followed by `then` (e.g. '; COMMIT'):
    through the direct door when the connection has it (door.plan), else as it is."""
    doors = conn.q4pg_doors
    if doors is None or not doors.enabled:
        return _execute(conn, ('BEGIN; ' if begin else '') + query + then, args)
    steps = door.plan(doors, query, args, begin, then)
    sent = next(steps)
    try:
        while True:
            try:
                got: Any = _execute(conn, *sent)
            except psycopg2.Error as e:
                got = door.Failed(e.pgcode, e.diag.message_primary or '', _idle(conn), e)
            sent = steps.send(got)
    except StopIteration as stop:
        return stop.value


class _Pool:
    """At most `size` connections to `dsn`, reused; get() blocks while all are busy."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._cond = threading.Condition()
        self._idle: List[Any] = []
        self._open = 0  # connections out there: idle ones, those in use, those connecting
        self._lent: Dict[int, int] = {}  # id() of a connection in use -> its thread's ident
        self._closed = False
        self.q4pg_1_0: Optional[bool] = None  # what the newest connection's CONNECT said

    def get(self) -> Tuple[Any, bool]:
        """A connection outside any transaction, and whether it is new (a reused
        one was alive a moment ago, but may still have died since)."""
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        raise Q4pgError('q4pg: the QueueManager is closed')
                    if self._idle:
                        conn = self._idle.pop()
                        break
                    if self._open < self._size:
                        self._open += 1
                        conn = None
                        break
                    self._refuse_to_wait_for_myself()
                    self._cond.wait()
            if conn is None:
                try:
                    conn = _connect(self._dsn)
                    self.q4pg_1_0 = conn.q4pg_1_0
                    return self._lend(conn), True
                except BaseException:
                    self._forget(None)
                    raise
            if _alive(conn):
                return self._lend(conn), False
            log.info('q4pg: dropped a pooled connection that died idle')
            self._forget(conn)

    def _refuse_to_wait_for_myself(self) -> None:
        """Raises when every connection is lent to the calling thread: waiting
        for one would wait forever (a call inside a listen() loop or an open
        dequeue, with max_connections=1).  Called holding the lock."""
        me = threading.get_ident()
        if len(self._lent) == self._size and all(t == me for t in self._lent.values()):
            raise Q4pgError(
                'q4pg: this thread holds all %d connection(s) of the QueueManager (a message '
                'of an open dequeue or of a listen() loop), so this call would wait forever: '
                'finish that first, raise max_connections, or use another QueueManager'
                % self._size)

    def _lend(self, conn: Any) -> Any:
        with self._cond:
            self._lent[id(conn)] = threading.get_ident()
        return conn

    def put(self, conn: Any) -> None:
        """Takes a connection back: rolls back a transaction it left open (in
        progress or failed); closes one that is broken or busy."""
        if not conn.closed and conn.info.transaction_status in (
                psycopg2.extensions.TRANSACTION_STATUS_INTRANS,
                psycopg2.extensions.TRANSACTION_STATUS_INERROR):
            with contextlib.suppress(psycopg2.Error):
                _execute(conn, 'ROLLBACK', ())
        with self._cond:
            self._lent.pop(id(conn), None)
        if _idle(conn):
            with self._cond:
                if not self._closed:
                    self._idle.append(conn)
                    self._cond.notify()
                    return
        self._forget(conn)

    def _forget(self, conn: Any) -> None:
        """Closes `conn` (if any) and frees its place in the pool."""
        with self._cond:
            self._open -= 1
            self._cond.notify()
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Closes the idle connections now, and the others when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()


class Transaction:
    """A transaction open on a pooled connection (Database.begin): the rows of
    its statement; commit() or rollback() ends it and gives the connection back.
    Ending it again does nothing."""

    def __init__(self, conn: Any, rows: List[Row], give_back: Callable[[Any], None]) -> None:
        self._conn = conn
        self.rows = rows
        self._give_back = give_back

    def run(self, query: str, args: Sequence[Any] = ()) -> List[Row]:
        """Runs `query` in the transaction, which stays open; its rows.  On an
        error the transaction is rolled back (and the connection given back)."""
        conn = self._conn
        if conn is None:
            raise Q4pgError('q4pg: the transaction has ended')
        try:
            return _run(conn, query, args)
        except (psycopg2.Error, ValueError) as e:
            self.rollback()
            raise wrap_error(e, conn) from e

    def commit(self, query: Optional[str] = None, args: Sequence[Any] = ()) -> None:
        """Commits (after running `query`, if given, in the same round trip);
        ConnectionLost (outcome unknown) when the connection breaks meanwhile."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if query is None:
                _execute(conn, 'COMMIT', ())
            else:
                _run(conn, query, args, then='; COMMIT')
        except psycopg2.Error as e:
            raise outcome_unknown(wrap_error(e, conn), 'COMMIT') from e
        finally:
            self._give_back(conn)

    def rollback(self) -> None:
        """Rolls back (the pool does; never raises: a connection that cannot is closed)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._give_back(conn)


class Database:
    """Connections to one database: a pool of at most `max_connections`, shared
    by threads, and dedicated LISTEN connections."""

    def __init__(self, dsn: str, max_connections: int, listen_dsn: Optional[str] = None) -> None:
        check_dsn(dsn)
        if listen_dsn is not None:
            check_dsn(listen_dsn, 'listen_dsn connection string')
        self.dsn = dsn
        self.listen_dsn = dsn if listen_dsn is None else listen_dsn
        self._pool = _Pool(dsn, max_connections)

    def begin(self, query: str, args: Sequence[Any]) -> Transaction:
        """Runs `query` in a new transaction on a pooled connection and leaves
        the transaction open; BEGIN travels with the statement."""
        conn, rows = self._execute(query, args, idempotent=True, begin=True)
        return Transaction(conn, rows, self._pool.put)

    def run(self, query: str, args: Sequence[Any] = (), *, idempotent: bool = True) -> List[Row]:
        """Runs `query` on its own (autocommit: one round trip); its rows.

        `idempotent=False` for a statement that must not run twice (enqueue,
        cancel): it is tried again only when it surely did not run.
        """
        conn, rows = self._execute(query, args, idempotent)
        self._pool.put(conn)
        return rows

    def _execute(self, query: str, args: Sequence[Any], idempotent: bool,
                 begin: bool = False) -> Tuple[Any, List[Row]]:
        """Runs `query` on a pooled connection (in a new transaction when `begin`):
        (the connection, still lent, its rows).

        A reused connection may have died since get() looked at it: then the
        statement goes again on another one, if it is idempotent or the
        server said it terminated the session (57P01, admin_shutdown: raised
        before a statement commits, never after).  Otherwise a lost
        connection leaves the outcome unknown, and the error says so.
        """
        while True:
            conn, new = self._pool.get()
            try:
                return conn, _run(conn, query, args, begin)
            except (psycopg2.Error, ValueError) as e:
                self._pool.put(conn)
                error = wrap_error(e, conn)
                if not isinstance(error, ConnectionLost):
                    raise error from e
                if not new and (idempotent or error.pgcode == '57P01'):
                    log.info('q4pg: dropped a pooled connection that died idle: %s', error)
                    continue
                if not idempotent and error.pgcode != '57P01':
                    error = outcome_unknown(error, 'the call')
                raise error from e
            except BaseException:          # KeyboardInterrupt...: don't lose the pool's slot
                self._pool.put(conn)
                raise

    @staticmethod
    def run_in(conn: Any, query: str, args: Sequence[Any] = ()) -> List[Row]:
        """Runs `query` on the caller's psycopg2 connection, in its current
        transaction, and does not commit; its rows."""
        try:
            return _execute(conn, query, args)
        except (psycopg2.Error, ValueError) as e:
            raise wrap_error(e, conn) from e

    @staticmethod
    def caller(other_sess: Any) -> 'CallerSession':
        """The caller's own session (other_sess) to run calls in."""
        return CallerSession(other_sess)

    def dedicated(self) -> 'DedicatedConnection':
        """A new autocommit connection of its own, outside the pool."""
        return DedicatedConnection(self.dsn)

    def listen(self, channel: str, own: Optional[Tuple[str, str]] = None) -> 'ListenConnection':
        """A new autocommit connection to listen_dsn that LISTENs on `channel`, or
        on its own channel for `own` (queue, tag) when the server has them."""
        return ListenConnection(self.listen_dsn, channel, own)

    def q4pg_1_0(self) -> bool:
        """Whether the database's q4pg is 1.0, as the newest pooled connection
        learnt when it connected (a new connection when there is none yet: the
        round trip the first call would have made)."""
        if self._pool.q4pg_1_0 is None:
            conn, _ = self._pool.get()
            self._pool.put(conn)
        return bool(self._pool.q4pg_1_0)

    def close(self) -> None:
        """Closes the pooled connections (those in use when they are given back)."""
        self._pool.close()


# The sessions that are not the pool's: db_sessions.py, re-exported (db.ListenConnection...).
from .db_sessions import (NOT_A_SESSION, SESSION_PROBE_TIMEOUT, CallerSession,  # noqa: E402,F401
                          DedicatedConnection, ListenConnection, _shared_session)
