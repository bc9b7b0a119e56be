-- anatomy: q4pg_enqueue (settings lookup + checks + dynamic INSERT), trigger disabled
SELECT q4pg_enqueue('anatomy.q_silent', 't', '{"n":1}');
