"""SQLAlchemy 2 (+ pandas.read_sql) against eddy: connect, reflect the schema with the
inspector, read a live view while rows arrive. Usage: sqlalchemy_client.py PORT"""
import sys

import pandas as pd
import sqlalchemy as sa

port = sys.argv[1]
for driver in ("psycopg", "psycopg2"):
    try:
        __import__(driver)
    except ImportError:
        continue
    engine = sa.create_engine(f"postgresql+{driver}://eddy@127.0.0.1:{port}/eddy")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if driver == "psycopg":
            conn.execute(sa.text(
                "CREATE TABLE sa_orders (id INT PRIMARY KEY, customer VARCHAR(20) NOT NULL, "
                "amount DOUBLE PRECISION, price NUMERIC(10,2), at TIMESTAMP)"))
            conn.execute(sa.text("CREATE STREAM sa_clicks (url TEXT, n BIGINT)"))
            conn.execute(sa.text(
                "CREATE MATERIALIZED VIEW sa_totals AS SELECT customer, sum(amount) AS total "
                "FROM sa_orders GROUP BY customer"))
            conn.execute(sa.text("CREATE VIEW sa_big AS SELECT id, amount FROM sa_orders WHERE amount > 10"))
        insp = sa.inspect(engine)
        assert insp.get_schema_names() == ["information_schema", "public"], insp.get_schema_names()
        tables = sorted(insp.get_table_names())
        assert tables == ["sa_clicks", "sa_orders"], tables
        assert insp.get_view_names() == ["sa_big"], insp.get_view_names()
        assert insp.get_materialized_view_names() == ["sa_totals"], insp.get_materialized_view_names()
        cols = {c["name"]: c for c in insp.get_columns("sa_orders")}
        assert list(cols) == ["id", "customer", "amount", "price", "at"], list(cols)
        assert isinstance(cols["id"]["type"], sa.Integer), cols["id"]
        assert isinstance(cols["customer"]["type"], sa.String) and cols["customer"]["type"].length == 20, cols["customer"]
        assert cols["customer"]["nullable"] is False and cols["amount"]["nullable"] is True
        assert isinstance(cols["price"]["type"], sa.Numeric) and cols["price"]["type"].precision == 10
        assert isinstance(cols["at"]["type"], sa.DateTime)
        mv_cols = [c["name"] for c in insp.get_columns("sa_totals")]
        assert mv_cols == ["customer", "total"], mv_cols
        pk = insp.get_pk_constraint("sa_orders")
        assert pk["constrained_columns"] == ["id"], pk
        assert insp.get_foreign_keys("sa_orders") == []
        assert insp.has_table("sa_orders") and not insp.has_table("nope")
        md = sa.MetaData()
        md.reflect(bind=engine, views=True)
        assert set(md.tables) >= {"sa_orders", "sa_clicks", "sa_big", "sa_totals"}, set(md.tables)

        # A live view read with pandas while rows arrive; server-side parameters.
        for i in range(3):
            conn.execute(sa.text("INSERT INTO sa_orders VALUES (:id, :c, :a, :p, '2026-01-01 00:00:00')"),
                         {"id": i + (10 if driver == "psycopg2" else 0), "c": "ann" if i % 2 else "bob",
                          "a": 10.5 * (i + 1), "p": "1.25"})
            df = pd.read_sql("SELECT customer, total FROM sa_totals ORDER BY customer", conn)
            assert list(df.columns) == ["customer", "total"], df.columns
        df = pd.read_sql(sa.text("SELECT id, amount FROM sa_big WHERE amount > :x ORDER BY id"), conn, params={"x": 20})
        assert df["id"].tolist()[:2] == [1, 2], df

        # Subscribing to changes through a cursor while another connection writes.
        conn.exec_driver_sql(f"DECLARE live_{driver} CURSOR FOR SUBSCRIBE sa_totals WITH (SNAPSHOT = false)")
        with engine.connect() as other:
            other.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text("INSERT INTO sa_orders VALUES (:id, 'zed', 1.0, 1.0, '2026-01-01 00:00:00')"),
                {"id": 100 if driver == "psycopg" else 101})
        rows = conn.exec_driver_sql(f"FETCH ALL live_{driver} WITH (timeout = '5s')").fetchall()
        assert [(r[1], r[2]) for r in rows][-1:] and rows[-1][2] == "zed", rows
        conn.exec_driver_sql(f"CLOSE live_{driver}")
    print(driver, "ok")
