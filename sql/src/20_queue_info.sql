-- What a queue table says about itself.

-- q4pg_queue_info: everything q4pg reads from a queue table's catalog entries.
-- Takes a table; returns its data type ('json', 'jsonb' or 'text'), its data
-- length limit in characters, its lock key (the argument of its q4pg_notify
-- trigger), its schema-qualified name as quote_ident() writes each part, its
-- schema and its owner.  Raises undefined_table (42P01) when the table is no
-- q4pg queue.  Reads pg_class, pg_namespace, pg_attribute, pg_constraint,
-- pg_trigger: index probes only (a join here would scan pg_constraint).
CREATE FUNCTION @extschema@.q4pg_queue_info(
    p_queue regclass,
    OUT data_type text,
    OUT data_length integer,
    OUT lock_key integer,
    OUT qualified_name text,
    OUT schema_oid oid,
    OUT owner oid)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT (SELECT format_type(a.atttypid, NULL)
              FROM pg_attribute AS a
             WHERE a.attrelid = p_queue AND a.attname = 'data' AND NOT a.attisdropped),
           (SELECT (regexp_match(k.conname, '^q4pg_data_max_(\d+)_chars$'))[1]::integer
              FROM pg_constraint AS k
             WHERE k.conrelid = p_queue AND k.contype = 'c'
               AND k.conname LIKE 'q4pg\_data\_max\_%'
             LIMIT 1),
           nullif(split_part(encode(t.tgargs, 'escape'), '\000', 1), '')::integer,
           format('%I.%I', n.nspname, c.relname),
           c.relnamespace,
           c.relowner
      INTO data_type, data_length, lock_key, qualified_name, schema_oid, owner
      FROM pg_trigger AS t, pg_class AS c, pg_namespace AS n
     WHERE t.tgrelid = p_queue AND t.tgname = 'q4pg_notify'
       AND t.tgfoid = '@extschema@.q4pg_notify()'::regprocedure
       AND c.oid = p_queue AND n.oid = c.relnamespace;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'q4pg: table % is not a q4pg queue', p_queue
            USING ERRCODE = 'undefined_table',
                  HINT = 'Create one with q4pg_create_queue().';
    END IF;
    IF lock_key IS NULL THEN
        RAISE EXCEPTION 'q4pg: the q4pg_notify trigger of queue % has no lock key', p_queue
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'The trigger was changed by hand; only q4pg_create_queue() makes it.';
    END IF;
END
$$;

-- q4pg_queue_settings: a queue's data type and data length limit.
-- Takes a queue; returns (data_type, data_length); raises as q4pg_queue_info.
CREATE FUNCTION @extschema@.q4pg_queue_settings(
    queue regclass,
    OUT data_type text,
    OUT data_length integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT i.data_type, i.data_length FROM @extschema@.q4pg_queue_info(queue) AS i;
END;
