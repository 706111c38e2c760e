//! Nexmark correctness: every query of benches/nexmark/ that eddy runs is created as a live
//! view while a deterministic Nexmark source generates its events; once the source is done,
//! each view must equal DataFusion's batch answer to the same SELECT over the same events
//! (eddy's ad-hoc query path: DataFusion over a snapshot of the three streams). The
//! generator emits events in event-time order, so no row is late and every row counts
//! (asserted: late_rows = 0). Queries eddy refuses must get their documented SQLSTATE.
//!
//! Durability: the log is cut mid-stream (a crash) and reopened; the source continues from
//! the logged event count and the views must end up equal to the uncrashed run's — no
//! events lost, none applied twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::database::{Database, Output, Session};
use eddy::state::{MemoryStore, Store};

mod common;
#[path = "../benches/nexmark/queries.rs"]
mod queries;

use common::rows;
use queries::NexmarkQuery;

const EVENTS: u64 = 30_000;

/// q11's sessions computed in batch with window functions: a bid starts a new session
/// when it is at least the gap after the bidder's previous bid; a session spans
/// [first bid, last bid + gap).
const Q11_ORACLE: &str = "SELECT bidder, count(*) AS bid_count, min(date_time) AS starttime, max(date_time) + INTERVAL '10' SECOND AS endtime
FROM (SELECT bidder, date_time, sum(new_s) OVER (PARTITION BY bidder ORDER BY date_time ROWS UNBOUNDED PRECEDING) AS sid
      FROM (SELECT bidder, date_time,
                   CASE WHEN lag(date_time) OVER (PARTITION BY bidder ORDER BY date_time) IS NULL
                          OR date_time - lag(date_time) OVER (PARTITION BY bidder ORDER BY date_time) >= INTERVAL '10' SECOND
                        THEN 1 ELSE 0 END AS new_s
            FROM bid) a) b
GROUP BY bidder, sid";

async fn exec(db: &Database, s: &mut Session, sql: &str) {
    if let Err(e) = db.execute(s, sql, &[]).await {
        panic!("{sql}: {e}");
    }
}

async fn scalar(db: &Database, s: &mut Session, sql: &str) -> String {
    rows(db, s, sql)
        .await
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// Wait until every generated source has reached its target.
async fn wait_done(db: &Database, s: &mut Session) {
    let start = Instant::now();
    loop {
        let pending = scalar(
            db,
            s,
            "SELECT count(*) FROM eddy_sources WHERE status <> 'done'",
        )
        .await;
        if pending == "0" {
            return;
        }
        let failed = rows(
            db,
            s,
            "SELECT status FROM eddy_sources WHERE status LIKE 'failed%'",
        )
        .await;
        assert!(failed.is_empty(), "source failed: {failed:?}");
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "sources did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn runnable() -> Vec<NexmarkQuery> {
    queries::load()
        .into_iter()
        .filter(|q| q.expect_error.is_none())
        .collect()
}

fn view_name(q: &NexmarkQuery) -> String {
    format!("nexmark_{}", q.name)
}

/// Open a database, run the queries' setup, start the source, create every runnable view.
async fn start(store: Box<dyn Store>, source_options: &str) -> Arc<Database> {
    let db = Database::open(store).expect("open");
    let mut s = Session::default();
    for q in runnable() {
        for stmt in &q.setup {
            exec(&db, &mut s, stmt).await;
        }
    }
    exec(
        &db,
        &mut s,
        &format!(
            "CREATE SOURCE nexmark WITH (connector = 'nexmark', events = {EVENTS}{source_options})"
        ),
    )
    .await;
    for q in runnable() {
        exec(&db, &mut s, &q.create_view(&view_name(&q))).await;
    }
    db
}

async fn view_contents(db: &Database) -> BTreeMap<String, Vec<String>> {
    let mut s = Session::default();
    let mut out = BTreeMap::new();
    for q in runnable() {
        let v = view_name(&q);
        out.insert(
            v.clone(),
            rows(db, &mut s, &format!("SELECT * FROM {v}")).await,
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runnable_queries_equal_batch_answers_and_survive_restart() {
    let store = Arc::new(MemoryStore::default());
    // Paced in small chunks, so views are created (and backfilled) while events flow and
    // the log has chunks after the last CREATE to cut between.
    let db = start(Box::new(store.clone()), ", rate = 5000, batch_size = 1000").await;
    let mut s = Session::default();
    wait_done(&db, &mut s).await;

    // The streams hold exactly the generated events, in the model's 1:3:46 proportion.
    let counts = rows(
        &db,
        &mut s,
        "SELECT (SELECT count(*) FROM person) AS p, (SELECT count(*) FROM auction) AS a, (SELECT count(*) FROM bid) AS b",
    )
    .await;
    let (p, a, b) = (EVENTS / 50, EVENTS * 3 / 50, EVENTS * 46 / 50);
    assert_eq!(counts, vec![format!("{p}|{a}|{b}")]);
    let late = rows(
        &db,
        &mut s,
        "SELECT name, late_rows FROM eddy_relations WHERE late_rows > 0",
    )
    .await;
    assert!(late.is_empty(), "late rows: {late:?}");

    let views = view_contents(&db).await;
    for q in runnable() {
        let oracle_sql = if q.name == "q11" {
            Q11_ORACLE
        } else {
            &q.select
        };
        let expected = rows(&db, &mut s, oracle_sql).await;
        let got = &views[&view_name(&q)];
        assert!(
            !expected.is_empty(),
            "{}: the batch answer is empty, the comparison would prove nothing",
            q.name
        );
        assert_eq!(
            got.len(),
            expected.len(),
            "{}: {} rows in the view, {} in the batch answer",
            q.name,
            got.len(),
            expected.len()
        );
        assert_eq!(
            got, &expected,
            "{}: view differs from the batch answer",
            q.name
        );
    }

    // Restart from the complete log: same views, no event applied twice.
    drop(db);
    let db = Database::open(Box::new(store.clone())).expect("reopen");
    wait_done(&db, &mut s).await;
    assert_eq!(
        scalar(&db, &mut s, "SELECT count(*) FROM bid").await,
        b.to_string()
    );
    assert_eq!(
        view_contents(&db).await,
        views,
        "views changed by a restart"
    );

    // A crash mid-stream: the log as it was partway through. The reopened database
    // continues from the logged event count and ends with the same views.
    let entries = store.replay().expect("replay");
    // Cut after every view's CREATE, between two chunks.
    let last_ddl = entries
        .iter()
        .rposition(|e| matches!(e, eddy::state::LogEntry::Ddl(_)))
        .expect("ddl");
    let generated: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(i, e)| *i > last_ddl && matches!(e, eddy::state::LogEntry::Generated { .. }))
        .map(|(i, _)| i)
        .collect();
    assert!(
        generated.len() > 4,
        "expected several logged chunks after the views were created, got {}",
        generated.len()
    );
    let cut = generated[generated.len() / 2] + 1;
    let crashed = MemoryStore::default();
    crashed.append(&entries[..cut]).expect("copy");
    let db = Database::open(Box::new(crashed)).expect("reopen after crash");
    let before = scalar(&db, &mut s, "SELECT events FROM eddy_sources").await;
    assert!(
        before.parse::<u64>().expect("events") < EVENTS,
        "the cut log should stop mid-stream, at {before}"
    );
    wait_done(&db, &mut s).await;
    assert_eq!(
        scalar(&db, &mut s, "SELECT count(*) FROM bid").await,
        b.to_string()
    );
    assert_eq!(
        view_contents(&db).await,
        views,
        "views differ after a crash"
    );
}

#[tokio::test]
async fn refused_queries_get_their_documented_sqlstate() {
    let db = Database::open(Box::new(MemoryStore::default())).expect("open");
    let mut s = Session::default();
    exec(
        &db,
        &mut s,
        "CREATE SOURCE nexmark WITH (connector = 'nexmark', events = 1000)",
    )
    .await;
    let refused: Vec<NexmarkQuery> = queries::load()
        .into_iter()
        .filter(|q| q.expect_error.is_some())
        .collect();
    assert!(!refused.is_empty());
    for q in refused {
        let want = q.expect_error.clone().expect("filtered");
        match db
            .execute(&mut s, &q.create_view(&view_name(&q)), &[])
            .await
        {
            Ok(_) => panic!("{} was accepted; its file says eddy refuses it", q.name),
            Err(e) => {
                assert_eq!(e.sqlstate(), want, "{}: {e}", q.name);
                // Refused for the construct its file names, not for something else.
                let msg = e.to_string().to_lowercase();
                let why = if q.name == "q12" {
                    "now"
                } else {
                    "window function"
                };
                assert!(msg.contains(why), "{}: {msg}", q.name);
            }
        }
    }
}

#[tokio::test]
async fn datagen_rows_follow_the_schema_and_replay_identically() {
    let store = Arc::new(MemoryStore::default());
    let db = Database::open(Box::new(store.clone())).expect("open");
    let mut s = Session::default();
    exec(&db, &mut s, "CREATE STREAM t (k INT, v BIGINT, name VARCHAR, ok BOOLEAN, amount NUMERIC(10,2), ts TIMESTAMP) WITH (connector = 'datagen', rows = 5000, seed = 42, key_range = 20, batch_size = 700, TIMESTAMP = 'ts')").await;
    exec(&db, &mut s, "CREATE MATERIALIZED VIEW per_k AS SELECT k, count(*) AS n, sum(v) AS total, max(name) AS top FROM t GROUP BY k").await;
    wait_done(&db, &mut s).await;
    assert_eq!(scalar(&db, &mut s, "SELECT count(*) FROM t").await, "5000");
    assert_eq!(
        scalar(
            &db,
            &mut s,
            "SELECT count(DISTINCT k) FROM t WHERE k >= 0 AND k < 20"
        )
        .await,
        "20"
    );
    let view = rows(&db, &mut s, "SELECT * FROM per_k").await;
    let batch = rows(
        &db,
        &mut s,
        "SELECT k, count(*) AS n, sum(v) AS total, max(name) AS top FROM t GROUP BY k",
    )
    .await;
    assert_eq!(view, batch);
    let all = rows(&db, &mut s, "SELECT * FROM t").await;
    drop(db);
    let db = Database::open(Box::new(store)).expect("reopen");
    wait_done(&db, &mut s).await;
    assert_eq!(rows(&db, &mut s, "SELECT * FROM t").await, all);
    assert_eq!(rows(&db, &mut s, "SELECT * FROM per_k").await, view);
}

#[tokio::test]
async fn drop_source_stops_the_generator_and_drops_its_streams() {
    let db = Database::open(Box::new(MemoryStore::default())).expect("open");
    let mut s = Session::default();
    // Endless, paced.
    exec(
        &db,
        &mut s,
        "CREATE SOURCE nx WITH (connector = 'nexmark', rate = 2000, prefix = 'nx_')",
    )
    .await;
    exec(
        &db,
        &mut s,
        "CREATE MATERIALIZED VIEW n_bids AS SELECT count(*) AS n FROM nx_bid",
    )
    .await;
    let start = Instant::now();
    while scalar(&db, &mut s, "SELECT events FROM eddy_sources").await == "0" {
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rows(
            &db,
            &mut s,
            "SELECT name, connector, status FROM eddy_sources"
        )
        .await,
        vec!["nx|nexmark|running".to_string()]
    );
    // Its streams belong to it.
    let e = db
        .execute(&mut s, "DROP STREAM nx_bid CASCADE", &[])
        .await
        .expect_err("drop stream of a source");
    assert_eq!(e.sqlstate(), "2BP01");
    // Dependents need CASCADE, as for DROP STREAM.
    let e = db
        .execute(&mut s, "DROP SOURCE nx", &[])
        .await
        .expect_err("dependents");
    assert_eq!(e.sqlstate(), "2BP01");
    exec(&db, &mut s, "DROP SOURCE nx CASCADE").await;
    assert!(rows(&db, &mut s, "SELECT * FROM eddy_sources")
        .await
        .is_empty());
    for r in ["nx_person", "nx_auction", "nx_bid", "n_bids"] {
        let e = db
            .execute(&mut s, &format!("SELECT * FROM {r}"), &[])
            .await
            .expect_err("dropped");
        assert_eq!(e.sqlstate(), "42P01", "{r}");
    }
    // The name is free again, and bad options are clear errors.
    exec(
        &db,
        &mut s,
        "CREATE SOURCE nx WITH (connector = 'nexmark', events = 10, prefix = 'nx_')",
    )
    .await;
    for (sql, code) in [
        ("CREATE SOURCE nx WITH (connector = 'nexmark')", "42710"),
        (
            "CREATE SOURCE y WITH (connector = 'nexmark', colour = 'red')",
            "22023",
        ),
        (
            "CREATE SOURCE y WITH (connector = 'nexmark', events = -1)",
            "22023",
        ),
        (
            "CREATE SOURCE y (a INT) WITH (connector = 'nexmark')",
            "42601",
        ),
        (
            "CREATE STREAM d (a INTERVAL) WITH (connector = 'datagen')",
            "0A000",
        ),
        ("DROP SOURCE nope", "42704"),
        (
            "CREATE STREAM nx_bid (a INT) WITH (connector = 'datagen')",
            "42P07",
        ),
    ] {
        match db.execute(&mut s, sql, &[]).await {
            Ok(o) => panic!("{sql}: accepted ({o:?})"),
            Err(e) => assert_eq!(e.sqlstate(), code, "{sql}: {e}"),
        }
    }
    let _ = Output::command("");
}

/// Poll a one-value query over the wire until `done` accepts its value.
async fn wait_for(
    client: &tokio_postgres::Client,
    sql: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let rows = common::query_rows(client, sql).await.expect(sql);
        let v = rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_default();
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{sql}: still {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn kill_9_mid_stream_then_restart_loses_and_repeats_nothing() {
    const N: u64 = 100_000;
    let mut server = common::Server::start();
    let tmp = server.take_tmp();
    let client = server.connect().await;
    client
        .batch_execute(&format!("CREATE SOURCE nexmark WITH (connector = 'nexmark', events = {N}, rate = 50000); CREATE MATERIALIZED VIEW per_channel AS SELECT channel, count(*) AS n, sum(price) AS total FROM bid GROUP BY channel"))
        .await
        .expect("create");
    let at = wait_for(&client, "SELECT events FROM eddy_sources", |v| {
        v.parse::<u64>().map(|e| e > 0).unwrap_or(false)
    })
    .await;
    server.kill();
    assert!(at.parse::<u64>().unwrap() < N, "killed too late ({at})");
    let server = common::Server::start_in(&server.data_dir);
    let client = server.connect().await;
    wait_for(&client, "SELECT status FROM eddy_sources", |v| v == "done").await;
    let count = common::query_rows(&client, "SELECT count(*) FROM bid")
        .await
        .expect("count");
    assert_eq!(count, vec![vec![(N * 46 / 50).to_string()]]);
    let batch = common::query_rows(
        &client,
        "SELECT channel, count(*) AS n, sum(price) AS total FROM bid GROUP BY channel ORDER BY channel",
    )
    .await
    .expect("batch");
    let view = common::query_rows(&client, "SELECT * FROM per_channel ORDER BY channel")
        .await
        .expect("view");
    assert_eq!(view, batch);
    drop(tmp);
}

#[tokio::test]
async fn eddy_demo_serves_live_nexmark_views() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = common::Server::start_with(tmp.path(), &["demo", "--rate", "5000"]);
    let client = server.connect().await;
    for view in [
        "bids_per_channel",
        "bids_per_10s",
        "hot_auctions",
        "sellers_by_state",
    ] {
        wait_for(&client, &format!("SELECT count(*) FROM {view}"), |v| {
            v != "0"
        })
        .await;
    }
    let running = common::query_rows(&client, "SELECT connector, status FROM eddy_sources")
        .await
        .expect("sources");
    assert_eq!(
        running,
        vec![vec!["nexmark".to_string(), "running".to_string()]]
    );
}
