-- Waking one listener per message (issue 20): a listener that LISTENs on a
-- channel of its own (q4pg_own_channel) and registers with
-- q4pg_go_idle(queue, tag, true) is woken alone, chosen among the idle
-- listeners of its tag that are really there; the listeners of the 1.0 / 1.1
-- contract, on the tag's shared channel, are all woken as before
-- (docs/listeners.md).
--
-- Really there: a listener with its own channel holds, at session level and
-- exclusively, its listener lock (q4pg_listener_key: one advisory lock per
-- session, whatever the queues it waits on) for as long as it has such a
-- registration.  A producer probes it in shared mode: when the probe takes it,
-- the session is gone, or a pooler reset it (DISCARD ALL, which also ended its
-- LISTEN), and it is skipped.  Producers only read: their choice writes
-- nothing, so a producer that rolls back consumed nobody, and producers never
-- contend on the registry.

-- q4pg_listener_key: the one-key advisory lock (bigint form) a session holds
-- while it is registered with a channel of its own: the presence class
-- (q4pg_lock_class) in the high 32 bits, the session's pid in the low ones.
-- (The one-key form never conflicts with the two-key locks of the same class.)
CREATE FUNCTION @extschema@.q4pg_listener_key(p_pid integer)
RETURNS bigint
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN (@extschema@.q4pg_lock_class('presence')::bigint << 32) | p_pid::bigint;

-- q4pg_own_channel_name: the own channel of session p_pid, given the shared
-- channel (q4pg_channel_name) of a queue and tag: <channel>.<pid>.  The one
-- definition: q4pg_own_channel and q4pg_wake_listeners use it.
CREATE FUNCTION @extschema@.q4pg_own_channel_name(p_channel text, p_pid integer)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN p_channel || '.' || p_pid::text;

-- q4pg_own_channel: the calling session's own channel for a queue and tag:
-- q4pg_channel(queue, tag) || '.' || pg_backend_pid() (at most 45 bytes).
-- LISTEN on it, then register with q4pg_go_idle(queue, tag, true): producers
-- then notify this session alone, when they choose it.  Raises as
-- q4pg_channel does.
CREATE FUNCTION @extschema@.q4pg_own_channel(queue regclass, tag text)
RETURNS text
LANGUAGE sql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
RETURN @extschema@.q4pg_own_channel_name(@extschema@.q4pg_channel(queue, tag), pg_backend_pid());

-- q4pg_wake_listeners: wakes the idle listeners of a queue's tag for p_count
-- new messages: when p_shared, every listener of the shared channel (one
-- NOTIFY on it, when one is registered), and up to p_count listeners with a
-- channel of their own, each really there (its listener lock is held),
-- taken in pid order from a random point (concurrent producers spread their
-- wake-ups).  Returns how many of the latter it notified.  Takes the queue,
-- its qualified name (q4pg_queue_info: only hashed into the channel) and the
-- tag.  Reads q4pg_idle_listeners; q4pg_notify, q4pg_wake and
-- q4pg_unregister_idle call it.
CREATE FUNCTION @extschema@.q4pg_wake_listeners(p_queue regclass, p_qualified_name text,
                                                p_tag text, p_count integer, p_shared boolean)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_channel text := @extschema@.q4pg_channel_name(p_qualified_name, p_tag);
    v_lo      integer;
    v_hi      integer;
    v_pivot   integer;
    v_pid     integer;
    v_key     bigint;
    v_woken   integer := 0;
BEGIN
    IF p_shared AND EXISTS (SELECT FROM @extschema@.q4pg_idle_listeners AS w
                             WHERE w.queue = p_queue AND w.tag = p_tag AND NOT w.own_channel) THEN
        PERFORM pg_notify(v_channel, '');
    END IF;
    IF p_count < 1 THEN
        RETURN 0;
    END IF;
    SELECT min(w.pid), max(w.pid) INTO v_lo, v_hi
      FROM @extschema@.q4pg_idle_listeners AS w
     WHERE w.queue = p_queue AND w.tag = p_tag AND w.own_channel;
    IF v_lo IS NULL THEN
        RETURN 0;
    END IF;
    v_pivot := v_lo + floor(random() * (v_hi - v_lo + 1))::integer;
    FOR v_pid IN
        (SELECT w.pid FROM @extschema@.q4pg_idle_listeners AS w
          WHERE w.queue = p_queue AND w.tag = p_tag AND w.own_channel AND w.pid >= v_pivot
          ORDER BY w.pid)
        UNION ALL
        (SELECT w.pid FROM @extschema@.q4pg_idle_listeners AS w
          WHERE w.queue = p_queue AND w.tag = p_tag AND w.own_channel AND w.pid < v_pivot
          ORDER BY w.pid)
    LOOP
        v_key := @extschema@.q4pg_listener_key(v_pid);
        -- gone (or reset by a pooler): nobody holds its lock, the probe takes it
        CONTINUE WHEN pg_try_advisory_lock_shared(v_key) AND pg_advisory_unlock_shared(v_key);
        PERFORM pg_notify(@extschema@.q4pg_own_channel_name(v_channel, v_pid), '');
        v_woken := v_woken + 1;
        EXIT WHEN v_woken >= p_count;
    END LOOP;
    RETURN v_woken;
END
$$;
