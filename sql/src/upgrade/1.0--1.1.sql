\echo Use "ALTER EXTENSION q4pg UPDATE TO '1.1'" to load this file. \quit

-- q4pg 1.0 -> 1.1: scheduled messages, attempts and dead letters, leases.
--
-- The Makefile builds sql/q4pg--1.0--1.1.sql from this file: at the line
-- "-- @functions@" below, every function of sql/src/ comes in as CREATE OR
-- REPLACE (one source for both scripts), and at "-- @include <file>" that
-- file of sql/src/ as it is (state new in 1.1).  What is here by hand: what must go
-- before them (functions whose arguments or results changed are dropped,
-- their dependents first) and after them (every queue table gets 1.1's
-- columns, index and generated functions, its messages kept).
--
-- Who may run it: ALTER TABLE on every queue table, so a role that owns them
-- all or is a member of their owners (a superuser).  It checks that first.

DO $$
DECLARE
    v_refused text;
BEGIN
    SELECT string_agg(format('%s (owner %s)', t.tgrelid::regclass, c.relowner::regrole), ', '
                      ORDER BY t.tgrelid::regclass::text)
      INTO v_refused
      FROM pg_catalog.pg_trigger AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
     WHERE t.tgname = 'q4pg_notify'
       AND t.tgfoid = '@extschema@.q4pg_notify()'::pg_catalog.regprocedure
       AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE');
    IF v_refused IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: updating to 1.1 alters every queue table, and % may not alter %',
                current_user, v_refused
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run ALTER EXTENSION q4pg UPDATE as a superuser or as a member of those owners.';
    END IF;
END
$$;

DROP FUNCTION @extschema@.q4pg_route(regclass);
DROP FUNCTION @extschema@.q4pg_build_route(regclass, text);
DROP FUNCTION @extschema@.q4pg_consumers();
DROP FUNCTION @extschema@.q4pg_queues();
DROP FUNCTION @extschema@.q4pg_queue_settings(regclass);
DROP FUNCTION @extschema@.q4pg_channel(regclass, text);
DROP FUNCTION @extschema@.q4pg_queue_functions_current(regclass, regnamespace);
DROP FUNCTION @extschema@.q4pg_queue_info(regclass);
DROP FUNCTION @extschema@.q4pg_queue_shape(regclass);
DROP FUNCTION @extschema@.q4pg_queue_triggers(regclass);
DROP FUNCTION @extschema@.q4pg_queue_function_names();
DROP FUNCTION @extschema@.q4pg_queue_function_marker(text, text, integer);
DROP FUNCTION @extschema@.q4pg_attach_queue(regclass);
DROP FUNCTION @extschema@.q4pg_create_queue(text, text, integer, name);
DROP FUNCTION @extschema@.q4pg_enqueue(regclass, text, text);
DROP FUNCTION @extschema@.q4pg_enqueue_many(regclass, text, text[]);
DROP FUNCTION @extschema@.q4pg_count(regclass, text);
DROP FUNCTION @extschema@.q4pg_list(regclass, text, integer);
DROP FUNCTION @extschema@.q4pg_stats();

-- @include 06_types.sql

-- @functions@

-- every queue table to 1.1: columns, index, generated functions (which an
-- extension script would make members of the extension: they are the
-- queue's, as when q4pg_create_queue makes them, so they leave it again)
DO $$
DECLARE
    v_queue regclass;
    v_fn    regprocedure;
BEGIN
    FOR v_queue IN SELECT t.queue FROM @extschema@.q4pg_queue_triggers() AS t ORDER BY 1 LOOP
        PERFORM @extschema@.q4pg_reshape_queue(v_queue);
        PERFORM @extschema@.q4pg_build_queue_functions(v_queue);
        -- (a SQL-only install, which runs this same script, has no extension)
        FOR v_fn IN
            SELECT p.oid
              FROM pg_catalog.pg_proc AS p, @extschema@.q4pg_queue_triggers(v_queue) AS t,
                   @extschema@.q4pg_queue_function_names() AS f
             WHERE p.proname = @extschema@.q4pg_queue_function_prefix(t.lock_key) || f.suffix
               AND p.pronamespace = (SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                                           WHERE c.oid = v_queue)
               AND EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'q4pg')
               AND EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                              AND d.objid = p.oid AND d.deptype = 'e')
        LOOP
            EXECUTE pg_catalog.format('ALTER EXTENSION q4pg DROP FUNCTION %s', v_fn);
        END LOOP;
    END LOOP;
END
$$;

-- the registry names its queues (1.0: bare oids); oid and regclass are the
-- same bytes, so no row changes.  Last: a producer's trigger reads the
-- registry while it holds its queue table, so the registry is locked after
-- the queue tables, as producers lock them (the other order deadlocked with
-- a running producer)
ALTER TABLE @extschema@.q4pg_idle_listeners ALTER COLUMN queue TYPE pg_catalog.regclass;
