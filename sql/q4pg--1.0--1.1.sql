\echo Use "ALTER EXTENSION q4pg UPDATE TO '1.1'" to load this file. \quit

-- q4pg 1.0 -> 1.1: scheduled messages, attempts and dead letters, leases.
--
-- The Makefile builds sql/q4pg--1.0--1.1.sql from this file: at the line
-- "-- @functions@" below, every function of sql/src/ comes in as CREATE OR
-- REPLACE (one source for both scripts), and at "-- @include <file>" that
-- file of sql/src/ as it is (state new in 1.1).  What is here by hand: what must go
-- before them (functions whose arguments or results changed are dropped,
-- their dependents first) and after them (every queue table gets 1.1's
-- columns, index and generated functions, its messages kept).
--
-- Who may run it: ALTER TABLE on every queue table, so a role that owns them
-- all or is a member of their owners (a superuser).  It checks that first.

DO $$
DECLARE
    v_refused text;
BEGIN
    SELECT string_agg(format('%s (owner %s)', t.tgrelid::regclass, c.relowner::regrole), ', '
                      ORDER BY t.tgrelid::regclass::text)
      INTO v_refused
      FROM pg_catalog.pg_trigger AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
     WHERE t.tgname = 'q4pg_notify'
       AND t.tgfoid = '@extschema@.q4pg_notify()'::pg_catalog.regprocedure
       AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE');
    IF v_refused IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: updating to 1.1 alters every queue table, and % may not alter %',
                current_user, v_refused
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run ALTER EXTENSION q4pg UPDATE as a superuser or as a member of those owners.';
    END IF;
END
$$;

DROP FUNCTION @extschema@.q4pg_route(regclass);
DROP FUNCTION @extschema@.q4pg_build_route(regclass, text);
DROP FUNCTION @extschema@.q4pg_consumers();
DROP FUNCTION @extschema@.q4pg_queues();
DROP FUNCTION @extschema@.q4pg_queue_settings(regclass);
DROP FUNCTION @extschema@.q4pg_channel(regclass, text);
DROP FUNCTION @extschema@.q4pg_queue_functions_current(regclass, regnamespace);
DROP FUNCTION @extschema@.q4pg_queue_info(regclass);
DROP FUNCTION @extschema@.q4pg_queue_shape(regclass);
DROP FUNCTION @extschema@.q4pg_queue_triggers(regclass);
DROP FUNCTION @extschema@.q4pg_queue_function_names();
DROP FUNCTION @extschema@.q4pg_queue_function_marker(text, text, integer);
DROP FUNCTION @extschema@.q4pg_attach_queue(regclass);
DROP FUNCTION @extschema@.q4pg_create_queue(text, text, integer, name);
DROP FUNCTION @extschema@.q4pg_enqueue(regclass, text, text);
DROP FUNCTION @extschema@.q4pg_enqueue_many(regclass, text, text[]);
DROP FUNCTION @extschema@.q4pg_count(regclass, text);
DROP FUNCTION @extschema@.q4pg_list(regclass, text, integer);
DROP FUNCTION @extschema@.q4pg_stats();

-- The row types of 1.1's functions (state: the 1.0 -> 1.1 upgrade script
-- includes this file).  Their columns are named like the functions'
-- parameters, which PL/pgSQL forbids for OUT parameters: hence types.

-- A message taken by q4pg_take: with its attempts so far and last error.
CREATE TYPE @extschema@.q4pg_taken_message AS (
    id         bigint,
    tag        text,
    data       text,
    created_at timestamptz,
    attempts   integer,
    last_error text
);

-- A message leased by q4pg_lease: with its lease's token and end.
CREATE TYPE @extschema@.q4pg_leased_message AS (
    id          bigint,
    tag         text,
    data        text,
    created_at  timestamptz,
    attempts    integer,
    last_error  text,
    lease_token uuid,
    lease_until timestamptz
);

-- A message as q4pg_list shows it: run_at is when it is (or comes) due,
-- while leased the lease's end; leased_until null unless leased.
CREATE TYPE @extschema@.q4pg_listed_message AS (
    id           bigint,
    tag          text,
    data         text,
    created_at   timestamptz,
    run_at       timestamptz,
    attempts     integer,
    last_error   text,
    leased_until timestamptz
);

-- A dead letter as q4pg_dead_letters shows it.
CREATE TYPE @extschema@.q4pg_dead_letter AS (
    id         bigint,
    tag        text,
    data       text,
    created_at timestamptz,
    attempts   integer,
    last_error text,
    dead_at    timestamptz
);

-- The shapes and constants every other part uses, each defined once.

-- q4pg_lock_class: the first key of q4pg's two-key advisory locks.
-- Takes 'barrier' or 'presence'; returns 1899262055 or 1899262056.
-- barrier:  producers hold it shared from their INSERT to their commit;
--           q4pg_go_idle probes it exclusively (the no-lost-wake-up
--           barrier).
-- presence: idle listeners hold it shared while registered; producers probe it
--           exclusively (does anybody wait?).
-- The second key is the queue's lock key (see q4pg_create_queue).  Applications
-- must not use these two numbers as the first key of their own locks.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_lock_class(p_kind text)
RETURNS integer
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE p_kind WHEN 'barrier' THEN 1899262055 WHEN 'presence' THEN 1899262056 END;

-- q4pg_channel_name: the NOTIFY channel of a queue and a tag.
-- Takes the queue's schema-qualified name as quote_ident() writes each part
-- ('public.mq', 'app."My Queue"') and a tag; returns
-- 'q4pg_' || md5(<name> || ':' || <tag>): always 37 bytes, whatever the tag.
-- The one definition of the channel formula: q4pg_notify and q4pg_channel use it.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_channel_name(p_qualified_name text, p_tag text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN 'q4pg_' || md5(p_qualified_name || ':' || p_tag);

-- q4pg_check_tag: raises unless p_tag is a valid tag.
-- A tag is any non-null text of at most 2048 bytes (the (tag, id) index must
-- hold it).  Raises null_value_not_allowed (22004) or
-- string_data_right_truncation (22001).  The generated per-queue functions
-- carry the same two tests inline (see q4pg_queue_function_sql): a call costs
-- more there than the tests.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_check_tag(p_tag text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_tag IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(p_tag) > 2048 THEN
        RAISE EXCEPTION 'q4pg: tag of % bytes is longer than the 2048 bytes a tag may have',
                octet_length(p_tag)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
END
$$;

-- q4pg_check_limit: raises invalid_parameter_value (22023) for a negative
-- limit of the listing functions (q4pg_list, q4pg_dead_letters); null is no
-- limit.  (The generated functions' n, which may not be null, is checked
-- inline.)
CREATE OR REPLACE FUNCTION @extschema@.q4pg_check_limit(p_n integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_n < 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', p_n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- q4pg_check_max_attempts: raises invalid_parameter_value (22023) unless
-- p_max_attempts is a queue's possible max_attempts: null (no limit) or at
-- least 1.  q4pg_create_queue and q4pg_set_max_attempts use it.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_check_max_attempts(p_max_attempts integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_max_attempts < 1 THEN
        RAISE EXCEPTION 'q4pg: max_attempts must be at least 1 (or null: no limit), not %', p_max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
-- What a queue table says about itself.

-- q4pg_queue_triggers: the queues of the database, or the one queue p_queue
-- is when it is one: the tables that carry the q4pg_notify trigger, with the
-- lock key written in it (its first argument) and the queue's max_attempts
-- (its second argument; none: no limit).  The one definition of "a table is a
-- queue" and the one place a queue's settings other than its columns live.
-- Reads pg_trigger (by index when p_queue is given).
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_triggers(p_queue regclass DEFAULT NULL,
                                                OUT queue regclass, OUT lock_key integer,
                                                OUT max_attempts integer)
RETURNS SETOF record
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_notify regprocedure := '@extschema@.q4pg_notify()'::regprocedure;
BEGIN
    IF p_queue IS NULL THEN
        RETURN QUERY
            SELECT t.tgrelid::regclass, nullif(split_part(encode(t.tgargs, 'escape'), '\000', 1), '')::integer,
                   nullif(split_part(encode(t.tgargs, 'escape'), '\000', 2), '')::integer
              FROM pg_trigger AS t
             WHERE t.tgname = 'q4pg_notify' AND t.tgfoid = v_notify;
    ELSE
        RETURN QUERY
            SELECT t.tgrelid::regclass, nullif(split_part(encode(t.tgargs, 'escape'), '\000', 1), '')::integer,
                   nullif(split_part(encode(t.tgargs, 'escape'), '\000', 2), '')::integer
              FROM pg_trigger AS t
             WHERE t.tgrelid = p_queue AND t.tgname = 'q4pg_notify' AND t.tgfoid = v_notify;
    END IF;
END
$$;

-- q4pg_queue_shape: what a table is to q4pg.  A queue's shape is what
-- q4pg_create_queue makes and DROP EXTENSION q4pg CASCADE leaves: columns id
-- bigint, tag text, data json/jsonb/text, created_at timestamptz, run_at
-- timestamptz, attempts integer, last_error text, lease_token uuid, dead_at
-- timestamptz, nothing else, and the q4pg_data_max_<n>_chars CHECK
-- constraint (the length limit in characters).  A table with only the first
-- four columns has the shape of q4pg 1.0 (old_shape: q4pg_reshape_queue
-- brings it to 1.1).  Returns its data type and length, what is missing from
-- that shape (null when nothing), whether it has the 1.0 shape, whether it is
-- a queue already (it carries the q4pg_notify trigger) and the lock key and
-- max_attempts written in that trigger.  Reads pg_class, pg_attribute,
-- pg_constraint, pg_trigger: index probes only.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_shape(
    p_table regclass,
    OUT data_type text,
    OUT data_length integer,
    OUT missing text,
    OUT old_shape boolean,
    OUT is_queue boolean,
    OUT lock_key integer,
    OUT max_attempts integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns   text;
    v_shape_1_0 text := 'id bigint, tag text, data %s, created_at timestamp with time zone';
    v_added_1_1 text := ', run_at timestamp with time zone, attempts integer, last_error text, '
                        'lease_token uuid, dead_at timestamp with time zone';
BEGIN
    SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, NULL), ', ' ORDER BY a.attnum)
      INTO v_columns
      FROM pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;
    SELECT (regexp_match(k.conname, '^q4pg_data_max_(\d+)_chars$'))[1]::integer
      INTO data_length
      FROM pg_constraint AS k
     WHERE k.conrelid = p_table AND k.contype = 'c' AND k.conname LIKE 'q4pg\_data\_max\_%'
     LIMIT 1;
    -- the two shapes as strings, compared whole (a regular expression with an
    -- optional group did the same in 0.35 ms a call, and every q4pg_queue_info
    -- pays for this function)
    SELECT t.data_type, v_columns = format(v_shape_1_0, t.data_type)
      INTO data_type, old_shape
      FROM unnest(ARRAY['json', 'jsonb', 'text']) AS t(data_type)
     WHERE v_columns IN (format(v_shape_1_0, t.data_type),
                         format(v_shape_1_0, t.data_type) || v_added_1_1);
    old_shape := coalesce(old_shape, false);
    IF (SELECT c.relkind FROM pg_class AS c WHERE c.oid = p_table) <> 'r' THEN
        missing := 'it is not an ordinary table';
    ELSIF data_type IS NULL THEN
        missing := format('its columns are (%s), not (id bigint, tag text, data json|jsonb|text, '
                          'created_at timestamptz, run_at timestamptz, attempts integer, '
                          'last_error text, lease_token uuid, dead_at timestamptz)',
                          v_columns);
    ELSIF data_length IS NULL THEN
        missing := 'it has no q4pg_data_max_<n>_chars CHECK constraint';
    END IF;
    SELECT true, t.lock_key, t.max_attempts INTO is_queue, lock_key, max_attempts
      FROM @extschema@.q4pg_queue_triggers(p_table) AS t;
    is_queue := FOUND;
END
$$;

-- q4pg_queue_info: everything q4pg reads from a queue table's catalog entries.
-- Takes a table; returns its data type ('json', 'jsonb' or 'text'), its data
-- length limit in characters, its lock key and max_attempts (the arguments
-- of its q4pg_notify trigger), its schema-qualified name as quote_ident()
-- writes each part, its schema and its owner.  Raises undefined_table (42P01)
-- when the table is no q4pg queue, object_not_in_prerequisite_state (55000)
-- when it still has the columns of q4pg 1.0 (a 1.0 dump restored into 1.1).  Reads pg_class, pg_namespace and, through q4pg_queue_shape,
-- the table's columns, constraints and trigger.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_info(
    p_queue regclass,
    OUT data_type text,
    OUT data_length integer,
    OUT lock_key integer,
    OUT qualified_name text,
    OUT schema regnamespace,
    OUT owner oid,
    OUT max_attempts integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_is_queue  boolean;
    v_old_shape boolean;
BEGIN
    SELECT s.data_type, s.data_length, s.lock_key, format('%I.%I', n.nspname, c.relname),
           c.relnamespace::regnamespace, c.relowner, s.max_attempts, s.is_queue, s.old_shape
      INTO data_type, data_length, lock_key, qualified_name, schema, owner, max_attempts,
           v_is_queue, v_old_shape
      FROM pg_class AS c, pg_namespace AS n, @extschema@.q4pg_queue_shape(p_queue) AS s
     WHERE c.oid = p_queue AND n.oid = c.relnamespace;
    IF NOT coalesce(v_is_queue, false) THEN
        RAISE EXCEPTION 'q4pg: table % is not a q4pg queue', p_queue
            USING ERRCODE = 'undefined_table',
                  HINT = 'Create one with q4pg_create_queue().';
    END IF;
    IF lock_key IS NULL THEN
        RAISE EXCEPTION 'q4pg: the q4pg_notify trigger of queue % has no lock key', p_queue
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'The trigger was changed by hand; only q4pg_create_queue() makes it.';
    END IF;
    IF v_old_shape THEN
        RAISE EXCEPTION 'q4pg: queue % has the columns of q4pg 1.0', p_queue
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Its owner brings it to this version with SELECT q4pg_create_queue(%L, %L, %s).',
                                qualified_name, data_type, data_length);
    END IF;
END
$$;

-- q4pg_queue_settings: a queue's data type and data length limit.
-- Takes a queue; returns (data_type, data_length); raises as q4pg_queue_info.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_settings(
    queue regclass,
    OUT data_type text,
    OUT data_length integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT i.data_type, i.data_length FROM @extschema@.q4pg_queue_info(queue) AS i;
END;
-- Waking listeners: the registry of idle listeners, the registration calls and
-- the trigger that NOTIFYs them.
--
-- The protocol (README, "Notifications"): a listener LISTENs on
-- q4pg_channel(queue, tag), tries to dequeue, and before it sleeps calls
-- q4pg_go_idle(queue, tag) (1.0: q4pg_register_idle).  Producers NOTIFY only
-- the tags an idle listener registered for, so a producer with nobody waiting
-- never pays for NOTIFY (whose commit takes a lock that serializes every
-- notifying transaction of the cluster).  Two advisory locks per queue
-- (q4pg_lock_class) make this cheap and lose no wake-up:
--   presence: a registered listener holds it shared (session level) until it
--     unregisters or its session ends, so a registration left by a dead
--     session costs producers nothing.  Producers probe it exclusively: when
--     they can take it, nobody waits and their trigger does not fire.
--   barrier: every producer holds it shared from its INSERT to its commit.
--     q4pg_go_idle answers 'may_sleep' only when it can take it exclusively,
--     i.e. when no producer that may have probed before the registration is
--     still running: a dequeue made after that answer sees every message
--     that will not be notified.
-- Both are taken by the WHEN clause of each queue's trigger (see
-- q4pg_set_queue_trigger), built-in functions only, so that while nobody waits an
-- INSERT runs no PL/pgSQL at all.

-- The registry of idle listeners, q4pg_idle_listeners, is in 05_state.sql.

-- q4pg_notify: the trigger on every queue table (AFTER INSERT, per statement,
-- gated by its WHEN clause: it runs only when some listener is registered).
-- Sends one NOTIFY, with an empty payload, on q4pg_channel_name() of each tag
-- the statement added that a registered listener waits for.  Reads
-- q4pg_idle_listeners.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    v_tag  text;
BEGIN
    FOR v_tag IN
        SELECT DISTINCT r.tag FROM q4pg_new_rows AS r
         WHERE EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                        WHERE w.queue = TG_RELID AND w.tag = r.tag)
    LOOP
        PERFORM pg_notify(@extschema@.q4pg_channel_name(v_name, v_tag), '');
    END LOOP;
    RETURN NULL;
END
$$;

-- q4pg_wake: what the trigger does, for a message that an UPDATE made due
-- (q4pg_fail, q4pg_nack, q4pg_replay: no INSERT, so no trigger).  Takes the
-- queue's qualified name (q4pg_queue_info), lock key and the tag.  Passes
-- the same gate as the trigger's WHEN clause (holds the barrier shared until
-- commit, probes presence), then NOTIFYs the tag's channel when an idle
-- listener waits for it (found by the lock key: the name is only hashed
-- into the channel, never parsed).  Reads q4pg_idle_listeners.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_wake(p_qualified_name text, p_lock_key integer, p_tag text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_advisory_xact_lock_shared(@extschema@.q4pg_lock_class('barrier'), p_lock_key) IS NOT NULL
       AND NOT (pg_try_advisory_lock(@extschema@.q4pg_lock_class('presence'), p_lock_key)
                AND pg_advisory_unlock(@extschema@.q4pg_lock_class('presence'), p_lock_key))
       AND EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                    WHERE w.lock_key = p_lock_key AND w.tag = p_tag) THEN
        PERFORM pg_notify(@extschema@.q4pg_channel_name(p_qualified_name, p_tag), '');
    END IF;
END
$$;

-- q4pg_channel: the NOTIFY channel of a queue and tag (LISTEN on it).
-- Returns q4pg_channel_name(<schema>.<table>, tag); raises unless the table is
-- a queue.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_channel(queue regclass, tag text)
RETURNS text
LANGUAGE sql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT @extschema@.q4pg_channel_name(i.qualified_name, tag)
      FROM @extschema@.q4pg_queue_info(queue) AS i;
END;

-- q4pg_go_idle: the calling session is an idle listener of a queue's tag,
-- about to sleep (it LISTENs on q4pg_channel() already).  Registers it, and
-- says what to do next, one of three texts (README, "Notifications"):
--   'ask_again': the registration was made by this call.  Producers read
--     q4pg_idle_listeners with their own snapshot, so until the registration
--     commits a producer can miss it after the barrier was probed: only a call
--     made after that commit can say 'may_sleep'.  Call again at once (in
--     autocommit, the registration has committed by then).  Also said when a
--     producer's probe held the presence lock this instant (nothing was
--     registered then; the next call registers).
--   'producer_running': registered, but a producer that may have missed the
--     registration still runs (an open transaction that inserted into the
--     queue, on any tag): later producers notify the session; dequeue, sleep
--     a short while (a notification may cut it short) and call again.
--   'may_sleep': registered, and every producer that could have missed the
--     registration has finished: a dequeue made now sees their messages; if it
--     finds none, sleep until a notification.
-- Never waits, and never makes a producer wait: every lock it takes is
-- session-level, so calling it inside a transaction block blocks nobody (but
-- LISTEN, and the registration, take effect only at commit: call it on an
-- autocommit connection).
-- Raises for a bad tag (q4pg_check_tag), a table that is no queue (42P01) and
-- without SELECT on the queue (42501).  Writes q4pg_idle_listeners.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_go_idle(queue regclass, tag text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_key      integer;
    v_presence integer := @extschema@.q4pg_lock_class('presence');
    v_barrier  integer := @extschema@.q4pg_lock_class('barrier');
    v_new      boolean;
BEGIN
    PERFORM @extschema@.q4pg_check_tag(tag);
    v_key := (@extschema@.q4pg_queue_info(queue)).lock_key;
    IF NOT has_table_privilege(queue, 'SELECT') THEN
        RAISE EXCEPTION 'q4pg: permission denied to wait on queue %', queue
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO @extschema@.q4pg_idle_listeners AS w (queue, tag, pid, lock_key)
    VALUES (queue, tag, pg_backend_pid(), v_key)
    ON CONFLICT DO NOTHING;
    v_new := FOUND;
    -- registered already, but without the presence lock (DISCARD ALL or
    -- pg_advisory_unlock_all released it, as a pooler does between clients):
    -- take it again, or producers would never notify this session
    IF v_new OR NOT EXISTS (
           SELECT FROM pg_locks AS l
            WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
              AND l.classid = v_presence::oid AND l.objid = v_key::oid AND l.objsubid = 2
              AND l.mode = 'ShareLock') THEN
        -- a new registration holds the presence lock until q4pg_unregister_idle
        -- or the end of the session.  Never wait for it: should a producer's
        -- probe hold it this instant, undo and let the caller try again.
        IF NOT pg_try_advisory_lock_shared(v_presence, v_key) THEN
            DELETE FROM @extschema@.q4pg_idle_listeners AS w
             WHERE w.queue = queue AND w.tag = tag AND w.pid = pg_backend_pid();
            RETURN 'ask_again';
        END IF;
        -- forget the registrations of sessions that are gone
        DELETE FROM @extschema@.q4pg_idle_listeners AS w
         WHERE NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid);
    END IF;
    -- a registration is seen by producers only once it commits: a producer
    -- that takes the barrier after the probe below but reads the registry
    -- before that commit would not notify, and a dequeue made in between
    -- would miss its message.  So the first answer is "not yet".
    IF v_new THEN
        RETURN 'ask_again';
    END IF;
    -- the barrier, taken and released at once
    IF pg_try_advisory_lock(v_barrier, v_key) AND pg_advisory_unlock(v_barrier, v_key) THEN
        RETURN 'may_sleep';
    END IF;
    RETURN 'producer_running';
END
$$;

-- q4pg_register_idle: 1.0's form of q4pg_go_idle, kept for the clients written
-- for it.  Returns true when q4pg_go_idle says 'may_sleep', false for both
-- 'ask_again' and 'producer_running' (1.0's clients treat false as
-- "producer_running": dequeue, sleep a short while, call again, which is
-- right for 'ask_again' too, only slower).  Raises as q4pg_go_idle does.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_register_idle(queue regclass, tag text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT @extschema@.q4pg_go_idle(queue, tag) = 'may_sleep';
END;

-- q4pg_unregister_idle: the calling session no longer waits for a queue's tag
-- (it woke up, or stops listening).  Returns true when it was registered.
-- Writes q4pg_idle_listeners; releases the presence lock (also one left by a
-- registration that was rolled back).
CREATE OR REPLACE FUNCTION @extschema@.q4pg_unregister_idle(queue regclass, tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_key integer;
BEGIN
    DELETE FROM @extschema@.q4pg_idle_listeners AS w
     WHERE w.queue = queue AND w.tag = tag AND w.pid = pg_backend_pid()
    RETURNING w.lock_key INTO v_key;
    IF FOUND THEN
        PERFORM pg_advisory_unlock_shared(@extschema@.q4pg_lock_class('presence'), v_key);
        RETURN true;
    END IF;
    -- Not registered.  A registration rolled back with its transaction left
    -- its presence lock (session-level locks outlive a rollback): release it,
    -- or producers would run the trigger for nobody until the session ends.
    v_key := (@extschema@.q4pg_queue_info(queue)).lock_key;
    IF EXISTS (SELECT FROM pg_locks AS l
                WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                  AND l.classid = @extschema@.q4pg_lock_class('presence')::oid
                  AND l.objid = v_key::oid AND l.objsubid = 2 AND l.mode = 'ShareLock')
       AND NOT EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                        WHERE w.queue = queue AND w.pid = pg_backend_pid()) THEN
        PERFORM pg_advisory_unlock_shared(@extschema@.q4pg_lock_class('presence'), v_key);
    END IF;
    RETURN false;
END
$$;
-- A plan per queue: the functions generated for each queue.
--
-- A queue is a table of the caller's choosing, so a generic function can
-- reach it only through dynamic SQL, which PostgreSQL parses and plans on
-- every call (most of what a message cost: README, Performance).  So
-- each queue gets small PL/pgSQL functions with static SQL naming its table,
-- whose plans PL/pgSQL keeps for the session, one per message function
-- (q4pg_queue_function_names):
--     q4pg_<key>_enqueue(tag, data, run_at)       q4pg_<key>_take(tag, n)
--     q4pg_<key>_enqueue_many(tag, data[], run_at) q4pg_<key>_done(id)
--     q4pg_<key>_dequeue(tag)                     q4pg_<key>_fail(id, error, retry_in, max_attempts)
--     q4pg_<key>_dequeue_many(tag, n)             q4pg_<key>_lease(tag, n, lease)
--     q4pg_<key>_cancel(id)                       q4pg_<key>_ack(id, token)
--     q4pg_<key>_done_many(ids)                   q4pg_<key>_give_back(ids)
--     q4pg_<key>_nack(id, token, retry_in, error) q4pg_<key>_extend(id, token, lease)
-- (<key>: the queue's lock key in hex).  They live in the queue's schema and
-- are owned by its owner, SECURITY INVOKER like everything else; they are not
-- extension members, so pg_dump keeps them with the table.  The public
-- functions (q4pg_enqueue, ...) reach them through q4pg_route().
--
-- Their bodies name the table and carry its settings (max_attempts too), so
-- renaming the table, moving it to another schema or changing its settings
-- leaves them stale.  Each body carries a marker, a digest of the table's
-- name and settings; q4pg_build_route() checks it, rebuilds stale functions
-- when the caller owns the queue, and otherwise builds session-private copies
-- in pg_temp: a queue always works, stale or not.
--
-- They do not pin search_path (it costs a catalog lookup per call): every
-- name, type and operator in them is schema-qualified.
--
-- The states of a message, from its columns (README, "Message states"):
--   due        run_at <= now()  (dead letters have run_at 'infinity')
--   scheduled  run_at > now(), lease_token null
--   leased     lease_token not null and coalesce(dead_at, run_at) > now()
--              (a lease on the last allowed attempt keeps run_at 'infinity'
--              and its end in dead_at: when it ends, the message is dead)
--   dead       dead_at <= now()
--
-- What a transaction took and removed, it remembers in two settings local to
-- the transaction (so a ROLLBACK, or a ROLLBACK TO SAVEPOINT, forgets them
-- with the locks and deletes they go with), named by the queue's lock key:
--   q4pg.taken_<key>    ',<id>,<id>,': the messages take locked; done and
--                       fail act on these only, and never wait for a lock
--   q4pg.removed_<key>_<n>  the row the n-th dequeue of the transaction
--                       deleted (n from 0; not dequeue_many's: a batch's
--                       copy cost more than locking it), as the text of the
--                       table's row type ('' once put back), and
--                       q4pg.removed_<key> one 'x' per such call: fail puts
--                       a row back with its failure
--                       counted, give_back uncounted, under its own id (the
--                       deleted row and its copy are one message: nobody
--                       else sees either until commit).  One setting per
--                       call, so that many dequeues in one transaction cost
--                       no more each (a session keeps as many settings as
--                       its longest transaction made calls)

-- q4pg_queue_function_names: the generated functions' name suffixes, the one
-- list that building, checking and dropping use.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_function_names(OUT suffix text)
RETURNS SETOF text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM unnest('{enqueue,enqueue_many,dequeue,dequeue_many,cancel,take,done,done_many,fail,give_back,lease,ack,nack,extend}'::text[]);
END;

-- q4pg_queue_function_prefix: 'q4pg_<key in hex>_', the start of the names of
-- a queue's generated functions.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_function_prefix(p_lock_key integer)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN 'q4pg_' || to_hex(p_lock_key) || '_';

-- q4pg_queue_function_marker: the line every generated body carries, from a
-- queue's q4pg_queue_info(); a body without the marker of the queue's present
-- name and settings is stale.  The name goes in as an md5 digest: a comment
-- line must not carry a table name, which may hold a line break, and with it
-- code.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_function_marker(p_qualified_name text, p_data_type text,
                                                       p_data_length integer, p_max_attempts integer)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN format('-- q4pg 1.1 generated function, queue %s',
              md5(format('%s %s %s %s', p_qualified_name, p_data_type, p_data_length,
                         coalesce(p_max_attempts::text, 'none'))));

-- q4pg_queue_functions_sql: the CREATE OR REPLACE FUNCTION statements of a
-- queue's generated functions, in schema p_schema (a quoted name, or
-- 'pg_temp').  Reads the queue's settings; writes nothing.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_functions_sql(p_queue regclass, p_schema text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info   record := @extschema@.q4pg_queue_info(p_queue);
    v_head   text;   -- the start of every CREATE statement
    v_table  text := v_info.qualified_name;
    v_cast   text := 'pg_catalog.' || v_info.data_type;
    -- what the CHECK constraint measures: a jsonb queue stores the normalized text
    v_length text := CASE v_info.data_type WHEN 'jsonb' THEN 'pg_catalog.char_length(%s::pg_catalog.jsonb::pg_catalog.text)'
                                          ELSE 'pg_catalog.char_length(%s)' END;
    v_tag_check text;
    v_too_long  text;
    v_run_at    text;
    v_n_check   text;
    v_lease_check text;
    v_retry_check text;
    v_due       text;
    v_lease_set text;
    v_dollar    text;
    v_null_json text;     -- refuses a JSON null on json and jsonb queues
    v_tag_null  text;
    v_taken     text;     -- the settings that remember (see above), as literals
    v_removed   text;
    v_put_back  text;     -- the INSERT that puts a removed message back
    v_remember  text;     -- records the removed v_row in the next q4pg.removed_<key>_<n>
    v_slot      text;     -- 'q4pg.removed_<key>_' as an SQL string
    v_not_taken text;     -- true unless this transaction took p_id
    v_find      text;     -- finds p_id's removed row: v_row, its setting's number v_slot
    -- the columns of q4pg_message: the generated functions return its shape
    -- without naming the type, so that DROP EXTENSION does not reach them
    v_row text := (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)),
                                     ', ' ORDER BY a.attnum)
                     FROM pg_attribute AS a
                    WHERE a.attrelid = '@extschema@.q4pg_message'::regclass AND a.attnum > 0);
    v_max text := coalesce(v_info.max_attempts::text, 'NULL::pg_catalog.int4');
    -- wakes idle listeners of a message made due by fail or nack (its tag follows)
    v_wake text := format('PERFORM @extschema@.q4pg_wake(%L, %s, ', v_table, v_info.lock_key);
BEGIN
    -- p_schema is spliced into the statements: a schema's name as an SQL
    -- identifier (what quote_ident makes), or pg_temp, and nothing else
    IF p_schema IS DISTINCT FROM 'pg_temp' AND to_regnamespace(p_schema) IS NULL THEN
        RAISE EXCEPTION 'q4pg: there is no schema %', p_schema
            USING ERRCODE = 'invalid_schema_name';
    END IF;
    v_head := 'CREATE OR REPLACE FUNCTION ' || p_schema || '.'
              || @extschema@.q4pg_queue_function_prefix(v_info.lock_key);
    -- q4pg_check_tag inline (a call costs more than the test); the null test
    -- is each function's own, with its data
    v_tag_check := $c$
    IF pg_catalog.octet_length(p_tag) OPERATOR(pg_catalog.>) 2048 THEN
        RAISE EXCEPTION 'q4pg: tag of % bytes is longer than the 2048 bytes a tag may have',
                pg_catalog.octet_length(p_tag)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;$c$;
    v_too_long := format($c$
    IF v_length OPERATOR(pg_catalog.>) %1$s THEN
        RAISE EXCEPTION 'q4pg: message of %% characters is longer than queue %% accepts (%1$s characters)',
                v_length, %2$L
            USING ERRCODE = 'string_data_right_truncation';
    END IF;$c$, v_info.data_length, v_table);
    v_run_at := $c$
    IF NOT pg_catalog.isfinite(p_run_at) THEN
        RAISE EXCEPTION 'q4pg: run_at must be a finite time, not %', p_run_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$c$;
    v_n_check := $c$
    IF p_n IS NULL OR p_n OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', coalesce(p_n::pg_catalog.text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$c$;
    v_lease_check := $c$
    IF p_lease IS NULL OR p_lease OPERATOR(pg_catalog.<=) '0'::pg_catalog.interval THEN
        RAISE EXCEPTION 'q4pg: lease must be longer than zero, not %', coalesce(p_lease::pg_catalog.text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$c$;
    v_taken := quote_literal('q4pg.taken_' || to_hex(v_info.lock_key));
    v_removed := quote_literal('q4pg.removed_' || to_hex(v_info.lock_key));
    v_slot := quote_literal('q4pg.removed_' || to_hex(v_info.lock_key) || '_');
    -- a JSON null would come out of a dequeue as nothing at all (None in
    -- Python): refused here with a clear error, and by the table's
    -- q4pg_data_not_json_null constraint for a plain INSERT
    v_null_json := CASE WHEN v_info.data_type IN ('json', 'jsonb') THEN $c$
    IF v_null THEN
        RAISE EXCEPTION 'q4pg: data must not be the JSON null: a consumer could not tell it from no message'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;$c$ ELSE '' END;
    v_tag_null := $c$
    IF p_tag IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;$c$;
    -- a removed message (v_row) back in the table (%1$s) under its id, with
    -- the due time, attempts, error and death given as %2$s to %5$s (the
    -- table's name goes in as an argument of format, never into a format
    -- string: it may hold a %)
    v_put_back := $c$INSERT INTO %1$s AS q (id, tag, data, created_at, run_at, attempts, last_error, lease_token, dead_at)
        OVERRIDING SYSTEM VALUE
        VALUES (v_row.id, v_row.tag, v_row.data, v_row.created_at, %2$s, %3$s, %4$s, NULL, %5$s)$c$;
    v_remember := format($c$v_slot := pg_catalog.length(coalesce(pg_catalog.current_setting(%1$s, true), ''));
        -- (assignments, not PERFORM: PL/pgSQL evaluates them without a query)
        v_note := pg_catalog.set_config(%1$s, pg_catalog.repeat('x', v_slot OPERATOR(pg_catalog.+) 1), true);
        v_note := pg_catalog.set_config(%2$s OPERATOR(pg_catalog.||) v_slot::pg_catalog.text,
                                        v_row::pg_catalog.text, true);$c$, v_removed, v_slot);
    v_not_taken := format($c$pg_catalog.strpos(coalesce(pg_catalog.current_setting(%s, true), ''),
                         ',' OPERATOR(pg_catalog.||) p_id::pg_catalog.text OPERATOR(pg_catalog.||) ',')
       OPERATOR(pg_catalog.=) 0$c$, v_taken);
    -- (v_slot reaches v_slots when there is none)
    v_find := format($c$v_slots := pg_catalog.length(coalesce(pg_catalog.current_setting(%1$s, true), ''));
    v_slot := 0;
    WHILE v_slot OPERATOR(pg_catalog.<) v_slots LOOP
        v_text := pg_catalog.current_setting(%2$s OPERATOR(pg_catalog.||) v_slot::pg_catalog.text);
        IF v_text OPERATOR(pg_catalog.<>) '' THEN
            v_row := CAST(v_text AS %3$s);
            EXIT WHEN v_row.id OPERATOR(pg_catalog.=) p_id;
        END IF;
        v_slot := v_slot OPERATOR(pg_catalog.+) 1;
    END LOOP;$c$, v_removed, v_slot, v_table);
    v_retry_check := $c$
    IF p_retry_in OPERATOR(pg_catalog.<) '0'::pg_catalog.interval THEN
        RAISE EXCEPTION 'q4pg: retry_in must not be negative, not %', p_retry_in
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$c$;

    -- the due messages of a tag, first due first: the one definition that
    -- dequeue, dequeue_many, take and lease select from
    v_due := format($c$FROM %s AS s
                 WHERE s.tag OPERATOR(pg_catalog.=) p_tag AND s.run_at OPERATOR(pg_catalog.<=) pg_catalog.now()
                 ORDER BY s.run_at, s.id$c$, v_table);
    -- what a lease sets: an attempt counted, a fresh token, the lease's end
    -- (kept in dead_at on the last allowed attempt, run_at then 'infinity')
    v_lease_set := format($c$SET attempts = q.attempts OPERATOR(pg_catalog.+) 1,
                   lease_token = pg_catalog.gen_random_uuid(),
                   run_at = CASE WHEN q.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) %1$s
                                 THEN 'infinity'::pg_catalog.timestamptz ELSE v_until END,
                   dead_at = CASE WHEN q.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) %1$s
                                  THEN v_until END$c$, v_max);

    -- the bodies' dollar quote: one the table's name does not hold, so that
    -- no name can end a body and go on as code
    v_dollar := '$q4pg$';
    WHILE strpos(v_table, v_dollar) > 0 LOOP
        v_dollar := format('$q4pg%s$', (random() * 1e9)::bigint);
    END LOOP;

    RETURN format($f$
%1$senqueue(p_tag text, p_data text, p_run_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_length integer;
    v_id     bigint;
    v_null   boolean;
BEGIN
    IF p_tag IS NULL OR p_data IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;%3$s%11$s
    v_length := %4$s;%5$s
    v_null := v_length OPERATOR(pg_catalog.<) 64
              AND pg_catalog.btrim(p_data, E' \t\n\r') OPERATOR(pg_catalog.=) 'null';%21$s
    INSERT INTO %6$s AS q (tag, data, run_at)
    VALUES (p_tag, p_data::%7$s, coalesce(p_run_at, pg_catalog.now()))
    RETURNING q.id INTO v_id;
    RETURN v_id;
END
%10$s;

%1$senqueue_many(p_tag text, p_data text[], p_run_at timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_length integer;
    v_null   boolean;
BEGIN
    IF p_tag IS NULL OR p_data IS NULL
       OR pg_catalog.array_position(p_data, NULL::pg_catalog.text) IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;%3$s%11$s
    SELECT pg_catalog.max(%8$s),
           pg_catalog.bool_or(pg_catalog.char_length(u.d) OPERATOR(pg_catalog.<) 64
                              AND pg_catalog.btrim(u.d, E' \t\n\r') OPERATOR(pg_catalog.=) 'null')
      INTO v_length, v_null FROM pg_catalog.unnest(p_data) AS u(d);%5$s%21$s
    RETURN QUERY
        INSERT INTO %6$s AS q (tag, data, run_at)
        SELECT p_tag, u.d::%7$s, coalesce(p_run_at, pg_catalog.now())
          FROM pg_catalog.unnest(p_data) WITH ORDINALITY AS u(d, n)
         ORDER BY u.n
        RETURNING q.id;
END
%10$s;

%1$sdequeue(p_tag text)
RETURNS TABLE (%9$s)
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_row  %6$s;
    v_slot integer;
    v_note text;
BEGIN%22$s%3$s
    DELETE FROM %6$s AS q
     WHERE q.id OPERATOR(pg_catalog.=)
           (SELECT s.id %19$s LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING q.id, q.tag, q.data, q.created_at, q.run_at, q.attempts, q.last_error, q.lease_token, q.dead_at
         INTO v_row;
    IF FOUND THEN
        %24$s
        id := v_row.id; tag := v_row.tag; data := v_row.data::pg_catalog.text; created_at := v_row.created_at;
        RETURN NEXT;
    END IF;
END
%10$s;

%1$sdequeue_many(p_tag text, p_n integer)
RETURNS TABLE (%9$s)
LANGUAGE plpgsql
AS %10$s
%2$s
BEGIN%22$s%3$s%12$s
    -- nothing remembered (as dequeue does): a batch's copy cost more than
    -- locking it (make bench: 0.47 of the plain DELETE with it, 0.82
    -- without); a batch consumer that counts failures takes, then done_many
    RETURN QUERY
        WITH taken AS (
            DELETE FROM %6$s AS q
             WHERE q.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                       SELECT s.id %19$s LIMIT p_n FOR UPDATE SKIP LOCKED))
            RETURNING q.id, q.tag, q.data::pg_catalog.text, q.created_at)
        SELECT t.id, t.tag, t.data, t.created_at FROM taken AS t ORDER BY t.id;
END
%10$s;

%1$scancel(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS %10$s
%2$s
BEGIN
    -- not one a transaction holds, nor one under a live lease
    DELETE FROM %6$s AS q
     WHERE q.id OPERATOR(pg_catalog.=)
           (SELECT s.id FROM %6$s AS s
             WHERE s.id OPERATOR(pg_catalog.=) p_id
               AND NOT (s.lease_token IS NOT NULL
                        AND coalesce(s.dead_at, s.run_at) OPERATOR(pg_catalog.>) pg_catalog.now())
               FOR UPDATE SKIP LOCKED);
    RETURN FOUND;
END
%10$s;

%1$stake(p_tag text, p_n integer)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz, attempts integer, last_error text)
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_note text;
BEGIN%22$s%3$s%12$s
    -- LIMIT 1 apart: with LIMIT p_n, PL/pgSQL's plan cache finds no generic
    -- plan worth keeping (it guesses 10%% of the rows) and plans every call
    IF p_n OPERATOR(pg_catalog.=) 1 THEN
        SELECT s.id, s.tag, s.data::pg_catalog.text, s.created_at, s.attempts, s.last_error
          INTO id, tag, data, created_at, attempts, last_error
          %19$s LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            RETURN NEXT;
            v_note := pg_catalog.set_config(%23$s,
                          coalesce(pg_catalog.current_setting(%23$s, true), '') OPERATOR(pg_catalog.||) ','
                          OPERATOR(pg_catalog.||) id::pg_catalog.text OPERATOR(pg_catalog.||) ',', true);
        END IF;
        RETURN;
    ELSE
        -- one statement, the ids remembered by its second part (a loop of
        -- RETURN NEXT cost a batch of 1000 several milliseconds)
        RETURN QUERY
            WITH taken AS MATERIALIZED (
                SELECT s.id, s.tag, s.data::pg_catalog.text AS data, s.created_at, s.attempts,
                       s.last_error
                  %19$s LIMIT p_n FOR UPDATE SKIP LOCKED),
            noted AS (
                SELECT pg_catalog.set_config(%23$s,
                           coalesce(pg_catalog.current_setting(%23$s, true), '') OPERATOR(pg_catalog.||)
                           coalesce(',' OPERATOR(pg_catalog.||) pg_catalog.string_agg(t.id::pg_catalog.text, ',')
                                    OPERATOR(pg_catalog.||) ',', ''), true)
                  FROM taken AS t)
            SELECT t.id, t.tag, t.data, t.created_at, t.attempts, t.last_error
              FROM taken AS t, noted AS n ORDER BY t.id;
    END IF;
END
%10$s;

%1$sdone(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS %10$s
%2$s
BEGIN
    -- only a message this transaction took (never one another holds: no wait)
    IF %25$s THEN
        RETURN false;
    END IF;
    DELETE FROM %6$s AS q WHERE q.id OPERATOR(pg_catalog.=) p_id;
    RETURN FOUND;
END
%10$s;

%1$sdone_many(p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_count bigint;
BEGIN
    -- only messages this transaction took (never one another holds: no wait);
    -- the two lists meet once (INTERSECT), not an ANY of one per row of the other
    WITH done AS (
        DELETE FROM %6$s AS q
         WHERE q.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT pg_catalog.unnest(p_ids)
                   INTERSECT
                   SELECT pg_catalog.unnest(pg_catalog.string_to_array(
                              coalesce(pg_catalog.current_setting(%23$s, true), ''), ',', '')::pg_catalog.int8[])))
        RETURNING 1)
    SELECT pg_catalog.count(1) INTO v_count FROM done;
    RETURN v_count;
END
%10$s;

%1$sfail(p_id bigint, p_error text, p_retry_in interval, p_max_attempts integer)
RETURNS text
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_row   %6$s;
    v_text  text;
    v_max   integer := coalesce(p_max_attempts, %13$s);
    v_slots integer;
    v_slot  integer;
BEGIN%14$s
    -- a message this transaction removed (dequeue): back under its id, counted
    %26$s
    IF v_slot OPERATOR(pg_catalog.<) v_slots THEN
        v_text := pg_catalog.set_config(%30$s OPERATOR(pg_catalog.||) v_slot::pg_catalog.text, '', true);
        IF v_row.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) v_max THEN
            %27$s;
            RETURN 'dead';
        END IF;
        %28$s;
        RETURN 'retry';
    END IF;
    -- a message this transaction took: counted in place (never one another
    -- transaction holds: no wait)
    IF %25$s THEN
        RETURN NULL;
    END IF;
    SELECT q.id, q.tag, q.data, q.created_at, q.run_at, q.attempts, q.last_error, q.lease_token, q.dead_at
      INTO v_row FROM %6$s AS q WHERE q.id OPERATOR(pg_catalog.=) p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_row.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) v_max THEN
        UPDATE %6$s AS q
           SET attempts = q.attempts OPERATOR(pg_catalog.+) 1, last_error = p_error, lease_token = NULL,
               run_at = 'infinity'::pg_catalog.timestamptz, dead_at = pg_catalog.now()
         WHERE q.id OPERATOR(pg_catalog.=) p_id;
        RETURN 'dead';
    END IF;
    -- no retry_in: the message keeps its place, as after a rollback
    UPDATE %6$s AS q
       SET attempts = q.attempts OPERATOR(pg_catalog.+) 1, last_error = p_error, lease_token = NULL,
           run_at = CASE WHEN p_retry_in IS NULL THEN LEAST(q.run_at, pg_catalog.now())
                         ELSE pg_catalog.now() OPERATOR(pg_catalog.+) p_retry_in END
     WHERE q.id OPERATOR(pg_catalog.=) p_id;
    IF coalesce(p_retry_in, '0'::pg_catalog.interval) OPERATOR(pg_catalog.=) '0'::pg_catalog.interval THEN
        %16$s
    END IF;
    RETURN 'retry';
END
%10$s;

%1$sgive_back(p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_row   %6$s;
    v_text  text;
    v_count bigint := 0;
    v_slots integer;
    v_slot  integer;
    p_id    bigint;       -- each of p_ids in turn (the name v_find reads)
BEGIN
    -- messages this transaction removed (dequeue): back as they were, uncounted
    FOREACH p_id IN ARRAY coalesce(p_ids, '{}') LOOP
        %26$s
        IF v_slot OPERATOR(pg_catalog.<) v_slots THEN
            v_text := pg_catalog.set_config(%30$s OPERATOR(pg_catalog.||) v_slot::pg_catalog.text, '', true);
            %29$s;
            v_count := v_count OPERATOR(pg_catalog.+) 1;
        END IF;
    END LOOP;
    RETURN v_count;
END
%10$s;

%1$slease(p_tag text, p_n integer, p_lease interval)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz, attempts integer, last_error text,
               lease_token uuid, lease_until timestamptz)
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_until timestamptz;
BEGIN%22$s%3$s%12$s%17$s
    v_until := pg_catalog.now() OPERATOR(pg_catalog.+) p_lease;
    -- LIMIT 1 apart, as in take
    IF p_n OPERATOR(pg_catalog.=) 1 THEN
        RETURN QUERY
            UPDATE %6$s AS q
               %20$s
             WHERE q.id OPERATOR(pg_catalog.=) (
                       SELECT s.id %19$s LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING q.id, q.tag, q.data::pg_catalog.text, q.created_at, q.attempts, q.last_error,
                      q.lease_token, v_until;
        RETURN;
    END IF;
    RETURN QUERY
        WITH leased AS (
            UPDATE %6$s AS q
               %20$s
             WHERE q.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                       SELECT s.id %19$s LIMIT p_n FOR UPDATE SKIP LOCKED))
            RETURNING q.id, q.tag, q.data::pg_catalog.text AS data, q.created_at, q.attempts, q.last_error,
                      q.lease_token)
        SELECT l.id, l.tag, l.data, l.created_at, l.attempts, l.last_error, l.lease_token, v_until
          FROM leased AS l ORDER BY l.id;
END
%10$s;

%1$sack(p_id bigint, p_token uuid)
RETURNS boolean
LANGUAGE plpgsql
AS %10$s
%2$s
BEGIN
    DELETE FROM %6$s AS q
     WHERE q.id OPERATOR(pg_catalog.=) p_id AND q.lease_token OPERATOR(pg_catalog.=) p_token;
    RETURN FOUND;
END
%10$s;

%1$snack(p_id bigint, p_token uuid, p_retry_in interval, p_error text)
RETURNS text
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_tag  text;
    v_dead timestamptz;
BEGIN%14$s
    UPDATE %6$s AS q
       SET lease_token = NULL, last_error = p_error,
           run_at = CASE WHEN q.attempts OPERATOR(pg_catalog.>=) %13$s THEN 'infinity'::pg_catalog.timestamptz
                         ELSE pg_catalog.now() OPERATOR(pg_catalog.+) coalesce(p_retry_in, '0'::pg_catalog.interval) END,
           dead_at = CASE WHEN q.attempts OPERATOR(pg_catalog.>=) %13$s THEN pg_catalog.now() END
     WHERE q.id OPERATOR(pg_catalog.=) p_id AND q.lease_token OPERATOR(pg_catalog.=) p_token
    RETURNING q.tag, q.dead_at INTO v_tag, v_dead;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF v_dead IS NOT NULL THEN
        RETURN 'dead';
    END IF;
    IF coalesce(p_retry_in, '0'::pg_catalog.interval) OPERATOR(pg_catalog.=) '0'::pg_catalog.interval THEN
        %18$s
    END IF;
    RETURN 'retry';
END
%10$s;

%1$sextend(p_id bigint, p_token uuid, p_lease interval)
RETURNS timestamptz
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_until timestamptz;
BEGIN%17$s
    v_until := pg_catalog.now() OPERATOR(pg_catalog.+) p_lease;
    UPDATE %6$s AS q
       SET run_at = CASE WHEN q.dead_at IS NULL THEN v_until ELSE q.run_at END,
           dead_at = CASE WHEN q.dead_at IS NOT NULL THEN v_until END
     WHERE q.id OPERATOR(pg_catalog.=) p_id AND q.lease_token OPERATOR(pg_catalog.=) p_token
       AND (q.dead_at IS NULL OR q.dead_at OPERATOR(pg_catalog.>) pg_catalog.now());
    RETURN CASE WHEN FOUND THEN v_until END;
END
%10$s;
$f$,
        v_head,                                             -- 1
        @extschema@.q4pg_queue_function_marker(
            v_table, v_info.data_type, v_info.data_length,
            v_info.max_attempts),                           -- 2
        v_tag_check,                                        -- 3
        format(v_length, 'p_data'),                         -- 4
        v_too_long,                                         -- 5
        v_table,                                            -- 6
        v_cast,                                             -- 7
        format(v_length, 'u.d'),                            -- 8
        v_row,                                              -- 9
        v_dollar,                                           -- 10
        v_run_at,                                           -- 11
        v_n_check,                                          -- 12
        v_max,                                              -- 13
        v_retry_check,                                      -- 14
        v_table,                                            -- 15
        v_wake || 'v_row.tag);',                            -- 16
        v_lease_check,                                      -- 17
        v_wake || 'v_tag);',                                -- 18
        v_due,                                              -- 19
        v_lease_set,                                        -- 20
        v_null_json,                                        -- 21
        v_tag_null,                                         -- 22
        v_taken,                                            -- 23
        v_remember,                                         -- 24
        v_not_taken,                                        -- 25
        v_find,                                             -- 26
        format(v_put_back, v_table, '''infinity''::pg_catalog.timestamptz',
               'v_row.attempts OPERATOR(pg_catalog.+) 1', 'p_error',
               'pg_catalog.now()'),                         -- 27: dead
        format(v_put_back, v_table, 'CASE WHEN p_retry_in IS NULL THEN LEAST(v_row.run_at, pg_catalog.now())
                                 ELSE pg_catalog.now() OPERATOR(pg_catalog.+) p_retry_in END',
               'v_row.attempts OPERATOR(pg_catalog.+) 1', 'p_error', 'NULL'),  -- 28: retry
        format(v_put_back, v_table, 'v_row.run_at', 'v_row.attempts', 'v_row.last_error',
               'v_row.dead_at'),                            -- 29: as it was
        v_slot);                                            -- 30: the removed rows' settings, less n
END
$$;

-- q4pg_queue_functions_current: true when the schema holds every generated
-- function of the queue, each with the queue's present marker.  Reads pg_proc.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queue_functions_current(p_queue regclass, p_schema regnamespace)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT count(*) = (SELECT count(*) FROM @extschema@.q4pg_queue_function_names())
      FROM pg_proc AS p, @extschema@.q4pg_queue_info(p_queue) AS i,
           @extschema@.q4pg_queue_function_names() AS f
     WHERE p.pronamespace = p_schema::oid
       AND p.proname = @extschema@.q4pg_queue_function_prefix(i.lock_key) || f.suffix
       AND strpos(p.prosrc, @extschema@.q4pg_queue_function_marker(
                                i.qualified_name, i.data_type, i.data_length, i.max_attempts)) > 0;
END;

-- q4pg_build_queue_functions: (re)creates a queue's generated functions in
-- the queue's own schema, owned by the queue's owner.  Needs the rights to
-- create functions there and to act as the owner (the owner has them, and a
-- superuser running ALTER EXTENSION q4pg UPDATE); writes pg_proc.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_build_queue_functions(p_queue regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record := @extschema@.q4pg_queue_info(p_queue);
    v_fn   regprocedure;
BEGIN
    -- every overload of the names goes first: the arguments of a generated
    -- function may differ from an older version's
    PERFORM @extschema@.q4pg_drop_queue_functions(p_queue, v_info.schema);
    EXECUTE @extschema@.q4pg_queue_functions_sql(p_queue, v_info.schema::text);
    FOR v_fn IN
        SELECT p.oid FROM pg_proc AS p, @extschema@.q4pg_queue_function_names() AS f
         WHERE p.pronamespace = v_info.schema
           AND p.proname = @extschema@.q4pg_queue_function_prefix(v_info.lock_key) || f.suffix
           AND p.proowner <> v_info.owner
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO %I', v_fn, v_info.owner::regrole);
    END LOOP;
END
$$;

-- q4pg_drop_queue_functions: drops generated functions from a schema and
-- from the session's pg_temp, every overload of their names: those of the
-- queue p_queue, or (p_queue null) those whose queue is gone (a queue table
-- dropped by hand leaves them).
CREATE OR REPLACE FUNCTION @extschema@.q4pg_drop_queue_functions(p_queue regclass, p_schema regnamespace)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix text := (SELECT @extschema@.q4pg_queue_function_prefix(t.lock_key)
                        FROM @extschema@.q4pg_queue_triggers(p_queue) AS t WHERE p_queue IS NOT NULL);
    v_fn     regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid
          FROM @extschema@.q4pg_queue_function_names() AS f, pg_proc AS p
         WHERE p.proname LIKE 'q4pg\_%\_' || f.suffix
           AND (p.pronamespace = p_schema::oid OR p.pronamespace = pg_my_temp_schema())
           AND CASE WHEN v_prefix IS NOT NULL THEN p.proname = v_prefix || f.suffix
                    ELSE p.proname ~ ('^q4pg_[0-9a-f]{1,8}_' || f.suffix || '$')
                         AND NOT EXISTS (
                             SELECT FROM @extschema@.q4pg_queue_triggers() AS t
                              WHERE p.proname = @extschema@.q4pg_queue_function_prefix(t.lock_key)
                                                || f.suffix) END
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s', v_fn);
    END LOOP;
END
$$;

-- q4pg_build_route: finds (or makes) the generated functions a session uses
-- for a queue and remembers them for the session, with the queue's
-- schema-qualified name.  Returns the functions' schema-qualified name
-- prefix: '<schema>.q4pg_<key>_'.
-- Uses the queue's own functions when they are current; rebuilds them when
-- the caller owns the queue; otherwise builds copies in pg_temp.  Remembers
-- the answer in the settings q4pg.name_<oid> and q4pg.route_<oid> (RESET ALL,
-- DISCARD ALL and a rolled-back transaction forget it).  Raises as
-- q4pg_queue_info.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_build_route(p_queue regclass)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info   record := @extschema@.q4pg_queue_info(p_queue);
    v_schema text;
BEGIN
    IF @extschema@.q4pg_queue_functions_current(p_queue, v_info.schema) THEN
        v_schema := v_info.schema;
    ELSIF pg_has_role(v_info.owner, 'USAGE') AND has_schema_privilege(v_info.schema, 'CREATE') THEN
        PERFORM @extschema@.q4pg_build_queue_functions(p_queue);
        v_schema := v_info.schema;
    ELSE
        IF NOT @extschema@.q4pg_queue_functions_current(p_queue, pg_my_temp_schema()::regnamespace) THEN
            EXECUTE @extschema@.q4pg_queue_functions_sql(p_queue, 'pg_temp');
        END IF;
        v_schema := 'pg_temp';
    END IF;
    PERFORM set_config('q4pg.name_' || p_queue::oid, v_info.qualified_name, false);
    RETURN set_config('q4pg.route_' || p_queue::oid,
                      v_schema || '.' || @extschema@.q4pg_queue_function_prefix(v_info.lock_key), false);
END
$$;

-- q4pg_route: the name prefix of the generated functions this session uses for
-- a queue (see q4pg_build_route), from the session's memory when the queue
-- still has the schema-qualified name it had then (the name as the caller
-- sees it would not do: after ALTER TABLE ... SET SCHEMA and a new table of
-- the old name, a search_path can show the moved table under the remembered
-- name while the remembered functions write to the new one).  An SQL function
-- so that the planner inlines it into the callers' expressions: on the hot
-- path it costs three setting lookups, a name lookup, a regular expression
-- match and no function call.  A session can
-- only ever misroute its own calls by setting these settings itself.  Not
-- pinned (inlining forbids it): its SQL-standard body is bound when the
-- extension is created, whatever the caller's search_path.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_route(p_queue regclass)
RETURNS text
LANGUAGE sql
RETURN CASE
    -- (a setting RESET, or set in a rolled back transaction, reads '')
    WHEN pg_catalog.to_regclass(NULLIF(pg_catalog.current_setting(
             'q4pg.name_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text, true), ''))
         OPERATOR(pg_catalog.=) p_queue
     -- the callers splice the route into SQL: only the shape q4pg_build_route
     -- writes passes (any session may set any setting of its own)
     AND pg_catalog.current_setting('q4pg.route_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text, true)
         OPERATOR(pg_catalog.~) '^(pg_temp|[a-z_][a-z0-9_$]*|"([^"]|"")+")\.q4pg_[0-9a-f]{1,8}_$'
    THEN pg_catalog.current_setting('q4pg.route_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text)
    ELSE @extschema@.q4pg_build_route(p_queue)
END;
-- Creating, adopting and dropping queue tables.

-- q4pg_reshape_queue: brings a table of a queue's shape (q4pg_queue_shape)
-- to this version's: adds the columns q4pg 1.1 added to a 1.0 queue table
-- (every message stays, due at once), replaces 1.0's (tag, id) index by the
-- (tag, run_at, id) index dequeues walk, and creates that index when
-- missing; on a json or jsonb queue, adds the q4pg_data_not_json_null CHECK
-- constraint (a plain INSERT of the JSON null is refused: a consumer could not
-- tell it from no message), validated unless older messages hold one (those
-- stay; the clients refuse to take them silently).  Returns the table.  Needs ALTER rights on it (its owner); writes
-- the catalogs and, for a 1.0 table, builds an index over its rows.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_reshape_queue(p_queue regclass)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_shape record := @extschema@.q4pg_queue_shape(p_queue);
    v_index regclass;
BEGIN
    IF v_shape.missing IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: table % does not have a queue''s shape: %', p_queue, v_shape.missing
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF v_shape.old_shape THEN
        EXECUTE format('ALTER TABLE %s
                            ADD COLUMN run_at timestamptz NOT NULL DEFAULT now(),
                            ADD COLUMN attempts integer NOT NULL DEFAULT 0,
                            ADD COLUMN last_error text,
                            ADD COLUMN lease_token uuid,
                            ADD COLUMN dead_at timestamptz', p_queue);
    END IF;
    -- the indexes on exactly (tag, id) and (tag, run_at, id), by their columns
    FOR v_index IN
        SELECT i.indexrelid::regclass FROM pg_index AS i
         WHERE i.indrelid = p_queue AND NOT i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
           AND i.indkey::text = (SELECT string_agg(a.attnum::text, ' ' ORDER BY k.n)
                                   FROM unnest('{tag,id}'::name[]) WITH ORDINALITY AS k(col, n)
                                   JOIN pg_attribute AS a ON a.attrelid = p_queue AND a.attname = k.col)
    LOOP
        EXECUTE format('DROP INDEX %s', v_index);
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_index AS i
                    WHERE i.indrelid = p_queue AND i.indpred IS NULL AND i.indexprs IS NULL
                      AND i.indkey::text = (
                          SELECT string_agg(a.attnum::text, ' ' ORDER BY k.n)
                            FROM unnest('{tag,run_at,id}'::name[]) WITH ORDINALITY AS k(col, n)
                            JOIN pg_attribute AS a ON a.attrelid = p_queue AND a.attname = k.col)) THEN
        EXECUTE format('CREATE INDEX ON %s (tag, run_at, id)', p_queue);
    END IF;
    IF v_shape.data_type IN ('json', 'jsonb')
       AND NOT EXISTS (SELECT FROM pg_constraint AS k
                        WHERE k.conrelid = p_queue AND k.conname = 'q4pg_data_not_json_null') THEN
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT q4pg_data_not_json_null
                            CHECK (pg_catalog.%s_typeof(data) OPERATOR(pg_catalog.<>) ''null'') NOT VALID',
                       p_queue, v_shape.data_type);
        BEGIN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT q4pg_data_not_json_null', p_queue);
        EXCEPTION WHEN check_violation THEN
            NULL;   -- a 1.0 queue holding the JSON null: new ones are refused all the same
        END;
    END IF;
    RETURN p_queue;
END
$$;

-- q4pg_set_queue_trigger: (re)creates a queue's q4pg_notify trigger, which
-- carries the queue's settings as its arguments: its lock key and (when not
-- null) its max_attempts.  Its WHEN clause is the gate of 30_listeners.sql,
-- with the lock key as a constant.  Raises 42809 for a table that has no
-- queue's shape, and 22023 for a queue and another lock key than its own: a
-- queue keeps its lock key for life (its channels, its advisory locks, the
-- names of its generated functions and the sessions' routes to them hang on
-- it).  Needs the rights to create triggers on the table (its owner); writes
-- pg_trigger.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_set_queue_trigger(p_queue regclass, p_key integer,
                                                   p_max_attempts integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_shape record := @extschema@.q4pg_queue_shape(p_queue);
BEGIN
    IF v_shape.missing IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: table % does not have a queue''s shape: %', p_queue, v_shape.missing
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF v_shape.lock_key IS NOT NULL AND v_shape.lock_key IS DISTINCT FROM p_key THEN
        RAISE EXCEPTION 'q4pg: queue % has lock key %, not %: a queue''s lock key never changes',
                        p_queue, v_shape.lock_key, p_key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM pg_trigger AS t WHERE t.tgrelid = p_queue AND t.tgname = 'q4pg_notify') THEN
        EXECUTE format('DROP TRIGGER q4pg_notify ON %s', p_queue);
    END IF;
    EXECUTE format(
        'CREATE TRIGGER q4pg_notify AFTER INSERT ON %1$s
             REFERENCING NEW TABLE AS q4pg_new_rows
             FOR EACH STATEMENT
             WHEN (pg_catalog.pg_advisory_xact_lock_shared(%3$s, %2$s) IS NOT NULL
                   AND NOT (pg_catalog.pg_try_advisory_lock(%4$s, %2$s)
                            AND pg_catalog.pg_advisory_unlock(%4$s, %2$s)))
             EXECUTE FUNCTION @extschema@.q4pg_notify(%2$L%5$s)',
        p_queue, p_key,
        @extschema@.q4pg_lock_class('barrier'), @extschema@.q4pg_lock_class('presence'),
        CASE WHEN p_max_attempts IS NOT NULL THEN format(', %L', p_max_attempts) ELSE '' END);
END
$$;

-- q4pg_attach_queue: makes a table of a queue's shape (q4pg_queue_shape, 1.0's
-- too) a q4pg queue: this version's columns and index (q4pg_reshape_queue),
-- its q4pg_notify trigger with a lock key no other queue of the database uses
-- and max_attempts, its comment and its generated functions.  Returns the
-- table.  Raises duplicate_table (42P07) for a queue already and for a table
-- of another shape, saying what differs.  Writes the catalogs.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_attach_queue(p_queue regclass, p_max_attempts integer)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_shape record := @extschema@.q4pg_queue_shape(p_queue);
    v_key   integer := p_queue::oid::integer;
BEGIN
    IF v_shape.is_queue THEN
        RAISE EXCEPTION 'q4pg: % is a q4pg queue already', p_queue
            USING ERRCODE = 'duplicate_table';
    END IF;
    IF v_shape.missing IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: relation % already exists and is not a q4pg queue', p_queue
            USING ERRCODE = 'duplicate_table',
                  DETAIL = format('q4pg adopts only a table of a queue''s shape, and %s.', v_shape.missing),
                  HINT = 'Choose another name, or rename or drop that table.';
    END IF;
    -- the table's oid, unless a restored queue already has it
    WHILE EXISTS (SELECT FROM @extschema@.q4pg_queue_triggers() AS t WHERE t.lock_key = v_key) LOOP
        v_key := (random() * 4294967295 - 2147483648)::bigint::integer;
    END LOOP;
    PERFORM @extschema@.q4pg_reshape_queue(p_queue);
    PERFORM @extschema@.q4pg_set_queue_trigger(p_queue, v_key, p_max_attempts);
    EXECUTE format('COMMENT ON TABLE %s IS %L', p_queue,
                   format('q4pg queue: %s data of at most %s characters',
                          v_shape.data_type, v_shape.data_length));
    -- the generated functions of queues of this schema dropped by hand go
    PERFORM @extschema@.q4pg_drop_queue_functions(
        NULL, (SELECT c.relnamespace::regnamespace FROM pg_class AS c WHERE c.oid = p_queue));
    PERFORM @extschema@.q4pg_build_queue_functions(p_queue);
    RETURN p_queue;
END
$$;

-- q4pg_create_queue: creates a queue table, its index, its NOTIFY trigger and
-- its generated functions.
-- table_name is an SQL name, optionally schema-qualified ('mq', 'app.mq',
-- '"My Queue"'); an unqualified name goes into schema_name, the caller's
-- current schema.  data_type is json, jsonb or text; data_length the most
-- characters a message may have.  Returns the table.  Again with the same
-- settings it returns the existing queue (and rebuilds its generated functions
-- when they are stale and the caller owns it); over a table of a queue's
-- shape that is no queue (left by DROP EXTENSION q4pg CASCADE) it adopts the
-- table, messages intact.  Raises 22004 for nulls, 22023 for an unsupported
-- type or a length below 1, 42602/42622/3F000 for a bad name, 42P07 for
-- another table or other settings.
-- max_attempts (1.1): the attempts after which a message becomes a dead
-- letter; null: none for a new queue, and an existing queue keeps its own (a
-- different number raises 42P07: q4pg_set_max_attempts changes it).  A queue
-- table of q4pg 1.0 (restored from a 1.0 dump) is brought to 1.1 when the
-- caller owns it.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_create_queue(
    table_name text,
    data_type text DEFAULT 'json',
    data_length integer DEFAULT 1023,
    schema_name name DEFAULT current_schema(),
    max_attempts integer DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_parts  text[];
    v_schema text;
    v_name   text;
    v_type   text := lower(data_type);
    v_queue  regclass;
    v_shape  record;      -- what an existing table of that name is
    v_info   record;
BEGIN
    IF table_name IS NULL OR data_type IS NULL OR data_length IS NULL THEN
        RAISE EXCEPTION 'q4pg: table name, data type and data length must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v_type NOT IN ('json', 'jsonb', 'text') THEN
        RAISE EXCEPTION 'q4pg: data type "%" is not supported', data_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use json, jsonb or text.';
    END IF;
    IF data_length < 1 THEN
        RAISE EXCEPTION 'q4pg: data length must be at least 1, not %', data_length
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.q4pg_check_max_attempts(max_attempts);

    BEGIN
        v_parts := parse_ident(table_name);
    EXCEPTION WHEN invalid_parameter_value THEN
        v_parts := NULL;
    END;
    IF v_parts IS NULL OR cardinality(v_parts) > 2 THEN
        RAISE EXCEPTION 'q4pg: "%" is not a valid table name', table_name
            USING ERRCODE = 'invalid_name',
                  HINT = 'Give a name or schema.name; double-quote names with special characters.';
    END IF;
    v_name := v_parts[cardinality(v_parts)];
    v_schema := CASE cardinality(v_parts) WHEN 2 THEN v_parts[1] ELSE schema_name END;
    IF v_schema IS NULL THEN
        RAISE EXCEPTION 'q4pg: no schema to create queue "%" in', v_name
            USING ERRCODE = 'invalid_schema_name',
                  HINT = 'Qualify the name, or set a search_path.';
    END IF;
    IF octet_length(v_name) > 63 THEN
        RAISE EXCEPTION 'q4pg: table name "%" is longer than 63 bytes', v_name
            USING ERRCODE = 'name_too_long';
    END IF;

    -- Two sessions creating the same queue at once: the second waits here,
    -- then finds the table the first made.
    PERFORM pg_advisory_xact_lock(hashtextextended(format('q4pg:%I.%I', v_schema, v_name), 0));

    v_queue := to_regclass(format('%I.%I', v_schema, v_name));
    IF v_queue IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I.%I (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 tag text NOT NULL,
                 data %s NOT NULL,
                 created_at timestamptz NOT NULL DEFAULT now(),
                 CONSTRAINT %I CHECK (char_length(data::text) <= %s),
                 run_at timestamptz NOT NULL DEFAULT now(),
                 attempts integer NOT NULL DEFAULT 0,
                 last_error text,
                 lease_token uuid,
                 dead_at timestamptz
             ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                     autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000,
                     autovacuum_vacuum_cost_delay = 0)',
            v_schema, v_name, v_type::regtype,
            format('q4pg_data_max_%s_chars', data_length), data_length);
        RETURN @extschema@.q4pg_attach_queue(format('%I.%I', v_schema, v_name)::regclass, max_attempts);
    END IF;

    -- a table of that name exists: a queue, a queue's table without its
    -- trigger (DROP EXTENSION q4pg CASCADE) to adopt, or another table
    v_shape := @extschema@.q4pg_queue_shape(v_queue);
    IF v_shape.missing IS NULL
       AND (v_shape.data_type IS DISTINCT FROM v_type OR v_shape.data_length IS DISTINCT FROM data_length) THEN
        RAISE EXCEPTION 'q4pg: queue % already exists with data type % and data length %',
                v_queue, v_shape.data_type, v_shape.data_length
            USING ERRCODE = 'duplicate_table',
                  DETAIL = format('Asked for data type %s and data length %s.', v_type, data_length);
    END IF;
    IF NOT v_shape.is_queue THEN
        RETURN @extschema@.q4pg_attach_queue(v_queue, max_attempts);  -- raises for another shape
    END IF;
    IF max_attempts IS NOT NULL AND max_attempts IS DISTINCT FROM v_shape.max_attempts THEN
        RAISE EXCEPTION 'q4pg: queue % already exists with max_attempts %', v_queue,
                coalesce(v_shape.max_attempts::text, 'null (no limit)')
            USING ERRCODE = 'duplicate_table',
                  DETAIL = format('Asked for max_attempts %s.', max_attempts),
                  HINT = 'Change it with q4pg_set_max_attempts().';
    END IF;
    IF v_shape.old_shape AND pg_has_role((SELECT c.relowner FROM pg_class AS c WHERE c.oid = v_queue), 'USAGE') THEN
        PERFORM @extschema@.q4pg_reshape_queue(v_queue);
    END IF;
    v_info := @extschema@.q4pg_queue_info(v_queue);
    IF NOT @extschema@.q4pg_queue_functions_current(v_queue, v_info.schema)
       AND pg_has_role(v_info.owner, 'USAGE') THEN
        PERFORM @extschema@.q4pg_build_queue_functions(v_queue);
    END IF;
    RETURN v_queue;
END
$$;

-- q4pg_drop_queue: drops a queue table, every message in it and its generated
-- functions.  Returns true; raises unless the table is a queue.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_drop_queue(queue regclass)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.q4pg_drop_queue_functions(
        queue, (@extschema@.q4pg_queue_info(queue)).schema);
    EXECUTE format('DROP TABLE %s', queue);
    RETURN true;
END
$$;

-- q4pg_set_max_attempts: changes a queue's max_attempts (null: no limit;
-- else at least 1, or 22023).  Messages that have used that many attempts
-- already become dead letters now (one under a live lease when its lease
-- ends).  Needs the queue's owner's rights (it rewrites the queue's trigger
-- and generated functions); raises as q4pg_queue_info.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_set_max_attempts(queue regclass, max_attempts integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_info record := @extschema@.q4pg_queue_info(queue);
BEGIN
    PERFORM @extschema@.q4pg_check_max_attempts(max_attempts);
    PERFORM @extschema@.q4pg_set_queue_trigger(queue, v_info.lock_key, max_attempts);
    IF max_attempts IS NOT NULL THEN
        EXECUTE format(
            'UPDATE %s AS q
                SET dead_at = CASE WHEN q.lease_token IS NOT NULL AND q.run_at > now() THEN q.run_at
                                   ELSE now() END,
                    run_at = ''infinity''
              WHERE q.dead_at IS NULL AND q.attempts >= $1', queue)
          USING max_attempts;
    END IF;
    PERFORM @extschema@.q4pg_build_queue_functions(queue);
END
$$;
-- The message functions: what producers and consumers call.
--
-- The fourteen on the hot path (enqueue, enqueue_many, dequeue, dequeue_many,
-- cancel; take, done, done_many, fail, give_back; lease, ack, nack, extend) hand the call to the
-- queue's generated function (see 40_queue_functions.sql) through
-- q4pg_route(), with one EXECUTE of a one-call statement.  They do not pin
-- search_path (it costs a catalog lookup per call): every name, type and
-- operator in them is schema-qualified, and the statement they EXECUTE names
-- its function with its schema.  They share one shape on purpose: each is the
-- typed public door to one generated function, and folding them into one
-- would cost a call on the hot path.

-- q4pg_enqueue: adds one message to a queue.  Returns its id.
-- data must parse as the queue's data type and be at most its data length in
-- characters, the tag at most 2048 bytes, neither null; otherwise nothing is
-- stored (22P02, 22001, 22004).  run_at (1.1): no dequeue or lease hands the
-- message out before then (null: now; not 'infinity': 22023).  Inserts
-- into the queue table (its trigger notifies idle listeners of the tag).
-- On a json or jsonb queue, the JSON null is refused (22004): a consumer
-- could not tell it from no message.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data text,
                                         run_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_id bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'enqueue($1, $2, $3)'
       INTO v_id
      USING tag, data, run_at;
    RETURN v_id;
END
$$;

-- q4pg_enqueue with json or jsonb data (1.1): the same, for a value already
-- of a JSON type (q4pg_enqueue('q', 't', to_jsonb(row)) needs no cast).
CREATE OR REPLACE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data json,
                                         run_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN @extschema@.q4pg_enqueue(queue, tag, data::pg_catalog.text, run_at);

CREATE OR REPLACE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data jsonb,
                                         run_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN @extschema@.q4pg_enqueue(queue, tag, data::pg_catalog.text, run_at);

-- q4pg_enqueue_many: adds one message per element of data, in array order, in
-- one statement (so one NOTIFY).  Returns their ids in the same order.  One
-- bad element stores none of them.  run_at as for q4pg_enqueue, for all.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_enqueue_many(queue regclass, tag text, data text[],
                                              run_at timestamptz DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'enqueue_many($1, $2, $3)'
      USING tag, data, run_at;
END
$$;

-- q4pg_dequeue: takes the first due message of a tag (run_at, then id: the
-- oldest, for messages enqueued without run_at) that no other transaction
-- holds (FOR UPDATE SKIP LOCKED) and deletes it inside the caller's
-- transaction: COMMIT consumes it, ROLLBACK gives it back uncounted, and
-- q4pg_fail before the end of the transaction gives it back with a failure
-- counted (the transaction remembers what it removed: see
-- 40_queue_functions.sql).  Returns zero or one message; never waits for
-- another consumer.  Raises 22004 for a null tag, 22001 for a tag longer
-- than a tag may be.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_dequeue(queue regclass, tag text)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'dequeue($1)'
      USING tag;
END
$$;

-- q4pg_dequeue_many: like q4pg_dequeue, for up to n messages at once, but
-- without the memory q4pg_fail needs: COMMIT consumes them, ROLLBACK gives
-- them back uncounted (a batch consumer that counts failures uses
-- q4pg_take(queue, tag, n), then q4pg_done_many).  Returns them in id order;
-- raises 22023 when n is null or negative.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_dequeue_many(queue regclass, tag text, n integer)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'dequeue_many($1, $2)'
      USING tag, n;
END
$$;

-- q4pg_cancel: removes a message by id: due, scheduled or a dead letter.
-- Returns true when it removed it; false when there is no such message, a
-- consumer's transaction holds it or it is under a live lease.  Never waits.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_cancel(queue regclass, id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_removed boolean;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'cancel($1)'
       INTO v_removed
      USING id;
    RETURN v_removed;
END
$$;

-- q4pg_take: the transactional consumer that counts failures.  Locks up to
-- n (default 1) due messages of a tag for the caller's transaction (FOR
-- UPDATE SKIP LOCKED), first due first, without removing them, and returns
-- them with their attempts and last error.  Before commit the caller ends
-- each with q4pg_done (removes it) or q4pg_fail (gives it back, one attempt
-- counted); a ROLLBACK gives them back uncounted.  Raises 22023 for a null
-- or negative n.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_take(queue regclass, tag text, n integer DEFAULT 1)
RETURNS SETOF @extschema@.q4pg_taken_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'take($1, $2)'
      USING tag, n;
END
$$;

-- q4pg_done: removes a message the caller's transaction took (q4pg_take).
-- Returns false for any other id (no such message, or one this transaction
-- did not take: it is left alone, and never waited for).
CREATE OR REPLACE FUNCTION @extschema@.q4pg_done(queue regclass, id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_done boolean;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'done($1)'
       INTO v_done
      USING id;
    RETURN v_done;
END
$$;

-- q4pg_done_many: q4pg_done for many messages in one call (what a batch
-- taken with q4pg_take(queue, tag, n) needs).  Returns how many it removed:
-- ids this transaction did not take are left alone.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_done_many(queue regclass, ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_count bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'done_many($1)'
       INTO v_count
      USING ids;
    RETURN v_count;
END
$$;

-- q4pg_fail: records a failed attempt at a message the caller's transaction
-- took (q4pg_take) or removed (q4pg_dequeue) and gives it
-- back, in one step of that transaction (so no other consumer can take it
-- uncounted): attempts + 1, last_error := error, due again after retry_in
-- (null: at once and in its place, as after a rollback; idle listeners are
-- woken).  When its attempts reach max_attempts (the argument, else the
-- queue's) it becomes a dead letter instead.  Returns 'retry' or 'dead';
-- null for any other id (no such message, one this transaction did not take,
-- one under a lease: its holder uses q4pg_nack): it is left alone, and never
-- waited for.  A removed message goes back under its own id, which needs
-- INSERT on the queue.  Raises 22023 for a negative retry_in.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_fail(queue regclass, id bigint, error text DEFAULT NULL,
                                      retry_in interval DEFAULT NULL,
                                      max_attempts integer DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'fail($1, $2, $3, $4)'
       INTO v_state
      USING id, error, retry_in, max_attempts;
    RETURN v_state;
END
$$;

-- q4pg_give_back (1.1): gives back, uncounted and at once, messages the
-- caller's transaction removed with q4pg_dequeue, as a
-- ROLLBACK would, without ending the transaction: each goes back under its
-- id, as it was (needs INSERT on the queue).  Returns how many it gave back;
-- other ids are left alone.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_give_back(queue regclass, ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_count bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'give_back($1)'
       INTO v_count
      USING ids;
    RETURN v_count;
END
$$;

-- q4pg_lease: hands out up to n due messages of a tag, first due first, each
-- invisible to other consumers until its lease ends (now() + lease): the
-- worker holds no transaction open.  Each lease counts an attempt and gets a
-- fresh lease_token, which q4pg_ack, q4pg_nack and q4pg_extend take.  A
-- lease that ends unacknowledged makes its message due again, its attempt
-- counted; a lease on the queue's last allowed attempt (max_attempts) that
-- ends makes it a dead letter.  Raises 22023 for a null or negative n, a
-- null or non-positive lease.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_lease(queue regclass, tag text, n integer, lease interval)
RETURNS SETOF @extschema@.q4pg_leased_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'lease($1, $2, $3)'
      USING tag, n, lease;
END
$$;

-- q4pg_ack: the leased message is done: deletes it.  Returns false when the
-- token no longer holds it (another consumer leased it after this lease
-- ended, or it is gone); a late ack that nobody overtook is accepted.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_ack(queue regclass, id bigint, token uuid)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_done boolean;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'ack($1, $2)'
       INTO v_done
      USING id, token;
    RETURN v_done;
END
$$;

-- q4pg_nack: the leased message failed: gives it back, due after retry_in
-- (null: at once, and idle listeners are woken), with last_error := error;
-- its attempt was counted by the lease.  On the queue's last allowed attempt
-- it becomes a dead letter.  Returns 'retry' or 'dead'; null when the token
-- no longer holds it.  Raises 22023 for a negative retry_in.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_nack(queue regclass, id bigint, token uuid,
                                      retry_in interval DEFAULT NULL, error text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'nack($1, $2, $3, $4)'
       INTO v_state
      USING id, token, retry_in, error;
    RETURN v_state;
END
$$;

-- q4pg_extend: the heartbeat of a long job: the lease now ends at now() +
-- lease.  Returns that time; null when the token no longer holds the message
-- (or its last allowed lease has ended: it is a dead letter).  Raises 22023
-- for a null or non-positive lease.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_extend(queue regclass, id bigint, token uuid, lease interval)
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
DECLARE
    v_until timestamptz;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'extend($1, $2, $3)'
       INTO v_until
      USING id, token, lease;
    RETURN v_until;
END
$$;

-- q4pg_count: the number of due messages in a queue (what a dequeue could
-- hand out: the original library's count), of one tag or (tag null) of all;
-- include_scheduled true also counts those scheduled for later or under a
-- live lease.  Dead letters are left out (q4pg_stats counts them).  Messages
-- held by a consumer's open transaction still count.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_count(queue regclass, tag text DEFAULT NULL,
                                       include_scheduled boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_count bigint;
BEGIN
    PERFORM @extschema@.q4pg_queue_info(queue);
    EXECUTE format('SELECT count(*) FROM %s
                     WHERE ($1 IS NULL OR tag = $1)
                       AND run_at <= CASE WHEN $2 THEN ''infinity'' ELSE now() END
                       AND NOT coalesce(dead_at <= now(), false)', queue)
       INTO v_count
      USING tag, coalesce(include_scheduled, false);
    RETURN v_count;
END
$$;

-- q4pg_list: the due messages of a queue, first due first (run_at, then id),
-- of one tag or (tag null) of all, at most n of them (null: all);
-- include_scheduled true lists those scheduled for later or under a live
-- lease too.  Dead letters are left out (q4pg_dead_letters lists them).
-- Each with its due time (while leased: the lease's end, when it comes due
-- again unless acknowledged), attempts, last error and, while leased, its
-- lease's end.  Takes nothing; raises 22023 for a negative n.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_list(queue regclass, tag text DEFAULT NULL, n integer DEFAULT NULL,
                                      include_scheduled boolean DEFAULT false)
RETURNS SETOF @extschema@.q4pg_listed_message
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM @extschema@.q4pg_check_limit(n);
    PERFORM @extschema@.q4pg_queue_info(queue);
    RETURN QUERY EXECUTE format(
        'SELECT id, tag, data::text, created_at,
                CASE WHEN lease_token IS NOT NULL AND coalesce(dead_at, run_at) > now()
                     THEN coalesce(dead_at, run_at) ELSE run_at END, attempts, last_error,
                CASE WHEN lease_token IS NOT NULL AND coalesce(dead_at, run_at) > now()
                     THEN coalesce(dead_at, run_at) END
           FROM %s
          WHERE ($1 IS NULL OR tag = $1)
            AND run_at <= CASE WHEN $3 THEN ''infinity'' ELSE now() END
            AND NOT coalesce(dead_at <= now(), false)
          ORDER BY run_at, id LIMIT $2',
        queue)
      USING tag, n, coalesce(include_scheduled, false);
END
$$;
-- What operators look at: the queues, their backlog, their consumers.

-- q4pg_queues: every q4pg queue of this database the caller may read, with
-- its data type, data length and max_attempts (null: no limit).
CREATE OR REPLACE FUNCTION @extschema@.q4pg_queues()
RETURNS TABLE (queue regclass, data_type text, data_length integer, max_attempts integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT t.queue, s.data_type, s.data_length, t.max_attempts
      FROM @extschema@.q4pg_queue_triggers() AS t
      CROSS JOIN LATERAL @extschema@.q4pg_queue_shape(t.queue) AS s
     WHERE has_table_privilege(t.queue, 'SELECT')
     ORDER BY t.queue::text;
END;

-- q4pg_stats: per queue and tag, for every queue the caller may read: the
-- messages due now (waiting), when the oldest of them was enqueued
-- (oldest_created_at) and how long it has been due (oldest_age: what an
-- alert on a stuck queue watches; a message scheduled for tomorrow does not
-- count until then), then the messages scheduled for later, under a live
-- lease, and the dead letters.  A queue with no message at all has one row,
-- tag null and zeros, so that monitoring sees every queue.  One scan of each
-- queue.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_stats()
RETURNS TABLE (queue regclass, tag text, waiting bigint, oldest_created_at timestamptz,
               oldest_age interval, scheduled bigint, leased bigint, dead bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue regclass;
BEGIN
    FOR v_queue IN SELECT q.queue FROM @extschema@.q4pg_queues() AS q LOOP
        RETURN QUERY EXECUTE format(
            'SELECT $1, tag,
                    count(*) FILTER (WHERE run_at <= now()),
                    min(created_at) FILTER (WHERE run_at <= now()),
                    now() - min(run_at) FILTER (WHERE run_at <= now()),
                    count(*) FILTER (WHERE run_at > now() AND lease_token IS NULL AND dead_at IS NULL),
                    count(*) FILTER (WHERE lease_token IS NOT NULL AND coalesce(dead_at, run_at) > now()),
                    count(*) FILTER (WHERE dead_at <= now())
               FROM %s GROUP BY tag ORDER BY tag',
            v_queue)
          USING v_queue;
        IF NOT FOUND THEN
            queue := v_queue;
            tag := NULL;
            waiting := 0;
            oldest_created_at := NULL;
            oldest_age := NULL;
            scheduled := 0;
            leased := 0;
            dead := 0;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- q4pg_next_due: when the next message of a tag that is not due yet comes
-- due: the earliest run_at after now() of a scheduled message or a live
-- lease (which, should it end unacknowledged, makes its message due).  Null
-- when there is none.  A listener that found nothing to dequeue sleeps until
-- this time at the latest: no NOTIFY says that a message came due.  Reads
-- the (tag, run_at, id) index: one probe.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_next_due(queue regclass, tag text)
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_next timestamptz;
BEGIN
    PERFORM @extschema@.q4pg_check_tag(tag);
    PERFORM @extschema@.q4pg_queue_info(queue);
    EXECUTE format('SELECT run_at FROM %s
                     WHERE tag = $1 AND run_at > now() AND run_at < ''infinity''
                     ORDER BY run_at LIMIT 1', queue)
       INTO v_next
      USING tag;
    RETURN v_next;
END
$$;

-- q4pg_dead_letters: the dead letters of a queue, of one tag or (tag null)
-- of all, oldest death first, at most n (null: all), each with its attempts,
-- last error and when it died.  One whose last allowed lease ended
-- unacknowledged says so in last_error (the error of an attempt before it,
-- if any, follows).  Raises 22023 for a negative n.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_dead_letters(queue regclass, tag text DEFAULT NULL,
                                              n integer DEFAULT NULL)
RETURNS SETOF @extschema@.q4pg_dead_letter
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM @extschema@.q4pg_check_limit(n);
    PERFORM @extschema@.q4pg_queue_info(queue);
    RETURN QUERY EXECUTE format(
        'SELECT id, tag, data::text, created_at, attempts,
                CASE WHEN lease_token IS NULL THEN last_error
                     ELSE ''q4pg: its last lease ended without an ack or a nack''
                          || coalesce(''; the error before: '' || last_error, '''') END,
                dead_at FROM %s
          WHERE ($1 IS NULL OR tag = $1) AND dead_at <= now()
          ORDER BY dead_at, id LIMIT $2',
        queue)
      USING tag, n;
END
$$;

-- q4pg_replay: gives dead letters another life: due now, attempts back to
-- 0 (last_error kept), and their tags' idle listeners woken.  Takes the ids
-- (null: every dead letter) and a tag (null: any).  Returns how many it
-- replayed; ids that are no dead letter are left alone.  Needs UPDATE on the
-- queue.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_replay(queue regclass, ids bigint[] DEFAULT NULL,
                                        tag text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_info  record := @extschema@.q4pg_queue_info(queue);
    v_count bigint := 0;
    v_tag   text;
    v_n     bigint;
BEGIN
    FOR v_tag, v_n IN EXECUTE format(
        'WITH replayed AS (
             UPDATE %s AS q SET run_at = now(), dead_at = NULL, attempts = 0, lease_token = NULL
              WHERE q.dead_at <= now() AND ($1 IS NULL OR q.id = ANY ($1)) AND ($2 IS NULL OR q.tag = $2)
             RETURNING q.tag)
         SELECT r.tag, count(*) FROM replayed AS r GROUP BY r.tag',
        queue)
      USING ids, tag
    LOOP
        PERFORM @extschema@.q4pg_wake(v_info.qualified_name, v_info.lock_key, v_tag);
        v_count := v_count + v_n;
    END LOOP;
    RETURN v_count;
END
$$;

-- q4pg_replay with one id (1.1): q4pg_replay(queue, ARRAY[id]).
CREATE OR REPLACE FUNCTION @extschema@.q4pg_replay(queue regclass, id bigint)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN @extschema@.q4pg_replay(queue, ARRAY[id]);

-- q4pg_purge_dead: deletes dead letters of a queue, of one tag or (tag null)
-- of all, dead for longer than older_than (null: all; negative: 22023).
-- Returns how many.
-- Needs DELETE on the queue.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_purge_dead(queue regclass, tag text DEFAULT NULL,
                                            older_than interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_count bigint;
BEGIN
    IF older_than < '0'::interval THEN
        RAISE EXCEPTION 'q4pg: older_than must not be negative, not %', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.q4pg_queue_info(queue);
    EXECUTE format(
        'WITH purged AS (
             DELETE FROM %s AS q
              WHERE q.dead_at <= now() - coalesce($2, ''0'') AND ($1 IS NULL OR q.tag = $1)
             RETURNING 1)
         SELECT count(*) FROM purged',
        queue)
       INTO v_count
      USING tag, older_than;
    RETURN v_count;
END
$$;

-- q4pg_consumers: the open transactions that ran a dequeue on a queue (FOR
-- UPDATE took a RowShareLock on it), whether or not they took a message,
-- oldest first.  A long one holds back VACUUM on every table of the
-- database: see xact_age.  Reads pg_locks and pg_stat_activity.
CREATE OR REPLACE FUNCTION @extschema@.q4pg_consumers()
RETURNS TABLE (queue regclass, pid integer, xact_start timestamptz, xact_age interval,
               state text, application_name text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT l.relation::regclass, a.pid, a.xact_start, now() - a.xact_start, a.state,
           a.application_name
      FROM pg_locks AS l
      JOIN pg_stat_activity AS a ON a.pid = l.pid
     WHERE l.locktype = 'relation'
       AND l.mode = 'RowShareLock'
       AND l.granted
       AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
       AND l.relation IN (SELECT q.queue FROM @extschema@.q4pg_queues() AS q)
     ORDER BY a.xact_start, a.pid;
END;

-- every queue table to 1.1: columns, index, generated functions (which an
-- extension script would make members of the extension: they are the
-- queue's, as when q4pg_create_queue makes them, so they leave it again)
DO $$
DECLARE
    v_queue regclass;
    v_fn    regprocedure;
BEGIN
    FOR v_queue IN SELECT t.queue FROM @extschema@.q4pg_queue_triggers() AS t ORDER BY 1 LOOP
        PERFORM @extschema@.q4pg_reshape_queue(v_queue);
        PERFORM @extschema@.q4pg_build_queue_functions(v_queue);
        -- (a SQL-only install, which runs this same script, has no extension)
        FOR v_fn IN
            SELECT p.oid
              FROM pg_catalog.pg_proc AS p, @extschema@.q4pg_queue_triggers(v_queue) AS t,
                   @extschema@.q4pg_queue_function_names() AS f
             WHERE p.proname = @extschema@.q4pg_queue_function_prefix(t.lock_key) || f.suffix
               AND p.pronamespace = (SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                                           WHERE c.oid = v_queue)
               AND EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'q4pg')
               AND EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                              AND d.objid = p.oid AND d.deptype = 'e')
        LOOP
            EXECUTE pg_catalog.format('ALTER EXTENSION q4pg DROP FUNCTION %s', v_fn);
        END LOOP;
    END LOOP;
END
$$;

-- the registry names its queues (1.0: bare oids); oid and regclass are the
-- same bytes, so no row changes.  Last: a producer's trigger reads the
-- registry while it holds its queue table, so the registry is locked after
-- the queue tables, as producers lock them (the other order deadlocked with
-- a running producer)
ALTER TABLE @extschema@.q4pg_idle_listeners ALTER COLUMN queue TYPE pg_catalog.regclass;
