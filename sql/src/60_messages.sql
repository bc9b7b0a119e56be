-- The message functions: what producers and consumers call.
--
-- The fourteen on the hot path (enqueue, enqueue_many, dequeue, dequeue_many,
-- cancel; take, done, done_many, fail, give_back; lease, ack, nack, extend) hand the call to the
-- queue's generated function (see 40_queue_functions.sql) through
-- q4pg_route(), with one EXECUTE of a one-call statement.  They do not pin
-- search_path (it costs a catalog lookup per call): every name, type and
-- operator in them is schema-qualified, and the statement they EXECUTE names
-- its function with its schema.  They share one shape on purpose: each is the
-- typed public door to one generated function, and folding them into one
-- would cost a call on the hot path.

-- q4pg_enqueue: adds one message to a queue.  Returns its id.
-- data must parse as the queue's data type and be at most its data length in
-- characters, the tag at most 2048 bytes, neither null; otherwise nothing is
-- stored (22P02, 22001, 22004).  run_at (1.1): no dequeue or lease hands the
-- message out before then (null: now; not 'infinity': 22023).  Inserts
-- into the queue table (its trigger notifies idle listeners of the tag).
-- On a json or jsonb queue, the JSON null is refused (22004): a consumer
-- could not tell it from no message.
CREATE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data text,
                                         run_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_id bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'enqueue($1, $2, $3)'
       INTO v_id
      USING tag, data, run_at;
    RETURN v_id;
END
$$;

-- q4pg_enqueue with json or jsonb data (1.1): the same, for a value already
-- of a JSON type (q4pg_enqueue('q', 't', to_jsonb(row)) needs no cast).
-- Unpinned like q4pg_route, so that the planner inlines them into the
-- caller's statement (a call of an SQL function with a SET clause is read and
-- planned again each time: 88k instructions, a fifth of an enqueue); their
-- SQL-standard bodies are bound when the extension is created.
CREATE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data json,
                                         run_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
RETURN @extschema@.q4pg_enqueue(queue, tag, data::pg_catalog.text, run_at);

CREATE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data jsonb,
                                         run_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
RETURN @extschema@.q4pg_enqueue(queue, tag, data::pg_catalog.text, run_at);

-- q4pg_enqueue_many: adds one message per element of data, in array order, in
-- one statement (so one NOTIFY).  Returns their ids in the same order.  One
-- bad element stores none of them.  run_at as for q4pg_enqueue, for all.
CREATE FUNCTION @extschema@.q4pg_enqueue_many(queue regclass, tag text, data text[],
                                              run_at timestamptz DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'enqueue_many($1, $2, $3)'
      USING tag, data, run_at;
END
$$;

-- q4pg_dequeue: takes the first due message of a tag (run_at, then id: the
-- oldest, for messages enqueued without run_at) that no other transaction
-- holds (FOR UPDATE SKIP LOCKED) and deletes it inside the caller's
-- transaction: COMMIT consumes it, ROLLBACK gives it back uncounted, and
-- q4pg_fail before the end of the transaction gives it back with a failure
-- counted (the transaction remembers what it removed: see
-- 40_queue_functions.sql).  Returns zero or one message; never waits for
-- another consumer.  Raises 22004 for a null tag, 22001 for a tag longer
-- than a tag may be.
CREATE FUNCTION @extschema@.q4pg_dequeue(queue regclass, tag text)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'dequeue($1)'
      USING tag;
END
$$;

-- q4pg_dequeue_many: like q4pg_dequeue, for up to n messages at once, but
-- without the memory q4pg_fail needs: COMMIT consumes them, ROLLBACK gives
-- them back uncounted (a batch consumer that counts failures uses
-- q4pg_take(queue, tag, n), then q4pg_done_many).  Returns them in id order;
-- raises 22023 when n is null or negative.
CREATE FUNCTION @extschema@.q4pg_dequeue_many(queue regclass, tag text, n integer)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'dequeue_many($1, $2)'
      USING tag, n;
END
$$;

-- q4pg_cancel: removes a message by id: due, scheduled or a dead letter.
-- Returns true when it removed it; false when there is no such message, a
-- consumer's transaction holds it or it is under a live lease.  Never waits.
CREATE FUNCTION @extschema@.q4pg_cancel(queue regclass, id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_removed boolean;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'cancel($1)'
       INTO v_removed
      USING id;
    RETURN v_removed;
END
$$;

-- q4pg_take: the transactional consumer that counts failures.  Locks up to
-- n (default 1) due messages of a tag for the caller's transaction (FOR
-- UPDATE SKIP LOCKED), first due first, without removing them, and returns
-- them with their attempts and last error.  Before commit the caller ends
-- each with q4pg_done (removes it) or q4pg_fail (gives it back, one attempt
-- counted); a ROLLBACK gives them back uncounted.  Raises 22023 for a null
-- or negative n.
CREATE FUNCTION @extschema@.q4pg_take(queue regclass, tag text, n integer DEFAULT 1)
RETURNS SETOF @extschema@.q4pg_taken_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'take($1, $2)'
      USING tag, n;
END
$$;

-- q4pg_done: removes a message the caller's transaction took (q4pg_take).
-- Returns false for any other id (no such message, or one this transaction
-- did not take: it is left alone, and never waited for).
CREATE FUNCTION @extschema@.q4pg_done(queue regclass, id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_done boolean;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'done($1)'
       INTO v_done
      USING id;
    RETURN v_done;
END
$$;

-- q4pg_done_many: q4pg_done for many messages in one call (what a batch
-- taken with q4pg_take(queue, tag, n) needs).  Returns how many it removed:
-- ids this transaction did not take are left alone.
CREATE FUNCTION @extschema@.q4pg_done_many(queue regclass, ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_count bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'done_many($1)'
       INTO v_count
      USING ids;
    RETURN v_count;
END
$$;

-- q4pg_fail: records a failed attempt at a message the caller's transaction
-- took (q4pg_take) or removed (q4pg_dequeue) and gives it
-- back, in one step of that transaction (so no other consumer can take it
-- uncounted): attempts + 1, last_error := error, due again after retry_in
-- (null: at once and in its place, as after a rollback; idle listeners are
-- woken).  When its attempts reach max_attempts (the argument, else the
-- queue's) it becomes a dead letter instead.  Returns 'retry' or 'dead';
-- null for any other id (no such message, one this transaction did not take,
-- one under a lease: its holder uses q4pg_nack): it is left alone, and never
-- waited for.  A removed message goes back under its own id, which needs
-- INSERT on the queue.  Raises 22023 for a negative retry_in.
CREATE FUNCTION @extschema@.q4pg_fail(queue regclass, id bigint, error text DEFAULT NULL,
                                      retry_in interval DEFAULT NULL,
                                      max_attempts integer DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'fail($1, $2, $3, $4)'
       INTO v_state
      USING id, error, retry_in, max_attempts;
    RETURN v_state;
END
$$;

-- q4pg_give_back (1.1): gives back, uncounted and at once, messages the
-- caller's transaction removed with q4pg_dequeue, as a
-- ROLLBACK would, without ending the transaction: each goes back under its
-- id, as it was (needs INSERT on the queue).  Returns how many it gave back;
-- other ids are left alone.
CREATE FUNCTION @extschema@.q4pg_give_back(queue regclass, ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_count bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'give_back($1)'
       INTO v_count
      USING ids;
    RETURN v_count;
END
$$;

-- q4pg_lease: hands out up to n due messages of a tag, first due first, each
-- invisible to other consumers until its lease ends (now() + lease): the
-- worker holds no transaction open.  Each lease counts an attempt and gets a
-- fresh lease_token, which q4pg_ack, q4pg_nack and q4pg_extend take.  A
-- lease that ends unacknowledged makes its message due again, its attempt
-- counted; a lease on the queue's last allowed attempt (max_attempts) that
-- ends makes it a dead letter.  Raises 22023 for a null or negative n, a
-- null or non-positive lease.
CREATE FUNCTION @extschema@.q4pg_lease(queue regclass, tag text, n integer, lease interval)
RETURNS SETOF @extschema@.q4pg_leased_message
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'lease($1, $2, $3)'
      USING tag, n, lease;
END
$$;

-- q4pg_ack: the leased message is done: deletes it.  Returns false when the
-- token no longer holds it (another consumer leased it after this lease
-- ended, or it is gone); a late ack that nobody overtook is accepted.
CREATE FUNCTION @extschema@.q4pg_ack(queue regclass, id bigint, token uuid)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_done boolean;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'ack($1, $2)'
       INTO v_done
      USING id, token;
    RETURN v_done;
END
$$;

-- q4pg_nack: the leased message failed: gives it back, due after retry_in
-- (null: at once, and idle listeners are woken), with last_error := error;
-- its attempt was counted by the lease.  On the queue's last allowed attempt
-- it becomes a dead letter.  Returns 'retry' or 'dead'; null when the token
-- no longer holds it.  Raises 22023 for a negative retry_in.
CREATE FUNCTION @extschema@.q4pg_nack(queue regclass, id bigint, token uuid,
                                      retry_in interval DEFAULT NULL, error text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'nack($1, $2, $3, $4)'
       INTO v_state
      USING id, token, retry_in, error;
    RETURN v_state;
END
$$;

-- q4pg_extend: the heartbeat of a long job: the lease now ends at now() +
-- lease.  Returns that time; null when the token no longer holds the message
-- (or its last allowed lease has ended: it is a dead letter).  Raises 22023
-- for a null or non-positive lease.
CREATE FUNCTION @extschema@.q4pg_extend(queue regclass, id bigint, token uuid, lease interval)
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
DECLARE
    v_until timestamptz;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'extend($1, $2, $3)'
       INTO v_until
      USING id, token, lease;
    RETURN v_until;
END
$$;

-- q4pg_count: the number of due messages in a queue (what a dequeue could
-- hand out: the original library's count), of one tag or (tag null) of all;
-- include_scheduled true also counts those scheduled for later or under a
-- live lease.  Dead letters are left out (q4pg_stats counts them).  Messages
-- held by a consumer's open transaction still count.
CREATE FUNCTION @extschema@.q4pg_count(queue regclass, tag text DEFAULT NULL,
                                       include_scheduled boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    v_count bigint;
BEGIN
    PERFORM @extschema@.q4pg_queue_info(queue);
    EXECUTE format('SELECT count(*) FROM %s
                     WHERE ($1 IS NULL OR tag = $1) AND ($2 OR %s) AND NOT coalesce(%s, false)',
                   queue, @extschema@.q4pg_message_state('due', ''),
                   @extschema@.q4pg_message_state('dead', ''))
       INTO v_count
      USING tag, coalesce(include_scheduled, false);
    RETURN v_count;
END
$$;

-- q4pg_list: the due messages of a queue, first due first (run_at, then id),
-- of one tag or (tag null) of all, at most n of them (null: all);
-- include_scheduled true lists those scheduled for later or under a live
-- lease too.  Dead letters are left out (q4pg_dead_letters lists them).
-- Each with its due time (while leased: the lease's end, when it comes due
-- again unless acknowledged), attempts, last error and, while leased, its
-- lease's end.  Takes nothing; raises 22023 for a negative n.
CREATE FUNCTION @extschema@.q4pg_list(queue regclass, tag text DEFAULT NULL, n integer DEFAULT NULL,
                                      include_scheduled boolean DEFAULT false)
RETURNS SETOF @extschema@.q4pg_listed_message
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM @extschema@.q4pg_check_limit(n);
    PERFORM @extschema@.q4pg_queue_info(queue);
    RETURN QUERY EXECUTE format(
        'SELECT id, tag, data::text, created_at,
                CASE WHEN %2$s THEN coalesce(dead_at, run_at) ELSE run_at END, attempts, last_error,
                CASE WHEN %2$s THEN coalesce(dead_at, run_at) END
           FROM %1$s
          WHERE ($1 IS NULL OR tag = $1) AND ($3 OR %3$s) AND NOT coalesce(%4$s, false)
          ORDER BY run_at, id LIMIT $2',
        queue, @extschema@.q4pg_message_state('leased', ''), @extschema@.q4pg_message_state('due', ''),
        @extschema@.q4pg_message_state('dead', ''))
      USING tag, n, coalesce(include_scheduled, false);
END
$$;
