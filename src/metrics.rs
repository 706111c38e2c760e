//! Server-wide measurements: statement latency, log write (fsync) latency, checkpoints, and
//! the open connections. Per-relation figures (rows in and out, freshness, watermark, state)
//! are not kept here: they live with the relation and its dataflow and are read at scrape
//! time (`Database::relation_stats`), so the write path pays for a few integer additions
//! per epoch, not for a metrics registry.
//!
//! Invariant: everything here is append-only bookkeeping behind its own small lock or an
//! atomic; nothing here is taken while the database lock is wanted by the same thread in
//! the other order (the database may call in here while holding its lock, never the
//! reverse).
//!
//! Timing can be switched off for the whole process (`--no-metrics`, [`set_collecting`]):
//! then no clock is read for operator time, statement latency or log latency, and those
//! histograms stay empty. Row counters stay: the system views and EXPLAIN ANALYZE show
//! them, and they cost an addition per batch. The switch exists to measure what metrics
//! cost (docs/benchmarks.md), not as a tuning knob.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// What a statement does, as the latency histogram labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// SELECT, SHOW, EXPLAIN: reads.
    Read,
    /// INSERT, UPDATE, DELETE.
    Write,
    /// CREATE, DROP, ALTER.
    Ddl,
    /// Transaction control, SET, CHECKPOINT, push queries' setup.
    Other,
}

impl StatementKind {
    pub fn label(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Ddl => "ddl",
            StatementKind::Other => "other",
        }
    }
}

static COLLECTING: AtomicBool = AtomicBool::new(true);

/// Whether latencies and operator time are measured (true unless switched off).
#[inline]
pub fn collecting() -> bool {
    COLLECTING.load(Ordering::Relaxed)
}

/// Switch latency and operator-time measurement on or off for the whole process.
pub fn set_collecting(on: bool) {
    COLLECTING.store(on, Ordering::Relaxed);
}

/// A clock started only while metrics are collected: `Stopwatch::start()` then `elapsed()`
/// is `None` when they are off, so a switched-off process reads no clock.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Option<std::time::Instant>);

impl Stopwatch {
    #[inline]
    pub fn start() -> Self {
        Stopwatch(collecting().then(std::time::Instant::now))
    }

    #[inline]
    pub fn elapsed(self) -> Option<Duration> {
        self.0.map(|t| t.elapsed())
    }
}

type KindLabel = [(&'static str, &'static str); 1];

/// The server's instruments. One per database; cloned into the HTTP endpoint's registry.
pub struct Metrics {
    statement_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    statement_errors: Family<KindLabel, Counter>,
    log_write_seconds: Histogram,
    checkpoint_seconds: Histogram,
    checkpoint_failures: Counter,
    connections_accepted: Counter,
    pub connections: ConnectionRegistry,
    checkpoints: Mutex<VecDeque<CheckpointRecord>>,
    backfills: Mutex<BTreeMap<u64, Backfill>>,
    next_backfill: AtomicU64,
}

fn latency_buckets() -> Histogram {
    // 50 µs .. ~26 s, doubling.
    Histogram::new(exponential_buckets(0.00005, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            statement_seconds: Family::new_with_constructor(latency_buckets),
            statement_errors: Family::default(),
            log_write_seconds: latency_buckets(),
            checkpoint_seconds: latency_buckets(),
            checkpoint_failures: Counter::default(),
            connections_accepted: Counter::default(),
            connections: ConnectionRegistry::default(),
            checkpoints: Mutex::new(VecDeque::new()),
            backfills: Mutex::new(BTreeMap::new()),
            next_backfill: AtomicU64::new(0),
        }
    }
}

/// Checkpoints remembered for `eddy_checkpoints`.
const CHECKPOINT_HISTORY: usize = 100;

/// One checkpoint written (or loaded at start).
#[derive(Debug, Clone)]
pub struct CheckpointRecord {
    pub id: u64,
    /// `written`, `loaded` or `failed`.
    pub kind: &'static str,
    pub at: SystemTime,
    pub duration: Duration,
    /// Store entries written (0 for a load).
    pub entries: u64,
    /// The state store's size on disk afterwards.
    pub store_bytes: u64,
}

impl Metrics {
    /// Register the instruments in `registry` (the HTTP endpoint's), under `eddy_`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "eddy_statement_duration",
            "Time to run a statement, from parse to result (push queries: to their first rows)",
            Unit::Seconds,
            self.statement_seconds.clone(),
        );
        registry.register(
            "eddy_statement_errors",
            "Statements that failed",
            self.statement_errors.clone(),
        );
        registry.register_with_unit(
            "eddy_log_write_duration",
            "Time to append to the log and fsync it, per write",
            Unit::Seconds,
            self.log_write_seconds.clone(),
        );
        registry.register_with_unit(
            "eddy_checkpoint_duration",
            "Time to write a checkpoint",
            Unit::Seconds,
            self.checkpoint_seconds.clone(),
        );
        registry.register(
            "eddy_checkpoint_failures",
            "Checkpoints that failed (nothing of them is lost: the next one writes it)",
            self.checkpoint_failures.clone(),
        );
        registry.register(
            "eddy_connections_accepted",
            "Client connections accepted since start",
            self.connections_accepted.clone(),
        );
    }

    /// A statement ended; `took` is None when timing is off (its error is still counted).
    pub fn statement_finished(&self, kind: StatementKind, took: Option<Duration>, ok: bool) {
        let label = [("kind", kind.label())];
        if let Some(took) = took {
            self.statement_seconds
                .get_or_create(&label)
                .observe(took.as_secs_f64());
        }
        if !ok {
            self.statement_errors.get_or_create(&label).inc();
        }
    }

    pub fn log_written(&self, took: Duration) {
        self.log_write_seconds.observe(took.as_secs_f64());
    }

    pub fn checkpoint_finished(&self, record: CheckpointRecord) {
        if record.kind == "written" {
            self.checkpoint_seconds
                .observe(record.duration.as_secs_f64());
        }
        let mut h = lock(&self.checkpoints);
        if h.len() == CHECKPOINT_HISTORY {
            h.pop_front();
        }
        h.push_back(record);
    }

    /// A checkpoint failed: counted, and remembered like one written.
    pub fn checkpoint_failed(&self, record: CheckpointRecord) {
        self.checkpoint_failures.inc();
        self.checkpoint_finished(record);
    }

    /// The checkpoints remembered, oldest first.
    pub fn checkpoints(&self) -> Vec<CheckpointRecord> {
        lock(&self.checkpoints).iter().cloned().collect()
    }

    /// A view's backfill started: it is listed (`eddy_progress`) until the handle is dropped.
    pub fn backfill_started(self: &Arc<Self>, view: &str, rows_total: u64) -> BackfillHandle {
        let id = self.next_backfill.fetch_add(1, Ordering::Relaxed);
        lock(&self.backfills).insert(
            id,
            Backfill {
                view: view.to_string(),
                rows_done: 0,
                rows_total,
                started_at: SystemTime::now(),
                started: std::time::Instant::now(),
            },
        );
        BackfillHandle {
            metrics: self.clone(),
            id,
        }
    }

    /// The backfills running now, oldest first.
    pub fn backfills(&self) -> Vec<Backfill> {
        lock(&self.backfills).values().cloned().collect()
    }

    /// A client connected: it is listed until the handle is dropped.
    pub fn connection_opened(self: &Arc<Self>, peer: Option<SocketAddr>) -> ConnectionHandle {
        self.connections_accepted.inc();
        self.connections.open(self.clone(), peer)
    }
}

/// A view being backfilled from its inputs' history (`CREATE MATERIALIZED VIEW`).
#[derive(Debug, Clone)]
pub struct Backfill {
    pub view: String,
    /// Input rows stepped through the view's dataflow so far, of `rows_total`.
    pub rows_done: u64,
    pub rows_total: u64,
    pub started_at: SystemTime,
    pub started: std::time::Instant,
}

/// A backfill's entry in the list; dropping it (done or failed) removes it.
pub struct BackfillHandle {
    metrics: Arc<Metrics>,
    id: u64,
}

impl BackfillHandle {
    pub fn advance(&self, rows_done: u64) {
        if let Some(b) = lock(&self.metrics.backfills).get_mut(&self.id) {
            b.rows_done = rows_done;
        }
    }
}

impl Drop for BackfillHandle {
    fn drop(&mut self) {
        lock(&self.metrics.backfills).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One client connection, as `eddy_connections` shows it (after `pg_stat_activity`).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub id: u64,
    pub peer: Option<SocketAddr>,
    pub connected_at: SystemTime,
    pub user: Option<String>,
    pub database: Option<String>,
    pub application_name: Option<String>,
    /// A statement is running.
    pub active: bool,
    /// The running statement, or the last one.
    pub query: Option<String>,
    pub query_start: Option<SystemTime>,
    pub statements: u64,
}

/// The open connections.
#[derive(Default)]
pub struct ConnectionRegistry {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, ConnectionInfo>>,
}

/// Statement text kept per connection: enough to recognise it.
const QUERY_TEXT_LIMIT: usize = 1024;

impl ConnectionRegistry {
    fn open(&self, metrics: Arc<Metrics>, peer: Option<SocketAddr>) -> ConnectionHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.open).insert(
            id,
            ConnectionInfo {
                id,
                peer,
                connected_at: SystemTime::now(),
                user: None,
                database: None,
                application_name: None,
                active: false,
                query: None,
                query_start: None,
                statements: 0,
            },
        );
        ConnectionHandle { metrics, id }
    }

    pub fn list(&self) -> Vec<ConnectionInfo> {
        lock(&self.open).values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        lock(&self.open).len()
    }
}

/// A connection's entry in the registry; dropping it (the connection ended) removes it.
pub struct ConnectionHandle {
    metrics: Arc<Metrics>,
    id: u64,
}

impl ConnectionHandle {
    /// A statement starts. `client` is the startup metadata (user, database,
    /// application_name). The returned guard marks the connection idle again.
    pub fn statement(
        &self,
        client: &std::collections::HashMap<String, String>,
        sql: &str,
    ) -> ActiveStatement<'_> {
        if let Some(c) = lock(&self.metrics.connections.open).get_mut(&self.id) {
            if c.user.is_none() {
                c.user = client.get("user").cloned();
                c.database = client.get("database").cloned();
            }
            c.application_name = client.get("application_name").cloned();
            c.active = true;
            let mut end = sql.len().min(QUERY_TEXT_LIMIT);
            while !sql.is_char_boundary(end) {
                end -= 1;
            }
            c.query = Some(sql[..end].trim().to_string());
            c.query_start = Some(SystemTime::now());
            c.statements += 1;
        }
        ActiveStatement { handle: self }
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        lock(&self.metrics.connections.open).remove(&self.id);
    }
}

/// A running statement; dropping it marks the connection idle.
pub struct ActiveStatement<'a> {
    handle: &'a ConnectionHandle,
}

impl Drop for ActiveStatement<'_> {
    fn drop(&mut self) {
        if let Some(c) = lock(&self.handle.metrics.connections.open).get_mut(&self.handle.id) {
            c.active = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_listed_while_open_and_track_their_statement() {
        let m = Arc::new(Metrics::default());
        let a = m.connection_opened(None);
        let b = m.connection_opened(None);
        assert_eq!(m.connections.count(), 2);
        let meta: std::collections::HashMap<String, String> =
            [("user".to_string(), "ann".to_string())].into();
        {
            let _s = a.statement(&meta, "SELECT 1");
            let l = m.connections.list();
            assert!(l[0].active && l[0].user.as_deref() == Some("ann"));
            assert_eq!(l[0].query.as_deref(), Some("SELECT 1"));
        }
        assert!(!m.connections.list()[0].active);
        drop(a);
        assert_eq!(m.connections.count(), 1);
        drop(b);
        assert_eq!(m.connections.count(), 0);
    }

    #[test]
    fn long_statements_are_cut_on_a_character_boundary() {
        let m = Arc::new(Metrics::default());
        let a = m.connection_opened(None);
        let sql = "é".repeat(QUERY_TEXT_LIMIT);
        drop(a.statement(&Default::default(), &sql));
        let q = m.connections.list()[0].query.clone().unwrap();
        assert!(q.len() <= QUERY_TEXT_LIMIT && q.chars().all(|c| c == 'é'));
    }

    #[test]
    fn backfills_are_listed_until_their_handle_is_dropped() {
        let m = Arc::new(Metrics::default());
        let a = m.backfill_started("v", 10);
        a.advance(4);
        let l = m.backfills();
        assert_eq!(
            (l[0].view.as_str(), l[0].rows_done, l[0].rows_total),
            ("v", 4, 10)
        );
        drop(a);
        assert!(m.backfills().is_empty());
    }

    #[test]
    fn checkpoint_history_is_bounded() {
        let m = Metrics::default();
        for id in 0..(CHECKPOINT_HISTORY as u64 + 5) {
            m.checkpoint_finished(CheckpointRecord {
                id,
                kind: "written",
                at: SystemTime::now(),
                duration: Duration::from_millis(1),
                entries: 1,
                store_bytes: 0,
            });
        }
        let h = m.checkpoints();
        assert_eq!(h.len(), CHECKPOINT_HISTORY);
        assert_eq!(h[0].id, 5);
    }
}
