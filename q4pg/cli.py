"""The q4pg command line: queues from the shell, for DBAs and scripts.

    q4pg [--dsn DSN] [--queue NAME] COMMAND ...

A thin layer over q4pg.QueueManager, through its public API only.  Exit
codes and messages are the contract of docs/cli.md.
Here: the parser (each command registered by build_parser's command()) and
main(); the commands themselves are cli_commands.py's (messages) and
cli_admin.py's (the database).
"""

import argparse
import datetime
import logging
import math
import os
import sys
import uuid
from typing import List, Optional

from . import install, monitor
from .cli_admin import _dsn, cmd_consumers, cmd_install, cmd_stats, cmd_uninstall, cmd_upgrade
from .cli_commands import (EXIT_INTERRUPTED, EXIT_NOTHING, EXIT_REFUSED, EXIT_UNREACHABLE,
                           EXIT_USAGE, _clean, _due_or_all, _error, _Exit, _OutputClosed,
                           _silence_stdout, cmd_ack, cmd_cancel, cmd_count, cmd_create_queue,
                           cmd_dead_letters, cmd_dequeue, cmd_enqueue, cmd_extend, cmd_lease,
                           cmd_list, cmd_listen, cmd_nack, cmd_purge_dead, cmd_replay,
                           cmd_set_max_attempts)
from .errors import ConnectionLost, Q4pgError, one_line

DESCRIPTION = 'Work with q4pg message queues (PostgreSQL tables) from the shell.'

EPILOG = """\
connection:  --dsn, else $Q4PG_DSN, else libpq's PGHOST, PGPORT, PGUSER,
             PGDATABASE, PGPASSWORD, ~/.pgpass...
queue:       --queue, else $Q4PG_QUEUE, else mq.  SQL syntax: mq, app.jobs,
             '"My Queue"' (unquoted names fold to lower case).
output:      messages print as JSON lines
             {"id":1,"tag":"t","data":...,"created_at":"2024-05-01T12:00:00+00:00"}
             data is the JSON text stored on json/jsonb queues (exactly, line
             breaks made spaces), a string on text queues.
exit status: 0 done; 1 nothing to do (no message, no such id, listen timed out,
             a lease no longer held, no dead letter replayed);
             2 usage error; 3 refused (bad input, no queue, no extension, no
             permission); 4 cannot reach the database.  Errors are one line on
             stderr: "q4pg: error: ...".

examples:
  q4pg install          # q4pg into schema q4pg with plain SQL (no CREATE EXTENSION)
  q4pg --queue app.jobs create-queue --data-type jsonb
  q4pg --queue app.jobs enqueue mail '{"to": "ops@example.com"}'
  q4pg --queue app.jobs listen mail --limit 100 | ./send-mail
  q4pg --queue app.jobs enqueue mail '{"to": "ops@example.com"}' --delay 3600
  q4pg --queue app.jobs dead-letters
  q4pg stats

Run "q4pg COMMAND --help" for a command's options."""


# ------------------------------------------------------------------ parser

class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line: 'q4pg: error: ...', exit 2."""

    def error(self, message):
        raise _Exit(EXIT_USAGE, '%s (see: %s --help)' % (one_line(message), self.prog))


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a whole number' % text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1, not %d' % value)
    if value > 2**31 - 1:
        raise argparse.ArgumentTypeError('must be at most %d' % (2**31 - 1))
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number of seconds' % text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError('must be zero or more seconds, not %s' % text)
    return value


def _positive_seconds(text):
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError('must be more than zero seconds')
    return value


def _timestamp(text):
    """An ISO 8601 timestamp; one without an offset is UTC (the shell's clock is
    no safer a guess)."""
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace('Z', '+00:00'))
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not an ISO 8601 timestamp '
                                         '(2026-12-01T18:00:00+00:00)' % text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def _max_attempts(text):
    if text.strip().lower() in ('none', 'null', 'unlimited'):
        return None
    return _positive_int(text)


def _message_id(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a message id' % text)
    if not -2**63 <= value < 2**63:
        raise argparse.ArgumentTypeError('%s is out of range for a message id' % text)
    return value


def _token(text):
    """A lease token: a UUID, as lease prints it."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a lease token (a UUID)' % text)


def _version():
    from importlib import import_module
    version = getattr(import_module(__package__), '__version__', None)
    if version is None:
        from importlib.metadata import PackageNotFoundError, version as dist_version
        try:
            version = dist_version('q4pg')
        except PackageNotFoundError:
            version = 'unknown'
    return version


def build_parser():
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog='q4pg', description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=formatter)
    parser.add_argument('--version', action='version', version='q4pg ' + _version())
    parser.add_argument('--dsn', help='libpq connection string or URI (default: $Q4PG_DSN, '
                        'else the PG* variables)')
    parser.add_argument('--queue', metavar='NAME',
                        help='queue table, in SQL syntax (default: $Q4PG_QUEUE, else mq)')
    # --dsn and --queue are also accepted after the command (q4pg count --queue x);
    # SUPPRESS: only when given there do they override the ones before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--dsn', default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument('--queue', default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     help='one of the commands above')
    commands.required = True
    summaries = []

    def command(name, func, help, description=None):
        # No help= here: argparse would list the commands itself, wrapping
        # the long names; the list goes into the description instead.
        sub = commands.add_parser(name, description=description or help,
                                  parents=[common], formatter_class=formatter)
        sub.set_defaults(func=func)
        summaries.append((name, help))
        return sub

    sub = command('create-queue', cmd_create_queue,
                  'create the queue table (no-op when it exists alike)',
                  'Create the queue table named by --queue, with its index and NOTIFY trigger.\n'
                  'Harmless when that queue exists with the same settings; exit 3 when it\n'
                  'exists with other settings or a table of that name is no queue.')
    sub.add_argument('--data-type', choices=('json', 'jsonb', 'text'), default='json',
                     type=str.lower, help='type of the data column (default: json)')
    sub.add_argument('--data-length', type=_positive_int, default=1023, metavar='N',
                     help='longest message accepted, in characters (default: 1023)')
    sub.add_argument('--max-attempts', type=_positive_int, metavar='N',
                     help='set a message aside as a dead letter after N failures '
                     '(default: no limit)')

    sub = command('set-max-attempts', cmd_set_max_attempts,
                  "set the queue's failure limit (N, or none)",
                  'Set how many failures (exceptions in a consumer, expired or given back\n'
                  'leases) a message may have before it is set aside as a dead letter; none:\n'
                  'no limit.  Messages already at or over the new limit become dead letters\n'
                  'at once.')
    sub.add_argument('max_attempts', metavar='N', type=_max_attempts,
                     help='a number of attempts (1 or more), or none')

    sub = command('enqueue', cmd_enqueue, 'add messages; print their ids',
                  'Add a message to the queue and print its id.\n\n'
                  'DATA is stored as given: JSON text on json/jsonb queues (\'{"a":1}\',\n'
                  '\'"a string"\', 42), any text on text queues.\n\n'
                  'Without DATA, each line of stdin is one message: only the line break (\\n)\n'
                  'is removed; blank lines are skipped on json/jsonb queues, and are empty\n'
                  'messages on text queues.  Lines go in batches of up to 1000, each stored\n'
                  'all or nothing; one id per line is printed as each batch is stored.  A\n'
                  'refused line ends it: the error names the line and says how many\n'
                  'messages were stored (those whose ids were printed).  null is refused.\n\n'
                  'example:\n'
                  '  psql -XAtc "SELECT json_build_object(\'id\', id) FROM users" |\n'
                  '      q4pg --queue app.jobs enqueue welcome-mail')
    sub.add_argument('tag', metavar='TAG', help='the tag (consumers dequeue by tag)')
    sub.add_argument('data', metavar='DATA', nargs='?',
                     help='the message; without it, one message per line of stdin')
    when = sub.add_mutually_exclusive_group()
    when.add_argument('--at', type=_timestamp, metavar='TIME',
                      help='not delivered before TIME, an ISO 8601 timestamp '
                      '(2026-12-01T18:00:00+01:00; without an offset: UTC)')
    when.add_argument('--delay', type=_seconds, metavar='S',
                      help='not delivered before S seconds from now (the server\'s clock)')

    sub = command('dequeue', cmd_dequeue, 'take the first due message of TAG and print it',
                  'Take the first due message of TAG that no other consumer holds, print it\n'
                  'as a JSON line, then delete it (if the line cannot be written, it stays,\n'
                  'a failure counted).  Exit 1, printing nothing, when there is none.')
    sub.add_argument('tag', metavar='TAG', help='the tag to take from')

    sub = command('listen', cmd_listen, 'wait for messages of TAG and print each as it comes',
                  'Wait for messages of TAG (LISTEN/NOTIFY) and print each as a JSON line the\n'
                  'moment it is taken; a message is deleted only after its line is written.\n'
                  'Runs until --limit messages, --timeout seconds without a message, or\n'
                  'SIGINT/SIGTERM (it finishes the message at hand and exits 0).\n'
                  'Exit 1 when --timeout expires before any message came.')
    sub.add_argument('tag', metavar='TAG', help='the tag to take from')
    sub.add_argument('--timeout', type=_seconds, metavar='S',
                     help='stop after S seconds without a message')
    sub.add_argument('--limit', type=_positive_int, metavar='N',
                     help='stop after N messages')
    sub.add_argument('--lease', type=_positive_seconds, metavar='S',
                     help='lease each message for S seconds (kept leased while it is '
                     'written) instead of holding it in a transaction')
    sub.add_argument('--listen-dsn', metavar='DSN',
                     help='where to LISTEN, when --dsn is a transaction-mode pool such as '
                          'PgBouncer\'s: a direct or session-pooled connection (default: '
                          '$Q4PG_LISTEN_DSN, else the same as --dsn)')

    sub = command('list', cmd_list, 'print messages in delivery order (takes nothing)',
                  'Print the messages due now as JSON lines, in delivery order, without\n'
                  'taking them (--all: those scheduled for later and those under a lease\n'
                  'too); messages held by a consumer right now are included, dead letters\n'
                  'are not (see dead-letters).  Each line adds "run_at" (due time; while\n'
                  'leased, the lease\'s end), "attempts", "last_error" and "leased_until".')
    sub.add_argument('tag', metavar='TAG', nargs='?', help='only this tag (default: all)')
    sub.add_argument('--limit', type=_positive_int, metavar='N', help='at most N messages')
    _due_or_all(sub)

    sub = command('count', cmd_count, 'print the number of messages',
                  'Print the number of messages due now in the queue (of TAG, or all),\n'
                  'including those a consumer holds right now (--all: those scheduled for\n'
                  'later and those under a lease too); dead letters do not count.')
    sub.add_argument('tag', metavar='TAG', nargs='?', help='only this tag (default: all)')
    _due_or_all(sub)

    sub = command('cancel', cmd_cancel, 'remove a message by id',
                  'Remove a message (waiting, scheduled or dead) by id and print true; print\n'
                  'false and exit 1 when there is no such message, a consumer holds it right\n'
                  'now or a live lease has it.')
    sub.add_argument('id', metavar='ID', type=_message_id)

    sub = command('lease', cmd_lease, 'lease messages of TAG for a while; print them',
                  'Lease up to --limit due messages of TAG for --seconds and print each as a\n'
                  'JSON line with its "lease_token" and "lease_until" (and "attempts",\n'
                  '"last_error").  No transaction stays open: finish each with ack, or give\n'
                  'it back with nack; extend keeps it longer.  A lease not finished in time\n'
                  'runs out and the message is due again (its attempt counted).\n'
                  'Exit 1, printing nothing, when no message is due.\n\n'
                  'example:\n'
                  '  line=$(q4pg lease jobs --seconds 600) || exit 0\n'
                  '  id=$(echo "$line" | jq .id); token=$(echo "$line" | jq -r .lease_token)\n'
                  '  if work "$line"; then q4pg ack "$id" "$token"\n'
                  '  else q4pg nack "$id" "$token" --error "work failed"; fi')
    sub.add_argument('tag', metavar='TAG', help='the tag to take from')
    sub.add_argument('--seconds', type=_positive_seconds, default=30.0, metavar='S',
                     help='length of the lease (default: 30)')
    sub.add_argument('--limit', type=_positive_int, default=1, metavar='N',
                     help='lease up to N messages (default: 1)')

    sub = command('ack', cmd_ack, 'acknowledge (remove) a leased message',
                  'Remove a leased message and print true; print false and exit 1 when the\n'
                  'lease is no longer held (another consumer leased the message since).')
    sub.add_argument('id', metavar='ID', type=_message_id)
    sub.add_argument('token', metavar='TOKEN', type=_token, help='the lease_token lease printed')

    sub = command('nack', cmd_nack, 'give a leased message back',
                  'Give a leased message back, due again now or after --retry-in seconds,\n'
                  'recording --error as its last error; print retry, or dead when it reached\n'
                  "the queue's max attempts.  Print lost and exit 1 when the lease is no longer\n"
                  'held.')
    sub.add_argument('id', metavar='ID', type=_message_id)
    sub.add_argument('token', metavar='TOKEN', type=_token, help='the lease_token lease printed')
    sub.add_argument('--retry-in', type=_seconds, metavar='S',
                     help='due again after S seconds (default: now)')
    sub.add_argument('--error', metavar='TEXT', help='what went wrong (the last_error)')

    sub = command('extend', cmd_extend, 'extend a lease',
                  'Extend a lease to --seconds from now and print its new end; print lost and\n'
                  'exit 1 when the lease is no longer held.')
    sub.add_argument('id', metavar='ID', type=_message_id)
    sub.add_argument('token', metavar='TOKEN', type=_token, help='the lease_token lease printed')
    sub.add_argument('--seconds', type=_positive_seconds, default=30.0, metavar='S',
                     help='new length of the lease, from now (default: 30)')

    sub = command('dead-letters', cmd_dead_letters, 'print the dead letters',
                  'Print the messages set aside after too many failures, as JSON lines with\n'
                  '"attempts", "last_error" and "dead_at".')
    sub.add_argument('tag', metavar='TAG', nargs='?', help='only this tag (default: all)')
    sub.add_argument('--limit', type=_positive_int, metavar='N', help='at most N messages')

    sub = command('replay', cmd_replay, 'make dead letters due again',
                  'Make dead letters due again (attempts back to 0, last error kept): those\n'
                  'with the IDs given, else all of them (of --tag); print how many.  Exit 1\n'
                  'when there was none.')
    sub.add_argument('ids', metavar='ID', nargs='*', type=_message_id)
    sub.add_argument('--tag', help='only dead letters of this tag')

    sub = command('purge-dead', cmd_purge_dead, 'delete dead letters',
                  'Delete dead letters (of TAG; set aside more than --older-than seconds ago);\n'
                  'print how many.')
    sub.add_argument('tag', metavar='TAG', nargs='?', help='only this tag (default: all)')
    sub.add_argument('--older-than', type=_seconds, metavar='S',
                     help='only those set aside more than S seconds ago')

    sub = command('stats', cmd_stats, 'messages per queue and tag: due, scheduled, leased, dead',
                  'For every queue you may read (--queue does not apply): per tag, the\n'
                  'messages waiting (due now) and the age of the oldest, the messages\n'
                  'scheduled for later, under a lease, and dead letters; an empty queue shows\n'
                  "one row with no tag, the empty tag shows as ''.  --json prints one JSON\n"
                  'object per row instead: {"queue","tag","waiting","oldest_created_at",\n'
                  '"oldest_age_seconds","scheduled","leased","dead"}.')
    sub.add_argument('--json', action='store_true', help='JSON lines instead of a table')

    sub = command('consumers', cmd_consumers, 'open transactions that ran a dequeue, oldest first',
                  'The open transactions that ran a dequeue on a queue (holding a message or\n'
                  'not), of every queue, oldest first.  A long one holds back VACUUM\n'
                  'in the whole database.  --json prints one JSON object per row instead:\n'
                  '{"queue","pid","xact_start","xact_age_seconds","state","application_name"}.')
    sub.add_argument('--json', action='store_true', help='JSON lines instead of a table')

    sub = command('install', cmd_install, 'install q4pg into a schema with plain SQL (no CREATE EXTENSION)',
                  'Install q4pg\'s functions into a schema with the extension\'s own scripts,\n'
                  'which this package carries, run as plain SQL in one transaction: for a\n'
                  'server whose share directory you cannot write (managed PostgreSQL).  Needs\n'
                  'only the right to create in the schema (to create it, too, when it is\n'
                  'missing).  Exit 3 when q4pg is installed in the database already, either\n'
                  'way.  Clients find the schema themselves; psql users put it on their\n'
                  'search_path.')
    sub.add_argument('--schema', default=install.DEFAULT_SCHEMA, metavar='NAME',
                     help='the schema, as it is named (not SQL syntax; default: q4pg)')
    sub.add_argument('--to', metavar='VERSION', help='the version to install (default: the newest)')

    sub = command('upgrade', cmd_upgrade, 'bring a q4pg install to the newest version',
                  'Bring q4pg, as q4pg install installed it, to the newest version this\n'
                  'package has (or --to VERSION): the extension\'s upgrade scripts, in order,\n'
                  'in one transaction.  Queues and messages stay.  Exit 0 when it is there\n'
                  'already.  An extension (CREATE EXTENSION) is updated with\n'
                  'ALTER EXTENSION q4pg UPDATE instead.')
    sub.add_argument('--to', metavar='VERSION', help='the version to reach (default: the newest)')

    sub = command('uninstall', cmd_uninstall, 'remove what q4pg install made',
                  'Remove what q4pg install made (the schema stays).  Exit 3 while queues\n'
                  '(or other objects) depend on q4pg.  --cascade removes those dependencies\n'
                  'as DROP EXTENSION q4pg CASCADE does: queue tables lose their trigger and\n'
                  'keep their messages; q4pg install and create-queue with the same settings\n'
                  'adopt them again.')
    sub.add_argument('--cascade', action='store_true',
                     help='also when queues exist: they become plain tables, messages kept')

    monitor.add_commands(command, _dsn)   # metrics, top (q4pg/monitor.py)

    width = max(len(name) for name, _ in summaries)
    parser.description = '%s\n\ncommands:\n%s' % (DESCRIPTION, '\n'.join(
        '  %s  %s' % (name.ljust(width), help) for name, help in summaries))
    return parser


# -------------------------------------------------------------------- main

class _OneLine(logging.Formatter):
    def format(self, record):
        return 'q4pg: %s: %s' % (record.levelname.lower(), _clean(record.getMessage()))


def _setup_logging():
    """The client's warnings (listen reconnecting...) as one stderr line each."""
    logger = logging.getLogger('q4pg')
    if not any(isinstance(h.formatter, _OneLine) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_OneLine())
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        _setup_logging()
        return args.func(args)
    except _Exit as e:
        if e.message is not None:
            _error(e.message)
        return e.code
    except ConnectionLost as e:
        _error(_clean(e))
        return EXIT_UNREACHABLE
    except Q4pgError as e:
        _error(_clean(e))
        return EXIT_REFUSED
    except _OutputClosed as e:
        _silence_stdout()
        if e.msg is not None:
            _error('output closed: message %s was not written and stays in the queue' % e.msg.id)
        return EXIT_NOTHING
    except BrokenPipeError:
        # The reader went away (q4pg list | head): stop quietly, as Python's
        # documentation suggests for SIGPIPE.
        _silence_stdout()
        return EXIT_NOTHING
    except KeyboardInterrupt:
        _error('interrupted')
        return EXIT_INTERRUPTED
    except Exception as e:
        if os.environ.get('Q4PG_DEBUG'):
            raise
        _error('internal error (set Q4PG_DEBUG=1 for a traceback): %s: %s'
               % (type(e).__name__, one_line(e)))
        return EXIT_REFUSED


if __name__ == '__main__':
    sys.exit(main())
