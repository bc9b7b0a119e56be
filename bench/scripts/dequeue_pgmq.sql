-- peer: PGMQ's take-and-delete call
SELECT * FROM pgmq.pop('pm');
