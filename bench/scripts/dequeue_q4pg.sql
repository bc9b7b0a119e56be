-- take the oldest message through q4pg
SELECT * FROM q4pg_dequeue('q', 't');
