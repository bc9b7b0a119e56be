-- diagnostic: plain INSERT into a table with a per-row pg_notify trigger
INSERT INTO raw_notify (tag, data) VALUES ('t', '{"n":1}');
