-- anatomy: plain INSERT, an empty PL/pgSQL statement trigger (no transition table)
INSERT INTO anatomy.q_trigger_bare (tag, data) VALUES ('t', '{"n":1}');
