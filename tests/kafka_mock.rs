//! Kafka code path against librdkafka's in-process mock cluster (no broker to install):
//! a windowed aggregate written to a topic with the window bounds in its keys, checked
//! against DataFusion's batch answer, and a reopen of the same log resuming from the
//! stored offsets without reading anything twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::database::{Config, Database, Output, Session};
use eddy::state::MemoryStore;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

async fn rows(db: &Database, sql: &str) -> Vec<String> {
    let mut s = Session::default();
    match db.execute(&mut s, sql, &[]).await {
        Ok(Output::Rows { batches, .. }) => {
            let mut out = Vec::new();
            for b in &batches {
                for r in 0..b.num_rows() {
                    let cells: Vec<String> = b
                        .columns()
                        .iter()
                        .map(|c| {
                            datafusion::arrow::util::display::array_value_to_string(c, r).unwrap()
                        })
                        .collect();
                    out.push(cells.join("|"));
                }
            }
            out
        }
        other => panic!("{sql}: {other:?}"),
    }
}

async fn exec(db: &Database, sql: &str) {
    let mut s = Session::default();
    db.execute(&mut s, sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn wait_records(db: &Database, source: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = db.kafka().status(source).expect("registered");
        if st.records + st.bad_records >= n {
            assert_eq!(st.records + st.bad_records, n, "{st:?}");
            return;
        }
        assert!(Instant::now() < deadline, "{source}: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn produce(brokers: &str, from: i64, to: i64) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for i in from..to {
        let key = format!("u{}", i % 3);
        let value = format!(r#"{{"page": "/p{}", "ms": {}}}"#, i % 2, i % 17);
        // Two records every 10 s of event time: several one-minute windows.
        let ts = 1_700_000_000_000 + i * 5_000;
        p.send(
            FutureRecord::to("pv")
                .key(&key)
                .payload(&value)
                .partition((i % 2) as i32)
                .timestamp(ts),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
}

fn consume_all(brokers: &str, topic: &str) -> Vec<(Option<Vec<u8>>, Option<String>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "t")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push((
                m.key().map(|k| k.to_vec()),
                m.payload().map(|v| String::from_utf8(v.to_vec()).unwrap()),
            ));
            quiet = Instant::now();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_aggregate_to_topic_and_resume_after_reopen() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("pv", 2, 1).unwrap();
    // The mock cluster does not answer CreateTopics: the output topic exists beforehand.
    cluster.create_topic("per_minute", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let store = Arc::new(MemoryStore::default());
    let config = Config {
        kafka_brokers: Some(brokers.clone()),
        ..Default::default()
    };
    let view = "SELECT window_start, window_end, user_id, count(*) AS n, sum(ms) AS total FROM TUMBLE(pv, rowtime, INTERVAL '1 minute') GROUP BY window_start, window_end, user_id";
    let batch = "SELECT window_start, window_end, user_id, count(*), sum(ms) FROM TUMBLE(pv, rowtime, INTERVAL '1 minute') GROUP BY window_start, window_end, user_id ORDER BY 1, 3";

    produce(&brokers, 0, 40).await;
    let db = Database::open_with(Box::new(store.clone()), config.clone()).unwrap();
    // Partitions are fetched in batches, so records reach eddy out of event-time order
    // across partitions: a watermark delay longer than the test's 300 s of event time keeps
    // every record on time, so the view must equal the batch answer whatever the order.
    exec(&db, "CREATE STREAM pv (user_id VARCHAR KEY, page VARCHAR, ms INT, WATERMARK FOR rowtime AS rowtime - INTERVAL '1' HOUR) WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON')").await;
    exec(
        &db,
        &format!("CREATE TABLE per_minute WITH (KAFKA_TOPIC='per_minute') AS {view}"),
    )
    .await;
    wait_records(&db, "pv", 40).await;
    let v = rows(&db, "SELECT * FROM per_minute ORDER BY 1, 3").await;
    assert_eq!(v, rows(&db, batch).await);
    assert_eq!(v.len(), 12, "{v:?}"); // 40 records × 5 s = 200 s: 4 minutes × 3 users

    // The topic, read as a table, equals the view. It is written as ksqlDB writes a
    // windowed aggregate: the key is the group key (KAFKA format: the user id's bytes) then
    // the window start as 8 big-endian bytes of epoch ms; the value holds the other columns.
    let in_view = rows(
        &db,
        "SELECT user_id, (extract(epoch FROM window_start) * 1000)::bigint, n, total FROM per_minute",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut table = BTreeMap::new();
        for (k, v) in consume_all(&brokers, "per_minute") {
            let k = k.expect("keyed");
            match v {
                Some(v) => table.insert(k, v),
                None => table.remove(&k),
            };
        }
        let from_topic: Vec<String> = table
            .iter()
            .map(|(k, v)| {
                assert!(k.len() > 8, "{k:?}");
                let (user, start) = k.split_at(k.len() - 8);
                let start = i64::from_be_bytes(start.try_into().unwrap());
                let v: serde_json::Value = serde_json::from_str(v).unwrap();
                assert!(
                    v.get("window_start").is_none() && v.get("user_id").is_none(),
                    "{v}"
                );
                format!(
                    "{}|{start}|{}|{}",
                    String::from_utf8(user.to_vec()).unwrap(),
                    v["n"],
                    v["total"]
                )
            })
            .collect();
        let mut want = in_view.clone();
        want.sort();
        let mut got = from_topic.clone();
        got.sort();
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "topic {got:?}\nview {want:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Reopen the same log: the view comes back, the offsets too, and only new records
    // are read.
    let offsets = db.kafka().status("pv").unwrap().offsets;
    assert_eq!(offsets, BTreeMap::from([(0, 20), (1, 20)]));
    db.kafka().stop_all();
    drop(db);
    produce(&brokers, 40, 60).await;
    let db = Database::open_with(Box::new(store.clone()), config).unwrap();
    assert_eq!(db.kafka().status("pv").unwrap().offsets, offsets);
    wait_records(&db, "pv", 20).await;
    assert_eq!(rows(&db, "SELECT count(*) FROM pv").await, vec!["60"]);
    assert_eq!(
        rows(&db, "SELECT * FROM per_minute ORDER BY 1, 3").await,
        rows(&db, batch).await
    );
    assert_eq!(
        rows(
            &db,
            "SELECT late_rows FROM eddy_relations WHERE name = 'per_minute'"
        )
        .await,
        vec!["0"]
    );
    db.kafka().stop_all();
}
