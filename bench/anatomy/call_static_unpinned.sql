-- anatomy: PL/pgSQL function without SET search_path around a static INSERT
SELECT anatomy.insert_static_unpinned('t', '{"n":1}');
