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

/// Views in the checkpoint test: one of each stateful operator (aggregate with MIN/MAX and
/// COUNT(DISTINCT), global aggregate, windows closing with EMIT FINAL, sessions, a table
/// join and a time-bounded stream join with its outer side).
const CHECKPOINTED: &[(&str, &str)] = &[
    ("per_user", "CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n, min(ms) AS lo, max(ms) AS hi, count(DISTINCT page) AS pages, avg(ms) AS mean FROM clicks GROUP BY user_id"),
    ("total", "CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(ms) AS ms FROM clicks"),
    ("per_min", "CREATE MATERIALIZED VIEW per_min AS SELECT window_start, page, count(*) AS n FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY window_start, page EMIT FINAL"),
    ("sessions", "CREATE MATERIALIZED VIEW sessions AS SELECT user_id, window_start, window_end, count(*) AS n FROM SESSION(clicks, ts, INTERVAL '30' SECOND) GROUP BY user_id, window_start, window_end"),
    ("by_region", "CREATE MATERIALIZED VIEW by_region AS SELECT u.region, count(*) AS n FROM users u JOIN clicks c ON u.id = c.user_id GROUP BY u.region"),
    ("region_users", "CREATE MATERIALIZED VIEW region_users AS SELECT u.region, count(*) AS n FROM users u GROUP BY u.region"),
    ("shown_clicked", "CREATE MATERIALIZED VIEW shown_clicked AS SELECT i.ad, c.ts AS clicked FROM impressions i LEFT JOIN ad_clicks c WITHIN (0 SECONDS, 1 MINUTE) GRACE PERIOD 0 SECONDS ON i.ad = c.ad"),
];

async fn setup_checkpointed(c: &tokio_postgres::Client) {
    c.batch_execute(
        "CREATE STREAM clicks (user_id INT, page TEXT, ms BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND);
         CREATE TABLE users (id INT PRIMARY KEY, name TEXT, region TEXT);
         CREATE STREAM impressions (ad INT, ts TIMESTAMP, WATERMARK FOR ts AS ts);
         CREATE STREAM ad_clicks (ad INT, ts TIMESTAMP, WATERMARK FOR ts AS ts);",
    )
    .await
    .expect("sources");
    for (_, ddl) in CHECKPOINTED {
        c.batch_execute(ddl).await.expect(ddl);
    }
}

/// The writes of phase `p` (deterministic), the same for every server.
async fn write_phase(c: &tokio_postgres::Client, p: u32) {
    for i in 0..40u32 {
        let n = p * 40 + i;
        let second = n * 7;
        c.batch_execute(&format!(
            "INSERT INTO clicks VALUES ({}, '/p{}', {}, {})",
            n % 6,
            n % 4,
            (n * 37) % 500,
            at(second)
        ))
        .await
        .expect("insert click");
        if i % 8 == 0 {
            c.batch_execute(&format!(
                "INSERT INTO users VALUES ({}, 'u{n}', 'r{}')",
                n % 6,
                n % 3
            ))
            .await
            .expect("upsert user");
        }
        if i % 5 == 0 {
            c.batch_execute(&format!(
                "INSERT INTO impressions VALUES ({}, {});
                 INSERT INTO ad_clicks VALUES ({}, {})",
                n % 5,
                at(second),
                (n + 1) % 5,
                at(second + 20)
            ))
            .await
            .expect("insert ad events");
        }
    }
    if p == 1 {
        c.batch_execute("DELETE FROM users WHERE id = 2")
            .await
            .expect("delete");
    }
}

/// `2026-01-01 10:00:00` plus `s` seconds, as a timestamp literal.
fn at(s: u32) -> String {
    format!(
        "'2026-01-01 {:02}:{:02}:{:02}'",
        10 + s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

async fn checkpointed_views(server: &Server) -> Vec<Vec<Vec<String>>> {
    let c = server.connect().await;
    let mut out = Vec::new();
    for (v, _) in CHECKPOINTED {
        let mut rows = query_rows(&c, &format!("SELECT * FROM {v}"))
            .await
            .expect("select view");
        rows.sort();
        out.push(rows);
    }
    out
}

/// Restart from a checkpoint plus the log tail equals a run that never stopped: every
/// stateful operator's state, the windows' watermarks and the stored rows come back, and
/// the log holds only what was written after the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_and_kill_equal_a_crash_free_run() {
    let reference = Server::start_with_args(&["--checkpoint-interval", "0"]);
    let mut crashed = Server::start_with_args(&["--checkpoint-interval", "0"]);
    let tmp = crashed.take_tmp();
    let dir = crashed.data_dir.clone();
    let (a, b) = (reference.connect().await, crashed.connect().await);
    setup_checkpointed(&a).await;
    setup_checkpointed(&b).await;
    write_phase(&a, 0).await;
    write_phase(&b, 0).await;
    let log_before = std::fs::metadata(dir.join("eddy.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    b.batch_execute("CHECKPOINT").await.expect("checkpoint");
    let log_after = std::fs::metadata(dir.join("eddy.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        log_before > 10_000,
        "the log had the history ({log_before} bytes)"
    );
    assert_eq!(log_after, 0, "the checkpoint truncated the log");
    // The stream's history moved to the state store: still counted, no longer in memory.
    let held = query_rows(
        &b,
        "SELECT rows, state_bytes FROM eddy_relations WHERE name = 'clicks'",
    )
    .await
    .expect("eddy_relations");
    assert_eq!(held, vec![vec!["40".to_string(), "0".to_string()]]);
    write_phase(&a, 1).await;
    write_phase(&b, 1).await;
    assert_eq!(
        checkpointed_views(&reference).await,
        checkpointed_views(&crashed).await
    );
    drop(b);
    crashed.kill();

    let restarted = Server::start_in(&dir);
    let expected = checkpointed_views(&reference).await;
    assert!(
        expected.iter().all(|rows| !rows.is_empty()),
        "every view has rows: {expected:?}"
    );
    assert_eq!(
        expected,
        checkpointed_views(&restarted).await,
        "after restart"
    );

    // The restored state keeps being maintained: more writes, a second checkpoint, another
    // kill, and the views still equal the run that never stopped.
    let b = restarted.connect().await;
    write_phase(&a, 2).await;
    write_phase(&b, 2).await;
    b.batch_execute("CHECKPOINT")
        .await
        .expect("second checkpoint");
    write_phase(&a, 3).await;
    write_phase(&b, 3).await;
    drop(b);
    let mut restarted = restarted;
    restarted.kill();
    let again = Server::start_in(&dir);
    assert_eq!(
        checkpointed_views(&reference).await,
        checkpointed_views(&again).await,
        "after the second checkpoint and restart"
    );
    drop(tmp);
}
