-- The pieces the templates of a queue's generated functions share
-- (42_templates_messages.sql, 43_templates_failures_leases.sql): argument
-- checks, the due messages of a tag, what a lease sets, and the memory of
-- what a transaction took and removed (40_queue_functions.sql says what it
-- holds).  Each is a template itself, filled by q4pg_render with the
-- queue's values (q4pg_queue_functions_sql) before it goes into a function.

-- q4pg_queue_function_snippets: the snippets, by name.
CREATE FUNCTION @extschema@.q4pg_queue_function_snippets(OUT name text, OUT template text)
RETURNS SETOF record
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM (VALUES
-- q4pg_check_tag inline (a call costs more than the test); the null test is
-- each function's own, with its data
('check_tag', $s$
    IF pg_catalog.octet_length(p_tag) OPERATOR(pg_catalog.>) 2048 THEN
        RAISE EXCEPTION 'q4pg: tag of % bytes is longer than the 2048 bytes a tag may have',
                pg_catalog.octet_length(p_tag)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;$s$),
-- the direct door's guard (40_queue_functions.sql): the function acts on
-- the table it was made for, or raises and does nothing
('door_check', $s$
    IF (pg_catalog.to_regclass({{table_literal}})::pg_catalog.oid OPERATOR(pg_catalog.=) {{table_oid}}::pg_catalog.oid)
       IS NOT TRUE THEN
        RAISE EXCEPTION 'q4pg: this generated function of queue % is stale: the table was renamed, dropped or restored since it was made',
                {{table_literal}}
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call the public q4pg_* function, or q4pg_door(queue) for the door''s present name.';
    END IF;$s$),
('check_tag_null', $s$
    IF p_tag IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;$s$),
('check_too_long', $s$
    IF v_length OPERATOR(pg_catalog.>) {{data_length}} THEN
        RAISE EXCEPTION 'q4pg: message of % characters is longer than queue % accepts ({{data_length}} characters)',
                v_length, {{table_literal}}
            USING ERRCODE = 'string_data_right_truncation';
    END IF;$s$),
-- a JSON null would come out of a dequeue as nothing at all (None in
-- Python): refused with a clear error (json and jsonb queues; text queues
-- get an empty check_json_null), and by the table's q4pg_data_not_json_null
-- constraint for a plain INSERT
('check_json_null', $s$
    IF v_null THEN
        RAISE EXCEPTION 'q4pg: data must not be the JSON null: a consumer could not tell it from no message'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;$s$),
('check_run_at', $s$
    IF NOT pg_catalog.isfinite(p_run_at) THEN
        RAISE EXCEPTION 'q4pg: run_at must be a finite time, not %', p_run_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$s$),
('check_n', $s$
    IF p_n IS NULL OR p_n OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', coalesce(p_n::pg_catalog.text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$s$),
('check_lease', $s$
    IF p_lease IS NULL OR p_lease OPERATOR(pg_catalog.<=) '0'::pg_catalog.interval THEN
        RAISE EXCEPTION 'q4pg: lease must be longer than zero, not %', coalesce(p_lease::pg_catalog.text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$s$),
('check_retry_in', $s$
    IF p_retry_in OPERATOR(pg_catalog.<) '0'::pg_catalog.interval THEN
        RAISE EXCEPTION 'q4pg: retry_in must not be negative, not %', p_retry_in
            USING ERRCODE = 'invalid_parameter_value';
    END IF;$s$),
-- the due messages of a tag, first due first: the one definition that
-- dequeue, dequeue_many, take and lease select from
('due_messages', $s$FROM {{table}} AS s
                 WHERE s.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2
                   AND s.tag OPERATOR(pg_catalog.=) p_tag AND {{due}}
                 ORDER BY s.run_at, s.id$s$),
-- the ring (55_ring.sql): a function that looks for due messages reads the
-- ring's state once (ring_declare), then probes the slots (ring_loop_head,
-- then a {{#slot_chain}} of its statement for slot v_s, then v_done set,
-- then ring_loop_tail): the live slots oldest first, the ring's own, the
-- later slot, and when nothing was found the slots the ring left; it stops
-- when v_done
('ring_declare', $s$
    v_value bigint := {{ring_state}};
    v_s     integer;
    v_done  boolean;$s$),
-- the ring's state now (55_ring.sql: ring + slots * live; 0 once TRUNCATE
-- ... RESTART IDENTITY restarted the sequence), as the slot column's default reads it
('ring_state', $s$coalesce(pg_catalog.pg_sequence_last_value({{state}}), 0)$s$),
-- the ring's slot now, as the slot column's default gives it for a plain
-- INSERT (q4pg_make_ring): a batch reads it once into a variable, where the
-- default, a volatile call, is read again for every row (2k instructions each)
('ring_slot', $s$({{ring_state}} OPERATOR(pg_catalog.%) {{slots}})::pg_catalog.int2$s$),
-- the slots in the order the state v_value (the ring's slot, v_value %
-- slots, and the mask of the live slots, v_value / slots) gives them:
-- q4pg_ring_probe_orders()'s row v_value + 1, a constant of the function's
-- text, so that the loop costs one expression
('ring_loop_head', $s$
    FOREACH v_s IN ARRAY {{ring_orders}}[v_value OPERATOR(pg_catalog.+) 1:v_value OPERATOR(pg_catalog.+) 1] LOOP$s$),
-- a batch (dequeue_many, take and lease of n) asks each slot for what is
-- still missing (v_left) and is done when nothing is: batch_none returns at
-- once for n = 0, batch_count follows a slot's statement
('batch_none', $s$
    IF p_n OPERATOR(pg_catalog.=) 0 THEN
        RETURN;
    END IF;$s$),
('batch_count', $s$
            GET DIAGNOSTICS v_got = ROW_COUNT;
            v_left := v_left OPERATOR(pg_catalog.-) v_got;
            v_done := v_left OPERATOR(pg_catalog.=) 0;$s$),
-- a maintenance step of the ring at commit (55_ring.sql, 07_ring_ticks.sql):
-- a function that removed a message whose id is a multiple of
-- q4pg_ring('every') ticks; one that removed a batch of n, with the chance
-- n / every (tick_batch: v_count the messages removed)
('tick', $s$PERFORM @extschema@.q4pg_ring_tick({{table_oid}}::pg_catalog.oid::pg_catalog.regclass);$s$),
('tick_batch', $s$
    IF pg_catalog.random() OPERATOR(pg_catalog.*) {{every}} OPERATOR(pg_catalog.<) v_count THEN
        {{tick}}
    END IF;$s$),
('ring_loop_tail', $s$
            EXIT WHEN v_done;
    END LOOP;$s$),
-- a lease's token: random, but for its last byte, the slot the message is
-- leased in ({{slot}}, inside a slot_chain), where ack, nack and extend look
-- first (token_loop_head)
('slot_token', $s$pg_catalog.encode(pg_catalog.set_byte(pg_catalog.uuid_send(pg_catalog.gen_random_uuid()), 15, {{slot}}),
                                       'hex')::pg_catalog.uuid$s$),
-- ack, nack and extend look for a leased message first in the slot its
-- token names, then (a token of 1.1, or a message the ring's maintenance
-- moved meanwhile) in every slot, each with a snapshot of its own:
-- token_loop_head, then a {{#slot_chain}} of the statement for slot v_s
-- setting v_found, then token_loop_tail
('token_loop_head', $s$
    v_s := pg_catalog.get_byte(pg_catalog.uuid_send(p_token), 15);
    FOR v_next IN 0 .. {{slots}} OPERATOR(pg_catalog.+) 1 LOOP
        v_found := false;$s$),
('token_loop_tail', $s$
        EXIT WHEN v_found OR v_next OPERATOR(pg_catalog.>) {{slots}};
        v_s := v_next;
    END LOOP;$s$),
-- what a lease sets: an attempt counted, a fresh token, the lease's end
-- (kept in dead_at on the last allowed attempt, run_at then 'infinity')
('lease_set', $s$SET attempts = q.attempts OPERATOR(pg_catalog.+) 1,
                   lease_token = {{slot_token}},
                   run_at = CASE WHEN q.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) {{max_attempts}}
                                 THEN 'infinity'::pg_catalog.timestamptz ELSE v_until END,
                   dead_at = CASE WHEN q.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) {{max_attempts}}
                                  THEN v_until END$s$),
-- records the removed v_row in the next q4pg.removed_<key>_<n>
('remember_removed', $s$v_slot := pg_catalog.length(coalesce(pg_catalog.current_setting({{removed_setting}}, true), ''));
        -- (assignments, not PERFORM: PL/pgSQL evaluates them without a query)
        v_note := pg_catalog.set_config({{removed_setting}}, pg_catalog.repeat('x', v_slot OPERATOR(pg_catalog.+) 1), true);
        v_note := pg_catalog.set_config({{removed_setting_prefix}} OPERATOR(pg_catalog.||) v_slot::pg_catalog.text,
                                        v_row::pg_catalog.text, true);$s$),
-- true unless this transaction took p_id
('not_taken', $s$pg_catalog.strpos(coalesce(pg_catalog.current_setting({{taken_setting}}, true), ''),
                         ',' OPERATOR(pg_catalog.||) p_id::pg_catalog.text OPERATOR(pg_catalog.||) ',')
       OPERATOR(pg_catalog.=) 0$s$),
-- finds p_id's removed row: v_row, its setting's number v_slot (v_slot
-- reaches v_slots when there is none)
('find_removed', $s$v_slots := pg_catalog.length(coalesce(pg_catalog.current_setting({{removed_setting}}, true), ''));
    v_slot := 0;
    WHILE v_slot OPERATOR(pg_catalog.<) v_slots LOOP
        v_text := pg_catalog.current_setting({{removed_setting_prefix}} OPERATOR(pg_catalog.||) v_slot::pg_catalog.text);
        IF v_text OPERATOR(pg_catalog.<>) '' THEN
            v_row := CAST(v_text AS {{table}});
            EXIT WHEN v_row.id OPERATOR(pg_catalog.=) p_id;
        END IF;
        v_slot := v_slot OPERATOR(pg_catalog.+) 1;
    END LOOP;$s$),
-- a removed message (v_row) back in the table under its id, with the due
-- time, attempts, error and death of put_back_dead, put_back_retry or
-- put_back_as_was (q4pg_queue_functions_sql fills them in)
('put_back', $s$INSERT INTO {{table}} AS q (id, tag, data, created_at, run_at, attempts, last_error, lease_token, dead_at)
        OVERRIDING SYSTEM VALUE
        VALUES (v_row.id, v_row.tag, v_row.data, v_row.created_at, {{put_back_run_at}}, {{put_back_attempts}}, {{put_back_error}}, NULL, {{put_back_dead_at}})$s$)
    ) AS s(name, template);
END;
