-- the horizon section's loop on PGMQ (send, pop), for contrast
BEGIN;
SELECT pgmq.send('ph', '{"n": 1}');
SELECT * FROM pgmq.pop('ph');
COMMIT;
