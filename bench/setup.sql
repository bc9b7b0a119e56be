-- Tables the benchmarks share, made once per run on the bench cluster.
--
-- q:          the q4pg queue every q4pg measurement uses (json, default length).
-- raw:        the baseline: a plain table of the same shape, no constraint, no trigger.
-- raw_notify: the same again with a per-row pg_notify trigger: what NOTIFY costs.
-- raw_lease:  the baseline of leases: a plain table of the shape of a 1.1 queue (due time,
--             attempts, last error, lease token, dead letter mark), index (tag, run_at, id).

CREATE EXTENSION IF NOT EXISTS q4pg;
SELECT q4pg_create_queue('q');

CREATE TABLE raw (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag text NOT NULL,
    data json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON raw (tag, id);

CREATE TABLE raw_lease (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag text NOT NULL,
    data json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    lease_token uuid,
    dead_at timestamptz
);
CREATE INDEX ON raw_lease (tag, run_at, id);

CREATE TABLE raw_notify (LIKE raw INCLUDING ALL);
CREATE FUNCTION raw_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('raw_notify', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER raw_notify AFTER INSERT ON raw_notify
    FOR EACH ROW EXECUTE FUNCTION raw_notify_row();
