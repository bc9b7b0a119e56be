-- the horizon section's loop: one message in, one out, in one transaction
BEGIN;
SELECT q4pg_enqueue('h', 't', '{"n": 1}');
SELECT * FROM q4pg_dequeue('h', 't');
COMMIT;
