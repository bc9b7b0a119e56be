-- anatomy: candidate: PL/pgSQL function, INSERT prepared once per session
SELECT anatomy.insert_prepared('anatomy.q_silent', 't', '{"n":1}');
