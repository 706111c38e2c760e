//! Nexmark end to end: a Nexmark source generating N events into eddy with one query as a
//! live view, against DataFusion computing the same SQL once in batch over the same events
//! held in memory as Arrow batches, in the same process.
//!
//! Run: `cargo bench --bench nexmark -- --query q5 --events 10000000`
//! (`--query` may repeat or take a comma list; default: every query eddy runs;
//! `--batch-size N` events per epoch, default 10 000; `--no-baseline` skips DataFusion;
//! `--markdown` prints one table row per query for benches/nexmark/run-all.sh).
//!
//! eddy side: `CREATE SOURCE ... WITH (connector='nexmark', events=N, rate=0,
//! retention='10 seconds')` and the query as a materialized view, on a single-threaded
//! runtime with the fsynced file log; timed from CREATE SOURCE until the source reports
//! done. The figure includes generating the events (reported separately too). CPU time is
//! measured over the run, so events/s per core = events / CPU seconds.
//!
//! Baseline: the same events generated into Arrow batches (not timed), loaded into a
//! database without a log as plain streams, then the query's SELECT runs once through
//! eddy's ad-hoc path — DataFusion with its full optimizer over in-memory tables of those
//! batches (TUMBLE/HOP rewritten to plain SQL the same way as for the view).

mod common;
#[path = "nexmark/queries.rs"]
mod queries;

use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use eddy::connectors::nexmark::{stream_ddl, NexmarkGenerator, NexmarkOptions};
use eddy::database::{Database, Output, Session};
use eddy::state::{FileLog, LogEntry, Store};

/// Discards the log (the baseline database keeps rows in memory only).
struct NoLog;

impl Store for NoLog {
    fn append(&self, _entries: &[LogEntry]) -> eddy::Result<()> {
        Ok(())
    }
    fn replay(&self) -> eddy::Result<Vec<LogEntry>> {
        Ok(vec![])
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
    fn seal(&self) -> eddy::Result<()> {
        Ok(())
    }
    fn drop_sealed(&self) -> eddy::Result<()> {
        Ok(())
    }
}

/// q11's sessions in batch SQL (DataFusion has no SESSION table function): see
/// tests/nexmark.rs.
const Q11_BATCH: &str = "SELECT bidder, count(*) AS bid_count, min(date_time) AS starttime, max(date_time) + INTERVAL '10' SECOND AS endtime
FROM (SELECT bidder, date_time, sum(new_s) OVER (PARTITION BY bidder ORDER BY date_time ROWS UNBOUNDED PRECEDING) AS sid
      FROM (SELECT bidder, date_time,
                   CASE WHEN lag(date_time) OVER (PARTITION BY bidder ORDER BY date_time) IS NULL
                          OR date_time - lag(date_time) OVER (PARTITION BY bidder ORDER BY date_time) >= INTERVAL '10' SECOND
                        THEN 1 ELSE 0 END AS new_s
            FROM bid) a) b
GROUP BY bidder, sid";

struct Args {
    queries: Vec<String>,
    events: u64,
    batch_size: u64,
    baseline: bool,
    markdown: bool,
}

fn args() -> Args {
    let mut a = Args {
        queries: vec![],
        events: 1_000_000,
        batch_size: 10_000,
        baseline: true,
        markdown: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--query" => a.queries.extend(
                it.next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string()),
            ),
            "--events" => a.events = it.next().and_then(|v| v.parse().ok()).expect("--events N"),
            "--batch-size" => {
                a.batch_size = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--batch-size N")
            }
            "--no-baseline" => a.baseline = false,
            "--markdown" => a.markdown = true,
            _ => {} // cargo bench passes --bench
        }
    }
    if a.queries.is_empty() {
        a.queries = queries::load()
            .into_iter()
            .filter(|q| q.expect_error.is_none())
            .map(|q| q.name)
            .collect();
    }
    a
}

async fn rows_of(db: &Database, s: &mut Session, sql: &str) -> Vec<RecordBatch> {
    match db.execute(s, sql, &[]).await {
        Ok(Output::Rows { batches, .. }) => batches,
        Ok(other) => panic!("{sql}: {other:?}"),
        Err(e) => panic!("{sql}: {e}"),
    }
}

async fn scalar(db: &Database, s: &mut Session, sql: &str) -> String {
    let b = rows_of(db, s, sql).await;
    let Some(b) = b.first() else {
        return String::new();
    };
    datafusion::arrow::util::display::array_value_to_string(b.column(0), 0).unwrap_or_default()
}

struct EddyRun {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    view_rows: String,
    state_rows: String,
    view_bytes: String,
    log_bytes: u64,
}

async fn run_eddy(q: &queries::NexmarkQuery, events: u64, batch_size: u64) -> EddyRun {
    let dir = tempfile::tempdir().expect("tmp");
    let store = std::sync::Arc::new(FileLog::open(dir.path()).expect("log"));
    let db = Database::open(Box::new(store.clone())).expect("open");
    let mut s = Session::default();
    for stmt in &q.setup {
        db.execute(&mut s, stmt, &[]).await.expect("setup");
    }
    let cpu0 = common::cpu_seconds();
    let t0 = Instant::now();
    // On this single-threaded runtime the generator task cannot run before the view
    // exists: it starts when this task first waits.
    db.execute(&mut s, &format!("CREATE SOURCE nexmark WITH (connector = 'nexmark', events = {events}, batch_size = {batch_size}, retention = '10 seconds')"), &[])
        .await
        .expect("source");
    db.execute(&mut s, &q.create_view("v"), &[])
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", q.name));
    // The bar asks for the count only on a terminal, at most 5 times a second.
    let bar = common::progress(events, &q.name);
    let mut drawn = Instant::now();
    loop {
        let status = scalar(&db, &mut s, "SELECT status FROM eddy_sources").await;
        if !bar.is_hidden() && drawn.elapsed() >= Duration::from_millis(200) {
            let done = scalar(&db, &mut s, "SELECT events FROM eddy_sources").await;
            bar.set_position(done.parse().unwrap_or(0));
            drawn = Instant::now();
        }
        if status == "done" {
            bar.finish_and_clear();
            break;
        }
        assert!(status == "running", "source: {status}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_seconds = common::cpu_seconds() - cpu0;
    let peak_rss_mib = common::peak_rss_mib();
    let v = |col: &str| format!("SELECT {col} FROM eddy_relations WHERE name = 'v'");
    let view_rows = scalar(&db, &mut s, &v("rows")).await;
    let state_rows = scalar(&db, &mut s, &v("state_rows")).await;
    let view_bytes = scalar(&db, &mut s, &v("state_bytes")).await;
    let late = scalar(&db, &mut s, &v("late_rows")).await;
    assert_eq!(late, "0", "{}: late rows", q.name);
    EddyRun {
        seconds,
        cpu_seconds,
        peak_rss_mib,
        view_rows,
        state_rows,
        view_bytes,
        log_bytes: store.size_on_disk(),
    }
}

/// Generate the events as Arrow batches (per stream, in chunks of `batch_size`).
fn generate(events: u64, batch_size: u64) -> (f64, [Vec<RecordBatch>; 3]) {
    let g = NexmarkGenerator::new(NexmarkOptions::default()).expect("generator");
    let t = Instant::now();
    let mut out: [Vec<RecordBatch>; 3] = [vec![], vec![], vec![]];
    let mut from = 0;
    while from < events {
        let to = (from + batch_size).min(events);
        for (i, b) in g
            .batches(from, to)
            .expect("generate")
            .into_iter()
            .enumerate()
        {
            out[i].push(b);
        }
        from = to;
    }
    (t.elapsed().as_secs_f64(), out)
}

/// DataFusion's batch time for the query over the events, in seconds, and its row count.
async fn run_baseline(q: &queries::NexmarkQuery, batches: [Vec<RecordBatch>; 3]) -> (f64, usize) {
    let db = Database::open(Box::new(NoLog)).expect("open");
    let mut s = Session::default();
    for stmt in &q.setup {
        db.execute(&mut s, stmt, &[]).await.expect("setup");
    }
    for ((name, ddl), stream) in stream_ddl("", None).into_iter().zip(batches) {
        db.execute(&mut s, &ddl, &[]).await.expect("stream");
        for b in stream {
            db.insert_batch(&name, b).await.expect("load");
        }
    }
    let sql = if q.name == "q11" {
        Q11_BATCH
    } else {
        &q.select
    };
    // One warm-up run (planning caches, allocator), then the timed one.
    let _ = rows_of(&db, &mut s, sql).await;
    let t = Instant::now();
    let out = rows_of(&db, &mut s, sql).await;
    let secs = t.elapsed().as_secs_f64();
    (secs, out.iter().map(|b| b.num_rows()).sum())
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if a.markdown {
        println!("| query | events | eddy events/s | per CPU-s | peak RSS MiB | view rows | state rows | view MiB | DataFusion s | DataFusion events/s | eddy / DataFusion |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for name in &a.queries {
        let q = queries::get(name).unwrap_or_else(|| panic!("no query {name}"));
        if let Some(code) = &q.expect_error {
            println!("{name}: refused by eddy ({code}), skipped");
            continue;
        }
        let e = rt.block_on(run_eddy(&q, a.events, a.batch_size));
        let eps = a.events as f64 / e.seconds;
        let per_core = a.events as f64 / e.cpu_seconds;
        let (gen_secs, batches) = generate(a.events, a.batch_size);
        let baseline = if a.baseline {
            Some(rt.block_on(run_baseline(&q, batches)))
        } else {
            None
        };
        let view_mib = e.view_bytes.parse::<f64>().unwrap_or(f64::NAN) / (1 << 20) as f64;
        if a.markdown {
            let (df_s, df_eps, ratio) = match baseline {
                Some((s, _)) => (
                    format!("{s:.3}"),
                    format!("{:.0}", a.events as f64 / s),
                    format!("**{:.3}**", eps / (a.events as f64 / s)),
                ),
                None => ("–".into(), "–".into(), "–".into()),
            };
            println!(
                "| {name} | {} | {eps:.0} | {per_core:.0} | {:.0} | {} | {} | {view_mib:.1} | {df_s} | {df_eps} | {ratio} |",
                a.events, e.peak_rss_mib, e.view_rows, e.state_rows
            );
        } else {
            println!("{name}: {} events in {:.3} s = {eps:.0} events/s, {:.3} CPU s = {per_core:.0} events/s per core; peak RSS {:.1} MiB; view {} rows ({view_mib:.1} MiB), operator state {} rows, log {} bytes; generating the events alone: {gen_secs:.3} s ({:.0} events/s)",
                a.events, e.seconds, e.cpu_seconds, e.peak_rss_mib, e.view_rows, e.state_rows, e.log_bytes, a.events as f64 / gen_secs);
            if let Some((s, n)) = baseline {
                println!(
                    "{name}: DataFusion batch over the same events: {s:.3} s ({:.0} events/s, {n} rows); eddy / DataFusion = {:.3}",
                    a.events as f64 / s,
                    eps / (a.events as f64 / s)
                );
            }
        }
    }
}
