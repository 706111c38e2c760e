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
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.listen, &cli.data_dir, cli.kafka_brokers.clone()),
    }
}

fn serve(listen: &str, data_dir: &PathBuf, kafka_brokers: Option<String>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = eddy::state::FileLog::open(data_dir)
            .with_context(|| format!("opening data directory {}", data_dir.display()))?;
        let config = eddy::Config { kafka_brokers };
        let db = eddy::Database::open_with(Box::new(store), config)
            .context("loading the catalog and data")?;
        let (listener, addr) = eddy::server::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        // Tests and scripts read this line to find the port.
        println!("eddy listening on {addr} (data in {})", data_dir.display());
        println!("connect with: psql -h {} -p {}", addr.ip(), addr.port());
        use std::io::Write;
        std::io::stdout().flush()?;
        tokio::select! {
            r = eddy::server::serve(db, listener) => r.context("serving")?,
            _ = tokio::signal::ctrl_c() => eprintln!("shutting down"),
        }
        Ok(())
    })
}
