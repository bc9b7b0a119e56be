-- anatomy: q4pg_queue_settings alone (read only): the lookup the session cache
-- (q4pg_cache_settings) spares every per-message call but a session's first
SELECT * FROM q4pg_queue_settings('q');
