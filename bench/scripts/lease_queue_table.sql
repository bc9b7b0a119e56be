-- diagnostic: the baseline's plain UPDATE ... SKIP LOCKED, then DELETE, on the q4pg queue table
-- itself (its CHECK constraint, its columns): what the table costs, without the functions
UPDATE q SET run_at = now() + interval '30 seconds', attempts = attempts + 1, lease_token = gen_random_uuid() WHERE id IN (SELECT id FROM q WHERE tag = 't' AND run_at <= now() ORDER BY run_at, id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, tag, data, created_at, attempts, last_error, lease_token, run_at AS lease_until \aset
DELETE FROM q WHERE id = :id AND lease_token = :lease_token;
