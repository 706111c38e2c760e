//! Bytes each relation (and each operator of a view) takes in the state store, for
//! `eddy_relation_disk_bytes`, `eddy_operator_state_disk_bytes` and `eddy_freshness`.
//!
//! Kept as a tally per store table, not measured by scanning the store: a checkpoint adds
//! what it writes less what it overwrites or deletes (it reads the old entry's size, so
//! it costs a lookup per changed key, never a pass over the state); a restart sets the
//! tables it loads from the entries it reads anyway; a dropped table leaves. Sizes are key
//! plus value bytes, before the store's own overhead and compression.
//!
//! Not counted: a stream's chunks written before the last restart (they are not read at
//! restart, and reading them only to measure them would make restart follow the length of
//! history again). Chunks written since are.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::error::Result;
use crate::state::store::{StateStore, WriteBatch};

/// Store table → bytes.
#[derive(Debug, Default)]
pub(crate) struct DiskUsage(Mutex<HashMap<u64, u64>>);

impl DiskUsage {
    fn tables(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A committed checkpoint changed these tables by these many bytes.
    pub fn apply(&self, delta: &HashMap<u64, i64>) {
        let mut t = self.tables();
        for (table, d) in delta {
            let e = t.entry(*table).or_default();
            *e = e.saturating_add_signed(*d);
        }
    }

    /// A table loaded at restart holds `entries`.
    pub fn loaded(&self, table: u64, entries: &[(Vec<u8>, Vec<u8>)]) {
        let bytes = entries
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        self.tables().insert(table, bytes);
    }

    pub fn dropped(&self, table: u64) {
        self.tables().remove(&table);
    }

    /// Bytes per table, summed by `group` (`None`: not counted).
    pub fn sum_by<K: std::hash::Hash + Eq>(
        &self,
        group: impl Fn(u64) -> Option<K>,
    ) -> HashMap<K, u64> {
        let mut out = HashMap::new();
        for (table, bytes) in self.tables().iter() {
            if let Some(k) = group(*table) {
                *out.entry(k).or_default() += bytes;
            }
        }
        out
    }
}

/// What committing `batch` will change, per table: new entries' sizes less the sizes of
/// the entries they replace (a later op on a key within the batch wins, as in the commit).
pub(crate) fn size_delta(store: &dyn StateStore, batch: &WriteBatch) -> Result<HashMap<u64, i64>> {
    let mut seen = HashSet::new();
    let mut delta: HashMap<u64, i64> = HashMap::new();
    for (table, key, value) in batch.ops().rev() {
        if !seen.insert((table, key)) {
            continue;
        }
        let old = store
            .get(table, key)?
            .map_or(0, |v| (key.len() + v.len()) as i64);
        let new = value.map_or(0, |v| (key.len() + v.len()) as i64);
        *delta.entry(table).or_default() += new - old;
    }
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::MemoryStateStore;

    #[test]
    fn the_tally_follows_puts_overwrites_and_deletes() {
        let store = MemoryStateStore::default();
        let usage = DiskUsage::default();
        let commit = |b: WriteBatch| {
            let d = size_delta(&store, &b).unwrap();
            store.commit(&b).unwrap();
            usage.apply(&d);
        };
        let mut b = WriteBatch::default();
        b.put(7, b"k1".to_vec(), b"vvvv".to_vec()); // 6
        b.put(7, b"k2".to_vec(), b"v".to_vec()); // 3
        b.put(7, b"k2".to_vec(), b"vv".to_vec()); // later wins: 4
        b.put(8, b"x".to_vec(), b"y".to_vec()); // 2
        commit(b);
        let by_table = usage.sum_by(Some);
        assert_eq!((by_table[&7], by_table[&8]), (10, 2));
        let mut b = WriteBatch::default();
        b.put(7, b"k1".to_vec(), b"v".to_vec()); // 6 -> 3
        b.delete(7, b"k2".to_vec()); // -4
        b.delete(7, b"nothing".to_vec()); // 0
        commit(b);
        assert_eq!(usage.sum_by(Some)[&7], 3);
        usage.dropped(7);
        assert_eq!(usage.sum_by(|t| (t != 8).then_some(t)).len(), 0);
    }
}
