-- What operators look at: the queues, their backlog, their consumers.

-- q4pg_queues: every q4pg queue of this database the caller may read, with
-- its data type and data length.
CREATE FUNCTION @extschema@.q4pg_queues()
RETURNS TABLE (queue regclass, data_type text, data_length integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT t.queue, s.data_type, s.data_length
      FROM @extschema@.q4pg_queue_triggers() AS t
      CROSS JOIN LATERAL @extschema@.q4pg_queue_shape(t.queue) AS s
     WHERE has_table_privilege(t.queue, 'SELECT')
     ORDER BY t.queue::text;
END;

-- q4pg_stats: per queue and tag, the messages waiting and the age of the
-- oldest, for every queue the caller may read.
CREATE FUNCTION @extschema@.q4pg_stats()
RETURNS TABLE (queue regclass, tag text, waiting bigint, oldest_created_at timestamptz,
               oldest_age interval)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue regclass;
BEGIN
    FOR v_queue IN SELECT q.queue FROM @extschema@.q4pg_queues() AS q LOOP
        RETURN QUERY EXECUTE format(
            'SELECT $1, tag, count(*), min(created_at), now() - min(created_at)
               FROM %s GROUP BY tag ORDER BY tag',
            v_queue)
          USING v_queue;
    END LOOP;
END
$$;

-- q4pg_consumers: the open transactions that ran a dequeue on a queue (FOR
-- UPDATE took a RowShareLock on it), whether or not they took a message,
-- oldest first.  A long one holds back VACUUM on every table of the
-- database: see xact_age.  Reads pg_locks and pg_stat_activity.
CREATE FUNCTION @extschema@.q4pg_consumers()
RETURNS TABLE (queue regclass, pid integer, xact_start timestamptz, xact_age interval,
               state text, application_name text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT l.relation::regclass, a.pid, a.xact_start, now() - a.xact_start, a.state,
           a.application_name
      FROM pg_locks AS l
      JOIN pg_stat_activity AS a ON a.pid = l.pid
     WHERE l.locktype = 'relation'
       AND l.mode = 'RowShareLock'
       AND l.granted
       AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
       AND l.relation IN (SELECT q.queue FROM @extschema@.q4pg_queues() AS q)
     ORDER BY a.xact_start, a.pid;
END;
