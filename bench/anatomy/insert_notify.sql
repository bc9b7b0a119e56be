-- anatomy: plain INSERT, q4pg 1.0's first trigger: transition table, tag loop, NOTIFY
INSERT INTO anatomy.q_notify (tag, data) VALUES ('t', '{"n":1}');
