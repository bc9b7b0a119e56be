-- batch of :batch messages through q4pg
SELECT count(*) FROM q4pg_enqueue_many('q', 't', array_fill('{"n":1}'::text, ARRAY[(:batch)::integer]));
