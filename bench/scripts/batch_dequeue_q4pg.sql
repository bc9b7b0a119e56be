-- take up to :batch messages through q4pg
SELECT * FROM q4pg_dequeue_many('q', 't', :batch);
