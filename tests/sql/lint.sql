-- Static checks of the extension's own functions.
\set VERBOSITY terse
CREATE EXTENSION q4pg;
CREATE EXTENSION plpgsql_check;
SELECT q4pg_create_queue('lintq') IS NOT NULL AS created;

-- every function pins search_path and none is SECURITY DEFINER
SELECT p.oid::regprocedure AS function_without_pinned_search_path
  FROM pg_depend AS d JOIN pg_proc AS p ON p.oid = d.objid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_proc'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'q4pg')
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);
SELECT count(*) AS security_definer
  FROM pg_depend AS d JOIN pg_proc AS p ON p.oid = d.objid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_proc'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'q4pg')
   AND p.prosecdef;

-- plpgsql_check finds nothing in any PL/pgSQL function (the trigger function
-- is checked against a real queue table and its transition table; "extra"
-- warnings are off: they cannot see through RETURN QUERY EXECUTE)
SELECT p.oid::regprocedure AS function, c.lineno, c.level, c.message
  FROM pg_depend AS d
  JOIN pg_proc AS p ON p.oid = d.objid
  JOIN pg_language AS l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
 CROSS JOIN LATERAL plpgsql_check_function_tb(
        p.oid,
        relid => CASE WHEN p.prorettype = 'trigger'::regtype THEN 'lintq'::regclass ELSE 0 END,
        newtable => CASE WHEN p.prorettype = 'trigger'::regtype THEN 'q4pg_new_rows' END,
        fatal_errors => false,
        extra_warnings => false) AS c
 WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_proc'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'q4pg')
 ORDER BY 1;

DROP TABLE lintq;
DROP EXTENSION plpgsql_check;
DROP EXTENSION q4pg;
