//! The web console on the HTTP port, driven in a real headless browser (Debian chromium
//! and chromium-driver, through Selenium: tests/console/drive.py): the page loads, live
//! numbers change after an INSERT over the Postgres wire, the query box runs a SELECT and
//! refuses anything that could change the database (checked over the wire too).

mod common;

use std::process::Command;

#[test]
fn console_in_a_headless_browser() {
    let server = common::Server::start_with_args(&["--http-listen", "127.0.0.1:0"]);
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/console/drive.py"
        ))
        .arg(server.http_port.unwrap().to_string())
        .arg(server.port.to_string())
        .output()
        .expect("python3 with selenium and psycopg (scripts/test installs them)");
    assert!(
        out.status.success(),
        "console test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
