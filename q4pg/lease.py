"""Heartbeat: keeps leases alive while their work runs (q4pg_extend).

A lease (q4pg_lease) holds a message for a while without a transaction; the
consumer extends it while it works.  The heartbeat does that from a thread of
its own (started when the first beat is due), on a connection of its own (never a pooled one: the pool may be
exhausted by the very thread that waits for the work), every third of the
lease (core.heartbeat_interval).  A refused extension means another consumer has leased the message
since (or it was cancelled or set aside): the heartbeat says so at WARNING on
the q4pg logger and remembers it; whoever ends the lease decides what to do.

Used by client.py (QueueManager.lease, whose lifecycle is leasing() below:
core.lease_ending() decides) and listener.py (listen(lease=...)); it uses
db.py's Database.dedicated() only.
"""

import contextlib
import datetime
import heapq
import itertools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional, Set, Tuple

from . import calls, core, db
from .core import LeasedMessage, error_text, heartbeat_interval
from .errors import Q4pgError, UndecodableMessage

if TYPE_CHECKING:
    from .client import QueueManager

__all__ = ['Heartbeat', 'leasing', 'leased_now', 'give_back']

log = logging.getLogger('q4pg')


class _Waker:
    """One daemon thread per process ('q4pg-heartbeats') that calls fn(arg) when
    time.monotonic() reaches `when` (call_at): what starts a heartbeat's thread
    at its first beat, so that a job shorter than a third of its lease (most)
    starts none.  Entries are never removed: a stopped watch's entry finds
    nothing to do.  A forked child starts its own thread at its first call_at."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: List[Tuple[float, int, Callable[[int], None], int]] = []
        self._seq = itertools.count()
        self._pid: Optional[int] = None

    def call_at(self, when: float, fn: Callable[[int], None], arg: int) -> None:
        with self._cond:
            if self._pid != os.getpid():
                self._pid, self._heap = os.getpid(), []
                threading.Thread(target=self._run, name='q4pg-heartbeats', daemon=True).start()
            entry = (when, next(self._seq), fn, arg)
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:       # sooner than what the thread waits for
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        _, _, fn, arg = heapq.heappop(self._heap)
                        break
                    self._cond.wait(wait)
            try:
                fn(arg)
            except Exception:                # never lose the thread that starts heartbeats
                log.exception('q4pg: could not start a heartbeat')


_waker = _Waker()


class Heartbeat:
    """Extends a set of leases every third of their length until stop().

    start() watches new leases (stopping the previous watch); stop() ends the
    watch and returns the ids whose extension was refused.  The first beat
    starts a thread of the watch's own (_Waker: a job shorter than a third of
    its lease starts no thread), which beats every third of the lease from
    then on; its connection is opened at that first beat and kept for the
    next watch until close().
    """

    def __init__(self, database: db.Database, queue: str) -> None:
        self._db, self._queue = database, queue
        self._conn: Optional[db.DedicatedConnection] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lost: Set[int] = set()
        self._lock = threading.Lock()
        self._watch = 0                      # the current watch's number
        self._pending: Optional[Tuple[List[Tuple[int, str]], float]] = None  # before its first beat

    def start(self, leases: List[Tuple[int, str]], seconds: float) -> None:
        """Watches `leases` ((id, token) pairs) of `seconds` each."""
        self.stop()
        self._lost = set()
        self._stop = threading.Event()
        with self._lock:
            self._pending = (list(leases), seconds)
            watch = self._watch
        _waker.call_at(time.monotonic() + heartbeat_interval(seconds), self._first_beat, watch)

    def _first_beat(self, watch: int) -> None:
        """The first beat of watch number `watch` is due (the waker's thread)."""
        with self._lock:
            if watch != self._watch or self._pending is None:
                return                       # stopped since
            leases, seconds = self._pending
            self._pending = None
            self._thread = threading.Thread(target=self._beat, args=(leases, seconds, self._stop),
                                            name='q4pg-heartbeat', daemon=True)
            self._thread.start()

    def stop(self) -> Set[int]:
        """Ends the watch (waits for a beat under way); the ids whose lease was refused."""
        with self._lock:
            self._watch += 1
            self._pending = None
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        return set(self._lost)

    def close(self) -> None:
        """Ends the watch and closes the connection."""
        self.stop()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _beat(self, leases: List[Tuple[int, str]], seconds: float,
              stop: threading.Event) -> None:
        lease = datetime.timedelta(seconds=seconds)
        interval = heartbeat_interval(seconds)
        beat_now = True                      # started when the first beat was due
        while beat_now or not stop.wait(interval):
            beat_now = False
            if stop.is_set():
                return
            live = [(i, t) for i, t in leases if i not in self._lost]
            if not live:
                return
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._db.dedicated()
                refused = self._conn.run(db.EXTEND_MANY, ([i for i, _ in live],
                                                          [t for _, t in live],
                                                          self._queue, lease))
            except Q4pgError as e:
                log.warning('q4pg: could not extend the lease of message(s) %s of queue %s: %s; '
                            'trying again in %.1f s', ', '.join(str(i) for i, _ in live),
                            self._queue, e, interval)
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                continue
            for (id_,) in refused:
                self._lost.add(id_)
                log.warning('q4pg: the lease of message %d of queue %s was lost: another '
                            'consumer leased it since (or it was cancelled or set aside); '
                            'its work may be done twice', id_, self._queue)


@contextlib.contextmanager
def leasing(q: 'QueueManager', tag: str, seconds: float = 30, *,
            raw: bool = False) -> Iterator[Optional[LeasedMessage]]:
    """QueueManager.lease(): see there."""
    call = calls.lease(tag, 1, seconds)
    rows = q._call(call)
    if not rows:
        yield None
        return
    message = leased_now(q, rows, raw)[0]
    heartbeat = Heartbeat(q._db, q._queue)
    heartbeat.start([(message.id, message.lease_token)], call.args[2].total_seconds())
    try:
        yield message
    except BaseException as e:
        heartbeat.close()
        give_back(q, message, error_text(e))
        raise
    heartbeat.close()
    if not q.ack(message.id, message.lease_token):
        raise core.lease_lost(message)


def leased_now(q: 'QueueManager', rows: List[db.Row], raw: bool) -> List[LeasedMessage]:
    """Rows just leased as LeasedMessages; when one cannot be decoded, all are
    given back (its error recorded) and UndecodableMessage raised."""
    try:
        return [q._leased_message(row, raw) for row in rows]
    except UndecodableMessage as e:
        for row in rows:
            with contextlib.suppress(Q4pgError):
                q.nack(row[0], row[6],
                       error=error_text(e) if row[0] == e.id else None)
        raise


def give_back(q: 'QueueManager', message: LeasedMessage, error: str) -> None:
    """nack after a failed work; a lost lease or error is logged, not raised."""
    try:
        outcome = q.nack(message.id, message.lease_token, error=error)
    except Q4pgError as e:
        log.warning('q4pg: could not give back leased message %d of queue %s, its lease '
                    'will run out: %s', message.id, q._queue, e)
        return
    if outcome is None:
        core.said_lease_lost(q._queue, message.id, ended=False)
    elif outcome == 'dead':
        core.said_dead(q._queue, message.id, error)
