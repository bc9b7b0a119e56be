-- peer: :batch PgQ events in one statement (PgQ has no array form)
SELECT count(pgq.insert_event('pq', 't', d)) FROM unnest(array_fill('{"n":1}'::text, ARRAY[(:batch)::integer])) AS d;
