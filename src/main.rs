//! The `eddy` binary: `eddy [serve]` runs the server (the default); `eddy demo` runs it
//! with a Nexmark source and a few live views.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "eddy",
    version,
    about = "A streaming SQL database that speaks the Postgres wire protocol"
)]
struct Cli {
    /// Address to listen on for Postgres clients (port 0 picks a free port).
    #[arg(
        long,
        env = "EDDY_LISTEN",
        default_value = "127.0.0.1:5488",
        global = true
    )]
    listen: String,
    /// Directory for durable state (catalog and data).
    #[arg(
        long,
        env = "EDDY_DATA_DIR",
        default_value = "./eddy-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Require this password (SCRAM-SHA-256 by default); without one, every user is
    /// trusted, which is meant for a server on loopback.
    #[arg(long, env = "EDDY_PASSWORD", global = true, hide_env_values = true)]
    password: Option<String>,
    /// The user the password belongs to.
    #[arg(long, env = "EDDY_USER", default_value = "eddy", global = true)]
    user: String,
    /// How clients prove the password: scram-sha-256, or md5 for old clients.
    #[arg(
        long,
        env = "EDDY_AUTH_METHOD",
        default_value = "scram-sha-256",
        global = true
    )]
    auth_method: String,
    /// TLS certificate chain (PEM); with --tls-key, clients may connect with TLS.
    #[arg(long, env = "EDDY_TLS_CERT", global = true, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "EDDY_TLS_KEY", global = true, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Kafka bootstrap servers for Kafka-backed streams, tables and sinks (a source's
    /// own `properties.bootstrap.server` overrides it).
    #[arg(long, env = "EDDY_KAFKA_BROKERS", global = true)]
    kafka_brokers: Option<String>,
    /// Seconds between checkpoints of all state to the state store under the data
    /// directory (0: only on `CHECKPOINT`). A restart loads the last checkpoint and replays
    /// only the log written after it.
    #[arg(
        long,
        env = "EDDY_CHECKPOINT_INTERVAL",
        default_value_t = 10,
        global = true
    )]
    checkpoint_interval: u64,
    /// Memory the state store may use for its cache, e.g. 256MB or 1GB.
    #[arg(long, env = "EDDY_MEMORY_LIMIT", default_value = "256MB", global = true, value_parser = parse_bytes)]
    memory_limit: u64,
    /// Serve HTTP on this address: `/metrics` (Prometheus) and `/health`. Off unless set;
    /// the Docker image uses 0.0.0.0:8088 (ksqlDB's port). Port 0 picks a free port.
    #[arg(long, env = "EDDY_HTTP_LISTEN", global = true)]
    http_listen: Option<String>,
    /// Measure no latencies or operator time (histograms stay empty; row counters stay).
    /// For measuring what metrics cost, see docs/benchmarks.md.
    #[arg(long, env = "EDDY_NO_METRICS", global = true)]
    no_metrics: bool,
    /// A new view's backfill steps through its inputs' history this many rows at a time,
    /// reporting its progress in between (`eddy_progress`, NOTICE).
    #[arg(long, env = "EDDY_BACKFILL_CHUNK_ROWS", default_value_t = eddy::database::backfill::DEFAULT_BACKFILL_CHUNK_ROWS, global = true)]
    backfill_chunk_rows: usize,
    /// At most one backfill progress NOTICE this often, in milliseconds.
    #[arg(
        long,
        env = "EDDY_PROGRESS_INTERVAL_MS",
        default_value_t = 1000,
        global = true
    )]
    progress_interval_ms: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (default).
    Serve,
    /// Run the server on a fresh temporary data directory with a Nexmark source
    /// (person, auction, bid) and a few live views, ready to query.
    Demo {
        /// Nexmark events generated per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
    },
}

/// What `eddy demo` creates.
fn demo_statements(rate: u64) -> Vec<String> {
    vec![
        // Event time follows the wall clock: it starts now and advances 1/rate per event.
        format!(
            "CREATE SOURCE nexmark WITH (connector = 'nexmark', rate = {rate}, inter_event_delay_us = {}, base_time = {}, retention = '1 minute')",
            1_000_000 / rate.max(1),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        ),
        "CREATE MATERIALIZED VIEW bids_per_channel AS SELECT channel, count(*) AS bids, count(DISTINCT bidder) AS bidders, max(price) AS top_price FROM bid GROUP BY channel".into(),
        "CREATE MATERIALIZED VIEW bids_per_10s AS SELECT window_start, window_end, count(*) AS bids, avg(price) AS avg_price FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end".into(),
        "CREATE MATERIALIZED VIEW hot_auctions AS SELECT b.auction, a.item_name, count(*) AS bids FROM bid b JOIN auction a WITHIN 1 HOUR ON b.auction = a.id GROUP BY b.auction, a.item_name".into(),
        "CREATE MATERIALIZED VIEW sellers_by_state AS SELECT p.state, count(*) AS auctions FROM auction a JOIN person p WITHIN 1 HOUR ON a.seller = p.id GROUP BY p.state".into(),
    ]
}

fn main() -> anyhow::Result<()> {
    init_logging()?;
    let cli = Cli::parse();
    let config = server_config(&cli)?;
    eddy::metrics::set_collecting(!cli.no_metrics);
    let storage = Storage {
        kafka_brokers: cli.kafka_brokers.clone(),
        checkpoint_interval: cli.checkpoint_interval,
        memory_limit: cli.memory_limit,
        http_listen: cli.http_listen.clone().filter(|a| !a.is_empty()),
        backfill_chunk_rows: cli.backfill_chunk_rows,
        progress_interval: std::time::Duration::from_millis(cli.progress_interval_ms),
    };
    match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::Serve => serve(&cli.listen, &cli.data_dir, config, storage, &[]),
        Command::Demo { rate } => {
            let dir = tempfile_dir()?;
            let r = serve(&cli.listen, &dir, config, storage, &demo_statements(*rate));
            let _ = std::fs::remove_dir_all(&dir);
            r
        }
    }
}

/// Logs go to stderr, filtered by `EDDY_LOG` (default `info`), as text or, with
/// `EDDY_LOG_FORMAT=json`, one JSON object per line (timestamp, level, target, message and
/// the event's fields at the top level) for log collectors.
fn init_logging() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("EDDY_LOG_FORMAT")
        .unwrap_or_default()
        .as_str()
    {
        "json" => builder.json().flatten_event(true).init(),
        "" | "text" => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        other => anyhow::bail!("EDDY_LOG_FORMAT={other}: expected text or json"),
    }
    Ok(())
}

fn server_config(cli: &Cli) -> anyhow::Result<eddy::server::ServerConfig> {
    use eddy::server::{Auth, PasswordMethod, ServerConfig};
    let method = match cli.auth_method.to_lowercase().as_str() {
        "scram-sha-256" | "scram" => PasswordMethod::ScramSha256,
        "md5" => PasswordMethod::Md5,
        other => anyhow::bail!("--auth-method {other}: expected scram-sha-256 or md5"),
    };
    let mut config = ServerConfig {
        auth: match &cli.password {
            Some(p) => Auth::Password {
                user: cli.user.clone(),
                password: p.clone(),
                method,
            },
            None => Auth::Trust,
        },
        ..Default::default()
    };
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        config = config.with_tls(cert, key)?;
    }
    Ok(config)
}

/// A fresh directory for the demo's data (removed when the demo ends).
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("eddy-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// How the database keeps its data.
struct Storage {
    kafka_brokers: Option<String>,
    checkpoint_interval: u64,
    memory_limit: u64,
    http_listen: Option<String>,
    backfill_chunk_rows: usize,
    progress_interval: std::time::Duration,
}

/// `256MB`, `1GB`, `512KiB` or plain bytes.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 256MB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KB, MB or GB)")),
    };
    Ok((n * scale as f64) as u64)
}

fn serve(
    listen: &str,
    data_dir: &PathBuf,
    config: eddy::server::ServerConfig,
    storage: Storage,
    setup: &[String],
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = eddy::state::FileLog::open(data_dir)
            .with_context(|| format!("opening data directory {}", data_dir.display()))?;
        // The state store's cache takes half the memory limit; the rest is for operator
        // state and arrangements in memory.
        let state = eddy::state::store::SledStateStore::open(data_dir, storage.memory_limit / 2)
            .with_context(|| format!("opening the state store in {}", data_dir.display()))?;
        let db = eddy::Database::open_with(
            Box::new(store),
            eddy::Config {
                kafka_brokers: storage.kafka_brokers,
                state: Some(std::sync::Arc::new(state)),
                checkpoint_interval: (storage.checkpoint_interval > 0)
                    .then(|| std::time::Duration::from_secs(storage.checkpoint_interval)),
                checkpoint_log_bytes: eddy::database::DEFAULT_CHECKPOINT_LOG_BYTES,
                backfill_chunk_rows: Some(storage.backfill_chunk_rows),
                progress_interval: Some(storage.progress_interval),
            },
        )
        .context("loading the catalog and data")?;
        let mut session = eddy::Session::default();
        for sql in setup {
            db.execute(&mut session, sql, &[])
                .await
                .with_context(|| format!("demo setup: {sql}"))?;
        }
        let (listener, addr) = eddy::server::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        if matches!(config.auth, eddy::server::Auth::Trust) && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "no --password: every client is trusted on a non-loopback address");
        }
        let mut banner = Vec::new();
        if let Some(http) = &storage.http_listen {
            let (http_listener, http_addr) = eddy::server::bind(http)
                .await
                .with_context(|| format!("--http-listen {http}"))?;
            banner.push(format!("eddy http on {http_addr} (/metrics, /health)"));
            // Without a password anyone may read over SQL, so the console may too.
            let data_api = matches!(config.auth, eddy::server::Auth::Trust);
            tokio::spawn(eddy::server::serve_http(db.clone(), http_listener, data_api));
        }
        // Tests and scripts read these lines to find the ports. Written without
        // println!: a reader that closed our stdout must not stop the server.
        banner.push(format!(
            "eddy listening on {addr} (data in {})",
            data_dir.display()
        ));
        banner.push(format!(
            "connect with: psql -h {} -p {}",
            addr.ip(),
            addr.port()
        ));
        if !setup.is_empty() {
            banner.extend(
                [
                    "demo: a Nexmark source feeds the streams person, auction and bid; live views:",
                    "  SELECT * FROM bids_per_channel ORDER BY bids DESC LIMIT 5;",
                    "  SELECT * FROM bids_per_10s ORDER BY window_start DESC LIMIT 5;",
                    "  SELECT * FROM hot_auctions ORDER BY bids DESC LIMIT 5;",
                    "  SELECT * FROM sellers_by_state ORDER BY auctions DESC;",
                    "  SELECT * FROM eddy_sources;   -- events generated so far",
                    "  SUBSCRIBE bids_per_10s;       -- changes as they happen",
                ]
                .map(String::from),
            );
        }
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let written = banner
                .iter()
                .try_for_each(|line| writeln!(out, "{line}"))
                .and_then(|()| out.flush());
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not write the banner to stdout");
            }
        }
        if !setup.is_empty() {
            tokio::spawn(demo_status(db.clone()));
        }
        tokio::select! {
            r = eddy::server::serve_with(db, listener, config) => r.context("serving")?,
            signal = shutdown_signal() => tracing::info!(signal, "shutting down"),
        }
        Ok(())
    })
}

/// `eddy demo`'s live status line on stderr: events generated so far and the rate, twice a
/// second. Drawn only when stderr is a terminal (indicatif hides it otherwise), so scripts
/// and tests that read the banner see nothing of it.
async fn demo_status(db: std::sync::Arc<eddy::Database>) {
    let bar = indicatif::ProgressBar::new_spinner();
    if bar.is_hidden() {
        return;
    }
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    let mut session = eddy::Session::default();
    let sql = "SELECT events, rate FROM eddy_sources WHERE name = 'nexmark'";
    let mut last: Option<(u64, std::time::Instant)> = None;
    loop {
        if let Ok(eddy::Output::Rows { batches, .. }) = db.execute(&mut session, sql, &[]).await {
            let cell = |c: usize| {
                batches.first().filter(|b| b.num_rows() > 0).and_then(|b| {
                    datafusion::arrow::util::display::array_value_to_string(b.column(c), 0).ok()
                })
            };
            if let Some(events) = cell(0).and_then(|e| e.parse::<u64>().ok()) {
                let now = std::time::Instant::now();
                let per_sec = last
                    .map(|(n, t)| (events - n.min(events)) as f64 / (now - t).as_secs_f64())
                    .unwrap_or(0.0);
                last = Some((events, now));
                bar.set_message(format!(
                    "nexmark: {events} events generated ({per_sec:.0}/s, target {}/s); Ctrl-C stops the demo",
                    cell(1).unwrap_or_default()
                ));
            }
        }
        bar.tick();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Ctrl-C, or SIGTERM (`docker stop`, systemd, Kubernetes). Every acknowledged write is
/// already durable, so stopping needs no flush; returning ends the runtime.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}
