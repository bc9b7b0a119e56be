-- anatomy: q4pg_dequeue (settings from the session cache + dynamic DELETE), trigger disabled
SELECT * FROM q4pg_dequeue('anatomy.q_silent', 't');
