-- the horizon section's loop on a plain table (SKIP LOCKED), for contrast
BEGIN;
INSERT INTO raw_h (tag, data) VALUES ('t', '{"n": 1}');
DELETE FROM raw_h WHERE id = (SELECT id FROM raw_h WHERE tag = 't' ORDER BY id
                              FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *;
COMMIT;
