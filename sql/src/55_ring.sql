-- The ring: how a queue stays fast while a long transaction pins the xmin
-- horizon (1.2).
--
-- A queue table is partitioned by LIST on its slot column: q4pg_ring('slots')
-- ring slots (partitions <key>_s0 .. _s3) and one slot for messages that are
-- not due (<key>_later: scheduled, leased, dead letters).  New messages go
-- into the ring's current slot.  While the horizon is pinned, nothing a
-- consumer removes can be vacuumed away, so each slot fills with dead rows;
-- when the current slot's heap reaches q4pg_ring('slot_bytes'), the ring
-- moves on to a clean slot, and a slot whose messages are all gone is emptied
-- by TRUNCATE, which needs no vacuum.  A dequeue walks the dead rows of the
-- live slots only: at most a slot or two of them, however long the pin.
-- While nothing holds the horizon (q4pg_horizon_held), page pruning and
-- vacuum keep the ring's slot small, and the ring stays where it is.
--
-- The state is one sequence per queue, <key>_ring (not transactional: no
-- dead rows of its own, and every session sees a change at once):
--     last_value = ring + slots * live
-- ring: the current slot; live: a bit per slot that may still hold due
-- messages (besides the ring).  A dequeue reads it once and probes the ring's
-- slot and the live ones, oldest first (the slots after the ring, in ring
-- order), then the later slot.  A plain INSERT reads it through the slot
-- column's default.
--
-- The maintenance (the generated maintain(), q4pg_ring_clean) does the rest:
-- it runs at the commit of a transaction whose q4pg calls removed a message
-- whose id is a multiple of q4pg_ring('every') (or a batch, by chance in
-- proportion to its size: a tick, 07_ring_ticks.sql; at commit, so the
-- TRUNCATE's lock lives for an instant), as the queue's owner (the generated
-- q4pg_<name>_maintain is SECURITY DEFINER), or when called
-- (q4pg_maintain(queue), for pg_cron).  No daemon is needed.  A DELETE by
-- hand ticks nothing.

-- q4pg_ring: the ring's constants.  'slots': ring slots (the later slot's
-- number is the same); 'slot_bytes': the heap size at which the ring moves on
-- (a queue's disk while the horizon is pinned stays within about slots + 1
-- times this, plus indexes, plus the messages not consumed);
-- 'every': a transaction whose q4pg calls remove a message whose id is a
-- multiple of it runs the maintenance at commit (07_ring_ticks.sql).
CREATE FUNCTION @extschema@.q4pg_ring(p_what text)
RETURNS integer
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE p_what WHEN 'slots' THEN 4 WHEN 'slot_bytes' THEN 16384 WHEN 'every' THEN 64 END;

-- q4pg_ring_probe_orders: the order in which a consumer looks into the
-- slots, for each state of the ring (row v + 1 for the state sequence's
-- value v: ring v % slots, live mask v / slots): the live slots, oldest
-- first (the ring moves forward: the one after it is the oldest), then the
-- ring's own slot, then the later slot, then the slots the ring left (for a
-- message a rollback or a late commit left there before the maintenance
-- moves it).  The generated functions carry it as a constant.
CREATE FUNCTION @extschema@.q4pg_ring_probe_orders()
RETURNS integer[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT array_agg(o.slots ORDER BY o.v)
      FROM (SELECT st.v,
                   (SELECT array_agg(p.slot ORDER BY p.grp, p.pos)
                      FROM (SELECT (st.ring + i) % n.n AS slot,
                                   CASE WHEN (st.live >> ((st.ring + i) % n.n)) & 1 = 1 THEN 0 ELSE 2 END AS grp,
                                   i AS pos
                              FROM generate_series(1, n.n - 1) AS i
                            UNION ALL SELECT st.ring, 1, 0
                            UNION ALL SELECT n.n, 1, 1) AS p) AS slots
              FROM (SELECT @extschema@.q4pg_ring('slots') AS n) AS n,
                   LATERAL (SELECT v, v % n.n AS ring, v / n.n AS live
                              FROM generate_series(0, n.n * (1 << n.n) - 1) AS v) AS st) AS o;
END;

-- q4pg_ring_prefix: 'q4pg_<key in hex>_', the start of the names of a
-- queue's ring relations (q4pg_make_ring), from its lock key.
CREATE FUNCTION @extschema@.q4pg_ring_prefix(p_lock_key integer)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN 'q4pg_' || to_hex(p_lock_key) || '_';

-- q4pg_ring_parts: a queue's ring: its state sequence and its slots'
-- partitions (slots[k + 1] is slot k; slots[q4pg_ring('slots') + 1] the
-- later slot), found by the names q4pg_make_ring gave them (the queue's lock
-- key) among the queue's partitions and owned sequences, wherever they are.
-- Nulls for a queue that is no ring.
CREATE FUNCTION @extschema@.q4pg_ring_parts(p_queue regclass, p_lock_key integer,
                                            OUT state regclass, OUT slots regclass[])
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix text := @extschema@.q4pg_ring_prefix(p_lock_key);
BEGIN
    -- (PL/pgSQL, whose plans the session keeps: the maintenance asks at every
    -- step, and an SQL function's body is read again at each call)
    SELECT d.objid::regclass INTO state
      FROM pg_depend AS d JOIN pg_class AS c ON c.oid = d.objid
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = p_queue
       AND d.classid = 'pg_class'::regclass AND c.relkind = 'S' AND c.relname = v_prefix || 'ring';
    SELECT array_agg(c.oid::regclass ORDER BY n.k) INTO slots
      FROM pg_inherits AS i
      JOIN pg_class AS c ON c.oid = i.inhrelid
      JOIN unnest(array_append(ARRAY(SELECT v_prefix || 's' || k
                                       FROM generate_series(0, @extschema@.q4pg_ring('slots') - 1) AS k),
                               v_prefix || 'later')) WITH ORDINALITY AS n(name, k)
        ON n.name = c.relname::text
     WHERE i.inhparent = p_queue;
END
$$;

-- q4pg_ring_key: the lock key a ring's names carry (its state sequence is
-- q4pg_<key in hex>_ring, owned by the queue's slot column), or null for a
-- table that is no ring.  A ring whose q4pg_notify trigger is gone (DROP
-- EXTENSION q4pg CASCADE) is adopted again under that key.
CREATE FUNCTION @extschema@.q4pg_ring_key(p_queue regclass)
RETURNS integer
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT ('x' || lpad((regexp_match(c.relname, '^q4pg_([0-9a-f]{1,8})_ring$'))[1], 8, '0'))::bit(32)::integer
      FROM pg_depend AS d JOIN pg_class AS c ON c.oid = d.objid
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = p_queue AND d.deptype = 'a'
       AND d.classid = 'pg_class'::regclass AND c.relkind = 'S'
       AND c.relname ~ '^q4pg_[0-9a-f]{1,8}_ring$'
     LIMIT 1;
END;

-- q4pg_make_ring: turns a queue table of 1.1's shape (an ordinary table)
-- into a ring, its messages kept where they are: the table becomes slot 0
-- (<key>_s0, its rows, ids and indexes untouched), and a new partitioned
-- table takes its name, owner, privileges, comment, CHECK constraints, the
-- next id of its identity and its q4pg_notify trigger; the other slots, the
-- later slot and the state sequence are created.  Objects that depended on
-- the old table (views, foreign keys, triggers of one's own) stay on slot 0.
-- Returns the queue (the new table); a ring is returned as it is; raises
-- 42809 for a table of another shape.  Needs the owner's rights; takes the
-- table's ACCESS EXCLUSIVE lock.
CREATE FUNCTION @extschema@.q4pg_make_ring(p_queue regclass, p_lock_key integer,
                                           p_max_attempts integer)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix  text := @extschema@.q4pg_ring_prefix(p_lock_key);
    v_slots   integer := @extschema@.q4pg_ring('slots');
    v_class   record;
    v_next    bigint;
    v_queue   regclass;
    v_state   text;
    v_part    text;
    v_grant   record;
    v_options text := 'autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                       autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000,
                       autovacuum_vacuum_cost_delay = 0';
BEGIN
    SELECT c.relname, n.nspname, c.relowner, c.relkind, c.relacl,
           obj_description(c.oid, 'pg_class') AS comment
      INTO v_class FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_queue;
    IF v_class.relkind = 'p' THEN
        RETURN p_queue;
    END IF;
    IF (@extschema@.q4pg_queue_shape(p_queue)).missing IS NOT NULL
       OR NOT EXISTS (SELECT FROM pg_attribute AS a WHERE a.attrelid = p_queue AND a.attname = 'run_at') THEN
        RAISE EXCEPTION 'q4pg: table % does not have the shape of a q4pg 1.1 queue', p_queue
            USING ERRCODE = 'wrong_object_type';
    END IF;
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', p_queue);
    -- the next id: after the identity's last and after every id in the table
    EXECUTE format('SELECT greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence(%L, ''id'')), 0),
                                    (SELECT coalesce(max(q.id), 0) FROM %s AS q)) + 1',
                   p_queue::text, p_queue)
       INTO v_next;
    IF EXISTS (SELECT FROM pg_trigger AS t WHERE t.tgrelid = p_queue AND t.tgname = 'q4pg_notify') THEN
        EXECUTE format('DROP TRIGGER q4pg_notify ON %s', p_queue);
    END IF;
    EXECUTE format('ALTER TABLE %s RENAME TO %I', p_queue, v_prefix || 's0');
    EXECUTE format('ALTER TABLE %s ALTER COLUMN id DROP IDENTITY', p_queue);
    FOR v_part IN SELECT k.conname FROM pg_constraint AS k WHERE k.conrelid = p_queue AND k.contype = 'p' LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', p_queue, v_part);
    END LOOP;
    EXECUTE format('ALTER TABLE %s ADD COLUMN slot smallint NOT NULL DEFAULT 0', p_queue);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                                        PRIMARY KEY (id, slot)) PARTITION BY LIST (slot)',
                   v_class.nspname, v_class.relname, p_queue);
    v_queue := format('%I.%I', v_class.nspname, v_class.relname)::regclass;
    EXECUTE format('ALTER TABLE %s ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (START WITH %s)',
                   v_queue, v_next);
    -- the state: ring 0, nothing else live
    v_state := format('%I.%I', v_class.nspname, v_prefix || 'ring');
    EXECUTE format('CREATE SEQUENCE %s AS integer MINVALUE 0 OWNED BY %s.slot', v_state, v_queue);
    PERFORM setval(v_state::regclass, 0, true);
    EXECUTE format('GRANT SELECT ON SEQUENCE %s TO PUBLIC', v_state);
    -- (null after TRUNCATE ... RESTART IDENTITY, which restarts the sequence
    -- too: an empty queue, ring 0, nothing live)
    EXECUTE format('ALTER TABLE %s ALTER COLUMN slot SET DEFAULT
                        (coalesce(pg_catalog.pg_sequence_last_value(%L::pg_catalog.regclass), 0)
                         OPERATOR(pg_catalog.%%) %s)::pg_catalog.int2',
                   v_queue, v_state, v_slots);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (0)', v_queue, p_queue);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN slot DROP DEFAULT', p_queue);
    FOR v_k IN 1 .. v_slots LOOP
        v_part := v_prefix || CASE WHEN v_k = v_slots THEN 'later' ELSE 's' || v_k END;
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES IN (%s) WITH (%s)',
                       v_class.nspname, v_part, v_queue, v_k, v_options);
    END LOOP;
    -- the maintenance moves messages out of the later slot by due time
    EXECUTE format('CREATE INDEX ON %I.%I (run_at)', v_class.nspname, v_prefix || 'later');
    EXECUTE format('CREATE INDEX ON %s (tag, run_at, id)', v_queue);
    -- owner, privileges, comment
    FOR v_part IN
        SELECT format('%I.%I', n.nspname, c.relname)
          FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
          JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE i.inhparent = v_queue AND c.relowner <> v_class.relowner
        UNION ALL SELECT v_queue::text WHERE v_class.relowner <> (SELECT c.relowner FROM pg_class AS c WHERE c.oid = v_queue)
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', v_part, v_class.relowner::regrole);
    END LOOP;
    FOR v_grant IN
        SELECT a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(v_class.relacl) AS a
         WHERE a.grantee <> v_class.relowner
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s%s', v_grant.privilege_type, v_queue,
                       CASE WHEN v_grant.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(v_grant.grantee::regrole::text) END,
                       CASE WHEN v_grant.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    IF v_class.comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE %s IS %L', v_queue, v_class.comment);
    END IF;
    PERFORM @extschema@.q4pg_set_queue_trigger(v_queue, p_lock_key, p_max_attempts);
    RETURN v_queue;
END
$$;

-- q4pg_horizon_held: whether something holds this database's xmin horizon
-- back (q4pg_horizon, 75_metrics.sql: a session's snapshot or transaction,
-- a standby's feedback, a replication slot's xmin, a prepared transaction)
-- by more than the setting q4pg.horizon_lag_xids transactions (default 100;
-- -1: always held, and the ring moves on whenever its slot is full), so that
-- what consumers delete stays on disk.  While nothing does, page pruning and
-- vacuum keep the ring's slot small as they keep any table, and the ring
-- stays where it is: moving on unpinned cost each TRUNCATE, every session's
-- plans made again and, at 16 clients, waits for the extension lock of each
-- fresh slot (the horizon loop at 16 clients: 1.28x 1.1's cost a message
-- moving on, 1.00x staying).  A session that found the horizon free does not
-- look again for a second (the session setting q4pg.horizon_free_until).
CREATE FUNCTION @extschema@.q4pg_horizon_held()
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lag  integer := coalesce(nullif(current_setting('q4pg.horizon_lag_xids', true), ''), '100')::integer;
    v_free text := current_setting('q4pg.horizon_free_until', true);
    v_now  double precision := extract(epoch FROM clock_timestamp());
BEGIN
    IF v_lag < 0 THEN
        RETURN true;
    ELSIF v_free <> '' AND v_free::double precision > v_now THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT FROM @extschema@.q4pg_horizon() AS h
                WHERE h.xmin_age > v_lag
                  -- (a slot's catalog_xmin holds back the catalogs only)
                  AND NOT (h.holder = 'replication_slot' AND h.state LIKE '%catalogs only')) THEN
        PERFORM set_config('q4pg.horizon_free_until', '', false);
        RETURN true;
    END IF;
    PERFORM set_config('q4pg.horizon_free_until', (v_now + 1)::text, false);
    RETURN false;
END
$$;

-- A maintenance step of a queue's ring runs as the queue's owner (it
-- truncates slots: the generated q4pg_<name>_maintain, SECURITY DEFINER,
-- 43_templates_failures_leases.sql), in READ COMMITTED only (its emptiness
-- tests need a snapshot taken after its lock), by one transaction at a time
-- (others return 'busy').  In order:
--   1. a live slot with no due message that nobody holds is live no more;
--   2. when the ring's slot has reached q4pg_ring('slot_bytes') of heap and
--      something holds the xmin horizon back (q4pg_horizon_held), the ring
--      moves to the next clean slot (empty, not live), if any; a full slot
--      the ring keeps is analyzed when it grew fourfold since its statistics;
--   3. the messages of the later slot that are due move into the ring's slot;
--   4. last, every other slot that is neither the ring nor live and not empty:
--      its messages that nobody holds and that are not under a live lease
--      move on (due ones into the ring's slot, the others into the later
--      slot), under their ids (a live lease stays where it is: its ack, nack
--      and extend never race with a move; the slot waits for it); then, when
--      nothing is left, it is truncated, under a lock taken at once (NOWAIT)
--      or not at all (a transaction that still uses it keeps it for a later
--      step: the maintenance never waits; a consumer that looks in that
--      slot on a miss waits for the commit that follows at once).
-- A message moves as a DELETE and an INSERT under its id, in one
-- transaction, and only one that nobody holds (SKIP LOCKED; found again by
-- id, not by ctid: a DELETE by ctid whose row a concurrent UPDATE replaced
-- does not check the new version's ctid, and would move what it did not
-- lock): a statement
-- that looks a message up by id (ack, nack, extend, cancel) and began before
-- the move committed may miss it, so the generated functions look once more,
-- with a new snapshot, before they answer that it is not there.
-- Steps 1 to 3 are static SQL in the generated maintain() (plans the
-- session keeps); step 4, rare (once a slot was left), is q4pg_ring_clean.
--
-- q4pg_ring_clean: step 4 for the slots p_slots (the ring's slots, then its
-- later slot) other than p_ring and the live ones (p_live, a mask).  Takes
-- the queue and that state; returns what it did.
CREATE FUNCTION @extschema@.q4pg_ring_clean(p_queue regclass, p_slots regclass[], p_ring integer,
                                            p_live integer)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n      integer := @extschema@.q4pg_ring('slots');
    v_ring   integer := p_ring;
    v_live   integer := p_live;
    v_found  boolean;
    v_count  bigint;
    v_said   text := '';
BEGIN
    IF cardinality(p_slots) IS DISTINCT FROM v_n + 1 THEN
        RETURN 'no ring';
    END IF;
    -- what is left moves on, then the slot is emptied
    -- (last: a slot's lock is held from here to the commit, and a consumer
    -- that looks in that slot, on a miss, waits that long)
    FOR v_k IN 0 .. v_n - 1 LOOP
        CONTINUE WHEN v_k = v_ring OR v_live & (1 << v_k) <> 0
                      OR pg_relation_size(p_slots[v_k + 1]) = 0;
        EXECUTE format(
            'WITH moved AS (
                 DELETE FROM %1$s AS q
                  WHERE q.id = ANY (ARRAY(SELECT s.id FROM %1$s AS s WHERE NOT %6$s
                                             FOR UPDATE SKIP LOCKED))
                 RETURNING q.id, q.tag, q.data, q.created_at, q.run_at, q.attempts, q.last_error,
                           q.lease_token, q.dead_at)
             INSERT INTO %2$s (id, tag, data, created_at, run_at, attempts, last_error, lease_token,
                               dead_at, slot)
             OVERRIDING SYSTEM VALUE
             SELECT m.id, m.tag, m.data, m.created_at, m.run_at, m.attempts, m.last_error, m.lease_token,
                    m.dead_at, CASE WHEN %3$s THEN %4$s ELSE %5$s END
               FROM moved AS m',
            p_slots[v_k + 1], p_queue, @extschema@.q4pg_message_state('due', 'm'), v_ring, v_n,
            @extschema@.q4pg_message_state('leased', 's'));
        GET DIAGNOSTICS v_count = ROW_COUNT;
        IF v_count > 0 THEN
            v_said := v_said || format('%s moved from slot %s; ', v_count, v_k);
        END IF;
        BEGIN
            EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', p_slots[v_k + 1]);
            -- a snapshot taken under the lock: every writer of the slot has ended
            EXECUTE format('SELECT EXISTS (SELECT FROM %s)', p_slots[v_k + 1]) INTO v_found;
            IF NOT v_found THEN
                EXECUTE format('TRUNCATE %s', p_slots[v_k + 1]);
                v_said := v_said || format('slot %s truncated; ', v_k);
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            v_said := v_said || format('slot %s busy; ', v_k);
        END;
    END LOOP;
    RETURN rtrim(v_said, '; ');
END
$$;

-- q4pg_ring_tick: asks for a maintenance step of a queue's ring at the
-- commit of the caller's transaction (07_ring_ticks.sql), once per
-- transaction and queue; the generated functions call it after removing a
-- message now and then.  Needs DELETE on the queue (the ticks' policy).
CREATE FUNCTION @extschema@.q4pg_ring_tick(p_queue regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state text := 'q4pg.ring_' || p_queue::oid;    -- '', then 'ticked', then 'stepped'
    v_at    tid;
BEGIN
    IF current_setting(v_state, true) <> '' THEN
        RETURN;
    END IF;
    PERFORM set_config(v_state, 'ticked', true);
    -- the deferred trigger of the row fires at commit, the row gone or not
    INSERT INTO @extschema@.q4pg_ring_ticks (queue) VALUES (p_queue) RETURNING ctid INTO v_at;
    DELETE FROM @extschema@.q4pg_ring_ticks AS t WHERE t.ctid = v_at;
END
$$;

-- q4pg_ring_step: a tick's maintenance step of a queue's ring, at commit
-- (q4pg_ring_tock), once per transaction and queue: the queue's maintenance
-- as its owner (q4pg_<name>_maintain in the queue's schema).  Never fails a
-- commit: an error goes to the server's log; a queue dropped meanwhile is
-- left alone.
CREATE FUNCTION @extschema@.q4pg_ring_step(p_queue regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state  text := 'q4pg.ring_' || p_queue::oid;   -- q4pg_ring_tick's, then 'stepped'
    v_schema text;
    v_said   text;
BEGIN
    IF current_setting(v_state, true) = 'stepped' THEN
        RETURN;
    END IF;
    PERFORM set_config(v_state, 'stepped', true);
    BEGIN
        SELECT n.nspname INTO v_schema
          FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE c.oid = p_queue AND c.relkind = 'p';
        IF FOUND THEN
            EXECUTE format('SELECT %I.%I()', v_schema, @extschema@.q4pg_door_prefix(p_queue) || 'maintain')
               INTO v_said;
            IF v_said <> '' THEN
                RAISE DEBUG 'q4pg: maintenance of %: %', p_queue, v_said;
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE LOG 'q4pg: maintenance of queue % failed: % (%)', p_queue, SQLERRM, SQLSTATE;
    END;
END
$$;

-- q4pg_maintain: one maintenance step of a queue's ring now (what commits do
-- by themselves; for pg_cron, or after a long pg_dump held every slot).
-- Returns what it did.  Raises as q4pg_queue_info.
CREATE FUNCTION @extschema@.q4pg_maintain(queue regclass)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record := @extschema@.q4pg_queue_info(queue);
    v_said text;
BEGIN
    PERFORM @extschema@.q4pg_route(queue);     -- builds the functions when they are stale
    EXECUTE format('SELECT %I.%I()', v_info.schema,
                   @extschema@.q4pg_door_prefix(queue) || 'maintain')
       INTO v_said;
    RETURN v_said;
END
$$;
