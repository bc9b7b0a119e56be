-- one message through the queue's direct door (docs/sql.md, "The direct door")
SELECT public.q4pg_q_enqueue('t', '{"n":1}', NULL);
