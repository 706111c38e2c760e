//! Joins: (1) a stream–stream join bounded by WITHIN over ≥10 M events, printing RSS and
//! join state every million — flat after warm-up; (2) stream–table enrichment in events/s,
//! next to DataFusion's batch hash join of the same rows in the same run.
//!
//! Run: `cargo bench --bench joins` (EDDY_BENCH_EVENTS for the stream-stream count).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use eddy::database::{Database, Output, Session};
use eddy::state::FileLog;

const BATCH: usize = 10_000;

async fn state_rows(db: &Database, s: &mut Session, name: &str) -> String {
    let sql =
        format!("SELECT state_rows, late_rows, rows FROM eddy_relations WHERE name = '{name}'");
    match db.execute(s, &sql, &[]).await {
        Ok(Output::Rows { batches, .. }) => {
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .map(|t| t.to_string().lines().nth(3).unwrap_or("").to_string())
                .unwrap_or_default()
        }
        other => format!("{other:?}"),
    }
}

fn ad_batch(
    schema: &Arc<Schema>,
    start: usize,
    n: usize,
    t0: i64,
    step: i64,
    shift: i64,
) -> RecordBatch {
    let ad: Vec<i32> = (start..start + n).map(|e| (e % 100_000) as i32).collect();
    let ts: Vec<i64> = (start..start + n)
        .map(|e| t0 + e as i64 * step + shift)
        .collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int32Array::from(ad)),
            Arc::new(TimestampMicrosecondArray::from(ts)),
        ],
    )
    .expect("batch")
}

async fn stream_stream(events: usize) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Database::open(Box::new(FileLog::open(dir.path()).expect("log"))).expect("open");
    let mut s = Session::default();
    for sql in [
        "CREATE STREAM imp (ad INT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (RETENTION = '10 seconds')",
        "CREATE STREAM clk (ad INT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (RETENTION = '10 seconds')",
        "CREATE TABLE matched AS SELECT i.ad, count(*) AS clicks FROM imp i JOIN clk c WITHIN (0 SECONDS, 2 SECONDS) GRACE PERIOD 1 SECOND ON i.ad = c.ad GROUP BY i.ad",
    ] {
        db.execute(&mut s, sql, &[]).await.expect("ddl");
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("ad", DataType::Int32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]));
    let t0: i64 = 1_767_225_600_000_000;
    println!("stream-stream: {events} events (half impressions, half clicks 1 s later), 100 000 keys (one match per click), WITHIN (0 s, 2 s), grace 1 s");
    println!(
        "{:>10} {:>12} {:>10}  join state_rows | late | view rows",
        "events", "events/s", "RSS MiB"
    );
    let start = Instant::now();
    let mut last = Instant::now();
    let mut done = 0usize;
    let mut i = 0usize;
    while done < events {
        let n = BATCH.min((events - done) / 2).max(1);
        // 100 µs of event time per event per stream: 10 000 events per second each.
        db.insert_batch("imp", ad_batch(&schema, i, n, t0, 100, 0))
            .await
            .expect("imp");
        db.insert_batch("clk", ad_batch(&schema, i, n, t0, 100, 1_000_000))
            .await
            .expect("clk");
        i += n;
        done += 2 * n;
        if done % 1_000_000 == 0 || done >= events {
            let rate = 1_000_000f64.min(done as f64) / last.elapsed().as_secs_f64();
            last = Instant::now();
            println!(
                "{:>10} {:>12.0} {:>10.1}  {}",
                done,
                rate,
                common::rss_mib(),
                state_rows(&db, &mut s, "matched").await
            );
        }
    }
    println!(
        "stream-stream total: {:.0} events/s",
        done as f64 / start.elapsed().as_secs_f64()
    );
}

async fn enrichment(events: usize) {
    let users = 10_000usize;
    let user_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, true),
        Field::new("region", DataType::Utf8, true),
    ]));
    let user_batch = RecordBatch::try_new(
        user_schema.clone(),
        vec![
            Arc::new(Int32Array::from((0..users as i32).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                (0..users)
                    .map(|u| format!("region-{}", u % 20))
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("users");
    let click_schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int32, true),
        Field::new("ms", DataType::Int64, true),
    ]));
    let clicks: Vec<RecordBatch> = (0..events)
        .step_by(BATCH)
        .map(|s| {
            let n = BATCH.min(events - s);
            RecordBatch::try_new(
                click_schema.clone(),
                vec![
                    Arc::new(Int32Array::from(
                        (s..s + n)
                            .map(|e| ((e * 7919) % users) as i32)
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(Int64Array::from(
                        (s..s + n).map(|e| (e % 1000) as i64).collect::<Vec<_>>(),
                    )),
                ],
            )
            .expect("clicks")
        })
        .collect();

    // eddy: a stream joined with a table into a derived stream.
    let dir = tempfile::tempdir().expect("tmp");
    let db = Database::open(Box::new(FileLog::open(dir.path()).expect("log"))).expect("open");
    let mut s = Session::default();
    for sql in [
        "CREATE TABLE users (id INT PRIMARY KEY, region TEXT)",
        "CREATE STREAM clicks (user_id INT, ms BIGINT) WITH (RETENTION = '1 second', TIMESTAMP = 'ms')",
        "CREATE STREAM enriched AS SELECT c.user_id, c.ms, u.region FROM clicks c JOIN users u ON c.user_id = u.id",
    ] {
        db.execute(&mut s, sql, &[]).await.expect("ddl");
    }
    db.insert_batch("users", user_batch.clone())
        .await
        .expect("users");
    let start = Instant::now();
    for b in &clicks {
        db.insert_batch("clicks", b.clone()).await.expect("clicks");
    }
    let eddy = start.elapsed();

    // DataFusion: the same join in batch over the same rows.
    let ctx = SessionContext::new();
    ctx.register_table(
        "users",
        Arc::new(MemTable::try_new(user_schema, vec![vec![user_batch]]).expect("mem")),
    )
    .expect("reg");
    ctx.register_table(
        "clicks",
        Arc::new(MemTable::try_new(click_schema, vec![clicks.clone()]).expect("mem")),
    )
    .expect("reg");
    let start = Instant::now();
    let out = ctx
        .sql("SELECT c.user_id, c.ms, u.region FROM clicks c JOIN users u ON c.user_id = u.id")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let df = start.elapsed();
    let joined: usize = out.iter().map(|b| b.num_rows()).sum();
    assert_eq!(joined, events);
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!("\nstream-table enrichment: {events} clicks in batches of {BATCH}, {users} users");
    println!("eddy incremental (file log): {:>12.0} events/s", rate(eddy));
    println!("datafusion batch hash join:  {:>12.0} events/s", rate(df));
    println!("ratio eddy/datafusion: {:.3}", rate(eddy) / rate(df));
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
    rt.block_on(stream_stream(events));
    rt.block_on(enrichment(2_000_000.min(events)));
    println!("peak-phase RSS now: {:.1} MiB", common::rss_mib());
}
