-- What operators look at: the queues, their backlog, their consumers.

-- q4pg_queues: every q4pg queue of this database the caller may read, with
-- its data type, data length and max_attempts (null: no limit).
CREATE FUNCTION @extschema@.q4pg_queues()
RETURNS TABLE (queue regclass, data_type text, data_length integer, max_attempts integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT t.queue, s.data_type, s.data_length, t.max_attempts
      FROM @extschema@.q4pg_queue_triggers() AS t
      CROSS JOIN LATERAL @extschema@.q4pg_queue_shape(t.queue) AS s
     WHERE has_table_privilege(t.queue, 'SELECT')
     ORDER BY t.queue::text;
END;

-- q4pg_stats: per queue and tag, for every queue the caller may read: the
-- messages due now (waiting), when the oldest of them was enqueued
-- (oldest_created_at) and how long it has been due (oldest_age: what an
-- alert on a stuck queue watches; a message scheduled for tomorrow does not
-- count until then), then the messages scheduled for later, under a live
-- lease, and the dead letters.  A queue with no message at all has one row,
-- tag null and zeros, so that monitoring sees every queue.  One scan of each
-- queue (q4pg_message_counts).
CREATE FUNCTION @extschema@.q4pg_stats()
RETURNS TABLE (queue regclass, tag text, waiting bigint, oldest_created_at timestamptz,
               oldest_age interval, scheduled bigint, leased bigint, dead bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue regclass;
BEGIN
    FOR v_queue IN SELECT q.queue FROM @extschema@.q4pg_queues() AS q LOOP
        RETURN QUERY
        SELECT v_queue, c.tag, c.due, c.oldest_created_at, c.oldest_age, c.scheduled, c.leased,
               c.dead
          FROM @extschema@.q4pg_message_counts(v_queue) AS c;
        IF NOT FOUND THEN
            queue := v_queue;
            tag := NULL;
            waiting := 0;
            oldest_created_at := NULL;
            oldest_age := NULL;
            scheduled := 0;
            leased := 0;
            dead := 0;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- q4pg_next_due: when the next message of a tag that is not due yet comes
-- due: the earliest run_at after now() of a scheduled message or a live
-- lease (which, should it end unacknowledged, makes its message due).  Null
-- when there is none.  A listener that found nothing to dequeue sleeps until
-- this time at the latest: no NOTIFY says that a message came due.  Reads
-- the (tag, run_at, id) index: one probe.
CREATE FUNCTION @extschema@.q4pg_next_due(queue regclass, tag text)
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_next timestamptz;
BEGIN
    PERFORM @extschema@.q4pg_check_tag(tag);
    PERFORM @extschema@.q4pg_queue_info(queue);
    EXECUTE format('SELECT run_at FROM %s
                     WHERE tag = $1 AND run_at > now() AND run_at < ''infinity''
                     ORDER BY run_at LIMIT 1', queue)
       INTO v_next
      USING tag;
    RETURN v_next;
END
$$;

-- q4pg_dead_letters: the dead letters of a queue, of one tag or (tag null)
-- of all, oldest death first, at most n (null: all), each with its attempts,
-- last error and when it died.  One whose last allowed lease ended
-- unacknowledged says so in last_error (the error of an attempt before it,
-- if any, follows).  Raises 22023 for a negative n.
CREATE FUNCTION @extschema@.q4pg_dead_letters(queue regclass, tag text DEFAULT NULL,
                                              n integer DEFAULT NULL)
RETURNS SETOF @extschema@.q4pg_dead_letter
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM @extschema@.q4pg_check_limit(n);
    PERFORM @extschema@.q4pg_queue_info(queue);
    RETURN QUERY EXECUTE format(
        'SELECT id, tag, data::text, created_at, attempts,
                CASE WHEN lease_token IS NULL THEN last_error
                     ELSE ''q4pg: its last lease ended without an ack or a nack''
                          || coalesce(''; the error before: '' || last_error, '''') END,
                dead_at FROM %s
          WHERE ($1 IS NULL OR tag = $1) AND %s
          ORDER BY dead_at, id LIMIT $2',
        queue, @extschema@.q4pg_message_state('dead', ''))
      USING tag, n;
END
$$;

-- q4pg_replay: gives dead letters another life: due now, attempts back to
-- 0 (last_error kept), and their tags' idle listeners woken.  Takes the ids
-- (null: every dead letter) and a tag (null: any).  Returns how many it
-- replayed; ids that are no dead letter are left alone.  Needs UPDATE on the
-- queue.
CREATE FUNCTION @extschema@.q4pg_replay(queue regclass, ids bigint[] DEFAULT NULL,
                                        tag text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_info  record := @extschema@.q4pg_queue_info(queue);
    v_count bigint := 0;
    v_tag   text;
    v_n     bigint;
    v_gate  boolean;      -- q4pg_notify_gate's answer
BEGIN
    FOR v_tag, v_n IN EXECUTE format(
        'WITH replayed AS (
             UPDATE %s AS q SET run_at = now(), dead_at = NULL, attempts = 0, lease_token = NULL
              WHERE %s AND ($1 IS NULL OR q.id = ANY ($1)) AND ($2 IS NULL OR q.tag = $2)
             RETURNING q.tag)
         SELECT r.tag, count(*) FROM replayed AS r GROUP BY r.tag',
        queue, @extschema@.q4pg_message_state('dead', 'q'))
      USING ids, tag
    LOOP
        IF v_gate IS NULL THEN      -- once: it holds the barrier until commit
            EXECUTE format('SELECT %s', @extschema@.q4pg_notify_gate(v_info.lock_key)) INTO v_gate;
        END IF;
        IF v_gate THEN
            PERFORM @extschema@.q4pg_wake(v_info.qualified_name, v_info.lock_key, v_tag);
        END IF;
        v_count := v_count + v_n;
    END LOOP;
    RETURN v_count;
END
$$;

-- q4pg_replay with one id (1.1): q4pg_replay(queue, ARRAY[id]).
CREATE FUNCTION @extschema@.q4pg_replay(queue regclass, id bigint)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN @extschema@.q4pg_replay(queue, ARRAY[id]);

-- q4pg_purge_dead: deletes dead letters of a queue, of one tag or (tag null)
-- of all, dead for longer than older_than (null: all; negative: 22023).
-- Returns how many.
-- Needs DELETE on the queue.
CREATE FUNCTION @extschema@.q4pg_purge_dead(queue regclass, tag text DEFAULT NULL,
                                            older_than interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_count bigint;
BEGIN
    IF older_than < '0'::interval THEN
        RAISE EXCEPTION 'q4pg: older_than must not be negative, not %', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.q4pg_queue_info(queue);
    EXECUTE format(
        'WITH purged AS (
             DELETE FROM %s AS q
              WHERE q.dead_at <= now() - coalesce($2, ''0'') AND ($1 IS NULL OR q.tag = $1)
             RETURNING 1)
         SELECT count(*) FROM purged',
        queue)
       INTO v_count
      USING tag, older_than;
    IF v_count > 0 THEN
        PERFORM @extschema@.q4pg_ring_tick(queue);
    END IF;
    RETURN v_count;
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
