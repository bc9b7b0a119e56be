-- anatomy: plain INSERT, an empty PL/pgSQL statement trigger with a transition table
INSERT INTO anatomy.q_trigger_rows (tag, data) VALUES ('t', '{"n":1}');
