-- Creating, adopting and dropping queue tables.

-- q4pg_reshape_queue: brings a table of a queue's shape (q4pg_queue_shape)
-- to this version's: adds the columns q4pg 1.1 added to a 1.0 queue table
-- (every message stays, due at once), replaces 1.0's (tag, id) index by the
-- (tag, run_at, id) index dequeues walk, and creates that index when
-- missing; on a json or jsonb queue, adds the q4pg_data_not_json_null CHECK
-- constraint (a plain INSERT of the JSON null is refused: a consumer could not
-- tell it from no message), validated unless older messages hold one (those
-- stay; the clients refuse to take them silently); then makes an ordinary
-- table a ring (q4pg_make_ring, 1.2), under the lock key and max_attempts of
-- its q4pg_notify trigger (which must be there).  Returns the queue (after
-- q4pg_make_ring, the new table of that name).  Needs ALTER rights on it
-- (its owner); writes the catalogs and, for a 1.0 table, builds an index over
-- its rows.
CREATE FUNCTION @extschema@.q4pg_reshape_queue(p_queue regclass)
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
    IF NOT EXISTS (SELECT FROM pg_attribute AS a WHERE a.attrelid = p_queue AND a.attname = 'run_at') THEN
        -- 1.0's shape
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
    IF NOT v_shape.is_queue THEN
        RAISE EXCEPTION 'q4pg: table % has no q4pg_notify trigger to take its lock key from', p_queue
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN @extschema@.q4pg_make_ring(p_queue, v_shape.lock_key, v_shape.max_attempts);
END
$$;

-- q4pg_set_queue_trigger: (re)creates a queue's q4pg_notify trigger, which
-- carries the queue's settings as its arguments: its lock key and (when not
-- null) its max_attempts.  Its WHEN clause is the gate (q4pg_notify_gate).
-- Raises 42809 for a table that has no queue's shape, and 22023 for a queue and another lock key than its own: a
-- queue keeps its lock key for life (its channels, its advisory locks, the
-- names of its generated functions and the sessions' routes to them hang on
-- it).  Needs the rights to create triggers on the table (its owner); writes
-- pg_trigger.
CREATE FUNCTION @extschema@.q4pg_set_queue_trigger(p_queue regclass, p_key integer,
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
             WHEN (%3$s)
             EXECUTE FUNCTION @extschema@.q4pg_notify(%2$L%4$s)',
        p_queue, p_key, @extschema@.q4pg_notify_gate(p_key),
        CASE WHEN p_max_attempts IS NOT NULL THEN format(', %L', p_max_attempts) ELSE '' END);
END
$$;

-- q4pg_attach_queue: makes a table of a queue's shape (q4pg_queue_shape, 1.0's
-- too) a q4pg queue: this version's columns and index (q4pg_reshape_queue),
-- its q4pg_notify trigger with a lock key no other queue of the database uses
-- and max_attempts, its comment and its generated functions.  Returns the
-- table.  Raises duplicate_table (42P07) for a queue already and for a table
-- of another shape, saying what differs.  Writes the catalogs.
CREATE FUNCTION @extschema@.q4pg_attach_queue(p_queue regclass, p_max_attempts integer)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_shape record := @extschema@.q4pg_queue_shape(p_queue);
    v_key   integer := p_queue::oid::integer;
    v_queue regclass;
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
    -- a ring keeps the key its names carry; else the table's oid, unless a
    -- restored queue already has it
    v_key := coalesce(@extschema@.q4pg_ring_key(p_queue), v_key);
    WHILE @extschema@.q4pg_ring_key(p_queue) IS NULL AND EXISTS (SELECT FROM @extschema@.q4pg_queue_triggers() AS t WHERE t.lock_key = v_key) LOOP
        v_key := (random() * 4294967295 - 2147483648)::bigint::integer;
    END LOOP;
    PERFORM @extschema@.q4pg_set_queue_trigger(p_queue, v_key, p_max_attempts);
    v_queue := @extschema@.q4pg_reshape_queue(p_queue);
    EXECUTE format('COMMENT ON TABLE %s IS %L', v_queue,
                   format('q4pg queue: %s data of at most %s characters',
                          v_shape.data_type, v_shape.data_length));
    -- the generated functions of queues of this schema dropped by hand go
    PERFORM @extschema@.q4pg_drop_queue_functions(
        NULL, (SELECT c.relnamespace::regnamespace FROM pg_class AS c WHERE c.oid = v_queue));
    PERFORM @extschema@.q4pg_build_queue_functions(v_queue);
    RETURN v_queue;
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
CREATE FUNCTION @extschema@.q4pg_create_queue(
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
        v_queue := @extschema@.q4pg_reshape_queue(v_queue);
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

-- q4pg_set_max_attempts: changes a queue's max_attempts (null: no limit;
-- else at least 1, or 22023).  Messages that have used that many attempts
-- already become dead letters now (one under a live lease when its lease
-- ends).  Needs the queue's owner's rights (it rewrites the queue's trigger
-- and generated functions); raises as q4pg_queue_info.
CREATE FUNCTION @extschema@.q4pg_set_max_attempts(queue regclass, max_attempts integer)
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
                SET dead_at = CASE WHEN %s THEN q.run_at ELSE now() END,
                    run_at = ''infinity''
              WHERE q.dead_at IS NULL AND q.attempts >= $1',
            queue, @extschema@.q4pg_message_state('leased', 'q'))
          USING max_attempts;
    END IF;
    PERFORM @extschema@.q4pg_build_queue_functions(queue);
END
$$;
