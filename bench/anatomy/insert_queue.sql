-- anatomy: plain INSERT into the q4pg queue: the installed q4pg_notify trigger
INSERT INTO q (tag, data) VALUES ('t', '{"n":1}');
