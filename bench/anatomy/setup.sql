-- Scratch objects for `python -m bench.run --only anatomy`: q4pg_enqueue and q4pg_dequeue
-- taken apart, one piece added at a time, so each piece's cost shows as the
-- step between two rows.  Nothing here is part of q4pg.
--
-- anatomy.q_silent:  a real q4pg queue whose NOTIFY trigger is disabled: the
--                    settings lookup still finds it (the trigger row exists),
--                    inserts fire nothing.  CHECK constraint, no trigger.
-- anatomy.q_trigger: the same shape with q4pg 1.0's first statement trigger
--                    (transition table, a loop over the distinct tags), minus
--                    the pg_notify call; anatomy.q_notify: with it.
-- anatomy.q_trigger_bare / q_trigger_rows: an empty statement trigger,
--                    without / with a transition table.
-- anatomy.q_gated:   the same with a NOTIFY that a listener would have to ask
--                    for (advisory-lock checks): one candidate design, run
--                    with no listener waiting.

CREATE SCHEMA anatomy;
SELECT q4pg_create_queue('anatomy.q_silent');
ALTER TABLE anatomy.q_silent DISABLE TRIGGER q4pg_notify;

-- q4pg_notify's body without the pg_notify: the trigger and transition table alone.
CREATE FUNCTION anatomy.trigger_silent() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_prefix  text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) || ':';
    v_tag     text;
    v_channel text;
BEGIN
    FOR v_tag IN SELECT DISTINCT r.tag FROM q4pg_new_rows AS r LOOP
        v_channel := 'q4pg_' || md5(v_prefix || v_tag);
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TABLE anatomy.q_trigger (LIKE anatomy.q_silent INCLUDING ALL);
CREATE TRIGGER q_trigger AFTER INSERT ON anatomy.q_trigger
    REFERENCING NEW TABLE AS q4pg_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anatomy.trigger_silent();

-- q4pg_notify as 1.0 first had it: one NOTIFY per inserted tag, always.
CREATE FUNCTION anatomy.trigger_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_prefix text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) || ':';
    v_tag    text;
BEGIN
    FOR v_tag IN SELECT DISTINCT r.tag FROM q4pg_new_rows AS r LOOP
        PERFORM pg_notify('q4pg_' || md5(v_prefix || v_tag), '');
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TABLE anatomy.q_notify (LIKE anatomy.q_silent INCLUDING ALL);
CREATE TRIGGER q_notify AFTER INSERT ON anatomy.q_notify
    REFERENCING NEW TABLE AS q4pg_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anatomy.trigger_notify();

-- The trigger's fixed costs: a PL/pgSQL statement trigger that does nothing,
-- without and with a transition table.
CREATE FUNCTION anatomy.trigger_empty() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN NULL;
END
$$;
CREATE TABLE anatomy.q_trigger_bare (LIKE anatomy.q_silent INCLUDING ALL);
CREATE TRIGGER q_trigger_bare AFTER INSERT ON anatomy.q_trigger_bare
    FOR EACH STATEMENT EXECUTE FUNCTION anatomy.trigger_empty();
CREATE TABLE anatomy.q_trigger_rows (LIKE anatomy.q_silent INCLUDING ALL);
CREATE TRIGGER q_trigger_rows AFTER INSERT ON anatomy.q_trigger_rows
    REFERENCING NEW TABLE AS q4pg_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anatomy.trigger_empty();

-- Candidate: NOTIFY only when a listener is waiting, run here with none.
-- Producers hold a shared advisory lock (key B) until they commit; a listener
-- about to sleep would hold key B xor 1 (its "I am waiting" flag, shared) and
-- then take B exclusively for an instant (waiting for the producers that may
-- have missed the flag), try to dequeue, sleep.  A producer that cannot take
-- the flag key exclusively for an instant knows someone waits, and NOTIFYs.
CREATE FUNCTION anatomy.trigger_gated() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_prefix  text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) || ':';
    v_tag     text;
    v_channel text;
    v_key     bigint;
BEGIN
    FOR v_tag IN SELECT DISTINCT r.tag FROM q4pg_new_rows AS r LOOP
        v_channel := 'q4pg_' || md5(v_prefix || v_tag);
        v_key := hashtextextended(v_channel, 0);
        PERFORM pg_advisory_xact_lock_shared(v_key);
        IF pg_try_advisory_lock(v_key # 1) THEN
            PERFORM pg_advisory_unlock(v_key # 1);      -- nobody waiting: no NOTIFY
        ELSE
            PERFORM pg_notify(v_channel, '');
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TABLE anatomy.q_gated (LIKE anatomy.q_silent INCLUDING ALL);
CREATE TRIGGER q_gated AFTER INSERT ON anatomy.q_gated
    REFERENCING NEW TABLE AS q4pg_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION anatomy.trigger_gated();

-- A PL/pgSQL wrapper around a static INSERT, with and without a pinned search_path.
CREATE FUNCTION anatomy.insert_static(p_tag text, p_data text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO anatomy.q_silent (tag, data) VALUES (p_tag, p_data::json) RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
CREATE FUNCTION anatomy.insert_static_unpinned(p_tag text, p_data text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO anatomy.q_silent (tag, data) VALUES (p_tag, p_data::json) RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- The same INSERT as dynamic SQL (parsed and planned on every call), as q4pg does.
CREATE FUNCTION anatomy.insert_dynamic(p_queue regclass, p_tag text, p_data text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    EXECUTE format('INSERT INTO %s (tag, data) VALUES ($1, $2::%s) RETURNING id',
                   p_queue, 'json'::regtype)
       INTO v_id
      USING p_tag, p_data;
    RETURN v_id;
END
$$;

-- Candidate: dynamic SQL planned once per session (a prepared statement named
-- after the table's oid, remembered in a custom setting).
CREATE FUNCTION anatomy.insert_prepared(p_queue regclass, p_tag text, p_data text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_name text := 'anatomy_insert_' || p_queue::oid;
    v_id   bigint;
BEGIN
    IF current_setting('anatomy.' || v_name, true) IS DISTINCT FROM 'on' THEN
        EXECUTE format('PREPARE %I (text, text) AS INSERT INTO %s (tag, data) VALUES ($1, $2::json) RETURNING id',
                       v_name, p_queue);
        PERFORM set_config('anatomy.' || v_name, 'on', false);
    END IF;
    EXECUTE format('EXECUTE %I(%L, %L)', v_name, p_tag, p_data) INTO v_id;
    RETURN v_id;
END
$$;

-- Dequeue, the same steps.
CREATE FUNCTION anatomy.delete_static(p_tag text)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    DELETE FROM anatomy.q_silent AS m
     WHERE m.id = (SELECT s.id FROM anatomy.q_silent AS s WHERE s.tag = p_tag
                    ORDER BY s.id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING m.id, m.tag, m.data::text, m.created_at;
END
$$;
CREATE FUNCTION anatomy.delete_dynamic(p_queue regclass, p_tag text)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'DELETE FROM %1$s
          WHERE id = (SELECT id FROM %1$s WHERE tag = $1
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, tag, data::text, created_at',
        p_queue)
      USING p_tag;
END
$$;

-- Candidate: the dynamic DELETE prepared once per session (as insert_prepared).
CREATE FUNCTION anatomy.delete_prepared(p_queue regclass, p_tag text)
RETURNS TABLE (id bigint, tag text, data text, created_at timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_name text := 'anatomy_delete_' || p_queue::oid;
BEGIN
    IF current_setting('anatomy.' || v_name, true) IS DISTINCT FROM 'on' THEN
        EXECUTE format(
            'PREPARE %I (text) AS
             DELETE FROM %2$s
              WHERE id = (SELECT id FROM %2$s WHERE tag = $1
                           ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, tag, data::text, created_at',
            v_name, p_queue);
        PERFORM set_config('anatomy.' || v_name, 'on', false);
    END IF;
    -- an EXECUTE statement cannot feed RETURN QUERY (no cursor over it): INTO, one row
    EXECUTE format('EXECUTE %I(%L)', v_name, p_tag) INTO id, tag, data, created_at;
    IF id IS NOT NULL THEN
        RETURN NEXT;
    END IF;
END
$$;
