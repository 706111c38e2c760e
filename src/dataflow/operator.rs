//! The operator contract. Only `process` and `describe` are required; the hooks default to
//! doing nothing, which for a stateless operator is the same as forwarding.
//!
//! Messages travel in order on each input: `Data` (a [`ChangeBatch`]), `Watermark` (event
//! time has passed t) and `Barrier` (the end of an epoch). The runtime ([`super::graph`])
//! delivers them by calling the matching method.
//!
//! State: an operator keeps whatever outlives a batch in state tables
//! ([`crate::state::table`]) and lists them in [`Operator::state_tables`]. The runtime ends
//! the epoch on all of them together — commit when it is durable, abort when any step of
//! it failed — so an operator never undoes anything itself. The runtime also owns the
//! watermark (passed in through [`Ctx`]) and the count of late rows.

use crate::core::ChangeBatch;
use crate::error::Result;
use crate::state::table::StateTable;

/// A control or data message on an operator input.
#[derive(Debug, Clone)]
pub enum Message {
    Data(ChangeBatch),
    /// Event time in microseconds since the epoch.
    Watermark(i64),
    Barrier(u64),
}

/// What the runtime tells an operator about the epoch it is in, and what the operator
/// reports back.
#[derive(Debug, Default)]
pub struct Ctx {
    epoch: u64,
    watermark: Option<i64>,
    late_rows: u64,
}

impl Ctx {
    pub fn new(epoch: u64, watermark: Option<i64>) -> Self {
        Ctx {
            epoch,
            watermark,
            late_rows: 0,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The watermark the input had reached before this epoch's data (µs); rows behind it
    /// are judged late against it.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Rows dropped because they came after their window closed; counted by the runtime
    /// and kept only if the epoch commits.
    pub fn count_late(&mut self, rows: u64) {
        self.late_rows += rows;
    }

    pub fn late_rows(&self) -> u64 {
        self.late_rows
    }
}

pub trait Operator: Send {
    /// Take a delta on input `input` and return the delta of this operator's output.
    fn process(&mut self, input: usize, batch: ChangeBatch, ctx: &mut Ctx) -> Result<ChangeBatch>;

    /// Event time on all inputs has passed `watermark` (always larger than the last one
    /// delivered). Operators that hold windows close them here and may emit.
    fn on_watermark(&mut self, _watermark: i64, _ctx: &mut Ctx) -> Result<Option<ChangeBatch>> {
        Ok(None)
    }

    /// The epoch is complete on every input and about to commit: an operator with work
    /// to do at epoch end does it here. Its state tables are committed by the runtime.
    fn on_barrier(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }

    /// The operator's state tables, for the runtime to commit, abort and measure.
    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        Vec::new()
    }

    /// The state tables were just loaded from a checkpoint: rebuild anything derived
    /// from them (counters, caches).
    fn after_restore(&mut self) {}

    /// One line for EXPLAIN.
    fn describe(&self) -> String;

    /// Rows of state this operator holds (0 for stateless operators).
    fn state_rows(&self) -> usize {
        0
    }
}
