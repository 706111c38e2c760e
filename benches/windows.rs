//! Bounded state on an endless stream: ≥10 million events through a tumbling-window count
//! (with grace and retention) on a stream with a retention. Prints, every million events,
//! the process RSS and the rows of stream and view state as eddy reports them in
//! `eddy_relations` — they should stay flat after warm-up, not grow with the event count.
//!
//! Run: `cargo bench --bench windows` (EDDY_BENCH_EVENTS to change the count).

mod common;

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use eddy::database::{Database, Output, Session};
use eddy::state::{FileLog, LogEntry, Store};

/// Discards the log (for measuring the engine's own memory).
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

const BATCH: usize = 10_000;
/// Event time advances 100 µs per event: 10 000 events per event-time second.
const STEP_MICROS: i64 = 100;

async fn sizes(db: &Database, s: &mut Session) -> String {
    let sql = "SELECT name, rows, state_rows, late_rows FROM eddy_relations ORDER BY name";
    match db.execute(s, sql, &[]).await {
        Ok(Output::Rows { batches, .. }) => {
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .map(|t| {
                    t.to_string()
                        .lines()
                        .skip(3)
                        .filter(|l| l.starts_with('|'))
                        .map(|l| l.trim().to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        }
        other => format!("{other:?}"),
    }
}

fn main() {
    let events: usize = std::env::var("EDDY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    rt.block_on(async {
        // EDDY_BENCH_STORE=none measures without the durable log, to separate its memory.
        let store: Box<dyn Store> = match std::env::var("EDDY_BENCH_STORE").as_deref() {
            Ok("none") => Box::new(NoLog),
            _ => Box::new(FileLog::open(dir.path()).expect("log")),
        };
        let db = Database::open(store).expect("open");
        let mut s = Session::default();
        for sql in [
            "CREATE STREAM ev (k INT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH (RETENTION = '10 seconds')",
            "CREATE TABLE per_sec AS SELECT k, count(*) AS n, sum(v) AS total FROM ev WINDOW TUMBLING (SIZE 1 SECOND, GRACE PERIOD 0 SECONDS, RETENTION 10 SECONDS) GROUP BY k EMIT CHANGES",
        ] {
            db.execute(&mut s, sql, &[]).await.expect("ddl");
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("v", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let t0: i64 = 1_767_225_600_000_000; // 2026-01-01
        println!("events: {events}, batch: {BATCH}, 100 keys, 1 s tumbling windows, retention 10 s");
        println!("{:>10} {:>12} {:>10}  relations (name rows state_rows late_rows)", "events", "events/s", "RSS MiB");
        let start = Instant::now();
        let mut last = Instant::now();
        let mut i = 0usize;
        while i < events {
            let n = BATCH.min(events - i);
            let k: Vec<i32> = (i..i + n).map(|e| (e % 100) as i32).collect();
            let v: Vec<i64> = (i..i + n).map(|e| (e % 7) as i64).collect();
            let ts: Vec<i64> = (i..i + n).map(|e| t0 + e as i64 * STEP_MICROS).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int32Array::from(k)), Arc::new(Int64Array::from(v)), Arc::new(TimestampMicrosecondArray::from(ts))],
            )
            .expect("batch");
            db.insert_batch("ev", batch).await.expect("insert");
            i += n;
            if i % 1_000_000 == 0 || i == events {
                let rate = 1_000_000f64.min(i as f64) / last.elapsed().as_secs_f64();
                last = Instant::now();
                println!("{:>10} {:>12.0} {:>10.1}  {}", i, rate, common::rss_mib(), sizes(&db, &mut s).await);
            }
        }
        println!("total: {:.0} events/s over {:.1} s", events as f64 / start.elapsed().as_secs_f64(), start.elapsed().as_secs_f64());
    });
}
