\echo Use "ALTER EXTENSION q4pg UPDATE TO '1.2'" to load this file. \quit

-- q4pg 1.1 -> 1.2: every queue table becomes a ring (sql/src/55_ring.sql),
-- its messages kept where they are (the table becomes the ring's slot 0).
--
-- The Makefile builds sql/q4pg--1.1--1.2.sql from this file: at the line
-- "-- @functions@" below, every function of sql/src/ comes in as CREATE OR
-- REPLACE (one source for both scripts).  What is here by hand: what must go
-- before them (the check that the upgrade may alter every queue table) and
-- after them (every queue becomes a ring with its generated functions built
-- anew; what that creates is the queue's, not the extension's).
--
-- Who may run it: a role that owns every queue table or is a member of their
-- owners (a superuser).  It takes each queue table's ACCESS EXCLUSIVE lock
-- for the time of its conversion (no copy of its rows: catalog changes only).

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
        RAISE EXCEPTION 'q4pg: updating to 1.2 makes every queue table a ring, and % may not alter %',
                current_user, v_refused
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run ALTER EXTENSION q4pg UPDATE as a superuser or as a member of those owners.';
    END IF;
END
$$;

-- Waking one listener per message (sql/src/31_wake_one.sql): the registry
-- records which listeners LISTEN on a channel of their own (1.1's are on the
-- shared channel: false).
ALTER TABLE @extschema@.q4pg_idle_listeners
    ADD COLUMN own_channel boolean NOT NULL DEFAULT false;
CREATE INDEX q4pg_idle_listeners_own ON @extschema@.q4pg_idle_listeners (queue, tag, pid)
    WHERE own_channel;

-- The ring's ticks: a consumer's commit runs a maintenance step of the ring.
-- @include 07_ring_ticks.sql

-- @functions@

-- Gone in 1.2: a queue's generated functions are named after its table
-- (q4pg_door_prefix), the ring's relations after its lock key
-- (q4pg_ring_prefix), and the marker of a generated body names the table's oid.
DROP FUNCTION @extschema@.q4pg_queue_function_prefix(integer);
DROP FUNCTION @extschema@.q4pg_queue_function_marker(text, text, integer, integer);

DO $$
DECLARE
    v_queue regclass;
    v_fn    regprocedure;
    v_rel   regclass;
BEGIN
    -- 1.1's generated functions, named after the lock key, go first, every
    -- queue's (a 1.1 name may be a 1.2 name of another queue: table "beef")
    FOR v_fn IN
        SELECT p.oid
          FROM pg_catalog.pg_proc AS p, @extschema@.q4pg_queue_triggers() AS t,
               @extschema@.q4pg_queue_function_names() AS f
         -- (1.1 named them with the prefix the ring's relations now carry)
         WHERE p.proname = @extschema@.q4pg_ring_prefix(t.lock_key) OPERATOR(pg_catalog.||) f.suffix
           AND p.pronamespace = (SELECT c.relnamespace FROM pg_catalog.pg_class AS c WHERE c.oid = t.queue)
           AND @extschema@.q4pg_is_generated(p.prosrc)
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', v_fn);
    END LOOP;
    FOR v_queue IN SELECT t.queue FROM @extschema@.q4pg_queue_triggers() AS t ORDER BY 1 LOOP
        v_queue := @extschema@.q4pg_reshape_queue(v_queue);
        PERFORM @extschema@.q4pg_build_queue_functions(v_queue);
        -- (a SQL-only install, which runs this same script, has no extension)
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'q4pg');
        FOR v_fn IN
            SELECT p.oid
              FROM pg_catalog.pg_proc AS p, @extschema@.q4pg_queue_triggers(v_queue) AS t,
                   @extschema@.q4pg_queue_function_names() AS f
             WHERE p.proname = @extschema@.q4pg_door_prefix(v_queue) || f.suffix
               AND p.pronamespace = (SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                                           WHERE c.oid = v_queue)
               AND EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                              AND d.objid = p.oid AND d.deptype = 'e')
        LOOP
            EXECUTE pg_catalog.format('ALTER EXTENSION q4pg DROP FUNCTION %s', v_fn);
        END LOOP;
        -- the new table, its slots and its state sequence
        FOR v_rel IN
            SELECT c.oid FROM pg_catalog.pg_class AS c
             WHERE (c.oid = v_queue
                    OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits AS i WHERE i.inhparent = v_queue)
                    OR c.oid IN (SELECT d.objid FROM pg_catalog.pg_depend AS d
                                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                    AND d.refobjid = v_queue AND d.deptype IN ('a', 'i')))
               AND EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                              AND d.objid = c.oid AND d.deptype = 'e')
        LOOP
            EXECUTE pg_catalog.format('ALTER EXTENSION q4pg DROP %s %s',
                                      CASE (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = v_rel)
                                           WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, v_rel);
        END LOOP;
    END LOOP;
END
$$;
