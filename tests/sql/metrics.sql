-- What monitoring reads: q4pg_metrics, q4pg_horizon, q4pg_warnings (their
-- columns, a known state, bad arguments) and q4pg_queue_leaves.
\set VERBOSITY terse
CREATE EXTENSION q4pg;
SELECT q4pg_create_queue('mq', max_attempts => 1);
SELECT q4pg_create_queue('quiet');

-- the columns, per queue and per tag
SELECT * FROM q4pg_metrics() WHERE false;
SELECT * FROM q4pg_horizon() WHERE false;
SELECT * FROM q4pg_warnings() WHERE false;

-- a known state: tag a: 3 due, 1 leased; tag b: 2 scheduled; tag c: 1 dead
SELECT count(q4pg_enqueue('mq', 'a', '1')) FROM generate_series(1, 4);
SELECT count(q4pg_enqueue('mq', 'b', '2', now() + interval '1 hour')) FROM generate_series(1, 2);
SELECT count(*) AS leased FROM q4pg_lease('mq', 'a', 1, '1 hour');
SELECT q4pg_enqueue('mq', 'c', '3') AS dead_id \gset
BEGIN;
SELECT id = :dead_id AS taken FROM q4pg_take('mq', 'c');
SELECT q4pg_fail('mq', :dead_id, 'boom');
COMMIT;
SELECT queue, tag, due, scheduled, leased, dead, expired,
       oldest_due_age IS NOT NULL AS has_age, tag_count, idle_listeners, consumers,
       total_bytes > 0 AS has_size
  FROM q4pg_metrics();
-- per tag on request, most messages first, capped per queue
SELECT queue, tag, due, scheduled, leased, dead, expired, total_bytes IS NULL AS no_storage
  FROM q4pg_metrics(2);
SELECT count(*) AS all_tags FROM q4pg_metrics(100) WHERE tag IS NOT NULL;
-- without the counts: no scan, no tag rows, the rest as before
SELECT queue, tag, due, scheduled, leased, dead, expired, oldest_due_age, tag_count, consumers,
       total_bytes > 0 AS has_size
  FROM q4pg_metrics(100, counts => false);
-- no lease ran out: no warning (the horizon's own are left out here)
SELECT warning, queue FROM q4pg_warnings() WHERE warning = 'leases_expired';

-- leases that ran out without an ack: tag d, 3 leased, 1 acked in time, the
-- other 2 leases' end set in the past (the last allowed attempt: dead_at)
SELECT count(q4pg_enqueue('mq', 'd', '4')) FROM generate_series(1, 3);
CREATE TEMP TABLE d_leases AS SELECT id, lease_token FROM q4pg_lease('mq', 'd', 3, '1 hour');
SELECT q4pg_ack('mq', id, lease_token) AS acked FROM d_leases ORDER BY id LIMIT 1;
UPDATE mq SET dead_at = now() - interval '1 second' WHERE tag = 'd';
SELECT queue, tag, due, leased, dead, expired FROM q4pg_metrics(10);
SELECT warning, queue, pid, name, state, age >= interval '1 second' AS old_enough, xmin_age, detail
  FROM q4pg_warnings() WHERE warning = 'leases_expired';
SELECT count(*) AS warned_at_3 FROM q4pg_warnings(expired_leases => 3)
 WHERE warning = 'leases_expired';
SELECT count(*) AS not_looked_for FROM q4pg_warnings(expired_leases => NULL)
 WHERE warning = 'leases_expired';
-- the condition, defined once
SELECT q4pg_message_state('expired', 's');
-- a replay ends it
SELECT q4pg_replay('mq', (SELECT array_agg(id) FROM d_leases)) AS replayed;
SELECT queue, due, dead, expired FROM q4pg_metrics() WHERE queue = 'mq'::regclass;

-- bad arguments: 22023, naming the argument
SELECT * FROM q4pg_metrics(-1);
SELECT * FROM q4pg_metrics(NULL);
SELECT * FROM q4pg_warnings('-1 second');
SELECT * FROM q4pg_warnings('1 minute', -1);
SELECT * FROM q4pg_warnings(expired_leases => 0);
SELECT q4pg_message_state('gone', '');

-- storage: a queue's own table, or the leaves of a partition tree
CREATE TABLE parted (id bigint, k integer) PARTITION BY RANGE (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (k);
CREATE TABLE parted_2a PARTITION OF parted_2 FOR VALUES FROM (10) TO (15);
CREATE TABLE plain (id bigint);
SELECT q4pg_queue_leaves('plain') AS plain_table;
-- (a queue, 1.2: its ring's five slots)
SELECT count(*) AS ring_slots FROM q4pg_queue_leaves('mq') AS l(r)
 WHERE l.r::text ~ '^q4pg_[0-9a-f]+_(s[0-3]|later)$';
SELECT q4pg_queue_leaves('parted') AS leaf ORDER BY leaf::text;
SELECT q4pg_queue_leaves('parted_2') AS leaf_of_a_partition;

DROP TABLE parted, plain;
SELECT q4pg_drop_queue('mq'), q4pg_drop_queue('quiet');
DROP EXTENSION q4pg;
