-- The message functions: what producers and consumers call.
--
-- The five on the hot path (enqueue, enqueue_many, dequeue, dequeue_many,
-- cancel) hand the call to the queue's generated function (see
-- 40_queue_functions.sql) through q4pg_route(), with one EXECUTE of a
-- one-call statement.  They do not pin search_path (it costs a catalog lookup
-- per call): every name, type and operator in them is schema-qualified, and
-- the statement they EXECUTE names its function with its schema.  The five
-- share one shape on purpose: each is the typed public door to one generated
-- function, and folding them into one would cost a call on the hot path.

-- q4pg_enqueue: adds one message to a queue.  Returns its id.
-- data must parse as the queue's data type and be at most its data length in
-- characters, the tag at most 2048 bytes, neither null; otherwise nothing is
-- stored (22P02, 22001, 22004).  Inserts into the queue table (its trigger
-- notifies idle listeners of the tag).
CREATE FUNCTION @extschema@.q4pg_enqueue(queue regclass, tag text, data text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_id bigint;
BEGIN
    EXECUTE 'SELECT ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
            OPERATOR(pg_catalog.||) 'enqueue($1, $2)'
       INTO v_id
      USING tag, data;
    RETURN v_id;
END
$$;

-- q4pg_enqueue_many: adds one message per element of data, in array order, in
-- one statement (so one NOTIFY).  Returns their ids in the same order.  One
-- bad element stores none of them.
CREATE FUNCTION @extschema@.q4pg_enqueue_many(queue regclass, tag text, data text[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT * FROM ' OPERATOR(pg_catalog.||) @extschema@.q4pg_route(queue)
                         OPERATOR(pg_catalog.||) 'enqueue_many($1, $2)'
      USING tag, data;
END
$$;

-- q4pg_dequeue: takes the oldest message of a tag that no other transaction
-- holds (FOR UPDATE SKIP LOCKED) and deletes it inside the caller's
-- transaction: ROLLBACK gives it back.  Returns zero or one message; never
-- waits for another consumer.
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

-- q4pg_dequeue_many: like q4pg_dequeue, for up to n messages at once.
-- Returns them oldest first; raises 22023 when n is null or negative.
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

-- q4pg_cancel: removes a waiting message by id.  Returns true when it removed
-- it; false when there is no such message or a consumer holds it now.  Never
-- waits.
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

-- q4pg_count: the number of messages in a queue, of one tag or (tag null) of
-- all.  Messages held by a consumer's open transaction still count.
CREATE FUNCTION @extschema@.q4pg_count(queue regclass, tag text DEFAULT NULL)
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
    IF tag IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', queue) INTO v_count;
    ELSE
        EXECUTE format('SELECT count(*) FROM %s WHERE tag = $1', queue) INTO v_count USING tag;
    END IF;
    RETURN v_count;
END
$$;

-- q4pg_list: the messages of a queue, oldest first, of one tag or (tag null)
-- of all, at most n of them (null: all).  Takes nothing; raises 22023 for a
-- negative n.
CREATE FUNCTION @extschema@.q4pg_list(queue regclass, tag text DEFAULT NULL, n integer DEFAULT NULL)
RETURNS SETOF @extschema@.q4pg_message
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF n < 0 THEN
        RAISE EXCEPTION 'q4pg: limit must be zero or more, not %', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.q4pg_queue_info(queue);
    RETURN QUERY EXECUTE format(
        'SELECT id, tag, data::text, created_at FROM %s
          WHERE $1 IS NULL OR tag = $1
          ORDER BY id LIMIT $2',
        queue)
      USING tag, n;
END
$$;
