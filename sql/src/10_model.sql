-- The shapes and constants every other part uses, each defined once.

-- q4pg_lock_class: the first key of q4pg's two-key advisory locks.
-- Takes 'barrier' or 'presence'; returns 1899262055 or 1899262056.
-- barrier:  producers hold it shared from their INSERT to their commit;
--           q4pg_go_idle probes it exclusively (the no-lost-wake-up
--           barrier).
-- presence: idle listeners hold it shared while registered; producers probe it
--           exclusively (does anybody wait?).
-- The second key is the queue's lock key (see q4pg_create_queue).  Applications
-- must not use these two numbers as the first key of their own locks.
CREATE FUNCTION @extschema@.q4pg_lock_class(p_kind text)
RETURNS integer
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE p_kind WHEN 'barrier' THEN 1899262055 WHEN 'presence' THEN 1899262056 END;

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
