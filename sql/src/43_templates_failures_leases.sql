-- The templates of a queue's generated functions (40_queue_functions.sql):
-- failures and give-backs, leases.  See 42_templates_messages.sql.

-- q4pg_template_fail: the template of the generated
-- fail(id, error, retry_in, max_attempts): counts a failure of a message this
-- transaction removed (put back under its id) or took (updated in place):
-- 'retry' (due again now, or after retry_in), 'dead' (its attempts are used
-- up), NULL for any other id.
CREATE FUNCTION @extschema@.q4pg_template_fail()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}fail(p_id bigint, p_error text, p_retry_in interval, p_max_attempts integer)
RETURNS text
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_row   {{table}};
    v_text  text;
    v_max   integer := coalesce(p_max_attempts, {{max_attempts}});
    v_slots integer;
    v_slot  integer;
BEGIN{{door_check}}{{check_retry_in}}
    -- a message this transaction removed (dequeue): back under its id, counted
    {{find_removed}}
    IF v_slot OPERATOR(pg_catalog.<) v_slots THEN
        v_text := pg_catalog.set_config({{removed_setting_prefix}} OPERATOR(pg_catalog.||) v_slot::pg_catalog.text, '', true);
        IF v_row.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) v_max THEN
            {{put_back_dead}};
            RETURN 'dead';
        END IF;
        {{put_back_retry}};
        RETURN 'retry';
    END IF;
    -- a message this transaction took: counted in place (never one another
    -- transaction holds: no wait)
    IF {{not_taken}} THEN
        RETURN NULL;
    END IF;
    SELECT q.id, q.tag, q.data, q.created_at, q.run_at, q.attempts, q.last_error, q.lease_token, q.dead_at,
           q.slot
      INTO v_row FROM {{table}} AS q WHERE q.id OPERATOR(pg_catalog.=) p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_row.attempts OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.>=) v_max THEN
        UPDATE {{table}} AS q
           SET attempts = q.attempts OPERATOR(pg_catalog.+) 1, last_error = p_error, lease_token = NULL,
               run_at = 'infinity'::pg_catalog.timestamptz, dead_at = pg_catalog.now()
         WHERE q.id OPERATOR(pg_catalog.=) p_id;
        RETURN 'dead';
    END IF;
    -- no retry_in: the message keeps its place, as after a rollback
    UPDATE {{table}} AS q
       SET attempts = q.attempts OPERATOR(pg_catalog.+) 1, last_error = p_error, lease_token = NULL,
           run_at = CASE WHEN p_retry_in IS NULL THEN LEAST(q.run_at, pg_catalog.now())
                         ELSE pg_catalog.now() OPERATOR(pg_catalog.+) p_retry_in END
     WHERE q.id OPERATOR(pg_catalog.=) p_id;
    IF coalesce(p_retry_in, '0'::pg_catalog.interval) OPERATOR(pg_catalog.=) '0'::pg_catalog.interval THEN
        IF {{notify_gate}} THEN
            PERFORM @extschema@.q4pg_wake({{table_literal}}, {{lock_key}}, v_row.tag);
        END IF;
    END IF;
    RETURN 'retry';
END
{{dollar}};
$template$;

-- q4pg_template_give_back: the template of the generated
-- give_back(ids): puts messages this transaction removed back as they
-- were, uncounted; returns how many.
CREATE FUNCTION @extschema@.q4pg_template_give_back()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}give_back(p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_row   {{table}};
    v_text  text;
    v_count bigint := 0;
    v_slots integer;
    v_slot  integer;
    p_id    bigint;       -- each of p_ids in turn (the name v_find reads)
BEGIN{{door_check}}
    -- messages this transaction removed (dequeue): back as they were, uncounted
    FOREACH p_id IN ARRAY coalesce(p_ids, '{}') LOOP
        {{find_removed}}
        IF v_slot OPERATOR(pg_catalog.<) v_slots THEN
            v_text := pg_catalog.set_config({{removed_setting_prefix}} OPERATOR(pg_catalog.||) v_slot::pg_catalog.text, '', true);
            {{put_back_as_was}};
            v_count := v_count OPERATOR(pg_catalog.+) 1;
        END IF;
    END LOOP;
    RETURN v_count;
END
{{dollar}};
$template$;

-- q4pg_template_lease: the template of the generated
-- lease(tag, n, lease): leases up to n due messages of the tag: an attempt
-- counted, a fresh token, due again when the lease ends (dead then, on the
-- last allowed attempt).
CREATE FUNCTION @extschema@.q4pg_template_lease()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}lease(p_tag text, p_n integer, p_lease interval)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz, attempts integer, last_error text,
               lease_token uuid, lease_until timestamptz)
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_until timestamptz;
    v_left  integer := p_n;
    v_got   integer;{{ring_declare}}
BEGIN{{door_check}}{{check_tag_null}}{{check_tag}}{{check_n}}{{check_lease}}
    v_until := pg_catalog.now() OPERATOR(pg_catalog.+) p_lease;{{batch_none}}
    -- LIMIT 1 apart, as in take
    IF p_n OPERATOR(pg_catalog.=) 1 THEN{{ring_loop_head}}
            {{#slot_chain}}RETURN QUERY
                UPDATE {{table}} AS q
                   {{lease_set}}
                 WHERE q.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2 AND q.id OPERATOR(pg_catalog.=) (
                           SELECT s.id {{due_messages}} LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING q.id, q.tag, q.data::pg_catalog.text, q.created_at, q.attempts, q.last_error,
                          q.lease_token, v_until;{{/slot_chain}}
            v_done := FOUND;{{ring_loop_tail}}
        RETURN;
    END IF;{{ring_loop_head}}
            {{#slot_chain}}RETURN QUERY
                WITH leased AS (
                    UPDATE {{table}} AS q
                       {{lease_set}}
                     WHERE q.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2 AND q.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                               SELECT s.id {{due_messages}} LIMIT v_left FOR UPDATE SKIP LOCKED))
                    RETURNING q.id, q.tag, q.data::pg_catalog.text AS data, q.created_at, q.attempts, q.last_error,
                              q.lease_token)
                SELECT l.id, l.tag, l.data, l.created_at, l.attempts, l.last_error, l.lease_token, v_until
                  FROM leased AS l ORDER BY l.id;{{/slot_chain}}{{batch_count}}{{ring_loop_tail}}
END
{{dollar}};
$template$;

-- q4pg_template_ack: the template of the generated
-- ack(id, token): removes a leased message whose lease the token holds.
CREATE FUNCTION @extschema@.q4pg_template_ack()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}ack(p_id bigint, p_token uuid)
RETURNS boolean
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_found boolean;
    v_s     integer;
BEGIN{{door_check}}{{token_loop_head}}
        {{#slot_chain}}DELETE FROM {{table}} AS q
             WHERE q.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2
               AND q.id OPERATOR(pg_catalog.=) p_id AND q.lease_token OPERATOR(pg_catalog.=) p_token;
            v_found := FOUND;{{/slot_chain}}{{token_loop_tail}}
    IF v_found AND p_id OPERATOR(pg_catalog.%) {{every}} OPERATOR(pg_catalog.=) 0 THEN
        {{tick}}
    END IF;
    RETURN v_found;
END
{{dollar}};
$template$;

-- q4pg_template_nack: the template of the generated
-- nack(id, token, retry_in, error): ends a lease with a failure: 'retry' or
-- 'dead', NULL when the token holds no lease on the message.
CREATE FUNCTION @extschema@.q4pg_template_nack()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}nack(p_id bigint, p_token uuid, p_retry_in interval, p_error text)
RETURNS text
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_tag   text;
    v_dead  timestamptz;
    v_found boolean;
    v_s     integer;
BEGIN{{door_check}}{{check_retry_in}}{{token_loop_head}}
        {{#slot_chain}}UPDATE {{table}} AS q
               SET lease_token = NULL, last_error = p_error,
                   run_at = CASE WHEN q.attempts OPERATOR(pg_catalog.>=) {{max_attempts}} THEN 'infinity'::pg_catalog.timestamptz
                                 ELSE pg_catalog.now() OPERATOR(pg_catalog.+) coalesce(p_retry_in, '0'::pg_catalog.interval) END,
                   dead_at = CASE WHEN q.attempts OPERATOR(pg_catalog.>=) {{max_attempts}} THEN pg_catalog.now() END
             WHERE q.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2
               AND q.id OPERATOR(pg_catalog.=) p_id AND q.lease_token OPERATOR(pg_catalog.=) p_token
            RETURNING q.tag, q.dead_at INTO v_tag, v_dead;
            v_found := FOUND;{{/slot_chain}}{{token_loop_tail}}
    IF NOT v_found THEN
        RETURN NULL;
    ELSIF v_dead IS NOT NULL THEN
        RETURN 'dead';
    END IF;
    IF coalesce(p_retry_in, '0'::pg_catalog.interval) OPERATOR(pg_catalog.=) '0'::pg_catalog.interval THEN
        IF {{notify_gate}} THEN
            PERFORM @extschema@.q4pg_wake({{table_literal}}, {{lock_key}}, v_tag);
        END IF;
    END IF;
    RETURN 'retry';
END
{{dollar}};
$template$;

-- q4pg_template_extend: the template of the generated
-- extend(id, token, lease): a live lease ends lease from now; its new end,
-- or NULL when the token holds no live lease.
CREATE FUNCTION @extschema@.q4pg_template_extend()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}extend(p_id bigint, p_token uuid, p_lease interval)
RETURNS timestamptz
LANGUAGE plpgsql
AS {{dollar}}
{{marker}}
DECLARE
    v_until timestamptz;
    v_found boolean;
    v_s     integer;
BEGIN{{door_check}}{{check_lease}}
    v_until := pg_catalog.now() OPERATOR(pg_catalog.+) p_lease;{{token_loop_head}}
        {{#slot_chain}}UPDATE {{table}} AS q
               SET run_at = CASE WHEN q.dead_at IS NULL THEN v_until ELSE q.run_at END,
                   dead_at = CASE WHEN q.dead_at IS NOT NULL THEN v_until END
             WHERE q.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2
               AND q.id OPERATOR(pg_catalog.=) p_id AND q.lease_token OPERATOR(pg_catalog.=) p_token
               AND (q.dead_at IS NULL OR q.dead_at OPERATOR(pg_catalog.>) pg_catalog.now());
            v_found := FOUND;{{/slot_chain}}{{token_loop_tail}}
    RETURN CASE WHEN v_found THEN v_until END;
END
{{dollar}};
$template$;

-- q4pg_template_maintain: the template of the generated
-- maintain(): one maintenance step of the queue's ring (55_ring.sql), as the
-- queue's owner: SECURITY DEFINER, search_path pinned.  The maintenance
-- tick (q4pg_ring_step, 07_ring_ticks.sql) and q4pg_maintain call it.  Static SQL (plans
-- the session keeps) but for step 4, rare, q4pg_ring_clean's; and first, a
-- look at whether there is anything to do: nothing, in the usual case, when
-- no slot is live, the ring's slot is below q4pg_ring('slot_bytes') or
-- nothing holds the xmin horizon back, the other slots are empty and nothing
-- in the later slot is due.
CREATE FUNCTION @extschema@.q4pg_template_maintain()
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN $template$
{{create}}maintain()
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{dollar}}
{{marker}}
DECLARE
    v_value bigint := {{ring_state}};
    v_ring  integer := v_value OPERATOR(pg_catalog.%) {{slots}};
    v_live  integer := v_value OPERATOR(pg_catalog./) {{slots}};
    v_slots pg_catalog.regclass[] := {{ring_parts}};
    v_left  boolean := false;
    v_said  text := '';
    v_s     integer;
    v_found boolean;
    v_due   boolean;
    v_count bigint;
    v_size  bigint;
    v_full  boolean;
    v_stale boolean := false;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RETURN 'not in read committed';
    END IF;
    -- the slots the ring left that are not empty yet
    FOR v_k IN 0 .. {{slots}} OPERATOR(pg_catalog.-) 1 LOOP
        v_left := v_left OR (v_k OPERATOR(pg_catalog.<>) v_ring
                             AND (v_live OPERATOR(pg_catalog.&) (1 OPERATOR(pg_catalog.<<) v_k)) OPERATOR(pg_catalog.=) 0
                             AND pg_catalog.pg_relation_size(v_slots[v_k OPERATOR(pg_catalog.+) 1]) OPERATOR(pg_catalog.>) 0);
    END LOOP;
    -- (the later slot's due messages: looked for once; the move below, an
    -- INSERT, costs its statement trigger even when it moves nothing)
    v_due := EXISTS (SELECT FROM {{table}} AS s
                      WHERE s.slot OPERATOR(pg_catalog.=) {{slots}}::pg_catalog.int2 AND {{due}});
    -- (the ring's slot full: it moves on only while the horizon is held)
    v_size := pg_catalog.pg_relation_size(v_slots[v_ring OPERATOR(pg_catalog.+) 1]);
    v_full := v_size OPERATOR(pg_catalog.>=) {{slot_bytes}} AND @extschema@.q4pg_horizon_held();
    -- a full slot the ring keeps gets its statistics again when it has grown
    -- fourfold since they were taken: the plans sessions made while it was
    -- empty would read it all (a bitmap scan and a sort where an index scan
    -- stops at the first message); an ANALYZE makes them plan again
    IF v_size OPERATOR(pg_catalog.>=) {{slot_bytes}} AND NOT v_full THEN
        SELECT c.relpages::pg_catalog.int8 OPERATOR(pg_catalog.*) 32768 OPERATOR(pg_catalog.<) v_size
          INTO v_stale
          FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) v_slots[v_ring OPERATOR(pg_catalog.+) 1];
    END IF;
    IF v_live OPERATOR(pg_catalog.=) 0 AND NOT v_left AND NOT v_due AND NOT v_full AND NOT v_stale THEN
        RETURN '';
    END IF;
    IF NOT pg_catalog.pg_try_advisory_xact_lock(@extschema@.q4pg_lock_class('ring'), {{lock_key}}) THEN
        RETURN 'busy';
    END IF;
    -- (the slot v_stale was measured on, before the state is read again)
    IF v_stale THEN
        EXECUTE pg_catalog.format('ANALYZE (SKIP_LOCKED) %s', v_slots[v_ring OPERATOR(pg_catalog.+) 1]);
        v_said := v_said OPERATOR(pg_catalog.||) pg_catalog.format('slot %s analyzed; ', v_ring);
    END IF;
    -- the state again, under the lock (another step may have changed it
    -- since it was read)
    v_value := {{ring_state}};
    v_ring := v_value OPERATOR(pg_catalog.%) {{slots}};
    v_live := v_value OPERATOR(pg_catalog./) {{slots}};
    -- 1. drained live slots (looked at from their newest message: the oldest
    -- are the ones consumed first)
    FOR v_k IN 0 .. {{slots}} OPERATOR(pg_catalog.-) 1 LOOP
        CONTINUE WHEN v_k OPERATOR(pg_catalog.=) v_ring
                      OR (v_live OPERATOR(pg_catalog.&) (1 OPERATOR(pg_catalog.<<) v_k)) OPERATOR(pg_catalog.=) 0;
        v_s := v_k;
        {{#slot_chain}}PERFORM FROM {{table}} AS s
             WHERE s.slot OPERATOR(pg_catalog.=) {{slot}}::pg_catalog.int2 AND {{due}}
             ORDER BY s.id DESC LIMIT 1 FOR UPDATE SKIP LOCKED;{{/slot_chain}}
        v_found := FOUND;
        IF NOT v_found THEN
            v_live := v_live OPERATOR(pg_catalog.&) (OPERATOR(pg_catalog.~) (1 OPERATOR(pg_catalog.<<) v_k));
            v_said := v_said OPERATOR(pg_catalog.||) pg_catalog.format('slot %s drained; ', v_k);
        END IF;
    END LOOP;
    -- 2. the ring moves on, to the next clean slot (empty, not live), when
    -- its slot is full and the horizon held
    IF v_full AND pg_catalog.pg_relation_size(v_slots[v_ring OPERATOR(pg_catalog.+) 1]) OPERATOR(pg_catalog.>=) {{slot_bytes}} THEN
        FOR v_k IN 1 .. {{slots}} OPERATOR(pg_catalog.-) 1 LOOP
            v_s := (v_ring OPERATOR(pg_catalog.+) v_k) OPERATOR(pg_catalog.%) {{slots}};
            IF (v_live OPERATOR(pg_catalog.&) (1 OPERATOR(pg_catalog.<<) v_s)) OPERATOR(pg_catalog.=) 0
               AND pg_catalog.pg_relation_size(v_slots[v_s OPERATOR(pg_catalog.+) 1]) OPERATOR(pg_catalog.=) 0 THEN
                v_said := v_said OPERATOR(pg_catalog.||) pg_catalog.format('ring %s -> %s; ', v_ring, v_s);
                v_live := v_live OPERATOR(pg_catalog.|) (1 OPERATOR(pg_catalog.<<) v_ring);
                v_ring := v_s;
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF (v_ring OPERATOR(pg_catalog.+) ({{slots}} OPERATOR(pg_catalog.*) v_live)) OPERATOR(pg_catalog.<>) v_value THEN
        PERFORM pg_catalog.setval({{state}}, v_ring OPERATOR(pg_catalog.+) ({{slots}} OPERATOR(pg_catalog.*) v_live), true);
    END IF;
    -- 3. the later slot's due messages into the ring's slot
    IF v_due THEN
        WITH moved AS (
            DELETE FROM {{table}} AS q
             WHERE q.slot OPERATOR(pg_catalog.=) {{slots}}::pg_catalog.int2
               AND q.id OPERATOR(pg_catalog.=) ANY (ARRAY(
                       SELECT s.id FROM {{table}} AS s
                        WHERE s.slot OPERATOR(pg_catalog.=) {{slots}}::pg_catalog.int2 AND {{due}}
                          FOR UPDATE SKIP LOCKED))
            RETURNING q.id, q.tag, q.data, q.created_at, q.run_at, q.attempts, q.last_error, q.lease_token, q.dead_at)
        INSERT INTO {{table}} AS q (id, tag, data, created_at, run_at, attempts, last_error, lease_token, dead_at, slot)
        OVERRIDING SYSTEM VALUE
        SELECT m.id, m.tag, m.data, m.created_at, m.run_at, m.attempts, m.last_error, m.lease_token, m.dead_at,
               v_ring::pg_catalog.int2
          FROM moved AS m;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        IF v_count OPERATOR(pg_catalog.>) 0 THEN
            v_said := v_said OPERATOR(pg_catalog.||) pg_catalog.format('%s due moved from the later slot; ', v_count);
        END IF;
    END IF;
    -- 4. the slots the ring left: what is left moves on, then they are emptied
    IF v_left OR (v_ring OPERATOR(pg_catalog.+) ({{slots}} OPERATOR(pg_catalog.*) v_live)) OPERATOR(pg_catalog.<>) v_value THEN
        v_said := v_said OPERATOR(pg_catalog.||) @extschema@.q4pg_ring_clean({{table_literal}}::pg_catalog.regclass,
                                                                         v_slots, v_ring, v_live);
    END IF;
    RETURN pg_catalog.rtrim(v_said, '; ');
END
{{dollar}};
$template$;
