-- peer: PGMQ's producer call
SELECT * FROM pgmq.send('pm', '{"n":1}'::jsonb);
