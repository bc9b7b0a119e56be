-- anatomy: q4pg_dequeue (settings lookup + dynamic DELETE)
SELECT * FROM q4pg_dequeue('anatomy.q_silent', 't');
