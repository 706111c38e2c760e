//! `EDDY_LOG_FORMAT=json`: every line eddy logs is one JSON object a log collector can
//! index (timestamp, level, target, message, the event's fields at the top level); the
//! default stays text; an unknown format is refused at start.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn start(dir: &Path, log: &Path, format: &str) -> common::Server {
    let file = std::fs::File::create(log).unwrap();
    common::Server::spawn_binary(
        Path::new(env!("CARGO_BIN_EXE_eddy")),
        dir,
        &[],
        &[("EDDY_LOG", "info"), ("EDDY_LOG_FORMAT", format)],
        Stdio::from(file),
    )
}

/// Wait until the log has a line containing `needle`; return the whole log.
fn wait_for(log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("eddy.log");
    let server = start(&tmp.path().join("data"), &log, "json");
    let c = server.connect().await;
    c.simple_query("CREATE TABLE t (k INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    c.simple_query("INSERT INTO t VALUES (1, 2)").await.unwrap();
    c.simple_query("CHECKPOINT").await.unwrap();
    let text = wait_for(&log, "checkpoint written");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(l[key].is_string(), "no {key}: {l}");
        }
    }
    let cp = lines
        .iter()
        .find(|l| l["message"] == "checkpoint written")
        .unwrap();
    assert_eq!(cp["level"], "INFO");
    assert_eq!(cp["id"], 1, "{cp}");
    assert!(cp["entries"].as_u64().unwrap() > 0, "{cp}");
    assert!(cp["target"].as_str().unwrap().starts_with("eddy::"), "{cp}");
    // Stopping is logged the same way.
    drop(c);
    let mut server = server;
    assert!(server.terminate().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["message"], "shutting down");
    assert_eq!(last["signal"], "SIGTERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("eddy.log");
    let server = start(&tmp.path().join("data"), &log, "text");
    let c = server.connect().await;
    c.simple_query("CREATE TABLE t (k INT PRIMARY KEY)")
        .await
        .unwrap();
    c.simple_query("INSERT INTO t VALUES (1)").await.unwrap();
    c.simple_query("CHECKPOINT").await.unwrap();
    let text = wait_for(&log, "checkpoint written");
    let line = text
        .lines()
        .find(|l| l.contains("checkpoint written"))
        .unwrap();
    assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
    assert!(line.contains("INFO") && line.contains("id=1"), "{line}");
}

#[test]
fn unknown_log_format_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("EDDY_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EDDY_LOG_FORMAT=xml"), "{err}");
}
