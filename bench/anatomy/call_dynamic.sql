-- anatomy: PL/pgSQL function, dynamic INSERT (format + EXECUTE)
SELECT anatomy.insert_dynamic('anatomy.q_silent', 't', '{"n":1}');
