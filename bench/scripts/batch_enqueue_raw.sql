-- baseline: :batch messages in one plain multi-row INSERT (text array in, as a client sends it)
INSERT INTO raw (tag, data) SELECT 't', d::json FROM unnest(array_fill('{"n":1}'::text, ARRAY[(:batch)::integer])) AS d;
