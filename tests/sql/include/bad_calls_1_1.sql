-- The bad calls of 1.1, run twice by errors.sql: once for their SQLSTATEs,
-- once for their messages.
SELECT q4pg_enqueue('mq', 'tag', '1', 'infinity');
SELECT q4pg_enqueue_many('mq', 'tag', ARRAY['1'], '-infinity');
SELECT q4pg_take('mq', 'tag', -1);
SELECT q4pg_lease('mq', 'tag', NULL, '1 minute');
SELECT q4pg_lease('mq', 'tag', 1, '-1 second');
SELECT q4pg_extend('mq', 1, gen_random_uuid(), '0 seconds');
SELECT q4pg_nack('mq', 1, gen_random_uuid(), '-1 second');
SELECT q4pg_fail('mq', 1, 'e', '-1 second');
SELECT q4pg_set_max_attempts('mq', 0);
SELECT q4pg_create_queue('mq', 'json', 20, max_attempts => 5);
SELECT q4pg_create_queue('bad', max_attempts => -1);
SELECT q4pg_dead_letters('mq', n => -1);
SELECT q4pg_next_due('mq', NULL);
SELECT q4pg_lease('plain', 'tag', 1, '1 minute');
SELECT q4pg_replay('plain');
SELECT q4pg_purge_dead('plain');
SELECT q4pg_set_max_attempts('plain', 3);
SELECT q4pg_enqueue('mq', 'tag', 'null');
SELECT q4pg_enqueue_many('mq', 'tag', ARRAY['1', ' null']);
-- (the error names the slot of the ring the row went to: the constraint says it)
DO $$
DECLARE
    v_constraint text;
BEGIN
    INSERT INTO mq (tag, data) VALUES ('tag', 'null');
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
    RAISE NOTICE 'INSERT of the JSON null refused by %', v_constraint;
END
$$;
SELECT q4pg_dequeue('mq', NULL);
SELECT q4pg_dequeue_many('mq', repeat('t', 3000), 1);
SELECT q4pg_take('mq', NULL);
SELECT q4pg_lease('mq', NULL, 1, '1 minute');
SELECT q4pg_purge_dead('mq', older_than => '-1 second');
SELECT lease_token AS token FROM q4pg_lease('mq', 'tag', 1, '1 hour') \gset
-- not taken by this transaction (leased): left alone, at once
SELECT q4pg_fail('mq', id) IS NULL AS fail_refused FROM mq;
SELECT q4pg_nack('mq', id, :'token') FROM mq;
