//! Durability: the catalog and every acknowledged row survive a clean stop and a SIGKILL,
//! and every view has the same contents after the restart.

mod common;

use common::{query_rows, Server};

const VIEWS: &[&str] = &["per_page", "per_region", "slow", "top"];

async fn snapshot(server: &Server) -> Vec<Vec<Vec<String>>> {
    let c = server.connect().await;
    let mut out = Vec::new();
    for v in VIEWS {
        let mut rows = query_rows(&c, &format!("SELECT * FROM {v}"))
            .await
            .expect("select view");
        rows.sort();
        out.push(rows);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_survive_kill_and_restart() {
    let mut server = Server::start();
    let tmp = server.take_tmp();
    let dir = server.data_dir.clone();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE STREAM pageviews (user_id INT, page TEXT, ms BIGINT, ts TIMESTAMP);
         CREATE TABLE users (id INT PRIMARY KEY, name TEXT, region TEXT);
         CREATE MATERIALIZED VIEW per_page AS SELECT page, count(*) AS views, sum(ms) AS total, min(ms) AS lo, max(ms) AS hi FROM pageviews GROUP BY page;
         CREATE TABLE per_region AS SELECT region, count(*) AS n FROM users GROUP BY region EMIT CHANGES;
         CREATE STREAM slow AS SELECT user_id, page FROM pageviews WHERE ms > 100;
         CREATE MATERIALIZED VIEW top AS SELECT max(views) AS most FROM per_page;",
    )
    .await
    .expect("ddl");
    for i in 0..50 {
        c.execute(
            &format!(
                "INSERT INTO pageviews VALUES ({}, '/p{}', {}, '2026-01-01 10:00:00')",
                i % 7,
                i % 5,
                i * 10
            ),
            &[],
        )
        .await
        .expect("insert");
    }
    c.batch_execute(
        "INSERT INTO users VALUES (1, 'ann', 'eu'), (2, 'bob', 'us'), (3, 'cy', 'eu');
         UPDATE users SET region = 'apac' WHERE id = 2;
         DELETE FROM users WHERE id = 3;",
    )
    .await
    .expect("table writes");
    let before = snapshot(&server).await;
    assert_eq!(
        before[1],
        vec![
            vec!["apac".to_string(), "1".to_string()],
            vec!["eu".to_string(), "1".to_string()]
        ]
    );

    // SIGKILL right after the last acknowledged write.
    c.execute(
        "INSERT INTO pageviews VALUES (9, '/p0', 999, '2026-01-01 11:00:00')",
        &[],
    )
    .await
    .expect("last insert");
    let before = snapshot(&server).await;
    drop(c);
    server.kill();

    let server = Server::start_in(&dir);
    let after = snapshot(&server).await;
    assert_eq!(before, after, "views differ after SIGKILL and restart");

    // The restarted server keeps maintaining the views.
    let c = server.connect().await;
    c.execute(
        "INSERT INTO pageviews VALUES (1, '/new', 5, '2026-01-01 12:00:00')",
        &[],
    )
    .await
    .expect("insert after restart");
    let rows = query_rows(&c, "SELECT views, total FROM per_page WHERE page = '/new'")
        .await
        .expect("select");
    assert_eq!(rows, vec![vec!["1".to_string(), "5".to_string()]]);
    drop(tmp);
}
