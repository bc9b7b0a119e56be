-- baseline: lease the oldest due message with a plain UPDATE ... SKIP LOCKED (its own
-- transaction), then ack it with a plain DELETE that checks the token (another)
UPDATE raw_lease SET run_at = now() + interval '30 seconds', attempts = attempts + 1, lease_token = gen_random_uuid() WHERE id IN (SELECT id FROM raw_lease WHERE tag = 't' AND run_at <= now() ORDER BY run_at, id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, tag, data, created_at, attempts, last_error, lease_token, run_at AS lease_until \aset
DELETE FROM raw_lease WHERE id = :id AND lease_token = :lease_token;
