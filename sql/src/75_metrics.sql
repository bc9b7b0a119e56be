-- What a monitoring system scrapes: per queue the backlog, the work done
-- (cumulative statistics), its storage; and the early warnings of a queue
-- inside PostgreSQL: what holds back the xmin horizon (VACUUM then keeps
-- every dead row of every queue, and SKIP LOCKED scans slow down), consumers
-- holding a transaction open.  Read by q4pg metrics and q4pg top; plain SQL
-- for every other language.

-- q4pg_queue_leaves: the relations that hold a queue's rows: the leaves of
-- its partition tree when it is a partitioned table (or a partition), else
-- the table itself (pg_partition_tree lists nothing for a table outside any
-- partition tree).  The one place that knows where a queue's storage is:
-- sizes and table statistics are summed over these.
CREATE FUNCTION @extschema@.q4pg_queue_leaves(p_queue regclass)
RETURNS SETOF regclass
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT t.relid FROM pg_partition_tree(p_queue) AS t WHERE t.isleaf
    UNION ALL
    SELECT c.oid::regclass FROM pg_class AS c
     WHERE c.oid = p_queue AND c.relkind <> 'p' AND NOT c.relispartition;
END;

-- q4pg_message_counts: the messages of one queue by tag, in one scan: due
-- (and when the oldest of them was enqueued, how long it has been due),
-- scheduled, leased, dead, and expired (a lease that ran out without an ack
-- or a nack: due again, or dead on the last allowed attempt; counted in due
-- or dead too).  The states are q4pg_message_state's.  No row for a queue
-- without messages.  q4pg_stats and q4pg_metrics count with it.  Raises
-- 42P01 for a table that is no queue (q4pg_queue_triggers: a queue of 1.1's
-- shape, not yet a ring, is counted too).  (ROWS 10: the planner's default
-- guess, 1000 rows a queue, made q4pg_metrics' plan look costly enough for
-- JIT, whose compiling took 4 times as long as the scan of 1,000,000
-- messages.)
CREATE FUNCTION @extschema@.q4pg_message_counts(p_queue regclass)
RETURNS TABLE (tag text, due bigint, oldest_created_at timestamptz, oldest_age interval,
               scheduled bigint, leased bigint, dead bigint, expired bigint)
LANGUAGE plpgsql
STABLE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.q4pg_queue_triggers(p_queue)) THEN
        RAISE EXCEPTION 'q4pg: table % is not a q4pg queue', p_queue
            USING ERRCODE = 'undefined_table';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT tag,
                count(*) FILTER (WHERE %2$s),
                min(created_at) FILTER (WHERE %2$s),
                now() - min(run_at) FILTER (WHERE %2$s),
                count(*) FILTER (WHERE %3$s),
                count(*) FILTER (WHERE %4$s),
                count(*) FILTER (WHERE %5$s),
                count(*) FILTER (WHERE %6$s)
           FROM %1$s GROUP BY tag ORDER BY tag',
        p_queue, @extschema@.q4pg_message_state('due', ''),
        @extschema@.q4pg_message_state('scheduled', ''),
        @extschema@.q4pg_message_state('leased', ''), @extschema@.q4pg_message_state('dead', ''),
        @extschema@.q4pg_message_state('expired', ''));
END
$$;

-- q4pg_metrics: one row per queue the caller may read (tag null), and, when
-- tags > 0, after it up to that many rows of its tags (most messages first,
-- then by tag) with the counts of that tag only (the storage columns null).
--   due, scheduled, leased, dead, oldest_due_age: as q4pg_stats() counts them
--     (q4pg_message_counts: one scan of each queue, the only part whose cost
--     grows with the messages); expired: messages whose lease ran out without
--     an ack or a nack (also counted as due, or as dead on the last allowed
--     attempt), in the same scan; tag_count: how many tags have messages.
--     With counts => false these are null, no queue is scanned and no tag row comes: what
--     is left costs the same whatever the messages (a monitor that scrapes
--     often counts less often);
--   inserted_total, deleted_total, updated_total: rows inserted (enqueues,
--     and messages given back by q4pg_fail), deleted (dequeues, acks,
--     cancels, purges) and updated (leases, nacks, retries) since the
--     statistics were reset, rolled back ones included (the table's
--     cumulative statistics, which lag up to a second behind);
--   idle_listeners: registrations of living sessions waiting for a NOTIFY;
--   consumers: open transactions that ran a dequeue (q4pg_consumers());
--   total_bytes, live_rows, dead_rows, last_autovacuum, autovacuum_count: of
--     the queue's storage (q4pg_queue_leaves): size with indexes and TOAST,
--     the statistics' row estimates, the oldest of the leaves' last
--     autovacuum (null: never since the statistics were reset), how many ran.
-- Raises 22023 for a negative or null tags.
CREATE FUNCTION @extschema@.q4pg_metrics(tags integer DEFAULT 0, counts boolean DEFAULT true)
RETURNS TABLE (queue regclass, tag text, due bigint, scheduled bigint, leased bigint,
               dead bigint, expired bigint, oldest_due_age interval, tag_count bigint,
               inserted_total bigint, deleted_total bigint, updated_total bigint, idle_listeners bigint,
               consumers bigint, total_bytes bigint, live_rows bigint, dead_rows bigint,
               last_autovacuum timestamptz, autovacuum_count bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_tags   integer := tags;
    v_counts boolean := coalesce(counts, true);
BEGIN
    IF v_tags IS NULL OR v_tags < 0 THEN
        RAISE EXCEPTION 'q4pg: tags must be 0 or more, not %', coalesce(v_tags::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH s AS MATERIALIZED (
        SELECT q.queue, c.* FROM @extschema@.q4pg_queues() AS q
         CROSS JOIN LATERAL @extschema@.q4pg_message_counts(q.queue) AS c
         WHERE v_counts
    ), per_queue AS (
        SELECT q.queue, CASE WHEN v_counts THEN coalesce(sum(s.due), 0)::bigint END AS due,
               CASE WHEN v_counts THEN coalesce(sum(s.scheduled), 0)::bigint END AS scheduled,
               CASE WHEN v_counts THEN coalesce(sum(s.leased), 0)::bigint END AS leased,
               CASE WHEN v_counts THEN coalesce(sum(s.dead), 0)::bigint END AS dead,
               CASE WHEN v_counts THEN coalesce(sum(s.expired), 0)::bigint END AS expired,
               max(s.oldest_age) AS oldest_due_age,
               CASE WHEN v_counts THEN count(s.tag) END AS tag_count
          FROM @extschema@.q4pg_queues() AS q
          LEFT JOIN s ON s.queue = q.queue
         GROUP BY q.queue
    ), storage AS (
        SELECT p.queue, sum(pg_total_relation_size(l.leaf))::bigint AS total_bytes,
               sum(t.n_tup_ins)::bigint AS ins, sum(t.n_tup_del)::bigint AS del,
               sum(t.n_tup_upd)::bigint AS upd, sum(t.n_live_tup)::bigint AS live,
               sum(t.n_dead_tup)::bigint AS dead_rows, min(t.last_autovacuum) AS last_av,
               sum(t.autovacuum_count)::bigint AS av_count
          FROM per_queue AS p
         CROSS JOIN LATERAL @extschema@.q4pg_queue_leaves(p.queue) AS l(leaf)
          LEFT JOIN pg_stat_all_tables AS t ON t.relid = l.leaf
         GROUP BY p.queue
    ), listeners AS (
        SELECT w.queue, count(*) AS n
          FROM @extschema@.q4pg_idle_listeners AS w
         WHERE EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid)
         GROUP BY w.queue
    ), held AS (
        SELECT c.queue, count(*) AS n FROM @extschema@.q4pg_consumers() AS c GROUP BY c.queue
    ), ranked AS (
        SELECT s.*, row_number() OVER (PARTITION BY s.queue
                                       ORDER BY s.due + s.scheduled + s.leased + s.dead DESC,
                                                s.tag) AS rank
          FROM s
    )
    SELECT m.* FROM (
    SELECT p.queue, NULL::text AS tag, p.due, p.scheduled, p.leased, p.dead, p.expired,
           p.oldest_due_age, p.tag_count, st.ins, st.del, st.upd, coalesce(li.n, 0), coalesce(h.n, 0),
           st.total_bytes, st.live, st.dead_rows, st.last_av, st.av_count
      FROM per_queue AS p
      LEFT JOIN storage AS st ON st.queue = p.queue
      LEFT JOIN listeners AS li ON li.queue = p.queue
      LEFT JOIN held AS h ON h.queue = p.queue
    UNION ALL
    SELECT r.queue, r.tag, r.due, r.scheduled, r.leased, r.dead, r.expired, r.oldest_age,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM ranked AS r WHERE r.rank <= v_tags) AS m
    ORDER BY m.queue::text, m.tag NULLS FIRST;
END
$$;

-- q4pg_horizon: what holds back the xmin horizon of this database, the
-- oldest first: VACUUM may remove no row deleted after it, in any table, so
-- while it is held every dequeue steps over more dead rows.  holder is
--   'backend': a session of this database (or of none: a WAL sender) with a
--     transaction or snapshot open; name is its application_name, state its
--     state, age how long its transaction has run, detail its backend type.
--     pg_stat_activity shows the state and age of other roles' sessions only
--     to superusers and members of pg_read_all_stats (or of those roles):
--     then they are null and detail says so;
--   'replication_slot': a slot with an xmin (catalog_xmin alone holds back
--     the catalogs only: state then says 'catalogs only'); pid is the
--     process using it, name the slot;
--   'prepared_transaction': a two-phase transaction; name is its gid, age
--     how long since it was prepared.
-- xmin_age is the age in transactions of the xid it holds.  The caller's own
-- session is left out.  Reads pg_stat_activity, pg_replication_slots,
-- pg_prepared_xacts.  PL/pgSQL, whose plan the session keeps: the ring's
-- maintenance asks (q4pg_horizon_held), and an SQL function with a SET
-- clause is planned again at every call (5.4M instructions).
CREATE FUNCTION @extschema@.q4pg_horizon()
RETURNS TABLE (holder text, pid integer, name text, state text, xmin xid, xmin_age integer,
               age interval, database name, detail text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT h.holder, h.pid, h.name, h.state, h.xmin, age(h.xmin), h.age, h.database, h.detail
      FROM (SELECT 'backend' AS holder, a.pid, a.application_name AS name, a.state,
                   CASE WHEN a.backend_xid IS NULL OR age(a.backend_xmin) > age(a.backend_xid)
                        THEN a.backend_xmin ELSE a.backend_xid END AS xmin,
                   now() - a.xact_start AS age, a.datname AS database,
                   CASE WHEN coalesce(pg_has_role(a.usesysid, 'USAGE'), true)
                             OR pg_has_role('pg_read_all_stats', 'USAGE')
                        THEN a.backend_type
                        ELSE 'not visible to this role: its state and age need '
                             'pg_read_all_stats' END AS detail
              FROM pg_stat_activity AS a
             WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
               AND (a.datname = current_database() OR a.datid IS NULL)
               AND a.pid <> pg_backend_pid()
            UNION ALL
            SELECT 'replication_slot', s.active_pid, s.slot_name::text,
                   CASE WHEN s.active THEN 'active' ELSE 'inactive' END
                   || CASE WHEN s.xmin IS NULL THEN ', catalogs only' ELSE '' END,
                   coalesce(s.xmin, s.catalog_xmin), NULL, s.database,
                   s.slot_type || ' slot'
              FROM pg_replication_slots AS s
             WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
            UNION ALL
            SELECT 'prepared_transaction', NULL, p.gid, 'prepared', p.transaction,
                   now() - p.prepared, p.database, 'owner ' || p.owner
              FROM pg_prepared_xacts AS p
             WHERE p.database = current_database()) AS h
     ORDER BY age(h.xmin) DESC, h.holder, h.pid;
END
$$;

-- q4pg_warnings: what an operator should look at now, one row each:
--   'horizon': a holder of the xmin horizon (q4pg_horizon) whose transaction
--     is older than older_than, or a replication slot that is inactive or
--     holds an xmin older than xids transactions;
--   'horizon_not_visible': a session whose state and age the caller may not
--     see (q4pg_horizon) holds the horizon, however long: a superuser or a
--     member of pg_read_all_stats sees whether it is old;
--   'consumer_held': an open transaction that ran a dequeue on queue
--     (q4pg_consumers) for longer than older_than: it holds its messages and
--     the horizon;
--   'leases_expired': a queue with at least expired_leases messages whose
--     lease ran out without an ack or a nack (q4pg_message_state 'expired':
--     a consumer that died or was too slow; due again, or a dead letter
--     after the last allowed attempt, which stays expired until replayed or
--     purged); age is how long ago the oldest of those leases ran out, detail
--     says how many.
-- pid, name (application_name, slot or gid), state and age as q4pg_horizon
-- and q4pg_consumers give them.  Only 'leases_expired' scans the queues (one
-- scan of each, as q4pg_metrics' counts): expired_leases => null leaves it
-- out and scans no queue.  Dead letters are counted by q4pg_metrics (alert on
-- their growth there).  Raises 22023 for a negative or null older_than or
-- xids, and for an expired_leases below 1.
CREATE FUNCTION @extschema@.q4pg_warnings(older_than interval DEFAULT '1 minute',
                                          xids integer DEFAULT 100000000,
                                          expired_leases integer DEFAULT 1)
RETURNS TABLE (warning text, queue regclass, pid integer, name text, state text,
               age interval, xmin_age integer, detail text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_older_than interval := older_than;
    v_xids integer := xids;
    v_expired integer := expired_leases;
    v_queue regclass;
    v_n bigint;
    v_oldest timestamptz;
BEGIN
    IF v_older_than IS NULL OR v_older_than < '0'::interval THEN
        RAISE EXCEPTION 'q4pg: older_than must not be negative or null, not %',
                        coalesce(v_older_than::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_xids IS NULL OR v_xids < 0 THEN
        RAISE EXCEPTION 'q4pg: xids must be 0 or more, not %', coalesce(v_xids::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_expired < 1 THEN
        RAISE EXCEPTION 'q4pg: expired_leases must be 1 or more (or null: not looked for), not %',
                        v_expired
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT CASE WHEN h.detail LIKE 'not visible%' THEN 'horizon_not_visible' ELSE 'horizon' END,
           NULL::regclass, h.pid, h.name, h.state, h.age, h.xmin_age, h.holder || ': ' || h.detail
      FROM @extschema@.q4pg_horizon() AS h
     WHERE h.holder IN ('backend', 'prepared_transaction')
           AND (h.age >= v_older_than OR h.detail LIKE 'not visible%')
        OR h.holder = 'replication_slot'
           AND (h.state LIKE 'inactive%' OR h.xmin_age >= v_xids)
    UNION ALL
    SELECT 'consumer_held', c.queue, c.pid, c.application_name, c.state, c.xact_age, NULL,
           'an open transaction that ran a dequeue'
      FROM @extschema@.q4pg_consumers() AS c
     WHERE c.xact_age >= v_older_than;
    IF v_expired IS NULL THEN
        RETURN;
    END IF;
    FOR v_queue IN SELECT q.queue FROM @extschema@.q4pg_queues() AS q LOOP
        EXECUTE format('SELECT count(*), min(coalesce(dead_at, run_at)) FROM %s WHERE %s',
                       v_queue, @extschema@.q4pg_message_state('expired', ''))
           INTO v_n, v_oldest;
        IF v_n >= v_expired THEN
            RETURN QUERY
            SELECT 'leases_expired', v_queue, NULL::integer, NULL::text, NULL::text,
                   now() - v_oldest, NULL::integer,
                   format('%s message(s) whose lease ran out without an ack or a nack', v_n);
        END IF;
    END LOOP;
END
$$;
