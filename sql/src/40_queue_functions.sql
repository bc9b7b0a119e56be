-- A plan per queue: the functions generated for each queue.
--
-- A queue is a table of the caller's choosing, so a generic function can
-- reach it only through dynamic SQL, which PostgreSQL parses and plans on
-- every call (most of what a message cost: README, Performance).  So
-- each queue gets small PL/pgSQL functions with static SQL naming its table,
-- whose plans PL/pgSQL keeps for the session, one per message function
-- (q4pg_queue_function_names):
--     q4pg_<name>_enqueue(tag, data, run_at)       q4pg_<name>_take(tag, n)
--     q4pg_<name>_enqueue_many(tag, data[], run_at) q4pg_<name>_done(id)
--     q4pg_<name>_dequeue(tag)                     q4pg_<name>_fail(id, error, retry_in, max_attempts)
--     q4pg_<name>_dequeue_many(tag, n)             q4pg_<name>_lease(tag, n, lease)
--     q4pg_<name>_cancel(id)                       q4pg_<name>_ack(id, token)
--     q4pg_<name>_done_many(ids)                   q4pg_<name>_give_back(ids)
--     q4pg_<name>_nack(id, token, retry_in, error) q4pg_<name>_extend(id, token, lease)
--     q4pg_<name>_maintain()   (the ring's, 55_ring.sql: not part of the door)
-- (<name>: from the table's name, q4pg_door_prefix).  They live in the
-- queue's schema and are owned by its owner, SECURITY INVOKER like
-- everything else; they are not extension members, so pg_dump keeps them
-- with the table.  The public functions (q4pg_enqueue, ...) reach them
-- through q4pg_route().
--
-- The direct door (1.2): a client may call them itself, by the prefix
-- q4pg_door() gives, and save the public function's EXECUTE (docs/sql.md,
-- "The direct door").  Each (but maintain) first checks that its table is
-- still the one it was made for (door_check, 41_snippets.sql): after a
-- rename, a drop or a restore it raises 55000 and does nothing, never acting
-- on another table that took the name.
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
-- The states of a message (due, scheduled, leased, dead) are defined once,
-- by q4pg_message_state (10_model.sql); the gate of a NOTIFY by
-- q4pg_notify_gate (30_listeners.sql).
--
-- Each generated function has its template (q4pg_template_<suffix>, in
-- 42_templates_messages.sql and 43_templates_failures_leases.sql), whose
-- {{placeholders}} q4pg_queue_functions_sql fills with the queue's table,
-- settings and the shared snippets (41_snippets.sql) through q4pg_render.
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
CREATE FUNCTION @extschema@.q4pg_queue_function_names(OUT suffix text)
RETURNS SETOF text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM unnest('{enqueue,enqueue_many,dequeue,dequeue_many,cancel,take,done,done_many,fail,give_back,lease,ack,nack,extend,maintain}'::text[]);
END;

-- q4pg_door_prefix: 'q4pg_<name>_', the start of the names of a queue's
-- generated functions, from its table's name (its schema apart): the name
-- itself when it is a lower-case SQL name of at most 45 characters
-- (q4pg_jobs_enqueue), else its first 36 characters in lower case with every
-- other character an underscore, and the first 8 hex digits of the name's
-- md5 ('Big Jobs': q4pg_big_jobs_<8 hex>_enqueue).  So the names never need
-- quoting, stay within 63 bytes, survive a dump and restore, and two tables
-- of one schema do not share them.
CREATE FUNCTION @extschema@.q4pg_door_prefix(p_queue regclass)
RETURNS text
LANGUAGE plpgsql
STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name name;
BEGIN
    -- (PL/pgSQL: a tick's step asks at every commit, and an SQL function
    -- with a SET clause is read and planned again at each call: 480k
    -- instructions against 50k)
    SELECT c.relname INTO v_name FROM pg_class AS c WHERE c.oid = p_queue;
    RETURN 'q4pg_'
           || CASE WHEN v_name ~ '^[a-z_][a-z0-9_]*$' AND length(v_name) <= 45 THEN v_name::text
                   ELSE left(regexp_replace(lower(v_name), '[^a-z0-9_]', '_', 'g'), 36)
                        || '_' || left(md5(v_name), 8) END
           || '_';
END
$$;

-- q4pg_is_generated: true for a function body q4pg generated (it carries a
-- marker line: q4pg_queue_function_marker), of any version.
CREATE FUNCTION @extschema@.q4pg_is_generated(p_body text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN p_body LIKE '%-- q4pg % generated function, queue %';

-- q4pg_queue_function_marker: the line every generated body carries, from a
-- queue's table and q4pg_queue_info(); a body without the marker of the
-- queue's present table (its oid: a restored table is another), name and
-- settings is stale.  The name goes in as an md5 digest: a comment line must
-- not carry a table name, which may hold a line break, and with it code.
CREATE FUNCTION @extschema@.q4pg_queue_function_marker(p_queue regclass, p_qualified_name text,
                                                       p_data_type text, p_data_length integer,
                                                       p_max_attempts integer)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN format('-- q4pg 1.2 generated function, queue %s',
              md5(format('%s %s %s %s %s', p_queue::oid, p_qualified_name, p_data_type, p_data_length,
                         coalesce(p_max_attempts::text, 'none'))));

-- q4pg_render: a template with its placeholders filled, in one pass:
--   {{name}}      p_snippets ->> name, itself rendered (a snippet is
--                 template text: 41_snippets.sql), else p_values ->> name as
--                 it is (a value is never read for placeholders again, so a
--                 table named '{{due}}' or '%s' stays a name);
--   {{#slot_chain}}text{{/slot_chain}}
--                 "IF v_s = 0 THEN <text> ELSIF v_s = 1 THEN <text> ... END
--                 IF;", a branch per slot of the ring and the later slot
--                 (55_ring.sql), text rendered with {{slot}} the branch's
--                 slot: each branch's SQL names its slot as a constant, so
--                 that its plan reaches that one partition.
-- Raises 42704 for a placeholder neither holds, 42601 for an unclosed one.
CREATE FUNCTION @extschema@.q4pg_render(p_template text, p_values jsonb, p_snippets jsonb)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_done  text := '';
    v_rest  text := p_template;
    v_at    integer;     -- where the next {{ starts in v_rest
    v_len   integer;     -- the length of its name
    v_name  text;
    v_end   integer;
    v_inner text;
BEGIN
    LOOP
        v_at := strpos(v_rest, '{{');
        EXIT WHEN v_at = 0;
        v_len := strpos(substr(v_rest, v_at + 2), '}}') - 1;
        IF v_len < 0 THEN
            RAISE EXCEPTION 'q4pg: a template placeholder is not closed: %', substr(v_rest, v_at, 40)
                USING ERRCODE = 'syntax_error';
        END IF;
        v_name := substr(v_rest, v_at + 2, v_len);
        v_done := v_done || left(v_rest, v_at - 1);
        v_rest := substr(v_rest, v_at + v_len + 4);
        IF v_name = '#slot_chain' THEN
            v_end := strpos(v_rest, '{{/slot_chain}}');
            IF v_end = 0 THEN
                RAISE EXCEPTION 'q4pg: {{#slot_chain}} without {{/slot_chain}}'
                    USING ERRCODE = 'syntax_error';
            END IF;
            v_inner := left(v_rest, v_end - 1);
            v_rest := substr(v_rest, v_end + length('{{/slot_chain}}'));
            FOR v_k IN 0 .. @extschema@.q4pg_ring('slots') LOOP
                v_done := v_done || CASE WHEN v_k = 0 THEN 'IF' ELSE E'\n            ELSIF' END
                          || ' v_s OPERATOR(pg_catalog.=) ' || v_k || E' THEN\n            '
                          || @extschema@.q4pg_render(v_inner, p_values || jsonb_build_object('slot', v_k::text),
                                                     p_snippets);
            END LOOP;
            v_done := v_done || E'\n            END IF;';
        ELSIF p_snippets ? v_name THEN
            v_done := v_done || @extschema@.q4pg_render(p_snippets ->> v_name, p_values, p_snippets);
        ELSIF p_values ? v_name THEN
            v_done := v_done || (p_values ->> v_name);
        ELSE
            RAISE EXCEPTION 'q4pg: the template placeholder {{%}} has no value', v_name
                USING ERRCODE = 'undefined_object';
        END IF;
    END LOOP;
    RETURN v_done || v_rest;
END
$$;

-- q4pg_queue_functions_sql: the CREATE OR REPLACE FUNCTION statements of a
-- queue's generated functions, in schema p_schema (a quoted name, or
-- 'pg_temp'): each function's template (q4pg_template_<suffix>) filled with
-- the queue's values and the snippets (41_snippets.sql) filled with them.
-- Reads the queue's settings; writes nothing.
CREATE FUNCTION @extschema@.q4pg_queue_functions_sql(p_queue regclass, p_schema text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info   record := @extschema@.q4pg_queue_info(p_queue);
    v_table  text := v_info.qualified_name;
    v_key    text := to_hex(v_info.lock_key);
    -- what the CHECK constraint measures: a jsonb queue stores the normalized text
    v_length text := CASE v_info.data_type WHEN 'jsonb' THEN 'pg_catalog.char_length(%s::pg_catalog.jsonb::pg_catalog.text)'
                                          ELSE 'pg_catalog.char_length(%s)' END;
    v_dollar text := '$q4pg$';
    v_values jsonb;
    v_snippets jsonb;  -- 41_snippets.sql's, by name
    v_parts  record := @extschema@.q4pg_ring_parts(p_queue, v_info.lock_key);
    v_door   text := @extschema@.q4pg_door_prefix(p_queue);
    v_sql    text := '';
    v_name   text;
    v_text   text;
BEGIN
    -- p_schema is spliced into the statements: a schema's name as an SQL
    -- identifier (what quote_ident makes), or pg_temp, and nothing else
    IF p_schema IS DISTINCT FROM 'pg_temp' AND to_regnamespace(p_schema) IS NULL THEN
        RAISE EXCEPTION 'q4pg: there is no schema %', p_schema
            USING ERRCODE = 'invalid_schema_name';
    END IF;
    -- the bodies' dollar quote: one the table's name does not hold, so that
    -- no name can end a body and go on as code
    WHILE strpos(v_table, v_dollar) > 0 LOOP
        v_dollar := format('$q4pg%s$', (random() * 1e9)::bigint);
    END LOOP;
    v_values := jsonb_build_object(
        'create', 'CREATE OR REPLACE FUNCTION ' || p_schema || '.' || v_door,
        'door', quote_literal(p_schema || '.' || v_door),
        'marker', @extschema@.q4pg_queue_function_marker(p_queue, v_table, v_info.data_type,
                                                         v_info.data_length, v_info.max_attempts),
        'table_oid', p_queue::oid::text,
        'dollar', v_dollar,
        'table', v_table,
        'table_literal', quote_literal(v_table),
        'lock_key', v_info.lock_key::text,
        'data_type', 'pg_catalog.' || v_info.data_type,
        'data_length', v_info.data_length::text,
        'length_of_data', format(v_length, 'p_data'),
        'length_of_batch', format(v_length, 'u.d'),
        'max_attempts', coalesce(v_info.max_attempts::text, 'NULL::pg_catalog.int4'),
        -- the columns of q4pg_message: the generated functions return its
        -- shape without naming the type, so that DROP EXTENSION does not reach them
        'message_columns', (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)),
                                              ', ' ORDER BY a.attnum)
                              FROM pg_attribute AS a
                             WHERE a.attrelid = '@extschema@.q4pg_message'::regclass AND a.attnum > 0),
        'taken_setting', quote_literal('q4pg.taken_' || v_key),
        'removed_setting', quote_literal('q4pg.removed_' || v_key),
        'removed_setting_prefix', quote_literal('q4pg.removed_' || v_key || '_'),
        'notify_gate', @extschema@.q4pg_notify_gate(v_info.lock_key),
        'due', @extschema@.q4pg_message_state('due', 's'),
        'leased', @extschema@.q4pg_message_state('leased', 's'),
        -- the ring (55_ring.sql): its state sequence, its slots
        'state', format('%L::pg_catalog.regclass', v_parts.state::text),
        'slots', @extschema@.q4pg_ring('slots')::text,
        'slot_bytes', @extschema@.q4pg_ring('slot_bytes')::text,
        'every', @extschema@.q4pg_ring('every')::text,
        'ring_orders', format('(%L::pg_catalog.int4[])', @extschema@.q4pg_ring_probe_orders()::text),
        -- the ring's slots and its later slot, by name (stable across a dump and restore)
        'ring_parts', format('ARRAY[%s]::pg_catalog.regclass[]',
                             (SELECT string_agg(quote_literal(p::text), ', ' ORDER BY k)
                                FROM unnest(v_parts.slots) WITH ORDINALITY AS u(p, k))));
    SELECT jsonb_object_agg(n.name, n.template) INTO v_snippets
      FROM @extschema@.q4pg_queue_function_snippets() AS n;
    IF v_info.data_type = 'text' THEN
        v_snippets := v_snippets || '{"check_json_null": ""}';
    END IF;
    -- a removed message put back: as a dead letter, for a retry, as it was
    v_values := v_values || jsonb_build_object(
        'put_back_dead', @extschema@.q4pg_render(v_snippets ->> 'put_back', v_values || jsonb_build_object(
            'put_back_run_at', '''infinity''::pg_catalog.timestamptz',
            'put_back_attempts', 'v_row.attempts OPERATOR(pg_catalog.+) 1',
            'put_back_error', 'p_error', 'put_back_dead_at', 'pg_catalog.now()'), '{}'),
        'put_back_retry', @extschema@.q4pg_render(v_snippets ->> 'put_back', v_values || jsonb_build_object(
            'put_back_run_at', 'CASE WHEN p_retry_in IS NULL THEN LEAST(v_row.run_at, pg_catalog.now())
                                 ELSE pg_catalog.now() OPERATOR(pg_catalog.+) p_retry_in END',
            'put_back_attempts', 'v_row.attempts OPERATOR(pg_catalog.+) 1',
            'put_back_error', 'p_error', 'put_back_dead_at', 'NULL'), '{}'),
        'put_back_as_was', @extschema@.q4pg_render(v_snippets ->> 'put_back', v_values || jsonb_build_object(
            'put_back_run_at', 'v_row.run_at', 'put_back_attempts', 'v_row.attempts',
            'put_back_error', 'v_row.last_error', 'put_back_dead_at', 'v_row.dead_at'), '{}'));
    FOR v_name IN SELECT f.suffix FROM @extschema@.q4pg_queue_function_names() AS f LOOP
        EXECUTE format('SELECT @extschema@.%I()', 'q4pg_template_' || v_name) INTO v_text;
        v_sql := v_sql || @extschema@.q4pg_render(v_text, v_values, v_snippets) || E'\n';
    END LOOP;
    RETURN v_sql;
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
       AND p.proname = @extschema@.q4pg_door_prefix(p_queue) || f.suffix
       AND strpos(p.prosrc, @extschema@.q4pg_queue_function_marker(
                                p_queue, i.qualified_name, i.data_type, i.data_length, i.max_attempts)) > 0;
END;

-- q4pg_build_queue_functions: (re)creates a queue's generated functions in
-- the queue's own schema, owned by the queue's owner.  Needs the rights to
-- create functions there and to act as the owner (the owner has them, and a
-- superuser running ALTER EXTENSION q4pg UPDATE); writes pg_proc.
CREATE FUNCTION @extschema@.q4pg_build_queue_functions(p_queue regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record := @extschema@.q4pg_queue_info(p_queue);
    v_door text := @extschema@.q4pg_door_prefix(p_queue);
    v_fn   regprocedure;
BEGIN
    -- a function of one of the names that q4pg did not make is someone's
    -- code: never replaced
    SELECT p.oid INTO v_fn FROM pg_proc AS p, @extschema@.q4pg_queue_function_names() AS f
     WHERE p.pronamespace = v_info.schema AND p.proname = v_door || f.suffix
       AND NOT @extschema@.q4pg_is_generated(p.prosrc)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'q4pg: the function % has a name that queue % needs for its generated functions',
                        v_fn, p_queue
            USING ERRCODE = 'duplicate_function',
                  HINT = 'Rename or drop that function, or give the queue another name.';
    END IF;
    -- every overload of the names goes first: the arguments of a generated
    -- function may differ from an older version's
    PERFORM @extschema@.q4pg_drop_queue_functions(p_queue, v_info.schema);
    EXECUTE @extschema@.q4pg_queue_functions_sql(p_queue, v_info.schema::text);
    FOR v_fn IN
        SELECT p.oid FROM pg_proc AS p, @extschema@.q4pg_queue_function_names() AS f
         WHERE p.pronamespace = v_info.schema
           AND p.proname = v_door || f.suffix
           AND p.proowner <> v_info.owner
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO %I', v_fn, v_info.owner::regrole);
    END LOOP;
END
$$;

-- q4pg_drop_queue_functions: drops generated functions (only those q4pg
-- made: q4pg_is_generated) from a schema and from the session's pg_temp,
-- every overload of their names: those of the queue p_queue, or (p_queue
-- null) those no queue of the schema goes by (a queue table dropped or
-- renamed by hand leaves them; so do older versions' names).
CREATE FUNCTION @extschema@.q4pg_drop_queue_functions(p_queue regclass, p_schema regnamespace)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix text := @extschema@.q4pg_door_prefix(p_queue);
    v_fn     regprocedure;
BEGIN
    FOR v_fn IN
        WITH doors AS MATERIALIZED (    -- the queues' prefixes, worked out once
            SELECT c.relnamespace AS schema, @extschema@.q4pg_door_prefix(t.queue) AS prefix
              FROM @extschema@.q4pg_queue_triggers() AS t JOIN pg_class AS c ON c.oid = t.queue
             WHERE p_queue IS NULL)
        SELECT p.oid
          FROM @extschema@.q4pg_queue_function_names() AS f, pg_proc AS p
         WHERE p.proname LIKE 'q4pg\_%\_' || f.suffix
           AND (p.pronamespace = p_schema::oid OR p.pronamespace = pg_my_temp_schema())
           AND CASE WHEN p_queue IS NOT NULL THEN p.proname = v_prefix || f.suffix
                    ELSE NOT EXISTS (
                             SELECT FROM doors AS d
                              WHERE (d.schema = p.pronamespace OR p.pronamespace = pg_my_temp_schema())
                                AND p.proname = d.prefix || f.suffix) END
           AND @extschema@.q4pg_is_generated(p.prosrc)
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s', v_fn);
    END LOOP;
END
$$;

-- q4pg_build_route: finds (or makes) the generated functions a session uses
-- for a queue and remembers them for the session, with the queue's
-- schema-qualified name.  Returns the functions' schema-qualified name
-- prefix: '<schema>.q4pg_<name>_'.
-- Uses the queue's own functions when they are current; rebuilds them when
-- the caller owns the queue; otherwise builds copies in pg_temp.  Remembers
-- the answer in the settings q4pg.name_<oid> and q4pg.route_<oid> (RESET ALL,
-- DISCARD ALL and a rolled-back transaction forget it).  Raises as
-- q4pg_queue_info.
CREATE FUNCTION @extschema@.q4pg_build_route(p_queue regclass)
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
                      v_schema || '.' || @extschema@.q4pg_door_prefix(p_queue), false);
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
CREATE FUNCTION @extschema@.q4pg_route(p_queue regclass)
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
         OPERATOR(pg_catalog.~) '^(pg_temp|[a-z_][a-z0-9_$]*|"([^"]|"")+")\.q4pg_[a-z0-9_]+_$'
    THEN pg_catalog.current_setting('q4pg.route_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text)
    ELSE @extschema@.q4pg_build_route(p_queue)
END;

-- q4pg_door: the direct door to a queue (1.2): the schema-qualified prefix of
-- the names of the queue's generated functions that this session may call
-- itself, '<schema>.q4pg_<name>_' (q4pg_door_prefix), or
-- 'pg_temp.q4pg_<name>_' for a caller who may not rebuild stale ones (its
-- session's private copies).  Makes or rebuilds them first when they are
-- missing or stale, as every public message function does.  The prefix is
-- made of SQL names and may be spliced into SQL text as it is:
--     EXECUTE 'SELECT ' || q4pg_door('jobs') || 'enqueue($1, $2, $3)' ...
--     SELECT public.q4pg_jobs_enqueue('tag', '{"n": 1}', NULL);
-- A door function whose table was renamed, dropped or restored since raises
-- 55000 and does nothing: ask q4pg_door again.  Raises as q4pg_queue_info.
CREATE FUNCTION @extschema@.q4pg_door(queue regclass)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN @extschema@.q4pg_route(queue);
