-- baseline: take the oldest message, plain DELETE
DELETE FROM raw WHERE id = (SELECT id FROM raw WHERE tag = 't' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *;
