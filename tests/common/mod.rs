//! A real eddy server process for tests: started on a free port with its own data
//! directory, killed when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub port: u16,
    /// The HTTP port, when started with `--http-listen`.
    pub http_port: Option<u16>,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Start a server with a fresh data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir);
        s._tmp = Some(tmp);
        s
    }

    /// Start a server with a fresh data directory and extra command-line arguments.
    /// Its stderr (the log) goes to `<tmp>/eddy.log`.
    pub fn start_with_args(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let log = std::fs::File::create(tmp.path().join("eddy.log")).expect("log file");
        let mut s = Server::spawn(&dir, args, &[], Stdio::from(log));
        s._tmp = Some(tmp);
        s
    }

    /// The log of a server started with [`Server::start_with_args`].
    pub fn log(&self) -> String {
        self._tmp
            .as_ref()
            .and_then(|t| std::fs::read_to_string(t.path().join("eddy.log")).ok())
            .unwrap_or_default()
    }

    /// Start a server on an existing data directory (restart).
    pub fn start_in(dir: &Path) -> Server {
        Server::spawn(dir, &[], &[], Stdio::inherit())
    }

    /// Start a server on `dir` with extra command-line arguments (e.g. `demo`).
    pub fn start_with(dir: &Path, extra: &[&str]) -> Server {
        Server::spawn(dir, extra, &[], Stdio::inherit())
    }

    /// Start on `dir` with extra environment variables (e.g. EDDY_KAFKA_BROKERS).
    pub fn start_in_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::spawn(dir, &[], env, Stdio::inherit())
    }

    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        Server::spawn_binary(
            Path::new(env!("CARGO_BIN_EXE_eddy")),
            dir,
            args,
            env,
            stderr,
        )
    }

    /// Start `binary` (a copy of the eddy binary, so that a build running meanwhile cannot
    /// swap the server under a long test) on `dir`, with extra arguments and environment.
    pub fn spawn_binary(
        binary: &Path,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Server {
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(args)
            .env("EDDY_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start eddy");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut line = String::new();
        let mut http_port = None;
        let addr = loop {
            line.clear();
            if reader.read_line(&mut line).expect("read eddy stdout") == 0 {
                panic!("eddy exited before listening");
            }
            if let Some(rest) = line.strip_prefix("eddy http on ") {
                http_port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("eddy listening on ") {
                break rest.split_whitespace().next().expect("address").to_string();
            }
            assert!(Instant::now() < deadline, "eddy did not start");
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        Server {
            child: Some(child),
            addr,
            port,
            http_port,
            data_dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    pub fn conn_string(&self) -> String {
        format!("host=127.0.0.1 port={} user=eddy dbname=eddy", self.port)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as `docker stop` sends it; waits for the exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let sent = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .ok()?;
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("eddy did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Keep the data directory alive beyond this server (for restarts).
    pub fn take_tmp(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.conn_string(), tokio_postgres::NoTls)
            .await
            .expect("connect to eddy");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Rows of a simple query as strings ("NULL" for null), rows in result order.
pub async fn query_rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    let msgs = client.simple_query(sql).await?;
    let mut rows = Vec::new();
    for m in msgs {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            rows.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// SQLSTATE and message of a failed statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("not a db error: {e}"))
}

/// Rows of batches as sorted `a|b|c` strings; floats rounded so that summation order does
/// not matter when comparing an incremental result with a batch one.
pub fn render(batches: &[datafusion::arrow::array::RecordBatch]) -> Vec<String> {
    use datafusion::scalar::ScalarValue;
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| match ScalarValue::try_from_array(c, r).expect("cell") {
                    ScalarValue::Float64(Some(f)) => {
                        format!("{:.6}", if f.abs() < 1e-9 { 0.0 } else { f })
                    }
                    ScalarValue::Float32(Some(f)) => format!("{:.4}", f),
                    v => v.to_string(),
                })
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// Run a query on a database directly and render its rows.
pub async fn rows(
    db: &eddy::database::Database,
    s: &mut eddy::database::Session,
    sql: &str,
) -> Vec<String> {
    match db.execute(s, sql, &[]).await {
        Ok(eddy::database::Output::Rows { batches, .. }) => render(&batches),
        Ok(other) => panic!("{sql}: expected rows, got {other:?}"),
        Err(e) => panic!("{sql}: {e}"),
    }
}
