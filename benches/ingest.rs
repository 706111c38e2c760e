//! Ingest into a stream feeding a GROUP BY view, next to DataFusion computing the same
//! aggregate in batch over the same rows, in the same process.
//!
//! Run: `cargo bench --bench ingest` (EDDY_BENCH_ROWS to change the row count). Prints
//! rows/s for each, their ratio and the process's peak RSS; criterion keeps the history.
//!
//! `EDDY_BENCH_METRICS_OVERHEAD=ROUNDS` runs instead the metrics overhead comparison of
//! docs/benchmarks.md: per round, the same ingest with metrics timing switched off, on, and
//! on with `/metrics` served over HTTP and scraped every second, alternating in one process
//! (memory log and file log), then the median of each and their ratios.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datafusion::arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use eddy::database::{Database, Session};
use eddy::state::{FileLog, MemoryStore, Store};

const BATCH: usize = 1000;
const VIEW: &str = "SELECT page, count(*) AS views, sum(ms) AS total, min(ms) AS lo, max(ms) AS hi, count(DISTINCT user_id) AS users FROM pageviews GROUP BY page";

fn rows() -> usize {
    std::env::var("EDDY_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn data(n: usize) -> (Arc<Schema>, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int32, true),
        Field::new("page", DataType::Utf8, true),
        Field::new("ms", DataType::Int64, true),
    ]));
    let mut batches = Vec::new();
    let mut x: u64 = 42;
    for start in (0..n).step_by(BATCH) {
        let len = BATCH.min(n - start);
        let mut users = Vec::with_capacity(len);
        let mut pages = Vec::with_capacity(len);
        let mut ms = Vec::with_capacity(len);
        for _ in 0..len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            users.push((x >> 33) as i32 % 10_000);
            pages.push(format!("/page/{}", (x >> 20) % 1000));
            ms.push(((x >> 40) % 5000) as i64);
        }
        batches.push(
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int32Array::from(users)),
                    Arc::new(StringArray::from(pages)),
                    Arc::new(Int64Array::from(ms)),
                ],
            )
            .expect("batch"),
        );
    }
    (schema, batches)
}

async fn eddy_ingest(store: Box<dyn Store>, batches: &[RecordBatch]) -> Duration {
    eddy_ingest_scraped(store, batches, false).await
}

/// The ingest; with `scrape`, `/metrics` served on a free port and fetched every second
/// by another thread while it runs (as Prometheus would).
async fn eddy_ingest_scraped(
    store: Box<dyn Store>,
    batches: &[RecordBatch],
    scrape: bool,
) -> Duration {
    let db = Database::open(store).expect("open");
    let scraper = if scrape {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(eddy::server::serve_http(db.clone(), listener, false));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut scrapes = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                scrapes += u64::from(scrape_once(addr));
                std::thread::sleep(Duration::from_secs(1));
            }
            scrapes
        });
        Some((server, stop, thread))
    } else {
        None
    };
    let mut s = Session::default();
    db.execute(
        &mut s,
        "CREATE STREAM pageviews (user_id INT, page TEXT, ms BIGINT)",
        &[],
    )
    .await
    .expect("stream");
    db.execute(
        &mut s,
        &format!("CREATE MATERIALIZED VIEW per_page AS {VIEW}"),
        &[],
    )
    .await
    .expect("view");
    let start = Instant::now();
    for b in batches {
        db.insert_batch("pageviews", b.clone())
            .await
            .expect("insert");
    }
    let took = start.elapsed();
    if let Some((server, stop, thread)) = scraper {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let scrapes = thread.join().expect("scraper");
        assert!(scrapes > 0, "the scraper never read /metrics");
        server.abort();
    }
    took
}

/// One GET /metrics; true when it answered 200 with eddy's metrics.
fn scrape_once(addr: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    let mut body = String::new();
    let _ = c.read_to_string(&mut body);
    body.starts_with("HTTP/1.1 200") && body.contains("eddy_relation_rows_in_total")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Metrics off, on, and on + scraped every second, alternating, `rounds` times per store.
fn metrics_overhead(rt: &tokio::runtime::Runtime, batches: &[RecordBatch], rounds: usize) {
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!("metrics overhead: {n} rows in batches of {BATCH}, {rounds} rounds, alternating");
    for store in ["memory log", "file log"] {
        let run = |scrape: bool| {
            let dir = tempfile::tempdir().expect("tmp");
            let s: Box<dyn Store> = match store {
                "memory log" => Box::new(MemoryStore::default()),
                _ => Box::new(FileLog::open(dir.path()).expect("log")),
            };
            // Process CPU time too: the wall clock of a shared VM moves with its
            // neighbours' load; CPU time counts this process's work (server and
            // scraper threads included).
            let cpu = common::cpu_seconds();
            let wall = rt.block_on(eddy_ingest_scraped(s, batches, scrape));
            (wall, Duration::from_secs_f64(common::cpu_seconds() - cpu))
        };
        let (mut off, mut on, mut scraped) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Rotate the order so no variant always runs first (warm caches, CPU boost).
            for k in 0..3 {
                match (round + k) % 3 {
                    0 => {
                        eddy::metrics::set_collecting(false);
                        off.push(run(false));
                    }
                    1 => {
                        eddy::metrics::set_collecting(true);
                        on.push(run(false));
                    }
                    _ => {
                        eddy::metrics::set_collecting(true);
                        scraped.push(run(true));
                    }
                }
            }
        }
        eddy::metrics::set_collecting(true);
        let ms = |v: &[(Duration, Duration)], pick: fn(&(Duration, Duration)) -> Duration| {
            v.iter()
                .map(|d| format!("{:.0}", pick(d).as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let wall = |d: &(Duration, Duration)| d.0;
        let cpu = |d: &(Duration, Duration)| d.1;
        for (what, pick) in [("wall", wall as fn(&_) -> _), ("cpu", cpu)] {
            println!("{store}: {what} ms off      [{}]", ms(&off, pick));
            println!("{store}: {what} ms on       [{}]", ms(&on, pick));
            println!("{store}: {what} ms scraped  [{}]", ms(&scraped, pick));
            let m = |v: &[(Duration, Duration)]| median(v.iter().map(pick).collect());
            let (off, on, scraped) = (m(&off), m(&on), m(&scraped));
            let rate = |d: Duration| n as f64 / d.as_secs_f64();
            println!(
                "{store}: {what} medians: rows/s off {:.0}, on {:.0}, on+scraped {:.0}; time on/off {:.4}, on+scraped/off {:.4}",
                rate(off),
                rate(on),
                rate(scraped),
                on.as_secs_f64() / off.as_secs_f64(),
                scraped.as_secs_f64() / off.as_secs_f64(),
            );
        }
    }
}

async fn datafusion_batch(schema: Arc<Schema>, batches: &[RecordBatch]) -> Duration {
    let ctx = SessionContext::new();
    ctx.register_table(
        "pageviews",
        Arc::new(MemTable::try_new(schema, vec![batches.to_vec()]).expect("mem")),
    )
    .expect("register");
    let start = Instant::now();
    let out = ctx
        .sql(VIEW)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    assert!(!out.is_empty());
    start.elapsed()
}

/// What a non-incremental engine does to keep the same view fresh after every batch:
/// recompute the aggregate from scratch over everything so far.
async fn datafusion_recompute_per_batch(schema: Arc<Schema>, batches: &[RecordBatch]) -> Duration {
    let mut total = Duration::ZERO;
    for k in 1..=batches.len() {
        total += datafusion_batch(schema.clone(), &batches[..k]).await;
    }
    total
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let (schema, batches) = data(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(rounds) = std::env::var("EDDY_BENCH_METRICS_OVERHEAD")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        metrics_overhead(&rt, &batches, rounds.max(1));
        return;
    }
    let mut g = c.benchmark_group("ingest_group_by");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("eddy_incremental_memory_log", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(eddy_ingest(Box::new(MemoryStore::default()), &batches)))
                .sum()
        })
    });
    g.bench_function("eddy_incremental_file_log", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("tmp");
                    rt.block_on(eddy_ingest(
                        Box::new(FileLog::open(dir.path()).expect("log")),
                        &batches,
                    ))
                })
                .sum()
        })
    });
    g.bench_function("datafusion_batch", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(datafusion_batch(schema.clone(), &batches)))
                .sum()
        })
    });
    g.finish();

    // One plain same-run comparison, printed for docs/benchmarks.md.
    let mem = rt.block_on(eddy_ingest(Box::new(MemoryStore::default()), &batches));
    let dir = tempfile::tempdir().expect("tmp");
    let file = rt.block_on(eddy_ingest(
        Box::new(FileLog::open(dir.path()).expect("log")),
        &batches,
    ));
    let df = rt.block_on(datafusion_batch(schema.clone(), &batches));
    let df_each = rt.block_on(datafusion_recompute_per_batch(schema, &batches));
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("\nrows: {n} in batches of {BATCH}");
    println!("eddy incremental (memory log): {:>12.0} rows/s", rate(mem));
    println!("eddy incremental (file log):   {:>12.0} rows/s", rate(file));
    println!("datafusion batch (once):       {:>12.0} rows/s", rate(df));
    println!(
        "datafusion recompute per batch:{:>12.0} rows/s",
        rate(df_each)
    );
    println!("ratio eddy(memory)/datafusion: {:.3}", rate(mem) / rate(df));
    println!(
        "ratio eddy(file)/datafusion:   {:.3}",
        rate(file) / rate(df)
    );
    println!(
        "ratio eddy(file)/datafusion recompute per batch: {:.3}",
        rate(file) / rate(df_each)
    );
    println!("peak RSS: {:.1} MiB", common::peak_rss_mib());
}

criterion_group!(benches, bench);
criterion_main!(benches);
