//! The walkthrough run by the real `psql` client against a real server.

mod common;

use std::process::Command;

const SCRIPT: &str = include_str!("psql_smoke.sql");

#[test]
fn psql_runs_the_walkthrough() {
    let psql = which_psql().expect("psql is required: the test command installs postgresql-client");
    let server = common::Server::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("walkthrough.sql");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new(psql)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "eddy",
            "-d",
            "eddy",
            "-X",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
        ])
        .arg(&script)
        .output()
        .expect("run psql");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql failed:\n{stdout}\n{stderr}");
    // The view is live and correct when first read.
    assert!(stdout.contains("page|views|total_ms|avg|min|max|count\n/a|1|120|120.0|120|120|1\n/b|1|80|80.0|80|80|1\n(2 rows)"), "{stdout}");
    for tag in [
        "CREATE STREAM",
        "CREATE TABLE",
        "INSERT 0 2",
        "UPDATE 1",
        "DELETE 1",
        "CREATE MATERIALIZED VIEW",
        "DROP MATERIALIZED VIEW",
    ] {
        assert!(stdout.contains(tag), "missing {tag} in:\n{stdout}");
    }
    assert!(stdout.contains("per_region|TABLE (query)"), "{stdout}");
    assert!(stdout.contains("apac|1"), "{stdout}");
}

fn which_psql() -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", "command -v psql"])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!p.is_empty()).then_some(p)
}
