-- peer: PgQ's producer call
SELECT pgq.insert_event('pq', 't', '{"n":1}');
