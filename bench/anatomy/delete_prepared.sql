-- anatomy: candidate: PL/pgSQL function, DELETE prepared once per session
SELECT * FROM anatomy.delete_prepared('anatomy.q_silent', 't');
