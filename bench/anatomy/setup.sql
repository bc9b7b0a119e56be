-- Scratch objects for `python -m bench.run --only anatomy`: q4pg_enqueue and
-- q4pg_dequeue taken apart, one piece added at a time, so each piece's cost
-- shows as the step between two rows.  Nothing here is part of q4pg.  The
-- variants repeat one another on purpose: each differs from its neighbour by
-- the one piece it measures.
--
-- anatomy.q_silent:  a real q4pg queue whose q4pg_notify trigger is disabled:
--                    the settings lookup still finds it (the trigger row
--                    exists), inserts fire nothing.  CHECK constraint, no trigger.
-- anatomy.q_trigger_bare / q_trigger_rows: the same shape with an empty
--                    statement trigger, without / with a transition table (the
--                    installed q4pg_notify has one, behind its gate: the queue q).

CREATE SCHEMA anatomy;
SELECT q4pg_create_queue('anatomy.q_silent');
ALTER TABLE anatomy.q_silent DISABLE TRIGGER q4pg_notify;

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

-- A PL/pgSQL wrapper around a static INSERT, with and without a pinned
-- search_path (only the SET clause differs).
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
