"""psycopg 3 against eddy: extended protocol with server-side parameters (binary ints,
text strings with unknown type), Decimal/datetime/bool/None values, a transaction as the
driver runs it, binary results, and a live view read after writes. Exits non-zero on any
mismatch. Usage: psycopg_client.py PORT"""
import datetime
import decimal
import sys

import psycopg

port = int(sys.argv[1])
conn = psycopg.connect(f"host=127.0.0.1 port={port} user=eddy dbname=eddy")

with conn.cursor() as cur:
    cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, customer TEXT, amount NUMERIC(10,2), placed TIMESTAMP, paid BOOLEAN)")
    cur.execute(
        "CREATE MATERIALIZED VIEW per_customer AS SELECT customer, count(*) AS n, sum(amount) AS total FROM orders WHERE paid GROUP BY customer"
    )
conn.commit()

rows = [
    (1, "ann", decimal.Decimal("10.50"), datetime.datetime(2026, 1, 1, 10, 0, 0), True),
    (2, "bob", decimal.Decimal("3.25"), datetime.datetime(2026, 1, 1, 11, 30, 0), True),
    (3, "ann", decimal.Decimal("7.00"), datetime.datetime(2026, 1, 2, 9, 15, 0), False),
    (4, "ann", decimal.Decimal("1.25"), datetime.datetime(2026, 1, 3, 8, 0, 0), True),
    (5, "cy", None, None, None),
]
with conn.cursor() as cur:
    # More than 5 executions: psycopg switches to a named prepared statement.
    for r in rows * 2:
        cur.execute("INSERT INTO orders (id, customer, amount, placed, paid) VALUES (%s, %s, %s, %s, %s)", r)
conn.commit()

with conn.cursor() as cur:
    cur.execute("SELECT customer, n, total FROM per_customer ORDER BY customer")
    got = cur.fetchall()
    assert got == [("ann", 2, decimal.Decimal("11.75")), ("bob", 1, decimal.Decimal("3.25"))], got

    cur.execute("SELECT id, customer, amount, placed, paid FROM orders WHERE id = %s", (3,))
    got = cur.fetchone()
    assert got == rows[2], got

    cur.execute("SELECT id FROM orders WHERE customer = %s AND placed > %s ORDER BY id", ("ann", datetime.datetime(2026, 1, 1, 12, 0)))
    assert cur.fetchall() == [(3,), (4,)]

    cur.execute("SELECT amount FROM orders WHERE id = %s", (5,))
    assert cur.fetchone() == (None,)

# Binary results.
with conn.cursor(binary=True) as cur:
    cur.execute("SELECT id, customer, amount, placed, paid FROM orders WHERE id = %s", (1,))
    got = cur.fetchone()
    assert got == rows[0], got

# Writes through parameters update the view at once.
with conn.cursor() as cur:
    cur.execute("UPDATE orders SET paid = %s WHERE id = %s", (True, 3))
    cur.execute("SELECT n, total FROM per_customer WHERE customer = %s", ("ann",))
    assert cur.fetchone() == (3, decimal.Decimal("18.75"))
conn.commit()

# Errors keep their SQLSTATE.
try:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM nope WHERE x = %s", (1,))
    raise SystemExit("expected an error")
except psycopg.errors.UndefinedTable:
    conn.rollback()

# Server-side (named) cursors: DECLARE, Describe Portal, FETCH FORWARD n, CLOSE.
with conn.cursor(name="srv") as cur:
    cur.itersize = 2
    cur.execute("SELECT id FROM orders WHERE id >= %s ORDER BY id", (1,))
    assert cur.description[0].name == "id"
    ids = [r[0] for r in cur]
    assert ids == sorted(ids) and len(ids) >= 3, ids
conn.commit()

# A live view read while inserts happen, and a push query through a cursor.
with conn.cursor() as cur:
    cur.execute("DECLARE live CURSOR FOR SUBSCRIBE per_customer WITH (SNAPSHOT = false)")
    other = psycopg.connect(f"host=127.0.0.1 port={port} user=eddy dbname=eddy", autocommit=True)
    other.execute("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)",
                  (100, "zed", decimal.Decimal("1.00"), datetime.datetime(2026, 1, 1), True))
    cur.execute("FETCH ALL live WITH (timeout = '5s')")
    rows = cur.fetchall()
    assert [r[1:] for r in rows] == [(1, "zed", 1, decimal.Decimal("1.00"))], rows
    cur.execute("CLOSE live")
conn.commit()

print("psycopg ok")
