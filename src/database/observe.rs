//! The database seen from outside, for people who run it: per-relation and per-operator
//! counters, freshness and state, read in one short pass under the database lock. The HTTP
//! `/metrics` endpoint and the `eddy_*` system views both read these, so the two never
//! disagree on what a number means.
//!
//! Counters count committed epochs only (an aborted epoch's rows are not counted), since the
//! process started (log replay at start included).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Database;
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
                }
            })
            .collect()
    }

    pub fn operator_stats(&self) -> Vec<OperatorStats> {
        let inner = self.lock();
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
                    node: i,
                    operator: node.op.describe(),
                    inputs,
                    rows_in: node.counters.rows_in,
                    rows_out: node.counters.rows_out,
                    busy: node.counters.busy,
                    state_rows: node.op.state_rows() as u64,
                    late_rows: node.late_rows,
                });
            }
        }
        out
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

/// How the latency histogram labels a statement.
pub(super) fn statement_kind(stmt: &EddyStatement) -> StatementKind {
    match stmt {
        EddyStatement::Query(_)
        | EddyStatement::Show(_)
        | EddyStatement::Describe(_)
        | EddyStatement::ExplainRelation(_)
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
