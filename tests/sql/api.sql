-- The SQL API as a psql user meets it: the tutorial, step by step.
\set VERBOSITY terse
CREATE EXTENSION q4pg;

-- create a queue; again with the same settings is harmless
SELECT q4pg_create_queue('mq');
SELECT q4pg_create_queue('mq', 'json', 1023);
SELECT * FROM q4pg_queues();
-- churn-ready storage: vacuumed after 5000 dead rows whatever the backlog, unthrottled
-- (1.2: on each slot of the queue's ring)
SELECT c.relname ~ '^q4pg_[0-9a-f]+_(s[0-3]|later)$' AS slot, unnest(c.reloptions) AS storage
  FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'mq'::regclass
 GROUP BY 1, 2 HAVING count(*) = 5 ORDER BY 2;

-- enqueue returns increasing ids
SELECT q4pg_enqueue('mq', 'tag', '{"the_data": "must_be"}') AS id1 \gset
SELECT q4pg_enqueue('mq', 'tag', '{"json": "serializable_data"}') AS id2 \gset
SELECT q4pg_enqueue('mq', 'tag', '{"more": "data"}') AS id3 \gset
SELECT :id1 < :id2 AND :id2 < :id3 AS increasing;

-- dequeue takes the oldest of its tag, and only of its tag
SELECT id = :id1 AS oldest, tag, data FROM q4pg_dequeue('mq', 'tag');
SELECT count(*) AS none FROM q4pg_dequeue('mq', 'another-tag');

-- list shows what waits, oldest first, data as stored
SELECT id = :id2 OR id = :id3 AS expected, tag, data FROM q4pg_list('mq', 'tag');
SELECT q4pg_count('mq', 'tag') AS count_tag, q4pg_count('mq') AS count_all;

-- the transactional guard: a rolled back dequeue gives the message back
BEGIN;
SELECT data FROM q4pg_dequeue('mq', 'tag');
ROLLBACK;
SELECT id = :id2 AS still_first FROM q4pg_list('mq', 'tag', 1);

-- cancel: true once, then false
SELECT q4pg_cancel('mq', :id3) AS cancelled, q4pg_cancel('mq', :id3) AS again;
SELECT q4pg_cancel('mq', -1) AS missing;

-- batches: enqueue_many keeps array order, dequeue_many returns oldest first
SELECT count(*) AS enqueued FROM q4pg_enqueue_many('mq', 'batch', ARRAY['1', '"two"', '{"n": 3}', '[4]']);
SELECT data FROM q4pg_dequeue_many('mq', 'batch', 3);
SELECT data FROM q4pg_dequeue_many('mq', 'batch', 10);
SELECT count(*) AS empty FROM q4pg_dequeue_many('mq', 'batch', 10);
SELECT count(*) AS zero_limit FROM q4pg_dequeue_many('mq', 'tag', 0);

-- text queues store any text; jsonb queues normalize
SELECT q4pg_create_queue('notes', 'text', 10);
SELECT q4pg_enqueue('notes', '', 'not json') > 0 AS empty_tag_ok;
SELECT tag = '' AS empty_tag, data FROM q4pg_dequeue('notes', '');
SELECT q4pg_create_queue('jq', 'JSONB', 50);
SELECT q4pg_enqueue('jq', 't', '{"b": 1,   "a": 2}') > 0 AS ok;
SELECT data FROM q4pg_dequeue('jq', 't');

-- the length limit counts characters, not bytes
SELECT q4pg_enqueue('notes', 'u', repeat('é', 10)) > 0 AS ten_chars_fit;
SELECT data = repeat('é', 10) AS exact FROM q4pg_dequeue('notes', 'u');

-- schemas: qualified names, quoted names, the caller's current schema
CREATE SCHEMA app;
SELECT q4pg_create_queue('app.jobs', 'text');
SELECT q4pg_create_queue('"Odd; name.""q"""', 'text');
SET search_path = app, public;
SELECT q4pg_create_queue('here', 'text');
RESET search_path;
SELECT queue, data_type, data_length FROM q4pg_queues();
SELECT q4pg_enqueue('"Odd; name.""q"""', 't', 'x') > 0 AS ok;
SELECT data FROM q4pg_dequeue('"Odd; name.""q"""', 't');

-- stats: per queue and tag
SELECT q4pg_enqueue('app.jobs', 'a', 'one') > 0, q4pg_enqueue('app.jobs', 'a', 'two') > 0,
       q4pg_enqueue('app.jobs', 'b', 'three') > 0;
SELECT queue, tag, waiting, oldest_age >= '0'::interval AS has_age
  FROM q4pg_stats() WHERE queue = 'app.jobs'::regclass;

-- channels: one per queue and tag, always a short identifier
SELECT q4pg_channel('mq', 'tag') = 'q4pg_' || md5('public.mq:tag') AS documented_rule;
SELECT q4pg_channel('mq', 'tag') <> q4pg_channel('mq', 'tag2') AS per_tag;
SELECT octet_length(q4pg_channel('mq', repeat('☃', 500))) AS channel_bytes;

-- drop a queue
SELECT q4pg_drop_queue('notes');
SELECT to_regclass('notes') IS NULL AS gone;

-- named notation, with the parameter names docs/sql.md gives
SELECT q4pg_create_queue(table_name => 'named', data_type => 'text', data_length => 20);
SELECT q4pg_enqueue(queue => 'named', tag => 't', data => 'by name') > 0 AS enqueued;
SELECT q4pg_count(queue => 'named', tag => 't') AS counted;
SELECT data FROM q4pg_dequeue_many(queue => 'named', tag => 't', n => 5);
SELECT q4pg_cancel(queue => 'named', id => -1) AS cancelled;
SELECT q4pg_drop_queue(queue => 'named');

-- queues depend on the extension's trigger function: DROP EXTENSION refuses
-- while queues exist; with CASCADE it drops their triggers and keeps the
-- tables, with their messages (they are not extension members)
DROP EXTENSION q4pg;
SET client_min_messages = warning;
DROP EXTENSION q4pg CASCADE;
RESET client_min_messages;
SELECT count(*) AS kept FROM app.jobs;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname = 'q4pg_notify';
SET client_min_messages = warning;
DROP SCHEMA app CASCADE;
RESET client_min_messages;
DROP TABLE mq, jq, "Odd; name.""q""";
