"""What the security tests build and check: a hostile schema, unpinned copies of q4pg's
functions, and calls of every q4pg function with hostile arguments.

evil_schema_sql(conn) returns the SQL of schema "evil", which shadows, with the
very same signatures, every pg_catalog function, aggregate and comparison or
concatenation operator the extension's function bodies call (found by reading
their source from pg_proc, so a function added later is covered too), plus
overloads of format() for the argument types q4pg passes it (format's own
signature, VARIADIC "any", cannot be copied in SQL).  Every shadow raises
SQLSTATE EV1L0: any call of one is an error no handler in q4pg catches.

temp_shadows_sql(conn) returns the SQL of temporary tables named like the
catalogs the extension reads (pg_trigger, ...): an unqualified name would find
them first if a function did not put pg_catalog before pg_temp.

check_hostile_call() calls one q4pg function with given (hostile) arguments and
fails unless the call was refused with a clean error or did exactly its job,
and nothing else in the database changed.
"""

import re

import psycopg2

from tests.helpers import members_sql
from tests.reliability.helpers import assert_unchanged, fingerprint

EVIL = 'EV1L0'

RAISE_BODY = ("BEGIN RAISE EXCEPTION 'evil %s ran' USING ERRCODE = '" + EVIL + "'; END")

# format(text, VARIADIC "any") cannot be shadowed as such: overloads for what q4pg passes
FORMAT_SIGNATURES = [
    ('text', 'text'), ('text', 'text', 'text'), ('text', 'name', 'name'),
    ('text', 'integer'), ('text', 'bigint'), ('text', 'regclass'), ('text', 'regclass', 'text'),
    ('text', 'regclass', 'regtype'), ('text', 'text', 'integer'), ('text', 'text', 'regtype'),
    ('text', 'text', 'text', 'regtype', 'text', 'integer'),
    ('text', 'name', 'name', 'regtype', 'text', 'integer'),
]

OPERATORS = ('=', '<>', '<', '>', '<=', '>=', '~', '!~', '||', '~~')
PLAIN_TYPES = ('text', 'name', 'integer', 'bigint', 'smallint', 'oid', '"char"', 'boolean',
               'timestamp with time zone', 'numeric', 'regclass', 'regtype', 'regprocedure',
               'text[]', 'name[]', 'oid[]', 'bigint[]', 'integer[]', 'character varying')
POLYMORPHIC = ('anyelement', 'anyarray', 'anynonarray', 'anycompatible', 'anycompatiblearray')


def extension_functions(cur):
    """[(oid, name, identity arguments, source)] of every function of the q4pg extension."""
    cur.execute("""
        SELECT p.oid, p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc
          FROM pg_catalog.pg_proc AS p
         WHERE (p.tableoid, p.oid) IN (%s)
         ORDER BY p.proname""" % members_sql(cur))
    return cur.fetchall()


def called_names(cur):
    """Names of pg_catalog functions and relations the extension's bodies mention."""
    words = set()
    for _, _, _, src in extension_functions(cur):
        words |= {w.lower() for w in re.findall(r'\b([A-Za-z_][A-Za-z0-9_]*)\b', src)}
    cur.execute("SELECT DISTINCT proname FROM pg_catalog.pg_proc "
                "WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY (%s)",
                (sorted(words),))
    functions = sorted(r[0] for r in cur.fetchall())
    cur.execute("SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = 'pg_catalog'::regnamespace "
                "AND relkind IN ('r', 'v') AND relname = ANY (%s)", (sorted(words),))
    relations = sorted(r[0] for r in cur.fetchall())
    return functions, relations


def evil_schema_sql(cur):
    functions, _ = called_names(cur)
    stmts = ['CREATE SCHEMA evil']
    n = 0
    cur.execute("""
        SELECT p.proname, p.prokind, p.proretset,
               ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t),
               format_type(p.prorettype, NULL), p.provariadic <> 0, p.pronargdefaults,
               pg_get_function_arguments(p.oid)
          FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY (%s)
           AND p.proallargtypes IS NULL""", (functions,))
    for name, kind, retset, argtypes, rettype, variadic, ndefaults, arguments in cur.fetchall():
        allowed = PLAIN_TYPES + POLYMORPHIC + ('void',)
        if any(t not in allowed for t in argtypes) or rettype not in allowed + ('text[]',):
            continue
        if kind == 'f':
            stmts.append('CREATE FUNCTION evil.%s(%s) RETURNS %s%s LANGUAGE plpgsql AS $e$%s$e$'
                         % (quote(name), arguments, 'SETOF ' if retset else '', rettype,
                            RAISE_BODY % name))
        elif kind == 'a' and not any(t in POLYMORPHIC for t in argtypes):
            n += 1
            state = rettype
            sfunc = 'evil.agg_step_%d' % n
            final = 'evil.agg_final_%d' % n
            stmts.append('CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE plpgsql AS $e$%s$e$'
                         % (sfunc, ', '.join((state,) + tuple(argtypes)), state,
                            RAISE_BODY % name))
            stmts.append('CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE plpgsql AS $e$%s$e$'
                         % (final, state, rettype, RAISE_BODY % name))
            stmts.append('CREATE AGGREGATE evil.%s(%s) (SFUNC = %s, STYPE = %s, FINALFUNC = %s%s)'
                         % (quote(name), ', '.join(argtypes) or '*', sfunc, state, final,
                            ", INITCOND = '0'" if state in ('bigint', 'integer') else ''))
    if 'format' in functions:
        for sig in FORMAT_SIGNATURES:
            stmts.append('CREATE FUNCTION evil.format(%s) RETURNS text LANGUAGE plpgsql '
                         'AS $e$%s$e$' % (', '.join(sig), RAISE_BODY % 'format'))
    cur.execute("""
        SELECT o.oprname, format_type(o.oprleft, NULL), format_type(o.oprright, NULL),
               format_type(o.oprresult, NULL)
          FROM pg_catalog.pg_operator AS o
         WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprname = ANY (%s)
           AND o.oprleft <> 0 AND o.oprright <> 0""", (list(OPERATORS),))
    for op, left, right, result in cur.fetchall():
        if left not in PLAIN_TYPES + POLYMORPHIC or right not in PLAIN_TYPES + POLYMORPHIC:
            continue
        if result not in PLAIN_TYPES + POLYMORPHIC:
            continue
        n += 1
        fn = 'evil.op_%d' % n
        stmts.append('CREATE FUNCTION %s(%s, %s) RETURNS %s LANGUAGE plpgsql AS $e$%s$e$'
                     % (fn, left, right, result, RAISE_BODY % op))
        stmts.append('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)'
                     % (op, left, right, fn))
    return stmts


def temp_shadows_sql(cur):
    _, relations = called_names(cur)
    return ['CREATE TEMP TABLE %s (evil text)' % quote(r) for r in relations]


def quote(name):
    return '"%s"' % name.replace('"', '""')


# The hot path: unpinned on purpose (a pinned search_path costs a catalog lookup per
# call); every name, type and operator in it is qualified (tests/sql/lint.sql).
HOT_PATH = {'q4pg_route', 'q4pg_enqueue', 'q4pg_enqueue_many', 'q4pg_dequeue',
            'q4pg_dequeue_many', 'q4pg_cancel', 'q4pg_take', 'q4pg_done', 'q4pg_done_many',
            'q4pg_fail', 'q4pg_give_back',
            'q4pg_lease', 'q4pg_ack', 'q4pg_nack', 'q4pg_extend'}


def unpinned_copies_sql(cur):
    """SQL that copies every pinned q4pg function whose body is parsed when it runs
    into schema "unpinned", without its SET search_path; and the names it copied.
    (Functions with SQL-standard bodies are bound when they are created: a
    search_path cannot reach them, pinned or not.)"""
    stmts = ['CREATE SCHEMA unpinned']
    copied = set()
    for oid, name, _, src in extension_functions(cur):
        if name in HOT_PATH or not src:
            continue
        cur.execute('SELECT pg_get_functiondef(%s)', (oid,))
        text = cur.fetchone()[0]
        head, _, rest = text.partition('(')
        head = re.sub(r'FUNCTION \S+\.', 'FUNCTION unpinned.', head)
        lines = [line for line in (head + '(' + rest).split('\n')
                 if not line.strip().upper().startswith('SET SEARCH_PATH')]
        assert len(lines) < len((head + '(' + rest).split('\n')), 'no SET search_path in ' + name
        stmts.append('\n'.join(lines))
        copied.add(name)
    return stmts, copied


def sqlstate_or_rows(cur, statement, args=()):
    """('ok', rows) or ('error', SQLSTATE): the outcome of one statement (autocommit)."""
    try:
        cur.execute(statement, args)
        return ('ok', cur.fetchall() if cur.description else None)
    except psycopg2.Error as e:
        return ('error', e.pgcode)


# SQLSTATEs a refusal may carry: all of them say what was wrong with the input
CLEAN_ERRORS = {
    '22P02',  # invalid_text_representation (bad JSON, bad array)
    '22001',  # string_data_right_truncation (too long)
    '22004', '23502',  # null
    '22021', '22P05',  # bad encoding, \u0000 in jsonb
    '22023',  # invalid_parameter_value
    '42602', '42622',  # invalid_name, name_too_long
    '3F000',  # invalid_schema_name
    '42P01', '42P07',  # no such queue / exists with other settings
    '42809',  # wrong_object_type (a table that has no queue's shape)
    '55000', '55006',  # a queue of 1.0's shape; a message under a live lease
    '42501',  # insufficient_privilege
    '2202E',  # array_subscript_error
}


def function_arguments(cur):
    """[(function, [(argument name, type)])] of every q4pg function but the trigger."""
    cur.execute("""
        SELECT p.proname,
               ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t),
               coalesce(p.proargnames[1:p.pronargs], '{}')
          FROM pg_proc AS p
         WHERE (p.tableoid, p.oid) IN (%s) AND p.prorettype <> 'trigger'::regtype
         ORDER BY 1""" % members_sql(cur))
    return [(name, list(zip(names, types))) for name, types, names in cur.fetchall()]


# A valid value for every argument name of every q4pg function (the public ones,
# then the internal ones), for calls that make one argument hostile at a time
VALID = {'queue': 'inj.q', 'tag': 't', 'data': '{"a": 1}', 'data_type': 'json',
         'data_length': 100, 'schema_name': 'inj', 'table_name': 'inj.made', 'n': 2, 'id': 1,
         'p_queue': 'inj.q', 'p_table': 'inj.q', 'p_tag': 't', 'p_kind': 'barrier',
         'p_qualified_name': 'inj.q', 'p_lock_key': 1, 'p_schema': 'inj', 'p_name': 'inj.q',
         'p_data_type': 'json', 'p_data_length': 100,
         'run_at': None, 'token': '00000000-0000-0000-0000-000000000000', 'error': 'e',
         'retry_in': '1 second', 'max_attempts': 3, 'lease': '1 second',
         'include_scheduled': True, 'ids': None, 'older_than': '1 hour', 'p_max_attempts': 3,
         'p_key': 1, 'p_state': 'due', 'p_alias': 's', 'p_template': 'a {{b}} c',
         'p_values': '{"b": "d"}', 'p_snippets': '{}', 'p_what': 'slots', 'tags': 5, 'xids': 1000,
         'counts': True, 'expired_leases': 1, 'p_slots': None, 'p_ring': 0, 'p_live': 0, 'own_channel': True,
         'hand_over': True, 'p_pid': 1, 'p_count': 1, 'p_shared': True, 'p_channel': 'c'}
HOSTILE_TYPES = ('text', 'name', 'regclass', 'text[]')


def call(cur, function, arguments, values):
    """Calls function with values (by argument name); ('ok', rows) or ('error', SQLSTATE)."""
    placeholders = []
    args = []
    for name, typ in arguments:
        placeholders.append('(%s)::' + typ)
        value = values[name]
        if typ == 'text[]' and not isinstance(value, list):
            value = [value]
        args.append(value)
    return sqlstate_or_rows(cur, 'SELECT * FROM %s(%s)' % (function, ', '.join(placeholders)),
                            args)


def check_hostile_call(conn, function, arguments, values, before, exclude_schemas=('inj',)):
    """One call with hostile values; fails unless it is refused cleanly or does only
    its job, and nothing outside exclude_schemas (where the queue inj.q lives)
    changed (before: their fingerprint, which must not change).  Returns the outcome."""
    with conn.cursor() as cur:
        cur.execute("SELECT q4pg_create_queue('inj.q', 'json', 100)")
        cur.execute("SELECT q4pg_enqueue_many('inj.q', 't', ARRAY['1', '2'])")
        # a regclass argument is parsed and looked up by PostgreSQL before q4pg runs:
        # what that refuses, it refuses with its own error (e.g. 42601 for 'a.b.c.d')
        type_errors = set()
        for name, typ in arguments:
            if typ == 'regclass':
                checked = sqlstate_or_rows(cur, 'SELECT %s::regclass', (values[name],))
                if checked[0] == 'error':
                    type_errors.add(checked[1])
        outcome = call(cur, function, arguments, values)
        if outcome[0] == 'error' and type_errors:
            assert outcome[1] in type_errors, (function, values, outcome)
        elif outcome[0] == 'error':
            assert outcome[1] in CLEAN_ERRORS, (function, values, outcome)
        elif function == 'q4pg_create_queue':
            # it made exactly the table the name says, nothing else
            (made,) = outcome[1][0]
            cur.execute('SELECT n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n '
                        'ON n.oid = c.relnamespace WHERE c.oid = %s::regclass', (made,))
            schema, table = cur.fetchone()
            cur.execute('SELECT parse_ident(%s), pg_my_temp_schema()::regnamespace::text',
                        (values['table_name'],))
            parts, temp_schema = cur.fetchone()
            expected = parts if len(parts) == 2 else [values['schema_name'], parts[0]]
            if expected[0] == 'pg_temp':      # a temporary queue: legal, if odd
                expected[0] = temp_schema
            assert [schema, table] == expected
            cur.execute('SELECT q4pg_drop_queue(%s)', (made,))
        elif function == 'q4pg_enqueue':
            cur.execute('SELECT tag, data::text FROM inj.q WHERE id = %s', (outcome[1][0][0],))
            assert cur.fetchone() == (values['tag'], values['data'])
        # run-time state a call may legitimately leave: this session registered as a
        # waiting listener (q4pg_register_idle); gone with the session, forgotten here
        cur.execute("SELECT to_regclass('q4pg_idle_listeners') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute('DELETE FROM q4pg_idle_listeners WHERE pid = pg_backend_pid()')
            cur.execute('SELECT pg_advisory_unlock_all()')
        assert_unchanged(before, fingerprint(conn, exclude_schemas),
                         'by %s(%r): %r' % (function, values, outcome))
        return outcome


