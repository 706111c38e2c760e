//! The sled backend: log entries under big-endian sequence numbers in one tree, so
//! iteration order is append order. Each append is one sled batch, then a flush (fsync).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{LogEntry, Store};
use crate::error::Result;

pub struct SledStore {
    db: sled::Db,
    log: sled::Tree,
    next: AtomicU64,
}

impl SledStore {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        // The log is written once and read only at start: a small page cache keeps the
        // server's memory bounded however long the log grows.
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(32 * 1024 * 1024)
            .open()?;
        let log = db.open_tree("log")?;
        let next = match log.last()? {
            Some((k, _)) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&k[..8]);
                u64::from_be_bytes(b) + 1
            }
            None => 0,
        };
        Ok(SledStore {
            db,
            log,
            next: AtomicU64::new(next),
        })
    }
}

impl Store for SledStore {
    fn append(&self, entries: &[LogEntry]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for e in entries {
            let seq = self.next.fetch_add(1, Ordering::SeqCst);
            batch.insert(&seq.to_be_bytes(), e.encode()?);
        }
        self.log.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn replay(&self) -> Result<Vec<LogEntry>> {
        self.log
            .iter()
            .values()
            .map(|v| LogEntry::decode(&v?))
            .collect()
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
