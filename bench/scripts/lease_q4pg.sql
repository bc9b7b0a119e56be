-- lease the oldest due message through q4pg (its own transaction), then ack it (another)
SELECT * FROM q4pg_lease('q', 't', 1, interval '30 seconds') \aset
SELECT q4pg_ack('q', :id, :lease_token);
