"""What to do next, added to the server's refusals where its message alone
leaves a new user stuck (q4pg install without rights to create a schema,
create-queue in a schema that does not exist).

Each function takes the q4pg error the server's refusal became and returns a
new one of the same class, with the server's SQLSTATE and message kept
(.pgcode, .pgerror) and the hint added to the text; or None when the refusal
is not the one it knows.
"""

from typing import Optional, TypeVar

from .errors import Q4pgError

__all__ = ['install_refused', 'schema_missing']

E = TypeVar('E', bound=Q4pgError)


def _ident(name: str) -> str:
    """`name` as an SQL identifier, double-quoted when it needs it (for the hints' SQL)."""
    if name.isidentifier() and name.isascii() and name == name.lower():
        return name
    return '"%s"' % name.replace('"', '""')


def _with(error: E, text: str) -> E:
    return type(error)('%s. %s' % (str(error).rstrip('.'), text),
                       pgcode=error.pgcode, pgerror=error.pgerror)


def install_refused(error: E, schema: str, role: str, database: str,
                    schema_exists: bool) -> Optional[E]:
    """q4pg install refused with 42501: the role may not create schema `schema`
    in the database, or may not create in `schema`."""
    if error.pgcode != '42501':
        return None
    names = {'schema': _ident(schema), 'database': _ident(database), 'role': _ident(role)}
    if not schema_exists:
        return _with(error, (
            'q4pg install creates schema %(schema)s, which needs the CREATE privilege on '
            'database %(database)s. Install into a schema you may create in (q4pg install '
            '--schema <schema>), or ask a DBA to create the schema for you (CREATE SCHEMA '
            '%(schema)s AUTHORIZATION %(role)s) or to grant you CREATE on the database (GRANT '
            'CREATE ON DATABASE %(database)s TO %(role)s)') % names)
    return _with(error, (
        'q4pg install creates its functions and tables in schema %(schema)s, which needs the '
        'CREATE privilege on it. Install into a schema you may create in (q4pg install '
        '--schema <schema>), or ask a DBA to GRANT USAGE, CREATE ON SCHEMA %(schema)s TO '
        '%(role)s') % names)


def schema_missing(error: E, queue: str) -> Optional[E]:
    """Creating queue `queue` refused with 3F000: its schema does not exist."""
    if error.pgcode != '3F000' or 'does not exist' not in (error.pgerror or ''):
        return None
    text = error.pgerror or ''
    schema = text.split('"')[1] if text.count('"') >= 2 else None
    return _with(error, (
        'Queue %s needs it: create the schema first (CREATE SCHEMA %s, as a role that may), '
        'or give the queue a schema that exists'
        % (queue, _ident(schema) if schema else '<schema>')))
