//! `--http-listen`: `/metrics` scraped from a real server process and parsed by the
//! Prometheus project's Python client (both the Prometheus text and the strict OpenMetrics
//! parser, tests/metrics/scrape.py); every figure is checked to move as the statements
//! sent should move it — and not to move for a statement that failed. Also `/health`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::Server;
use serde_json::Value;

const SCRAPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics/scrape.py");

struct Scrape(Vec<Value>);

impl Scrape {
    fn take(server: &Server, openmetrics: bool) -> Scrape {
        let url = format!("http://127.0.0.1:{}/metrics", server.http_port.unwrap());
        let mut cmd = Command::new("python3");
        cmd.arg(SCRAPE).arg(&url);
        if openmetrics {
            cmd.arg("openmetrics");
        }
        let out = cmd
            .output()
            .expect("python3 with prometheus_client (scripts/test installs it)");
        assert!(
            out.status.success(),
            "scrape failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Scrape(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        )
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .iter()
            .find(|s| {
                s["name"] == name
                    && labels
                        .iter()
                        .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
            })
            .and_then(|s| s["value"].as_f64())
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    }

    fn rel(&self, name: &str, relation: &str) -> f64 {
        self.value(name, &[("relation", relation)])
    }
}

fn http(server: &Server, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", server.http_port.unwrap())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_the_statements() {
    let server = Server::start_with_args(&["--http-listen", "127.0.0.1:0"]);
    assert!(server.http_port.is_some(), "no 'eddy http on' line");
    let c = server.connect().await;
    for sql in [
        "CREATE STREAM clicks (user_id INT, ms INT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
        "CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n FROM clicks GROUP BY user_id",
        "CREATE MATERIALIZED VIEW per_min AS SELECT window_start, count(*) AS n FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY window_start",
        "CREATE MATERIALIZED VIEW ratio AS SELECT user_id, 100 / ms AS r FROM clicks",
    ] {
        c.simple_query(sql).await.unwrap();
    }
    let before = Scrape::take(&server, false);
    assert_eq!(before.rel("eddy_relation_rows_in_total", "clicks"), 0.0);
    assert_eq!(
        before.get("eddy_relation_freshness_seconds", &[("relation", "clicks")]),
        None
    );
    let writes_before = before
        .get(
            "eddy_statement_duration_seconds_count",
            &[("kind", "write")],
        )
        .unwrap_or(0.0);
    let log_writes_before = before.value("eddy_log_write_duration_seconds_count", &[]);

    // 5 rows for 2 users, in minute 10:00; then one at 10:05 (watermark 10:04:59).
    c.simple_query(
        "INSERT INTO clicks VALUES (1, 10, '2026-01-01 10:00:00'), (1, 20, '2026-01-01 10:00:10'), (2, 5, '2026-01-01 10:00:20'), (2, 5, '2026-01-01 10:00:30'), (1, 1, '2026-01-01 10:00:40')",
    )
    .await
    .unwrap();
    c.simple_query("INSERT INTO clicks VALUES (3, 2, '2026-01-01 10:05:00')")
        .await
        .unwrap();
    // Late: behind the watermark, counted by the window view.
    c.simple_query("INSERT INTO clicks VALUES (3, 4, '2026-01-01 10:00:50')")
        .await
        .unwrap();
    // Refused at the door: no event time.
    c.simple_query("INSERT INTO clicks VALUES (4, 4, NULL)")
        .await
        .unwrap();
    // Fails in a view (division by zero): the epoch aborts and counts nothing.
    let err = c
        .simple_query("INSERT INTO clicks VALUES (5, 0, '2026-01-01 10:06:00')")
        .await
        .unwrap_err();
    assert_eq!(common::sqlstate(&err), "22012", "{err}");
    // A failed read.
    assert!(c.simple_query("SELECT * FROM no_such").await.is_err());

    let after = Scrape::take(&server, false);
    // Base stream: 7 rows applied in 3 epochs (the NULL row never entered; the failed
    // statement's row was undone).
    assert_eq!(after.rel("eddy_relation_rows_in_total", "clicks"), 7.0);
    assert_eq!(after.rel("eddy_relation_epochs_total", "clicks"), 3.0);
    assert_eq!(after.rel("eddy_relation_rows", "clicks"), 7.0);
    assert_eq!(after.rel("eddy_relation_bad_records_total", "clicks"), 1.0);
    // The aggregate read the same 7 change rows and holds 3 groups.
    assert_eq!(after.rel("eddy_relation_rows_in_total", "per_user"), 7.0);
    assert_eq!(after.rel("eddy_relation_rows", "per_user"), 3.0);
    assert_eq!(after.rel("eddy_relation_state_rows", "per_user"), 3.0);
    // per_user's output: +2 groups, then +1 group, then -1 +1 for user 3 = 5 change rows.
    assert_eq!(after.rel("eddy_relation_rows_out_total", "per_user"), 5.0);
    assert_eq!(after.rel("eddy_relation_late_rows_total", "per_min"), 1.0);
    assert_eq!(after.rel("eddy_relation_late_rows_total", "per_user"), 0.0);
    // Freshness: just written to. Watermark lag: wall clock minus the watermark
    // (2026-01-01 10:04:59 UTC, the max event time less the 1 s delay).
    let fresh = after.rel("eddy_relation_freshness_seconds", "clicks");
    assert!((0.0..30.0).contains(&fresh), "freshness {fresh}");
    let lag = after.rel("eddy_relation_watermark_lag_seconds", "clicks");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let watermark = 1_767_261_899.0; // 2026-01-01 10:04:59 UTC
    assert!((lag - (now - watermark)).abs() < 30.0, "lag {lag}");
    // Statement latencies: 5 writes more (one failed), one failed read.
    assert_eq!(
        after.value(
            "eddy_statement_duration_seconds_count",
            &[("kind", "write")]
        ),
        writes_before + 5.0
    );
    assert_eq!(
        after.value("eddy_statement_errors_total", &[("kind", "write")]),
        1.0
    );
    assert_eq!(
        after.value("eddy_statement_errors_total", &[("kind", "read")]),
        1.0
    );
    // Each of the 3 accepted INSERTs was appended and fsynced.
    assert_eq!(
        after.value("eddy_log_write_duration_seconds_count", &[]),
        log_writes_before + 3.0
    );
    assert!(after.value("eddy_connections", &[]) >= 1.0);
    assert!(after.value("eddy_connections_accepted_total", &[]) >= 1.0);

    // A checkpoint: counted, aged, sized.
    assert_eq!(after.get("eddy_checkpoint_age_seconds", &[]), None);
    c.simple_query("CHECKPOINT").await.unwrap();
    let cp = Scrape::take(&server, true);
    assert_eq!(cp.value("eddy_checkpoint_duration_seconds_count", &[]), 1.0);
    assert_eq!(cp.value("eddy_checkpoint_id", &[]), 1.0);
    assert!(cp.value("eddy_checkpoint_age_seconds", &[]) < 30.0);
    assert!(cp.value("eddy_state_store_bytes", &[]) > 0.0);
    // The OpenMetrics parser saw the same counters (it names counter samples `_total`).
    assert_eq!(cp.rel("eddy_relation_rows_in_total", "clicks"), 7.0);
    assert_eq!(cp.value("eddy_checkpoint_failures_total", &[]), 0.0);
    // Disk: the checkpoint wrote the stream's rows, the view's rows and its groups.
    for rel in ["clicks", "per_user", "per_min"] {
        assert!(cp.rel("eddy_relation_disk_bytes", rel) > 0.0, "{rel}");
    }
    // Per operator: per_user's aggregate read the 7 rows, holds 3 groups, has them on disk.
    let agg = [("view", "per_user"), ("operator", "Aggregate")];
    assert_eq!(cp.value("eddy_operator_rows_in_total", &agg), 7.0);
    assert_eq!(cp.value("eddy_operator_rows_out_total", &agg), 5.0);
    assert_eq!(cp.value("eddy_operator_state_rows", &agg), 3.0);
    assert!(cp.value("eddy_operator_state_disk_bytes", &agg) > 0.0);
    assert!(cp.value("eddy_operator_busy_seconds_total", &agg) > 0.0);
    let window = [("view", "per_min"), ("operator", "Aggregate")];
    assert_eq!(cp.value("eddy_operator_late_rows_total", &window), 1.0);

    // Connections: a second client shows, and goes when it disconnects.
    let open = cp.value("eddy_connections", &[]);
    let c2 = server.connect().await;
    c2.simple_query("SELECT 1").await.unwrap();
    assert_eq!(
        Scrape::take(&server, false).value("eddy_connections", &[]),
        open + 1.0
    );
    drop(c2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Scrape::take(&server, false).value("eddy_connections", &[]) != open {
        assert!(
            std::time::Instant::now() < deadline,
            "closed connection still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn health_and_other_paths() {
    let server = Server::start_with_args(&["--http-listen", "127.0.0.1:0"]);
    let ok = http(&server, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    let body: Value = serde_json::from_str(ok.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    let missing = http(&server, "GET /nope HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = http(
        &server,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert!(http(&server, &huge).starts_with("HTTP/1.1 431 "));
    let head = http(&server, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    // Garbage and an early close do not take the endpoint down.
    drop(TcpStream::connect(("127.0.0.1", server.http_port.unwrap())).unwrap());
    let _ = http(&server, "\u{0}\u{1}garbage\r\n\r\n");
    assert!(http(&server, "GET /health HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

#[test]
fn http_is_off_unless_asked_for() {
    let server = Server::start();
    assert_eq!(server.http_port, None);
}

/// `eddy_connections` lists each session with its own statement and state, and forgets a
/// session when it disconnects.
#[tokio::test(flavor = "multi_thread")]
async fn connections_view_lists_sessions() {
    let server = Server::start();
    let a = server.connect().await;
    let (b, conn) = tokio_postgres::connect(
        &format!("{} application_name=reporter", server.conn_string()),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let b_task = tokio::spawn(async move {
        let _ = conn.await;
    });
    b.simple_query("SELECT 42").await.unwrap();
    let rows = common::query_rows(
        &a,
        "SELECT application_name, state, query, statements FROM eddy_connections ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "NULL");
    assert_eq!(rows[0][1], "active");
    assert_eq!(rows[1], ["reporter", "idle", "SELECT 42", "1"], "{rows:?}");
    drop(b);
    let _ = b_task.await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = common::query_rows(&a, "SELECT count(*) FROM eddy_connections")
            .await
            .unwrap();
        if rows[0][0] == "1" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "closed session still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// EXPLAIN ANALYZE: the view's operator tree with each operator's committed counters.
#[tokio::test(flavor = "multi_thread")]
async fn explain_analyze_shows_live_counters() {
    let server = Server::start();
    let c = server.connect().await;
    for sql in [
        "CREATE TABLE orders (id INT PRIMARY KEY, customer INT, amount INT)",
        "CREATE MATERIALIZED VIEW big AS SELECT customer, sum(amount) AS total FROM orders WHERE amount > 10 GROUP BY customer",
    ] {
        c.simple_query(sql).await.unwrap();
    }
    let plan = |c: tokio_postgres::Client| async move {
        let rows = common::query_rows(&c, "EXPLAIN ANALYZE big").await.unwrap();
        (
            c,
            rows.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        )
    };
    let (c, before) = plan(c).await;
    assert!(before[1].contains("rows in: 0, rows out: 0"), "{before:?}");
    assert!(before[1].contains("last input: never"), "{before:?}");
    c.simple_query("INSERT INTO orders VALUES (1, 7, 5), (2, 7, 50), (3, 8, 20), (4, 9, 30)")
        .await
        .unwrap();
    // An upsert: -old +new into the filter, which passes only the new row.
    c.simple_query("INSERT INTO orders VALUES (4, 9, 3)")
        .await
        .unwrap();
    let (_c, after) = plan(c).await;
    let line = |op: &str| {
        after
            .iter()
            .find(|l| l.trim_start().starts_with(op))
            .unwrap_or_else(|| panic!("no {op} in {after:?}"))
            .clone()
    };
    assert!(after[1].contains("rows in: 6, rows out: 4"), "{after:?}");
    assert!(!after[1].contains("never"), "{after:?}");
    // Filter: 4 + 2 rows in, 3 + 1 (the retraction of 30) out.
    assert!(
        line("Filter").contains("(rows in 6, out 4, time "),
        "{after:?}"
    );
    // Aggregate: 4 rows in; +7 +8 +9, then -9 (its group empties).
    assert!(
        line("Aggregate").contains("(rows in 4, out 4, time "),
        "{after:?}"
    );
    assert!(line("Aggregate").contains("[state: 2 groups]"), "{after:?}");
    assert!(
        after.iter().any(|l| l.trim() == "Source: orders"),
        "{after:?}"
    );
}

/// Concurrent INSERTs share epochs (group commit): a stream counts one epoch per shared
/// epoch, as its view's dataflow does (the view's one more is its backfill at CREATE).
#[tokio::test(flavor = "multi_thread")]
async fn group_committed_inserts_count_one_epoch() {
    let server = Server::start();
    let c = server.connect().await;
    c.simple_query("CREATE STREAM hits (k INT, n INT)")
        .await
        .unwrap();
    c.simple_query(
        "CREATE MATERIALIZED VIEW per_k AS SELECT k, count(*) AS c FROM hits GROUP BY k",
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for k in 0..16 {
        let conn = server.connect().await;
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                conn.simple_query(&format!("INSERT INTO hits VALUES ({k}, {n})"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = common::query_rows(
        &c,
        "SELECT name, rows_in, epochs FROM eddy_freshness ORDER BY name",
    )
    .await
    .unwrap();
    let (hits, view) = (&rows[0], &rows[1]);
    assert_eq!(hits[0], "hits");
    assert_eq!(hits[1], "320", "{rows:?}");
    assert_eq!(view[1], "320", "{rows:?}");
    let epochs: u64 = hits[2].parse().unwrap();
    assert!((1..=320).contains(&epochs), "{rows:?}");
    assert_eq!(view[2].parse::<u64>().unwrap(), epochs + 1, "{rows:?}");
}

/// With a password on the Postgres port the console's data endpoints are off (HTTP has no
/// password); metrics and health stay.
#[test]
fn console_data_is_off_when_sql_needs_a_password() {
    let server = Server::start_with_args(&["--http-listen", "127.0.0.1:0", "--password", "s3cret"]);
    let q = http(&server, "GET /api/query?sql=SELECT%201 HTTP/1.1\r\n\r\n");
    assert!(q.starts_with("HTTP/1.1 403 "), "{q}");
    let r = http(&server, "GET /api/relations HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
    assert!(http(&server, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
    assert!(http(&server, "GET /health HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
    // Without a password the same query answers.
    let open = Server::start_with_args(&["--http-listen", "127.0.0.1:0"]);
    let q = http(
        &open,
        "GET /api/query?sql=SELECT%201%20AS%20one HTTP/1.1\r\n\r\n",
    );
    assert!(
        q.starts_with("HTTP/1.1 200 ") && q.contains(r#""rows":[["1"]]"#),
        "{q}"
    );
}

/// A view over a long history: while its backfill runs, psql (a real client) prints its
/// progress NOTICEs and another session sees it in `eddy_progress`; the chunked backfill
/// gives the same rows as the same query in batch. Chunks of 200 rows and a NOTICE per
/// chunk keep it fast.
#[tokio::test(flavor = "multi_thread")]
async fn backfill_progress_reaches_psql_and_eddy_progress() {
    use std::io::BufRead;
    use std::time::Instant;
    const ROWS: usize = 100_000;
    let server = Server::start_with_args(&[
        "--backfill-chunk-rows",
        "200",
        "--progress-interval-ms",
        "0",
    ]);
    let c = server.connect().await;
    c.simple_query("CREATE STREAM hist (k INT, v INT)")
        .await
        .unwrap();
    for start in (0..ROWS).step_by(5000) {
        let values: Vec<String> = (start..start + 5000)
            .map(|i| format!("({}, {})", i % 1000, i % 7))
            .collect();
        c.simple_query(&format!("INSERT INTO hist VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
    let view = "SELECT k, count(*) AS n, sum(v) AS s, count(DISTINCT v) AS d FROM hist GROUP BY k";
    let mut psql = Command::new("psql")
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "eddy",
        ])
        .args(["-d", "eddy", "-p", &server.port.to_string()])
        .args(["-c", &format!("CREATE MATERIALIZED VIEW per_k AS {view}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql (./scripts/test installs postgresql-client)");
    let stderr = psql.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .map(|l| (Instant::now(), l))
            .collect::<Vec<_>>()
    });
    // Poll eddy_progress from another session while psql runs.
    let mut seen: Vec<(Instant, Vec<String>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while psql.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the CREATE did not finish");
        let rows = common::query_rows(
            &c,
            "SELECT \"view\", rows_done, rows_total, elapsed_s >= 0, started IS NOT NULL FROM eddy_progress",
        )
        .await
        .unwrap();
        for r in rows {
            seen.push((Instant::now(), r));
        }
    }
    let status = psql.wait().unwrap();
    let lines = reader.join().unwrap();
    assert!(status.success(), "psql failed: {lines:?}");
    let notices: Vec<(Instant, u64)> = lines
        .iter()
        .filter_map(|(t, l)| {
            let rest = l.strip_prefix("NOTICE:  backfilling per_k: ")?;
            let (done, rest) = rest.split_once(" of ")?;
            assert!(rest.starts_with(&format!("{ROWS} input rows (")), "{l}");
            Some((*t, done.parse().unwrap()))
        })
        .collect();
    assert!(notices.len() >= 3, "few NOTICEs: {lines:?}");
    assert!(
        notices.windows(2).all(|w| w[0].1 < w[1].1) && notices.iter().all(|n| n.1 < ROWS as u64),
        "{notices:?}"
    );
    // eddy_progress showed the backfill part way, its figures sane.
    let total = ROWS.to_string();
    let partway: Vec<&(Instant, Vec<String>)> = seen
        .iter()
        .filter(|(_, r)| {
            r[0] == "per_k"
                && r[2] == total
                && r[3] == "t"
                && r[4] == "t"
                && r[1].parse::<usize>().unwrap() < ROWS
        })
        .collect();
    assert!(
        !partway.is_empty(),
        "eddy_progress never showed per_k: {seen:?}"
    );
    // The NOTICEs arrived while the backfill ran, not in a burst at its end.
    assert!(
        partway.iter().any(|(t, _)| *t > notices[0].0),
        "no eddy_progress row after the first NOTICE: the NOTICEs came at the end"
    );
    // Done: no longer listed, and the same rows as the query in batch.
    let after = common::query_rows(&c, "SELECT count(*) FROM eddy_progress")
        .await
        .unwrap();
    assert_eq!(after[0][0], "0");
    let live = common::query_rows(&c, "SELECT * FROM per_k ORDER BY k")
        .await
        .unwrap();
    let batch = common::query_rows(&c, &format!("{view} ORDER BY k"))
        .await
        .unwrap();
    assert_eq!(live.len(), 1000);
    assert_eq!(live, batch);
}

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docker/grafana/eddy-dashboard.json"
);

/// The metric names an expression reads (`eddy_...`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("eddy_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every metric the Grafana dashboard queries is exported by a running eddy that has what
/// the metric describes (a stream with a watermark, views with state, a checkpoint, a
/// failed statement): a renamed metric breaks this test, not a dashboard in production.
#[tokio::test(flavor = "multi_thread")]
async fn grafana_dashboard_queries_only_exported_metrics() {
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    assert_eq!(dash["uid"], "eddy-overview");
    let mut wanted = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("a panel has targets");
        assert!(!targets.is_empty(), "{panel}");
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}");
        for t in targets {
            let names = metric_names(t["expr"].as_str().unwrap());
            assert!(!names.is_empty(), "{t}");
            wanted.extend(names);
        }
    }
    assert!(wanted.len() >= 25, "{wanted:?}");

    let server = Server::start_with_args(&["--http-listen", "127.0.0.1:0"]);
    let c = server.connect().await;
    for sql in [
        "CREATE STREAM clicks (user_id INT, ms INT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
        "CREATE MATERIALIZED VIEW per_min AS SELECT window_start, count(*) AS n FROM TUMBLE(clicks, ts, INTERVAL '1' MINUTE) GROUP BY window_start",
        "INSERT INTO clicks VALUES (1, 10, '2026-01-01 10:00:00'), (2, 20, '2026-01-01 10:05:00')",
        "CHECKPOINT",
    ] {
        c.simple_query(sql).await.unwrap();
    }
    assert!(c.simple_query("SELECT * FROM no_such").await.is_err());
    let scrape = Scrape::take(&server, false);
    let exported: std::collections::BTreeSet<&str> =
        scrape.0.iter().filter_map(|s| s["name"].as_str()).collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, not exported"
    );
}

/// `eddy demo` on a terminal shows a live status line (events generated, rate) on stderr
/// that advances; without a terminal, stderr carries no such line. The terminal is a real
/// pseudo-terminal from Python's standard `pty` module.
#[test]
fn demo_shows_live_progress_on_a_terminal_only() {
    let bin = env!("CARGO_BIN_EXE_eddy");
    let script = r#"
import os, pty, select, subprocess, sys, time
master, slave = pty.openpty()
p = subprocess.Popen([sys.argv[1], "demo", "--listen", "127.0.0.1:0", "--rate", "2000"],
                     stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
out = b""
end = time.time() + 6
while time.time() < end:
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try:
            out += os.read(master, 65536)
        except OSError:
            break
p.terminate()
p.wait()
sys.stdout.write(out.decode("utf-8", "replace"))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, bin])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<u64> = text
        .split("nexmark: ")
        .skip(1)
        .filter_map(|s| s.split(" events generated").next()?.parse().ok())
        .collect();
    assert!(
        counts.len() >= 3,
        "no live status line on the terminal: {text}"
    );
    assert!(
        counts.last() > counts.first(),
        "the status line did not advance: {counts:?}"
    );

    // Not a terminal: the banner on stdout, and no status line anywhere.
    let mut child = std::process::Command::new(bin)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("eddy demo starts");
    std::thread::sleep(std::time::Duration::from_secs(3));
    child.kill().expect("kill");
    let out = child.wait_with_output().expect("output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("eddy listening on"), "{stdout}");
    assert!(
        !stdout.contains("events generated (") && !stderr.contains("events generated ("),
        "status line without a terminal: {stdout}\n{stderr}"
    );
}
