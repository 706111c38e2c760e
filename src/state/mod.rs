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
    /// Seal the entries appended so far: later appends start a new segment. (A
    /// checkpoint seals the log at its marker, then writes its state while writes go on.)
    fn seal(&self) -> Result<()>;
    /// Drop every sealed entry (a checkpoint now holds them), durably. Entries appended
    /// after the last seal stay.
    fn drop_sealed(&self) -> Result<()>;
}

/// The in-memory model of a [`Store`].
#[derive(Default)]
pub struct MemoryStore {
    /// The entries, and how many of the first ones are sealed.
    entries: Mutex<(Vec<Vec<u8>>, usize)>,
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
            .0
            .extend(encoded);
        Ok(())
    }

    fn replay(&self) -> Result<Vec<LogEntry>> {
        let entries = self.entries.lock().expect("memory store lock");
        entries.0.iter().map(|b| LogEntry::decode(b)).collect()
    }

    fn size_on_disk(&self) -> u64 {
        0
    }

    fn seal(&self) -> Result<()> {
        let mut e = self.entries.lock().expect("memory store lock");
        e.1 = e.0.len();
        Ok(())
    }

    fn drop_sealed(&self) -> Result<()> {
        let mut e = self.entries.lock().expect("memory store lock");
        let sealed = e.1;
        e.0.drain(..sealed);
        e.1 = 0;
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

    fn seal(&self) -> Result<()> {
        self.as_ref().seal()
    }

    fn drop_sealed(&self) -> Result<()> {
        self.as_ref().drop_sealed()
    }
}
