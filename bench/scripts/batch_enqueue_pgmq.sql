-- peer: PGMQ's batch send
SELECT count(*) FROM pgmq.send_batch('pm', array_fill('{"n":1}'::text, ARRAY[(:batch)::integer])::jsonb[]);
