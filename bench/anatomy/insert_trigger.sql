-- anatomy: plain INSERT, q4pg's statement trigger + transition table, no NOTIFY
INSERT INTO anatomy.q_trigger (tag, data) VALUES ('t', '{"n":1}');
