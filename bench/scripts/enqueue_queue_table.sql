-- diagnostic: the baseline's INSERT, into the q4pg queue table (what the table costs)
INSERT INTO q (tag, data) VALUES ('t', '{"n":1}');
