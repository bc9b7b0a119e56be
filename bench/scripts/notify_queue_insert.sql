-- diagnostic: a plain INSERT into the q4pg queue (what a producer in any language
-- may do): the gated trigger, nobody waiting
INSERT INTO q (tag, data) VALUES ('t', '{"n":1}');
