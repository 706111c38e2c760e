//! Authentication and TLS with real clients: a configured password is checked with
//! SCRAM-SHA-256 (or MD5), wrong ones get 28P01 and are logged; TLS is offered when a
//! certificate is configured, and plain connections keep working beside it.

mod common;

use std::process::Command;

/// psql with a password and extra connection options; (success, stdout + stderr).
fn psql(port: u16, user: &str, password: &str, options: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user={user} dbname=eddy {options}"
        ))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql (./scripts/test installs postgresql-client)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn scram_password() {
    let server = common::Server::start_with_args(&["--password", "s3cret", "--user", "ann"]);
    let (ok, out) = psql(server.port, "ann", "s3cret", "", "SELECT 'in'");
    assert!(ok && out.trim() == "in", "{out}");
    // Wrong password, and the right password for a user that is not configured.
    for (user, pw) in [("ann", "wrong"), ("bob", "s3cret")] {
        let (ok, out) = psql(server.port, user, pw, "", "SELECT 1");
        assert!(!ok, "{user}/{pw} got in: {out}");
        assert!(out.contains("authentication failed"), "{out}");
    }
    let log = server.log();
    assert!(
        log.contains("password authentication failed") && log.contains("user=bob"),
        "{log}"
    );
}

#[tokio::test]
async fn wrong_password_is_28p01() {
    let server = common::Server::start_with_args(&["--password", "s3cret"]);
    let config = format!("{} password=nope", server.conn_string());
    let err = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(common::sqlstate(&err), "28P01", "{err}");
    let config = format!("{} password=s3cret", server.conn_string());
    let (client, conn) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .expect("right password");
    tokio::spawn(conn);
    let row = client.query_one("SELECT 1 + 1", &[]).await.unwrap();
    // int4, as in Postgres: integer literals that fit are int4.
    assert_eq!(row.get::<_, i32>(0), 2);
}

#[test]
fn md5_password_for_old_clients() {
    let server = common::Server::start_with_args(&["--password", "s3cret", "--auth-method", "md5"]);
    let (ok, out) = psql(server.port, "eddy", "s3cret", "", "SELECT 'md5 in'");
    assert!(ok && out.trim() == "md5 in", "{out}");
    let (ok, out) = psql(server.port, "eddy", "wrong", "", "SELECT 1");
    assert!(!ok && out.contains("authentication failed"), "{out}");
}

#[test]
fn tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = common::Server::start_with_args(&[
        "--password",
        "s3cret",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let (ok, out) = psql(
        server.port,
        "eddy",
        "s3cret",
        "sslmode=require",
        "SELECT 'over tls'",
    );
    assert!(ok && out.trim() == "over tls", "{out}");
    let (ok, out) = psql(
        server.port,
        "eddy",
        "s3cret",
        "sslmode=require",
        "\\conninfo",
    );
    assert!(
        ok && out.contains("SSL connection (protocol: TLSv1.3"),
        "{out}"
    );
    let (ok, out) = psql(
        server.port,
        "eddy",
        "s3cret",
        "sslmode=disable",
        "SELECT 'plain'",
    );
    assert!(ok && out.trim() == "plain", "{out}");
    // Without a configured certificate, TLS is declined (as Postgres without ssl=on).
    let plain = common::Server::start();
    let (ok, out) = psql(plain.port, "eddy", "", "sslmode=require", "SELECT 1");
    assert!(!ok && out.contains("does not support SSL"), "{out}");
}
