//! Real Postgres drivers against a real eddy server: psycopg 3 (Python) and pgjdbc (what
//! Metabase, Tableau and DBeaver use). The test command installs them if missing.

mod common;

use std::process::Command;

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (./scripts/test installs it)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
}

#[test]
fn psycopg() {
    let server = common::Server::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/psycopg_client.py"
    );
    run(
        Command::new("python3")
            .arg(script)
            .arg(server.port.to_string()),
        "psycopg client",
    );
}

#[test]
fn pgjdbc() {
    let jar = [
        "/usr/share/java/postgresql.jar",
        "/usr/share/java/postgresql-jdbc4.jar",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("pgjdbc jar: ./scripts/test installs libpostgresql-jdbc-java");
    let server = common::Server::start();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/JdbcClient.java");
    run(
        Command::new("java").args(["-cp", jar, source, &server.port.to_string()]),
        "pgjdbc client",
    );
}

#[test]
fn sqlalchemy_and_pandas() {
    let server = common::Server::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/sqlalchemy_client.py"
    );
    run(
        Command::new("python3")
            .arg(script)
            .arg(server.port.to_string()),
        "SQLAlchemy client",
    );
}

#[test]
fn node_postgres() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/node");
    assert!(
        std::path::Path::new(dir).join("node_modules/pg").exists(),
        "node-postgres: ./scripts/test runs npm install in {dir}"
    );
    let server = common::Server::start();
    run(
        Command::new("node")
            .current_dir(dir)
            .arg("node_client.js")
            .arg(server.port.to_string()),
        "node-postgres client",
    );
}

#[test]
fn asyncpg_and_pg8000() {
    let server = common::Server::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/asyncpg_pg8000_client.py"
    );
    run(
        Command::new("python3")
            .arg(script)
            .arg(server.port.to_string()),
        "asyncpg / pg8000 client",
    );
}
