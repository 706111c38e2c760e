//! A view's dataflow: operators in topological order, each reading from source slots
//! (the view's input relations) or earlier operators. One `step` pushes the deltas of one
//! epoch through all operators and returns the delta of the view; then the epoch ends with
//! `commit` (it is durable) or `abort` (some step of it failed), which the runtime applies
//! to every operator's state tables, the watermark and the late-row counts together.
//! The runtime also counts, per node and per dataflow, the change rows in and out and the
//! time spent, committed with the epoch like the late rows (`eddy_operators`, metrics).

use std::collections::HashMap;

use datafusion::arrow::datatypes::SchemaRef;

use super::operator::{Ctx, Operator};
use crate::core::ChangeBatch;
use crate::error::{EddyError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The delta of the view's n-th source relation.
    Source(usize),
    /// The output of an earlier node.
    Node(usize),
}

pub struct Node {
    pub op: Box<dyn Operator>,
    pub inputs: Vec<Input>,
    pub schema: SchemaRef,
    /// Late rows this node dropped in committed epochs.
    pub late_rows: u64,
    /// ... and in the epoch under way.
    pub pending_late: u64,
    /// Change rows in and out and time spent in committed epochs.
    pub counters: NodeCounters,
    /// ... and in the epoch under way.
    pending: NodeCounters,
}

/// What a node did: change rows received and emitted, time in `process`/`on_watermark`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCounters {
    pub rows_in: u64,
    pub rows_out: u64,
    pub busy: std::time::Duration,
}

impl NodeCounters {
    fn add(&mut self, other: NodeCounters) {
        self.rows_in += other.rows_in;
        self.rows_out += other.rows_out;
        self.busy += other.busy;
    }
}

/// What a dataflow did in committed epochs: change rows read from its sources and
/// emitted into its view, and when an epoch last brought it input.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowCounters {
    pub rows_in: u64,
    pub rows_out: u64,
    pub last_input_at: Option<std::time::SystemTime>,
}

impl Node {
    pub fn new(op: Box<dyn Operator>, inputs: Vec<Input>, schema: SchemaRef) -> Self {
        Node {
            op,
            inputs,
            schema,
            late_rows: 0,
            pending_late: 0,
            counters: NodeCounters::default(),
            pending: NodeCounters::default(),
        }
    }
}

/// A dataflow's committed state as a checkpoint holds it.
pub struct FlowState {
    pub epoch: u64,
    pub watermark: Option<i64>,
    pub late_rows: Vec<u64>,
    /// Per node, per state table, the entries (filled when restoring).
    pub tables: Vec<Vec<crate::state::table::Entries>>,
}

pub struct Dataflow {
    /// Names of the relations read, by source slot.
    pub sources: Vec<String>,
    pub nodes: Vec<Node>,
    pub output: Input,
    /// Schema of the view's rows (Postgres column names applied).
    pub schema: SchemaRef,
    /// True when the output can only grow (no retractions possible).
    pub append_only: bool,
    /// The window this view aggregates over, if any, and the last watermark applied.
    pub window: Option<crate::sql::windows::WindowSpec>,
    pub watermark: Option<i64>,
    /// The watermark at the last committed epoch (what `abort` goes back to).
    pub committed_watermark: Option<i64>,
    /// Epochs committed.
    pub epoch: u64,
    /// Streams whose watermark (the minimum of them) this dataflow follows.
    pub watermark_sources: Vec<String>,
    /// Committed counters, and those of the epoch under way.
    pub counters: FlowCounters,
    pub pending: FlowCounters,
}

impl Dataflow {
    /// Push one epoch of source deltas through. `deltas` is keyed by source slot; a source
    /// without a delta did not change. Returns the view's delta (None: no change).
    ///
    /// `watermark` (event time, µs) is applied after the data: operators holding windows
    /// close those it passed, and what they emit flows on in the same step.
    pub fn step(
        &mut self,
        deltas: &HashMap<usize, ChangeBatch>,
        watermark: Option<i64>,
    ) -> Result<Option<ChangeBatch>> {
        // A panic in an operator or in a function it calls (a kernel on a bad argument)
        // fails this epoch like any error: the caller aborts it, and the state tables undo
        // whatever the operator wrote before it panicked.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.step_unguarded(deltas, watermark)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(EddyError::OperatorPanic(format!(
                "an operator failed on this input: {what}"
            )))
        })
    }

    fn step_unguarded(
        &mut self,
        deltas: &HashMap<usize, ChangeBatch>,
        watermark: Option<i64>,
    ) -> Result<Option<ChangeBatch>> {
        let advance = match (watermark, self.watermark) {
            (Some(w), Some(old)) if w > old => Some(w),
            (Some(w), None) => Some(w),
            _ => None,
        };
        let epoch = self.epoch + 1;
        for d in deltas.values() {
            self.pending.rows_in += d.len() as u64;
        }
        let mut outputs: Vec<Option<ChangeBatch>> = Vec::with_capacity(self.nodes.len());
        for node in self.nodes.iter_mut() {
            // Data is judged against the watermark before this epoch's advance.
            let mut ctx = Ctx::new(epoch, self.watermark);
            let started = crate::metrics::Stopwatch::start();
            let mut parts = Vec::new();
            // A node without inputs (a constant relation) is asked once per epoch.
            if node.inputs.is_empty() {
                let nothing = ChangeBatch::empty(node.schema.clone());
                parts.push(node.op.process(0, nothing, &mut ctx)?);
            }
            for (i, input) in node.inputs.iter().enumerate() {
                let delta = match input {
                    Input::Source(s) => deltas.get(s).cloned(),
                    Input::Node(n) => outputs[*n].clone(),
                };
                if let Some(d) = delta {
                    node.pending.rows_in += d.len() as u64;
                    parts.push(node.op.process(i, d, &mut ctx)?);
                }
            }
            if let Some(w) = advance {
                if let Some(closed) = node.op.on_watermark(w, &mut ctx)? {
                    parts.push(closed);
                }
            }
            node.pending_late += ctx.late_rows();
            let out = if parts.is_empty() {
                None
            } else {
                Some(ChangeBatch::concat(&node.schema, &parts)?)
            };
            node.pending.rows_out += out.as_ref().map_or(0, |o| o.len() as u64);
            if let Some(took) = started.elapsed() {
                node.pending.busy += took;
            }
            outputs.push(out);
        }
        if advance.is_some() {
            self.watermark = advance;
        }
        let out = match self.output {
            Input::Source(s) => deltas.get(&s).cloned(),
            Input::Node(n) => outputs[n].take(),
        };
        match out {
            Some(d) => {
                let d = d.consolidate()?.with_schema(self.schema.clone())?;
                self.pending.rows_out += d.len() as u64;
                Ok(Some(d))
            }
            None => Ok(None),
        }
    }

    /// The epoch is durable: keep what it did.
    pub fn commit(&mut self) -> Result<()> {
        self.epoch += 1;
        for node in self.nodes.iter_mut() {
            node.op.on_barrier(self.epoch)?;
            for t in node.op.state_tables() {
                t.commit();
            }
            node.late_rows += std::mem::take(&mut node.pending_late);
            let done = std::mem::take(&mut node.pending);
            node.counters.add(done);
        }
        self.committed_watermark = self.watermark;
        let done = std::mem::take(&mut self.pending);
        self.counters.rows_in += done.rows_in;
        self.counters.rows_out += done.rows_out;
        if done.rows_in > 0 {
            self.counters.last_input_at = Some(std::time::SystemTime::now());
        }
        Ok(())
    }

    /// The epoch failed: every operator's state, the watermark and the late counts go
    /// back to the last commit.
    pub fn abort(&mut self) {
        for node in self.nodes.iter_mut() {
            for t in node.op.state_tables() {
                t.abort();
            }
            node.pending_late = 0;
            node.pending = NodeCounters::default();
        }
        self.pending = FlowCounters::default();
        self.watermark = self.committed_watermark;
    }

    /// What a checkpoint writes (between epochs): the epoch, the watermark, each node's
    /// late-row count, and per node and state table what changed since the last one.
    pub fn export_changes(
        &mut self,
    ) -> Result<(FlowState, Vec<Vec<crate::state::table::Changes>>)> {
        let mut tables = Vec::with_capacity(self.nodes.len());
        for node in self.nodes.iter_mut() {
            tables.push(
                node.op
                    .state_tables()
                    .iter()
                    .map(|t| t.export_changes())
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        let state = FlowState {
            epoch: self.epoch,
            watermark: self.committed_watermark,
            late_rows: self.nodes.iter().map(|n| n.late_rows).collect(),
            tables: Vec::new(),
        };
        Ok((state, tables))
    }

    /// The checkpoint holding [`Self::export_changes`] is committed.
    pub fn checkpointed(&mut self) {
        for node in self.nodes.iter_mut() {
            for t in node.op.state_tables() {
                t.checkpointed();
            }
        }
    }

    /// Load a checkpoint's state into this freshly planned dataflow (same definition, so
    /// the same nodes and tables in the same order).
    pub fn import_state(&mut self, state: FlowState) -> Result<()> {
        if state.tables.len() != self.nodes.len() || state.late_rows.len() != self.nodes.len() {
            return Err(EddyError::Storage(
                "checkpoint does not match the view's dataflow (node count)".into(),
            ));
        }
        for ((node, tables), late) in self.nodes.iter_mut().zip(state.tables).zip(state.late_rows) {
            let mut mine = node.op.state_tables();
            if mine.len() != tables.len() {
                return Err(EddyError::Storage(
                    "checkpoint does not match the view's dataflow (state tables)".into(),
                ));
            }
            for (t, entries) in mine.iter_mut().zip(tables) {
                t.import(entries)?;
            }
            drop(mine);
            node.op.after_restore();
            node.late_rows = late;
            node.pending_late = 0;
        }
        self.epoch = state.epoch;
        self.watermark = state.watermark;
        self.committed_watermark = state.watermark;
        Ok(())
    }

    /// State tables per node (for a checkpoint's table numbering).
    pub fn table_counts(&mut self) -> Vec<usize> {
        self.nodes
            .iter_mut()
            .map(|n| n.op.state_tables().len())
            .collect()
    }

    /// EXPLAIN text: the operators from the view down to its sources.
    pub fn explain(&self) -> String {
        let mut lines = Vec::new();
        self.explain_input(self.output, 0, false, &mut lines);
        lines.join("\n")
    }

    /// EXPLAIN ANALYZE text: [`Self::explain`] with each operator's committed counters.
    pub fn explain_analyze(&self) -> String {
        let mut lines = Vec::new();
        self.explain_input(self.output, 0, true, &mut lines);
        lines.join("\n")
    }

    fn explain_input(&self, input: Input, depth: usize, analyze: bool, lines: &mut Vec<String>) {
        let pad = "  ".repeat(depth);
        match input {
            Input::Source(s) => lines.push(format!("{pad}Source: {}", self.sources[s])),
            Input::Node(n) => {
                let node = &self.nodes[n];
                let state = node.op.state_rows();
                let state = if state > 0 {
                    format!("  [state: {state} groups]")
                } else {
                    String::new()
                };
                let counters = if analyze {
                    let c = &node.counters;
                    let late = if node.late_rows > 0 {
                        format!(", late {}", node.late_rows)
                    } else {
                        String::new()
                    };
                    format!(
                        "  (rows in {}, out {}{late}, time {:.3} ms)",
                        c.rows_in,
                        c.rows_out,
                        c.busy.as_secs_f64() * 1e3
                    )
                } else {
                    String::new()
                };
                lines.push(format!("{pad}{}{state}{counters}", node.op.describe()));
                for i in &node.inputs {
                    self.explain_input(*i, depth + 1, analyze, lines);
                }
            }
        }
    }

    pub fn state_rows(&self) -> usize {
        self.nodes.iter().map(|n| n.op.state_rows()).sum()
    }

    pub fn late_rows(&self) -> u64 {
        self.nodes.iter().map(|n| n.late_rows).sum()
    }
}
