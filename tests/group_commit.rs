//! Group commit over the wire: many sessions INSERTing at once share epochs and fsyncs, and
//! every acknowledged row is in every view, exactly once; an INSERT that a view cannot
//! take fails alone, and the rows of the INSERTs grouped with it still go in.

mod common;

use common::{query_rows, sqlstate, Server};

const CLIENTS: usize = 16;
const PER_CLIENT: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_all_land_once_and_a_bad_one_fails_alone() {
    let server = Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE STREAM hits (client INT, seq INT, v INT);
         CREATE TABLE latest (client INT PRIMARY KEY, seq INT);
         CREATE MATERIALIZED VIEW per_client AS SELECT client, count(*) AS n, sum(seq) AS s FROM hits GROUP BY client;
         CREATE MATERIALIZED VIEW ratio AS SELECT client, seq, 100 / v AS r FROM hits;
         CREATE MATERIALIZED VIEW latest_total AS SELECT count(*) AS n, sum(seq) AS s FROM latest;",
    )
    .await
    .expect("ddl");
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let conn = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for seq in 0..PER_CLIENT {
                // Client 3 sends v = 0 on every 10th row: the `ratio` view divides by it.
                let v = if client == 3 && seq % 10 == 0 { 0 } else { 1 };
                match conn
                    .batch_execute(&format!("INSERT INTO hits VALUES ({client}, {seq}, {v})"))
                    .await
                {
                    Ok(()) => {}
                    Err(e) => {
                        assert_eq!(v, 0, "only the division by zero may fail: {e}");
                        assert_eq!(sqlstate(&e), "22012");
                        refused += 1;
                    }
                }
                conn.batch_execute(&format!("INSERT INTO latest VALUES ({client}, {seq})"))
                    .await
                    .expect("upsert");
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.expect("client task");
    }
    assert_eq!(
        refused,
        PER_CLIENT / 10,
        "client 3's zero rows were refused"
    );

    let mut rows = query_rows(&c, "SELECT client, n, s FROM per_client")
        .await
        .expect("per_client");
    rows.sort_by_key(|r| r[0].parse::<usize>().unwrap_or(0));
    assert_eq!(rows.len(), CLIENTS);
    let all_seqs: usize = (0..PER_CLIENT).sum();
    for (client, row) in rows.iter().enumerate() {
        let (n, s) = if client == 3 {
            let kept: Vec<usize> = (0..PER_CLIENT).filter(|s| s % 10 != 0).collect();
            (kept.len(), kept.iter().sum::<usize>())
        } else {
            (PER_CLIENT, all_seqs)
        };
        assert_eq!(row, &vec![client.to_string(), n.to_string(), s.to_string()]);
    }
    let total = query_rows(&c, "SELECT count(*) FROM hits")
        .await
        .expect("hits");
    assert_eq!(
        total,
        vec![vec![(CLIENTS * PER_CLIENT - PER_CLIENT / 10).to_string()]]
    );
    // Each session's upserts kept their order: its last one wins.
    let latest = query_rows(&c, "SELECT n, s FROM latest_total")
        .await
        .expect("latest_total");
    assert_eq!(
        latest,
        vec![vec![
            CLIENTS.to_string(),
            (CLIENTS * (PER_CLIENT - 1)).to_string()
        ]]
    );
}
