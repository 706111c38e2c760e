//! Runs every `sql-tests/**/*.slt` file over the Postgres wire against a real eddy server
//! process (a fresh one per file). Errors are reported as `<SQLSTATE>: <message>`, so a
//! file can assert the code with `statement error 42601` or match the message.
//! `SLT_OVERRIDE=1` rewrites the expected results from what eddy answers (review the diff).

mod common;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Eddy {
    client: tokio_postgres::Client,
}

#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

#[async_trait]
impl sqllogictest::AsyncDB for Eddy {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let msgs = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(d) => SqlError(format!("{}: {}", d.code().code(), d.message())),
                None => SqlError(format!("connection error: {e}")),
            })?;
        let mut rows = Vec::new();
        let mut types = Vec::new();
        let mut is_query = false;
        let mut count = 0;
        for m in msgs {
            match m {
                tokio_postgres::SimpleQueryMessage::RowDescription(cols) => {
                    is_query = true;
                    types = cols.iter().map(|_| DefaultColumnType::Any).collect();
                }
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    is_query = true;
                    rows.push(
                        (0..r.len())
                            .map(|i| match r.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                tokio_postgres::SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        if is_query {
            Ok(DBOutput::Rows { types, rows })
        } else {
            Ok(DBOutput::StatementComplete(count))
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "eddy"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await
    }
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read sql-tests")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().map(|x| x == "slt").unwrap_or(false) {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_logic_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-tests");
    let mut files = Vec::new();
    slt_files(&root, &mut files);
    assert!(!files.is_empty(), "no .slt files under {}", root.display());
    let filter = std::env::var("SLT").ok();
    let mut failures = Vec::new();
    for file in files {
        if let Some(f) = &filter {
            if !file.to_string_lossy().contains(f.as_str()) {
                continue;
            }
        }
        let server = common::Server::start();
        let conn = server.conn_string();
        let mut runner = sqllogictest::Runner::new(move || {
            let conn = conn.clone();
            async move {
                let (client, c) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| SqlError(e.to_string()))?;
                tokio::spawn(async move {
                    let _ = c.await;
                });
                Ok(Eddy { client })
            }
        });
        runner.with_hash_threshold(0);
        if std::env::var_os("SLT_OVERRIDE").is_some() {
            // Regenerate the expected output from what eddy answers now (review the diff).
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap_or_else(|e| panic!("update {}: {e}", file.display()));
            eprintln!("updated {}", file.display());
            drop(server);
            continue;
        }
        match runner.run_file_async(&file).await {
            Ok(()) => eprintln!("ok   {}", file.display()),
            Err(e) => {
                eprintln!("FAIL {}\n{}", file.display(), e.display(true));
                failures.push(file.display().to_string());
            }
        }
        drop(server);
    }
    assert!(failures.is_empty(), "failed: {failures:?}");
}
