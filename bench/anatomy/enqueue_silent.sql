-- anatomy: q4pg_enqueue (checks + settings from the session cache + dynamic INSERT), trigger disabled
SELECT q4pg_enqueue('anatomy.q_silent', 't', '{"n":1}');
