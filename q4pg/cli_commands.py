"""The commands of the q4pg command line (cli.py parses the arguments and
registers them): each cmd_*(args) runs one command and returns its exit status,
through QueueManager's public API only.  The exit codes and the one-line errors
are docs/cli.md's contract.
"""

import contextlib
import datetime
import json
import os
import select
import signal
import sys

from .client import QueueManager
from .errors import InvalidArgument, InvalidDsn, InvalidMessage, Q4pgError, one_line

# Exit codes (docs/cli.md).
EXIT_OK = 0
EXIT_NOTHING = 1      # no message, no such id, listen timed out, a lease lost, nothing replayed
EXIT_USAGE = 2
EXIT_REFUSED = 3      # bad input, no queue, no extension, no permission
EXIT_UNREACHABLE = 4  # cannot reach the database
EXIT_INTERRUPTED = 130

STDIN_BATCH = 1000    # messages per enqueue_many() when reading stdin


class _Exit(Exception):
    """Ends the command with an exit code and, unless None, a one-line error."""

    def __init__(self, code, message=None):
        super().__init__(message)
        self.code = code
        self.message = message


class _OutputClosed(Exception):
    """stdout went away while a taken message was written: it was rolled back."""

    def __init__(self, msg):
        super().__init__()
        self.msg = msg


# ---------------------------------------------------------------- helpers

def _clean(message):
    """A server or client message made fit for 'q4pg: error: <message>'."""
    message = one_line(message)
    if message.startswith('q4pg: '):
        message = message[len('q4pg: '):]
    return message or 'unknown error'


def _check_utf8(value, what):
    """Refuses (exit 3) a command line argument that is no valid UTF-8."""
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise _Exit(EXIT_REFUSED, '%s is not valid UTF-8' % what)
    return value


def _write_lines(lines):
    """Writes lines to stdout as UTF-8 and flushes them to the reader."""
    out = getattr(sys.stdout, 'buffer', None)
    if out is None:  # stdout replaced by a text stream
        sys.stdout.write(''.join(line + '\n' for line in lines))
        sys.stdout.flush()
        return
    out.write(b''.join(line.encode('utf-8') + b'\n' for line in lines))
    out.flush()


def _iso(value):
    """A timestamp for a JSON line: ISO 8601 text (infinity as 'infinity'), or null."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def _message_line(q, msg_id, tag, stored, created_at, **more):
    """A message of q's queue as printed: one JSON line.

    On json/jsonb queues `data` is the JSON text as the server stored it, its
    line breaks made spaces (JSON has them only between tokens): printed
    exactly, however deep or precise, and never undecodable.  On text queues
    it is a JSON string.
    """
    if q.data_type == 'text':
        data = json.dumps(stored, ensure_ascii=False)
    else:
        data = stored.replace('\r', ' ').replace('\n', ' ')
    extra = ''.join(',%s:%s' % (json.dumps(key), json.dumps(
        _iso(value) if isinstance(value, datetime.datetime) else value, ensure_ascii=False))
        for key, value in more.items())
    return '{"id":%d,"tag":%s,"data":%s,"created_at":%s%s}' % (
        msg_id, json.dumps(tag, ensure_ascii=False), data,
        json.dumps(created_at.isoformat() if created_at is not None else None), extra)


# ------------------------------------------------------ connection, queue

def _manager(args, find=True, queue=True, **kwargs):
    """The QueueManager of --dsn and --queue (an SQL name, which the server reads).

    find: QueueManager.existing(), which reads the queue's data type from its
    table (and so checks the extension is there and the table is a queue).
    queue=False: a command about no queue in particular.
    """
    dsn = args.dsn if args.dsn is not None else os.environ.get('Q4PG_DSN', '')
    name = 'mq'
    if queue:
        name = args.queue if args.queue is not None else os.environ.get('Q4PG_QUEUE', '')
        name = _check_utf8(name or 'mq', '--queue')
    try:
        return (QueueManager.existing if find else QueueManager)(dsn, name, **kwargs)
    except InvalidDsn as e:
        raise _Exit(EXIT_USAGE, _clean(e))
    except InvalidArgument as e:
        raise _Exit(EXIT_REFUSED, 'bad --queue: %s' % _clean(e))


# ---------------------------------------------------------------- commands

def cmd_create_queue(args):
    with _manager(args, find=False, data_type=args.data_type,
                  data_length=args.data_length) as q:
        q.create_table(max_attempts=args.max_attempts)
    return EXIT_OK


def cmd_set_max_attempts(args):
    with _manager(args) as q:
        q.set_max_attempts(args.max_attempts)
    return EXIT_OK


def _readable(fd):
    """Whether fd has input waiting now (True when that cannot be told)."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _BadLine(Exception):
    """A line of stdin that is no valid UTF-8."""

    def __init__(self, lineno):
        super().__init__(lineno)
        self.lineno = lineno


def _stdin_batches(size, skip_blank):
    """The lines of stdin in batches of at most size, as they come: lists of
    (line number, text).

    A line is what lies between two \\n (the last one may lack it); nothing else
    is removed.  skip_blank: lines of white space only are left out (they
    cannot be JSON).  A batch is handed over when it is full, at end of input,
    or when no more input is waiting, so a slow producer (tail -f) is not held
    back until a batch fills.
    """
    if sys.stdin is None:
        return
    fd = sys.stdin.fileno()
    partial = []  # pieces of the line being read
    batch = []
    lineno = 0
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            lines = [b''.join(partial)] if any(partial) else []
        elif b'\n' not in chunk:
            partial.append(chunk)
            lines = []
        else:
            first, *rest = chunk.split(b'\n')
            lines = [b''.join(partial + [first])] + rest[:-1]
            partial = [rest[-1]]
        for raw in lines:
            lineno += 1
            if skip_blank and not raw.strip():
                continue
            try:
                batch.append((lineno, raw.decode('utf-8')))
            except UnicodeDecodeError:
                raise _BadLine(lineno) from None
            if len(batch) >= size:
                yield batch
                batch = []
        if not chunk:
            if batch:
                yield batch
            return
        if batch and not _readable(fd):
            yield batch
            batch = []


def cmd_enqueue(args):
    tag = _check_utf8(args.tag, 'TAG')
    schedule = args.at if args.at is not None else args.delay
    with _manager(args) as q:
        if args.data is not None:
            msg_id = q.enqueue(tag, _check_utf8(args.data, 'DATA'), schedule=schedule, raw=True)
            _write_lines([str(msg_id)])
            return EXIT_OK
        _enqueue_stdin(q, tag, schedule)
    return EXIT_OK


def _enqueue_stdin(q, tag, schedule=None):
    """One message per line of stdin, in batches each stored all or nothing; a
    refused line ends it, naming the line and what was stored."""
    stored = 0
    first_unstored = 1    # the line the batch not yet stored starts at, or after
    try:
        for batch in _stdin_batches(STDIN_BATCH, skip_blank=q.data_type != 'text'):
            first_unstored = batch[0][0]
            try:
                ids = q.enqueue_many(tag, [text for _, text in batch], schedule=schedule,
                                     raw=True)
            except InvalidMessage as e:
                if e.index is None:
                    where = 'lines %d-%d of stdin' % (batch[0][0], batch[-1][0])
                    why = _clean(e)
                else:
                    where = 'line %d of stdin' % batch[e.index][0]
                    why = _clean(e)[len('item %d: ' % e.index):]
                raise _Exit(EXIT_REFUSED, '%s: %s; %s' % (where, why,
                                                          _stored(stored, first_unstored)))
            _write_lines([str(i) for i in ids])
            stored += len(ids)
            first_unstored = batch[-1][0] + 1
    except _BadLine as e:
        raise _Exit(EXIT_REFUSED, 'line %d of stdin is not valid UTF-8; %s'
                    % (e.lineno, _stored(stored, first_unstored)))


def _stored(count, first_unstored):
    return ('%d message(s) stored, their ids printed; none from line %d on'
            % (count, first_unstored))


def cmd_dequeue(args):
    tag = _check_utf8(args.tag, 'TAG')
    msg = None
    try:
        with _manager(args) as q:
            # The message is deleted when the with block commits, after its
            # line is written; a failed write rolls back and leaves it queued.
            with q.dequeue_message(tag, raw=True) as msg:
                if msg is None:
                    return EXIT_NOTHING
                _write_lines([_message_line(q, msg.id, msg.tag, msg.raw, msg.created_at)])
    except BrokenPipeError:
        raise _OutputClosed(msg)
    return EXIT_OK


@contextlib.contextmanager
def _stop_on_signal(listener):
    """SIGINT/SIGTERM stop `listener` after the message at hand (Listener.stop):
    a message printed is acknowledged, never given back."""
    received = []

    def on_signal(signum, frame):
        received.append(signum)
        listener.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_listen(args):
    tag = _check_utf8(args.tag, 'TAG')
    printed = 0
    msg = None
    listen_dsn = (args.listen_dsn if args.listen_dsn is not None
                  else os.environ.get('Q4PG_LISTEN_DSN'))
    try:
        with _manager(args, listen_dsn=listen_dsn) as q:
            # Asking for the next message acknowledges the one printed before;
            # leaving the with block normally (the loop ends) does too.
            with q.listener(tag, stop_after_idle=args.timeout, limit=args.limit, full=True,
                            raw=True, lease=args.lease) as items:
                with _stop_on_signal(items) as signals:
                    for msg in items:
                        _write_lines([_message_line(q, msg.id, msg.tag, msg.raw,
                                                    msg.created_at)])
                        printed += 1
    except BrokenPipeError:
        raise _OutputClosed(msg)
    if printed or signals:
        return EXIT_OK
    return EXIT_NOTHING


def _due_or_all(sub):
    """list's and count's choice: due messages (the default, as in SQL and Python) or --all."""
    which = sub.add_mutually_exclusive_group()
    which.add_argument('--all', action='store_true',
                       help='also messages scheduled for later and under a lease')
    which.add_argument('--due', action='store_true',
                       help='only messages due now (the default; kept for scripts)')


def cmd_list(args):
    tag = None if args.tag is None else _check_utf8(args.tag, 'TAG')
    with _manager(args) as q:
        rows = q.list(tag, limit=args.limit, ignore_scheduled=not args.all, full=True)
        _write_lines([_message_line(q, msg_id, msg_tag, data, created_at, run_at=run_at,
                                    attempts=attempts, last_error=last_error,
                                    leased_until=leased_until)
                      for (msg_id, msg_tag, data, created_at, run_at, attempts, last_error,
                           leased_until) in rows])
    return EXIT_OK


def cmd_count(args):
    tag = None if args.tag is None else _check_utf8(args.tag, 'TAG')
    with _manager(args) as q:
        _write_lines([str(q.count(tag, ignore_scheduled=not args.all))])
    return EXIT_OK


def cmd_lease(args):
    tag = _check_utf8(args.tag, 'TAG')
    with _manager(args) as q:
        leased = q.take_leases(tag, args.limit, args.seconds, raw=True)
        try:
            _write_lines([_lease_line(q, m) for m in leased])
        except BrokenPipeError:
            # Not printed: give them back at once rather than when the lease runs out.
            for m in leased:
                with contextlib.suppress(Q4pgError):
                    q.nack(m.id, m.lease_token, error='q4pg lease: output closed')
            _silence_stdout()
            _error('output closed: leased message(s) %s were not written and were given back'
                   % ', '.join(str(m.id) for m in leased))
            return EXIT_NOTHING
    return EXIT_OK if leased else EXIT_NOTHING


def _lease_line(q, m):
    return _message_line(q, m.id, m.tag, m.raw, m.created_at, attempts=m.attempts,
                         last_error=m.last_error, lease_token=m.lease_token,
                         lease_until=m.lease_until)


def cmd_ack(args):
    with _manager(args) as q:
        done = q.ack(args.id, args.token)
    _write_lines(['true' if done else 'false'])
    return EXIT_OK if done else EXIT_NOTHING


def cmd_nack(args):
    error = None if args.error is None else _check_utf8(args.error, '--error')
    with _manager(args) as q:
        outcome = q.nack(args.id, args.token, retry_in=args.retry_in, error=error)
    _write_lines([outcome or 'lost'])
    return EXIT_NOTHING if outcome is None else EXIT_OK


def cmd_extend(args):
    with _manager(args) as q:
        until = q.extend(args.id, args.token, args.seconds)
    _write_lines([until.isoformat() if until is not None else 'lost'])
    return EXIT_NOTHING if until is None else EXIT_OK


def cmd_dead_letters(args):
    tag = None if args.tag is None else _check_utf8(args.tag, 'TAG')
    with _manager(args) as q:
        rows = q.dead_letters(tag, args.limit)
        _write_lines([_message_line(q, msg_id, msg_tag, data, created_at, attempts=attempts,
                                    last_error=last_error, dead_at=dead_at)
                      for (msg_id, msg_tag, data, created_at, attempts, last_error,
                           dead_at) in rows])
    return EXIT_OK


def cmd_replay(args):
    tag = None if args.tag is None else _check_utf8(args.tag, '--tag')
    with _manager(args) as q:
        count = q.replay(args.ids or None, tag)
    _write_lines([str(count)])
    return EXIT_OK if count else EXIT_NOTHING


def cmd_purge_dead(args):
    tag = None if args.tag is None else _check_utf8(args.tag, 'TAG')
    with _manager(args) as q:
        _write_lines([str(q.purge_dead(tag, args.older_than))])
    return EXIT_OK


def cmd_cancel(args):
    with _manager(args) as q:
        removed = q.cancel(args.id)
    _write_lines(['true' if removed else 'false'])
    return EXIT_OK if removed else EXIT_NOTHING


def _error(message):
    try:
        sys.stderr.write('q4pg: error: %s\n' % one_line(message))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout():
    """After stdout broke, point it at /dev/null so the exit-time flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
