"""The consumer's transaction around the messages a dequeue removed: what
`with QueueManager.dequeue()`, `dequeue_message()` and `dequeue_many()` return.

One class, not nested generator context managers: the success path (BEGIN and
q4pg_dequeue in one round trip, then COMMIT; for a batch, BEGIN and q4pg_take,
then q4pg_done_many and COMMIT) is the client's hottest, and each
@contextmanager level cost it microseconds of Python (measured: `make bench`,
Python dequeue).  In the caller's session (`other_sess`) and on a database
still at q4pg 1.0 it hands over to the manager's generator for those cases.
"""

from typing import TYPE_CHECKING, Any, ContextManager, List, Optional

from . import db
from .errors import ExtensionNotInstalled, UndecodableMessage
from .core import Ending, ending, error_text

if TYPE_CHECKING:
    from .client import Message, QueueManager

__all__ = ['Held']


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
        self._messages: List['Message'] = []
        self._inner: Optional[ContextManager[List['Message']]] = None

    def __enter__(self) -> Any:
        m = self._manager
        old = None if self._other is not None else m._server.old()
        if self._other is not None or old is not None:
            return self._hand_over(old)
        try:
            transaction = m._db.begin(*m._take(self._tag, self._n))
        except ExtensionNotInstalled as e:      # nothing was removed
            old = m._server.after_missing(e)
            if old is None:
                raise
            return self._hand_over(old)          # the database has q4pg 1.0
        try:
            self._messages = m._take_decoded(transaction.rows, self._raw, transaction.run)
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
            transaction.commit(*self._manager._done(self._n, self._messages))
        elif end is Ending.FAIL:
            if self._messages:
                self._manager._count_failure(transaction.run, [msg.id for msg in self._messages],
                                             error_text(exc))
            transaction.commit()
        else:
            transaction.rollback()
        return False

    def _hand_over(self, old: Any) -> Any:
        """The caller's session, or a 1.0 database (`old`, a v10.V10): the
        manager's generator does it."""
        self._inner = self._manager._taking(self._tag, self._n, self._raw, self._other, old)
        return self._shaped(self._inner.__enter__())

    def _shaped(self, messages: List['Message']) -> Any:
        if self._shape == 'many':
            return messages
        first = messages[0] if messages else None
        if self._shape == 'message' or first is None:
            return first
        return first.data
