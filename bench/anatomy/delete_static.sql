-- anatomy: PL/pgSQL function around a static DELETE
SELECT * FROM anatomy.delete_static('t');
