//! The database: the catalog of relations and their dataflows, the durable log, and the
//! statement executor that the wire protocol calls.
//!
//! Concurrency and consistency: write statements (DDL, INSERT/UPDATE/DELETE) are serialized
//! by `writer`. A write computes its delta, then under the `inner` lock applies it to its
//! base relation, pushes it through every dependent dataflow in creation (= topological)
//! order, and appends it to the log — one epoch. Readers snapshot the relations they need
//! under the same lock, so a SELECT sees whole epochs only, views read together agree, and
//! a write is visible to every session as soon as it returns (read-your-writes).
//!
//! If any step of an epoch fails (a view divides by zero on the new row, the disk is
//! full), the epoch is aborted: the base delta and the view deltas applied so far are
//! reverted, and every dataflow that stepped aborts its operators' state tables back to
//! their last commit, so nothing of a failed statement remains and no view is rebuilt.

pub mod backfill;
mod checkpoint;
mod ddl;
mod disk_usage;
mod dml;
mod group_commit;
pub(crate) mod kafka;
mod literal_values;
mod observe;
pub mod params;
mod pg_functions;
mod query;
mod show;
pub(crate) mod sources;
mod upsert;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;

use crate::catalog::Relation;
use crate::dataflow::ChangeBatch;
use crate::error::{EddyError, Result};
use crate::sql::{parse_statement, split_statements, EddyStatement};
use crate::state::{LogEntry, Store};

pub const SERVER_VERSION: &str = "15.0";
pub const VERSION_STRING: &str = concat!(
    "PostgreSQL 15.0 (eddy ",
    env!("CARGO_PKG_VERSION"),
    ") on x86_64-pc-linux-gnu, a streaming SQL database"
);

/// What a statement returns to the client.
#[derive(Debug)]
pub enum Output {
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// A command tag such as `INSERT 0 3` or `CREATE STREAM`.
    Command(String),
    /// BEGIN / COMMIT / ROLLBACK: the tag and whether a transaction is now open.
    Transaction { tag: String, open: bool },
    /// A push query: optional snapshot rows, then every committed change.
    Subscription {
        /// The relation's columns (the wire adds the change time and diff).
        schema: SchemaRef,
        snapshot: Vec<RecordBatch>,
        subscription: crate::view::subscription::Subscription,
        limit: Option<usize>,
    },
}

impl Output {
    pub fn command(tag: impl Into<String>) -> Self {
        Output::Command(tag.into())
    }
}

/// Per-connection state.
#[derive(Debug, Default)]
pub struct Session {
    pub settings: HashMap<String, String>,
    pub in_transaction: bool,
    /// Writes done since BEGIN: ROLLBACK cannot undo them, and says so.
    pub writes_in_transaction: usize,
    /// Open savepoints, with the writes done before each.
    pub savepoints: Vec<(String, usize)>,
    /// Where NOTICEs for the running statement go (a view's backfill progress), when the
    /// server forwards them to the client.
    pub notices: Option<backfill::NoticeSender>,
}

pub(crate) struct Inner {
    /// In creation order, which is a topological order of dependencies.
    pub relations: Vec<Relation>,
    pub next_id: u64,
    /// Push-query subscribers, by relation.
    pub subscribers: HashMap<String, Vec<crate::view::subscription::Subscriber>>,
    /// Generated sources (nexmark, datagen) and their progress.
    pub sources: Vec<sources::GeneratedSource>,
}

impl Inner {
    pub fn get(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().find(|r| r.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Relation> {
        self.relations.iter_mut().find(|r| r.name == name)
    }

    /// Rewrite window table functions (and a ksqlDB WINDOW clause) in `query` against
    /// this catalog's schemas and event-time columns.
    pub fn rewrite_windows(
        &self,
        query: &mut datafusion::sql::sqlparser::ast::Query,
        ksql: Option<&crate::sql::windows::KsqlWindow>,
    ) -> Result<Option<crate::sql::windows::WindowSpec>> {
        let column_type = |rel: &str, col: &str| {
            let r = self.get(rel)?;
            r.schema
                .field_with_name(col)
                .ok()
                .map(|f| f.data_type().clone())
        };
        let event_time = |rel: &str| {
            let r = self.get(rel)?;
            r.event_time
                .as_ref()
                .map(|e| r.schema.field(e.column).name().clone())
        };
        let cat = crate::sql::windows::WindowCatalog {
            column_type: &column_type,
            event_time: &event_time,
        };
        crate::sql::windows::rewrite_windows(query, ksql, &cat)
    }

    /// Expand `SELECT *` over relations with hidden columns to their visible columns.
    pub fn expand_hidden(&self, query: &mut datafusion::sql::sqlparser::ast::Query) {
        let columns = |rel: &str| {
            let r = self.get(rel)?;
            let all: Vec<String> = r.schema.fields().iter().map(|f| f.name().clone()).collect();
            let visible = all
                .iter()
                .enumerate()
                .filter(|(i, _)| !r.hidden.contains(i))
                .map(|(_, n)| n.clone())
                .collect();
            Some((all, visible))
        };
        crate::sql::hidden::expand_wildcards(query, &columns);
    }

    /// A relation's watermark: its own event time's, or (for a derived stream) its source's.
    pub fn watermark_of(&self, name: &str) -> Option<i64> {
        let mut rel = self.get(name)?;
        for _ in 0..64 {
            match &rel.watermark_from {
                Some(src) => rel = self.get(src)?,
                None => return rel.event_time.as_ref().and_then(|e| e.watermark()),
            }
        }
        None
    }

    pub fn require(&self, name: &str) -> Result<&Relation> {
        self.get(name)
            .ok_or_else(|| EddyError::UnknownRelation(name.to_string()))
    }
}

pub struct Database {
    inner: Mutex<Inner>,
    writer: tokio::sync::Mutex<()>,
    store: Box<dyn Store>,
    /// Full optimizer: ad-hoc queries.
    batch_state: SessionState,
    /// Analyzer only (type coercion, no rewrites): plans that become dataflows.
    view_state: SessionState,
    /// Kafka sources and sinks: their tasks, status and offsets.
    kafka: crate::connectors::kafka::KafkaRuntime,
    /// The database's own handle, for the background tasks of generated sources.
    self_ref: std::sync::OnceLock<std::sync::Weak<Database>>,
    /// Where checkpoints go (none: restart replays the whole log).
    state: Option<Arc<dyn crate::state::store::StateStore>>,
    /// What the log holds besides data, for the next checkpoint.
    summary: Mutex<checkpoint::LogSummary>,
    checkpoint_info: Mutex<checkpoint::CheckpointInfo>,
    /// One checkpoint at a time (the periodic task and `CHECKPOINT`).
    checkpointing: tokio::sync::Mutex<()>,
    /// Wakes the periodic checkpoint task early (the log grew past `checkpoint_log_bytes`).
    checkpoint_soon: Arc<tokio::sync::Notify>,
    checkpoint_log_bytes: u64,
    /// See `Config::backfill_chunk_rows` and `Config::progress_interval`.
    backfill_chunk_rows: usize,
    progress_interval: std::time::Duration,
    /// The store writes of a checkpoint that failed, written before the next one's.
    checkpoint_carry: Mutex<Option<crate::state::WriteBatch>>,
    /// INSERTs waiting to be committed together.
    inserts: group_commit::InsertQueue,
    /// Statement and log latencies, checkpoints, connections (`/metrics`, system views).
    metrics: Arc<crate::metrics::Metrics>,
    /// Bytes per state store table (disk_usage.rs).
    disk_usage: disk_usage::DiskUsage,
}

pub use checkpoint::CheckpointInfo;
pub use observe::{OperatorStats, RelationStats, ServerStats};

/// Server configuration the database needs.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Default Kafka bootstrap servers (`--kafka-brokers`).
    pub kafka_brokers: Option<String>,
    /// The state store checkpoints are written to (none: no checkpoints).
    pub state: Option<Arc<dyn crate::state::store::StateStore>>,
    /// Checkpoint this often (with a state store); none: only on `CHECKPOINT`.
    pub checkpoint_interval: Option<std::time::Duration>,
    /// With periodic checkpoints, also checkpoint as soon as about this many bytes of
    /// changes were logged since the last one (0: by time only). Bounds the log to replay
    /// and the stream rows held in memory under a fast source.
    pub checkpoint_log_bytes: u64,
    /// A view's backfill steps this many input rows at a time and reports its progress in
    /// between (`eddy_progress`, NOTICEs); None: `backfill::DEFAULT_BACKFILL_CHUNK_ROWS`.
    pub backfill_chunk_rows: Option<usize>,
    /// At most one backfill progress NOTICE this often; None:
    /// `backfill::DEFAULT_PROGRESS_INTERVAL`.
    pub progress_interval: Option<std::time::Duration>,
}

/// The server's `checkpoint_log_bytes`.
pub const DEFAULT_CHECKPOINT_LOG_BYTES: u64 = 64 << 20;

impl std::fmt::Debug for dyn crate::state::store::StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateStore")
    }
}

fn base_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema("eddy", "public");
    let opts = config.options_mut();
    opts.sql_parser.map_string_types_to_utf8view = false;
    opts.execution.parquet.schema_force_view_types = false;
    // Postgres reads `0.1` as a numeric literal, not a double.
    opts.sql_parser.parse_float_as_decimal = true;
    config
}

impl Database {
    /// Open a database over `store`, replaying its log.
    pub fn open(store: Box<dyn Store>) -> Result<Arc<Database>> {
        Self::open_with(store, Config::default())
    }

    /// Open with server configuration. Kafka sources and sinks in the log start reading
    /// and writing once the log is replayed (when called inside a tokio runtime).
    pub fn open_with(store: Box<dyn Store>, config: Config) -> Result<Arc<Database>> {
        let batch_state = SessionStateBuilder::new()
            .with_config(base_config())
            .with_default_features()
            // Overflow is an error in ad-hoc queries too, as in views and in Postgres.
            .with_physical_optimizer_rule(Arc::new(crate::plan::CheckedArithmeticRule))
            .build();
        let view_state = SessionStateBuilder::new()
            .with_config(base_config())
            .with_default_features()
            // Only expression simplification: it rewrites functions such as coalesce() that
            // must not reach execution unsimplified, and keeps the query's shape.
            .with_optimizer_rules(vec![
                Arc::new(datafusion::optimizer::simplify_expressions::SimplifyExpressions::new()),
                // Moves `a.k = b.k` from a JOIN's ON into its equi-join keys.
                Arc::new(datafusion::optimizer::extract_equijoin_predicate::ExtractEquijoinPredicate::new()),
            ])
            .build();
        let db = Database {
            inner: Mutex::new(Inner {
                relations: vec![],
                next_id: 1,
                subscribers: HashMap::new(),
                sources: Vec::new(),
            }),
            writer: tokio::sync::Mutex::new(()),
            store,
            batch_state: query::with_postgres_functions(batch_state)?,
            view_state: query::with_postgres_functions(view_state)?,
            kafka: Default::default(),
            self_ref: std::sync::OnceLock::new(),
            state: config.state.clone(),
            summary: Mutex::new(Default::default()),
            checkpoint_info: Mutex::new(Default::default()),
            checkpointing: Default::default(),
            checkpoint_soon: Default::default(),
            checkpoint_log_bytes: config.checkpoint_log_bytes,
            backfill_chunk_rows: config
                .backfill_chunk_rows
                .unwrap_or(backfill::DEFAULT_BACKFILL_CHUNK_ROWS),
            progress_interval: config
                .progress_interval
                .unwrap_or(backfill::DEFAULT_PROGRESS_INTERVAL),
            checkpoint_carry: Default::default(),
            inserts: Default::default(),
            metrics: Default::default(),
            disk_usage: Default::default(),
        };
        db.kafka.set_default_brokers(config.kafka_brokers);
        db.replay()?;
        let db = Arc::new(db);
        db.kafka.attach(Arc::downgrade(&db));
        db.kafka.start_all();
        let _ = db.self_ref.set(Arc::downgrade(&db));
        // Generated sources continue from the event count the log reached.
        db.start_generators();
        if let (Some(_), Some(every)) = (&db.state, config.checkpoint_interval) {
            db.start_checkpoints(every);
        }
        Ok(db)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug elsewhere; the data is still the last
        // consistent epoch because epochs are applied or undone whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Load the last checkpoint (if any), then replay the log entries written after it.
    fn replay(&self) -> Result<()> {
        let from = match &self.state {
            Some(state) => self.restore(state)?,
            None => None,
        };
        let entries = self.store.replay()?;
        // Entries up to the checkpoint's marker are in the checkpoint already; without the
        // marker the log was truncated after it, and every entry is newer. The *last*
        // marker with the id: a checkpoint that died after its marker and before its
        // commit leaves a marker whose id the next checkpoint reuses, and the committed
        // checkpoint holds everything up to its own, later, marker.
        let skip = from
            .and_then(|id| {
                entries
                    .iter()
                    .rposition(|e| matches!(e, LogEntry::Checkpoint { id: m } if *m == id))
            })
            .map(|p| p + 1)
            .unwrap_or(0);
        let n = entries.len() - skip;
        for entry in entries.into_iter().skip(skip) {
            self.summary
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .note(std::slice::from_ref(&entry));
            match entry {
                LogEntry::Ddl(sql) => {
                    let stmt = parse_statement(&sql)?;
                    self.apply_ddl(&stmt, &sql, false)?;
                }
                LogEntry::Changes { relation, batch } => {
                    let mut inner = self.lock();
                    self.apply_epoch(&mut inner, &relation, batch, false)?;
                }
                LogEntry::KafkaOffsets { relation, offsets } => {
                    self.kafka.record_offsets(&relation, &offsets);
                }
                LogEntry::Generated { source, events } => {
                    self.replay_generated(&source, events)?;
                }
                LogEntry::Checkpoint { .. } => {}
            }
        }
        if n > 0 {
            tracing::info!(entries = n, checkpoint = from, "replayed log");
        }
        Ok(())
    }

    /// Run every statement of a query string, stopping at the first error.
    pub async fn execute_all(&self, session: &mut Session, sql: &str) -> Vec<Result<Output>> {
        let statements = match split_statements(sql) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        let mut out = Vec::new();
        for s in statements {
            let r = self
                .execute(session, &s.text, &[])
                .await
                .map_err(|e| shift_position(e, s.char_offset));
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }

    /// Run one statement with bound parameters (rendered SQL literals).
    pub async fn execute(
        &self,
        session: &mut Session,
        sql: &str,
        params: &[String],
    ) -> Result<Output> {
        let started = crate::metrics::Stopwatch::start();
        let mut stmt = parse_statement(sql)?;
        params::bind(&mut stmt, params)?;
        let kind = observe::statement_kind(&stmt);
        let result = self.execute_statement(session, stmt, sql).await;
        self.metrics
            .statement_finished(kind, started.elapsed(), result.is_ok());
        result
    }

    async fn execute_statement(
        &self,
        session: &mut Session,
        stmt: EddyStatement,
        sql: &str,
    ) -> Result<Output> {
        use crate::sql::parser::TransactionOp;
        match stmt {
            EddyStatement::Query(q) => {
                let (schema, batches) = self.run_query(&q).await?;
                Ok(Output::Rows { schema, batches })
            }
            EddyStatement::CreateSource { ref name, .. }
            | EddyStatement::CreateView { ref name, .. }
                if ddl::is_transient(name) =>
            {
                Err(EddyError::query(
                    "42939",
                    format!(
                        "relation name \"{name}\" is reserved: names starting with {} belong to SUBSCRIBE (SELECT ...)",
                        ddl::TRANSIENT_PREFIX
                    ),
                ))
            }
            EddyStatement::CreateView { .. } if session.notices.is_some() => {
                // The backfill runs on a blocking thread so that this task can go on
                // forwarding its progress NOTICEs to the client. The thread holds the
                // writer lock itself: were the client to go away, the backfill would
                // still finish before any other write.
                let notices = session.notices.clone().expect("checked above");
                let db = self
                    .self_ref
                    .get()
                    .and_then(std::sync::Weak::upgrade)
                    .ok_or_else(|| EddyError::internal("the database is closing"))?;
                let sql = sql.to_string();
                let tag = tokio::task::spawn_blocking(move || {
                    let _w = db.writer.blocking_lock();
                    db.apply_ddl_reporting(&stmt, &sql, &notices)
                })
                .await
                .map_err(|e| EddyError::internal(format!("CREATE failed: {e}")))??;
                Ok(Output::command(tag))
            }
            EddyStatement::CreateSource { .. }
            | EddyStatement::CreateView { .. }
            | EddyStatement::Sink(_)
            | EddyStatement::Drop { .. } => {
                let _w = self.writer.lock().await;
                let tag = self.apply_ddl(&stmt, sql, true)?;
                Ok(Output::command(tag))
            }
            EddyStatement::Insert(s) => {
                // Group commit: the writer lock is taken in `commit_insert`, after the
                // rows are evaluated, so concurrent INSERTs share an epoch and an fsync.
                let r = self.insert(&s).await?;
                self.note_write(session);
                Ok(r)
            }
            EddyStatement::Update(s) => {
                let _w = self.writer.lock().await;
                let r = self.update(&s).await?;
                self.note_write(session);
                Ok(r)
            }
            EddyStatement::Delete(s) => {
                let _w = self.writer.lock().await;
                let r = self.delete(&s).await?;
                self.note_write(session);
                Ok(r)
            }
            EddyStatement::Show(what) => self.show(session, &what),
            EddyStatement::Subscribe {
                name,
                snapshot,
                limit,
                query: None,
            } => self.subscribe(&name, snapshot, limit),
            EddyStatement::Subscribe {
                snapshot,
                limit,
                query: Some(q),
                ..
            } => {
                let name = {
                    let _w = self.writer.lock().await;
                    self.create_transient_view(*q)?
                };
                let out = self.subscribe(&name, snapshot, limit);
                if out.is_err() {
                    self.lock().relations.retain(|r| r.name != name);
                }
                out
            }
            EddyStatement::Describe(name) => self.describe_relation(&name),
            EddyStatement::ExplainRelation(name) => self.explain_relation(&name),
            EddyStatement::ExplainAnalyze(name) => self.explain_analyze(&name),
            EddyStatement::ExplainCreate(create) => self.explain_create(&create),
            EddyStatement::ExplainQuery(q) => self.explain_query(&q).await,
            EddyStatement::Set { name, value } => {
                // Settings that change how values are written must be ones eddy honours.
                crate::server::pg_style::OutputStyle::validate(&name, &value)
                    .map_err(|m| EddyError::query("22023", m))?;
                if value.eq_ignore_ascii_case("default") {
                    session.settings.remove(&name);
                } else {
                    session.settings.insert(name, value);
                }
                Ok(Output::command("SET"))
            }
            EddyStatement::Transaction(TransactionOp::Savepoint(name)) => {
                if !session.in_transaction {
                    return Err(EddyError::query(
                        "25P01",
                        "SAVEPOINT can only be used in transaction blocks",
                    ));
                }
                session
                    .savepoints
                    .push((name, session.writes_in_transaction));
                Ok(Output::command("SAVEPOINT"))
            }
            EddyStatement::Transaction(TransactionOp::Release(name)) => {
                match session.savepoints.iter().rposition(|(n, _)| *n == name) {
                    Some(i) => {
                        session.savepoints.truncate(i);
                        Ok(Output::command("RELEASE"))
                    }
                    None => Err(EddyError::query(
                        "3B001",
                        format!("savepoint \"{name}\" does not exist"),
                    )),
                }
            }
            EddyStatement::Transaction(TransactionOp::RollbackTo(name)) => {
                let Some(i) = session.savepoints.iter().rposition(|(n, _)| *n == name) else {
                    return Err(EddyError::query(
                        "3B001",
                        format!("savepoint \"{name}\" does not exist"),
                    ));
                };
                let writes = session.writes_in_transaction - session.savepoints[i].1;
                if writes > 0 {
                    return Err(EddyError::unsupported(format!(
                        "ROLLBACK TO SAVEPOINT cannot undo the {writes} write statement(s) since the savepoint: eddy applies every statement when it runs (autocommit)"
                    )));
                }
                session.savepoints.truncate(i + 1);
                Ok(Output::command("ROLLBACK"))
            }
            EddyStatement::Transaction(TransactionOp::Begin) => {
                session.in_transaction = true;
                session.writes_in_transaction = 0;
                session.savepoints.clear();
                Ok(Output::Transaction {
                    tag: "BEGIN".into(),
                    open: true,
                })
            }
            EddyStatement::Transaction(TransactionOp::Commit) => {
                session.in_transaction = false;
                session.savepoints.clear();
                Ok(Output::Transaction {
                    tag: "COMMIT".into(),
                    open: false,
                })
            }
            EddyStatement::Transaction(TransactionOp::Rollback) => {
                session.in_transaction = false;
                session.savepoints.clear();
                let writes = std::mem::take(&mut session.writes_in_transaction);
                if writes > 0 {
                    return Err(EddyError::unsupported(format!(
                        "ROLLBACK cannot undo the {writes} write statement(s) of this transaction: eddy applies every statement when it runs (autocommit)"
                    )));
                }
                Ok(Output::Transaction {
                    tag: "ROLLBACK".into(),
                    open: false,
                })
            }
            EddyStatement::NoOp(tag) => Ok(Output::command(tag)),
            EddyStatement::Checkpoint => {
                if self.state.is_none() {
                    return Err(EddyError::unsupported(
                        "CHECKPOINT without a state store (this database runs without a data directory)",
                    ));
                }
                self.checkpoint().await?;
                Ok(Output::command("CHECKPOINT"))
            }
        }
    }

    /// Start a push query on a relation. Without an explicit SNAPSHOT, streams start from
    /// now (as ksqlDB's push queries) and tables and views with their current rows.
    /// The columns a push query on `name` returns: `eddy_time`, `eddy_diff`, then the
    /// relation's visible columns.
    pub fn subscription_schema(&self, name: &str) -> Result<SchemaRef> {
        let inner = self.lock();
        let rel = inner
            .get(name)
            .ok_or_else(|| EddyError::UnknownRelation(name.to_string()))?;
        let visible: Vec<usize> = (0..rel.schema.fields().len())
            .filter(|i| !rel.hidden.contains(i))
            .collect();
        Ok(push_schema(&rel.schema.project(&visible)?))
    }

    fn subscribe(
        &self,
        name: &str,
        snapshot: Option<bool>,
        limit: Option<usize>,
    ) -> Result<Output> {
        let mut inner = self.lock();
        let rel = inner
            .get_mut(name)
            .ok_or_else(|| EddyError::UnknownRelation(name.to_string()))?;
        let with_snapshot = snapshot.unwrap_or(!rel.kind.is_append_only());
        let snapshot = if with_snapshot {
            rel.storage.snapshot()?
        } else {
            vec![]
        };
        // Hidden columns (a stream's rowtime) stay hidden here too.
        let visible: Vec<usize> = (0..rel.schema.fields().len())
            .filter(|i| !rel.hidden.contains(i))
            .collect();
        let schema = Arc::new(rel.schema.project(&visible)?);
        let snapshot = snapshot
            .into_iter()
            .map(|b| b.project(&visible).map_err(EddyError::from))
            .collect::<Result<Vec<_>>>()?;
        let (subscriber, subscription) = crate::view::subscription::channel();
        inner
            .subscribers
            .entry(name.to_string())
            .or_default()
            .push(subscriber);
        Ok(Output::Subscription {
            schema,
            snapshot,
            subscription,
            limit,
        })
    }

    fn note_write(&self, session: &mut Session) {
        if session.in_transaction {
            session.writes_in_transaction += 1;
        }
    }

    /// One epoch: apply `delta` to base relation `name`, propagate it through every
    /// dependent view, and (if `log`) make it durable. All or nothing.
    fn apply_epoch(
        &self,
        inner: &mut Inner,
        name: &str,
        delta: ChangeBatch,
        log: bool,
    ) -> Result<()> {
        self.apply_epoch_with(inner, name, delta, log, &[])
    }

    /// [`Self::apply_epoch`], logging `extra` entries (a source's offsets) in the same
    /// atomic append as the delta, or alone if the delta is empty.
    fn apply_epoch_with(
        &self,
        inner: &mut Inner,
        name: &str,
        delta: ChangeBatch,
        log: bool,
        extra: &[LogEntry],
    ) -> Result<()> {
        let delta = delta.consolidate()?;
        if delta.is_empty() {
            if log && !extra.is_empty() {
                self.log(extra)?;
            }
            return Ok(());
        }
        let mut work = EpochWork::default();
        let result = Self::stage(inner, name, &delta, &mut work).and_then(|()| {
            if log {
                let mut entries = vec![LogEntry::Changes {
                    relation: name.to_string(),
                    batch: delta.clone(),
                }];
                entries.extend_from_slice(extra);
                self.log(&entries)
            } else {
                Ok(())
            }
        });
        self.finish_epoch(inner, work, result)
    }

    /// Apply a base relation's delta and push it through every dependent view, recording
    /// in `work` what was done. Nothing is committed: [`Self::finish_epoch`] commits or
    /// aborts everything `work` holds (one epoch may stage several base deltas).
    fn stage(
        inner: &mut Inner,
        name: &str,
        delta: &ChangeBatch,
        work: &mut EpochWork,
    ) -> Result<()> {
        let rel = inner
            .get_mut(name)
            .ok_or_else(|| EddyError::UnknownRelation(name.to_string()))?;
        let previous_max = rel.event_time.as_ref().and_then(|e| e.max_seen);
        // The base apply is atomic: if it fails, nothing changed.
        rel.storage.apply(delta)?;
        work.base
            .push((name.to_string(), delta.clone(), previous_max));
        advance_event_time(inner, name, delta)?;
        Self::propagate(inner, name, delta, work)
    }

    /// End an epoch: commit what `work` staged if `result` is Ok (then offer the changes to
    /// push-query subscribers), otherwise abort all of it. Returns `result`.
    fn finish_epoch(&self, inner: &mut Inner, work: EpochWork, result: Result<()>) -> Result<()> {
        if let Err(e) = result {
            if let Err(undo) = Self::abort_epoch(inner, work) {
                tracing::error!(error = %undo, "could not undo a failed epoch");
            }
            return Err(e);
        }
        let mut committed: Vec<usize> = Vec::new();
        for &idx in &work.stepped {
            if committed.contains(&idx) {
                continue;
            }
            committed.push(idx);
            if let Some(flow) = inner.relations[idx].dataflow.as_mut() {
                if let Err(e) = flow.commit() {
                    tracing::error!(error = %e, view = %inner.relations[idx].name, "barrier hook failed after the epoch was durable");
                }
            }
        }
        // The epoch is committed: offer its deltas to push-query subscribers.
        if !inner.subscribers.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            for (rel, delta) in &work.touched {
                if let Some(subs) = inner.subscribers.get_mut(rel) {
                    crate::view::subscription::publish(subs, now, delta);
                }
            }
            inner.subscribers.retain(|_, s| !s.is_empty());
            // A SUBSCRIBE (SELECT ...) whose client is gone: free its view.
            let orphans: Vec<String> = inner
                .relations
                .iter()
                .filter(|r| ddl::is_transient(&r.name) && !inner.subscribers.contains_key(&r.name))
                .map(|r| r.name.clone())
                .collect();
            if !orphans.is_empty() {
                inner.relations.retain(|r| !orphans.contains(&r.name));
            }
        }
        let now = std::time::SystemTime::now();
        for (i, (name, delta, _)) in work.base.iter().enumerate() {
            // A group commit stages several deltas of one relation: one epoch for it.
            let first = !work.base[..i].iter().any(|(n, _, _)| n == name);
            if let Some(rel) = inner.get_mut(name) {
                rel.activity.applied(delta.len(), first, now);
            }
            trim_to_retention(inner, name)?;
        }
        Ok(())
    }

    /// Push a base relation's delta through every dependent view. Returns the relations
    /// changed; `work` records what was done, for an abort.
    fn propagate(
        inner: &mut Inner,
        name: &str,
        delta: &ChangeBatch,
        work: &mut EpochWork,
    ) -> Result<()> {
        let mut pending: HashMap<String, ChangeBatch> = HashMap::new();
        pending.insert(name.to_string(), delta.clone());
        work.touched.push((name.to_string(), delta.clone()));
        let watermarks: HashMap<String, i64> = inner
            .relations
            .iter()
            .filter_map(|r| inner.watermark_of(&r.name).map(|w| (r.name.clone(), w)))
            .collect();
        for (idx, rel) in inner.relations.iter_mut().enumerate() {
            let Some(flow) = rel.dataflow.as_mut() else {
                continue;
            };
            let watermark = min_watermark(&flow.watermark_sources, |s| watermarks.get(s).copied());
            let advanced = match (watermark, flow.watermark) {
                (Some(w), Some(old)) => w > old,
                (Some(_), None) => true,
                _ => false,
            };
            let deltas: HashMap<usize, ChangeBatch> = flow
                .sources
                .iter()
                .enumerate()
                .filter_map(|(slot, src)| pending.get(src).map(|d| (slot, d.clone())))
                .collect();
            if deltas.is_empty() && !advanced {
                continue;
            }
            work.stepped.push(idx);
            let out = flow.step(&deltas, watermark).map_err(|e| in_view(e, rel))?;
            if let Some(out) = out {
                if !out.is_empty() {
                    rel.storage.apply(&out).map_err(|e| in_view(e, rel))?;
                    work.applied.push((idx, out.clone()));
                    work.touched.push((rel.name.clone(), out.clone()));
                    pending.insert(rel.name.clone(), out);
                }
            }
        }
        Ok(())
    }

    /// Undo a failed epoch: revert the view deltas applied and the base deltas (newest
    /// first), restore the streams' event-time maxima, and abort the state of every
    /// dataflow that stepped.
    fn abort_epoch(inner: &mut Inner, work: EpochWork) -> Result<()> {
        let mut first_error = None;
        for (idx, out) in work.applied.iter().rev() {
            if let Err(e) = inner.relations[*idx].storage.revert(out) {
                first_error.get_or_insert(e);
            }
        }
        let mut aborted: Vec<usize> = Vec::new();
        for idx in work.stepped {
            if aborted.contains(&idx) {
                continue;
            }
            aborted.push(idx);
            if let Some(flow) = inner.relations[idx].dataflow.as_mut() {
                flow.abort();
            }
        }
        for (name, delta, previous_max) in work.base.iter().rev() {
            if let Some(base) = inner.get_mut(name) {
                if let Err(e) = base.storage.revert(delta) {
                    first_error.get_or_insert(e);
                }
                if let Some(et) = base.event_time.as_mut() {
                    et.max_seen = *previous_max;
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// What one epoch did so far, by index into the relations (which do not change during an
/// epoch): base deltas applied (with the stream's event-time maximum before), dataflows
/// stepped, deltas applied to views' storage, and every relation's change for subscribers.
#[derive(Default)]
pub(crate) struct EpochWork {
    base: Vec<(String, ChangeBatch, Option<i64>)>,
    stepped: Vec<usize>,
    applied: Vec<(usize, ChangeBatch)>,
    touched: Vec<(String, ChangeBatch)>,
}

/// The watermark a dataflow follows: the minimum over its sources; none until every source
/// has one.
pub(crate) fn min_watermark(sources: &[String], of: impl Fn(&str) -> Option<i64>) -> Option<i64> {
    if sources.is_empty() {
        return None;
    }
    sources
        .iter()
        .map(|s| of(s))
        .collect::<Option<Vec<i64>>>()?
        .into_iter()
        .min()
}

pub(crate) use crate::core::time::event_times;

/// Move a stream's max event time forward by the rows of `delta`. Returns the previous
/// value.
fn advance_event_time(inner: &mut Inner, name: &str, delta: &ChangeBatch) -> Result<Option<i64>> {
    let Some(rel) = inner.get_mut(name) else {
        return Ok(None);
    };
    let Some(et) = rel.event_time.as_mut() else {
        return Ok(None);
    };
    let previous = et.max_seen;
    let times = event_times(delta.data.column(et.column))?;
    let batch_max = times
        .iter()
        .zip(delta.weights.values())
        .filter(|(_, w)| **w > 0)
        .filter_map(|(t, _)| *t)
        .max();
    et.max_seen = match (et.max_seen, batch_max) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Ok(previous)
}

/// Streams with a RETENTION keep rows for reading only until the watermark is past them.
fn trim_to_retention(inner: &mut Inner, name: &str) -> Result<()> {
    let Some(rel) = inner.get_mut(name) else {
        return Ok(());
    };
    let Some(et) = rel.event_time.as_ref() else {
        return Ok(());
    };
    let (Some(retention), Some(w)) = (et.retention, et.watermark()) else {
        return Ok(());
    };
    rel.storage
        .trim_before(et.column, w.saturating_sub(retention))
}

/// Name the view an error happened in, so the user knows which definition to look at.
fn in_view(e: EddyError, rel: &Relation) -> EddyError {
    match e {
        EddyError::BadValue { code, message } => EddyError::BadValue {
            code,
            message: format!(
                "{message} (while updating {} {})",
                rel.kind.noun(),
                rel.name
            ),
        },
        EddyError::Query { code, message } => EddyError::Query {
            code,
            message: format!(
                "{message} (while updating {} {})",
                rel.kind.noun(),
                rel.name
            ),
        },
        other => other,
    }
}

/// Positions are relative to the statement; the client wants them relative to its string.
/// A push query's columns: `eddy_time`, `eddy_diff`, then `schema`'s.
pub(crate) fn push_schema(schema: &datafusion::arrow::datatypes::Schema) -> SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let mut fields = vec![
        Field::new(
            "eddy_time",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("eddy_diff", DataType::Int64, false),
    ];
    fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

pub(crate) fn shift_position(e: EddyError, offset: usize) -> EddyError {
    match e {
        EddyError::Syntax {
            message,
            position: Some(p),
        } => EddyError::Syntax {
            message,
            position: Some(p + offset),
        },
        other => other,
    }
}
