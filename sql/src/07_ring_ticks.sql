-- The ring's ticks (1.2): how a consumer asks for a maintenance step of a
-- queue's ring at the commit of its transaction (55_ring.sql).
--
-- A generated function that removed a message whose id is a multiple of
-- q4pg_ring('every') (a batch: by chance, in proportion to its size) calls
-- q4pg_ring_tick(queue), which adds a row here and deletes it at once: the
-- row's deferred constraint trigger still fires at commit, once, and runs the
-- step (q4pg_ring_tock).  Nothing stays in the table.  A trigger on the queue
-- table itself did this in 1.2's making, but a row trigger costs every DELETE
-- of the queue about 60k instructions (its WHEN clause is read again for
-- each statement): a sixth of a dequeue.
--
-- A role may tick a queue it may delete from (the policy); the step runs as
-- the queue's owner (the generated maintain is SECURITY DEFINER), as a
-- consumer's commit would have run it.  Run-time state: unlogged, never dumped
-- with rows in it.
CREATE UNLOGGED TABLE @extschema@.q4pg_ring_ticks (
    queue regclass NOT NULL,
    pid   integer NOT NULL DEFAULT pg_catalog.pg_backend_pid()
);
ALTER TABLE @extschema@.q4pg_ring_ticks ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_own ON @extschema@.q4pg_ring_ticks FOR SELECT
    USING (pid = pg_catalog.pg_backend_pid());
CREATE POLICY tick_what_one_may_empty ON @extschema@.q4pg_ring_ticks FOR INSERT
    WITH CHECK (pid = pg_catalog.pg_backend_pid() AND pg_catalog.has_table_privilege(queue, 'DELETE'));
CREATE POLICY remove_own ON @extschema@.q4pg_ring_ticks FOR DELETE
    USING (pid = pg_catalog.pg_backend_pid());
REVOKE ALL ON @extschema@.q4pg_ring_ticks FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON @extschema@.q4pg_ring_ticks TO PUBLIC;

-- q4pg_ring_tock: the ticks' trigger function, glue that never changes (a
-- state file's function is not replaced by an upgrade): the step itself is
-- q4pg_ring_step, in 55_ring.sql.
CREATE FUNCTION @extschema@.q4pg_ring_tock()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.q4pg_ring_step(NEW.queue);
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER q4pg_ring_tock AFTER INSERT ON @extschema@.q4pg_ring_ticks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION @extschema@.q4pg_ring_tock();
