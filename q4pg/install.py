"""q4pg without CREATE EXTENSION: install, upgrade and uninstall with plain SQL.

A managed PostgreSQL lets no one put files into the server's share directory,
so CREATE EXTENSION q4pg cannot find its scripts there.  This package carries
the same scripts (sql/q4pg--<version>.sql and the upgrade scripts
sql/q4pg--<from>--<to>.sql: in the wheel's q4pg/sql/, or a checkout's sql/),
and runs them as CREATE EXTENSION would: the guard line (\\echo ... \\quit)
removed, @extschema@ replaced by the schema's quoted name, search_path set to
that schema, all in one transaction.  It needs only the right to create in
that schema.

What it made is recorded in the table <schema>.q4pg_install (db.INSTALL_TABLE,
one row): the installed version, and the objects the scripts created (as
pg_identify_object_as_address gives them; what pg_depend would record as the
extension's members).  pg_dump keeps it with the rest of the schema.  The
generated functions of queues (q4pg_<name>_*) and queue tables are never
members, as with the extension.

    install(dsn, schema='q4pg', version=None)   -> the version installed
    upgrade(dsn, version=None)                   -> (from, to)
    installed(dsn)                               -> Installed(form, schema, version), or None
    uninstall(dsn, cascade=False)                -> the schema it was in
    scripts()                                    -> the scripts this package has
"""

import importlib.resources
import re
from collections import deque
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

from psycopg2 import sql
from psycopg2.extras import Json

from . import db, hints, sqlbuild
from .errors import InvalidArgument, PermissionDenied, Q4pgError

__all__ = ['install', 'upgrade', 'uninstall', 'scripts', 'Scripts', 'Installed', 'installed']

EXTENSION = sqlbuild.EXTENSION
DEFAULT_SCHEMA = 'q4pg'
SCRIPT_NAME = sqlbuild.SCRIPT_NAME
# Characters a schema name may not hold: @extschema@ lands inside string
# literals, dollar quotes and format() strings in the scripts.
UNSAFE_IN_SCHEMA = re.compile(r'["\'$%\\\x00-\x1f\x7f]')
# Installs and upgrades of one database, one at a time (a transaction-level
# advisory lock on this key: hashtextextended('q4pg install', 0)).
LOCK = "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('q4pg install', 0))"

# The objects of a schema that stand alone (those that depend on no other
# object internally or automatically: no array types, row types, indexes,
# identity sequences), as (type, object_names, object_args).  Queues'
# generated functions (q4pg_<name>_*, their bodies marked) are left out:
# they are never q4pg's own.
OBJECTS = '''
SELECT a.type, a.object_names, a.object_args
  FROM (SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass AS classid, p.oid AS objid
          FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = %(schema)s
           AND NOT (p.proname ~ '^q4pg_'
                    AND p.prosrc LIKE '%%-- q4pg %% generated function, queue %%')
        UNION ALL
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid
          FROM pg_catalog.pg_class AS c WHERE c.relnamespace = %(schema)s
           -- a queue is its owner's, never q4pg's, even when an upgrade made its
           -- table (1.2 makes each queue a ring: a new partitioned table, slots)
           AND NOT c.relispartition
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = c.oid AND t.tgname = 'q4pg_notify')
        UNION ALL
        SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid
          FROM pg_catalog.pg_type AS t WHERE t.typnamespace = %(schema)s
        UNION ALL
        SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid
          FROM pg_catalog.pg_operator AS o WHERE o.oprnamespace = %(schema)s
       ) AS o,
       pg_catalog.pg_identify_object_as_address(o.classid, o.objid, 0) AS a
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                    WHERE d.classid = o.classid AND d.objid = o.objid
                      AND d.deptype IN ('i', 'a'))
'''

# DROP's word for each type pg_identify_object gives.
DROP_WORD = {'function': 'FUNCTION', 'procedure': 'PROCEDURE', 'aggregate': 'AGGREGATE',
             'table': 'TABLE', 'view': 'VIEW', 'materialized view': 'MATERIALIZED VIEW',
             'sequence': 'SEQUENCE', 'foreign table': 'FOREIGN TABLE', 'type': 'TYPE',
             'composite type': 'TYPE', 'domain': 'DOMAIN', 'operator': 'OPERATOR'}

Address = Tuple[str, Tuple[str, ...], Tuple[str, ...]]


def _version_key(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in version.split('.'))


class Scripts:
    """The extension's scripts: {file name: text}, and the control file's default_version."""

    def __init__(self, files: Dict[str, str], default_version: str, where: str) -> None:
        self.files = files
        self.default_version = default_version
        self.where = where
        self.versions: List[str] = []                # those with an install script
        self.upgrades: Dict[str, List[str]] = {}     # from -> [to, ...]
        for name in files:
            first, second = SCRIPT_NAME.match(name).groups()
            if second is None:
                self.versions.append(first)
            else:
                self.upgrades.setdefault(first, []).append(second)
        self.versions.sort(key=_version_key)
        if default_version not in self.versions:
            raise Q4pgError('q4pg: %s has no install script of version %s, its default_version'
                            % (where, default_version))

    def install_script(self, version: str) -> str:
        name = '%s--%s.sql' % (EXTENSION, version)
        if name not in self.files:
            raise InvalidArgument('q4pg: no install script of version %s (this package has %s)'
                                  % (version, ', '.join(self.versions)))
        return self.files[name]

    def upgrade_path(self, start: str, end: str) -> Optional[List[str]]:
        """The shortest chain of upgrade scripts from start to end (as
        ALTER EXTENSION UPDATE picks it): their file names; None when none leads there."""
        came_from: Dict[str, Optional[str]] = {start: None}
        todo = deque([start])
        while todo:
            version = todo.popleft()
            if version == end:
                path = []
                while came_from[version] is not None:
                    path.append('%s--%s--%s.sql' % (EXTENSION, came_from[version], version))
                    version = came_from[version]
                return path[::-1]
            for following in sorted(self.upgrades.get(version, []), key=_version_key):
                if following not in came_from:
                    came_from[following] = version
                    todo.append(following)
        return None


def scripts() -> Scripts:
    """The scripts this package carries: q4pg/sql/ in a wheel (tools/build_py.py
    put them there); in a checkout (pip install -e .), the checkout's sql/, the
    current version's install script built from sql/src/ when it is missing
    (sqlbuild.py, the Makefile's rule)."""
    packaged = importlib.resources.files(__package__) / 'sql'
    control_name = '%s.control' % EXTENSION
    if packaged.joinpath(control_name).is_file():
        files = {p.name: p.read_bytes() for p in packaged.iterdir() if SCRIPT_NAME.match(p.name)}
        control = packaged.joinpath(control_name).read_text(encoding='utf-8')
        where = 'the q4pg package'
    else:
        root = Path(__file__).resolve().parent.parent
        if not (root / control_name).is_file() or not (root / 'sql' / 'src').is_dir():
            raise Q4pgError('q4pg: this q4pg package carries no SQL scripts; install it from a '
                            'wheel (make wheel) or from a checkout (pip install -e .)')
        files = sqlbuild.scripts(root)
        control = (root / control_name).read_text(encoding='utf-8')
        where = str(root / 'sql')
    version = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M).group(1)
    return Scripts({name: text.decode('utf-8') for name, text in files.items()}, version, where)


def check_schema(schema: str) -> None:
    """Raises InvalidArgument unless the scripts can be run into schema `schema`."""
    if not isinstance(schema, str) or not schema:
        raise InvalidArgument('q4pg: the schema must be a non-empty name')
    if len(schema.encode('utf-8')) > 63:
        raise InvalidArgument('q4pg: schema name "%s" is longer than 63 bytes' % schema)
    if UNSAFE_IN_SCHEMA.search(schema):
        raise InvalidArgument(
            'q4pg: schema name %r cannot hold q4pg: it has a quote, $, %%, a backslash or a '
            'control character, which the scripts cannot carry' % schema)


def _script_sql(text: str, quoted_schema: str) -> str:
    """A script as CREATE EXTENSION runs it, in schema `quoted_schema`."""
    text = re.sub(r'^\\echo.*$', '', text, flags=re.M)
    # What only an extension script may do, as statements of their own (at the
    # start of a line): the tables are dumped anyway, and there is no extension
    # to add objects to or drop them from.  (Inside a function or DO block a
    # script must check for the extension itself.)
    text = re.sub(r'^SELECT\s+(pg_catalog\.)?pg_extension_config_dump\s*\([^;]*\)\s*;', '',
                  text, flags=re.I | re.M)
    text = re.sub(r'^ALTER\s+EXTENSION\s+q4pg\s+(ADD|DROP)\s[^;]*;', '', text,
                  flags=re.I | re.M)
    for unsupported in ('@extowner@', '@extschema:'):
        if unsupported in text:
            raise Q4pgError('q4pg: a script uses %s, which q4pg install does not support'
                            % unsupported)
    return text.replace('@extschema@', quoted_schema)


def _run_scripts(run: Any, schema: str, texts: List[str]) -> None:
    """Runs scripts in schema `schema` with the settings CREATE EXTENSION gives them."""
    quoted = run('SELECT pg_catalog.quote_ident(%s)', (schema,))[0][0]
    run(sql.SQL('SET LOCAL search_path TO {}').format(sql.Identifier(schema)))
    run("SET LOCAL client_min_messages TO warning")
    run('SET LOCAL check_function_bodies TO off')
    for text in texts:
        run(_script_sql(text, quoted))
    run('SET LOCAL search_path TO DEFAULT; SET LOCAL client_min_messages TO DEFAULT; '
        'SET LOCAL check_function_bodies TO DEFAULT')


def _objects(run: Any, schema: str) -> Set[Address]:
    rows = run(OBJECTS, {'schema': _schema_oid(run, schema)})
    return {(t, tuple(names), tuple(args)) for t, names, args in rows}


def _schema_oid(run: Any, schema: str) -> int:
    return run('SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s', (schema,))[0][0]


def _record(schema: str) -> sql.Composed:
    return sql.SQL('{}.{}').format(sql.Identifier(schema), sql.Identifier(db.INSTALL_TABLE))


class Installed(NamedTuple):
    """How q4pg is installed in a database: form 'extension' (CREATE EXTENSION)
    or 'sql' (q4pg install), its schema and its version."""
    form: str
    schema: str
    version: str


def _installed(run: Any) -> Optional[Installed]:
    rows = run("SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension AS e "
               "JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace "
               "WHERE e.extname = 'q4pg'")
    if rows:
        return Installed('extension', rows[0][0], rows[0][1])
    rows = run("SELECT n.nspname FROM pg_catalog.pg_class AS c "
               "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
               "WHERE c.relname = %s AND c.relkind = 'r' ORDER BY 1", (db.INSTALL_TABLE,))
    if not rows:
        return None
    schema = rows[0][0]
    version = run(sql.SQL('SELECT version FROM {}').format(_record(schema)))
    return Installed('sql', schema, version[0][0] if version else 'unknown')


def installed(dsn: str) -> Optional[Installed]:
    """How q4pg is installed in the database of `dsn`; None when it is not."""
    with db.transaction(dsn) as run:
        return _installed(run)


def _refuse_if_installed(run: Any) -> None:
    found = _installed(run)
    if found is None:
        return
    if found.form == 'extension':
        raise Q4pgError('q4pg: q4pg %s is installed in this database as an extension (CREATE '
                        'EXTENSION), in schema %s: update it with ALTER EXTENSION q4pg UPDATE'
                        % (found.version, found.schema))
    raise Q4pgError('q4pg: q4pg %s is installed in this database already, in schema %s '
                    '(q4pg upgrade updates it)' % (found.version, found.schema))


def install(dsn: str, schema: str = DEFAULT_SCHEMA, version: Optional[str] = None, *,
            source: Optional[Scripts] = None) -> str:
    """Installs q4pg's functions into `schema` (created when missing) with the
    install script of `version` (default: the newest, the control file's
    default_version); returns the version.  Refuses when q4pg is installed in
    the database already, either way.  source: other scripts than scripts()'s."""
    check_schema(schema)
    available = source or scripts()
    version = version or available.default_version
    script = available.install_script(version)
    with db.transaction(dsn) as run:
        run(LOCK)
        _refuse_if_installed(run)
        exists, role, database = run(
            'SELECT pg_catalog.to_regnamespace(pg_catalog.quote_ident(%s)) IS NOT NULL, '
            'current_user, pg_catalog.current_database()', (schema,))[0]
        try:
            if not exists:
                run(sql.SQL('CREATE SCHEMA {}').format(sql.Identifier(schema)))
            before = _objects(run, schema)
            _run_scripts(run, schema, [script])
        except PermissionDenied as e:
            hinted = hints.install_refused(e, schema, role, database, exists)
            if hinted is None:
                raise
            raise hinted from e
        members = _objects(run, schema) - before
        record = _record(schema)
        run(sql.SQL('''
CREATE TABLE {record} (
    version      text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    upgraded_at  timestamptz,
    members      jsonb NOT NULL,
    one_row      boolean PRIMARY KEY DEFAULT true CHECK (one_row)
);
COMMENT ON TABLE {record} IS {comment};
REVOKE ALL ON {record} FROM PUBLIC;
GRANT SELECT ON {record} TO PUBLIC;''').format(
            record=record, comment=sql.Literal(
                'q4pg installed without CREATE EXTENSION (q4pg install): its version, and the '
                'objects it made (q4pg upgrade and q4pg uninstall read them)')))
        run(sql.SQL('INSERT INTO {} (version, members) VALUES (%s, %s)').format(record),
            (version, Json(sorted(members))))
    return version


def upgrade(dsn: str, version: Optional[str] = None, *,
            source: Optional[Scripts] = None) -> Tuple[str, str]:
    """Brings a q4pg install (q4pg install's) to `version` (default: the
    newest) with the extension's upgrade scripts, in order, in one
    transaction; returns (from, to), equal when there was nothing to do.
    source: other scripts than scripts()'s."""
    available = source or scripts()
    target = version or available.default_version
    with db.transaction(dsn) as run:
        run(LOCK)
        found = _installed(run)
        if found is None:
            raise Q4pgError('q4pg: q4pg is not installed in this database (q4pg install '
                            'installs it)')
        if found.form == 'extension':
            raise Q4pgError('q4pg: q4pg is installed in this database as an extension (CREATE '
                            'EXTENSION), in schema %s: update it with ALTER EXTENSION q4pg '
                            'UPDATE' % found.schema)
        record = _record(found.schema)
        [(current, members)] = run(sql.SQL('SELECT version, members FROM {} FOR UPDATE')
                                   .format(record))
        if current == target:
            return current, target
        path = available.upgrade_path(current, target)
        if path is None:
            raise Q4pgError('q4pg: no upgrade path from %s to %s in %s (its upgrade scripts: %s)'
                            % (current, target, available.where,
                               ', '.join(sorted(n for n in available.files
                                                if n.count('--') == 2)) or 'none'))
        before = _objects(run, found.schema)
        _run_scripts(run, found.schema, [available.files[name] for name in path])
        after = _objects(run, found.schema)
        kept = {(t, tuple(names), tuple(args)) for t, names, args in members} & after
        run(sql.SQL('UPDATE {} SET version = %s, upgraded_at = pg_catalog.now(), members = %s')
            .format(record), (target, Json(sorted(kept | (after - before)))))
    return current, target


def uninstall(dsn: str, cascade: bool = False) -> str:
    """Drops what q4pg install made; returns its schema (which stays).

    Refuses while objects that are not q4pg's depend on it (the triggers of
    queues, a view that calls a q4pg function...), as DROP EXTENSION does.
    cascade=True drops them too, as DROP EXTENSION q4pg CASCADE: queue tables
    lose their trigger and keep their messages (q4pg install and then
    q4pg_create_queue with the queue's settings adopt them again).
    """
    with db.transaction(dsn) as run:
        run(LOCK)
        found = _installed(run)
        if found is None:
            raise Q4pgError('q4pg: q4pg is not installed in this database')
        if found.form == 'extension':
            raise Q4pgError('q4pg: q4pg is installed in this database as an extension (CREATE '
                            'EXTENSION), in schema %s: remove it with DROP EXTENSION q4pg'
                            % found.schema)
        record = _record(found.schema)
        [(members,)] = run(sql.SQL('SELECT members FROM {} FOR UPDATE').format(record))
        now = _objects(run, found.schema)
        present = [m for m in members if (m[0], tuple(m[1]), tuple(m[2])) in now]
        run('CREATE TEMP TABLE q4pg_members ON COMMIT DROP AS '
            'SELECT a.classid, a.objid FROM pg_catalog.jsonb_array_elements(%s) AS m, '
            'pg_catalog.pg_get_object_address(m->>0, ARRAY(SELECT pg_catalog.jsonb_array_elements_text(m->1)), '
            'ARRAY(SELECT pg_catalog.jsonb_array_elements_text(m->2))) AS a', (Json(present),))
        if not cascade:
            _refuse_dependents(run)
        drops = run('SELECT o.type, o.identity FROM q4pg_members AS m, '
                    'pg_catalog.pg_identify_object(m.classid, m.objid, 0) AS o')
        # functions first: a type or table of q4pg's goes after what uses it
        for kind, identity in sorted(drops, key=lambda d: (d[0] != 'function', d[1])):
            if kind not in DROP_WORD:
                raise Q4pgError('q4pg: cannot drop %s %s, which q4pg install made'
                                % (kind, identity))
            # identity: the object's name as the server quotes it (pg_identify_object)
            run('DROP %s IF EXISTS %s CASCADE' % (DROP_WORD[kind], identity))
        run('DROP TABLE q4pg_members')
        run(sql.SQL('DROP TABLE {}').format(record))
    return found.schema


def _refuse_dependents(run: Any) -> None:
    """Raises when objects that are not q4pg's depend on q4pg's (what would make
    DROP EXTENSION without CASCADE refuse)."""
    rows = run('''
SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
       (SELECT t.tgrelid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_trigger AS t
         WHERE d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND t.oid = d.objid)
  FROM pg_catalog.pg_depend AS d, q4pg_members AS m
 WHERE d.refclassid = m.classid AND d.refobjid = m.objid AND d.deptype = 'n'
   AND NOT EXISTS (SELECT FROM q4pg_members AS o WHERE o.classid = d.classid AND o.objid = d.objid)
   -- a queue's ring slots carry clones of its triggers: the queue is named once
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                    WHERE d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND t.oid = d.objid
                      AND t.tgparentid <> 0)
   -- a part of one of q4pg's objects (a policy on its table) goes with it
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS p, q4pg_members AS o
                    WHERE p.classid = d.classid AND p.objid = d.objid AND p.deptype IN ('a', 'i')
                      AND p.refclassid = o.classid AND p.refobjid = o.objid)
 ORDER BY 1''')
    if not rows:
        return
    queues = sorted({queue for _, queue in rows if queue is not None})
    others = [what for what, queue in rows if queue is None]
    if queues:
        message = ('q4pg: cannot uninstall q4pg while queues exist: %s; drop them first '
                   '(q4pg_drop_queue), or uninstall with cascade, which leaves their tables and '
                   'messages as plain tables (a later install adopts them)' % ', '.join(queues))
    else:
        message = ('q4pg: cannot uninstall q4pg: other objects depend on it: %s; drop them '
                   'first, or uninstall with cascade, which drops them' % ', '.join(others))
    raise Q4pgError(message, pgcode='2BP01')
