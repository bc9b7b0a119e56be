"""q4pg 1.0 databases, served by this (1.1) client: the rolling upgrade.

Clients are upgraded first (pip install --upgrade), the database after (q4pg
upgrade, or ALTER EXTENSION q4pg UPDATE), with consumers running throughout.
So on a database where q4pg 1.0 is installed the client serves 1.0's features
as 1.0 did, and refuses what needs 1.1 with UpgradeNeeded, which names the
upgrade:

    enqueue, enqueue_many, cancel, channel, create_table (without max_attempts),
    drop_table, settings    the same calls in 1.0 and 1.1
    count, list, queues, stats
                            1.0's q4pg_count, q4pg_list... (1.0 has no scheduled,
                            leased, failed or dead messages, no max_attempts:
                            full=True says so)
    dequeue, dequeue_many, listen
                            1.0's q4pg_dequeue(_many): the message is deleted in
                            the transaction, which commits when the work ends
                            well; a failure rolls it back, uncounted, as 1.0 did
    the rest                UpgradeNeeded (schedules, leases, dead letters,
                            max_attempts, excepted_times_to_ignore...)

Server, one per QueueManager, knows which q4pg the database has.  The pool's
connections learn it when they connect, in the round trip that finds q4pg's
schema (db.CONNECT: q4pg's functions without 1.1's q4pg_lease), so a call
knows its way before it is sent, at no cost; in the caller's session
(other_sess) one query asks (VERSION: pg_extension.extversion, or q4pg
install's record), the first time.  A call that still finds a q4pg function
missing (ExtensionNotInstalled) makes it ask again, and on 1.0 the call goes
again the 1.0 way.  Once it knows the database has 1.0, it asks again after
RECHECK_SECONDS, and before refusing a 1.1 feature, so that a running
consumer takes up 1.1 after the upgrade without a restart.
"""

import contextlib
import logging
import re
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from . import db
from .errors import ExtensionNotInstalled, Q4pgError, UpgradeNeeded
from .listener import _STOP, Listener

__all__ = ['Server', 'V10', 'RECHECK_SECONDS']

log = logging.getLogger('q4pg')

RECHECK_SECONDS = 10.0  # how long "the database has q4pg 1.0" is believed

# The installed version: the extension's, or q4pg install's record (the name of
# its table, to read next).  Catalogs only: it runs in any session.
VERSION = ("SELECT e.extversion, NULL FROM pg_catalog.pg_extension AS e "
           "WHERE e.extname OPERATOR(pg_catalog.=) 'q4pg' "
           "UNION ALL SELECT NULL, pg_catalog.format('%%I.%%I', n.nspname, c.relname) "
           "FROM pg_catalog.pg_class AS c, pg_catalog.pg_namespace AS n "
           "WHERE c.relname OPERATOR(pg_catalog.=) '" + db.INSTALL_TABLE + "' "
           "AND c.relkind OPERATOR(pg_catalog.=) 'r' "
           "AND n.oid OPERATOR(pg_catalog.=) c.relnamespace LIMIT 1")

_UPGRADE = ('q4pg: %s: this needs q4pg 1.1, and this database has q4pg 1.0: upgrade it with '
            '`q4pg upgrade` (or ALTER EXTENSION q4pg UPDATE)')

# 1.0's own calls, written here: 1.0 is released and its SQL API frozen, while
# db.py's texts follow the current version.
_Q = '%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text'
DEQUEUE = 'SELECT id, tag, data, created_at FROM q4pg_dequeue(' + _Q + ')'
DEQUEUE_MANY = 'SELECT id, tag, data, created_at FROM q4pg_dequeue_many(' + _Q + ', %s::integer)'
COUNT = 'SELECT q4pg_count(' + _Q + ')'
LIST = 'SELECT id, tag, data, created_at FROM q4pg_list(' + _Q + ', %s::integer)'
REGISTER_IDLE = ('SELECT q4pg_register_idle(' + _Q + ') '
                 'WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) %s')

# 1.1's calls as 1.0 makes them: (query, which of the 1.1 call's arguments it
# takes, after the queue).  The calls that are the same in both go as they are.
_FULL_ROW = 'created_at, 0, NULL::pg_catalog.text, NULL::pg_catalog.timestamptz'
_AS_1_0: Dict[str, Tuple[str, Tuple[int, ...]]] = {
    db.COUNT_DUE: (COUNT, (0,)),
    db.LIST_DUE: (LIST.replace('created_at FROM', 'created_at, ' + _FULL_ROW + ' FROM'), (0, 1)),
    # no max_attempts; nothing scheduled, leased or dead
    db.QUEUES_FULL: (db.QUEUES.replace(' FROM', ', NULL::integer FROM'), ()),
    db.STATS_FULL: (db.STATS.replace(' FROM', ', 0::bigint, 0::bigint, 0::bigint FROM'), ()),
}
_SAME = (db.ENQUEUE, db.ENQUEUE_MANY, db.CANCEL, db.CHANNEL, db.CREATE_QUEUE, db.DROP_QUEUE,
         db.QUEUE_SETTINGS, db.QUEUES, db.STATS, db.CONSUMERS)
_WHAT = {
    db.ENQUEUE_AT: 'a scheduled message (schedule=)',
    db.ENQUEUE_MANY_AT: 'a scheduled message (schedule=)',
    db.CREATE_QUEUE_MAX: 'max_attempts',
    db.SET_MAX_ATTEMPTS: 'max_attempts',
    db.LEASE: 'a lease', db.ACK: 'a lease', db.NACK: 'a lease', db.EXTEND: 'a lease',
    db.NEXT_DUE_AT: 'next_due (scheduled messages)',
    db.DEAD_LETTERS: 'dead letters', db.REPLAY: 'dead letters', db.PURGE_DEAD: 'dead letters',
}


def installed_version(run: Callable[..., List[db.Row]]) -> Optional[str]:
    """The q4pg version installed where `run` runs; None when there is none."""
    rows = run(VERSION)
    if not rows:
        return None
    version, record = rows[0]
    if version is None:
        rows = run('SELECT version FROM ' + record)
        version = rows[0][0] if rows else None
    return version


def _function(error: Q4pgError) -> str:
    """The q4pg function a 42883 error says is missing, for UpgradeNeeded's text."""
    match = re.search(r'(q4pg_\w+)', error.pgerror or '')
    return match.group(1) if match else 'this call'


class Server:
    """What a QueueManager knows of its database's q4pg (see the module's text)."""

    def __init__(self, database: db.Database, queue: str) -> None:
        self._db, self._queue = database, queue
        self._v10: Optional[V10] = None
        self._asked_at: Optional[float] = None      # None: never asked

    def old(self, other_sess: Any = None) -> Optional['V10']:
        """The V10 to serve a call with, or None (the client's own version).

        The first time, the pool's connection says (it learnt it when it
        connected), or in the caller's session a query; after that, the server
        is asked again when its "1.0" is older than RECHECK_SECONDS."""
        if self._asked_at is None:
            if other_sess is not None:
                self.ask(other_sess)
            else:   # learnt when the pool connected (db.CONNECT): no round trip of its own
                self._v10 = V10(self) if self._db.q4pg_1_0() else None
                self._asked_at = time.monotonic()
        elif self._v10 is not None and time.monotonic() - self._asked_at > RECHECK_SECONDS:
            self.ask(other_sess)
        return self._v10

    def ask(self, other_sess: Any = None) -> Optional['V10']:
        """Asks the server which q4pg it has (in the caller's session when it is
        usable, else on the pool); the V10 to serve calls with, or None."""
        run: Callable[..., List[db.Row]] = self._db.run
        if other_sess is not None:
            session = db.Database.caller(other_sess)
            if session.usable():
                run = session.run
        version = installed_version(run)
        self._v10 = V10(self) if version == '1.0' else None
        self._asked_at = time.monotonic()
        return self._v10

    def after_missing(self, error: ExtensionNotInstalled, other_sess: Any = None
                      ) -> Optional['V10']:
        """A call found a q4pg function missing: asks again; the V10 when the
        database has 1.0 (the call may go again through it), else None."""
        try:
            return self.ask(other_sess)
        except Q4pgError:
            return None


class V10:
    """The 1.0 code path: 1.1's calls as 1.0 makes them, or UpgradeNeeded."""

    def __init__(self, server: Server) -> None:
        self._server = server

    def refuse(self, what: str) -> None:
        """Raises UpgradeNeeded for `what`, unless the database has been upgraded
        since the server said 1.0 (then the caller goes on the 1.1 way)."""
        if self._server.ask() is not None:
            raise UpgradeNeeded(_UPGRADE % what)

    def call(self, query: str, args: Tuple[Any, ...]) -> Tuple[str, Tuple[Any, ...]]:
        """(query, args) of a 1.1 call (args after the queue) as 1.0 makes it;
        UpgradeNeeded for what 1.0 has not."""
        if query in _SAME:
            return query, args
        if query in _AS_1_0:
            query_1_0, which = _AS_1_0[query]
            return query_1_0, tuple(args[i] for i in which)
        self.refuse(_WHAT.get(query, 'this call'))
        return query, args

    @contextlib.contextmanager
    def held(self, queue: str, tag: str, n: int, other_sess: Any, max_attempts: Optional[int],
             decode: Callable[[List[db.Row]], Any]) -> Iterator[Any]:
        """1.0's dequeue: the messages q4pg_dequeue(_many) deleted, decoded
        (`decode`), in a transaction that commits when the block ends well and
        rolls back (uncounted) when it raises.  In the caller's session the
        caller ends the transaction (an autocommit psycopg2 connection gets
        one of its own, BEGIN to COMMIT)."""
        if max_attempts is not None:
            self.refuse('counting failures (excepted_times_to_ignore)')
        query, args = (DEQUEUE, (queue, tag)) if n == 1 else (DEQUEUE_MANY, (queue, tag, n))
        if other_sess is None:
            transaction = self._server._db.begin(query, args)
            try:
                yield decode(transaction.rows)
            except BaseException:
                transaction.rollback()
                raise
            transaction.commit()
            return
        session = db.Database.caller(other_sess)
        own = session.autocommit()
        if own:
            session.run('BEGIN')
        try:
            yield decode(session.run(query, args))
        except BaseException:
            if own:
                session.run('ROLLBACK')
            raise
        if own:
            session.run('COMMIT')

    def listener(self, database: db.Database, queue: str, tag: str, lease: Optional[float],
                 max_attempts: Optional[int], **kwargs: Any) -> 'Listener10':
        """1.0's listener: each message deleted by q4pg_dequeue in a transaction
        that commits when the next one is asked for, rolled back on a failure."""
        if lease is not None:
            self.refuse('a lease (listen(lease=))')
        if max_attempts is not None:
            self.refuse('counting failures (excepted_times_to_ignore)')
        return Listener10(database, queue, tag, **kwargs)


class Listener10(Listener):
    """Listener on a q4pg 1.0 database: dequeues with q4pg_dequeue (failures
    uncounted), registers with 1.0's q4pg_register_idle, and knows of no
    scheduled message to wake up for."""

    def _take(self) -> Any:
        transaction = self._db.begin(DEQUEUE, (self._queue, self._tag))
        if not transaction.rows:
            transaction.commit()
            return _STOP
        self._held = transaction
        try:
            return self._decode(transaction.rows[0])
        except BaseException:
            self._finish(ack=False)
            raise

    def _finish(self, ack: bool, error: Optional[str] = None, count: bool = True) -> None:
        transaction, self._held = self._held, None
        if transaction is None:
            return
        if not ack:
            transaction.rollback()
            return
        try:
            transaction.commit()
        except Q4pgError as e:
            if not db.retryable(e):
                raise
            log.warning('q4pg: could not acknowledge a message of tag %r, it may be delivered '
                        'again: %s', self._tag, e)

    def _register(self) -> bool:
        self._registered, self._due, self._due_fresh = True, None, True
        self._safe = bool(self._call(REGISTER_IDLE))
        return self._safe

    def _call(self, query: str) -> Any:
        if query == db.DUE_IN:          # 1.0 has no scheduled messages
            return None
        return super()._call(query)


def as_1_0(old: Optional[V10], query: str, args: Sequence[Any]) -> Tuple[str, Tuple[Any, ...]]:
    """(query, args) for the database: as they are, or as 1.0 makes them."""
    if old is None:
        return query, tuple(args)
    return old.call(query, tuple(args))
