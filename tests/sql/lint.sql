-- Static checks of the extension's own functions.
\set VERBOSITY terse
CREATE EXTENSION q4pg;
CREATE EXTENSION plpgsql_check;
SELECT q4pg_create_queue('lintq') IS NOT NULL AS created;

-- every function pins search_path, but for the hot path (q4pg_route, the
-- functions it serves and the JSON forms of q4pg_enqueue), which is unpinned on purpose (sql/src/60_messages.sql)
SELECT p.oid::regprocedure AS function_without_pinned_search_path
  FROM pg_depend AS d JOIN pg_proc AS p ON p.oid = d.objid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_proc'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'q4pg')
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY 1;

-- the unpinned PL/pgSQL functions, the queue's generated ones among them,
-- qualify every operator (OPERATOR(pg_catalog.x)) and every cast
-- (::pg_catalog.type): with string literals, qualified operators and
-- PL/pgSQL's :=, ERRCODE =, HINT =, DETAIL =, GET DIAGNOSTICS x = and UPDATE's SET column = taken out, no operator character is left, and every :: is
-- followed by pg_catalog.  (q4pg_route has an SQL-standard body: PostgreSQL
-- binds its names when the extension is created, whatever the search_path.)
-- the names of the queue's generated functions (q4pg_door_prefix)
SELECT '^q4pg_lintq_(' || string_agg(suffix, '|') || ')$' AS generated
  FROM q4pg_queue_function_names() \gset
CREATE TEMP VIEW unpinned AS
SELECT regexp_replace(p.oid::regprocedure::text, '^q4pg_lintq_', 'q4pg_<name>_') AS function,
       regexp_replace(regexp_replace(regexp_replace(p.prosrc,
           '''([^'']|'''')*''', '', 'g'),
           'OPERATOR\(pg_catalog\.[^)]+\)', '', 'g'),
           '(:=|(ERRCODE|HINT|DETAIL) =|DIAGNOSTICS\s+[a-z_]+ = |(SET\s+|,\s*)[a-z_]+ = )', '', 'g') AS code
  FROM pg_proc AS p
 WHERE p.oid IN (SELECT d.objid FROM pg_depend AS d
                  WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_proc'::regclass
                    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'q4pg'))
       AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
       AND p.prosqlbody IS NULL
    OR p.proname ~ :'generated' AND p.pronamespace = 'public'::regnamespace;
SELECT function, 'operator' AS unqualified, (regexp_match(code, '.{0,20}[=<>|+*/-].{0,20}'))[1] AS near
  FROM unpinned
 WHERE regexp_replace(code, '(--[^\n]*|RETURNS[^\n]*|\$[a-z]*\$)', '', 'g') ~ '[=<>|+*/-]'
UNION ALL
SELECT function, 'cast', (regexp_match(code, '.{0,20}::(?!pg_catalog\.).{0,20}'))[1]
  FROM unpinned
 WHERE code ~ '::(?!pg_catalog\.)'
 ORDER BY 1;
SELECT count(*) = (SELECT count(*) FROM q4pg_queue_function_names()) AS generated_functions_checked FROM unpinned WHERE function LIKE 'q4pg\_<name>\_%';

SELECT count(*) AS security_definer
  FROM pg_depend AS d JOIN pg_proc AS p ON p.oid = d.objid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_proc'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'q4pg')
   AND p.prosecdef;

-- plpgsql_check finds nothing in any PL/pgSQL function (the trigger function
-- is checked against a real queue table and its transition table; "extra"
-- warnings are off: they cannot see through RETURN QUERY EXECUTE)
SELECT p.oid::regprocedure::text AS function, c.lineno, c.level, c.message
  FROM pg_depend AS d
  JOIN pg_proc AS p ON p.oid = d.objid
  JOIN pg_language AS l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
 CROSS JOIN LATERAL plpgsql_check_function_tb(
        p.oid,
        relid => CASE WHEN p.proname = 'q4pg_ring_tock' THEN 'q4pg_ring_ticks'::regclass
                      WHEN p.prorettype = 'trigger'::regtype THEN 'lintq'::regclass ELSE 0 END,
        newtable => CASE WHEN p.prorettype = 'trigger'::regtype AND p.proname <> 'q4pg_ring_tock'
                         THEN 'q4pg_new_rows' END,
        fatal_errors => false,
        extra_warnings => false) AS c
 WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_proc'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'q4pg')
UNION ALL
SELECT regexp_replace(p.oid::regprocedure::text, '^q4pg_lintq_', 'q4pg_<name>_'),
       c.lineno, c.level, c.message
  FROM pg_proc AS p
 CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid, fatal_errors => false,
                                              extra_warnings => false) AS c
 WHERE p.proname ~ :'generated' AND p.pronamespace = 'public'::regnamespace
 ORDER BY 1;

-- clean up in a new session: plpgsql_check leaves this one's compiled functions
-- in a state where the next call of q4pg_queue_info fails ("unrecognized node
-- type"); a session that ran no plpgsql_check never sees that
\c
SELECT q4pg_drop_queue('lintq');
DROP EXTENSION plpgsql_check;
DROP EXTENSION q4pg;
