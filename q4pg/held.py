"""The consumer's transaction around the messages a dequeue removed: what
`with QueueManager.dequeue()`, `dequeue_message()` and `dequeue_many()` return.

One class, not nested generator context managers: the success path (BEGIN and
q4pg_dequeue in one round trip, then COMMIT; for a batch, BEGIN and q4pg_take,
then q4pg_done_many and COMMIT) is the client's hottest, and each
@contextmanager level cost it microseconds of Python (measured: `make bench`,
Python dequeue).  In the caller's session (`other_sess`) and on a database
still at q4pg 1.0 it hands over to taking() for those cases.

The functions below are the rest of the sync client's dequeue lifecycle (what
to take, how to end it, the caller's session, 1.0); core.ending() decides.
"""

import contextlib
import logging
from typing import TYPE_CHECKING, Any, ContextManager, Iterator, List, Optional, Tuple

from . import db
from .core import Ending, Message, ending, error_text
from .errors import ExtensionNotInstalled, Q4pgError, UndecodableMessage
from .listener import record_failures

if TYPE_CHECKING:
    from . import v10
    from .client import QueueManager

__all__ = ['Held', 'taking']

log = logging.getLogger('q4pg')


class Held:
    """Context manager over the Messages one dequeue removed (at most `n`),
    given to the block as `shape` says: 'many' the list, 'message' the first
    Message or None, 'data' its data or None.

    Ended normally: committed (the messages are gone: removed by q4pg_dequeue,
    or for a batch taken by q4pg_take and removed by q4pg_done_many).  Ended by
    an Exception (a decoding error included): given back with a failure counted
    against each (q4pg_fail; a message that cannot be decoded fails alone, the
    others are given back uncounted), committed.  Ended by another BaseException
    (KeyboardInterrupt...): rolled back, uncounted.  In the caller's session,
    nothing is committed or rolled back: the caller does that (a ROLLBACK
    gives the messages back uncounted).
    """

    __slots__ = ('_manager', '_tag', '_n', '_raw', '_other', '_shape', '_transaction',
                 '_messages', '_inner')

    def __init__(self, manager: 'QueueManager', tag: str, n: int, raw: bool, other_sess: Any,
                 shape: str) -> None:
        self._manager = manager
        self._tag = tag
        self._n = n
        self._raw = raw
        self._other = other_sess
        self._shape = shape
        self._transaction: Optional[db.Transaction] = None
        self._messages: List[Message] = []
        self._inner: Optional[ContextManager[List[Message]]] = None

    def __enter__(self) -> Any:
        m = self._manager
        old = None if self._other is not None else m._server.old()
        if self._other is not None or old is not None:
            return self._hand_over(old)
        try:
            transaction = m._db.begin(*take(m, self._tag, self._n))
        except ExtensionNotInstalled as e:      # nothing was removed
            old = m._server.after_missing(e)
            if old is None:
                raise
            return self._hand_over(old)          # the database has q4pg 1.0
        try:
            self._messages = take_decoded(m, transaction.rows, self._raw, transaction.run)
        except UndecodableMessage:
            transaction.commit()
            raise
        except BaseException:
            transaction.rollback()
            raise
        self._transaction = transaction
        return self._shaped(self._messages)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._inner is not None:
            return bool(self._inner.__exit__(exc_type, exc, tb))
        transaction, self._transaction = self._transaction, None
        if transaction is None:
            return False
        end = ending(exc_type)
        if end is Ending.DONE:
            transaction.commit(*done(self._manager, self._n, self._messages))
        elif end is Ending.FAIL:
            if self._messages:
                count_failure(self._manager, transaction.run, [msg.id for msg in self._messages],
                                             error_text(exc))
            transaction.commit()
        else:
            transaction.rollback()
        return False

    def _hand_over(self, old: Any) -> Any:
        """The caller's session, or a 1.0 database (`old`, a v10.V10): the
        manager's generator does it."""
        self._inner = taking(self._manager, self._tag, self._n, self._raw, self._other, old)
        return self._shaped(self._inner.__enter__())

    def _shaped(self, messages: List[Message]) -> Any:
        if self._shape == 'many':
            return messages
        first = messages[0] if messages else None
        if self._shape == 'message' or first is None:
            return first
        return first.data


def take(q: 'QueueManager', tag: str, n: int) -> Tuple[str, Tuple[Any, ...]]:
    """(query, args) that gets up to `n` due messages of `tag` for a
    transaction: one is removed (q4pg_dequeue: the success path's only
    call), a batch taken (q4pg_take; done() removes it)."""
    if n == 1:
        return db.DEQUEUE, (q._queue, tag)
    return db.TAKE, (q._queue, tag, n)


def done(q: 'QueueManager', n: int,
         messages: List[Message]) -> Tuple[Optional[str], Tuple[Any, ...]]:
    """The statement that ends _take's messages well (None: nothing to send)."""
    if n == 1 or not messages:
        return None, ()
    return db.DONE, (q._queue, [m.id for m in messages])


def take_decoded(q: 'QueueManager', rows: List[db.Row], raw: bool, run: Any) -> List[Message]:
    """The Messages of take()'s `rows`.  A message that cannot be decoded is
    given back with a failure counted in the transaction of `run`, and the
    decoding error raised; the others of its batch (taken, not removed)
    go back uncounted at commit."""
    try:
        return decoded(q, rows, raw)
    except UndecodableMessage as e:
        count_failure(q, run, [e.id], error_text(e))
        raise


@contextlib.contextmanager
def held_in(q: 'QueueManager', session: db.CallerSession, tag: str, n: int,
            raw: bool) -> Iterator[List[Message]]:
    """What held.Held does, in the caller's session.  An autocommit psycopg2
    connection has no transaction of the caller's: one of its own runs on it,
    BEGIN to COMMIT."""
    own = session.autocommit()
    if own:
        session.run('BEGIN')
    try:
        rows = session.run(*take(q, tag, n))
        messages = take_decoded(q, rows, raw, session.run)
        try:
            yield messages
        except Exception as e:
            if messages:
                count_failure(q, session.run, [m.id for m in messages],
                              error_text(e), session)
            raise
        finish, args = done(q, n, messages)
        if finish is not None:
            session.run(finish, args)
    except Exception:
        if own:
            session.run('COMMIT' if session.usable() else 'ROLLBACK')
        raise
    except BaseException:
        if own:
            session.run('ROLLBACK')
        raise
    if own:
        session.run('COMMIT')


def decoded(q: 'QueueManager', rows: List[db.Row], raw: bool) -> List[Message]:
    return [q._message(row, raw) for row in rows]


def count_failure(q: 'QueueManager', run: Any, ids: List[Any], error: str,
                  session: Optional[db.CallerSession] = None) -> None:
    """Counts a failure against `ids` (q4pg_fail) in the transaction that took them.
    An error doing so is logged (WARNING), never raised: the caller raises
    the failure itself.  An aborted caller's transaction is left alone."""
    if session is not None and not session.usable():
        return
    try:
        record_failures(run, q._queue, ids, error, q._max_attempts)
    except Q4pgError as e:
        log.warning('q4pg: could not count a failure against message(s) %s of queue %s: %s',
                    ', '.join(str(i) for i in ids), q._queue, e)


@contextlib.contextmanager
def taking(q: 'QueueManager', tag: str, n: int, raw: bool, other_sess: Any,
           old: Optional['v10.V10']) -> Iterator[List[Message]]:
    """Held's other cases: in the caller's session (held_in), or, on a
    database that has q4pg 1.0 (`old`, or the server says so), 1.0's
    dequeue (v10.py)."""
    with contextlib.ExitStack() as stack:
        if old is None:
            old = q._server.old(other_sess)
        if old is None:
            try:
                messages = stack.enter_context(held_in(
                    q, db.Database.caller(other_sess), tag, n, raw))
            except ExtensionNotInstalled as e:    # q4pg_dequeue is missing: nothing taken
                old = q._server.after_missing(e, other_sess)
                if old is None:
                    raise
        if old is not None:
            messages = stack.enter_context(old.held(
                q._queue, tag, n, other_sess, q._max_attempts,
                lambda rows: decoded(q, rows, raw)))
        yield messages
