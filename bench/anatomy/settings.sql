-- anatomy: q4pg_queue_settings alone (read only)
SELECT * FROM q4pg_queue_settings('q');
