-- anatomy: candidate: plain INSERT, q4pg's trigger with advisory-lock checks instead of NOTIFY (no listener)
INSERT INTO anatomy.q_gated (tag, data) VALUES ('t', '{"n":1}');
