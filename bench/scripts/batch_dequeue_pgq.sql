-- peer: PgQ's consumer loop, one batch (one tick of :batch events) per transaction
BEGIN;
SELECT pgq.next_batch('pc', 'bench') AS bid \gset
SELECT * FROM pgq.get_batch_events(:bid);
SELECT pgq.finish_batch(:bid);
COMMIT;
