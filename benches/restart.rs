//! Restart after `kill -9`, by history size: a stream without RETENTION feeding a windowed
//! view and a count, filled with INSERTed rows (not generated), then killed and restarted
//! twice — once replaying the whole log, once from a checkpoint plus an empty log tail.
//! Each restart is timed from spawn to the first answered SELECT, the views are compared
//! with their contents before the kill, and the server's RSS is read after the restart.
//!
//! Run: `cargo bench --bench restart` (EDDY_BENCH_HISTORY=300000,3000000 to choose sizes).
//! The ratio that matters is between sizes within one run, and between the two restarts.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::server::Server;

const ROWS_PER_INSERT: usize = 5_000;
const VIEWS: &[&str] = &["per_minute", "total"];

async fn views(c: &tokio_postgres::Client) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for v in VIEWS {
        let rows = c
            .simple_query(&format!("SELECT * FROM {v}"))
            .await
            .expect("select");
        let mut rendered: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect();
        rendered.sort();
        out.push(rendered);
    }
    out
}

/// Spawn on `dir`, wait for the first answered SELECT; (seconds, views, RSS MiB).
async fn timed_restart(dir: &Path) -> (f64, Vec<Vec<String>>, f64, Server) {
    let t = Instant::now();
    let server = Server::start(dir, &["--checkpoint-interval", "0"]);
    let c = server.connect().await;
    let v = views(&c).await;
    let secs = t.elapsed().as_secs_f64();
    let rss = server.rss_mib();
    (secs, v, rss, server)
}

async fn run(history: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Server::start(tmp.path(), &["--checkpoint-interval", "0"]);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE STREAM events (k INT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND);
         CREATE MATERIALIZED VIEW per_minute AS SELECT window_start, count(*) AS n, sum(v) AS total FROM TUMBLE(events, ts, INTERVAL '1' MINUTE) GROUP BY window_start;
         CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n FROM events;",
    )
    .await
    .expect("ddl");
    let fill = Instant::now();
    let bar = common::progress(history as u64, "fill");
    let mut n = 0usize;
    while n < history {
        let rows = ROWS_PER_INSERT.min(history - n);
        let values: Vec<String> = (n..n + rows)
            .map(|i| {
                let s = i / 100; // 100 events per second of event time
                format!(
                    "({}, {}, '2026-01-{:02} {:02}:{:02}:{:02}')",
                    i % 1000,
                    i % 97,
                    1 + s / 86_400,
                    (s / 3600) % 24,
                    (s / 60) % 60,
                    s % 60
                )
            })
            .collect();
        c.batch_execute(&format!("INSERT INTO events VALUES {}", values.join(",")))
            .await
            .expect("insert");
        n += rows;
        bar.set_position(n as u64);
    }
    bar.finish_and_clear();
    let fill_secs = fill.elapsed().as_secs_f64();
    let before = views(&c).await;
    let rss_full = server.rss_mib();
    drop(c);
    server.kill();

    let (replay_secs, after, rss_replay, server) = timed_restart(tmp.path()).await;
    assert_eq!(before, after, "views after a replay restart");
    let c = server.connect().await;
    let t = Instant::now();
    c.batch_execute("CHECKPOINT").await.expect("checkpoint");
    let checkpoint_secs = t.elapsed().as_secs_f64();
    drop(c);
    server.kill();

    let (ckpt_secs, after, rss_ckpt, server) = timed_restart(tmp.path()).await;
    assert_eq!(before, after, "views after a checkpoint restart");
    server.kill();
    let log = std::fs::metadata(tmp.path().join("eddy.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "| {history:>9} | {fill_secs:>7.1} | {rss_full:>8.0} | {replay_secs:>8.2} | {rss_replay:>8.0} | {checkpoint_secs:>8.2} | {ckpt_secs:>8.2} | {rss_ckpt:>8.0} | {log:>6} |"
    );
}

fn main() {
    // `cargo bench` passes --bench; a plain run with a filter argument skips.
    let sizes: Vec<usize> = std::env::var("EDDY_BENCH_HISTORY")
        .unwrap_or_else(|_| "300000,3000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("| rows | fill s | RSS MiB | replay restart s | RSS after | CHECKPOINT s | checkpoint restart s | RSS after | log bytes |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        rt.block_on(run(n));
        std::thread::sleep(Duration::from_millis(200));
    }
}
