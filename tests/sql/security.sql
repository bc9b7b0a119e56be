-- A caller's hostile search_path cannot change what q4pg runs, and table names
-- and tags never reach SQL text unquoted.
\set VERBOSITY terse
CREATE EXTENSION q4pg;
SELECT q4pg_create_queue('mq') IS NOT NULL AS created;

-- a schema that shadows functions and an operator the extension uses; each
-- shadow records that it ran
CREATE SCHEMA evil;
CREATE TABLE evil.ran (what text);
CREATE FUNCTION evil.md5(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO evil.ran VALUES ('md5') RETURNING 'hijacked' $$;
CREATE FUNCTION evil.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO evil.ran VALUES ('format') RETURNING 'SELECT 1' $$;
CREATE FUNCTION evil.char_length(text) RETURNS integer LANGUAGE sql
    AS $$ INSERT INTO evil.ran VALUES ('char_length') RETURNING 0 $$;
CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO evil.ran VALUES ('pg_notify') $$;
CREATE FUNCTION evil.texteq_evil(text, text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO evil.ran VALUES ('=') RETURNING true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq_evil);

SET search_path = evil, pg_catalog, public;
SELECT q4pg_enqueue('mq', 'a', '{"n": 1}') > 0 AS enqueued;
SELECT q4pg_enqueue('mq', 'b', '{"n": 2}') > 0 AS enqueued;
SELECT tag, data FROM q4pg_dequeue('mq', 'b');
SELECT q4pg_count('mq', 'a') AS count_a;
SELECT q4pg_channel('mq', 'a') OPERATOR(pg_catalog.=) ('q4pg_' OPERATOR(pg_catalog.||) pg_catalog.md5('public.mq:a')) AS channel_ok;
SELECT tag FROM q4pg_list('mq');
SELECT q4pg_create_queue('evil_made') IS NOT NULL AS created;
RESET search_path;
SELECT what AS shadow_that_ran FROM evil.ran;
SELECT to_regclass('evil.evil_made') IS NOT NULL AS created_in_callers_schema;

-- names and tags are data, never SQL
SELECT q4pg_create_queue('"mq""; DROP TABLE mq; --"', 'text') IS NOT NULL AS created;
SELECT q4pg_enqueue('"mq""; DROP TABLE mq; --"', $$'); DROP TABLE mq; --$$, $$x'); DROP TABLE mq; --$$) > 0 AS ok;
SELECT tag, data FROM q4pg_dequeue('"mq""; DROP TABLE mq; --"', $$'); DROP TABLE mq; --$$);
SELECT to_regclass('mq') IS NOT NULL AS mq_still_there;

-- invoker's rights: a role with no rights on a queue can do nothing with it
CREATE ROLE q4pg_nobody;
SET ROLE q4pg_nobody;
\set VERBOSITY sqlstate
SELECT q4pg_enqueue('public.mq', 'a', '1');
SELECT q4pg_dequeue('public.mq', 'a');
SELECT q4pg_cancel('public.mq', 1);
SELECT q4pg_count('public.mq', 'a');
SELECT q4pg_list('public.mq');
\set VERBOSITY terse
SELECT count(*) AS visible_queues FROM q4pg_queues();
RESET ROLE;
SELECT q4pg_count('mq') AS unchanged;

-- the documented producer and consumer grants are enough, and no more
CREATE ROLE q4pg_producer;
CREATE ROLE q4pg_consumer;
GRANT INSERT, SELECT (id) ON mq TO q4pg_producer;
GRANT SELECT, DELETE, UPDATE (created_at) ON mq TO q4pg_consumer;
SET ROLE q4pg_producer;
SELECT q4pg_enqueue('public.mq', 'p', '{"n": 1}') > 0 AS produced;
SELECT count(*) AS produced_many FROM q4pg_enqueue_many('public.mq', 'p', ARRAY['1', '2']);
\set VERBOSITY sqlstate
SELECT q4pg_dequeue('public.mq', 'p');
\set VERBOSITY terse
RESET ROLE;
SET ROLE q4pg_consumer;
SELECT data FROM q4pg_dequeue('public.mq', 'p');
SELECT q4pg_register_idle('public.mq', 'p') AS may_sleep, q4pg_unregister_idle('public.mq', 'p') AS was_waiting;
SELECT q4pg_cancel('public.mq', max(id)) AS cancelled FROM q4pg_list('public.mq', 'p');
\set VERBOSITY sqlstate
SELECT q4pg_enqueue('public.mq', 'p', '{"n": 1}');
\set VERBOSITY terse
RESET ROLE;
DROP OWNED BY q4pg_producer, q4pg_consumer;
DROP ROLE q4pg_producer, q4pg_consumer;
DROP ROLE q4pg_nobody;
SET client_min_messages = warning;
DROP SCHEMA evil CASCADE;
RESET client_min_messages;
DROP TABLE mq, "mq""; DROP TABLE mq; --";
DROP EXTENSION q4pg;
