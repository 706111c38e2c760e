//! Group commit: INSERTs from concurrent sessions share one epoch and one fsync.
//!
//! An INSERT evaluates its rows on its own (no lock), queues them, and waits for the writer
//! lock. Whoever gets the lock first becomes the leader: it takes every queued INSERT and,
//! under the database lock, stages them one after another into one epoch (each sees the
//! ones before it: an upsert retracts the row an earlier INSERT of the group wrote), appends
//! all their log entries in one write with one fsync, commits the epoch and answers every
//! waiter. The others find their answer waiting when they get the lock.
//!
//! Invariants: an INSERT is answered only after its rows are durable and visible in every
//! dependent view (read-your-writes as before); an INSERT that fails (a view cannot take
//! its rows) fails alone — the epoch is aborted and staged again without it.

use datafusion::arrow::array::RecordBatch;

use super::{Database, EpochWork, Inner};
use crate::core::ChangeBatch;
use crate::error::{EddyError, Result};
use crate::state::LogEntry;
use crate::view::Storage;

pub(super) struct PendingInsert {
    name: String,
    rows: RecordBatch,
    reply: tokio::sync::oneshot::Sender<Result<()>>,
}

/// INSERTs waiting for a leader.
#[derive(Default)]
pub(super) struct InsertQueue(std::sync::Mutex<Vec<PendingInsert>>);

impl InsertQueue {
    fn push(&self, p: PendingInsert) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(p);
    }

    fn take(&self) -> Vec<PendingInsert> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Database {
    /// Insert `rows` (already cast and checked) into `name` as part of the next group.
    pub(super) async fn commit_insert(&self, name: String, rows: RecordBatch) -> Result<()> {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        self.inserts.push(PendingInsert { name, rows, reply });
        let _w = self.writer.lock().await;
        if let Ok(r) = answer.try_recv() {
            // A previous leader committed it.
            return r;
        }
        let group = self.inserts.take();
        self.apply_inserts(group);
        answer
            .await
            .unwrap_or_else(|_| Err(EddyError::internal("group commit lost an insert")))
    }

    /// The leader's work: one epoch for the whole group.
    fn apply_inserts(&self, group: Vec<PendingInsert>) {
        let mut inner = self.lock();
        // Rows without an event time are refused once, whatever happens to the epoch.
        let mut items = Vec::with_capacity(group.len());
        for p in group {
            match super::dml::admit(&mut inner, &p.name, p.rows) {
                Ok(rows) => items.push(PendingInsert { rows, ..p }),
                Err(e) => {
                    let _ = p.reply.send(Err(e));
                }
            }
        }
        loop {
            let mut work = EpochWork::default();
            let mut entries = Vec::with_capacity(items.len());
            let mut failed = None;
            for (i, p) in items.iter().enumerate() {
                match stage_insert(&mut inner, &p.name, &p.rows, &mut work) {
                    Ok(Some(delta)) => entries.push(LogEntry::Changes {
                        relation: p.name.clone(),
                        batch: delta,
                    }),
                    Ok(None) => {}
                    Err(e) => {
                        failed = Some((i, e));
                        break;
                    }
                }
            }
            if let Some((i, e)) = failed {
                // Undo the group so far and stage it again without the one that failed.
                if let Err(undo) = Self::abort_epoch(&mut inner, work) {
                    tracing::error!(error = %undo, "could not undo a failed insert group");
                }
                let p = items.remove(i);
                let _ = p.reply.send(Err(e));
                continue;
            }
            tracing::debug!(statements = items.len(), "insert group");
            let logged = if entries.is_empty() {
                Ok(())
            } else {
                self.log(&entries)
            };
            let result = self.finish_epoch(&mut inner, work, logged);
            // The group shares the outcome; only the log write can fail here (disk full).
            for p in items {
                let r = match &result {
                    Ok(()) => Ok(()),
                    // Each waiter gets its own copy, keeping an I/O error's kind (a full
                    // disk is 53100).
                    Err(EddyError::Io(e)) => {
                        Err(std::io::Error::new(e.kind(), e.to_string()).into())
                    }
                    Err(e) => Err(EddyError::Storage(e.to_string())),
                };
                let _ = p.reply.send(r);
            }
            return;
        }
    }
}

/// Stage one INSERT's rows into `work`: upserts against the table as the group left it.
/// Returns the delta to log (None: nothing changed).
fn stage_insert(
    inner: &mut Inner,
    name: &str,
    rows: &RecordBatch,
    work: &mut EpochWork,
) -> Result<Option<ChangeBatch>> {
    let delta = match &inner.require(name)?.storage {
        Storage::Keyed(k) => k.upsert_delta(rows)?,
        _ => ChangeBatch::inserts(rows.clone()),
    }
    .consolidate()?;
    if delta.is_empty() {
        return Ok(None);
    }
    Database::stage(inner, name, &delta, work)?;
    Ok(Some(delta))
}
