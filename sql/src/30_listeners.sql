-- Waking listeners: the registry of idle listeners, the registration calls and
-- the trigger that NOTIFYs them.
--
-- The protocol (docs/listeners.md): a listener LISTENs on
-- q4pg_own_channel(queue, tag), tries to dequeue, and before it sleeps calls
-- q4pg_go_idle(queue, tag, true); producers wake one such listener per message
-- (31_wake_one.sql).  The 1.0 / 1.1 form, still served: LISTEN on
-- q4pg_channel(queue, tag) and q4pg_go_idle(queue, tag) (1.0:
-- q4pg_register_idle); every such listener of the tag is woken.  Producers
-- NOTIFY only the tags an idle listener registered for, so a producer with nobody waiting
-- never pays for NOTIFY (whose commit takes a lock that serializes every
-- notifying transaction of the cluster).  Two advisory locks per queue
-- (q4pg_lock_class) make this cheap and lose no wake-up:
--   presence: a registered listener holds it shared (session level) until it
--     unregisters or its session ends, so a registration left by a dead
--     session costs producers nothing.  Producers probe it exclusively: when
--     they can take it, nobody waits and their trigger does not fire.
--   barrier: every producer holds it shared from its INSERT to its commit.
--     q4pg_go_idle answers 'may_sleep' only when it can take it exclusively,
--     i.e. when no producer that may have probed before the registration is
--     still running: a dequeue made after that answer sees every message
--     that will not be notified.
-- Both are taken by the gate (q4pg_notify_gate), the WHEN clause of each
-- queue's trigger, built-in functions only, so that while nobody waits an
-- INSERT runs no PL/pgSQL at all.

-- The registry of idle listeners, q4pg_idle_listeners, is in 05_state.sql.

-- q4pg_notify: the trigger on every queue table (AFTER INSERT, per statement,
-- gated by its WHEN clause: it runs only when some listener is registered).
-- For each tag the statement added that a registered listener waits for, and
-- the n messages of that tag: q4pg_wake_listeners (one NOTIFY, with an empty
-- payload, on the tag's shared channel when a 1.0 / 1.1 listener waits there;
-- one on the own channel of each of up to n idle listeners really there).
-- Reads q4pg_idle_listeners.
CREATE FUNCTION @extschema@.q4pg_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    v_tag   text;
    v_count integer;
BEGIN
    FOR v_tag, v_count IN
        SELECT r.tag, count(*)::integer FROM q4pg_new_rows AS r
         WHERE EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                        WHERE w.queue = TG_RELID AND w.tag = r.tag)
         GROUP BY r.tag
    LOOP
        PERFORM @extschema@.q4pg_wake_listeners(TG_RELID, v_name, v_tag, v_count, true);
    END LOOP;
    RETURN NULL;
END
$$;

-- q4pg_notify_gate: the gate every NOTIFY of a queue passes, as an SQL
-- condition on the queue's lock key (a constant in the text): hold the
-- barrier shared until commit, then probe presence (true when some listener
-- is registered idle).  Built-in functions only, schema-qualified: the WHEN
-- clause of each queue's trigger (q4pg_set_queue_trigger) is this text, so
-- an INSERT while nobody waits runs no PL/pgSQL; the generated fail and nack
-- carry it as static code; q4pg_replay evaluates it.
CREATE FUNCTION @extschema@.q4pg_notify_gate(p_lock_key integer)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN format('pg_catalog.pg_advisory_xact_lock_shared(%2$s, %1$s) IS NOT NULL
                   AND NOT (pg_catalog.pg_try_advisory_lock(%3$s, %1$s)
                            AND pg_catalog.pg_advisory_unlock(%3$s, %1$s))',
              p_lock_key, @extschema@.q4pg_lock_class('barrier'), @extschema@.q4pg_lock_class('presence'));

-- q4pg_wake: what the trigger does, for a message that an UPDATE made due
-- (q4pg_fail, q4pg_nack, q4pg_replay: no INSERT, so no trigger), once the
-- caller passed the gate (q4pg_notify_gate).  Takes the queue's qualified
-- name (q4pg_queue_info), lock key and the tag; wakes for one message, as
-- the trigger does, when an idle listener waits for the tag (found by the
-- lock key: the name is only hashed into the channels, never parsed).  Reads
-- q4pg_idle_listeners.
CREATE FUNCTION @extschema@.q4pg_wake(p_qualified_name text, p_lock_key integer, p_tag text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_queue regclass;
BEGIN
    SELECT w.queue INTO v_queue FROM @extschema@.q4pg_idle_listeners AS w
     WHERE w.lock_key = p_lock_key AND w.tag = p_tag
     LIMIT 1;
    IF FOUND THEN
        PERFORM @extschema@.q4pg_wake_listeners(v_queue, p_qualified_name, p_tag, 1, true);
    END IF;
END
$$;

-- q4pg_channel: the NOTIFY channel of a queue and tag (LISTEN on it).
-- Returns q4pg_channel_name(<schema>.<table>, tag); raises unless the table is
-- a queue.
CREATE FUNCTION @extschema@.q4pg_channel(queue regclass, tag text)
RETURNS text
LANGUAGE sql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT @extschema@.q4pg_channel_name(i.qualified_name, tag)
      FROM @extschema@.q4pg_queue_info(queue) AS i;
END;

-- q4pg_go_idle: the calling session is an idle listener of a queue's tag,
-- about to sleep (it LISTENs already: on q4pg_own_channel() when own_channel,
-- producers then wake it alone, when they choose it; else on q4pg_channel(),
-- and every producer of the tag wakes it).  Registers it (a registration made
-- the other way is undone first), and says what to do next, one of three
-- texts (docs/listeners.md):
--   'ask_again': the registration was made by this call.  Producers read
--     q4pg_idle_listeners with their own snapshot, so until the registration
--     commits a producer can miss it after the barrier was probed: only a call
--     made after that commit can say 'may_sleep'.  Call again at once (in
--     autocommit, the registration has committed by then).  Also said when a
--     producer's probe held the presence lock this instant (nothing was
--     registered then; the next call registers).
--   'producer_running': registered, but a producer that may have missed the
--     registration still runs (an open transaction that inserted into the
--     queue, on any tag): later producers notify the session; dequeue, sleep
--     a short while (a notification may cut it short) and call again.
--   'may_sleep': registered, and every producer that could have missed the
--     registration has finished: a dequeue made now sees their messages; if it
--     finds none, sleep until a notification.
-- Never waits, and never makes a producer wait: every lock it takes is
-- session-level, so calling it inside a transaction block blocks nobody (but
-- LISTEN, and the registration, take effect only at commit: call it on an
-- autocommit connection).
-- With own_channel, the session also holds its listener lock
-- (q4pg_listener_key) while registered so: producers choose only sessions
-- that hold it.  Raises for a bad tag (q4pg_check_tag), a null own_channel
-- (22004), a table that is no queue (42P01) and without SELECT on the queue
-- (42501).  Writes q4pg_idle_listeners.
CREATE FUNCTION @extschema@.q4pg_go_idle(queue regclass, tag text, own_channel boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_key      integer;
    v_presence integer := @extschema@.q4pg_lock_class('presence');
    v_barrier  integer := @extschema@.q4pg_lock_class('barrier');
    v_me       bigint := @extschema@.q4pg_listener_key(pg_backend_pid());
    v_was      boolean;
    v_new      boolean;
    v_has_presence boolean;
    v_has_me   boolean;
BEGIN
    PERFORM @extschema@.q4pg_check_tag(tag);
    IF own_channel IS NULL THEN
        RAISE EXCEPTION 'q4pg: own_channel must be true or false, not null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_key := (@extschema@.q4pg_queue_info(queue)).lock_key;
    IF NOT has_table_privilege(queue, 'SELECT') THEN
        RAISE EXCEPTION 'q4pg: permission denied to wait on queue %', queue
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT w.own_channel INTO v_was FROM @extschema@.q4pg_idle_listeners AS w
     WHERE w.queue = queue AND w.tag = tag AND w.pid = pg_backend_pid();
    IF v_was IS DISTINCT FROM own_channel AND v_was IS NOT NULL THEN
        PERFORM @extschema@.q4pg_unregister_idle(queue, tag);
    END IF;
    INSERT INTO @extschema@.q4pg_idle_listeners AS w (queue, tag, pid, lock_key, own_channel)
    VALUES (queue, tag, pg_backend_pid(), v_key, own_channel)
    ON CONFLICT DO NOTHING;
    v_new := FOUND;
    SELECT coalesce(bool_or(l.objsubid = 2 AND l.objid = v_key::oid AND l.mode = 'ShareLock'), false),
           coalesce(bool_or(l.objsubid = 1 AND l.objid = (v_me & 4294967295)::oid
                            AND l.mode = 'ExclusiveLock'), false)
      INTO v_has_presence, v_has_me
      FROM pg_locks AS l
     WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.classid = v_presence::oid;
    -- registered already, but without the presence lock (DISCARD ALL or
    -- pg_advisory_unlock_all released it, as a pooler does between clients):
    -- take it again, or producers would never notify this session
    IF v_new OR NOT v_has_presence THEN
        -- a new registration holds the presence lock until q4pg_unregister_idle
        -- or the end of the session.  Never wait for it: should a producer's
        -- probe hold it this instant, undo and let the caller try again.
        IF NOT pg_try_advisory_lock_shared(v_presence, v_key) THEN
            DELETE FROM @extschema@.q4pg_idle_listeners AS w
             WHERE w.queue = queue AND w.tag = tag AND w.pid = pg_backend_pid();
            RETURN 'ask_again';
        END IF;
        -- forget the registrations of sessions that are gone: all of them at
        -- the session's first registration, then those of this queue and tag
        -- (a session that waits on many tags, as the asyncio client's one
        -- session per process does, would read the whole registry each time)
        IF current_setting('q4pg.registry_swept', true) IS DISTINCT FROM 'yes' THEN
            DELETE FROM @extschema@.q4pg_idle_listeners AS w
             WHERE NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid);
            PERFORM set_config('q4pg.registry_swept', 'yes', false);
        ELSE
            DELETE FROM @extschema@.q4pg_idle_listeners AS w
             WHERE w.queue = queue AND w.tag = tag
               AND NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid);
        END IF;
    END IF;
    -- one listener lock per session, taken by its first registration with a
    -- channel of its own (or again after a reset); never waited for: a
    -- producer's probe may hold it this instant, and until the next call
    -- producers take this registration for one left by a session that is gone
    IF own_channel AND NOT v_has_me AND NOT pg_try_advisory_lock(v_me) THEN
        RETURN 'ask_again';
    END IF;
    -- a registration is seen by producers only once it commits: a producer
    -- that takes the barrier after the probe below but reads the registry
    -- before that commit would not notify, and a dequeue made in between
    -- would miss its message.  So the first answer is "not yet".
    IF v_new THEN
        RETURN 'ask_again';
    END IF;
    -- the barrier, taken and released at once
    IF pg_try_advisory_lock(v_barrier, v_key) AND pg_advisory_unlock(v_barrier, v_key) THEN
        RETURN 'may_sleep';
    END IF;
    RETURN 'producer_running';
END
$$;

-- q4pg_go_idle(queue, tag): the 1.0 / 1.1 form, for a listener on the shared
-- channel, q4pg_channel(queue, tag): q4pg_go_idle(queue, tag, false).
CREATE FUNCTION @extschema@.q4pg_go_idle(queue regclass, tag text)
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN @extschema@.q4pg_go_idle(queue, tag, false);

-- q4pg_register_idle: 1.0's form of q4pg_go_idle, kept for the clients written
-- for it.  Returns true when q4pg_go_idle says 'may_sleep', false for both
-- 'ask_again' and 'producer_running' (1.0's clients treat false as
-- "producer_running": dequeue, sleep a short while, call again, which is
-- right for 'ask_again' too, only slower).  Raises as q4pg_go_idle does.
CREATE FUNCTION @extschema@.q4pg_register_idle(queue regclass, tag text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT @extschema@.q4pg_go_idle(queue, tag) = 'may_sleep';
END;

-- q4pg_unregister_idle: the calling session no longer waits for a queue's tag
-- (it woke up, or stops listening).  Returns true when it was registered.
-- Writes q4pg_idle_listeners; releases the presence lock (also one left by a
-- registration that was rolled back), and the listener lock with the
-- session's last registration with a channel of its own.
CREATE FUNCTION @extschema@.q4pg_unregister_idle(queue regclass, tag text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_key integer;
    v_own boolean;
    v_me  bigint := @extschema@.q4pg_listener_key(pg_backend_pid());
BEGIN
    DELETE FROM @extschema@.q4pg_idle_listeners AS w
     WHERE w.queue = queue AND w.tag = tag AND w.pid = pg_backend_pid()
    RETURNING w.lock_key, w.own_channel INTO v_key, v_own;
    IF FOUND THEN
        PERFORM pg_advisory_unlock_shared(@extschema@.q4pg_lock_class('presence'), v_key);
        IF v_own
           AND NOT EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                            WHERE w.pid = pg_backend_pid() AND w.own_channel)
           AND EXISTS (SELECT FROM pg_locks AS l
                        WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                          AND l.classid = (v_me >> 32)::oid AND l.objid = (v_me & 4294967295)::oid
                          AND l.objsubid = 1 AND l.mode = 'ExclusiveLock') THEN
            PERFORM pg_advisory_unlock(v_me);
        END IF;
        RETURN true;
    END IF;
    -- Not registered.  A registration rolled back with its transaction left
    -- its presence lock (session-level locks outlive a rollback): release it,
    -- or producers would run the trigger for nobody until the session ends.
    v_key := (@extschema@.q4pg_queue_info(queue)).lock_key;
    IF EXISTS (SELECT FROM pg_locks AS l
                WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                  AND l.classid = @extschema@.q4pg_lock_class('presence')::oid
                  AND l.objid = v_key::oid AND l.objsubid = 2 AND l.mode = 'ShareLock')
       AND NOT EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                        WHERE w.queue = queue AND w.pid = pg_backend_pid()) THEN
        PERFORM pg_advisory_unlock_shared(@extschema@.q4pg_lock_class('presence'), v_key);
    END IF;
    RETURN false;
END
$$;

-- q4pg_unregister_idle(queue, tag, hand_over): as q4pg_unregister_idle(queue,
-- tag); with hand_over, for a listener with a channel of its own that stops
-- listening (not one that woke up to work: it looks again when done), a
-- wake-up a producer may have meant for it goes to another idle listener of
-- the tag with a channel of its own (q4pg_wake_listeners), which looks, and
-- asks q4pg_go_idle before it sleeps again (a producer still running that
-- chose this session is then waited for).  Raises as q4pg_unregister_idle
-- does, and for a null hand_over (22004).
CREATE FUNCTION @extschema@.q4pg_unregister_idle(queue regclass, tag text, hand_over boolean)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_own boolean;
BEGIN
    IF hand_over IS NULL THEN
        RAISE EXCEPTION 'q4pg: hand_over must be true or false, not null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT w.own_channel INTO v_own FROM @extschema@.q4pg_idle_listeners AS w
     WHERE w.queue = queue AND w.tag = tag AND w.pid = pg_backend_pid();
    IF NOT @extschema@.q4pg_unregister_idle(queue, tag) THEN
        RETURN false;
    END IF;
    IF hand_over AND v_own THEN
        PERFORM @extschema@.q4pg_wake_listeners(queue, (@extschema@.q4pg_queue_info(queue)).qualified_name,
                                                tag, 1, false);
    END IF;
    RETURN true;
END
$$;
