-- The row types of 1.1's functions (state: the 1.0 -> 1.1 upgrade script
-- includes this file).  Their columns are named like the functions'
-- parameters, which PL/pgSQL forbids for OUT parameters: hence types.

-- A message taken by q4pg_take: with its attempts so far and last error.
CREATE TYPE @extschema@.q4pg_taken_message AS (
    id         bigint,
    tag        text,
    data       text,
    created_at timestamptz,
    attempts   integer,
    last_error text
);

-- A message leased by q4pg_lease: with its lease's token and end.
CREATE TYPE @extschema@.q4pg_leased_message AS (
    id          bigint,
    tag         text,
    data        text,
    created_at  timestamptz,
    attempts    integer,
    last_error  text,
    lease_token uuid,
    lease_until timestamptz
);

-- A message as q4pg_list shows it: run_at is when it is (or comes) due,
-- while leased the lease's end; leased_until null unless leased.
CREATE TYPE @extschema@.q4pg_listed_message AS (
    id           bigint,
    tag          text,
    data         text,
    created_at   timestamptz,
    run_at       timestamptz,
    attempts     integer,
    last_error   text,
    leased_until timestamptz
);

-- A dead letter as q4pg_dead_letters shows it.
CREATE TYPE @extschema@.q4pg_dead_letter AS (
    id         bigint,
    tag        text,
    data       text,
    created_at timestamptz,
    attempts   integer,
    last_error text,
    dead_at    timestamptz
);
