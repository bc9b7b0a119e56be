"""The psycopg2 connections outside db.py's pool: the listener's LISTEN
connection (with the check that a pooler does not share its session), the
caller's own session (other_sess), the heartbeat's dedicated connection.
db.py re-exports them (db.ListenConnection...), and gives them out through
Database.listen(), Database.caller() and Database.dedicated().
"""

import contextlib
import logging
import time
from typing import Any, List, Optional, Sequence, Tuple

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from . import db  # db._shared_session: looked up at call time (tests replace it)
from .db import Row, _connect, _execute, _run
from .db import ready as fd_ready
from .errors import (ConnectionLost, InvalidArgument, Q4pgError, one_line, sqlalchemy_cause,
                     wrap_error)

__all__ = ['NOT_A_SESSION', 'SESSION_PROBE_TIMEOUT', 'ListenConnection', 'CallerSession',
           'DedicatedConnection']

log = logging.getLogger('q4pg')


# Raised when the listener's connection turns out to share its server session.
NOT_A_SESSION = (
    "q4pg: the listener's connection (listen_dsn, else dsn) does not keep a server session "
    "of its own: it goes through a pooler in transaction or statement mode (PgBouncer's "
    "pool_mode = transaction), where LISTEN and q4pg_register_idle cannot work (the "
    "notifications would reach other clients). Give QueueManager a listen_dsn that reaches "
    "PostgreSQL directly or through a session-mode pool (docs/operations.md: Deploying behind PgBouncer)")
SESSION_PROBE_TIMEOUT = 2.0  # seconds the pooler check waits for a second connection


def _shared_session(dsn: str, pid: int) -> bool:
    """True when a new connection to `dsn` lands in server session `pid`, which
    another connection holds: the pooler shares sessions.  False when it lands
    elsewhere, or cannot tell: no answer within SESSION_PROBE_TIMEOUT (a full
    session pool makes it wait), or no second connection."""
    deadline = time.monotonic() + SESSION_PROBE_TIMEOUT

    def ready(conn: Any) -> bool:
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if state == psycopg2.extensions.POLL_READ:
                fd_ready([conn], left)
            else:
                fd_ready([conn], left, write=True)

    try:
        probe = _connect(dsn, async_=True)
    except ConnectionLost as e:
        log.info('q4pg: cannot tell whether the pooler shares LISTEN sessions: %s', e)
        return False
    try:
        if not ready(probe):
            return False
        cur = probe.cursor()
        cur.execute('SELECT pg_catalog.pg_backend_pid()')
        return ready(probe) and cur.fetchone()[0] == pid
    except psycopg2.Error as e:
        log.info('q4pg: cannot tell whether the pooler shares LISTEN sessions: %s', one_line(e))
        return False
    finally:
        probe.close()


class ListenConnection:
    """A connection of its own, in autocommit mode (it never holds a transaction),
    LISTENing on one channel, in one server session (`server_pid`).

    LISTEN and the listener's registration belong to a server session.  A
    pooler in transaction mode gives each transaction of a client any server
    session, shared with other clients: the notifications would go to them.
    So when a pooler stands between us and the server (libpq's backend pid,
    which a pooler makes up, is not the server's), a second connection asks
    for the server's pid: the same session as ours means the pooler shares
    it, and we raise Q4pgError(NOT_A_SESSION).  The registration calls (call())
    run only in `server_pid`, and raise the same when they land elsewhere.
    """

    def __init__(self, dsn: str, channel: str, own: Optional[Tuple[str, str]] = None) -> None:
        self.channel = channel
        self.own = False    # LISTENs on its own channel (`own`: the queue and tag; q4pg 1.2)
        conn = _connect(dsn)
        try:
            if own is not None:
                try:
                    self.channel = _execute(conn, db.OWN_CHANNEL, own)[0][0]
                    self.own = True
                except psycopg2.errors.UndefinedFunction:
                    pass        # q4pg 1.0 or 1.1: the shared channel
            channel = self.channel
            with conn.cursor() as cur:
                cur.execute(sql.SQL('LISTEN {}; SELECT pg_catalog.pg_backend_pid()').format(
                    sql.Identifier(channel)))
                self.server_pid = cur.fetchone()[0]
            if self.server_pid != conn.info.backend_pid and db._shared_session(dsn, self.server_pid):
                with contextlib.suppress(psycopg2.Error), conn.cursor() as cur:
                    cur.execute(sql.SQL('UNLISTEN {}').format(sql.Identifier(channel)))
                raise Q4pgError(NOT_A_SESSION)
        except psycopg2.Error as e:
            conn.close()
            raise wrap_error(e, conn) from e
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def call(self, query: str, args: Sequence[Any]) -> Any:
        """Runs a one-value query written for it (REGISTER_IDLE...: its last parameter
        is the server pid it must run in) on this connection; its value."""
        return self.row(query, args)[0]

    def row(self, query: str, args: Sequence[Any]) -> Row:
        """Runs a one-row query written for it (its last parameter is the server pid
        it must run in) on this connection; its row."""
        try:
            rows = _execute(self._conn, query, tuple(args) + (self.server_pid,))
        except psycopg2.Error as e:
            raise wrap_error(e, self._conn) from e
        if not rows:
            raise Q4pgError(NOT_A_SESSION)
        return rows[0]

    def wait(self, seconds: float, wake_fd: int) -> int:
        """Sleeps until a notification arrives, `wake_fd` is readable or `seconds`
        pass; returns the number of notifications, which it forgets.

        A notification read earlier is still in conn.notifies, so it is counted
        before waiting.  A notification is only a hint: the caller queries again.
        """
        conn = self._conn
        try:
            conn.poll()
            if not conn.notifies:
                fd_ready([conn, wake_fd], seconds)
                conn.poll()
        except psycopg2.Error as e:
            raise wrap_error(e, conn) from e
        if conn.closed:
            raise ConnectionLost('q4pg: the LISTEN connection is closed')
        count = len(conn.notifies)
        del conn.notifies[:]
        return count

    def close(self) -> None:
        with contextlib.suppress(psycopg2.Error):
            self._conn.close()


class CallerSession:
    """The caller's own session, given as other_sess (or conn): a psycopg2
    connection or cursor, or an SQLAlchemy Session or Connection.  Calls run in
    its current transaction (SQLAlchemy's begins one if none is open) and are
    never committed or rolled back here: the caller does that."""

    def __init__(self, other_sess: Any) -> None:
        if isinstance(other_sess, psycopg2.extensions.connection):
            self._conn, self._cursor, self._sa = other_sess, None, None
        elif isinstance(other_sess, psycopg2.extensions.cursor):
            self._conn, self._cursor, self._sa = other_sess.connection, other_sess, None
        elif callable(getattr(other_sess, 'exec_driver_sql', None)):   # SQLAlchemy Connection
            self._conn, self._cursor, self._sa = None, None, other_sess
        elif (callable(getattr(other_sess, 'connection', None))
              and callable(getattr(other_sess, 'execute', None))):      # SQLAlchemy Session
            self._conn, self._cursor, self._sa = None, None, other_sess.connection()
        else:
            raise InvalidArgument('q4pg: other_sess must be a psycopg2 connection or cursor, or '
                                 'an SQLAlchemy Session or Connection, not %s'
                                 % type(other_sess).__name__)

    def run(self, query: str, args: Sequence[Any] = ()) -> List[Row]:
        """Runs `query` in the caller's current transaction; its rows."""
        if self._sa is not None:
            try:
                result = self._sa.exec_driver_sql(query, tuple(args))
                return [tuple(row) for row in result.fetchall()] if result.returns_rows else []
            except Exception as e:
                orig = sqlalchemy_cause(e)
                if orig is None:
                    raise
                raise wrap_error(orig) from e
        try:
            if self._cursor is not None:
                self._cursor.execute(query, tuple(args))
                return self._cursor.fetchall() if self._cursor.description is not None else []
            return _execute(self._conn, query, args)
        except (psycopg2.Error, ValueError) as e:
            raise wrap_error(e, self._conn) from e

    def usable(self) -> bool:
        """False when the caller's transaction is known to be aborted (a failed
        statement): nothing more can run in it until the caller rolls back."""
        conn = self._conn
        if conn is None:
            fairy = getattr(self._sa, 'connection', None)
            conn = getattr(fairy, 'dbapi_connection', None) or getattr(fairy, 'connection', None)
        if not isinstance(conn, psycopg2.extensions.connection):
            return True
        return (not conn.closed and conn.info.transaction_status
                != psycopg2.extensions.TRANSACTION_STATUS_INERROR)

    def autocommit(self) -> bool:
        """True for a psycopg2 connection in autocommit mode (each statement its own
        transaction); SQLAlchemy sessions and connections always have one."""
        return self._conn is not None and bool(self._conn.autocommit)


class DedicatedConnection:
    """An autocommit connection of its own (the lease heartbeat's), outside the pool."""

    def __init__(self, dsn: str) -> None:
        self._conn = _connect(dsn)

    def run(self, query: str, args: Sequence[Any] = ()) -> List[Row]:
        try:
            return _run(self._conn, query, args)
        except (psycopg2.Error, ValueError) as e:
            raise wrap_error(e, self._conn) from e

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed)

    def close(self) -> None:
        with contextlib.suppress(psycopg2.Error):
            self._conn.close()
