//! The wire protocol with a real driver (tokio-postgres): prepared statements with typed
//! parameters in binary format, result type OIDs, errors with SQLSTATE and position, many
//! connections, and a client that sends garbage or vanishes.

mod common;

use common::{query_rows, sqlstate, Server};
use tokio::io::AsyncWriteExt;
use tokio_postgres::types::Type;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_parameters() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price NUMERIC(10,2), qty BIGINT, ok BOOLEAN, seen TIMESTAMP, day DATE, ratio DOUBLE PRECISION, small SMALLINT, r REAL, raw BYTEA, tz TIMESTAMPTZ, span INTERVAL);
         CREATE MATERIALIZED VIEW totals AS SELECT ok, count(*) AS n, sum(qty) AS q FROM items GROUP BY ok;",
    )
    .await
    .unwrap();
    let insert = c
        .prepare("INSERT INTO items (id, name, qty, ok, ratio) VALUES ($1, $2, $3, $4, $5)")
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        &[Type::INT4, Type::TEXT, Type::INT8, Type::BOOL, Type::FLOAT8]
    );
    for i in 0..5i32 {
        let n = c
            .execute(
                &insert,
                &[
                    &i,
                    &format!("item {i}"),
                    &(i as i64 * 10),
                    &(i % 2 == 0),
                    &(i as f64 / 2.0),
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    // Binary results with the right types.
    let rows = c
        .query(
            "SELECT id, name, qty, ok, ratio FROM items WHERE id >= $1 ORDER BY id",
            &[&3i32],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let id: i32 = rows[0].get(0);
    let name: String = rows[0].get(1);
    let qty: i64 = rows[0].get(2);
    let ok: bool = rows[0].get(3);
    let ratio: f64 = rows[0].get(4);
    assert_eq!(
        (id, name.as_str(), qty, ok, ratio),
        (3, "item 3", 30, false, 1.5)
    );
    // Result column types map to Postgres OIDs.
    let stmt = c
        .prepare(
            "SELECT id, name, price, qty, ok, seen, day, ratio, small, r, raw, tz, span FROM items",
        )
        .await
        .unwrap();
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        vec![
            Type::INT4,
            Type::TEXT,
            Type::NUMERIC,
            Type::INT8,
            Type::BOOL,
            Type::TIMESTAMP,
            Type::DATE,
            Type::FLOAT8,
            Type::INT2,
            Type::FLOAT4,
            Type::BYTEA,
            Type::TIMESTAMPTZ,
            Type::INTERVAL
        ]
    );
    // The view saw every prepared insert.
    let rows = query_rows(&c, "SELECT ok, n, q FROM totals ORDER BY ok")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec!["f", "2", "40"], vec!["t", "3", "60"]]);
    // Parameters in UPDATE and DELETE.
    c.execute("UPDATE items SET qty = $1 WHERE id = $2", &[&100i64, &0i32])
        .await
        .unwrap();
    c.execute("DELETE FROM items WHERE name = $1", &[&"item 4"])
        .await
        .unwrap();
    let rows = query_rows(&c, "SELECT ok, n, q FROM totals ORDER BY ok")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec!["f", "2", "40"], vec!["t", "2", "120"]]);
    // A parameter is a value, never SQL.
    c.execute(
        "INSERT INTO items (id, name) VALUES ($1, $2)",
        &[&9i32, &"x'); DROP TABLE items; --"],
    )
    .await
    .unwrap();
    let rows = query_rows(&c, "SELECT name FROM items WHERE id = 9")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec!["x'); DROP TABLE items; --"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstate_and_position() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute("CREATE STREAM s (a INT, b TEXT)")
        .await
        .unwrap();
    let e = c.simple_query("SELECT a FROM s WHERE").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42601");
    let db = e.as_db_error().unwrap();
    assert!(
        matches!(
            db.position(),
            Some(tokio_postgres::error::ErrorPosition::Original(22))
        ),
        "{:?}",
        db.position()
    );
    let e = c.simple_query("SELECT * FROM nope").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    let e = c.simple_query("SELECT nope FROM s").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42703");
    let e = c.simple_query("CREATE STREAM s (x INT)").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42P07");
    let e = c
        .simple_query("INSERT INTO s VALUES ('x', 'y')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22P02");
    let e = c
        .simple_query("INSERT INTO s VALUES (1, 'a', 3)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42601");
    // A bad row in a multi-row INSERT applies nothing.
    let e = c
        .simple_query("INSERT INTO s VALUES (1, 'a'), ('bad', 'b')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22P02");
    assert_eq!(
        query_rows(&c, "SELECT count(*) FROM s").await.unwrap(),
        vec![vec!["0"]]
    );
    // The session is still usable after errors.
    c.simple_query("INSERT INTO s VALUES (1, 'a')")
        .await
        .unwrap();
    assert_eq!(
        query_rows(&c, "SELECT count(*) FROM s").await.unwrap(),
        vec![vec!["1"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_do_not_hurt_others() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute("CREATE STREAM s (a INT); INSERT INTO s VALUES (1)")
        .await
        .unwrap();
    // Garbage bytes instead of a startup message.
    for junk in [
        &b"\x00\x00\x00\x08\xde\xad\xbe\xef"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        &[0xff; 64][..],
    ] {
        let mut raw = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
        let _ = raw.write_all(junk).await;
        drop(raw);
    }
    // A client that disconnects in the middle of a query.
    {
        let other = server.connect().await;
        let fut = other.simple_query("SELECT count(*) FROM s, s AS s2, s AS s3");
        drop(tokio::time::timeout(std::time::Duration::from_millis(1), fut).await);
        drop(other);
    }
    // 100 connections at once.
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(server.connect().await);
    }
    for (i, cl) in clients.iter().enumerate().step_by(10) {
        cl.simple_query(&format!("INSERT INTO s VALUES ({i})"))
            .await
            .unwrap();
    }
    drop(clients);
    assert_eq!(
        query_rows(&c, "SELECT count(*) FROM s").await.unwrap(),
        vec![vec!["11"]]
    );
}
