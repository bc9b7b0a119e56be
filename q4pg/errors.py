"""q4pg's exceptions, and the mapping from the drivers' errors to them: one
mapping for psycopg2 (QueueManager) and psycopg 3 (AsyncQueueManager), which
raise the DB-API's classes (OperationalError...) with the same attributes.

Every error the public API raises is a Q4pgError.  An error the server sent
keeps its SQLSTATE in ``.pgcode`` and its message in ``.pgerror``; ``str(e)``
is that message, plus the server's HINT when it gave one.
"""

from typing import Any, Optional, Set

__all__ = ['Q4pgError', 'ExtensionNotInstalled', 'QueueNotFound', 'QueueExists',
           'InvalidMessage', 'InvalidArgument', 'PermissionDenied', 'ConnectionLost',
           'InvalidDsn', 'UndecodableMessage', 'LeaseLost', 'UpgradeNeeded', 'wrap_error',
           'one_line', 'outcome_unknown', 'sqlalchemy_cause']


class Q4pgError(Exception):
    """Base class of every q4pg error."""

    def __init__(self, message: str, pgcode: Optional[str] = None,
                 pgerror: Optional[str] = None) -> None:
        super().__init__(message)
        self.pgcode = pgcode
        self.pgerror = pgerror


class ExtensionNotInstalled(Q4pgError):
    """The database has no q4pg functions (neither q4pg install nor CREATE EXTENSION
    q4pg ran), or not this client's (q4pg is older: q4pg upgrade, or ALTER EXTENSION
    q4pg UPDATE)."""


class UpgradeNeeded(ExtensionNotInstalled):
    """The database has an older q4pg (1.0) than this feature needs (1.1): the
    client serves 1.0's features on it, and raises this for the others.  Run
    q4pg upgrade (or ALTER EXTENSION q4pg UPDATE)."""


class QueueNotFound(Q4pgError):
    """No such table, or a table that is no q4pg queue."""


class QueueExists(Q4pgError):
    """A queue of that name exists with other settings, or a table that is no queue."""


class InvalidMessage(Q4pgError, ValueError):
    """The message was refused: bad JSON, too long, null, bad encoding, NUL character.

    `index`: in enqueue_many, the position of the first item refused (None
    when not known: in the caller's transaction, which the error aborted).
    """

    index: Optional[int] = None


class UndecodableMessage(InvalidMessage):
    """A stored message the client cannot decode (JSON nested deeper than Python
    reads, or a data_type that is not the queue's).  `id`, `tag` and `raw`
    (the stored text) say which; it was given back, so take it with raw=True
    or cancel(id)."""

    def __init__(self, message: str, id: Optional[int] = None, tag: Optional[str] = None,
                 raw: Optional[str] = None) -> None:
        super().__init__(message)
        self.id = id
        self.tag = tag
        self.raw = raw


class LeaseLost(Q4pgError):
    """A lease ended before its work did: its message was leased again by another
    consumer (or cancelled, or set aside), so the work may be done twice.  `id`
    says which message."""

    def __init__(self, message: str, id: Optional[int] = None) -> None:
        super().__init__(message)
        self.id = id


class InvalidArgument(Q4pgError, ValueError):
    """A bad argument: data type, data length, limit, name or schema."""


class PermissionDenied(Q4pgError):
    """The database role may not do this."""


class ConnectionLost(Q4pgError):
    """The database cannot be reached, or the connection broke."""


class InvalidDsn(ConnectionLost):
    """The connection string does not parse (raised by QueueManager() itself)."""


# SQLSTATE -> exception class.  Beyond the spec's list: 22P05 (a \u0000 in
# jsonb) and 23514 (the length CHECK constraint) are message problems too,
# 22003 (a number out of range: an id, a limit) and 2201W (a negative LIMIT)
# are bad arguments.
_BY_SQLSTATE = {
    '42P01': QueueNotFound,
    '42P07': QueueExists,
    '22P02': InvalidMessage,
    '22001': InvalidMessage,
    '22004': InvalidMessage,
    '23502': InvalidMessage,
    '22021': InvalidMessage,
    '22P05': InvalidMessage,
    '23514': InvalidMessage,
    '22023': InvalidArgument,
    '22003': InvalidArgument,
    '2201W': InvalidArgument,
    '42602': InvalidArgument,
    '42622': InvalidArgument,
    '3F000': InvalidArgument,
    '42501': PermissionDenied,
    '22007': InvalidArgument,     # a due time that is no timestamp
    '22008': InvalidArgument,     # a due time out of range
}

# SQLSTATEs that mean the session is gone (admin_shutdown, crash_shutdown,
# cannot_connect_now), besides class 08 (connection exception).
_SESSION_GONE = ('57P01', '57P02', '57P03')


def one_line(text: Any) -> str:
    """str(text) on one line: its lines stripped and joined by spaces."""
    return ' '.join(part.strip() for part in str(text).splitlines() if part.strip())


def _kinds(exc: BaseException) -> Set[str]:
    """The names of the classes of `exc`: the DB-API's (OperationalError...) are
    the same in both drivers."""
    return {cls.__name__ for cls in type(exc).__mro__}


def wrap_error(exc: BaseException, conn: Any = None) -> Q4pgError:
    """The Q4pgError for a driver's error (psycopg2 or psycopg 3), or for the value
    either refuses before sending anything (a NUL character in a string).

    `conn` is the connection the error happened on, if any: when it is closed
    now, the error is a ConnectionLost whatever its SQLSTATE.
    """
    if isinstance(exc, Q4pgError):
        return exc
    kinds = _kinds(exc)
    pgcode = getattr(exc, 'pgcode', None) or getattr(exc, 'sqlstate', None)  # psycopg2, 3
    if ((isinstance(exc, ValueError) and 'Error' not in kinds)
            or ('DataError' in kinds and pgcode is None)):
        # psycopg2 (a ValueError) and psycopg 3 (a DataError with no SQLSTATE)
        # refuse strings with NUL characters before sending anything.
        return InvalidMessage('q4pg: %s' % one_line(str(exc)))
    diag = getattr(exc, 'diag', None)
    primary = diag.message_primary if diag is not None else None
    hint = diag.message_hint if diag is not None else None
    message = one_line(primary or str(exc)) or type(exc).__name__
    if hint:
        message = '%s (HINT: %s)' % (message, one_line(hint))

    cls = _BY_SQLSTATE.get(pgcode or '')
    if pgcode == '42883' and primary and 'q4pg_' in primary:
        cls = ExtensionNotInstalled
        message = ('%s: q4pg is not installed in this database (run q4pg install, or '
                   'CREATE EXTENSION q4pg), is older than this client (run q4pg upgrade, or '
                   'ALTER EXTENSION q4pg UPDATE), or its schema is not in search_path'
                   % one_line(primary))
    elif cls is None:
        broken = conn is not None and conn.closed
        session_gone = pgcode is None or pgcode.startswith('08') or pgcode in _SESSION_GONE
        if broken or 'InterfaceError' in kinds or (
                'OperationalError' in kinds and session_gone):
            cls = ConnectionLost
        else:
            cls = Q4pgError
    return cls(message, pgcode=pgcode, pgerror=primary)


def outcome_unknown(error: Q4pgError, during: str) -> Q4pgError:
    """A lost connection `during` a statement that must not run twice (COMMIT,
    an enqueue...) says that its outcome is unknown; other errors stay as they are."""
    if not isinstance(error, ConnectionLost):
        return error
    return ConnectionLost('q4pg: connection lost during %s, the outcome is unknown: %s'
                          % (during, error), pgcode=error.pgcode, pgerror=error.pgerror)


def sqlalchemy_cause(exc: BaseException) -> Any:
    """The driver's error an SQLAlchemy error wraps (its .orig), or None."""
    orig = getattr(exc, 'orig', None)
    driver = type(orig).__module__.split('.')[0]
    return orig if driver in ('psycopg2', 'psycopg') and isinstance(orig, Exception) else None
