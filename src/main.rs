//! The `eddy` binary: `eddy [serve]` runs the server (the default).

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (default).
    Serve,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::Serve => {
            let config = server_config(&cli)?;
            serve(
                &cli.listen,
                &cli.data_dir,
                config,
                cli.kafka_brokers.clone(),
            )
        }
    }
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

fn serve(
    listen: &str,
    data_dir: &PathBuf,
    config: eddy::server::ServerConfig,
    kafka_brokers: Option<String>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = eddy::state::FileLog::open(data_dir)
            .with_context(|| format!("opening data directory {}", data_dir.display()))?;
        let db = eddy::Database::open_with(Box::new(store), eddy::Config { kafka_brokers })
            .context("loading the catalog and data")?;
        let (listener, addr) = eddy::server::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        if matches!(config.auth, eddy::server::Auth::Trust) && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "no --password: every client is trusted on a non-loopback address");
        }
        // Tests and scripts read this line to find the port.
        println!("eddy listening on {addr} (data in {})", data_dir.display());
        println!("connect with: psql -h {} -p {}", addr.ip(), addr.port());
        use std::io::Write;
        std::io::stdout().flush()?;
        tokio::select! {
            r = eddy::server::serve_with(db, listener, config) => r.context("serving")?,
            _ = tokio::signal::ctrl_c() => eprintln!("shutting down"),
        }
        Ok(())
    })
}
