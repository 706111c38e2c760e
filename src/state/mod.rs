//! Durable state: one ordered log of everything that changes the database — DDL statements
//! and the change batches accepted into base streams and tables. Replaying the log in order
//! rebuilds the catalog, the inputs and (deterministically) every view.
//!
//! Invariant: an entry is durable (synced) before the statement that produced it returns,
//! so whatever a client saw acknowledged survives `kill -9`.
//!
//! Two backends behind one trait: [`FileLog`] (the real one, under the data dir) and
//! [`MemoryStore`] (the model the real one is tested against).

mod codec;
pub mod encoding;
mod file_log;
pub mod store;
pub mod table;

use std::sync::Mutex;

pub use codec::LogEntry;
pub use file_log::FileLog;
pub use store::{MemoryStateStore, SledStateStore, StateStore, WriteBatch};

use crate::error::Result;

pub trait Store: Send + Sync {
    /// Append entries atomically (all or none) and make them durable.
    fn append(&self, entries: &[LogEntry]) -> Result<()>;
    /// Every entry, in append order.
    fn replay(&self) -> Result<Vec<LogEntry>>;
    /// Bytes the log takes on disk (approximate).
    fn size_on_disk(&self) -> u64;
    /// Drop every entry (a checkpoint now holds them), durably.
    fn truncate(&self) -> Result<()>;
}

/// The in-memory model of a [`Store`].
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<Vec<Vec<u8>>>,
}

impl Store for MemoryStore {
    fn append(&self, entries: &[LogEntry]) -> Result<()> {
        let encoded = entries
            .iter()
            .map(|e| e.encode())
            .collect::<Result<Vec<_>>>()?;
        self.entries
            .lock()
            .expect("memory store lock")
            .extend(encoded);
        Ok(())
    }

    fn replay(&self) -> Result<Vec<LogEntry>> {
        let entries = self.entries.lock().expect("memory store lock");
        entries.iter().map(|b| LogEntry::decode(b)).collect()
    }

    fn size_on_disk(&self) -> u64 {
        0
    }

    fn truncate(&self) -> Result<()> {
        self.entries.lock().expect("memory store lock").clear();
        Ok(())
    }
}

/// A shared store (tests keep a handle to reopen the same log).
impl<S: Store> Store for std::sync::Arc<S> {
    fn append(&self, entries: &[LogEntry]) -> Result<()> {
        self.as_ref().append(entries)
    }

    fn replay(&self) -> Result<Vec<LogEntry>> {
        self.as_ref().replay()
    }

    fn size_on_disk(&self) -> u64 {
        self.as_ref().size_on_disk()
    }

    fn truncate(&self) -> Result<()> {
        self.as_ref().truncate()
    }
}
