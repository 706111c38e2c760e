//! The one small operator trait. Only `process` is required; the control hooks default to
//! doing nothing, which for a stateless operator is the same as forwarding.
//!
//! Messages travel in order on each input: `Data` (a [`ChangeBatch`]), `Watermark` (event
//! time has passed t) and `Barrier` (the end of an epoch). The runtime ([`super::graph`])
//! delivers them by calling the matching method.

use super::batch::ChangeBatch;
use crate::error::Result;

/// A control or data message on an operator input.
#[derive(Debug, Clone)]
pub enum Message {
    Data(ChangeBatch),
    /// Event time in microseconds since the epoch.
    Watermark(i64),
    Barrier(u64),
}

pub trait Operator: Send {
    /// Take a delta on input `input` and return the delta of this operator's output.
    fn process(&mut self, input: usize, batch: ChangeBatch) -> Result<ChangeBatch>;

    /// Event time on all inputs has passed `watermark`. Operators that hold windows
    /// close them here and may emit; the default emits nothing.
    fn on_watermark(&mut self, _watermark: i64) -> Result<Option<ChangeBatch>> {
        Ok(None)
    }

    /// An epoch ended: stateful operators would persist their state for it here.
    fn on_barrier(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }

    /// One line for EXPLAIN.
    fn describe(&self) -> String;

    /// Rows of state this operator holds (0 for stateless operators).
    fn state_rows(&self) -> usize {
        0
    }

    /// Rows dropped because they arrived after their window closed.
    fn late_rows(&self) -> u64 {
        0
    }
}
