-- one message in and one out through q4pg (each its own transaction)
SELECT q4pg_enqueue('q', 't', '{"n":1}');
SELECT * FROM q4pg_dequeue('q', 't');
