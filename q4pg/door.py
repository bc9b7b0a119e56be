"""The direct door: what one connection sends for a hot-path call (enqueue,
dequeue, take, done, fail, cancel, lease, ack, nack, extend) on a server that
has it (q4pg 1.2).  Driver-neutral, no I/O: db.py (psycopg2) and aio_db.py
(psycopg 3) run the statements plan() gives, the same way (see there).

A generic call (q4pg_enqueue(queue, ...)) reaches the queue's generated
function through a route lookup and a dynamic EXECUTE inside the server; the
door calls that function by name (statements.DOORS).  Each connection keeps
the prefix it was given per queue, and, where the server session survives
between its calls (not behind a transaction-mode pooler, which hands each
transaction some server session), a prepared statement per call shape:
PREPARE in the round trip of the first call, EXECUTE then.  Names derive
from the function called and the statement's text ('q4pg_enqueue_3fa9...'),
so a name always means the same statement.

What can go wrong, nothing having run:
    26000  the session lost its prepared statements (DISCARD ALL, a pooler):
           forgotten, prepared again
    42P05  a statement is prepared already (its first round trip failed
           after PREPARE): it is used
    55000 'q4pg: ...' or 42883 on the door's function: the door went stale
           (its table renamed, dropped and re-created, restored) or was
           dropped: the prefix is forgotten and asked again
Inside a transaction that is not the client's own (other_sess), none of this
can be retried: the caller's transaction is aborted, and the error raised.
"""

import hashlib
import re
from typing import Any, Dict, Generator, List, NamedTuple, Optional, Sequence, Set, Tuple

from . import arguments
from . import statements as sql

__all__ = ['Doors', 'Step', 'Failed', 'Plan', 'plan', 'MAX_TRIES', 'session']

MAX_TRIES = 3          # a lost statement, then a stale door: the third try goes through
# The SQLSTATE classes of an error that may have come before PREPARE went
# through (its analysis, the connection); after any other, the call ran, so
# its statement was prepared.
_BEFORE_PREPARE = ('42', '3F', '0A', '08', '57', '53', '54', '58', 'XX', '26')


class Step(NamedTuple):
    """What to send next: `lookup` (ask the door of `queue`), else `text` with `args`;
    `prepares`: the statement name this text PREPAREs (None: none)."""
    lookup: bool
    queue: str
    text: str = ''
    args: Tuple[Any, ...] = ()
    prepares: Optional[str] = None


class _Shape(NamedTuple):
    """One statement through one door: how to send it."""
    execute: str        # EXECUTE name(%s, ...), or the text itself when not prepared
    prepare: str        # PREPARE name(types) AS ...; (empty when not prepared)
    name: Optional[str]
    queue_at: int


def _inline(body: str, types: Sequence[str]) -> str:
    """`body` with $1..$n as %s::type (each is used once, in order)."""
    out = body.replace('%', '%%')
    for n, type_ in enumerate(types, 1):
        out = out.replace('$%d' % n, '%%s::%s' % type_, 1)
    return out


def _check_texts() -> None:
    for body, types, _ in sql.DOORS.values():
        places = [body.find('$%d' % n) for n in range(1, len(types) + 1)]
        assert -1 not in places and places == sorted(places), body
        assert '$%d' % (len(types) + 1) not in body and '%' not in body, body


_check_texts()


class Doors:
    """What one connection knows of the doors: `enabled` (the server has them),
    `pooled` (a transaction-mode pooler: nothing prepared, no door of pg_temp,
    no unqualified queue name), each queue's prefix ('' : the generic calls
    for it), the statements prepared in its server session."""

    __slots__ = ('enabled', 'pooled', '_prefixes', '_shapes', 'prepared')

    def __init__(self, enabled: bool, pooled: bool) -> None:
        self.enabled = enabled
        self.pooled = pooled
        self._prefixes: Dict[str, str] = {}
        self._shapes: Dict[Tuple[str, str], _Shape] = {}
        self.prepared: Set[str] = set()

    def step(self, query: str, args: Sequence[Any]) -> Optional[Step]:
        """What to send for `query` with `args`; None: the generic statement as it is."""
        door = sql.DOORS.get(query) if self.enabled else None
        if door is None:
            return None
        queue = args[door[2]]
        prefix = self._prefixes.get(queue)
        if prefix is None:
            return Step(True, queue)
        if not prefix:
            return None
        shape = self._shapes.get((query, prefix))
        if shape is None:
            shape = self._shapes[(query, prefix)] = self._shape(door, prefix)
        rest = tuple(args[:shape.queue_at]) + tuple(args[shape.queue_at + 1:])
        if shape.name is None or shape.name in self.prepared:
            return Step(False, queue, shape.execute, rest)
        return Step(False, queue, shape.prepare + shape.execute, rest, shape.name)

    def _shape(self, door: Tuple[str, Tuple[str, ...], int], prefix: str) -> _Shape:
        body, types, queue_at = door
        text = body.replace('{door}', prefix)
        if self.pooled:
            return _Shape(_inline(text, types), '', None, queue_at)
        # named after the function it calls, and its text: 'q4pg_enqueue_3fa9...'
        what = re.search(r'\{door\}(\w+)\(', body).group(1)
        name = 'q4pg_%s_%s' % (what, hashlib.sha1(text.encode('utf-8')).hexdigest()[:20])
        prepare = 'PREPARE %s(%s) AS %s; ' % (name, ', '.join(types), text.replace('%', '%%'))
        execute = 'EXECUTE %s(%s)' % (name, ', '.join(['%s'] * len(types)))
        return _Shape(execute, prepare, name, queue_at)

    def learn(self, queue: str, prefix: Optional[str]) -> None:
        """The door's answer for `queue`: its prefix (None: no door, generic calls)."""
        if prefix is None or (self.pooled and (prefix.startswith('pg_temp.')
                                               or len(arguments.sql_name(queue) or ()) != 2)):
            # Behind a pooler the next transaction may run in another server
            # session: its pg_temp is not ours, and an unqualified name may
            # name another table there.
            prefix = ''
        self._prefixes[queue] = prefix

    def no_door(self) -> None:
        """The server has no door (42883 on asking): generic calls from now on."""
        self.enabled = False

    def sent(self, step: Step) -> None:
        """`step` ran well."""
        if step.prepares is not None:
            self.prepared.add(step.prepares)

    def failed(self, step: Step, pgcode: Optional[str], message: str) -> bool:
        """`step` failed with SQLSTATE `pgcode`: True when it surely did nothing and
        may be sent again (after what it teaches is learnt)."""
        if step.prepares is not None and (
                pgcode == '42P05' or (pgcode and pgcode[:2] not in _BEFORE_PREPARE)):
            self.prepared.add(step.prepares)   # PREPARE went through, or had before
        if pgcode == '42P05':
            return True
        if pgcode == '26000':
            self.prepared.clear()
            return True
        if (pgcode == '55000' and message.startswith('q4pg: ')) or pgcode == '42883':
            self._prefixes.pop(step.queue, None)
            return True
        return False


class Failed(NamedTuple):
    """A statement plan() gave failed: its SQLSTATE, primary message, whether the
    connection is outside any transaction now, and the driver's exception."""
    pgcode: Optional[str]
    message: str
    idle: bool
    error: BaseException


Plan = Generator[Tuple[str, Sequence[Any]], Any, List[Any]]


def plan(doors: Optional[Doors], query: str, args: Sequence[Any], begin: bool = False,
         then: str = '') -> Plan:
    """The statements that run `query` (a statements.py text) with `args` on one
    connection whose Doors are `doors` (None: it has none), after BEGIN when
    `begin` (in the same round trip), followed by `then` (e.g. '; COMMIT').

    A generator: it yields (text, args) to send, and is sent back the rows, or
    a Failed; it returns the rows of the call, or raises the Failed's error.
    A driver (db.py, aio_db.py):

        steps = door.plan(...); sent = next(steps)
        while True:  sent = steps.send(<run sent: its rows, or a Failed>)
        ... until StopIteration, whose value is the rows
    """
    head = 'BEGIN; ' if begin else ''
    step = None if doors is None else doors.step(query, args)
    for _ in range(MAX_TRIES):
        if step is None:
            break
        if step.lookup:
            got = yield sql.DOOR, (step.queue,)
            if isinstance(got, Failed):
                if got.pgcode != '42883' or not got.idle:
                    raise got.error
                doors.no_door()        # the extension changed under us: generic calls
                break
            doors.learn(step.queue, got[0][0])
        else:
            got = yield head + step.text + then, step.args
            if not isinstance(got, Failed):
                doors.sent(step)
                return got
            if not doors.failed(step, got.pgcode, got.message):
                raise got.error
            if begin:
                yield 'ROLLBACK', ()
            elif not got.idle:
                raise got.error        # the caller's transaction (or ours) is aborted
        step = doors.step(query, args)
    got = yield head + query + then, args
    if isinstance(got, Failed):
        raise got.error
    return got


def session(row: Sequence[Any], client_pid: int) -> Doors:
    """The Doors of a new connection from statements.CONNECT's `row` and the
    backend pid libpq was told (a pooler makes one up)."""
    return Doors(bool(row[2]), row[3] != client_pid)
