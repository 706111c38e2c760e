//! The state store on sled: one `Db` under `<dir>/state`, one tree, each entry stored under
//! `table.to_be_bytes() ++ key`.
//!
//! Invariant: big-endian table prefixes sort tables in numeric order and keep each table a
//! contiguous key range, in which the user key orders bytewise as it would alone — so a
//! table's range (or scan) is one range of the tree and never reaches a neighbour's key.
//!
//! Durability: `commit` and `drop_table` apply one `sled::Batch` (atomic in sled) and then
//! `flush` (fsync) before returning. sled's own background flush also runs, but nothing here
//! relies on it.

use std::ops::Bound;
use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::{is_empty_range, StateStore, WriteBatch};
use crate::error::{EddyError, Result};

const PREFIX: usize = std::mem::size_of::<u64>();

/// How long `open` waits for sled's lock on the store to be released.
const LOCK_WAIT: Duration = Duration::from_secs(10);

pub struct SledStateStore {
    db: sled::Db,
    /// Commits share it; `drop_table` takes it alone. `drop_table` lists the table's keys and
    /// then deletes them, so a commit in between could leave keys of a dropped table behind.
    writers: RwLock<()>,
}

impl SledStateStore {
    /// Open (or create) the store under `dir`, with sled's page cache capped at
    /// `cache_bytes`.
    ///
    /// sled holds an exclusive lock on `<dir>/state/db` while the `Db` lives, and a moment
    /// after: the tasks of its IO thread pool hold the open file (through an `Arc`) until
    /// they finish, which can be after the last `Db` handle dropped. So reopening in the
    /// same process right after a close can meet the old lock — the fuzz's restart step
    /// hit it in about one run in three, and one 5 ms retry always sufficed. (sled's own
    /// test build blocks on the lock for this reason.) A held lock is retried for up to
    /// `LOCK_WAIT` (10 s); a store another live process holds still fails, after that wait.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self> {
        let path = dir.join("state");
        let config = sled::Config::new().path(&path).cache_capacity(cache_bytes);
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if is_lock_held(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    return Err(EddyError::Storage(format!(
                        "opening state store {}: {e}",
                        path.display()
                    )))
                }
            }
        };
        Ok(SledStateStore {
            db,
            writers: RwLock::new(()),
        })
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// sled 0.34 reports a held lock only as an I/O error of kind `Other` with this text.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

fn encode_key(table: u64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX + key.len());
    out.extend_from_slice(&table.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The user key of a stored key read back from `table`'s range.
fn decode_key(stored: &[u8]) -> Result<Vec<u8>> {
    stored
        .get(PREFIX..)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| EddyError::Storage("state store key shorter than its table prefix".into()))
}

/// The stored-key bounds of `start <= key < end` in `table` (`end` None = the table's end).
fn stored_bounds(table: u64, start: &[u8], end: Option<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = Bound::Included(encode_key(table, start));
    let upper = match (end, table.checked_add(1)) {
        (Some(end), _) => Bound::Excluded(encode_key(table, end)),
        (None, Some(next)) => Bound::Excluded(next.to_be_bytes().to_vec()),
        (None, None) => Bound::Unbounded,
    };
    (lower, upper)
}

impl StateStore for SledStateStore {
    fn commit(&self, batch: &WriteBatch) -> Result<()> {
        let mut sled_batch = sled::Batch::default();
        // sled's batch keeps the last op per key, as the model does.
        for (table, key, value) in &batch.ops {
            let key = encode_key(*table, key);
            match value {
                Some(value) => sled_batch.insert(key, value.as_slice()),
                None => sled_batch.remove(key),
            }
        }
        let _shared = self.writers.read().unwrap_or_else(|p| p.into_inner());
        self.db.apply_batch(sled_batch)?;
        self.flush()
    }

    fn get(&self, table: u64, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(encode_key(table, key))?.map(|v| v.to_vec()))
    }

    fn range(
        &self,
        table: u64,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if is_empty_range(start, end) {
            return Ok(Vec::new());
        }
        self.db
            .range(stored_bounds(table, start, end))
            .map(|entry| {
                let (k, v) = entry?;
                Ok((decode_key(&k)?, v.to_vec()))
            })
            .collect()
    }

    fn drop_table(&self, table: u64) -> Result<()> {
        let _alone = self.writers.write().unwrap_or_else(|p| p.into_inner());
        // The whole table's deletes in one batch: memory grows with the table's key count,
        // which is fine for the checkpoint-sized state this holds.
        let mut sled_batch = sled::Batch::default();
        for key in self.db.range(stored_bounds(table, &[], None)).keys() {
            sled_batch.remove(key?);
        }
        self.db.apply_batch(sled_batch)?;
        self.flush()
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
