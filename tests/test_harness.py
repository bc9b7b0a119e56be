"""The test harness itself: the cluster is real and each test's database has q4pg."""

import q4pg


def test_database_has_the_extension(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'q4pg'")
        assert cur.fetchone() == (q4pg.__version__,)


def test_bare_database_has_no_extension(bare_dsn):
    import psycopg2
    c = psycopg2.connect(bare_dsn)
    with c.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'q4pg'")
        assert cur.fetchone() == (0,)
    c.close()


def test_psql_reaches_the_same_database(psql, conn):
    with conn.cursor() as cur:
        cur.execute('SELECT current_database()')
        name = cur.fetchone()[0]
    assert psql('SELECT current_database()').stdout.strip() == name
