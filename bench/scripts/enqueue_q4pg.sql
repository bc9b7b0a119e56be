-- one message through q4pg
SELECT q4pg_enqueue('q', 't', '{"n":1}');
