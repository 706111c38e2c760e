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
    assert!(stdout.contains("page|views|total_ms|avg|min|max|count\n/a|1|120|120|120|120|1\n/b|1|80|80|80|80|1\n(2 rows)"), "{stdout}");
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

#[test]
fn psql_lists_relations() {
    let psql = which_psql().expect("psql is required: the test command installs postgresql-client");
    let server = common::Server::start();
    let port = server.port.to_string();
    let run = |args: &[&str]| {
        let out = Command::new(&psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "eddy",
                "-d",
                "eddy",
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(args)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&[
        "-c",
        "CREATE STREAM s (a INT); CREATE TABLE t (id INT PRIMARY KEY); CREATE MATERIALIZED VIEW m AS SELECT count(*) FROM s",
    ]);
    assert_eq!(
        run(&["-c", "\\d"]),
        "public|m|materialized view|eddy\npublic|s|table|eddy\npublic|t|table|eddy\n"
    );
    assert_eq!(run(&["-c", "\\dm"]), "public|m|materialized view|eddy\n");
    assert_eq!(
        run(&["-c", "\\dt"]),
        "public|s|table|eddy\npublic|t|table|eddy\n"
    );

    // Describing one relation: psql's nine catalog queries, answered as Postgres would.
    run(&[
        "-c",
        "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(20) NOT NULL, amount DOUBLE PRECISION, price NUMERIC(10,2), at TIMESTAMP); \
         CREATE VIEW big AS SELECT id, amount FROM orders WHERE amount > 10",
    ]);
    assert_eq!(
        run(&["-c", "\\d orders"]),
        "id|integer||not null|\n\
         customer|character varying(20)||not null|\n\
         amount|double precision|||\n\
         price|numeric(10,2)|||\n\
         at|timestamp without time zone|||\n"
    );
    let plus = run(&["-c", "\\d+ m"]);
    assert!(plus.starts_with("count|bigint||||plain|||\n"), "{plus}");
    assert_eq!(
        run(&["-c", "SELECT pg_get_viewdef('m'::regclass)"]),
        " SELECT count(*) FROM s;\n"
    );
    assert_eq!(run(&["-c", "\\dv"]), "public|big|view|eddy\n");
    assert_eq!(
        run(&["-c", "\\di"]),
        "public|orders_pkey|index|eddy|orders\npublic|t_pkey|index|eddy|t\n"
    );
    assert!(run(&["-c", "\\sv big"]).contains("CREATE OR REPLACE VIEW public.big AS"));
    assert_eq!(run(&["-c", "\\dn"]), "public|eddy\n");
    assert!(run(&["-c", "\\l"]).starts_with("eddy|eddy|UTF8|"));
    assert!(run(&["-c", "\\du"]).starts_with("eddy|Superuser"));
    // eddy has no user functions, types or extensions: empty lists, not errors.
    for empty in ["\\df", "\\dT", "\\dx", "\\ds"] {
        assert_eq!(run(&["-c", empty]), "", "{empty}");
    }
}

fn which_psql() -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", "command -v psql"])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!p.is_empty()).then_some(p)
}
