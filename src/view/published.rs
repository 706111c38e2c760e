//! A view's contents as a batch for readers, brought up to date outside the database lock.
//!
//! Before, a SELECT after any write rebuilt the whole batch from the arrangement's row map,
//! under the database lock: O(view) work that every writer waited for. Now the arrangement
//! keeps the last batch a reader built (`base`) and the deltas applied since. Taking a
//! snapshot under the lock clones those (reference counts only); [`Pending::load`], with no
//! lock, adds the deltas to the base and consolidates, and hands its result back through a
//! shared slot so the next reader starts from it.
//!
//! Invariant: `base` plus the sum of `since` equals the arrangement's contents. The deltas
//! kept are bounded by the base's size (and a floor): past that, the base is dropped and the
//! next snapshot is rebuilt from the row map, as before.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::SchemaRef;

use crate::core::batch::{take_columns, ChangeBatch};
use crate::error::{EddyError, Result};

/// Deltas kept without a reader, below which the base's size does not matter (small in
/// tests, so they reach the rebuild).
#[cfg(not(test))]
const MIN_KEPT_ROWS: usize = 4096;
#[cfg(test)]
const MIN_KEPT_ROWS: usize = 4;

/// A batch a reader built: the contents as of `version` (deltas ever applied).
type Folded = Arc<Mutex<Option<(u64, RecordBatch)>>>;

#[derive(Default)]
pub struct Published {
    /// The contents as of `version - since.len()` deltas, rows repeated by multiplicity.
    base: Option<RecordBatch>,
    since: Vec<ChangeBatch>,
    since_rows: usize,
    /// Deltas applied since the arrangement was created.
    version: u64,
    /// Where readers leave what they built.
    folded: Folded,
}

impl Published {
    /// A delta was applied to the arrangement.
    pub fn record(&mut self, delta: &ChangeBatch) {
        self.version += 1;
        if self.base.is_none() {
            return;
        }
        self.since.push(delta.clone());
        self.since_rows += delta.len();
        let base_rows = self.base.as_ref().map(|b| b.num_rows()).unwrap_or(0);
        if self.since_rows > base_rows.max(MIN_KEPT_ROWS) {
            self.forget();
        }
    }

    /// The contents changed in a way not described by deltas (a restore).
    pub fn forget(&mut self) {
        self.base = None;
        self.since.clear();
        self.since_rows = 0;
    }

    /// The contents as of now, if a base is known; `None` asks the caller to build it
    /// (then [`Self::set_base`]).
    pub fn snapshot(&mut self) -> Option<Pending> {
        self.take_folded();
        let base = self.base.clone()?;
        Some(Pending {
            base,
            since: self.since.clone(),
            version: self.version,
            folded: self.folded.clone(),
        })
    }

    /// The contents as of now, built by the caller from its rows.
    pub fn set_base(&mut self, batch: RecordBatch) {
        self.base = Some(batch);
        self.since.clear();
        self.since_rows = 0;
    }

    /// Start from what a reader built, if it is newer than the base.
    fn take_folded(&mut self) {
        let Some((version, batch)) = self.folded.lock().unwrap_or_else(|p| p.into_inner()).take()
        else {
            return;
        };
        let base_version = self.version - self.since.len() as u64;
        if self.base.is_none() || version <= base_version || version > self.version {
            return;
        }
        let folded = (version - base_version) as usize;
        let dropped: usize = self.since.drain(..folded).map(|d| d.len()).sum();
        self.since_rows -= dropped;
        self.base = Some(batch);
    }
}

/// A snapshot still to bring up to date: base plus deltas.
pub struct Pending {
    base: RecordBatch,
    since: Vec<ChangeBatch>,
    version: u64,
    folded: Folded,
}

impl Pending {
    pub fn load(self) -> Result<RecordBatch> {
        if self.since.is_empty() {
            return Ok(self.base);
        }
        let schema: SchemaRef = self.base.schema();
        let mut parts = Vec::with_capacity(self.since.len() + 1);
        parts.push(ChangeBatch::inserts(self.base));
        parts.extend(self.since);
        let sum = ChangeBatch::concat(&schema, &parts)?.consolidate()?;
        let batch = expand(sum)?;
        *self.folded.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((self.version, batch.clone()));
        Ok(batch)
    }
}

/// Rows repeated by their weight (all positive after consolidation).
fn expand(sum: ChangeBatch) -> Result<RecordBatch> {
    let weights = sum.weights.values();
    if weights.iter().all(|w| *w == 1) {
        return Ok(sum.data);
    }
    let mut idx = Vec::with_capacity(sum.len());
    for (i, w) in weights.iter().enumerate() {
        if *w < 0 {
            return Err(EddyError::internal(
                "a view's snapshot has a negative row count",
            ));
        }
        idx.extend(std::iter::repeat_n(i as u32, *w as usize));
    }
    let columns = take_columns(sum.data.columns(), &UInt32Array::from(idx))?;
    Ok(RecordBatch::try_new(sum.data.schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::batch::tests_support::{build, render_rows};
    use crate::view::arrangement::Arrangement;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::ScalarValue;
    use proptest::prelude::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]))
    }

    proptest! {
        /// Whatever the interleaving of writes, reads and readers that never hand their
        /// result back, a snapshot equals the arrangement rebuilt from its rows.
        #[test]
        fn snapshot_equals_contents(
            ops in prop::collection::vec((0u8..4, prop::collection::vec((0i64..6, 0i64..3), 0..8)), 1..40),
        ) {
            let mut arr = Arrangement::try_new(schema()).unwrap();
            let mut model: std::collections::BTreeMap<i64, i64> = Default::default();
            for (op, rows) in ops {
                match op {
                    0 | 1 => {
                        // Insert rows, or retract some present ones.
                        let mut delta = Vec::new();
                        for (k, n) in rows {
                            let have = model.get(&k).copied().unwrap_or(0);
                            let w = if op == 0 { n + 1 } else { -(n.min(have)) };
                            if w != 0 {
                                *model.entry(k).or_default() += w;
                                delta.push((w, vec![ScalarValue::Int64(Some(k))]));
                            }
                        }
                        arr.apply(&build(schema(), delta)).unwrap();
                    }
                    2 => {
                        let got = arr.snapshot().unwrap();
                        let mut want: Vec<String> = model
                            .iter()
                            .flat_map(|(k, n)| std::iter::repeat_n(format!("{k}"), *n as usize))
                            .collect();
                        want.sort();
                        prop_assert_eq!(render_rows(&got), want);
                    }
                    _ => {
                        // A reader that takes a snapshot and drops it unloaded.
                        drop(arr.deferred_snapshot().unwrap());
                    }
                }
            }
        }
    }
}
