-- baseline: one message, plain INSERT
INSERT INTO raw (tag, data) VALUES ('t', '{"n":1}');
