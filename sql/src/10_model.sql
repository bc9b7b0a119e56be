-- The shapes and constants every other part uses, each defined once.

-- q4pg_lock_class: the first key of q4pg's two-key advisory locks.
-- Takes 'barrier', 'presence' or 'ring'; returns 1899262055, 1899262056 or
-- 1899262057.
-- barrier:  producers hold it shared from their INSERT to their commit;
--           q4pg_go_idle probes it exclusively (the no-lost-wake-up
--           barrier).
-- presence: idle listeners hold it shared while registered; producers probe it
--           exclusively (does anybody wait?).
-- ring:     the maintenance of a queue's ring holds it (transaction level)
--           while it runs: one at a time (55_ring.sql).
-- The second key is the queue's lock key (see q4pg_create_queue).  Applications
-- must not use these three numbers as the first key of their own locks.
CREATE FUNCTION @extschema@.q4pg_lock_class(p_kind text)
RETURNS integer
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE p_kind WHEN 'barrier' THEN 1899262055 WHEN 'presence' THEN 1899262056
                   WHEN 'ring' THEN 1899262057 END;

-- q4pg_channel_name: the NOTIFY channel of a queue and a tag.
-- Takes the queue's schema-qualified name as quote_ident() writes each part
-- ('public.mq', 'app."My Queue"') and a tag; returns
-- 'q4pg_' || md5(<name> || ':' || <tag>): always 37 bytes, whatever the tag.
-- The one definition of the channel formula: q4pg_notify and q4pg_channel use it.
CREATE FUNCTION @extschema@.q4pg_channel_name(p_qualified_name text, p_tag text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN 'q4pg_' || md5(p_qualified_name || ':' || p_tag);

-- q4pg_check_tag: raises unless p_tag is a valid tag.
-- A tag is any non-null text of at most 2048 bytes (the (tag, id) index must
-- hold it).  Raises null_value_not_allowed (22004) or
-- string_data_right_truncation (22001).  The generated per-queue functions
-- carry the same two tests inline (see q4pg_queue_functions_sql in
-- 40_queue_functions.sql): a call costs
-- more there than the tests.
CREATE FUNCTION @extschema@.q4pg_check_tag(p_tag text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_tag IS NULL THEN
        RAISE EXCEPTION 'q4pg: tag must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(p_tag) > 2048 THEN
        RAISE EXCEPTION 'q4pg: tag of % bytes is longer than the 2048 bytes a tag may have',
                octet_length(p_tag)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
END
$$;

-- q4pg_check_limit: raises invalid_parameter_value (22023) for a negative
-- limit of the listing functions (q4pg_list, q4pg_dead_letters); null is no
-- limit.  (The generated functions' n, which may not be null, is checked
-- inline.)
CREATE FUNCTION @extschema@.q4pg_check_limit(p_n integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_n < 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', p_n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- q4pg_check_max_attempts: raises invalid_parameter_value (22023) unless
-- p_max_attempts is a queue's possible max_attempts: null (no limit) or at
-- least 1.  q4pg_create_queue and q4pg_set_max_attempts use it.
CREATE FUNCTION @extschema@.q4pg_check_max_attempts(p_max_attempts integer)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_max_attempts < 1 THEN
        RAISE EXCEPTION 'q4pg: max_attempts must be at least 1 (or null: no limit), not %', p_max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- q4pg_message_state: the one definition of a message's states, as an SQL
-- condition on the columns of a queue table (README, "Message states"):
--   due        run_at <= now()  (dead letters have run_at 'infinity')
--   scheduled  not due, not leased, not dead: run_at > now(), no lease_token
--              and no dead_at
--   leased     lease_token not null and coalesce(dead_at, run_at) > now()
--              (a lease on the last allowed attempt keeps run_at 'infinity'
--              and its end in dead_at: when it ends, the message is dead)
--   dead       dead_at <= now()  (null when the message is not dead)
-- and one condition that cuts across them (a message in it is also due, or
-- dead on its last allowed attempt):
--   expired    a lease ran out without an ack or a nack: lease_token not
--              null and coalesce(dead_at, run_at) <= now(), until a new
--              lease, a dequeue, a nack, a fail or a replay ends it (a dead
--              letter whose last lease ran out stays expired)
-- Takes the state and the alias of the table in the query ('s', or '' for
-- bare column names); returns the condition in parentheses, its operators
-- schema-qualified, so that the generated functions (which do not pin
-- search_path) and the inspection functions' dynamic SQL both splice it in.
-- Raises 22023 for another state.
CREATE FUNCTION @extschema@.q4pg_message_state(p_state text, p_alias text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_a   text := CASE WHEN coalesce(p_alias, '') = '' THEN '' ELSE quote_ident(p_alias) || '.' END;
    v_sql text;
BEGIN
    v_sql := CASE p_state
        WHEN 'due' THEN
            format('(%1$srun_at OPERATOR(pg_catalog.<=) pg_catalog.now())', v_a)
        WHEN 'scheduled' THEN
            format('(%1$srun_at OPERATOR(pg_catalog.>) pg_catalog.now() AND %1$slease_token IS NULL'
                   ' AND %1$sdead_at IS NULL)', v_a)
        WHEN 'leased' THEN
            format('(%1$slease_token IS NOT NULL'
                   ' AND coalesce(%1$sdead_at, %1$srun_at) OPERATOR(pg_catalog.>) pg_catalog.now())', v_a)
        WHEN 'dead' THEN
            format('(%1$sdead_at OPERATOR(pg_catalog.<=) pg_catalog.now())', v_a)
        WHEN 'expired' THEN
            format('(%1$slease_token IS NOT NULL'
                   ' AND coalesce(%1$sdead_at, %1$srun_at) OPERATOR(pg_catalog.<=) pg_catalog.now())', v_a) END;
    IF v_sql IS NULL THEN
        RAISE EXCEPTION 'q4pg: % is not a message state (due, scheduled, leased, dead, expired)',
                coalesce(quote_literal(p_state), 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_sql;
END
$$;
