//! Connectors: where rows come from and go to outside the Postgres wire. `kafka` (topics
//! in and out), and built-in generators that feed streams: `nexmark` (the Nexmark
//! benchmark's person, auction and bid streams) and `datagen` (random rows of any declared
//! schema).
//!
//! Invariant of generators: a generator is a pure function of the event range it is asked
//! for. Events `[from, to)` are the same rows whatever the chunking and however often they
//! are asked for, so the database logs only how many events a source has produced and
//! regenerates them on replay instead of logging every row.

pub mod datagen;
pub mod kafka;
pub mod nexmark;

use datafusion::arrow::array::RecordBatch;

use crate::error::Result;

/// A deterministic source of rows for one or more streams.
pub trait Generator: Send + Sync {
    /// The streams this generator feeds, in the order [`Generator::generate`] returns
    /// their batches.
    fn streams(&self) -> Vec<String>;
    /// The rows of events `[from, to)`, one batch per stream (possibly empty), with the
    /// streams' columns in order.
    fn generate(&self, from: u64, to: u64) -> Result<Vec<RecordBatch>>;
}
