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
CREATE FUNCTION @extschema@.q4pg_queue_function_names(OUT suffix text)
RETURNS SETOF text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM unnest('{enqueue,enqueue_many,dequeue,dequeue_many,cancel,take,done,done_many,fail,give_back,lease,ack,nack,extend}'::text[]);
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
                                                       p_data_length integer, p_max_attempts integer)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN format('-- q4pg 1.2 generated function, queue %s',
              md5(format('%s %s %s %s', p_qualified_name, p_data_type, p_data_length,
                         coalesce(p_max_attempts::text, 'none'))));

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
                                i.qualified_name, i.data_type, i.data_length, i.max_attempts)) > 0;
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
CREATE FUNCTION @extschema@.q4pg_drop_queue_functions(p_queue regclass, p_schema regnamespace)
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
         OPERATOR(pg_catalog.~) '^(pg_temp|[a-z_][a-z0-9_$]*|"([^"]|"")+")\.q4pg_[0-9a-f]{1,8}_$'
    THEN pg_catalog.current_setting('q4pg.route_' OPERATOR(pg_catalog.||) p_queue::pg_catalog.oid::pg_catalog.text)
    ELSE @extschema@.q4pg_build_route(p_queue)
END;
