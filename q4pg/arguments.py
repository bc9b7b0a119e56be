"""Checks of QueueManager's constructor arguments, made before anything is sent.

docs/python.md promises that a bad argument is an InvalidArgument naming it, at
construction.  The server checks the same things again (q4pg_create_queue,
the regclass cast); these checks only bring its refusals forward, so they
must accept everything it accepts:

    sql_name(name)          the identifiers of an SQL name, read as PostgreSQL's
                            parse_ident() reads it; None when it does not parse
    check_name(what, name, most_parts)
    check_int(what, value, least, most=INT_MAX)
"""

import re
from typing import Any, List, Optional

from .errors import InvalidArgument

__all__ = ['INT_MAX', 'NAME_BYTES', 'sql_name', 'check_name', 'check_int']

INT_MAX = 2 ** 31 - 1   # an SQL integer's largest value
NAME_BYTES = 63         # NAMEDATALEN - 1: longer names are cut, q4pg_create_queue refuses them

# One part of a name: a double-quoted identifier ("" is a quote in it), or an
# unquoted one (a letter, _ or any non-ASCII character first; then digits and
# $ too), as parse_ident() reads them; white space around parts is allowed.
_PART = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*))\s*')


def sql_name(name: str) -> Optional[List[str]]:
    """The identifiers of SQL name `name` (unquoted ones in lower case), or None
    when it is no SQL name: an empty part, a stray character, an open quote."""
    parts: List[str] = []
    position = 0
    while True:
        match = _PART.match(name, position)
        if match is None:
            return None
        quoted, plain = match.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else plain.lower())
        position = match.end()
        if position == len(name):
            return parts
        if name[position] != '.':
            return None
        position += 1


def check_name(what: str, name: Any, most_parts: int) -> None:
    """Refuses what cannot be an SQL name of at most `most_parts` parts, each a
    non-empty identifier of at most NAME_BYTES bytes."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument('q4pg: %s must be a non-empty str, not %r' % (what, name))
    try:
        name.encode('utf-8')
    except UnicodeEncodeError:
        raise InvalidArgument('q4pg: %s %r is not valid UTF-8' % (what, name)) from None
    if '\0' in name:
        raise InvalidArgument('q4pg: %s %r holds a NUL character' % (what, name))
    parts = sql_name(name)
    if parts is None:
        raise InvalidArgument('q4pg: %s %r is not a valid SQL name (give name or schema.name; '
                              'double-quote a name with special characters, and close the '
                              'quotes)' % (what, name))
    if len(parts) > most_parts:
        raise InvalidArgument('q4pg: %s %r has %d dotted parts, at most %d here (give name or '
                              'schema.name; double-quote a name with dots)'
                              % (what, name, len(parts), most_parts))
    for part in parts:
        if not part:
            raise InvalidArgument('q4pg: %s %r holds an empty name ("")' % (what, name))
        if len(part.encode('utf-8')) > NAME_BYTES:
            raise InvalidArgument('q4pg: %s %r: name %r is longer than %d bytes'
                                  % (what, name, part, NAME_BYTES))


def check_int(what: str, value: Any, least: int, most: int = INT_MAX) -> None:
    """Refuses a `value` that is no int from `least` to `most`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument('q4pg: %s must be an int, not %r' % (what, value))
    if not least <= value <= most:
        raise InvalidArgument('q4pg: %s must be from %d to %d, not %d'
                              % (what, least, most, value))
