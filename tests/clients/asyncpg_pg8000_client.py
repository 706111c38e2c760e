"""asyncpg (binary everything, ParameterDescription inference) and pg8000 (startup with
user only, Parse/Describe-statement) against eddy: parameterized writes, a live view,
typed values, a push query through a cursor. Usage: asyncpg_pg8000_client.py PORT"""
import asyncio
import datetime
import decimal
import sys

import asyncpg
import pg8000.native

port = int(sys.argv[1])


async def with_asyncpg():
    c = await asyncpg.connect(host="127.0.0.1", port=port, user="eddy", database="eddy")
    await c.execute("CREATE TABLE o (id INT PRIMARY KEY, name TEXT, amount NUMERIC(10,2), "
                    "at TIMESTAMP, ok BOOLEAN, f DOUBLE PRECISION)")
    await c.execute("CREATE MATERIALIZED VIEW per AS SELECT name, count(*) AS n, sum(amount) AS total "
                    "FROM o GROUP BY name")
    for i in range(3):
        await c.execute("INSERT INTO o VALUES ($1, $2, $3, $4, $5, $6)", i, "a" if i % 2 else "b",
                        decimal.Decimal("1.25"), datetime.datetime(2026, 1, 1, 0, 0, i), i != 2, 1.5)
    row = await c.fetchrow("SELECT * FROM o WHERE id = $1", 1)
    assert tuple(row) == (1, "a", decimal.Decimal("1.25"), datetime.datetime(2026, 1, 1, 0, 0, 1), True, 1.5), row
    rows = await c.fetch("SELECT name, n, total FROM per ORDER BY name")
    assert [tuple(r) for r in rows] == [("a", 1, decimal.Decimal("1.25")), ("b", 2, decimal.Decimal("2.50"))], rows
    assert await c.fetchval("SELECT count(*) FROM o WHERE ok = $1", False) == 1
    # A push query through a cursor, while another connection writes.
    async with c.transaction():
        await c.execute("DECLARE live CURSOR FOR SUBSCRIBE per WITH (SNAPSHOT = false)")
        w = await asyncpg.connect(host="127.0.0.1", port=port, user="eddy", database="eddy")
        await w.execute("INSERT INTO o VALUES (9, 'c', 2.00, '2026-01-01 00:01:00', true, 0)")
        await w.close()
        changes = await c.fetch("FETCH ALL live WITH (timeout = '5s')")
        assert [(r["eddy_diff"], r["name"], r["n"]) for r in changes] == [(1, "c", 1)], changes
        await c.execute("CLOSE live")
    try:
        await c.fetch("SELECT * FROM nope WHERE x = $1", 1)
        raise SystemExit("expected an error")
    except asyncpg.exceptions.UndefinedTableError:
        pass
    await c.close()


def with_pg8000():
    c = pg8000.native.Connection("eddy", host="127.0.0.1", port=port)
    assert c.run("SELECT id, name FROM o WHERE id = :i", i=2) == [[2, "b"]]
    c.run("INSERT INTO o VALUES (:id, :name, :amount, :at, :ok, :f)", id=10, name="a",
          amount=decimal.Decimal("3.00"), at=datetime.datetime(2026, 1, 1, 0, 2), ok=True, f=2.5)
    assert c.run("SELECT name, n FROM per ORDER BY name") == [["a", 2], ["b", 2], ["c", 1]]
    c.close()


asyncio.run(with_asyncpg())
with_pg8000()
print("asyncpg and pg8000 ok")
