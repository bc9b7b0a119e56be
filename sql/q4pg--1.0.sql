\echo Use "CREATE EXTENSION q4pg" to load this file. \quit

-- q4pg 1.0: a message queue that lives in ordinary PostgreSQL tables.
--
-- A queue is a table made by q4pg_create_queue(): (id, tag, data, created_at),
-- an index on (tag, id), a CHECK constraint bounding the length of data and a
-- statement-level trigger that NOTIFYs listeners.  The table itself is the
-- whole truth about a queue (no registry to drift): it is a q4pg queue when it
-- carries the q4pg_notify trigger, its data type is the type of its "data"
-- column, its length limit is written in the name of its CHECK constraint.
-- Queue tables are not extension members, so pg_dump dumps them and their
-- rows like any other table.
--
-- Every function is SECURITY INVOKER (the caller's rights on the queue table
-- decide what it may do) and pins search_path, so a caller's search_path
-- cannot change what runs.  A queue is passed as regclass, which PostgreSQL
-- resolves in the caller's search_path before the function body runs.

-- Listeners that are idle, waiting for a message of a tag: one row per
-- (queue, tag, backend).  Producers NOTIFY only the tags someone waits for, so
-- a producer with no idle listener never pays for NOTIFY (whose commit takes a
-- lock that serializes every notifying transaction in the cluster).  Run-time
-- state, meaningless after a restore: unlogged, and not dumped.
-- Everyone may read it; a backend may add and remove only its own rows, and
-- remove the rows of backends that are gone.
CREATE UNLOGGED TABLE @extschema@.q4pg_idle_listeners (
    queue oid NOT NULL,
    tag   text NOT NULL,
    pid   integer NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    lock_key integer NOT NULL,      -- the queue's lock key (see q4pg_notify)
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

-- q4pg_notify: the trigger on every queue table.
-- Sends one NOTIFY, with an empty payload, on the channel q4pg_channel() names,
-- for each tag an INSERT statement added that a listener waits for (q4pg_register_idle).
--
-- The gate is the trigger's WHEN clause (see q4pg_create_queue), evaluated
-- after each INSERT statement with built-in functions only, so that a producer
-- with no idle listener runs no PL/pgSQL at all:
--   1. pg_advisory_xact_lock_shared(1899262055, <key>), held until the
--      producer's transaction ends: the barrier that q4pg_register_idle waits out, so no
--      wake-up is lost;
--   2. pg_try_advisory_lock(1899262056, <key>) AND pg_advisory_unlock(...):
--      registered listeners hold the second key shared for as long as they are
--      registered, so when the probe can take it exclusively nobody waits and
--      the trigger does not fire (a registration left by a session that is gone
--      does not count: its lock went with it).  One expression, so nothing can
--      interrupt between taking and releasing.
-- <key> is the queue's lock key: the table's oid when it was created, written
-- as a constant into the WHEN clause and as the trigger's argument, so that it
-- survives pg_dump and renames (q4pg_register_idle reads it from the argument).
CREATE FUNCTION @extschema@.q4pg_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) || ':';
    v_tag    text;
BEGIN
    FOR v_tag IN
        SELECT DISTINCT r.tag FROM q4pg_new_rows AS r
         WHERE EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                        WHERE w.queue = TG_RELID AND w.tag = r.tag)
    LOOP
        PERFORM pg_notify('q4pg_' || md5(v_prefix || v_tag), '');
    END LOOP;
    RETURN NULL;
END
$$;

-- q4pg_queue_settings: the settings of a queue table.
-- Returns its data type ('json', 'jsonb' or 'text') and data length limit in
-- characters; raises undefined_table (42P01) when the table is no q4pg queue.
CREATE FUNCTION @extschema@.q4pg_queue_settings(
    p_queue regclass,
    OUT data_type text,
    OUT data_length integer)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- three index probes (a join here would scan pg_constraint)
    SELECT (SELECT format_type(a.atttypid, NULL)
              FROM pg_attribute AS a
             WHERE a.attrelid = p_queue AND a.attname = 'data' AND NOT a.attisdropped),
           (SELECT (regexp_match(c.conname, '^q4pg_data_max_(\d+)_chars$'))[1]::integer
              FROM pg_constraint AS c
             WHERE c.conrelid = p_queue AND c.contype = 'c'
               AND c.conname LIKE 'q4pg\_data\_max\_%'
             LIMIT 1)
      INTO data_type, data_length
     WHERE EXISTS (SELECT FROM pg_trigger AS t
                    WHERE t.tgrelid = p_queue AND t.tgname = 'q4pg_notify'
                      AND t.tgfoid = '@extschema@.q4pg_notify()'::regprocedure);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'q4pg: table % is not a q4pg queue', p_queue
            USING ERRCODE = 'undefined_table',
                  HINT = 'Create one with q4pg_create_queue().';
    END IF;
END
$$;

-- q4pg_cache_settings: q4pg_queue_settings() for the per-message functions.
-- Looks the settings up and remembers them for the rest of the session in the
-- placeholder setting q4pg.queue_<table oid> (value '<data type> <data
-- length>'), which the per-message functions read first: a catalog lookup per
-- call cost more than the INSERT it guarded.  A stale entry cannot store bad
-- data: the column's type and the CHECK constraint decide what is stored, the
-- entry only picks the cast and words the error.  RESET ALL, DISCARD ALL and a
-- rolled-back transaction forget it; a new table gets a new oid.
CREATE FUNCTION @extschema@.q4pg_cache_settings(p_queue regclass)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_settings record;
BEGIN
    v_settings := @extschema@.q4pg_queue_settings(p_queue);
    RETURN set_config('q4pg.queue_' || p_queue::oid,
                      v_settings.data_type || ' ' || v_settings.data_length, false);
END
$$;

-- q4pg_create_queue: creates a queue table, its index and its NOTIFY trigger.
-- p_table is an SQL name, optionally schema-qualified ('mq', 'app.mq',
-- '"My Queue"'); an unqualified name goes into p_schema, the caller's current
-- schema.  Returns the table.  Calling it again with the same settings returns
-- the existing table; other settings, or a table that is no queue, raise.
CREATE FUNCTION @extschema@.q4pg_create_queue(
    p_table text,
    p_data_type text DEFAULT 'json',
    p_data_length integer DEFAULT 1023,
    p_schema name DEFAULT current_schema())
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_parts    text[];
    v_schema   text;
    v_name     text;
    v_type     text := lower(p_data_type);
    v_queue    regclass;
    v_settings record;
BEGIN
    IF p_table IS NULL OR p_data_type IS NULL OR p_data_length IS NULL THEN
        RAISE EXCEPTION 'q4pg: table name, data type and data length must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v_type NOT IN ('json', 'jsonb', 'text') THEN
        RAISE EXCEPTION 'q4pg: data type "%" is not supported', p_data_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use json, jsonb or text.';
    END IF;
    IF p_data_length < 1 THEN
        RAISE EXCEPTION 'q4pg: data length must be at least 1, not %', p_data_length
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    BEGIN
        v_parts := parse_ident(p_table);
    EXCEPTION WHEN invalid_parameter_value THEN
        v_parts := NULL;
    END;
    IF v_parts IS NULL OR cardinality(v_parts) > 2 THEN
        RAISE EXCEPTION 'q4pg: "%" is not a valid table name', p_table
            USING ERRCODE = 'invalid_name',
                  HINT = 'Give a name or schema.name; double-quote names with special characters.';
    END IF;
    IF cardinality(v_parts) = 2 THEN
        v_schema := v_parts[1];
        v_name := v_parts[2];
    ELSE
        v_schema := p_schema;
        v_name := v_parts[1];
    END IF;
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
    IF v_queue IS NOT NULL THEN
        BEGIN
            v_settings := @extschema@.q4pg_queue_settings(v_queue);
        EXCEPTION WHEN undefined_table THEN
            RAISE EXCEPTION 'q4pg: relation % already exists and is not a q4pg queue', v_queue
                USING ERRCODE = 'duplicate_table';
        END;
        IF v_settings.data_type IS DISTINCT FROM v_type
           OR v_settings.data_length IS DISTINCT FROM p_data_length THEN
            RAISE EXCEPTION 'q4pg: queue % already exists with data type % and data length %',
                    v_queue, v_settings.data_type, v_settings.data_length
                USING ERRCODE = 'duplicate_table',
                      DETAIL = format('Asked for data type %s and data length %s.',
                                      v_type, p_data_length);
        END IF;
        RETURN v_queue;
    END IF;

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
        format('q4pg_data_max_%s_chars', p_data_length), p_data_length);
    v_queue := format('%I.%I', v_schema, v_name)::regclass;
    EXECUTE format('CREATE INDEX ON %s (tag, id)', v_queue);
    -- the gate (see q4pg_notify), with the queue's lock key as a constant
    EXECUTE format(
        'CREATE TRIGGER q4pg_notify AFTER INSERT ON %1$s
             REFERENCING NEW TABLE AS q4pg_new_rows
             FOR EACH STATEMENT
             WHEN (pg_catalog.pg_advisory_xact_lock_shared(1899262055, %2$s) IS NOT NULL
                   AND NOT (pg_catalog.pg_try_advisory_lock(1899262056, %2$s)
                            AND pg_catalog.pg_advisory_unlock(1899262056, %2$s)))
             EXECUTE FUNCTION @extschema@.q4pg_notify(%2$L)',
        v_queue, v_queue::oid::integer);
    EXECUTE format('COMMENT ON TABLE %s IS %L', v_queue,
                   format('q4pg queue: %s data of at most %s characters', v_type, p_data_length));
    RETURN v_queue;
END
$$;

-- q4pg_drop_queue: drops a queue table and every message in it.
-- Returns true; raises when the table is no q4pg queue.
CREATE FUNCTION @extschema@.q4pg_drop_queue(p_queue regclass)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.q4pg_queue_settings(p_queue);
    EXECUTE format('DROP TABLE %s', p_queue);
    RETURN true;
END
$$;

-- q4pg_channel: the NOTIFY channel for a queue and tag.
-- Returns 'q4pg_' || md5(<schema>.<table> || ':' || tag), identifiers quoted as
-- quote_ident() does: always 37 bytes, whatever the tag.
CREATE FUNCTION @extschema@.q4pg_channel(p_queue regclass, p_tag text)
RETURNS text
LANGUAGE plpgsql
STABLE
STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.q4pg_queue_settings(p_queue);
    RETURN (SELECT 'q4pg_' || md5(format('%I.%I', n.nspname, c.relname) || ':' || p_tag)
              FROM pg_class AS c
              JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE c.oid = p_queue);
END
$$;

-- q4pg_register_idle: registers the calling session as a listener about to sleep,
-- waiting for a message of p_tag (LISTEN on q4pg_channel() first).
-- Returns true when the session may sleep until a notification: every producer
-- that could have missed the registration has finished, so a dequeue attempt
-- made now sees its message.  Returns false when such a producer is still
-- running: try to dequeue, then call again shortly.  Never waits.
CREATE FUNCTION @extschema@.q4pg_register_idle(p_queue regclass, p_tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key integer;
BEGIN
    IF p_tag IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.q4pg_queue_settings(p_queue);
    IF NOT has_table_privilege(p_queue, 'SELECT') THEN
        RAISE EXCEPTION 'q4pg: permission denied to wait on queue %', p_queue
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- the queue's lock key, the argument of its trigger (see q4pg_notify)
    SELECT nullif(split_part(encode(t.tgargs, 'escape'), '\000', 1), '')::integer
      INTO v_key
      FROM pg_trigger AS t
     WHERE t.tgrelid = p_queue AND t.tgname = 'q4pg_notify';
    IF v_key IS NULL THEN
        RAISE EXCEPTION 'q4pg: the q4pg_notify trigger of queue % has no lock key', p_queue
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'The trigger was changed by hand; only q4pg_create_queue() makes it.';
    END IF;
    INSERT INTO @extschema@.q4pg_idle_listeners (queue, tag, pid, lock_key)
    VALUES (p_queue, p_tag, pg_backend_pid(), v_key)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        -- A new registration holds the presence lock until q4pg_unregister_idle or the
        -- end of the session.  Never wait for it: should a producer's probe
        -- hold it this instant, undo and let the caller try again.
        IF NOT pg_try_advisory_lock_shared(1899262056, v_key) THEN
            DELETE FROM @extschema@.q4pg_idle_listeners AS w
             WHERE w.queue = p_queue AND w.tag = p_tag AND w.pid = pg_backend_pid();
            RETURN false;
        END IF;
        -- forget the registrations of sessions that are gone
        DELETE FROM @extschema@.q4pg_idle_listeners AS w
         WHERE NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid);
    END IF;
    RETURN pg_try_advisory_xact_lock(1899262055, v_key);
END
$$;

-- q4pg_unregister_idle: the calling session no longer waits for p_tag (it has woken
-- up).  Returns true when it was registered.
CREATE FUNCTION @extschema@.q4pg_unregister_idle(p_queue regclass, p_tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key integer;
BEGIN
    DELETE FROM @extschema@.q4pg_idle_listeners AS w
     WHERE w.queue = p_queue AND w.tag = p_tag AND w.pid = pg_backend_pid()
    RETURNING w.lock_key INTO v_key;
    IF FOUND THEN
        PERFORM pg_advisory_unlock_shared(1899262056, v_key);
        RETURN true;
    END IF;
    RETURN false;
END
$$;

-- q4pg_enqueue: adds one message to a queue.
-- Returns its id.  data must parse as the queue's data type and be at most its
-- data length in characters, the tag at most 2048 bytes (the (tag, id) index
-- holds it), or nothing is stored.
CREATE FUNCTION @extschema@.q4pg_enqueue(p_queue regclass, p_tag text, p_data text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_settings text;     -- '<data type> <data length>', see q4pg_cache_settings
    v_type     text;
    v_limit    integer;
    v_length   integer;
    v_id       bigint;
BEGIN
    IF p_tag IS NULL OR p_data IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(p_tag) > 2048 THEN
        RAISE EXCEPTION 'q4pg: tag of % bytes is longer than the 2048 bytes a tag may have',
                octet_length(p_tag)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    v_settings := coalesce(nullif(current_setting('q4pg.queue_' || p_queue::oid, true), ''),
                          @extschema@.q4pg_cache_settings(p_queue));
    v_type := split_part(v_settings, ' ', 1);
    v_limit := split_part(v_settings, ' ', 2)::integer;
    -- a jsonb queue stores (and its CHECK measures) the normalized text
    v_length := char_length(CASE WHEN v_type = 'jsonb' THEN p_data::jsonb::text ELSE p_data END);
    IF v_length > v_limit THEN
        RAISE EXCEPTION 'q4pg: message of % characters is longer than queue % accepts (% characters)',
                v_length, p_queue, v_limit
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    EXECUTE format('INSERT INTO %s (tag, data) VALUES ($1, $2::%s) RETURNING id',
                   p_queue, v_type::regtype)
       INTO v_id
      USING p_tag, p_data;
    RETURN v_id;
END
$$;

-- q4pg_enqueue_many: adds one message per element of p_data, in array order,
-- in one statement (so one NOTIFY).  Returns their ids in the same order.
-- One bad element stores none of them.
CREATE FUNCTION @extschema@.q4pg_enqueue_many(p_queue regclass, p_tag text, p_data text[])
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_settings text;     -- '<data type> <data length>', see q4pg_cache_settings
    v_type     text;
    v_limit    integer;
    v_longest  integer;
BEGIN
    IF p_tag IS NULL OR p_data IS NULL OR array_position(p_data, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(p_tag) > 2048 THEN
        RAISE EXCEPTION 'q4pg: tag of % bytes is longer than the 2048 bytes a tag may have',
                octet_length(p_tag)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    v_settings := coalesce(nullif(current_setting('q4pg.queue_' || p_queue::oid, true), ''),
                          @extschema@.q4pg_cache_settings(p_queue));
    v_type := split_part(v_settings, ' ', 1);
    v_limit := split_part(v_settings, ' ', 2)::integer;
    SELECT max(char_length(CASE WHEN v_type = 'jsonb' THEN d::jsonb::text ELSE d END))
      INTO v_longest
      FROM unnest(p_data) AS d;
    IF v_longest > v_limit THEN
        RAISE EXCEPTION 'q4pg: message of % characters is longer than queue % accepts (% characters)',
                v_longest, p_queue, v_limit
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    RETURN QUERY EXECUTE format(
        'INSERT INTO %s (tag, data)
         SELECT $1, d::%s FROM unnest($2) WITH ORDINALITY AS u(d, n) ORDER BY n
         RETURNING id',
        p_queue, v_type::regtype)
      USING p_tag, p_data;
END
$$;

-- q4pg_dequeue: takes the oldest message of a tag that no other transaction
-- holds, and deletes it inside the caller's transaction (ROLLBACK gives it
-- back).  Returns zero or one row; never waits for another consumer.
CREATE FUNCTION @extschema@.q4pg_dequeue(p_queue regclass, p_tag text)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_settings text;
BEGIN
    -- raises unless p_queue is a queue (remembered: see q4pg_cache_settings)
    v_settings := coalesce(nullif(current_setting('q4pg.queue_' || p_queue::oid, true), ''),
                           @extschema@.q4pg_cache_settings(p_queue));
    RETURN QUERY EXECUTE format(
        'DELETE FROM %1$s
          WHERE id = (SELECT id FROM %1$s WHERE tag = $1
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, tag, data::text, created_at',
        p_queue)
      USING p_tag;
END
$$;

-- q4pg_dequeue_many: like q4pg_dequeue, for up to p_limit messages at once.
-- Returns them oldest first.
CREATE FUNCTION @extschema@.q4pg_dequeue_many(p_queue regclass, p_tag text, p_limit integer)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_settings text;
BEGIN
    IF p_limit IS NULL OR p_limit < 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', coalesce(p_limit::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- raises unless p_queue is a queue (remembered: see q4pg_cache_settings)
    v_settings := coalesce(nullif(current_setting('q4pg.queue_' || p_queue::oid, true), ''),
                           @extschema@.q4pg_cache_settings(p_queue));
    RETURN QUERY EXECUTE format(
        'WITH taken AS (
             DELETE FROM %1$s
              WHERE id = ANY (ARRAY(SELECT id FROM %1$s WHERE tag = $1
                                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED))
             RETURNING id, tag, data::text, created_at)
         SELECT * FROM taken ORDER BY id',
        p_queue)
      USING p_tag, p_limit;
END
$$;

-- q4pg_cancel: removes a waiting message by id.
-- Returns true when it removed it; false when there is no such message or a
-- consumer holds it now.  Never waits.
CREATE FUNCTION @extschema@.q4pg_cancel(p_queue regclass, p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_settings text;
    v_removed  boolean;
BEGIN
    -- raises unless p_queue is a queue (remembered: see q4pg_cache_settings)
    v_settings := coalesce(nullif(current_setting('q4pg.queue_' || p_queue::oid, true), ''),
                           @extschema@.q4pg_cache_settings(p_queue));
    EXECUTE format(
        'DELETE FROM %1$s
          WHERE id = (SELECT id FROM %1$s WHERE id = $1 FOR UPDATE SKIP LOCKED)
         RETURNING true',
        p_queue)
       INTO v_removed
      USING p_id;
    RETURN coalesce(v_removed, false);
END
$$;

-- q4pg_count: the number of messages in a queue, of one tag or (p_tag null)
-- of all.  Messages held by a consumer's open transaction still count.
CREATE FUNCTION @extschema@.q4pg_count(p_queue regclass, p_tag text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count bigint;
BEGIN
    PERFORM @extschema@.q4pg_queue_settings(p_queue);
    IF p_tag IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', p_queue) INTO v_count;
    ELSE
        EXECUTE format('SELECT count(*) FROM %s WHERE tag = $1', p_queue) INTO v_count USING p_tag;
    END IF;
    RETURN v_count;
END
$$;

-- q4pg_list: the messages of a queue, oldest first, of one tag or (p_tag
-- null) of all, at most p_limit of them (null: all).  Takes nothing.
CREATE FUNCTION @extschema@.q4pg_list(p_queue regclass, p_tag text DEFAULT NULL,
                                      p_limit integer DEFAULT NULL)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_limit < 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.q4pg_queue_settings(p_queue);
    RETURN QUERY EXECUTE format(
        'SELECT id, tag, data::text, created_at FROM %s
          WHERE $1 IS NULL OR tag = $1
          ORDER BY id LIMIT $2',
        p_queue)
      USING p_tag, p_limit;
END
$$;

-- q4pg_queues: every q4pg queue in this database the caller may read.
-- Returns each table with its data type and data length.
CREATE FUNCTION @extschema@.q4pg_queues()
RETURNS TABLE (queue regclass, data_type text, data_length integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.tgrelid::regclass, s.data_type, s.data_length
      FROM pg_trigger AS t
      CROSS JOIN LATERAL @extschema@.q4pg_queue_settings(t.tgrelid::regclass) AS s
     WHERE t.tgfoid = '@extschema@.q4pg_notify()'::regprocedure
       AND has_table_privilege(t.tgrelid, 'SELECT')
     ORDER BY t.tgrelid::regclass::text
$$;

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
-- database: see xact_age.
CREATE FUNCTION @extschema@.q4pg_consumers()
RETURNS TABLE (queue regclass, pid integer, xact_start timestamptz, xact_age interval,
               state text, application_name text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.relation::regclass, a.pid, a.xact_start, now() - a.xact_start, a.state,
           a.application_name
      FROM pg_locks AS l
      JOIN pg_stat_activity AS a ON a.pid = l.pid
     WHERE l.locktype = 'relation'
       AND l.mode = 'RowShareLock'
       AND l.granted
       AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
       AND l.relation IN (SELECT q.queue FROM @extschema@.q4pg_queues() AS q)
     ORDER BY a.xact_start, a.pid
$$;
