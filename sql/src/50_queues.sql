-- Creating, adopting and dropping queue tables.

-- q4pg_attach_queue: makes a table of a queue's shape a q4pg queue: its
-- (tag, id) index when missing, its q4pg_notify trigger with a lock key no
-- other queue of the database uses, its comment and its generated functions.
-- Returns the table.  Writes the catalogs; the caller checked the shape.
CREATE FUNCTION @extschema@.q4pg_attach_queue(p_queue regclass, p_data_type text, p_data_length integer)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key integer := p_queue::oid::integer;
BEGIN
    -- the table's oid, unless a restored queue already has it
    WHILE EXISTS (SELECT FROM pg_trigger AS t
                   WHERE t.tgname = 'q4pg_notify'
                     AND t.tgfoid = '@extschema@.q4pg_notify()'::regprocedure
                     AND t.tgargs = convert_to(v_key::text, 'SQL_ASCII') || '\000'::bytea) LOOP
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
                   format('q4pg queue: %s data of at most %s characters', p_data_type, p_data_length));
    -- the generated functions of queues of this schema dropped by hand go
    PERFORM @extschema@.q4pg_drop_queue_functions(
        NULL, (SELECT c.relnamespace FROM pg_class AS c WHERE c.oid = p_queue));
    PERFORM @extschema@.q4pg_build_queue_functions(p_queue);
    RETURN p_queue;
END
$$;

-- q4pg_queue_shape: whether a table that is no queue (yet) has a queue's
-- shape, as q4pg_create_queue makes it and as DROP EXTENSION q4pg CASCADE
-- leaves it: columns id bigint, tag text, data json/jsonb/text, created_at
-- timestamptz, nothing else, and the q4pg_data_max_<n>_chars CHECK constraint.
-- Returns its data type and length, and what is missing (null when nothing).
CREATE FUNCTION @extschema@.q4pg_queue_shape(
    p_table regclass,
    OUT data_type text,
    OUT data_length integer,
    OUT missing text)
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
    v_is_queue   boolean;
    v_has_type   text;       -- the settings an existing table has
    v_has_length integer;
    v_missing    text;       -- why an existing table is no queue's shape
    v_info       record;
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
        RETURN @extschema@.q4pg_attach_queue(format('%I.%I', v_schema, v_name)::regclass,
                                             v_type, data_length);
    END IF;

    v_is_queue := EXISTS (SELECT FROM pg_trigger AS t
                           WHERE t.tgrelid = v_queue AND t.tgname = 'q4pg_notify'
                             AND t.tgfoid = '@extschema@.q4pg_notify()'::regprocedure);
    IF v_is_queue THEN
        SELECT s.data_type, s.data_length INTO v_has_type, v_has_length
          FROM @extschema@.q4pg_queue_settings(v_queue) AS s;
    ELSE
        SELECT s.data_type, s.data_length, s.missing INTO v_has_type, v_has_length, v_missing
          FROM @extschema@.q4pg_queue_shape(v_queue) AS s;
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION 'q4pg: relation % already exists and is not a q4pg queue', v_queue
                USING ERRCODE = 'duplicate_table',
                      DETAIL = format('q4pg adopts only a table of a queue''s shape, and %s.', v_missing),
                      HINT = 'Choose another name, or rename or drop that table.';
        END IF;
    END IF;
    IF v_has_type IS DISTINCT FROM v_type OR v_has_length IS DISTINCT FROM data_length THEN
        RAISE EXCEPTION 'q4pg: queue % already exists with data type % and data length %',
                v_queue, v_has_type, v_has_length
            USING ERRCODE = 'duplicate_table',
                  DETAIL = format('Asked for data type %s and data length %s.', v_type, data_length);
    END IF;
    IF NOT v_is_queue THEN
        -- a queue's table without its trigger (DROP EXTENSION q4pg CASCADE): adopt it
        RETURN @extschema@.q4pg_attach_queue(v_queue, v_type, data_length);
    END IF;
    v_info := @extschema@.q4pg_queue_info(v_queue);
    IF NOT @extschema@.q4pg_queue_functions_current(v_queue, v_info.schema_oid)
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
        queue, (@extschema@.q4pg_queue_info(queue)).schema_oid);
    EXECUTE format('DROP TABLE %s', queue);
    RETURN true;
END
$$;
