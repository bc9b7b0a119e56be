-- The extension's state: its type and its table.  Files 00_ to 09_ of
-- sql/src/ are state (and the introduction); everything else is functions, which an upgrade script replaces whole (CREATE OR
-- REPLACE, built by the Makefile from these same sources); what is here an
-- upgrade script changes by hand (sql/src/upgrade/).

-- A message as every function that returns messages returns it.  data is text
-- whatever the queue's data type: JSON text on json and jsonb queues.
CREATE TYPE @extschema@.q4pg_message AS (
    id         bigint,
    tag        text,
    data       text,
    created_at timestamptz
);

-- The registry: one row per (queue, tag, backend) of listeners idle now.
-- Run-time state, meaningless after a restore: unlogged, and not dumped.
-- Everyone may read it; a backend may add and remove only its own rows, and
-- remove the rows of backends that are gone.  queue is a regclass so that
-- operators reading it see the queue's name (pg_upgrade keeps relation oids,
-- so it accepts regclass columns).
CREATE UNLOGGED TABLE @extschema@.q4pg_idle_listeners (
    queue    regclass NOT NULL,     -- 1.0: oid
    tag      text NOT NULL,
    pid      integer NOT NULL,
    since    timestamptz NOT NULL DEFAULT now(),
    lock_key integer NOT NULL,      -- the queue's lock key
    own_channel boolean NOT NULL DEFAULT false,  -- 1.2: LISTENs on q4pg_own_channel, woken alone
    PRIMARY KEY (queue, tag, pid)
);
-- producers choose among the listeners with a channel of their own (31_wake_one.sql)
CREATE INDEX q4pg_idle_listeners_own ON @extschema@.q4pg_idle_listeners (queue, tag, pid)
    WHERE own_channel;
ALTER TABLE @extschema@.q4pg_idle_listeners ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_all ON @extschema@.q4pg_idle_listeners FOR SELECT USING (true);
CREATE POLICY add_own ON @extschema@.q4pg_idle_listeners FOR INSERT
    WITH CHECK (pid = pg_catalog.pg_backend_pid());
CREATE POLICY remove_own_or_gone ON @extschema@.q4pg_idle_listeners FOR DELETE
    USING (pid = pg_catalog.pg_backend_pid()
           OR NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity AS a
                           WHERE a.pid OPERATOR(pg_catalog.=) q4pg_idle_listeners.pid));
REVOKE ALL ON @extschema@.q4pg_idle_listeners FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON @extschema@.q4pg_idle_listeners TO PUBLIC;

