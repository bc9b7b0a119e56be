-- lease then ack through the queue's direct door (two transactions)
SELECT * FROM public.q4pg_q_lease('t', 1, interval '30 seconds') \aset
SELECT public.q4pg_q_ack(:id, :lease_token);
