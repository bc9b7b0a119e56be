-- anatomy: plain DELETE from the queue-shaped table
DELETE FROM anatomy.q_silent WHERE id = (SELECT id FROM anatomy.q_silent WHERE tag = 't' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *;
