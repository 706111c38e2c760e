//! Push queries over the wire: SUBSCRIBE and ksqlDB's SELECT ... EMIT CHANGES deliver each
//! committed change as it happens, with its diff, and end on LIMIT or when the relation is
//! dropped (with an error).

mod common;

use std::time::Duration;

use common::Server;
use futures::StreamExt;
use tokio_postgres::SimpleQueryMessage;

async fn next_row(
    stream: &mut (impl futures::Stream<Item = Result<SimpleQueryMessage, tokio_postgres::Error>>
              + Unpin),
) -> Vec<String> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a change arrives in time")
            .expect("stream open")
            .expect("no error");
        if let SimpleQueryMessage::Row(r) = msg {
            return (0..r.len())
                .map(|i| r.get(i).unwrap_or("NULL").to_string())
                .collect();
        }
    }
}

/// How a push query ends: its error (`None` if it ended without one), within 10 s.
async fn stream_end(
    stream: &mut (impl futures::Stream<Item = Result<SimpleQueryMessage, tokio_postgres::Error>>
              + Unpin),
) -> Option<tokio_postgres::Error> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await
    .expect("the push query ends in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_streams_changes_as_they_commit() {
    let server = Server::start();
    let writer = server.connect().await;
    writer
        .batch_execute(
            "CREATE STREAM s (k TEXT, v INT);
             CREATE TABLE totals AS SELECT k, sum(v) AS total FROM s GROUP BY k;
             INSERT INTO s VALUES ('a', 1);",
        )
        .await
        .unwrap();
    let reader = server.connect().await;
    let stream = reader.simple_query_raw("SUBSCRIBE totals").await.unwrap();
    futures::pin_mut!(stream);
    // The snapshot first: a table's current rows with diff +1.
    let first = next_row(&mut stream).await;
    assert_eq!(&first[1..], &["1", "a", "1"]);
    // Then each committed change, as it commits: the update is -old, +new.
    writer
        .batch_execute("INSERT INTO s VALUES ('a', 4)")
        .await
        .unwrap();
    let mut changes = vec![next_row(&mut stream).await, next_row(&mut stream).await];
    changes.sort();
    assert_eq!(
        changes.iter().map(|r| r[1..].to_vec()).collect::<Vec<_>>(),
        vec![vec!["-1", "a", "1"], vec!["1", "a", "5"]]
    );
    // Dropping the relation ends the subscription with an error.
    writer.batch_execute("DROP TABLE totals").await.unwrap();
    let e = stream_end(&mut stream).await.expect("ends with an error");
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "57014");
    assert!(db.message().contains("was dropped"), "{}", db.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_changes_push_query_with_limit() {
    let server = Server::start();
    let writer = server.connect().await;
    writer
        .batch_execute(
            "CREATE STREAM clicks (user_id INT, page TEXT); INSERT INTO clicks VALUES (0, '/old')",
        )
        .await
        .unwrap();
    let reader = server.connect().await;
    let push = tokio::spawn(async move {
        reader
            .simple_query("SELECT * FROM clicks EMIT CHANGES LIMIT 2")
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .batch_execute(
            "INSERT INTO clicks VALUES (1, '/a'); INSERT INTO clicks VALUES (2, '/b'), (3, '/c')",
        )
        .await
        .unwrap();
    let msgs = tokio::time::timeout(Duration::from_secs(10), push)
        .await
        .expect("ends at LIMIT")
        .unwrap()
        .unwrap();
    let rows: Vec<Vec<String>> = msgs
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (1..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    // A stream's push query starts from now (the old row is not replayed), one row per change.
    assert_eq!(rows, vec![vec!["1", "1", "/a"], vec!["1", "2", "/b"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_reads_a_push_query_with_copy() {
    let server = Server::start();
    let writer = server.connect().await;
    writer
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'x')",
        )
        .await
        .unwrap();
    let port = server.port.to_string();
    let psql = tokio::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "eddy",
            "-d",
            "eddy",
            "-X",
            "-c",
        ])
        .arg("COPY (SUBSCRIBE t) TO STDOUT")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("psql is required: the test command installs postgresql-client");
    tokio::time::sleep(Duration::from_millis(500)).await;
    writer
        .batch_execute("UPDATE t SET name = 'y' WHERE id = 1")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Ending the subscription (DROP) ends the COPY, and psql prints what it received.
    writer.batch_execute("DROP TABLE t").await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), psql.wait_with_output())
        .await
        .expect("psql ends")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split('\t').skip(1).collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec!["1", "1", "x"],
            vec!["-1", "1", "x"],
            vec!["1", "1", "y"]
        ],
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_a_push_query() {
    let server = Server::start();
    let writer = server.connect().await;
    writer
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let reader = server.connect().await;
    let token = reader.cancel_token();
    let stream = reader.simple_query_raw("SUBSCRIBE t").await.unwrap();
    futures::pin_mut!(stream);
    assert_eq!(&next_row(&mut stream).await[1..], &["1", "1"]);
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel request sent");
    let end = stream_end(&mut stream)
        .await
        .expect("the push query ends on cancel with an error");
    assert_eq!(common::sqlstate(&end), "57014", "{end}");
    drop(stream);
    // The connection is usable afterwards, and other connections never noticed.
    let rows = common::query_rows(&reader, "SELECT count(*) FROM t")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec!["1"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_ctrl_c_cancels_a_push_query() {
    let server = Server::start();
    let writer = server.connect().await;
    writer
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let port = server.port.to_string();
    // psql sends a CancelRequest on SIGINT, as when the user presses Ctrl-C.
    let out = tokio::process::Command::new("timeout")
        .args([
            "-s",
            "INT",
            "2",
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "eddy",
            "-d",
            "eddy",
            "-X",
            "-c",
            "SUBSCRIBE t",
        ])
        .output()
        .await
        .expect("psql");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_over_queries_and_push_queries() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE t (id INT PRIMARY KEY, name TEXT);
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .await
    .unwrap();
    let rows = |sql: &'static str| {
        let c = &c;
        async move { common::query_rows(c, sql).await.unwrap() }
    };
    // Over a query: the next n rows each time, then none.
    c.batch_execute("BEGIN; DECLARE q CURSOR FOR SELECT id, name FROM t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows("FETCH 2 q").await,
        vec![vec!["1", "a"], vec!["2", "b"]]
    );
    assert_eq!(rows("FETCH FORWARD ALL FROM q").await, vec![vec!["3", "c"]]);
    assert!(rows("FETCH q").await.is_empty());
    c.batch_execute("CLOSE q; COMMIT").await.unwrap();
    let e = c.simple_query("FETCH q").await.unwrap_err();
    assert_eq!(common::sqlstate(&e), "34000");

    // Over a push query: the snapshot, then nothing until a change (timeout), then it.
    c.batch_execute("DECLARE s CURSOR FOR SUBSCRIBE t")
        .await
        .unwrap();
    let mut snapshot: Vec<Vec<String>> = rows("FETCH 10 s WITH (timeout = '1s')")
        .await
        .into_iter()
        .map(|r| r[1..].to_vec())
        .collect();
    snapshot.sort();
    assert_eq!(
        snapshot,
        vec![
            vec!["1", "1", "a"],
            vec!["1", "2", "b"],
            vec!["1", "3", "c"]
        ]
    );
    assert!(rows("FETCH 10 s WITH (timeout = '200ms')").await.is_empty());
    let writer = server.connect().await;
    writer
        .batch_execute("UPDATE t SET name = 'z' WHERE id = 2")
        .await
        .unwrap();
    let mut change: Vec<Vec<String>> = rows("FETCH ALL s WITH (timeout = '5s')")
        .await
        .into_iter()
        .map(|r| r[1..].to_vec())
        .collect();
    change.sort();
    assert_eq!(change, vec![vec!["-1", "2", "b"], vec!["1", "2", "z"]]);

    // A FETCH waiting for changes is cancellable; the cursor survives it.
    let token = c.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let e = c.simple_query("FETCH 10 s").await.unwrap_err();
    assert_eq!(common::sqlstate(&e), "57014", "{e}");
    canceller.await.unwrap();
    writer
        .batch_execute("DELETE FROM t WHERE id = 1")
        .await
        .unwrap();
    let gone = rows("FETCH 10 s WITH (timeout = '5s')").await;
    assert_eq!(
        gone.iter().map(|r| r[1..].to_vec()).collect::<Vec<_>>(),
        vec![vec!["-1", "1", "a"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_query_over_the_extended_protocol() {
    let server = Server::start();
    let writer = server.connect().await;
    writer
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'a')",
        )
        .await
        .unwrap();
    let reader = server.connect().await;
    // Prepared (Describe gives the row description), then executed without a row limit:
    // rows arrive as changes commit.
    let stmt = reader.prepare("SUBSCRIBE t").await.unwrap();
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["eddy_time", "eddy_diff", "id", "name"]);
    let rows = reader
        .query_raw(&stmt, std::iter::empty::<i32>())
        .await
        .unwrap();
    futures::pin_mut!(rows);
    let decode = |row: tokio_postgres::Row| {
        (
            row.get::<_, i64>(1),
            row.get::<_, i32>(2),
            row.get::<_, String>(3),
        )
    };
    let first = tokio::time::timeout(Duration::from_secs(10), rows.next())
        .await
        .expect("a row arrives")
        .expect("open")
        .expect("no error");
    assert_eq!(decode(first), (1, 1, "a".to_string()));
    writer
        .batch_execute("INSERT INTO t VALUES (2, 'b')")
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), rows.next())
        .await
        .expect("a row arrives")
        .expect("open")
        .expect("no error");
    assert_eq!(decode(second), (1, 2, "b".to_string()));
    // A push query cannot share a query string with other statements.
    let e = writer
        .simple_query("SELECT 1; SUBSCRIBE t")
        .await
        .unwrap_err();
    assert_eq!(common::sqlstate(&e), "0A000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_a_query() {
    let server = Server::start();
    let writer = server.connect().await;
    writer
        .batch_execute(
            "CREATE STREAM s (k TEXT, v INT); INSERT INTO s VALUES ('a', 1), ('b', 2), ('a', 3)",
        )
        .await
        .unwrap();
    let (reader, conn) = tokio_postgres::connect(&server.conn_string(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn_task = tokio::spawn(conn);
    let stream = reader
        .simple_query_raw("SUBSCRIBE (SELECT k, sum(v) AS total FROM s WHERE v > 0 GROUP BY k)")
        .await
        .unwrap();
    futures::pin_mut!(stream);
    // Accumulating the diffs gives the query's answer, before and after changes.
    let mut state: std::collections::BTreeMap<(String, String), i64> = Default::default();
    let mut apply = |row: Vec<String>| {
        *state.entry((row[2].clone(), row[3].clone())).or_default() +=
            row[1].parse::<i64>().unwrap();
    };
    apply(next_row(&mut stream).await);
    apply(next_row(&mut stream).await);
    writer
        .batch_execute("INSERT INTO s VALUES ('b', 5), ('c', 7)")
        .await
        .unwrap();
    for _ in 0..3 {
        // -(b,2) +(b,7) +(c,7)
        apply(next_row(&mut stream).await);
    }
    let live: Vec<(String, String)> = state
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(k, _)| k.clone())
        .collect();
    let batch = common::query_rows(
        &writer,
        "SELECT k, sum(v) FROM s WHERE v > 0 GROUP BY k ORDER BY k",
    )
    .await
    .unwrap();
    assert_eq!(
        live,
        batch
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect::<Vec<_>>()
    );
    // The view behind it lives as long as the subscription...
    let names = |rows: Vec<Vec<String>>| rows.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    let listed = names(
        common::query_rows(&writer, "SELECT name FROM eddy_relations")
            .await
            .unwrap(),
    );
    assert!(
        listed.iter().any(|n| n.starts_with("eddy_subscribe_")),
        "{listed:?}"
    );
    // ...and is freed once the client is gone (noticed when changes next flow).
    drop(stream);
    drop(reader);
    conn_task.abort();
    for v in 0..3 {
        writer
            .batch_execute(&format!("INSERT INTO s VALUES ('d', {})", v + 1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = names(
        common::query_rows(&writer, "SELECT name FROM eddy_relations")
            .await
            .unwrap(),
    );
    assert_eq!(listed, vec!["s"]);
    // Its name is reserved.
    let e = writer
        .simple_query("CREATE TABLE eddy_subscribe_1 (x INT)")
        .await
        .unwrap_err();
    assert_eq!(common::sqlstate(&e), "42939");
}
