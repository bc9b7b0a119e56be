-- take the oldest message through the queue's direct door
SELECT * FROM public.q4pg_q_dequeue('t');
