-- peer: PGMQ's take-and-delete of :batch
SELECT * FROM pgmq.pop('pm', :batch);
