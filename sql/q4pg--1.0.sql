\echo Use "CREATE EXTENSION q4pg" to load this file. \quit

-- q4pg: a message queue that lives in ordinary PostgreSQL tables.
--
-- Built from sql/src/*.sql (one file per concern, in file-name order) by the
-- Makefile; edit the sources, not sql/q4pg--<version>.sql.
--
-- A queue is a table made by q4pg_create_queue(): (id, tag, data, created_at),
-- an index on (tag, id), a CHECK constraint bounding the length of data and a
-- statement-level trigger that NOTIFYs idle listeners.  The table itself is
-- the whole truth about a queue (no registry to drift): it is a q4pg queue when
-- it carries the q4pg_notify trigger, its data type is the type of its "data"
-- column, its length limit is written in the name of its CHECK constraint, its
-- lock key is the argument of its trigger.  Queue tables, and the functions
-- generated for each queue (see 40_queue_functions.sql), are not extension
-- members: pg_dump dumps them with their rows.
--
-- Every function is SECURITY INVOKER: the caller's rights on the queue table
-- decide what it may do.  Every function is immune to the caller's
-- search_path: most pin it (SET search_path = pg_catalog, pg_temp); the
-- per-message hot path does not (pinning costs a catalog lookup per call) and
-- instead qualifies every name, type and operator it uses.  A queue is passed
-- as regclass, which PostgreSQL resolves in the caller's search_path before
-- the function body runs.
-- The shapes and constants every other part uses, each defined once.

-- A message as every function that returns messages returns it.  data is text
-- whatever the queue's data type: JSON text on json and jsonb queues.
CREATE TYPE @extschema@.q4pg_message AS (
    id         bigint,
    tag        text,
    data       text,
    created_at timestamptz
);

-- q4pg_lock_class: the first key of q4pg's two-key advisory locks.
-- Takes 'barrier' or 'presence'; returns 1899262055 or 1899262056.
-- barrier:  producers hold it shared from their INSERT to their commit;
--           q4pg_register_idle probes it exclusively (the no-lost-wake-up
--           barrier).
-- presence: idle listeners hold it shared while registered; producers probe it
--           exclusively (does anybody wait?).
-- The second key is the queue's lock key (see q4pg_create_queue).  Applications
-- must not use these two numbers as the first key of their own locks.
CREATE FUNCTION @extschema@.q4pg_lock_class(p_kind text)
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
CREATE FUNCTION @extschema@.q4pg_channel_name(p_qualified_name text, p_tag text)
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
CREATE FUNCTION @extschema@.q4pg_check_tag(p_tag text)
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
-- What a queue table says about itself.

-- q4pg_queue_triggers: the queues of the database, or the one queue p_queue
-- is when it is one: the tables that carry the q4pg_notify trigger, with the
-- lock key written in it (its argument).  The one definition of "a table is a
-- queue".  Reads pg_trigger (by index when p_queue is given).
CREATE FUNCTION @extschema@.q4pg_queue_triggers(p_queue regclass DEFAULT NULL,
                                                OUT queue regclass, OUT lock_key integer)
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
            SELECT t.tgrelid::regclass, nullif(split_part(encode(t.tgargs, 'escape'), '\000', 1), '')::integer
              FROM pg_trigger AS t
             WHERE t.tgname = 'q4pg_notify' AND t.tgfoid = v_notify;
    ELSE
        RETURN QUERY
            SELECT t.tgrelid::regclass, nullif(split_part(encode(t.tgargs, 'escape'), '\000', 1), '')::integer
              FROM pg_trigger AS t
             WHERE t.tgrelid = p_queue AND t.tgname = 'q4pg_notify' AND t.tgfoid = v_notify;
    END IF;
END
$$;

-- q4pg_queue_shape: what a table is to q4pg.  A queue's shape is what
-- q4pg_create_queue makes and DROP EXTENSION q4pg CASCADE leaves: columns id
-- bigint, tag text, data json/jsonb/text, created_at timestamptz, nothing
-- else, and the q4pg_data_max_<n>_chars CHECK constraint (the length limit in
-- characters).  Returns its data type and length, what is missing from that
-- shape (null when nothing), whether it is a queue already (it carries the
-- q4pg_notify trigger) and the lock key written in that trigger.  Reads pg_class, pg_attribute, pg_constraint,
-- pg_trigger: index probes only.
CREATE FUNCTION @extschema@.q4pg_queue_shape(
    p_table regclass,
    OUT data_type text,
    OUT data_length integer,
    OUT missing text,
    OUT is_queue boolean,
    OUT lock_key integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns text;
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
    data_type := (regexp_match(v_columns,
                  '^id bigint, tag text, data (json|jsonb|text), created_at timestamp with time zone$'))[1];
    IF (SELECT c.relkind FROM pg_class AS c WHERE c.oid = p_table) <> 'r' THEN
        missing := 'it is not an ordinary table';
    ELSIF data_type IS NULL THEN
        missing := format('its columns are (%s), not (id bigint, tag text, data json|jsonb|text, created_at timestamptz)',
                          v_columns);
    ELSIF data_length IS NULL THEN
        missing := 'it has no q4pg_data_max_<n>_chars CHECK constraint';
    END IF;
    SELECT true, t.lock_key INTO is_queue, lock_key
      FROM @extschema@.q4pg_queue_triggers(p_table) AS t;
    is_queue := FOUND;
END
$$;

-- q4pg_queue_info: everything q4pg reads from a queue table's catalog entries.
-- Takes a table; returns its data type ('json', 'jsonb' or 'text'), its data
-- length limit in characters, its lock key (the argument of its q4pg_notify
-- trigger), its schema-qualified name as quote_ident() writes each part, its
-- schema and its owner.  Raises undefined_table (42P01) when the table is no
-- q4pg queue.  Reads pg_class, pg_namespace and, through q4pg_queue_shape,
-- the table's columns, constraints and trigger.
CREATE FUNCTION @extschema@.q4pg_queue_info(
    p_queue regclass,
    OUT data_type text,
    OUT data_length integer,
    OUT lock_key integer,
    OUT qualified_name text,
    OUT schema regnamespace,
    OUT owner oid)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_is_queue boolean;
BEGIN
    SELECT s.data_type, s.data_length, s.lock_key, format('%I.%I', n.nspname, c.relname),
           c.relnamespace::regnamespace, c.relowner, s.is_queue
      INTO data_type, data_length, lock_key, qualified_name, schema, owner, v_is_queue
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
END
$$;

-- q4pg_queue_settings: a queue's data type and data length limit.
-- Takes a queue; returns (data_type, data_length); raises as q4pg_queue_info.
CREATE FUNCTION @extschema@.q4pg_queue_settings(
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
-- q4pg_register_idle(queue, tag).  Producers NOTIFY only the tags an idle
-- listener registered for, so a producer with nobody waiting never pays for
-- NOTIFY (whose commit takes a lock that serializes every notifying
-- transaction of the cluster).  Two advisory locks per queue (q4pg_lock_class)
-- make this cheap and lose no wake-up:
--   presence: a registered listener holds it shared (session level) until it
--     unregisters or its session ends, so a registration left by a dead
--     session costs producers nothing.  Producers probe it exclusively: when
--     they can take it, nobody waits and their trigger does not fire.
--   barrier: every producer holds it shared from its INSERT to its commit.
--     q4pg_register_idle answers true only when it can take it exclusively,
--     i.e. when no producer that may have probed before the registration is
--     still running: a dequeue made after a true answer sees every message
--     that will not be notified.
-- Both are taken by the WHEN clause of each queue's trigger (see
-- q4pg_attach_queue), built-in functions only, so that while nobody waits an
-- INSERT runs no PL/pgSQL at all.

-- The registry: one row per (queue, tag, backend) of listeners idle now.
-- Run-time state, meaningless after a restore: unlogged, and not dumped.
-- Everyone may read it; a backend may add and remove only its own rows, and
-- remove the rows of backends that are gone.
CREATE UNLOGGED TABLE @extschema@.q4pg_idle_listeners (
    queue    oid NOT NULL,
    tag      text NOT NULL,
    pid      integer NOT NULL,
    since    timestamptz NOT NULL DEFAULT now(),
    lock_key integer NOT NULL,      -- the queue's lock key
    PRIMARY KEY (queue, tag, pid)
);
ALTER TABLE @extschema@.q4pg_idle_listeners ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON @extschema@.q4pg_idle_listeners FOR SELECT USING (true);
CREATE POLICY add_own ON @extschema@.q4pg_idle_listeners FOR INSERT
    WITH CHECK (pid = pg_catalog.pg_backend_pid());
CREATE POLICY remove_own_or_gone ON @extschema@.q4pg_idle_listeners FOR DELETE
    USING (pid = pg_catalog.pg_backend_pid()
           OR NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity AS a
                           WHERE a.pid OPERATOR(pg_catalog.=) q4pg_idle_listeners.pid));
REVOKE ALL ON @extschema@.q4pg_idle_listeners FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON @extschema@.q4pg_idle_listeners TO PUBLIC;

-- q4pg_notify: the trigger on every queue table (AFTER INSERT, per statement,
-- gated by its WHEN clause: it runs only when some listener is registered).
-- Sends one NOTIFY, with an empty payload, on q4pg_channel_name() of each tag
-- the statement added that a registered listener waits for.  Reads
-- q4pg_idle_listeners.
CREATE FUNCTION @extschema@.q4pg_notify()
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

-- q4pg_channel: the NOTIFY channel of a queue and tag (LISTEN on it).
-- Returns q4pg_channel_name(<schema>.<table>, tag); raises unless the table is
-- a queue.
CREATE FUNCTION @extschema@.q4pg_channel(queue regclass, tag text)
RETURNS text
LANGUAGE sql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT @extschema@.q4pg_channel_name(i.qualified_name, tag)
      FROM @extschema@.q4pg_queue_info(queue) AS i;
END;

-- q4pg_register_idle: the calling session is an idle listener of a queue's
-- tag, about to sleep (it LISTENs on q4pg_channel() already).
-- Returns true when it may sleep until a notification: every producer that
-- could have missed the registration has finished, so a dequeue attempt made
-- now sees their messages.  Returns false when such a producer still runs:
-- the session stays registered (later producers notify it); it should try to
-- dequeue and call again after a short while.  Never waits, and never makes a
-- producer wait: every lock it takes is session-level, so calling it inside a
-- transaction block blocks nobody (but LISTEN, and the registration, take
-- effect only at commit: register on an autocommit connection).
-- Raises for a bad tag (q4pg_check_tag), a table that is no queue (42P01) and
-- without SELECT on the queue (42501).  Writes q4pg_idle_listeners.
CREATE FUNCTION @extschema@.q4pg_register_idle(queue regclass, tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_key      integer;
    v_presence integer := @extschema@.q4pg_lock_class('presence');
    v_barrier  integer := @extschema@.q4pg_lock_class('barrier');
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
    IF FOUND THEN
        -- a new registration holds the presence lock until q4pg_unregister_idle
        -- or the end of the session.  Never wait for it: should a producer's
        -- probe hold it this instant, undo and let the caller try again.
        IF NOT pg_try_advisory_lock_shared(v_presence, v_key) THEN
            DELETE FROM @extschema@.q4pg_idle_listeners AS w
             WHERE w.queue = queue AND w.tag = tag AND w.pid = pg_backend_pid();
            RETURN false;
        END IF;
        -- forget the registrations of sessions that are gone
        DELETE FROM @extschema@.q4pg_idle_listeners AS w
         WHERE NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid);
    END IF;
    -- the barrier, taken and released at once
    RETURN pg_try_advisory_lock(v_barrier, v_key) AND pg_advisory_unlock(v_barrier, v_key);
END
$$;

-- q4pg_unregister_idle: the calling session no longer waits for a queue's tag
-- (it woke up, or stops listening).  Returns true when it was registered.
-- Writes q4pg_idle_listeners; releases the presence lock (also one left by a
-- registration that was rolled back).
CREATE FUNCTION @extschema@.q4pg_unregister_idle(queue regclass, tag text)
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
-- each queue gets five small PL/pgSQL functions with static SQL naming its
-- table, whose plans PL/pgSQL keeps for the session:
--     q4pg_<key>_enqueue(tag text, data text)           -> bigint
--     q4pg_<key>_enqueue_many(tag text, data text[])    -> SETOF bigint
--     q4pg_<key>_dequeue(tag text)                      -> q4pg_message rows
--     q4pg_<key>_dequeue_many(tag text, n integer)      -> q4pg_message rows
--     q4pg_<key>_cancel(id bigint)                      -> boolean
-- (<key>: the queue's lock key in hex).  They live in the queue's schema and
-- are owned by its owner, SECURITY INVOKER like everything else; they are not
-- extension members, so pg_dump keeps them with the table.  The public
-- functions (q4pg_enqueue, ...) reach them through q4pg_route().
--
-- Their bodies name the table, so renaming the table or moving it to another
-- schema leaves them stale.  Each body carries a marker, a digest of the
-- table's name and settings; q4pg_build_route() checks it, rebuilds stale functions when
-- the caller owns the queue, and otherwise builds session-private copies in
-- pg_temp: a queue always works, stale or not.
--
-- They do not pin search_path (it costs a catalog lookup per call): every
-- name, type and operator in them is schema-qualified.

-- q4pg_queue_function_names: the generated functions' name suffixes and
-- argument types, the one list that building, checking and dropping use.
CREATE FUNCTION @extschema@.q4pg_queue_function_names(OUT suffix text, OUT arguments text)
RETURNS SETOF record
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM (VALUES ('enqueue', 'text, text'),
                          ('enqueue_many', 'text, text[]'),
                          ('dequeue', 'text'),
                          ('dequeue_many', 'text, integer'),
                          ('cancel', 'bigint')) AS f(suffix, arguments);
END;

-- q4pg_queue_function_prefix: 'q4pg_<key in hex>_', the start of the names of
-- a queue's generated functions.
CREATE FUNCTION @extschema@.q4pg_queue_function_prefix(p_lock_key integer)
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
CREATE FUNCTION @extschema@.q4pg_queue_function_marker(p_qualified_name text, p_data_type text,
                                                       p_data_length integer)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN format('-- q4pg 1.0 generated function, queue %s',
              md5(format('%s %s %s', p_qualified_name, p_data_type, p_data_length)));

-- q4pg_queue_functions_sql: the CREATE OR REPLACE FUNCTION statements of a
-- queue's generated functions, in schema p_schema (a quoted name, or
-- 'pg_temp').  Reads the queue's settings; writes nothing.
CREATE FUNCTION @extschema@.q4pg_queue_functions_sql(p_queue regclass, p_schema text)
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
    v_dollar    text;
    -- the columns of q4pg_message: the generated functions return its shape
    -- without naming the type, so that DROP EXTENSION does not reach them
    v_row text := (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)),
                                     ', ' ORDER BY a.attnum)
                     FROM pg_attribute AS a
                    WHERE a.attrelid = '@extschema@.q4pg_message'::regclass AND a.attnum > 0);
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

    -- the bodies' dollar quote: one the table's name does not hold, so that
    -- no name can end a body and go on as code
    v_dollar := '$q4pg$';
    WHILE strpos(v_table, v_dollar) > 0 LOOP
        v_dollar := format('$q4pg%s$', (random() * 1e9)::bigint);
    END LOOP;

    RETURN format($f$
%1$senqueue(p_tag text, p_data text)
RETURNS bigint
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_length integer;
    v_id     bigint;
BEGIN
    IF p_tag IS NULL OR p_data IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;%3$s
    v_length := %4$s;%5$s
    INSERT INTO %6$s AS q (tag, data) VALUES (p_tag, p_data::%7$s) RETURNING q.id INTO v_id;
    RETURN v_id;
END
%10$s;

%1$senqueue_many(p_tag text, p_data text[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS %10$s
%2$s
DECLARE
    v_length integer;
BEGIN
    IF p_tag IS NULL OR p_data IS NULL
       OR pg_catalog.array_position(p_data, NULL::pg_catalog.text) IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;%3$s
    SELECT pg_catalog.max(%8$s) INTO v_length FROM pg_catalog.unnest(p_data) AS u(d);%5$s
    RETURN QUERY
        INSERT INTO %6$s AS q (tag, data)
        SELECT p_tag, u.d::%7$s FROM pg_catalog.unnest(p_data) WITH ORDINALITY AS u(d, n)
         ORDER BY u.n
        RETURNING q.id;
END
%10$s;

%1$sdequeue(p_tag text)
RETURNS TABLE (%9$s)
LANGUAGE plpgsql
AS %10$s
%2$s
BEGIN
    RETURN QUERY
        DELETE FROM %6$s AS q
         WHERE q.id OPERATOR(pg_catalog.=)
               (SELECT s.id FROM %6$s AS s WHERE s.tag OPERATOR(pg_catalog.=) p_tag
                 ORDER BY s.id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING q.id, q.tag, q.data::pg_catalog.text, q.created_at;
END
%10$s;

%1$sdequeue_many(p_tag text, p_n integer)
RETURNS TABLE (%9$s)
LANGUAGE plpgsql
AS %10$s
%2$s
BEGIN
    IF p_n IS NULL OR p_n OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %%', coalesce(p_n::pg_catalog.text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        WITH taken AS (
            DELETE FROM %6$s AS q
             WHERE q.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                       SELECT s.id FROM %6$s AS s WHERE s.tag OPERATOR(pg_catalog.=) p_tag
                        ORDER BY s.id LIMIT p_n FOR UPDATE SKIP LOCKED))
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
    DELETE FROM %6$s AS q
     WHERE q.id OPERATOR(pg_catalog.=)
           (SELECT s.id FROM %6$s AS s WHERE s.id OPERATOR(pg_catalog.=) p_id FOR UPDATE SKIP LOCKED);
    RETURN FOUND;
END
%10$s;
$f$,
        v_head,                                             -- 1
        @extschema@.q4pg_queue_function_marker(
            v_table, v_info.data_type, v_info.data_length), -- 2
        v_tag_check,                                        -- 3
        format(v_length, 'p_data'),                         -- 4
        v_too_long,                                         -- 5
        v_table,                                            -- 6
        v_cast,                                             -- 7
        format(v_length, 'u.d'),                            -- 8
        v_row,                                              -- 9
        v_dollar);                                          -- 10
END
$$;

-- q4pg_queue_functions_current: true when the schema holds every generated
-- function of the queue, each with the queue's present marker.  Reads pg_proc.
CREATE FUNCTION @extschema@.q4pg_queue_functions_current(p_queue regclass, p_schema regnamespace)
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
                                i.qualified_name, i.data_type, i.data_length)) > 0;
END;

-- q4pg_build_queue_functions: (re)creates a queue's generated functions in
-- the queue's own schema.  Needs the rights to create functions there (the
-- queue's owner has them); writes pg_proc.
CREATE FUNCTION @extschema@.q4pg_build_queue_functions(p_queue regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record := @extschema@.q4pg_queue_info(p_queue);
BEGIN
    EXECUTE @extschema@.q4pg_queue_functions_sql(p_queue, v_info.schema::text);
END
$$;

-- q4pg_drop_queue_functions: drops generated functions from a schema and
-- from the session's pg_temp: those of the queue p_queue, or (p_queue null)
-- those whose queue is gone (a queue table dropped by hand leaves them).
CREATE FUNCTION @extschema@.q4pg_drop_queue_functions(p_queue regclass, p_schema regnamespace)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix text := CASE WHEN p_queue IS NOT NULL THEN @extschema@.q4pg_queue_function_prefix(
                                (@extschema@.q4pg_queue_info(p_queue)).lock_key) END;
    v_fn     record;
BEGIN
    FOR v_fn IN
        SELECT format('%I.%I(%s)', n.nspname, p.proname, f.arguments) AS signature
          FROM @extschema@.q4pg_queue_function_names() AS f, pg_proc AS p, pg_namespace AS n
         WHERE p.proname LIKE 'q4pg\_%\_' || f.suffix
           AND p.pronargs = (SELECT cardinality(string_to_array(f.arguments, ',')))
           AND n.oid = p.pronamespace
           AND (p.pronamespace = p_schema::oid OR p.pronamespace = pg_my_temp_schema())
           AND CASE WHEN v_prefix IS NOT NULL THEN p.proname = v_prefix || f.suffix
                    ELSE p.proname ~ ('^q4pg_[0-9a-f]{1,8}_' || f.suffix || '$')
                         AND NOT EXISTS (
                             SELECT FROM @extschema@.q4pg_queue_triggers() AS t
                              WHERE p.proname = @extschema@.q4pg_queue_function_prefix(t.lock_key)
                                                || f.suffix) END
    LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || v_fn.signature;
    END LOOP;
END
$$;

-- q4pg_build_route: finds (or makes) the generated functions a session uses
-- for a queue and remembers them for the session.  p_name is the queue's name
-- as the caller sees it (queue::text under the caller's search_path).
-- Returns the functions' schema-qualified name prefix: '<schema>.q4pg_<key>_'.
-- Uses the queue's own functions when they are current; rebuilds them when
-- the caller owns the queue; otherwise builds copies in pg_temp.  Remembers
-- the answer in the settings q4pg.name_<oid> and q4pg.route_<oid> (RESET ALL,
-- DISCARD ALL and a rolled-back transaction forget it).  Raises as
-- q4pg_queue_info.
CREATE FUNCTION @extschema@.q4pg_build_route(p_queue regclass, p_name text)
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
    PERFORM set_config('q4pg.name_' || p_queue::oid, p_name, false);
    RETURN set_config('q4pg.route_' || p_queue::oid,
                      v_schema || '.' || @extschema@.q4pg_queue_function_prefix(v_info.lock_key), false);
END
$$;

-- q4pg_route: the name prefix of the generated functions this session uses for
-- a queue (see q4pg_build_route), from the session's memory when the queue
-- still has the name it had then.  An SQL function so that the planner inlines
-- it into the callers' expressions: on the hot path it costs three setting
-- lookups, a regular expression match and no function call.  A session can
-- only ever misroute its own calls by setting these settings itself.  Not
-- pinned (inlining forbids it): its SQL-standard body is bound when the
-- extension is created, whatever the caller's search_path.
CREATE FUNCTION @extschema@.q4pg_route(p_queue regclass)
RETURNS text
LANGUAGE sql
RETURN CASE
    WHEN pg_catalog.current_setting('q4pg.name_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text, true)
         OPERATOR(pg_catalog.=) p_queue::pg_catalog.text
     -- the callers splice the route into SQL: only the shape q4pg_build_route
     -- writes passes (any session may set any setting of its own)
     AND pg_catalog.current_setting('q4pg.route_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text, true)
         OPERATOR(pg_catalog.~) '^(pg_temp|[a-z_][a-z0-9_$]*|"([^"]|"")+")\.q4pg_[0-9a-f]{1,8}_$'
    THEN pg_catalog.current_setting('q4pg.route_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text)
    ELSE @extschema@.q4pg_build_route(p_queue, p_queue::pg_catalog.text)
END;
-- Creating, adopting and dropping queue tables.

-- q4pg_attach_queue: makes a table of a queue's shape (q4pg_queue_shape) a
-- q4pg queue: its (tag, id) index when missing, its q4pg_notify trigger with a
-- lock key no other queue of the database uses, its comment and its
-- generated functions.  Returns the table.  Raises duplicate_table (42P07)
-- for a queue already and for a table of another shape, saying what differs.
-- Writes the catalogs.
CREATE FUNCTION @extschema@.q4pg_attach_queue(p_queue regclass)
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
    IF NOT EXISTS (SELECT FROM pg_index AS i
                    WHERE i.indrelid = p_queue AND i.indkey::text = (
                          SELECT a1.attnum || ' ' || a2.attnum
                            FROM pg_attribute AS a1, pg_attribute AS a2
                           WHERE a1.attrelid = p_queue AND a1.attname = 'tag'
                             AND a2.attrelid = p_queue AND a2.attname = 'id')) THEN
        EXECUTE format('CREATE INDEX ON %s (tag, id)', p_queue);
    END IF;
    -- the gate (see 30_listeners.sql), with the queue's lock key as a constant
    EXECUTE format(
        'CREATE TRIGGER q4pg_notify AFTER INSERT ON %1$s
             REFERENCING NEW TABLE AS q4pg_new_rows
             FOR EACH STATEMENT
             WHEN (pg_catalog.pg_advisory_xact_lock_shared(%3$s, %2$s) IS NOT NULL
                   AND NOT (pg_catalog.pg_try_advisory_lock(%4$s, %2$s)
                            AND pg_catalog.pg_advisory_unlock(%4$s, %2$s)))
             EXECUTE FUNCTION @extschema@.q4pg_notify(%2$L)',
        p_queue, v_key,
        @extschema@.q4pg_lock_class('barrier'), @extschema@.q4pg_lock_class('presence'));
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
CREATE FUNCTION @extschema@.q4pg_create_queue(
    table_name text,
    data_type text DEFAULT 'json',
    data_length integer DEFAULT 1023,
    schema_name name DEFAULT current_schema())
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
                 CONSTRAINT %I CHECK (char_length(data::text) <= %s)
             ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                     autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000,
                     autovacuum_vacuum_cost_delay = 0)',
            v_schema, v_name, v_type::regtype,
            format('q4pg_data_max_%s_chars', data_length), data_length);
        RETURN @extschema@.q4pg_attach_queue(format('%I.%I', v_schema, v_name)::regclass);
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
        RETURN @extschema@.q4pg_attach_queue(v_queue);     -- raises for another shape
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
CREATE FUNCTION @extschema@.q4pg_drop_queue(queue regclass)
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
-- The message functions: what producers and consumers call.
--
-- The five on the hot path (enqueue, enqueue_many, dequeue, dequeue_many,
-- cancel) hand the call to the queue's generated function (see
-- 40_queue_functions.sql) through q4pg_route(), with one EXECUTE of a
-- one-call statement.  They do not pin search_path (it costs a catalog lookup
-- per call): every name, type and operator in them is schema-qualified, and
-- the statement they EXECUTE names its function with its schema.  The five
-- share one shape on purpose: each is the typed public door to one generated
-- function, and folding them into one would cost a call on the hot path.

-- q4pg_enqueue: adds one message to a queue.  Returns its id.
-- data must parse as the queue's data type and be at most its data length in
-- characters, the tag at most 2048 bytes, neither null; otherwise nothing is
-- stored (22P02, 22001, 22004).  Inserts into the queue table (its trigger
-- notifies idle listeners of the tag).
CREATE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_id bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'enqueue($1, $2)'
       INTO v_id
      USING tag, data;
    RETURN v_id;
END
$$;

-- q4pg_enqueue_many: adds one message per element of data, in array order, in
-- one statement (so one NOTIFY).  Returns their ids in the same order.  One
-- bad element stores none of them.
CREATE FUNCTION @extschema@.q4pg_enqueue_many(queue regclass, tag text, data text[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'enqueue_many($1, $2)'
      USING tag, data;
END
$$;

-- q4pg_dequeue: takes the oldest message of a tag that no other transaction
-- holds (FOR UPDATE SKIP LOCKED) and deletes it inside the caller's
-- transaction: ROLLBACK gives it back.  Returns zero or one message; never
-- waits for another consumer.
CREATE FUNCTION @extschema@.q4pg_dequeue(queue regclass, tag text)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'dequeue($1)'
      USING tag;
END
$$;

-- q4pg_dequeue_many: like q4pg_dequeue, for up to n messages at once.
-- Returns them oldest first; raises 22023 when n is null or negative.
CREATE FUNCTION @extschema@.q4pg_dequeue_many(queue regclass, tag text, n integer)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'dequeue_many($1, $2)'
      USING tag, n;
END
$$;

-- q4pg_cancel: removes a waiting message by id.  Returns true when it removed
-- it; false when there is no such message or a consumer holds it now.  Never
-- waits.
CREATE FUNCTION @extschema@.q4pg_cancel(queue regclass, id bigint)
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

-- q4pg_count: the number of messages in a queue, of one tag or (tag null) of
-- all.  Messages held by a consumer's open transaction still count.
CREATE FUNCTION @extschema@.q4pg_count(queue regclass, tag text DEFAULT NULL)
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
    IF tag IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', queue) INTO v_count;
    ELSE
        EXECUTE format('SELECT count(*) FROM %s WHERE tag = $1', queue) INTO v_count USING tag;
    END IF;
    RETURN v_count;
END
$$;

-- q4pg_list: the messages of a queue, oldest first, of one tag or (tag null)
-- of all, at most n of them (null: all).  Takes nothing; raises 22023 for a
-- negative n.
CREATE FUNCTION @extschema@.q4pg_list(queue regclass, tag text DEFAULT NULL, n integer DEFAULT NULL)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF n < 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.q4pg_queue_info(queue);
    RETURN QUERY EXECUTE format(
        'SELECT id, tag, data::text, created_at FROM %s
          WHERE $1 IS NULL OR tag = $1
          ORDER BY id LIMIT $2',
        queue)
      USING tag, n;
END
$$;
-- What operators look at: the queues, their backlog, their consumers.

-- q4pg_queues: every q4pg queue of this database the caller may read, with
-- its data type and data length.
CREATE FUNCTION @extschema@.q4pg_queues()
RETURNS TABLE (queue regclass, data_type text, data_length integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT t.queue, s.data_type, s.data_length
      FROM @extschema@.q4pg_queue_triggers() AS t
      CROSS JOIN LATERAL @extschema@.q4pg_queue_shape(t.queue) AS s
     WHERE has_table_privilege(t.queue, 'SELECT')
     ORDER BY t.queue::text;
END;

-- q4pg_stats: per queue and tag, the messages waiting and the age of the
-- oldest, for every queue the caller may read.
CREATE FUNCTION @extschema@.q4pg_stats()
RETURNS TABLE (queue regclass, tag text, waiting bigint, oldest_created_at timestamptz,
               oldest_age interval)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue regclass;
BEGIN
    FOR v_queue IN SELECT q.queue FROM @extschema@.q4pg_queues() AS q LOOP
        RETURN QUERY EXECUTE format(
            'SELECT $1, tag, count(*), min(created_at), now() - min(created_at)
               FROM %s GROUP BY tag ORDER BY tag',
            v_queue)
          USING v_queue;
    END LOOP;
END
$$;

-- q4pg_consumers: the open transactions that ran a dequeue on a queue (FOR
-- UPDATE took a RowShareLock on it), whether or not they took a message,
-- oldest first.  A long one holds back VACUUM on every table of the
-- database: see xact_age.  Reads pg_locks and pg_stat_activity.
CREATE FUNCTION @extschema@.q4pg_consumers()
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
