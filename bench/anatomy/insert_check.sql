-- anatomy: plain INSERT into a queue-shaped table with q4pg's CHECK, no trigger
INSERT INTO anatomy.q_silent (tag, data) VALUES ('t', '{"n":1}');
