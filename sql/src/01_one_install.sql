
-- One q4pg per database.  q4pg install (the Python package's installer) runs
-- these same scripts as plain SQL, where CREATE EXTENSION is not possible, and
-- records that in its table q4pg_install: CREATE EXTENSION q4pg refuses such a
-- database (in the schema of that install it would fail anyway, on the first
-- object that exists; in another it would make a second q4pg).  q4pg install
-- itself checks before it runs this, and makes its table after.
DO $$
DECLARE
    v_schema text := (SELECT c.relnamespace::pg_catalog.regnamespace::pg_catalog.text
                        FROM pg_catalog.pg_class AS c
                       WHERE c.relname OPERATOR(pg_catalog.=) 'q4pg_install'
                         AND c.relkind OPERATOR(pg_catalog.=) 'r'
                       LIMIT 1);
BEGIN
    IF v_schema IS NOT NULL THEN
        RAISE EXCEPTION 'q4pg: q4pg is installed in this database already, by q4pg install, in schema %',
                v_schema
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Upgrade it with q4pg upgrade, or remove it with q4pg uninstall first.';
    END IF;
END
$$;
