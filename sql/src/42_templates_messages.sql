-- The templates of a queue's generated functions (40_queue_functions.sql):
-- enqueueing, dequeueing, cancelling, taking and finishing messages.
--
-- One template per generated function, its placeholders {{name}} filled by
-- q4pg_render from q4pg_queue_functions_sql's values: the queue's table and
-- settings, and the snippets of 41_snippets.sql.  Everything in them is
-- schema-qualified (the generated functions do not pin search_path).

-- q4pg_template_enqueue: the template of the generated
-- enqueue(tag, data, run_at): one message in, its id out; refuses a null tag or
-- data, a tag too long, data longer than the queue's length, the JSON null
-- (json, jsonb) and a run_at that is not finite.
CREATE FUNCTION @extschema@.q4pg_template_enqueue()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}enqueue(p_tag text, p_data text, p_run_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_length integer;
    v_id     bigint;
    v_null   boolean;
BEGIN{{door_check}}
    IF p_tag IS NULL OR p_data IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;{{check_tag}}{{check_run_at}}
    v_length := {{length_of_data}};{{check_too_long}}
    v_null := v_length OPERATOR(pg_catalog.<) 64
              AND pg_catalog.btrim(p_data, E' \t\n\r') OPERATOR(pg_catalog.=) 'null';{{check_json_null}}
    IF p_run_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN
        -- not due yet: into the ring's later slot (55_ring.sql)
        INSERT INTO {{table}} AS q (tag, data, run_at, slot)
        VALUES (p_tag, p_data::{{data_type}}, p_run_at, {{slots}})
        RETURNING q.id INTO v_id;
    ELSE
        INSERT INTO {{table}} AS q (tag, data, run_at)
        VALUES (p_tag, p_data::{{data_type}}, coalesce(p_run_at, pg_catalog.now()))
        RETURNING q.id INTO v_id;
    END IF;
    RETURN v_id;
END
{{dollar}};
$template$;

-- q4pg_template_enqueue_many: the template of the generated
-- enqueue_many(tag, data[], run_at): a batch in, in the array's order, its
-- ids out; refuses as enqueue, for any element.
CREATE FUNCTION @extschema@.q4pg_template_enqueue_many()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}enqueue_many(p_tag text, p_data text[], p_run_at timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_length integer;
    v_null   boolean;
    v_slot   pg_catalog.int2;
BEGIN{{door_check}}
    IF p_tag IS NULL OR p_data IS NULL
       OR pg_catalog.array_position(p_data, NULL::pg_catalog.text) IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: tag and data must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;{{check_tag}}{{check_run_at}}
    SELECT pg_catalog.max({{length_of_batch}}),
           pg_catalog.bool_or(pg_catalog.char_length(u.d) OPERATOR(pg_catalog.<) 64
                              AND pg_catalog.btrim(u.d, E' \t\n\r') OPERATOR(pg_catalog.=) 'null')
      INTO v_length, v_null FROM pg_catalog.unnest(p_data) AS u(d);{{check_too_long}}{{check_json_null}}
    IF p_run_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN
        -- not due yet: into the ring's later slot (55_ring.sql)
        RETURN QUERY
            INSERT INTO {{table}} AS q (tag, data, run_at, slot)
            SELECT p_tag, u.d::{{data_type}}, p_run_at, {{slots}}
              FROM pg_catalog.unnest(p_data) WITH ORDINALITY AS u(d, n)
             ORDER BY u.n
            RETURNING q.id;
        RETURN;
    END IF;
    v_slot := {{ring_slot}};
    RETURN QUERY
        INSERT INTO {{table}} AS q (tag, data, run_at, slot)
        SELECT p_tag, u.d::{{data_type}}, coalesce(p_run_at, pg_catalog.now()), v_slot
          FROM pg_catalog.unnest(p_data) WITH ORDINALITY AS u(d, n)
         ORDER BY u.n
        RETURNING q.id;
END
{{dollar}};
$template$;

-- q4pg_template_dequeue: the template of the generated
-- dequeue(tag): removes the first due message of the tag that no other
-- transaction holds and returns it; remembers the removed row for fail and
-- give_back (q4pg.removed_<key>_<n>).
CREATE FUNCTION @extschema@.q4pg_template_dequeue()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}dequeue(p_tag text)
RETURNS TABLE ({{message_columns}})
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_row  {{table}};
    v_slot integer;
    v_note text;{{ring_declare}}
BEGIN{{door_check}}{{check_tag_null}}{{check_tag}}{{ring_loop_head}}
            {{#slot_chain}}DELETE FROM {{table}} AS q
             WHERE q.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2 AND q.id OPERATOR(pg_catalog.=)
                   (SELECT s.id {{due_messages}} LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING q.id, q.tag, q.data, q.created_at, q.run_at, q.attempts, q.last_error, q.lease_token,
                      q.dead_at, q.slot
                 INTO v_row;{{/slot_chain}}
            v_done := FOUND;{{ring_loop_tail}}
    IF v_done THEN
        IF v_row.id OPERATOR(pg_catalog.%) {{every}} OPERATOR(pg_catalog.=) 0 THEN
            {{tick}}
        END IF;
        {{remember_removed}}
        id := v_row.id; tag := v_row.tag; data := v_row.data::pg_catalog.text; created_at := v_row.created_at;
        RETURN NEXT;
    END IF;
END
{{dollar}};
$template$;

-- q4pg_template_dequeue_many: the template of the generated
-- dequeue_many(tag, n): removes up to n due messages of the tag at once,
-- returns them in id order; remembers nothing.
CREATE FUNCTION @extschema@.q4pg_template_dequeue_many()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}dequeue_many(p_tag text, p_n integer)
RETURNS TABLE ({{message_columns}})
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_left  integer := p_n;
    v_got   integer;
    v_count integer;
    v_at    pg_catalog.tid[];{{ring_declare}}
BEGIN{{door_check}}{{check_tag_null}}{{check_tag}}{{check_n}}
    -- nothing remembered (as dequeue does): a batch's copy cost more than
    -- locking it (make bench: 0.47 of the plain DELETE with it, 0.82
    -- without); a batch consumer that counts failures takes, then done_many{{batch_none}}{{ring_loop_head}}
            -- the messages locked, then removed where they are (by ctid: an
            -- index lookup per message cost a fifth of a batch); two
            -- statements, so that the DELETE's snapshot sees the version a
            -- lock got when a commit changed the row after the first began.
            -- v_at under a SELECT: a value the planner does not see, so that every
            -- plan is a TID scan (seeing 1000 ctids, it chose to read the
            -- whole slot for a session's first five calls)
            {{#slot_chain}}v_at := ARRAY(SELECT s.ctid {{due_messages}} LIMIT v_left FOR UPDATE SKIP LOCKED);
            CONTINUE WHEN pg_catalog.cardinality(v_at) OPERATOR(pg_catalog.=) 0;
            RETURN QUERY
                WITH taken AS (
                    DELETE FROM {{table}} AS q
                     WHERE q.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2
                       AND q.ctid OPERATOR(pg_catalog.=) ANY ((SELECT v_at)::pg_catalog.tid[])
                    RETURNING q.id, q.tag, q.data::pg_catalog.text, q.created_at)
                SELECT t.id, t.tag, t.data, t.created_at FROM taken AS t ORDER BY t.id;{{/slot_chain}}{{batch_count}}{{ring_loop_tail}}
    v_count := p_n OPERATOR(pg_catalog.-) v_left;{{tick_batch}}
END
{{dollar}};
$template$;

-- q4pg_template_cancel: the template of the generated
-- cancel(id): removes a message nobody holds and that is not under a live
-- lease; true when it did.
CREATE FUNCTION @extschema@.q4pg_template_cancel()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}cancel(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_found boolean;
BEGIN{{door_check}}
    -- not one a transaction holds, nor one under a live lease (twice at
    -- most: a second look finds a message the ring's maintenance moved
    -- while the first looked; 55_ring.sql)
    FOR v_try IN 1 .. 2 LOOP
        DELETE FROM {{table}} AS q
         WHERE q.id OPERATOR(pg_catalog.=)
               (SELECT s.id FROM {{table}} AS s
                 WHERE s.id OPERATOR(pg_catalog.=) p_id
                   AND NOT {{leased}}
                   FOR UPDATE SKIP LOCKED);
        v_found := FOUND;
        EXIT WHEN v_found;
    END LOOP;
    IF v_found AND p_id OPERATOR(pg_catalog.%) {{every}} OPERATOR(pg_catalog.=) 0 THEN
        {{tick}}
    END IF;
    RETURN v_found;
END
{{dollar}};
$template$;

-- q4pg_template_take: the template of the generated
-- take(tag, n): locks up to n due messages of the tag for this transaction
-- and remembers their ids (q4pg.taken_<key>), for done, done_many and fail.
CREATE FUNCTION @extschema@.q4pg_template_take()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}take(p_tag text, p_n integer)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz, attempts integer, last_error text)
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_note text;
    v_left integer := p_n;
    v_got  integer;{{ring_declare}}
BEGIN{{door_check}}{{check_tag_null}}{{check_tag}}{{check_n}}{{batch_none}}
    -- LIMIT 1 apart: with LIMIT p_n, PL/pgSQL's plan cache finds no generic
    -- plan worth keeping (it guesses 10% of the rows) and plans every call
    IF p_n OPERATOR(pg_catalog.=) 1 THEN{{ring_loop_head}}
            {{#slot_chain}}SELECT s.id, s.tag, s.data::pg_catalog.text, s.created_at, s.attempts, s.last_error
              INTO id, tag, data, created_at, attempts, last_error
              {{due_messages}} LIMIT 1 FOR UPDATE SKIP LOCKED;{{/slot_chain}}
            v_done := FOUND;{{ring_loop_tail}}
        IF v_done THEN
            RETURN NEXT;
            v_note := pg_catalog.set_config({{taken_setting}},
                          coalesce(pg_catalog.current_setting({{taken_setting}}, true), '') OPERATOR(pg_catalog.||) ','
                          OPERATOR(pg_catalog.||) id::pg_catalog.text OPERATOR(pg_catalog.||) ',', true);
        END IF;
        RETURN;
    END IF;{{ring_loop_head}}
            -- one statement, the ids remembered by its second part (a loop of
            -- RETURN NEXT cost a batch of 1000 several milliseconds)
            {{#slot_chain}}RETURN QUERY
                WITH taken AS MATERIALIZED (
                    SELECT s.id, s.tag, s.data::pg_catalog.text AS data, s.created_at, s.attempts,
                           s.last_error
                      {{due_messages}} LIMIT v_left FOR UPDATE SKIP LOCKED),
                noted AS (
                    SELECT pg_catalog.set_config({{taken_setting}},
                               coalesce(pg_catalog.current_setting({{taken_setting}}, true), '') OPERATOR(pg_catalog.||)
                               coalesce(',' OPERATOR(pg_catalog.||) pg_catalog.string_agg(t.id::pg_catalog.text, ',')
                                        OPERATOR(pg_catalog.||) ',', ''), true)
                      FROM taken AS t)
                SELECT t.id, t.tag, t.data, t.created_at, t.attempts, t.last_error
                  FROM taken AS t, noted AS n ORDER BY t.id;{{/slot_chain}}{{batch_count}}{{ring_loop_tail}}
END
{{dollar}};
$template$;

-- q4pg_template_done: the template of the generated
-- done(id): removes a message this transaction took; false for any other id,
-- at once (never waits for a lock).
CREATE FUNCTION @extschema@.q4pg_template_done()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}done(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
BEGIN{{door_check}}
    -- only a message this transaction took (never one another holds: no wait)
    IF {{not_taken}} THEN
        RETURN false;
    END IF;
    DELETE FROM {{table}} AS q WHERE q.id OPERATOR(pg_catalog.=) p_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_id OPERATOR(pg_catalog.%) {{every}} OPERATOR(pg_catalog.=) 0 THEN
        {{tick}}
    END IF;
    RETURN true;
END
{{dollar}};
$template$;

-- q4pg_template_done_many: the template of the generated
-- done_many(ids): removes the messages of ids this transaction took;
-- returns how many.
CREATE FUNCTION @extschema@.q4pg_template_done_many()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}done_many(p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_count bigint;
BEGIN{{door_check}}
    -- only messages this transaction took (never one another holds: no wait);
    -- the two lists meet once (INTERSECT), not an ANY of one per row of the other
    WITH done AS (
        DELETE FROM {{table}} AS q
         WHERE q.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT pg_catalog.unnest(p_ids)
                   INTERSECT
                   SELECT pg_catalog.unnest(pg_catalog.string_to_array(
                              coalesce(pg_catalog.current_setting({{taken_setting}}, true), ''), ',', '')::pg_catalog.int8[])))
        RETURNING 1)
    SELECT pg_catalog.count(1) INTO v_count FROM done;{{tick_batch}}
    RETURN v_count;
END
{{dollar}};
$template$;
