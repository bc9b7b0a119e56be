"""The q4pg command line's commands about the database rather than a queue's
messages: stats, consumers (tables), install, upgrade, uninstall.  Registered
by cli.py like those of cli_commands.py, whose helpers they use.
"""

import json
import os

from . import install
from .cli_commands import (EXIT_OK, EXIT_USAGE, _check_utf8, _clean, _Exit, _manager,
                           _write_lines)
from .db import check_dsn
from .errors import InvalidArgument, InvalidDsn

def _age(delta):
    """An interval for people: 4.2s, 3m05s, 2h07m, 3d04h."""
    if delta is None:
        return '-'
    seconds = delta.total_seconds()
    if seconds < 60:
        return '%.1fs' % max(seconds, 0.0)
    seconds = int(seconds)
    if seconds < 3600:
        return '%dm%02ds' % divmod(seconds, 60)
    if seconds < 86400:
        return '%dh%02dm' % (seconds // 3600, seconds % 3600 // 60)
    return '%dd%02dh' % (seconds // 86400, seconds % 86400 // 3600)


def _printable(text):
    """text with control characters escaped, so a table row stays one row."""
    return ''.join(ch if ch.isprintable() else ch.encode('unicode_escape').decode('ascii')
                   for ch in text)


def cmd_stats(args):
    with _manager(args, find=False, queue=False) as q:
        rows = q.stats(full=True)     # an empty queue: one row, tag None
    if args.json:
        _write_lines([json.dumps({'queue': str(queue), 'tag': tag, 'waiting': waiting,
                                  'oldest_created_at': created.isoformat() if created else None,
                                  'oldest_age_seconds': age.total_seconds() if age is not None
                                  else None,
                                  'scheduled': scheduled, 'leased': leased, 'dead': dead},
                                 ensure_ascii=False, separators=(',', ':'))
                      for queue, tag, waiting, created, age, scheduled, leased, dead in rows])
        return EXIT_OK
    _write_table(('queue', 'tag', 'waiting', 'oldest age', 'scheduled', 'leased', 'dead'),
                 'llrrrrr',
                 [(_printable(str(queue)), _tag_cell(tag), str(waiting), _age(age),
                   str(scheduled), str(leased), str(dead))
                  for queue, tag, waiting, created, age, scheduled, leased, dead in rows])
    return EXIT_OK


def _tag_cell(tag):
    """A tag in the stats table: blank for none (an empty queue), '' for the empty tag."""
    if tag is None:
        return ''
    return _printable(tag) if tag else "''"


def cmd_consumers(args):
    with _manager(args, find=False, queue=False) as q:
        rows = q.consumers()
    if args.json:
        _write_lines([json.dumps({'queue': queue, 'pid': pid,
                                  'xact_start': start.isoformat() if start else None,
                                  'xact_age_seconds': age.total_seconds() if age is not None
                                  else None,
                                  'state': state, 'application_name': app},
                                 ensure_ascii=False, separators=(',', ':'))
                      for queue, pid, start, age, state, app in rows])
        return EXIT_OK
    _write_table(('queue', 'pid', 'xact age', 'state', 'application'), 'lrrll',
                 [(_printable(queue), str(pid), _age(age), state or '', _printable(app or ''))
                  for queue, pid, start, age, state, app in rows])
    return EXIT_OK


def _dsn(args):
    """--dsn, else $Q4PG_DSN ('' leaves it to libpq's PG* variables); exit 2 when it does not parse."""
    dsn = args.dsn if args.dsn is not None else os.environ.get('Q4PG_DSN', '')
    try:
        check_dsn(dsn)
    except InvalidDsn as e:
        raise _Exit(EXIT_USAGE, _clean(e))
    return dsn


def cmd_install(args):
    schema = _check_utf8(args.schema, '--schema')
    try:
        install.check_schema(schema)
    except InvalidArgument as e:
        raise _Exit(EXIT_USAGE, _clean(e))
    version = install.install(_dsn(args), schema, args.to)
    _write_lines(['q4pg %s installed in schema %s' % (version, schema)])
    return EXIT_OK


def cmd_upgrade(args):
    dsn = _dsn(args)
    old, new = install.upgrade(dsn, args.to)
    where = install.installed(dsn)
    if old == new:
        _write_lines(['q4pg %s is installed in schema %s already: nothing to do'
                      % (new, where.schema)])
    else:
        _write_lines(['q4pg upgraded from %s to %s in schema %s' % (old, new, where.schema)])
    return EXIT_OK


def cmd_uninstall(args):
    schema = install.uninstall(_dsn(args), cascade=args.cascade)
    _write_lines(['q4pg uninstalled from schema %s (the schema stays)' % schema])
    return EXIT_OK


def _write_table(header, align, rows):
    """Prints rows of strings as aligned columns ('l'eft or 'r'ight per column)."""
    table = [header] + list(rows)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    _write_lines(['  '.join(cell.ljust(w) if a == 'l' else cell.rjust(w)
                            for cell, w, a in zip(row, widths, align)).rstrip()
                  for row in table])
