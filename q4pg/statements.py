"""The SQL text of every call the clients make, driver-neutral: both front ends
(db.py's psycopg2 layer under QueueManager, aio.py's psycopg 3 one under
AsyncQueueManager) send these same texts, with %s parameters bound by the
driver.  The queue is always the first parameter.  Type names in casts are
qualified with pg_catalog, so that a caller's search_path cannot swap them.

Standard library only: importing it loads no driver.
"""

# The queue goes as text and becomes a regclass when the query runs: a literal
# cast straight to regclass would be resolved while the query is parsed, before
# the function is looked up, and a database without q4pg would answer 'relation
# "mq" does not exist' instead of 'function q4pg_... does not exist'.
_RUN_AT = ('COALESCE(%s::pg_catalog.timestamptz, pg_catalog.statement_timestamp() '
           'OPERATOR(pg_catalog.+) %s::pg_catalog.interval)')
CREATE_QUEUE = ('SELECT q4pg_create_queue(%s::pg_catalog.text, %s::pg_catalog.text, '
                '%s::integer)')
ENQUEUE = ('SELECT q4pg_enqueue(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
           '%s::pg_catalog.text)')
ENQUEUE_MANY = ('SELECT * FROM q4pg_enqueue_many(%s::pg_catalog.text::pg_catalog.regclass, '
                '%s::pg_catalog.text, %s::pg_catalog.text[])')
# 1.1: a due time.  `run_at` is an absolute time (timestamptz; a naive datetime is read
# in the session's TimeZone) or, when NULL, now plus `delay` (an interval; NULL: now).
ENQUEUE_AT = ('SELECT q4pg_enqueue(%s::pg_catalog.text::pg_catalog.regclass, '
              '%s::pg_catalog.text, %s::pg_catalog.text, ' + _RUN_AT + ')')
ENQUEUE_MANY_AT = ('SELECT * FROM q4pg_enqueue_many(%s::pg_catalog.text::pg_catalog.regclass, '
                   '%s::pg_catalog.text, %s::pg_catalog.text[], ' + _RUN_AT + ')')
DEQUEUE = ('SELECT id, tag, data, created_at '
           'FROM q4pg_dequeue(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)')
DEQUEUE_MANY = ('SELECT id, tag, data, created_at '
                'FROM q4pg_dequeue_many(%s::pg_catalog.text::pg_catalog.regclass, '
                '%s::pg_catalog.text, %s::integer)')
LIST = ('SELECT id, tag, data, created_at '
        'FROM q4pg_list(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
        '%s::integer)')
COUNT = 'SELECT q4pg_count(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)'
# 1.1: list and count with or without the messages not due yet.
LIST_DUE = ('SELECT id, tag, data, created_at, run_at, attempts, last_error, leased_until '
            'FROM q4pg_list(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
            '%s::integer, %s::boolean)')
COUNT_DUE = ('SELECT q4pg_count(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
             '%s::boolean)')
CANCEL = 'SELECT q4pg_cancel(%s::pg_catalog.text::pg_catalog.regclass, %s::bigint)'
CHANNEL = 'SELECT q4pg_channel(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text)'
# The LISTEN connection's own channel (q4pg 1.2: producers wake it alone); a
# server without q4pg_own_channel (1.0, 1.1) raises 42883: the shared channel then.
OWN_CHANNEL = ('SELECT q4pg_own_channel(%s::pg_catalog.text::pg_catalog.regclass, '
               '%s::pg_catalog.text)')
# For ListenConnection.call: they run only in the server session that LISTENs
# (its pid is the last parameter), so a pooler that hands the listener another
# session registers nothing there.
REGISTER_IDLE = ('SELECT q4pg_register_idle(%s::pg_catalog.text::pg_catalog.regclass, '
                 '%s::pg_catalog.text) '
                 'WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) %s')
UNREGISTER_IDLE = ('SELECT q4pg_unregister_idle(%s::pg_catalog.text::pg_catalog.regclass, '
                   '%s::pg_catalog.text) '
                   'WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) %s')
# Leaving for good, on an own channel: a wake-up meant for us goes to another listener.
UNREGISTER_HAND_OVER = ('SELECT q4pg_unregister_idle(%s::pg_catalog.text::pg_catalog.regclass, '
                        '%s::pg_catalog.text, true) '
                        'WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) %s')
CREATE_QUEUE_MAX = ('SELECT q4pg_create_queue(%s::pg_catalog.text, %s::pg_catalog.text, '
                    '%s::integer, max_attempts => %s::integer)')
# Drops the queue when the name resolves to a table (no row otherwise).
DROP_QUEUE = ('SELECT q4pg_drop_queue(r) FROM (SELECT pg_catalog.to_regclass(%s::pg_catalog.text) '
              'AS r) AS s WHERE r IS NOT NULL')
SET_MAX_ATTEMPTS = ('SELECT q4pg_set_max_attempts(%s::pg_catalog.text::pg_catalog.regclass, '
                    '%s::integer)')
# Transactional mode with failure counting (with dequeue(), listen()): DEQUEUE
# removes a message inside a transaction, which commits on success (one round
# trip each way); on failure FAIL puts it back with the failure counted before
# that transaction commits.  A batch (with
# dequeue_many()) is taken (TAKE: locked, not removed) and removed at commit
# (DONE, in COMMIT's round trip): the server's copy of a removed batch, which
# FAIL would need, cost more than locking it.
TAKE = ('SELECT id, tag, data, created_at, attempts, last_error '
        'FROM q4pg_take(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text, '
        '%s::integer)')
DONE = 'SELECT q4pg_done_many(%s::pg_catalog.text::pg_catalog.regclass, %s::bigint[])'
FAIL = ('SELECT i, q4pg_fail(%s::pg_catalog.text::pg_catalog.regclass, i, %s::pg_catalog.text, '
        'NULL::pg_catalog.interval, %s::integer) FROM pg_catalog.unnest(%s::bigint[]) AS i')
# Leases.
LEASE = ('SELECT id, tag, data, created_at, attempts, last_error, lease_token::pg_catalog.text, '
         'lease_until FROM q4pg_lease(%s::pg_catalog.text::pg_catalog.regclass, '
         '%s::pg_catalog.text, %s::integer, %s::pg_catalog.interval)')
ACK = ('SELECT q4pg_ack(%s::pg_catalog.text::pg_catalog.regclass, %s::bigint, '
       '%s::pg_catalog.text::pg_catalog.uuid)')
NACK = ('SELECT q4pg_nack(%s::pg_catalog.text::pg_catalog.regclass, %s::bigint, '
        '%s::pg_catalog.text::pg_catalog.uuid, %s::pg_catalog.interval, %s::pg_catalog.text)')
EXTEND = ('SELECT q4pg_extend(%s::pg_catalog.text::pg_catalog.regclass, %s::bigint, '
          '%s::pg_catalog.text::pg_catalog.uuid, %s::pg_catalog.interval)')
# The ids of the (id, token) pairs whose lease q4pg_extend refused.
EXTEND_MANY = ('SELECT i FROM ROWS FROM (pg_catalog.unnest(%s::bigint[]), '
               'pg_catalog.unnest(%s::pg_catalog.text[])) AS l(i, t) '
               'WHERE q4pg_extend(%s::pg_catalog.text::pg_catalog.regclass, i, '
               't::pg_catalog.uuid, %s::pg_catalog.interval) IS NULL')
# Seconds from now until the tag's next message comes due (NULL: none scheduled).
_DUE_IN = ('pg_catalog.date_part(\'epoch\', '
           'q4pg_next_due(%s::pg_catalog.text::pg_catalog.regclass, %s::pg_catalog.text) '
           'OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())')
# A listener's registration (q4pg_go_idle: 'ask_again', 'producer_running' or
# 'may_sleep'), and when the next message comes due, in one round trip.
# For ListenConnection.row, like REGISTER_IDLE (the server pid is its last parameter).
GO_IDLE_DUE = ('SELECT q4pg_go_idle(%s::pg_catalog.text::pg_catalog.regclass, '
               '%s::pg_catalog.text), ' + _DUE_IN +
               ' WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) %s')
# The same on an own channel (q4pg_own_channel).
GO_IDLE_OWN_DUE = ('SELECT q4pg_go_idle(%s::pg_catalog.text::pg_catalog.regclass, '
                   '%s::pg_catalog.text, true), ' + _DUE_IN +
                   ' WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) %s')
# When the next message comes due, alone (a listener that stayed registered).
DUE_IN = ('SELECT ' + _DUE_IN + ' WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) %s')
NEXT_DUE_AT = ('SELECT q4pg_next_due(%s::pg_catalog.text::pg_catalog.regclass, '
               '%s::pg_catalog.text)')
# Dead letters.
DEAD_LETTERS = ('SELECT id, tag, data, created_at, attempts, last_error, dead_at '
                'FROM q4pg_dead_letters(%s::pg_catalog.text::pg_catalog.regclass, '
                '%s::pg_catalog.text, %s::integer)')
REPLAY = ('SELECT q4pg_replay(%s::pg_catalog.text::pg_catalog.regclass, %s::bigint[], '
          '%s::pg_catalog.text)')
PURGE_DEAD = ('SELECT q4pg_purge_dead(%s::pg_catalog.text::pg_catalog.regclass, '
              '%s::pg_catalog.text, %s::pg_catalog.interval)')
QUEUE_SETTINGS = ('SELECT data_type, data_length '
                  'FROM q4pg_queue_settings(%s::pg_catalog.text::pg_catalog.regclass)')
QUEUES = 'SELECT queue::pg_catalog.text, data_type, data_length FROM q4pg_queues()'
STATS = ('SELECT queue::pg_catalog.text, tag, waiting, oldest_created_at, oldest_age '
         'FROM q4pg_stats()')
STATS_FULL = ('SELECT queue::pg_catalog.text, tag, waiting, oldest_created_at, oldest_age, '
              'scheduled, leased, dead FROM q4pg_stats()')
QUEUES_FULL = 'SELECT queue::pg_catalog.text, data_type, data_length, max_attempts FROM q4pg_queues()'
CONSUMERS = ('SELECT queue::pg_catalog.text, pid, xact_start, xact_age, state, application_name '
             'FROM q4pg_consumers()')

# -- the direct door (q4pg 1.2) -------------------------------------------------
# A queue's generated functions (sql/src/40_queue_functions.sql), called by
# name without the generic function's dispatch.  q4pg_door(queue) answers
# the name prefix this session may call ('public.q4pg_jobs_', safe to splice
# into SQL text as it is; made or rebuilt first); a server without it (1.0,
# 1.1) gets the generic calls above.  CONNECT says whether the server has it.
# A door function whose table was renamed, dropped or restored raises 55000
# ('q4pg: ...') and does nothing: door.py asks again.
DOOR_FUNCTION = 'q4pg_door'
DOOR = 'SELECT ' + DOOR_FUNCTION + '(%s::pg_catalog.text::pg_catalog.regclass)'
# Each hot-path statement above through the door: the text ({door}: the
# prefix; $1...$n: the statement's parameters without the queue, in their
# order, each once), their types, and where the queue is among the generic
# statement's parameters.  door.py prepares them (PREPARE name(types) AS ...)
# or, where prepared statements do not survive, sends $n as %s::type.
_AT = ('COALESCE($3, pg_catalog.statement_timestamp() OPERATOR(pg_catalog.+) $4)')
_T, _TA, _I, _B, _BA = ('pg_catalog.text', 'pg_catalog.text[]', 'integer', 'bigint',
                         'bigint[]')
_S, _TS = 'pg_catalog.interval', 'pg_catalog.timestamptz'
DOORS = {
    ENQUEUE: ('SELECT {door}enqueue($1, $2, NULL)', (_T, _T), 0),
    ENQUEUE_AT: ('SELECT {door}enqueue($1, $2, ' + _AT + ')', (_T, _T, _TS, _S), 0),
    ENQUEUE_MANY: ('SELECT * FROM {door}enqueue_many($1, $2, NULL)', (_T, _TA), 0),
    ENQUEUE_MANY_AT: ('SELECT * FROM {door}enqueue_many($1, $2, ' + _AT + ')',
                      (_T, _TA, _TS, _S), 0),
    DEQUEUE: ('SELECT id, tag, data, created_at FROM {door}dequeue($1)', (_T,), 0),
    DEQUEUE_MANY: ('SELECT id, tag, data, created_at FROM {door}dequeue_many($1, $2)',
                   (_T, _I), 0),
    TAKE: ('SELECT id, tag, data, created_at, attempts, last_error FROM {door}take($1, $2)',
           (_T, _I), 0),
    DONE: ('SELECT {door}done_many($1)', (_BA,), 0),
    FAIL: ('SELECT i, {door}fail(i, $1, NULL::pg_catalog.interval, $2) '
           'FROM pg_catalog.unnest($3) AS i', (_T, _I, _BA), 0),
    CANCEL: ('SELECT {door}cancel($1)', (_B,), 0),
    LEASE: ('SELECT id, tag, data, created_at, attempts, last_error, '
            'lease_token::pg_catalog.text, lease_until FROM {door}lease($1, $2, $3)',
            (_T, _I, _S), 0),
    ACK: ('SELECT {door}ack($1, $2::pg_catalog.uuid)', (_B, _T), 0),
    NACK: ('SELECT {door}nack($1, $2::pg_catalog.uuid, $3, $4)', (_B, _T, _S, _T), 0),
    EXTEND: ('SELECT {door}extend($1, $2::pg_catalog.uuid, $3)', (_B, _T, _S), 0),
    EXTEND_MANY: ('SELECT i FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) '
                  'AS l(i, t) WHERE {door}extend(i, t::pg_catalog.uuid, $3) IS NULL',
                  (_BA, _TA, _S), 2),
}

# A database where q4pg was installed without CREATE EXTENSION (q4pg install)
# has this table in q4pg's schema: the installed version, and what the install made.
INSTALL_TABLE = 'q4pg_install'
# Run on every new connection: puts the schema of q4pg's functions (the
# extension's, or that of q4pg install) first on the session's search_path
# when it is not on it, so that the calls above find them.  Queue names are
# then looked up there first too, and new queues go there (q4pg's schema is
# where a role that may create in no other schema keeps its queues).
FIND_Q4PG = (
    "SELECT pg_catalog.set_config('search_path', pg_catalog.concat_ws(', ', "
    "pg_catalog.quote_ident(s.nspname), NULLIF(pg_catalog.current_setting("
    "'search_path'), '')), false) "
    'FROM (SELECT n.nspname FROM pg_catalog.pg_extension AS e, pg_catalog.pg_namespace AS n '
    "WHERE e.extname OPERATOR(pg_catalog.=) 'q4pg' AND n.oid OPERATOR(pg_catalog.=) e.extnamespace "
    'UNION ALL SELECT n.nspname FROM pg_catalog.pg_class AS c, pg_catalog.pg_namespace AS n '
    "WHERE c.relname OPERATOR(pg_catalog.=) '" + INSTALL_TABLE + "' "
    "AND c.relkind OPERATOR(pg_catalog.=) 'r' AND n.oid OPERATOR(pg_catalog.=) c.relnamespace "
    'LIMIT 1) AS s '
    'WHERE s.nspname OPERATOR(pg_catalog.<>) ALL (pg_catalog.current_schemas(false))')
# What a new connection runs: FIND_Q4PG, and in the same round trip whether the
# database's q4pg is 1.0 (its functions, and none of 1.1's such as q4pg_lease),
# which v10.py serves the 1.0 way, whether it has the direct door, and the
# server's pid of the session (a pooler shows libpq another one).
CONNECT = ('SELECT (' + FIND_Q4PG + ') IS NOT NULL, '
           "EXISTS (SELECT FROM pg_catalog.pg_proc AS p "
           "WHERE p.proname OPERATOR(pg_catalog.=) 'q4pg_enqueue') "
           "AND NOT EXISTS (SELECT FROM pg_catalog.pg_proc AS p "
           "WHERE p.proname OPERATOR(pg_catalog.=) 'q4pg_lease'), "
           "EXISTS (SELECT FROM pg_catalog.pg_proc AS p "
           "WHERE p.proname OPERATOR(pg_catalog.=) '" + DOOR_FUNCTION + "'), "
           'pg_catalog.pg_backend_pid()')

__all__ = sorted(name for name in dir() if name.isupper() and not name.startswith('_'))
