-- baseline: take up to :batch oldest messages, plain DELETE (= ANY (ARRAY(...)): index scans;
-- the IN (subquery) spelling plans a hash semi join over a sequential scan of the whole table)
DELETE FROM raw WHERE id = ANY (ARRAY(SELECT id FROM raw WHERE tag = 't' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT :batch)) RETURNING *;
