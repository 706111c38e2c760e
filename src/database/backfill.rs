//! Backfill: a new view is fed the current contents of its inputs before it goes live.
//!
//! The inputs are read once, under the database lock (`BackfillInput::read`); the view's
//! dataflow then steps through them a chunk at a time (`run`) without the lock, so readers
//! go on meanwhile, and between chunks the backfill reports its progress: a row in
//! `eddy_progress`, and a NOTICE to the client that sent the CREATE (at most one per
//! `progress_interval`). Writers cannot interleave: every write, DDL included, holds the
//! database's `writer` lock, and so does the CREATE while it backfills; the view becomes
//! visible when the CREATE takes the database lock again.
//!
//! Chunking does not change the result: each operator is incremental (stepping ΔA then ΔB
//! gives what stepping ΔA + ΔB does), and the watermark advances only with the last chunk,
//! so every row is judged against the same watermark as in one step.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use datafusion::arrow::compute::concat_batches;

use super::{min_watermark, Inner};
use crate::catalog::Relation;
use crate::dataflow::ChangeBatch;
use crate::error::{EddyError, Result};

/// Input rows stepped at a time when a backfill has more than that (`--backfill-chunk-rows`).
pub const DEFAULT_BACKFILL_CHUNK_ROWS: usize = 65_536;
/// At most one progress NOTICE this often (`--progress-interval-ms`).
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Where a backfill's progress NOTICEs go: the session that sent the CREATE.
pub type NoticeSender = tokio::sync::mpsc::UnboundedSender<String>;

/// A view's inputs as they are now, in the order they must be stepped.
pub(super) struct BackfillInput {
    /// Tables and views first, streams second: a stream row joins a table as the table is
    /// when the row arrives, and the stored stream rows arrived after the table's current
    /// contents (as far as this new view can know), so they must see them. Each phase maps
    /// the dataflow's source slot to that source's rows.
    phases: Vec<Vec<(usize, ChangeBatch)>>,
    watermark: Option<i64>,
    rows_total: u64,
}

/// How a backfill reports: chunk size, NOTICE interval and where NOTICEs go.
pub(super) struct Reporting<'a> {
    pub chunk_rows: usize,
    pub interval: Duration,
    pub notices: Option<&'a NoticeSender>,
    pub progress: Option<&'a crate::metrics::BackfillHandle>,
}

impl BackfillInput {
    /// Read the inputs of `rel`'s dataflow (the database lock is held).
    pub(super) fn read(inner: &mut Inner, rel: &Relation) -> Result<Self> {
        let flow = rel
            .dataflow
            .as_ref()
            .ok_or_else(|| EddyError::internal("a view without a dataflow"))?;
        let mut tables = Vec::new();
        let mut streams = Vec::new();
        for (slot, src) in flow.sources.iter().enumerate() {
            let source = inner
                .get_mut(src)
                .ok_or_else(|| EddyError::UnknownRelation(src.clone()))?;
            let batches = source.storage.snapshot()?;
            let data = concat_batches(&source.schema, batches.iter())?;
            if source.kind.is_append_only() {
                streams.push((slot, ChangeBatch::inserts(data)));
            } else {
                tables.push((slot, ChangeBatch::inserts(data)));
            }
        }
        let watermark = min_watermark(&flow.watermark_sources, |s| inner.watermark_of(s));
        let phases = if !tables.is_empty() && !streams.is_empty() {
            vec![tables, streams]
        } else {
            tables.extend(streams);
            vec![tables]
        };
        let rows_total = phases.iter().flatten().map(|(_, b)| b.len() as u64).sum();
        Ok(BackfillInput {
            phases,
            watermark,
            rows_total,
        })
    }

    pub(super) fn rows_total(&self) -> u64 {
        self.rows_total
    }

    /// Step `rel`'s dataflow through the inputs and apply its output to `rel`; one epoch
    /// per step. A phase that fits in one chunk is one step, all its sources together.
    pub(super) fn run(self, rel: &mut Relation, report: Reporting<'_>) -> Result<()> {
        let chunk = report.chunk_rows.max(1);
        let mut steps: Vec<HashMap<usize, ChangeBatch>> = Vec::new();
        for phase in self.phases {
            let rows: usize = phase.iter().map(|(_, b)| b.len()).sum();
            if rows <= chunk {
                steps.push(phase.into_iter().collect());
                continue;
            }
            for (slot, batch) in phase {
                let mut offset = 0;
                while offset < batch.len() {
                    let len = chunk.min(batch.len() - offset);
                    steps.push([(slot, slice(&batch, offset, len))].into());
                    offset += len;
                }
            }
        }
        let started = Instant::now();
        let mut last_notice = started;
        let mut done = 0u64;
        let last = steps.len().saturating_sub(1);
        let name = rel.name.clone();
        for (i, deltas) in steps.into_iter().enumerate() {
            let watermark = if i == last { self.watermark } else { None };
            done += deltas.values().map(|b| b.len() as u64).sum::<u64>();
            let flow = rel
                .dataflow
                .as_mut()
                .ok_or_else(|| EddyError::internal("a view without a dataflow"))?;
            if let Some(out) = flow.step(&deltas, watermark)? {
                rel.storage.apply(&out)?;
            }
            rel.dataflow
                .as_mut()
                .ok_or_else(|| EddyError::internal("a view without a dataflow"))?
                .commit()?;
            if let Some(p) = report.progress {
                p.advance(done);
            }
            if i < last && last_notice.elapsed() >= report.interval {
                last_notice = Instant::now();
                if let Some(tx) = report.notices {
                    // The client may have gone: the backfill finishes anyway.
                    let _ = tx.send(progress_message(
                        &name,
                        done,
                        self.rows_total,
                        started.elapsed(),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn slice(batch: &ChangeBatch, offset: usize, len: usize) -> ChangeBatch {
    ChangeBatch::new(
        batch.data.slice(offset, len),
        batch.weights.slice(offset, len),
    )
}

/// The NOTICE text: `backfilling v: 20000 of 100000 input rows (20 %), 0.4 s`.
pub fn progress_message(view: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let pct = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    format!(
        "backfilling {view}: {done} of {total} input rows ({pct:.0} %), {:.1} s",
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_message_reads_as_a_fraction() {
        assert_eq!(
            progress_message("v", 2, 8, Duration::from_millis(1500)),
            "backfilling v: 2 of 8 input rows (25 %), 1.5 s"
        );
        assert!(progress_message("v", 0, 0, Duration::ZERO).contains("(100 %)"));
    }
}
