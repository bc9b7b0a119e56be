-- anatomy: PL/pgSQL function (pinned search_path) around a static INSERT
SELECT anatomy.insert_static('t', '{"n":1}');
