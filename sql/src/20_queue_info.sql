-- What a queue table says about itself.

-- q4pg_queue_triggers: the queues of the database, or the one queue p_queue
-- is when it is one: the tables that carry the q4pg_notify trigger, with the
-- lock key written in it (its first argument) and the queue's max_attempts
-- (its second argument; none: no limit).  The one definition of "a table is a
-- queue" and the one place a queue's settings other than its columns live.
-- Reads pg_trigger (by index when p_queue is given).
CREATE FUNCTION @extschema@.q4pg_queue_triggers(p_queue regclass DEFAULT NULL,
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
-- timestamptz, slot smallint, nothing else, partitioned by slot (a ring:
-- 55_ring.sql), and the q4pg_data_max_<n>_chars CHECK constraint (the length
-- limit in characters).  An ordinary table without slot has the shape of q4pg
-- 1.1, and with only the first four columns that of 1.0 (old_shape:
-- q4pg_reshape_queue brings either to this version's).  Returns its data type and length, what is missing from
-- that shape (null when nothing), whether it has the 1.0 shape, whether it is
-- a queue already (it carries the q4pg_notify trigger) and the lock key and
-- max_attempts written in that trigger.  Reads pg_class, pg_attribute,
-- pg_constraint, pg_trigger: index probes only.
CREATE FUNCTION @extschema@.q4pg_queue_shape(
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
    v_added_1_2 text := ', slot smallint';
    v_kind      "char" := (SELECT c.relkind FROM pg_class AS c WHERE c.oid = p_table);
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
    SELECT t.data_type, v_columns <> format(v_shape_1_0, t.data_type) || v_added_1_1 || v_added_1_2
      INTO data_type, old_shape
      FROM unnest(ARRAY['json', 'jsonb', 'text']) AS t(data_type)
     WHERE (v_kind = 'r' AND v_columns IN (format(v_shape_1_0, t.data_type),
                                           format(v_shape_1_0, t.data_type) || v_added_1_1))
        OR (v_kind = 'p' AND v_columns = format(v_shape_1_0, t.data_type) || v_added_1_1 || v_added_1_2);
    old_shape := coalesce(old_shape, false);
    IF v_kind NOT IN ('r', 'p') THEN
        missing := 'it is not a table';
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
CREATE FUNCTION @extschema@.q4pg_queue_info(
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
        RAISE EXCEPTION 'q4pg: queue % has the shape of an older q4pg (1.0 or 1.1)', p_queue
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Its owner brings it to this version with SELECT q4pg_create_queue(%L, %L, %s).',
                                qualified_name, data_type, data_length);
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
