-- 1.1: scheduled messages, transactional failures, leases, dead letters.
\set VERBOSITY terse
CREATE EXTENSION q4pg;
SELECT q4pg_create_queue('lq', max_attempts => 2);
SELECT * FROM q4pg_queues();

-- scheduled: not handed out before run_at, listed and counted apart, next_due tells when
SELECT q4pg_enqueue('lq', 'a', '"later"', now() + interval '1 hour') AS later \gset
SELECT q4pg_enqueue('lq', 'a', '"now"') AS soon \gset
SELECT data FROM q4pg_dequeue('lq', 'a');
SELECT count(*) AS nothing_due FROM q4pg_dequeue('lq', 'a');
SELECT count(*) AS nothing_leased FROM q4pg_lease('lq', 'a', 10, '1 minute');
SELECT count(*) AS nothing_taken FROM q4pg_take('lq', 'a', 10);
SELECT q4pg_next_due('lq', 'a') = (SELECT run_at FROM lq WHERE id = :later) AS next_due_is_run_at;
-- count and list: due messages by default (the original API's count)
SELECT q4pg_count('lq', include_scheduled => true) AS all, q4pg_count('lq') AS due;
SELECT data, run_at > now() AS scheduled FROM q4pg_list('lq', include_scheduled => true);
SELECT count(*) AS listed_due FROM q4pg_list('lq');
SELECT q4pg_cancel('lq', :later) AS cancelled_scheduled;
SELECT q4pg_next_due('lq', 'a') IS NULL AS none_due_later;
-- a run_at in the past is due at once, ahead of messages due later
SELECT q4pg_enqueue('lq', 'b', '"second"');
SELECT q4pg_enqueue('lq', 'b', '"first"', now() - interval '1 minute');
SELECT data FROM q4pg_dequeue_many('lq', 'b', 5) ORDER BY id DESC;
SELECT q4pg_enqueue_many('lq', 'b', ARRAY['1', '2'], now() + interval '1 day');
SELECT q4pg_count('lq', 'b') AS due, q4pg_count('lq', 'b', true) AS all;
SELECT q4pg_enqueue('lq', 'b', '1', 'infinity');
DELETE FROM lq;

-- transactional: take, then done or fail (counted, atomically with the message's return)
SELECT q4pg_enqueue('lq', 't', '"job"') AS job \gset
BEGIN;
SELECT data, attempts, last_error FROM q4pg_take('lq', 't');
SELECT q4pg_fail('lq', :job, 'first failure');
COMMIT;
SELECT attempts, last_error, run_at <= now() AS due_again FROM lq WHERE id = :job;
BEGIN;
SELECT data, attempts, last_error FROM q4pg_take('lq', 't');
SELECT q4pg_fail('lq', :job, 'second failure');
COMMIT;
-- max_attempts 2 reached: a dead letter, never handed out again
SELECT count(*) AS not_taken FROM q4pg_take('lq', 't');
SELECT count(*) AS not_dequeued FROM q4pg_dequeue('lq', 't');
SELECT data, attempts, last_error FROM q4pg_dead_letters('lq');
SELECT tag, waiting, scheduled, leased, dead FROM q4pg_stats();
SELECT q4pg_count('lq') AS dead_not_counted;
SELECT q4pg_replay('lq', :job) AS replayed;
SELECT attempts, last_error, dead_at IS NULL AS alive FROM lq WHERE id = :job;
BEGIN;
SELECT id = :job AS taken FROM q4pg_take('lq', 't');
SELECT q4pg_done('lq', :job);
COMMIT;
SELECT q4pg_count('lq') AS gone;
-- a caller's own limit, and a retry later
SELECT q4pg_enqueue('lq', 't', '"job"') AS job \gset
BEGIN;
SELECT count(*) AS taken FROM q4pg_take('lq', 't');
SELECT q4pg_fail('lq', :job, 'once', max_attempts => 1);
COMMIT;
SELECT q4pg_purge_dead('lq', older_than => '1 hour') AS kept_young, q4pg_purge_dead('lq') AS purged;
SELECT q4pg_enqueue('lq', 't', '"job"') AS job \gset
BEGIN;
SELECT count(*) AS taken FROM q4pg_take('lq', 't');
SELECT q4pg_fail('lq', :job, 'later', retry_in => '1 hour');
COMMIT;
SELECT q4pg_next_due('lq', 't') > now() + interval '59 minutes' AS retried_later;
SELECT q4pg_fail('lq', -1);
DELETE FROM lq;

-- done and fail act only on what this transaction took, and never wait
SELECT q4pg_enqueue('lq', 'o', '"mine"') AS mine \gset
SELECT q4pg_enqueue('lq', 'o', '"not taken"') AS other \gset
BEGIN;
SELECT data FROM q4pg_take('lq', 'o');
SELECT q4pg_done('lq', :other) AS done_other, q4pg_fail('lq', :other, 'x') IS NULL AS fail_other,
       q4pg_done_many('lq', ARRAY[:other, :mine]) AS done_mine_only;
COMMIT;
SELECT data, attempts FROM lq WHERE tag = 'o';
DELETE FROM lq;

-- dequeue, then fail: the removed message comes back under its id, counted,
-- and give_back puts one back as it was; dequeue_many remembers nothing
SELECT q4pg_enqueue('lq', 'd', '"one"') AS one \gset
SELECT q4pg_enqueue('lq', 'd', '"two"') AS two \gset
SELECT q4pg_enqueue('lq', 'd', '"three"') AS three \gset
BEGIN;
SELECT data FROM q4pg_dequeue('lq', 'd');
SELECT data FROM q4pg_dequeue('lq', 'd');
SELECT data FROM q4pg_dequeue_many('lq', 'd', 2);
SELECT q4pg_fail('lq', :one, 'first failed') AS one_failed,
       q4pg_give_back('lq', ARRAY[:two, :one, :three]) AS given_back,
       q4pg_fail('lq', :one, 'again') IS NULL AS fail_once,
       q4pg_fail('lq', :three, 'x') IS NULL AS batch_not_remembered;
COMMIT;
SELECT id = :one AS same_id, data, attempts, last_error, run_at <= now() AS due FROM lq ORDER BY id;
DELETE FROM lq;
-- a rolled back savepoint forgets what it removed
BEGIN;
SELECT q4pg_enqueue('lq', 'd', '"four"') AS four \gset
SAVEPOINT s;
SELECT data FROM q4pg_dequeue('lq', 'd');
ROLLBACK TO SAVEPOINT s;
SELECT q4pg_fail('lq', :four, 'x') IS NULL AS not_removed_any_more;
COMMIT;
SELECT data, attempts FROM lq;
DELETE FROM lq;

-- JSON and single-id overloads; every queue in stats, with zeros when empty
SELECT q4pg_enqueue('lq', 'j', '{"a": 1}'::jsonb) > 0 AS jsonb_accepted,
       q4pg_enqueue('lq', 'j', '[1]'::json) > 0 AS json_accepted;
SELECT q4pg_create_queue('empty_q');
SELECT queue, tag, waiting, oldest_age, scheduled, leased, dead FROM q4pg_stats() WHERE queue = 'empty_q'::regclass;
SELECT q4pg_drop_queue('empty_q');
-- oldest_age: how long the oldest due message waits; a scheduled one does not count
SELECT q4pg_enqueue('lq', 's', '"tomorrow"', now() + interval '1 day');
SELECT tag, waiting, oldest_age IS NULL AS no_age, scheduled FROM q4pg_stats() WHERE tag = 's';
DELETE FROM lq;

-- leases: each counts an attempt; ack and nack need the token; extend is the heartbeat
SELECT q4pg_enqueue('lq', 'l', '"work"') AS job \gset
SELECT lease_token AS token, attempts FROM q4pg_lease('lq', 'l', 1, '1 minute') \gset
SELECT :attempts AS attempts_after_lease;
SELECT count(*) AS invisible FROM q4pg_lease('lq', 'l', 1, '1 minute');
SELECT q4pg_cancel('lq', :job) AS cancel_refused;
SELECT q4pg_fail('lq', :job);
SELECT q4pg_ack('lq', :job, gen_random_uuid()) AS wrong_token;
SELECT q4pg_extend('lq', :job, :'token', '2 minutes') > now() + interval '119 seconds' AS extended;
SELECT leased FROM q4pg_stats();
SELECT q4pg_nack('lq', :job, :'token', error => 'nacked') AS nacked;
SELECT q4pg_ack('lq', :job, :'token') AS stale_token;
-- the second lease is the last allowed one: its end makes the message dead
SELECT lease_token AS token, attempts FROM q4pg_lease('lq', 'l', 1, '10 milliseconds') \gset
SELECT :attempts AS attempts_after_second_lease;
SELECT pg_sleep(0.05);
SELECT count(*) AS dead_not_leased FROM q4pg_lease('lq', 'l', 1, '1 minute');
SELECT q4pg_extend('lq', :job, :'token', '1 minute') IS NULL AS extend_refused;
SELECT data, attempts, last_error FROM q4pg_dead_letters('lq', 'l');
-- a late ack nobody overtook is accepted (the work was done)
SELECT q4pg_ack('lq', :job, :'token') AS late_ack;
-- an expired lease under no limit: due again, its attempt counted
SELECT q4pg_set_max_attempts('lq', NULL);
SELECT q4pg_enqueue('lq', 'l', '"again"') AS job \gset
SELECT lease_token AS token FROM q4pg_lease('lq', 'l', 1, '10 milliseconds') \gset
SELECT pg_sleep(0.05);
SELECT attempts FROM q4pg_lease('lq', 'l', 1, '1 minute');
SELECT q4pg_ack('lq', :job, :'token') AS overtaken_ack_refused;
SELECT q4pg_extend('lq', :job, :'token', '1 minute') IS NULL AS overtaken_extend_refused;
SELECT q4pg_nack('lq', :job, :'token') IS NULL AS overtaken_nack_refused;

-- settings
SELECT q4pg_set_max_attempts('lq', 1);
SELECT attempts, dead_at IS NOT NULL AS dies_when_lease_ends FROM lq WHERE id = :job;
SELECT * FROM q4pg_queues();
SELECT q4pg_create_queue('lq') AS same_queue;
SELECT q4pg_create_queue('lq', max_attempts => 1) AS same_limit;
SELECT q4pg_create_queue('lq', max_attempts => 3);
SELECT q4pg_set_max_attempts('lq', 0);
SELECT q4pg_create_queue('lq0', max_attempts => 0);

-- bad input
SELECT q4pg_lease('lq', 'l', -1, '1 minute');
SELECT q4pg_lease('lq', 'l', 1, '0 seconds');
SELECT q4pg_lease('lq', 'l', 1, NULL);
SELECT q4pg_take('lq', 'l', NULL);
SELECT q4pg_nack('lq', 1, gen_random_uuid(), '-1 second');
SELECT q4pg_extend('lq', 1, gen_random_uuid(), '-1 second');
SELECT q4pg_dead_letters('lq', n => -1);
-- a queue emptied with TRUNCATE ... RESTART IDENTITY (which restarts its
-- ring's state sequence too) still takes and gives messages
SELECT q4pg_enqueue('lq', 'r', '{"n": 1}') IS NOT NULL AS enqueued;
TRUNCATE lq RESTART IDENTITY;
SELECT q4pg_enqueue('lq', 'r', '{"n": 2}') AS id_after_restart;
INSERT INTO lq (tag, data) VALUES ('r', '{"n": 3}');
SELECT id, data FROM q4pg_dequeue_many('lq', 'r', 5);
SELECT q4pg_drop_queue('lq');
DROP EXTENSION q4pg;
