//! The database seen from outside, for people who run it: per-relation and per-operator
//! counters, freshness and state, read in one short pass under the database lock. The HTTP
//! `/metrics` endpoint and the `eddy_*` system views both read these, so the two never
//! disagree on what a number means.
//!
//! The system views: `eddy_freshness` (per relation: throughput, freshness, watermark lag),
//! `eddy_operators` (per dataflow operator: rows in/out, time, state), `eddy_checkpoints`
//! (the last 100 written or loaded), `eddy_connections` (after `pg_stat_activity`) and
//! `eddy_progress` (views being backfilled now).
//!
//! Counters count committed epochs only (an aborted epoch's rows are not counted), since the
//! process started (log replay at start included).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider};

use super::{Database, Inner};
use crate::error::Result;
use crate::metrics::{Metrics, StatementKind};
use crate::sql::EddyStatement;

/// One relation: a base stream or table, or a view.
#[derive(Debug, Clone)]
pub struct RelationStats {
    pub name: String,
    pub kind: &'static str,
    /// Rows it holds now.
    pub rows: u64,
    /// Change rows it received (a base relation: applied to it; a view: read by its
    /// dataflow from its inputs) and emitted (a view: applied to it).
    pub rows_in: u64,
    pub rows_out: u64,
    /// Committed epochs that changed it (a view: that stepped its dataflow).
    pub epochs: u64,
    /// When a committed epoch last brought it input.
    pub last_input_at: Option<SystemTime>,
    /// Event time, µs since the Unix epoch.
    pub watermark: Option<i64>,
    pub late_rows: u64,
    /// Rows refused at the door, and records a Kafka source could not decode.
    pub bad_records: u64,
    /// Rows of operator state (groups, join sides, open windows).
    pub state_rows: u64,
    /// Approximate memory of its rows.
    pub memory_bytes: u64,
    /// Bytes of its entries in the state store (None: no state store). See disk_usage.rs.
    pub disk_bytes: Option<u64>,
    /// A view's defining SELECT, and the relations it reads.
    pub definition: Option<String>,
    pub depends_on: Vec<String>,
}

impl RelationStats {
    /// Seconds since the last input, as of `now`.
    pub fn freshness(&self, now: SystemTime) -> Option<f64> {
        self.last_input_at.map(|t| {
            now.duration_since(t)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64()
        })
    }

    /// Seconds the watermark is behind `now` (event time against wall-clock time).
    pub fn watermark_lag(&self, now: SystemTime) -> Option<f64> {
        let now_us = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_micros() as i64;
        self.watermark.map(|w| (now_us - w) as f64 / 1e6)
    }
}

/// One operator of a view's dataflow.
#[derive(Debug, Clone)]
pub struct OperatorStats {
    pub view: String,
    /// The view's relation id (its store tables are numbered from it).
    pub relation_id: u64,
    /// Position in the dataflow (operators run in this order).
    pub node: usize,
    pub operator: String,
    /// What it reads: source relations by name, earlier operators as `#n`.
    pub inputs: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub busy: Duration,
    pub state_rows: u64,
    pub late_rows: u64,
    /// Bytes of its state tables in the state store (None: no state store).
    pub state_disk_bytes: Option<u64>,
}

/// Figures about the whole server.
#[derive(Debug, Clone)]
pub struct ServerStats {
    pub log_bytes: u64,
    pub store_bytes: Option<u64>,
    pub last_checkpoint: super::CheckpointInfo,
    pub connections: usize,
}

impl Database {
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn relation_stats(&self) -> Vec<RelationStats> {
        let inner = self.lock();
        self.relation_stats_of(&inner)
    }

    fn relation_stats_of(&self, inner: &Inner) -> Vec<RelationStats> {
        let disk = self
            .state
            .is_some()
            .then(|| self.disk_usage.sum_by(super::checkpoint::relation_of_table));
        let kafka: std::collections::HashMap<String, u64> = self
            .kafka
            .statuses()
            .into_iter()
            .map(|(n, s)| (n, s.bad_records))
            .collect();
        inner
            .relations
            .iter()
            .filter(|r| !super::ddl::is_transient(&r.name))
            .map(|r| {
                let (rows_in, rows_out, epochs, last_input_at) = match &r.dataflow {
                    Some(f) => (
                        f.counters.rows_in,
                        f.counters.rows_out,
                        f.epoch,
                        f.counters.last_input_at,
                    ),
                    None => (
                        r.activity.rows_in,
                        r.activity.rows_in,
                        r.activity.epochs,
                        r.activity.last_input_at,
                    ),
                };
                RelationStats {
                    name: r.name.clone(),
                    kind: r.kind.noun(),
                    rows: r.storage.row_count() as u64,
                    rows_in,
                    rows_out,
                    epochs,
                    last_input_at,
                    watermark: inner
                        .watermark_of(&r.name)
                        .or_else(|| r.dataflow.as_ref().and_then(|f| f.watermark)),
                    late_rows: r.dataflow.as_ref().map_or(0, |f| f.late_rows()),
                    bad_records: r.rejected_rows + kafka.get(&r.name).copied().unwrap_or(0),
                    state_rows: r.dataflow.as_ref().map_or(0, |f| f.state_rows()) as u64,
                    memory_bytes: r.storage.approx_bytes() as u64,
                    disk_bytes: disk.as_ref().map(|d| d.get(&r.id).copied().unwrap_or(0)),
                    definition: r.definition.clone(),
                    depends_on: r.depends_on.clone(),
                }
            })
            .collect()
    }

    pub fn operator_stats(&self) -> Vec<OperatorStats> {
        self.operator_stats_of(&self.lock())
    }

    fn operator_stats_of(&self, inner: &Inner) -> Vec<OperatorStats> {
        let disk = self
            .state
            .is_some()
            .then(|| self.disk_usage.sum_by(super::checkpoint::node_of_table));
        let mut ops = operator_stats_of(inner);
        for o in &mut ops {
            o.state_disk_bytes = disk
                .as_ref()
                .map(|d| d.get(&(o.relation_id, o.node)).copied().unwrap_or(0));
        }
        ops
    }

    pub fn server_stats(&self) -> ServerStats {
        ServerStats {
            log_bytes: self.store.size_on_disk(),
            store_bytes: self.state.as_ref().map(|s| s.size_on_disk()),
            last_checkpoint: self.last_checkpoint(),
            connections: self.metrics.connections.count(),
        }
    }
}

fn operator_stats_of(inner: &Inner) -> Vec<OperatorStats> {
    let mut out = Vec::new();
    for r in &inner.relations {
        let Some(flow) = &r.dataflow else { continue };
        if super::ddl::is_transient(&r.name) {
            continue;
        }
        for (i, node) in flow.nodes.iter().enumerate() {
            let inputs = node
                .inputs
                .iter()
                .map(|input| match input {
                    crate::dataflow::graph::Input::Source(s) => flow.sources[*s].clone(),
                    crate::dataflow::graph::Input::Node(n) => format!("#{n}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            out.push(OperatorStats {
                view: r.name.clone(),
                relation_id: r.id,
                node: i,
                operator: node.op.describe(),
                inputs,
                rows_in: node.counters.rows_in,
                rows_out: node.counters.rows_out,
                busy: node.counters.busy,
                state_rows: node.op.state_rows() as u64,
                late_rows: node.late_rows,
                state_disk_bytes: None,
            });
        }
    }
    out
}

/// How the latency histogram labels a statement.
pub(super) fn statement_kind(stmt: &EddyStatement) -> StatementKind {
    match stmt {
        EddyStatement::Query(_)
        | EddyStatement::Show(_)
        | EddyStatement::Describe(_)
        | EddyStatement::ExplainRelation(_)
        | EddyStatement::ExplainAnalyze(_)
        | EddyStatement::ExplainCreate(_)
        | EddyStatement::ExplainQuery(_) => StatementKind::Read,
        EddyStatement::Insert(_) | EddyStatement::Update(_) | EddyStatement::Delete(_) => {
            StatementKind::Write
        }
        EddyStatement::CreateSource { .. }
        | EddyStatement::CreateView { .. }
        | EddyStatement::Drop { .. }
        | EddyStatement::Sink(_) => StatementKind::Ddl,
        EddyStatement::Subscribe { .. }
        | EddyStatement::Set { .. }
        | EddyStatement::Transaction(_)
        | EddyStatement::NoOp(_)
        | EddyStatement::Checkpoint => StatementKind::Other,
    }
}

pub const SYSTEM_FRESHNESS: &str = "eddy_freshness";
pub const SYSTEM_OPERATORS: &str = "eddy_operators";
pub const SYSTEM_CHECKPOINTS: &str = "eddy_checkpoints";
pub const SYSTEM_CONNECTIONS: &str = "eddy_connections";
pub const SYSTEM_PROGRESS: &str = "eddy_progress";

impl Database {
    /// Register the system views among `names` (the relations a query reads) in `schema`.
    /// Called with the database lock held (`inner`), so they agree with the relations'
    /// snapshot.
    pub(super) fn register_observability_views(
        &self,
        inner: &Inner,
        names: &std::collections::BTreeSet<String>,
        schema: &MemorySchemaProvider,
    ) -> Result<()> {
        let now = SystemTime::now();
        let register = |name: &str, batch: RecordBatch| -> Result<()> {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            schema.register_table(name.to_string(), Arc::new(table))?;
            Ok(())
        };
        if names.contains(SYSTEM_FRESHNESS) {
            register(
                SYSTEM_FRESHNESS,
                freshness_batch(&self.relation_stats_of(inner), now)?,
            )?;
        }
        if names.contains(SYSTEM_OPERATORS) {
            register(
                SYSTEM_OPERATORS,
                operators_batch(&self.operator_stats_of(inner))?,
            )?;
        }
        if names.contains(SYSTEM_CHECKPOINTS) {
            register(
                SYSTEM_CHECKPOINTS,
                checkpoints_batch(&self.metrics.checkpoints())?,
            )?;
        }
        if names.contains(SYSTEM_CONNECTIONS) {
            register(
                SYSTEM_CONNECTIONS,
                connections_batch(&self.metrics.connections.list())?,
            )?;
        }
        if names.contains(SYSTEM_PROGRESS) {
            register(SYSTEM_PROGRESS, progress_batch(&self.metrics.backfills())?)?;
        }
        Ok(())
    }
}

fn micros(t: SystemTime) -> Option<i64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as i64)
}

fn timestamp_field(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
}

fn text<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn int(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values.map(|v| v as i64)))
}

fn freshness_batch(rels: &[RelationStats], now: SystemTime) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("rows_in", DataType::Int64, false),
        Field::new("rows_out", DataType::Int64, false),
        Field::new("epochs", DataType::Int64, false),
        timestamp_field("last_input"),
        Field::new("freshness_s", DataType::Float64, true),
        timestamp_field("watermark"),
        Field::new("watermark_lag_s", DataType::Float64, true),
        Field::new("late_rows", DataType::Int64, false),
        Field::new("bad_records", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(rels.iter().map(|r| Some(r.name.as_str()))),
        text(rels.iter().map(|r| Some(r.kind))),
        int(rels.iter().map(|r| r.rows_in)),
        int(rels.iter().map(|r| r.rows_out)),
        int(rels.iter().map(|r| r.epochs)),
        Arc::new(
            rels.iter()
                .map(|r| r.last_input_at.and_then(micros))
                .collect::<TimestampMicrosecondArray>(),
        ),
        Arc::new(
            rels.iter()
                .map(|r| r.freshness(now))
                .collect::<Float64Array>(),
        ),
        Arc::new(
            rels.iter()
                .map(|r| r.watermark)
                .collect::<TimestampMicrosecondArray>(),
        ),
        Arc::new(
            rels.iter()
                .map(|r| r.watermark_lag(now))
                .collect::<Float64Array>(),
        ),
        int(rels.iter().map(|r| r.late_rows)),
        int(rels.iter().map(|r| r.bad_records)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn operators_batch(ops: &[OperatorStats]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("node", DataType::Int64, false),
        Field::new("operator", DataType::Utf8, false),
        Field::new("inputs", DataType::Utf8, false),
        Field::new("rows_in", DataType::Int64, false),
        Field::new("rows_out", DataType::Int64, false),
        Field::new("busy_ms", DataType::Float64, false),
        Field::new("state_rows", DataType::Int64, false),
        Field::new("late_rows", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(ops.iter().map(|o| Some(o.view.as_str()))),
        int(ops.iter().map(|o| o.node as u64)),
        text(ops.iter().map(|o| Some(o.operator.as_str()))),
        text(ops.iter().map(|o| Some(o.inputs.as_str()))),
        int(ops.iter().map(|o| o.rows_in)),
        int(ops.iter().map(|o| o.rows_out)),
        Arc::new(Float64Array::from_iter_values(
            ops.iter().map(|o| o.busy.as_secs_f64() * 1e3),
        )),
        int(ops.iter().map(|o| o.state_rows)),
        int(ops.iter().map(|o| o.late_rows)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn checkpoints_batch(cps: &[crate::metrics::CheckpointRecord]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
        timestamp_field("finished_at"),
        Field::new("duration_ms", DataType::Float64, false),
        Field::new("entries", DataType::Int64, false),
        Field::new("store_bytes", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        int(cps.iter().map(|c| c.id)),
        text(cps.iter().map(|c| Some(c.kind))),
        Arc::new(
            cps.iter()
                .map(|c| micros(c.at))
                .collect::<TimestampMicrosecondArray>(),
        ),
        Arc::new(Float64Array::from_iter_values(
            cps.iter().map(|c| c.duration.as_secs_f64() * 1e3),
        )),
        int(cps.iter().map(|c| c.entries)),
        int(cps.iter().map(|c| c.store_bytes)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn connections_batch(conns: &[crate::metrics::ConnectionInfo]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("user_name", DataType::Utf8, true),
        Field::new("database", DataType::Utf8, true),
        Field::new("application_name", DataType::Utf8, true),
        Field::new("client_addr", DataType::Utf8, true),
        timestamp_field("backend_start"),
        Field::new("state", DataType::Utf8, false),
        Field::new("query", DataType::Utf8, true),
        timestamp_field("query_start"),
        Field::new("statements", DataType::Int64, false),
    ]));
    let peers: Vec<Option<String>> = conns
        .iter()
        .map(|c| c.peer.map(|p| p.to_string()))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        int(conns.iter().map(|c| c.id)),
        text(conns.iter().map(|c| c.user.as_deref())),
        text(conns.iter().map(|c| c.database.as_deref())),
        text(conns.iter().map(|c| c.application_name.as_deref())),
        text(peers.iter().map(|p| p.as_deref())),
        Arc::new(
            conns
                .iter()
                .map(|c| micros(c.connected_at))
                .collect::<TimestampMicrosecondArray>(),
        ),
        text(
            conns
                .iter()
                .map(|c| Some(if c.active { "active" } else { "idle" })),
        ),
        text(conns.iter().map(|c| c.query.as_deref())),
        Arc::new(
            conns
                .iter()
                .map(|c| c.query_start.and_then(micros))
                .collect::<TimestampMicrosecondArray>(),
        ),
        int(conns.iter().map(|c| c.statements)),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn progress_batch(backfills: &[crate::metrics::Backfill]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("rows_done", DataType::Int64, false),
        Field::new("rows_total", DataType::Int64, false),
        timestamp_field("started"),
        Field::new("elapsed_s", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(backfills.iter().map(|b| Some(b.view.as_str()))),
        int(backfills.iter().map(|b| b.rows_done)),
        int(backfills.iter().map(|b| b.rows_total)),
        Arc::new(
            backfills
                .iter()
                .map(|b| micros(b.started_at))
                .collect::<TimestampMicrosecondArray>(),
        ),
        Arc::new(Float64Array::from_iter_values(
            backfills.iter().map(|b| b.started.elapsed().as_secs_f64()),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
