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
