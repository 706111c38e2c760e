//! Checkpoints are written while writes go on, and one that fails loses nothing.
//!
//! The state store here is the in-memory model behind a gate the test controls: it can
//! hold a checkpoint inside its store commit (writers must not wait for it) or make the
//! commit fail (the next checkpoint must write everything the failed one held). After each
//! scenario the database is reopened from the same log and store, and every relation must
//! read as before.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use eddy::database::{Config, Database, Session};
use eddy::state::{MemoryStateStore, MemoryStore, StateStore, Store, WriteBatch};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Gate {
    Pass,
    Hold,
    Fail,
}

/// The in-memory store, with a gate on `commit`.
#[derive(Default)]
struct GatedStore {
    inner: MemoryStateStore,
    gate: Mutex<Option<Gate>>,
    changed: Condvar,
    /// Commits that reached the gate.
    arrived: Mutex<usize>,
}

impl GatedStore {
    fn set(&self, g: Gate) {
        *self.gate.lock().unwrap() = Some(g);
        self.changed.notify_all();
    }

    fn arrived(&self) -> usize {
        *self.arrived.lock().unwrap()
    }
}

impl StateStore for GatedStore {
    fn commit(&self, batch: &WriteBatch) -> eddy::Result<()> {
        *self.arrived.lock().unwrap() += 1;
        let mut gate = self.gate.lock().unwrap();
        while *gate == Some(Gate::Hold) {
            gate = self.changed.wait(gate).unwrap();
        }
        if *gate == Some(Gate::Fail) {
            return Err(eddy::EddyError::Storage("the disk is full (test)".into()));
        }
        drop(gate);
        self.inner.commit(batch)
    }
    fn get(&self, table: u64, key: &[u8]) -> eddy::Result<Option<Vec<u8>>> {
        self.inner.get(table, key)
    }
    fn range(
        &self,
        table: u64,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> eddy::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.range(table, start, end)
    }
    fn drop_table(&self, table: u64) -> eddy::Result<()> {
        self.inner.drop_table(table)
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
}

fn open(log: &Arc<MemoryStore>, state: &Arc<GatedStore>) -> Arc<Database> {
    Database::open_with(
        Box::new(log.clone()),
        Config {
            state: Some(state.clone()),
            ..Default::default()
        },
    )
    .expect("open")
}

async fn run(db: &Database, sql: &str) {
    let mut s = Session::default();
    db.execute(&mut s, sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Everything the test compares across restarts.
async fn contents(db: &Database) -> Vec<Vec<String>> {
    let mut s = Session::default();
    let mut out = Vec::new();
    for q in [
        "SELECT a FROM s ORDER BY a",
        "SELECT * FROM t ORDER BY k",
        "SELECT * FROM per_bucket ORDER BY b",
        "SELECT * FROM joined ORDER BY a",
    ] {
        out.push(common::rows(db, &mut s, q).await);
    }
    out
}

async fn insert(db: &Database, from: i64, to: i64) {
    let values: Vec<String> = (from..to).map(|i| format!("({i})")).collect();
    run(db, &format!("INSERT INTO s VALUES {}", values.join(","))).await;
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_on_during_a_checkpoint_and_a_failed_one_loses_nothing() {
    let log = Arc::new(MemoryStore::default());
    let state = Arc::new(GatedStore::default());
    let db = open(&log, &state);
    for ddl in [
        "CREATE STREAM s (a BIGINT)",
        "CREATE TABLE t (k BIGINT PRIMARY KEY, v TEXT)",
        "CREATE MATERIALIZED VIEW per_bucket AS SELECT a % 7 AS b, count(*) AS n, sum(a) AS total FROM s GROUP BY a % 7",
        "CREATE MATERIALIZED VIEW joined AS SELECT s.a, t.v FROM s JOIN t ON s.a = t.k",
    ] {
        run(&db, ddl).await;
    }
    insert(&db, 0, 100).await;
    run(
        &db,
        "INSERT INTO t VALUES (101, 'one'), (102, 'two'), (103, 'three')",
    )
    .await;
    db.checkpoint().await.expect("first checkpoint");

    // A checkpoint held inside its store commit: writes and reads go on meanwhile.
    insert(&db, 100, 150).await;
    state.set(Gate::Hold);
    let arrived = state.arrived();
    let held = tokio::spawn({
        let db = db.clone();
        async move { db.checkpoint().await }
    });
    wait_until("the checkpoint to reach the store", || {
        state.arrived() > arrived
    })
    .await;
    tokio::time::timeout(Duration::from_secs(20), async {
        insert(&db, 150, 200).await;
        run(&db, "INSERT INTO t VALUES (104, 'four')").await;
        run(&db, "DELETE FROM t WHERE k = 10103").await;
        let mut s = Session::default();
        assert_eq!(
            common::rows(&db, &mut s, "SELECT count(*) FROM s").await,
            vec!["200"],
            "writes made while the checkpoint is held are visible"
        );
    })
    .await
    .expect("writes and reads must not wait for a checkpoint being written");
    assert!(!held.is_finished(), "the checkpoint is still held");
    state.set(Gate::Pass);
    held.await
        .expect("join")
        .expect("held checkpoint")
        .expect("it wrote something");
    let expected = contents(&db).await;
    drop(db);
    let db = open(&log, &state);
    assert_eq!(
        contents(&db).await,
        expected,
        "restart after a checkpoint written under load"
    );

    // A failed checkpoint: what it held (rows 200..250, key 305, key 102's update) must be
    // written by the next one, even where nothing touches it again.
    insert(&db, 200, 250).await;
    run(&db, "INSERT INTO t VALUES (305, 'five')").await;
    run(&db, "UPDATE t SET v = 'TWO' WHERE k = 102").await;
    state.set(Gate::Fail);
    assert_eq!(failures(&db), 0.0);
    assert!(db.checkpoint().await.is_err(), "the checkpoint fails");
    // Counted, and listed in eddy_checkpoints under the id the next attempt reuses.
    assert_eq!(failures(&db), 1.0);
    let last = common::rows(
        &db,
        &mut Session::default(),
        "SELECT id, kind FROM eddy_checkpoints ORDER BY finished_at DESC LIMIT 1",
    )
    .await;
    let written = db.last_checkpoint().id;
    assert_eq!(last, vec![format!("{}|failed", written + 1)]);
    insert(&db, 250, 300).await;
    run(&db, "DELETE FROM t WHERE k = 101").await;
    // Restart from the previous checkpoint and the whole log since.
    let expected = contents(&db).await;
    drop(db);
    let db = open(&log, &state);
    assert_eq!(
        contents(&db).await,
        expected,
        "restart after a failed checkpoint"
    );

    // Fail once more in this process, then succeed: the success carries the failure's
    // writes, and the log it leaves is only what came after.
    insert(&db, 300, 320).await;
    run(&db, "INSERT INTO t VALUES (325, 'six')").await;
    assert!(db.checkpoint().await.is_err(), "the checkpoint fails again");
    state.set(Gate::Pass);
    insert(&db, 320, 330).await;
    db.checkpoint()
        .await
        .expect("checkpoint after the failure")
        .expect("it wrote something");
    assert!(
        log.replay().expect("log").is_empty(),
        "the log before the committed checkpoint is dropped"
    );
    assert_eq!(failures(&db), 1.0, "a second process counts its own");
    let expected = contents(&db).await;
    assert_eq!(expected[0].len(), 330);
    assert!(!expected[3].is_empty(), "the join has rows");
    // The disk tally kept from what checkpoints wrote (after a failure and its carry)
    // equals what a restart measures by reading the store.
    let tallied = disk_bytes(&db);
    assert!(tallied.iter().all(|(_, b)| *b > 0), "{tallied:?}");
    drop(db);
    let db = open(&log, &state);
    assert_eq!(
        contents(&db).await,
        expected,
        "restart from the checkpoint alone"
    );
    assert_eq!(disk_bytes(&db), tallied);
}

/// `eddy_checkpoint_failures_total`, as the Prometheus exposition says it.
fn failures(db: &Database) -> f64 {
    let mut registry = prometheus_client::registry::Registry::default();
    db.metrics().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    text.lines()
        .find_map(|l| l.strip_prefix("eddy_checkpoint_failures_total "))
        .unwrap_or_else(|| panic!("no failure counter in {text}"))
        .parse()
        .expect("a number")
}

/// Store bytes of the keyed relations and of each view operator with state.
fn disk_bytes(db: &Database) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = db
        .relation_stats()
        .into_iter()
        .filter(|r| r.name != "s")
        .map(|r| (r.name, r.disk_bytes.expect("a state store")))
        .collect();
    out.extend(
        db.operator_stats()
            .into_iter()
            .filter(|o| o.state_rows > 0)
            .map(|o| {
                (
                    format!("{} #{}", o.view, o.node),
                    o.state_disk_bytes.expect("a state store"),
                )
            }),
    );
    out
}

/// The log behind a switch: when full, every append fails as ENOSPC does.
#[derive(Default)]
struct FullableLog {
    inner: MemoryStore,
    full: std::sync::atomic::AtomicBool,
}

impl Store for FullableLog {
    fn append(&self, entries: &[eddy::state::LogEntry]) -> eddy::Result<()> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull).into());
        }
        self.inner.append(entries)
    }
    fn replay(&self) -> eddy::Result<Vec<eddy::state::LogEntry>> {
        self.inner.replay()
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
    fn seal(&self) -> eddy::Result<()> {
        self.inner.seal()
    }
    fn drop_sealed(&self) -> eddy::Result<()> {
        self.inner.drop_sealed()
    }
}

/// A full disk: each write fails with 53100 and leaves nothing behind, reads go on, and
/// once there is room again writes work and a restart holds exactly the acknowledged ones.
#[tokio::test]
async fn a_full_disk_fails_writes_cleanly_and_reads_go_on() {
    let log = Arc::new(FullableLog::default());
    let open = || Database::open_with(Box::new(log.clone()), Config::default()).expect("open");
    let db = open();
    run(&db, "CREATE STREAM s (a BIGINT)").await;
    run(&db, "CREATE TABLE t (k BIGINT PRIMARY KEY, v TEXT)").await;
    run(
        &db,
        "CREATE MATERIALIZED VIEW per_bucket AS SELECT a % 7 AS b, count(*) AS n FROM s GROUP BY a % 7",
    )
    .await;
    insert(&db, 0, 50).await;
    run(&db, "INSERT INTO t VALUES (1, 'one')").await;
    let before = {
        let mut s = Session::default();
        (
            common::rows(&db, &mut s, "SELECT * FROM per_bucket ORDER BY b").await,
            common::rows(&db, &mut s, "SELECT * FROM t ORDER BY k").await,
        )
    };

    log.full.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut s = Session::default();
    for sql in [
        "INSERT INTO s VALUES (100), (101)",
        "INSERT INTO t VALUES (2, 'two')",
        "UPDATE t SET v = 'uno' WHERE k = 1",
        "DELETE FROM t WHERE k = 1",
        "CREATE STREAM u (a INT)",
    ] {
        let err = db
            .execute(&mut s, sql, &[])
            .await
            .expect_err("a write on a full disk fails");
        assert_eq!(err.sqlstate(), "53100", "{sql}: {err}");
    }
    let during = (
        common::rows(&db, &mut s, "SELECT * FROM per_bucket ORDER BY b").await,
        common::rows(&db, &mut s, "SELECT * FROM t ORDER BY k").await,
    );
    assert_eq!(during, before, "failed writes leave nothing, reads go on");
    assert!(db.execute(&mut s, "SELECT * FROM u", &[]).await.is_err());

    log.full.store(false, std::sync::atomic::Ordering::SeqCst);
    insert(&db, 50, 60).await;
    run(&db, "UPDATE t SET v = 'uno' WHERE k = 1").await;
    let after = (
        common::rows(&db, &mut s, "SELECT * FROM per_bucket ORDER BY b").await,
        common::rows(&db, &mut s, "SELECT * FROM t ORDER BY k").await,
    );
    assert_eq!(after.1, vec!["1|uno"]);
    drop(db);
    let db = open();
    let mut s = Session::default();
    let restarted = (
        common::rows(&db, &mut s, "SELECT * FROM per_bucket ORDER BY b").await,
        common::rows(&db, &mut s, "SELECT * FROM t ORDER BY k").await,
    );
    assert_eq!(
        restarted, after,
        "a restart holds exactly the acknowledged writes"
    );
    assert_eq!(
        common::rows(&db, &mut s, "SELECT count(*) FROM s").await,
        vec!["60"]
    );
}

/// With a checkpoint interval far away, a log that grows past `checkpoint_log_bytes`
/// brings the checkpoint forward, and it holds what was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_log_brings_the_checkpoint_forward() {
    let log = Arc::new(MemoryStore::default());
    let state = Arc::new(GatedStore::default());
    let db = Database::open_with(
        Box::new(log.clone()),
        Config {
            state: Some(state.clone()),
            checkpoint_interval: Some(Duration::from_secs(3600)),
            checkpoint_log_bytes: 256 << 10,
            ..Default::default()
        },
    )
    .expect("open");
    run(&db, "CREATE STREAM s (a BIGINT)").await;
    insert(&db, 0, 100).await;
    assert_eq!(
        db.last_checkpoint().id,
        0,
        "a small log waits for the interval"
    );
    let mut n = 100;
    for _ in 0..200 {
        if db.last_checkpoint().id > 0 {
            break;
        }
        insert(&db, n, n + 1000).await;
        n += 1000;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        db.last_checkpoint().id > 0,
        "the log's size triggered a checkpoint"
    );
    assert!(
        log.replay().expect("log").len() < (n / 1000) as usize,
        "the log before it was dropped"
    );
    let mut s = Session::default();
    let count = common::rows(&db, &mut s, "SELECT count(*) FROM s").await;
    drop(db);
    let db = open(&log, &state);
    assert_eq!(
        common::rows(&db, &mut s, "SELECT count(*) FROM s").await,
        count
    );
}
