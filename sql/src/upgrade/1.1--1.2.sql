\echo Use "ALTER EXTENSION q4pg UPDATE TO '1.2'" to load this file. \quit

-- q4pg 1.1 -> 1.2.
--
-- The Makefile builds sql/q4pg--1.1--1.2.sql from this file: at the line
-- "-- @functions@" below, every function of sql/src/ comes in as CREATE OR
-- REPLACE (one source for both scripts).  What is here by hand: what must go
-- before them (functions whose arguments or results changed are dropped) and
-- after them (every queue's generated functions are built anew, as the
-- queue's, not the extension's).

-- @functions@

DO $$
DECLARE
    v_queue regclass;
    v_fn    regprocedure;
BEGIN
    FOR v_queue IN SELECT t.queue FROM @extschema@.q4pg_queue_triggers() AS t ORDER BY 1 LOOP
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
