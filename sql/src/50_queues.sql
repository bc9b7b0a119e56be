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
