-- diagnostic: the baseline's DELETE, on the q4pg queue table (what the table costs)
DELETE FROM q WHERE id = (SELECT id FROM q WHERE tag = 't' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *;
