-- Bad input gets a clear error (with its SQLSTATE) and changes nothing.
\set VERBOSITY terse
\set SHOW_CONTEXT never
CREATE EXTENSION q4pg;
SELECT q4pg_create_queue('mq', 'json', 20) IS NOT NULL AS created;
SELECT q4pg_enqueue('mq', 'tag', '{"keep": 1}') > 0 AS kept;

-- report each error's SQLSTATE
\set VERBOSITY sqlstate
SELECT q4pg_enqueue('mq', 'tag', 'not json');
SELECT q4pg_enqueue('mq', 'tag', '');
SELECT q4pg_enqueue('mq', 'tag', '"' || repeat('x', 19) || '"');
SELECT q4pg_enqueue('mq', NULL, '1');
SELECT q4pg_enqueue('mq', 'tag', NULL);
SELECT q4pg_enqueue('mq', repeat('t', 2049), '1');
SELECT q4pg_enqueue_many('mq', repeat('t', 2049), ARRAY['1']);
SELECT q4pg_enqueue_many('mq', 'tag', ARRAY['1', 'nope']);
SELECT q4pg_enqueue_many('mq', 'tag', ARRAY['1', NULL]);
SELECT q4pg_dequeue_many('mq', 'tag', -1);
SELECT q4pg_list('mq', 'tag', -1);
SELECT q4pg_enqueue('nosuch', 'tag', '1');
CREATE TABLE plain (id bigint, tag text, data text);
INSERT INTO plain VALUES (1, 'tag', 'precious');
SELECT q4pg_dequeue('plain', 'tag');
SELECT q4pg_cancel('plain', 1);
SELECT q4pg_create_queue('plain');
SELECT q4pg_create_queue('mq', 'text', 20);
SELECT q4pg_create_queue('mq', 'json', 21);
SELECT q4pg_create_queue('bad', 'xml');
SELECT q4pg_create_queue('bad', 'json', 0);
SELECT q4pg_create_queue('x; DROP TABLE plain');
-- 1.1
\i tests/sql/include/bad_calls_1_1.sql
-- a queue's lock key never changes (its generated functions and routes hang on it)
SELECT q4pg_set_queue_trigger('mq', (SELECT lock_key FROM q4pg_queue_info('mq')) + 1, NULL);
SELECT q4pg_create_queue('a.b.c');
SELECT q4pg_create_queue('nosuchschema.q');
SELECT q4pg_create_queue(repeat('q', 64));
SELECT q4pg_create_queue(NULL);
\set VERBOSITY terse
-- the messages are clear
SELECT q4pg_enqueue('mq', repeat('é', 1025), '1');
SELECT q4pg_enqueue('mq', 'tag', '"' || repeat('x', 19) || '"');
SELECT q4pg_dequeue('plain', 'tag');
SELECT q4pg_create_queue('mq', 'text', 20);
SELECT q4pg_create_queue('x; DROP TABLE plain');
-- 1.1
\i tests/sql/include/bad_calls_1_1.sql

-- nothing changed
SELECT data FROM q4pg_list('mq');
SELECT * FROM plain;
SELECT to_regclass('bad') IS NULL AS no_bad_queue;
DROP TABLE plain, mq;
DROP EXTENSION q4pg;
