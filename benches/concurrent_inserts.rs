//! Single-row INSERTs over the wire from 1 and from 16 concurrent sessions, into a stream
//! feeding a GROUP BY view, against the release server with its real fsynced log. Group
//! commit is what lets 16 sessions go faster than one: they share epochs and fsyncs.
//! Also one session's INSERT latency (p50, p99) while 15 others write, and while a long
//! ad-hoc SELECT runs, next to the idle figure.
//!
//! Run: `cargo bench --bench concurrent_inserts` (EDDY_BENCH_SECONDS per measurement, default 5).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::server::Server;

fn seconds() -> f64 {
    std::env::var("EDDY_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0)
}

/// `clients` sessions INSERT one row at a time for `secs`; returns (rows/s, latencies of
/// session 0 in µs, sorted).
async fn run(server: &Server, clients: usize, secs: f64) -> (f64, Vec<u64>) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let conn = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                conn.batch_execute(&format!(
                    "INSERT INTO hits VALUES ({client}, {n}, '/p{}')",
                    n % 50
                ))
                .await
                .expect("insert");
                if client == 0 {
                    lat.push(t.elapsed().as_micros() as u64);
                }
                n += 1;
            }
            (n, lat)
        }));
    }
    let mut total = 0;
    let mut lat = Vec::new();
    for t in tasks {
        let (n, l) = t.await.expect("client");
        total += n;
        lat.extend(l);
    }
    lat.sort_unstable();
    (total as f64 / secs, lat)
}

fn pct(lat: &[u64], p: f64) -> f64 {
    if lat.is_empty() {
        return f64::NAN;
    }
    lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let secs = seconds();
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let server = Arc::new(Server::start(tmp.path(), &[]));
        let c = server.connect().await;
        c.batch_execute(
            "CREATE STREAM hits (client INT, n BIGINT, page TEXT);
             CREATE MATERIALIZED VIEW per_page AS SELECT page, count(*) AS n FROM hits GROUP BY page;
             CREATE STREAM big (k BIGINT, v BIGINT);",
        )
        .await
        .expect("ddl");
        let (one, lat_one) = run(&server, 1, secs).await;
        let (sixteen, lat_16) = run(&server, 16, secs).await;
        println!("| sessions | rows/s | ratio | session 0 p50 ms | p99 ms |");
        println!("|---:|---:|---:|---:|---:|");
        println!("| 1 | {one:.0} | 1.00 | {:.2} | {:.2} |", pct(&lat_one, 0.5), pct(&lat_one, 0.99));
        println!(
            "| 16 | {sixteen:.0} | {:.2} | {:.2} | {:.2} |",
            sixteen / one,
            pct(&lat_16, 0.5),
            pct(&lat_16, 0.99)
        );

        // A long ad-hoc SELECT next to one writing session.
        let rows: Vec<String> = (0..5000).map(|i| format!("({i}, {})", i * 7)).collect();
        for _ in 0..200 {
            c.batch_execute(&format!("INSERT INTO big VALUES {}", rows.join(",")))
                .await
                .expect("fill big");
        }
        let reader = server.connect().await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let selects = tokio::spawn(async move {
            let mut n = 0;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                reader
                    .simple_query("SELECT a.k % 7, count(*), sum(a.v * b.v) FROM big a JOIN big b ON a.k = b.k GROUP BY 1")
                    .await
                    .expect("long select");
                n += 1;
            }
            n
        });
        let (_, lat_busy) = run(&server, 1, secs).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = selects.await.expect("selects");
        println!(
            "\nOne session's INSERT latency while ad-hoc SELECTs over 1 M rows run ({n} completed): p50 {:.2} ms, p99 {:.2} ms (idle: p50 {:.2} ms, p99 {:.2} ms); p99 ratio {:.2}",
            pct(&lat_busy, 0.5),
            pct(&lat_busy, 0.99),
            pct(&lat_one, 0.5),
            pct(&lat_one, 0.99),
            pct(&lat_busy, 0.99) / pct(&lat_one, 0.99)
        );
        Arc::try_unwrap(server).ok().map(|s| s.kill());
    });
}
