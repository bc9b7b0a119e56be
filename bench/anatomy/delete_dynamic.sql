-- anatomy: PL/pgSQL function, dynamic DELETE (RETURN QUERY EXECUTE)
SELECT * FROM anatomy.delete_dynamic('anatomy.q_silent', 't');
