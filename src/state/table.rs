//! State tables: the only place an operator keeps anything that outlives one batch.
//!
//! An operator owns its tables as fields (as a RisingWave executor owns its `StateTable`s)
//! and lists them in [`crate::dataflow::Operator::state_tables`]; the runtime, not the
//! operator, ends each epoch on all of them at once: [`StateTable::commit`] when the epoch
//! is durable, [`StateTable::abort`] when any step of it failed. Every write inside an epoch
//! is recorded in an undo log, so abort puts the table back exactly as the last commit left
//! it — a failed statement costs the state it touched, not a rebuild of the view.
//!
//! Invariant: between epochs the undo log is empty, and `abort` after any sequence of
//! writes restores the table to its contents at the previous `commit`.
//!
//! Three shapes cover the operators:
//! - [`StateMap`]: key → value, hashed (aggregate groups). A value is cloned into the undo
//!   log the first time an epoch touches it, so keep values small.
//! - [`OrderedState`]: key → value in key order, with ranges (windows by end, sessions by
//!   start, rows by time).
//! - [`IndexedZSet`]: key → row → multiplicity (join sides); undo is the negated update, so
//!   a key with many rows costs nothing extra to touch.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

// hashbrown with a fast non-cryptographic hasher: state keys are hashed once per row.
use datafusion::common::HashMap;

use super::encoding::{from_bytes, to_bytes, StateCodec};
use crate::error::{EddyError, Result};

/// A table's entries as checkpoint bytes.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// What a checkpoint writes of a table: entries to put and keys to delete.
#[derive(Debug, Default)]
pub struct Changes {
    pub puts: Entries,
    pub deletes: Vec<Vec<u8>>,
}

/// What the runtime needs of every state table, whatever its shape.
pub trait StateTable: Send {
    /// The table's name within its operator (EXPLAIN, metrics).
    fn name(&self) -> &'static str;
    /// The epoch's writes stay: forget how to undo them.
    fn commit(&mut self);
    /// Undo every write since the last commit.
    fn abort(&mut self);
    /// Entries held.
    fn len(&self) -> usize;
    /// Every committed entry as bytes (called between epochs).
    fn export(&self) -> Result<Entries>;
    /// What changed since the last checkpoint, as store writes — every entry if the table
    /// was never checkpointed (its store table is then empty). Called between epochs.
    /// Keys written by committed epochs are tracked only once a table has been
    /// checkpointed or restored, so a database without checkpoints keeps no such set.
    fn export_changes(&self) -> Result<Changes>;
    /// The checkpoint holding [`Self::export_changes`] is committed: track afresh.
    fn checkpointed(&mut self);
    /// Replace the contents with a checkpoint's entries (at restart, before any epoch).
    fn import(&mut self, entries: Entries) -> Result<()>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A value with the epoch that last saved an undo copy of it, so `get_mut` clones a value
/// into the undo log once per epoch, not once per row.
struct Stamped<V> {
    value: V,
    stamp: u64,
}

/// Key → value, hashed. Keys are bytes (Arrow row format, or any injective encoding).
pub struct StateMap<V> {
    name: &'static str,
    map: HashMap<Vec<u8>, Stamped<V>>,
    /// Old values (None: absent), in write order; replayed backwards on abort.
    undo: Vec<(Vec<u8>, Option<V>)>,
    /// Counts commits and aborts; a stamp equal to it means "already saved this epoch".
    epoch: u64,
    /// Keys written by committed epochs since the last checkpoint (None: not tracking).
    changed: Option<std::collections::HashSet<Vec<u8>>>,
}

impl<V: Clone + Send + StateCodec> StateMap<V> {
    pub fn new(name: &'static str) -> Self {
        StateMap {
            name,
            map: HashMap::new(),
            undo: Vec::new(),
            epoch: 1,
            changed: None,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.map.get(key).map(|s| &s.value)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// A value to change in place; its old version is saved for abort (once per epoch).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let epoch = self.epoch;
        let entry = self.map.get_mut(key)?;
        if entry.stamp != epoch {
            self.undo.push((key.to_vec(), Some(entry.value.clone())));
            entry.stamp = epoch;
        }
        Some(&mut entry.value)
    }

    /// Insert or replace; returns a mutable reference to the stored value.
    pub fn insert(&mut self, key: Vec<u8>, value: V) -> &mut V {
        let epoch = self.epoch;
        let old = self.map.insert(
            key.clone(),
            Stamped {
                value,
                stamp: epoch,
            },
        );
        // A value already saved this epoch needs no second copy: the first one is older.
        match old {
            Some(old) if old.stamp == epoch => {}
            Some(old) => self.undo.push((key.clone(), Some(old.value))),
            None => self.undo.push((key.clone(), None)),
        }
        &mut self.map.get_mut(&key).expect("inserted just above").value
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let old = self.map.remove(key)?;
        // A value stamped this epoch already has its older version in the undo log.
        if old.stamp != self.epoch {
            self.undo.push((key.to_vec(), Some(old.value.clone())));
        }
        Some(old.value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &V)> {
        self.map.iter().map(|(k, s)| (k, &s.value))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|s| &s.value)
    }
}

impl<V: Clone + Send + StateCodec> StateTable for StateMap<V> {
    fn export(&self) -> Result<Entries> {
        self.map
            .iter()
            .map(|(k, s)| Ok((k.clone(), to_bytes(&s.value)?)))
            .collect()
    }

    fn import(&mut self, entries: Entries) -> Result<()> {
        self.map.clear();
        self.undo.clear();
        for (k, v) in entries {
            self.map.insert(
                k,
                Stamped {
                    value: from_bytes(&v)?,
                    stamp: 0,
                },
            );
        }
        self.changed = Some(Default::default());
        Ok(())
    }

    fn export_changes(&self) -> Result<Changes> {
        let Some(changed) = &self.changed else {
            return Ok(Changes {
                puts: self.export()?,
                deletes: vec![],
            });
        };
        let mut out = Changes::default();
        for k in changed {
            match self.map.get(k) {
                Some(s) => out.puts.push((k.clone(), to_bytes(&s.value)?)),
                None => out.deletes.push(k.clone()),
            }
        }
        Ok(out)
    }

    fn checkpointed(&mut self) {
        self.changed = Some(Default::default());
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn commit(&mut self) {
        match &mut self.changed {
            Some(changed) => changed.extend(self.undo.drain(..).map(|(k, _)| k)),
            None => self.undo.clear(),
        }
        self.epoch += 1;
    }

    fn abort(&mut self) {
        // Backwards, so the oldest saved version of a key is the one that stays.
        while let Some((key, old)) = self.undo.pop() {
            match old {
                Some(value) => {
                    self.map.insert(key, Stamped { value, stamp: 0 });
                }
                None => {
                    self.map.remove(&key);
                }
            }
        }
        self.epoch += 1;
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Key → value in key order.
pub struct OrderedState<K, V> {
    name: &'static str,
    map: BTreeMap<K, V>,
    undo: Vec<(K, Option<V>)>,
    /// Keys written by committed epochs since the last checkpoint (None: not tracking).
    changed: Option<std::collections::BTreeSet<K>>,
}

impl<K: Ord + Clone + Send + StateCodec, V: Clone + Send + StateCodec> OrderedState<K, V> {
    pub fn new(name: &'static str) -> Self {
        OrderedState {
            name,
            map: BTreeMap::new(),
            undo: Vec::new(),
            changed: None,
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub fn insert(&mut self, key: K, value: V) {
        let old = self.map.insert(key.clone(), value);
        self.undo.push((key, old));
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.map.remove(key)?;
        self.undo.push((key.clone(), Some(old.clone())));
        Some(old)
    }

    pub fn range<R: RangeBounds<K>>(&self, range: R) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.map.range(range)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// Remove and return, in key order, every entry with a key below `bound`.
    pub fn drain_below(&mut self, bound: &K) -> Vec<(K, V)> {
        let keep = self.map.split_off(bound);
        let drained = std::mem::replace(&mut self.map, keep);
        let out: Vec<(K, V)> = drained.into_iter().collect();
        self.undo
            .extend(out.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
        out
    }

    /// Keep only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let undo = &mut self.undo;
        self.map.retain(|k, v| {
            let stays = keep(k, v);
            if !stays {
                undo.push((k.clone(), Some(v.clone())));
            }
            stays
        });
    }
}

impl<K: Ord + Clone + Send + StateCodec, V: Clone + Send + StateCodec> StateTable
    for OrderedState<K, V>
{
    fn export(&self) -> Result<Entries> {
        self.map
            .iter()
            .map(|(k, v)| Ok((to_bytes(k)?, to_bytes(v)?)))
            .collect()
    }

    fn import(&mut self, entries: Entries) -> Result<()> {
        self.map.clear();
        self.undo.clear();
        for (k, v) in entries {
            self.map.insert(from_bytes(&k)?, from_bytes(&v)?);
        }
        self.changed = Some(Default::default());
        Ok(())
    }

    fn export_changes(&self) -> Result<Changes> {
        let Some(changed) = &self.changed else {
            return Ok(Changes {
                puts: self.export()?,
                deletes: vec![],
            });
        };
        let mut out = Changes::default();
        for k in changed {
            match self.map.get(k) {
                Some(v) => out.puts.push((to_bytes(k)?, to_bytes(v)?)),
                None => out.deletes.push(to_bytes(k)?),
            }
        }
        Ok(out)
    }

    fn checkpointed(&mut self) {
        self.changed = Some(Default::default());
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn commit(&mut self) {
        match &mut self.changed {
            Some(changed) => changed.extend(self.undo.drain(..).map(|(k, _)| k)),
            None => self.undo.clear(),
        }
    }

    fn abort(&mut self) {
        while let Some((key, old)) = self.undo.pop() {
            match old {
                Some(v) => {
                    self.map.insert(key, v);
                }
                None => {
                    self.map.remove(&key);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The rows of one key, with their multiplicities.
#[derive(Default)]
pub struct KeyRows {
    /// Row (Arrow row format) → multiplicity, never zero.
    pub rows: HashMap<Vec<u8>, i64>,
    /// Sum of the multiplicities.
    pub total: i64,
}

/// Key → row → multiplicity: an indexed Z-set (DBSP), the state of one join side.
pub struct IndexedZSet {
    name: &'static str,
    index: HashMap<Vec<u8>, KeyRows>,
    rows: usize,
    /// `(key, row, weight)` added this epoch; abort adds them back negated.
    undo: Vec<(Vec<u8>, Vec<u8>, i64)>,
    /// (key, row) written by committed epochs since the last checkpoint (None: not
    /// tracking).
    changed: Option<std::collections::HashSet<(Vec<u8>, Vec<u8>)>>,
}

impl IndexedZSet {
    pub fn new(name: &'static str) -> Self {
        IndexedZSet {
            name,
            index: HashMap::new(),
            rows: 0,
            undo: Vec::new(),
            changed: None,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&KeyRows> {
        self.index.get(key)
    }

    /// Add `weight` copies of `row` under `key`. A multiplicity below zero means the input
    /// retracted a row it never inserted: an error, and nothing changes.
    pub fn add(&mut self, key: &[u8], row: &[u8], weight: i64) -> Result<()> {
        self.add_unlogged(key, row, weight)?;
        self.undo.push((key.to_vec(), row.to_vec(), weight));
        Ok(())
    }

    fn add_unlogged(&mut self, key: &[u8], row: &[u8], weight: i64) -> Result<()> {
        if weight == 0 {
            return Ok(());
        }
        let current = self
            .index
            .get(key)
            .and_then(|k| k.rows.get(row))
            .copied()
            .unwrap_or(0);
        let new = current + weight;
        if new < 0 {
            return Err(EddyError::internal(
                "join state retracted a row it never had",
            ));
        }
        let entry = match self.index.get_mut(key) {
            Some(e) => e,
            None => self.index.entry(key.to_vec()).or_default(),
        };
        entry.total += weight;
        if new == 0 {
            entry.rows.remove(row);
            self.rows -= 1;
        } else if current == 0 {
            entry.rows.insert(row.to_vec(), new);
            self.rows += 1;
        } else if let Some(c) = entry.rows.get_mut(row) {
            *c = new;
        }
        if entry.rows.is_empty() {
            self.index.remove(key);
        }
        Ok(())
    }

    /// The keys that have rows.
    pub fn keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.index.keys()
    }

    /// Sum of all multiplicities.
    pub fn total(&self) -> i64 {
        self.index.values().map(|k| k.total).sum()
    }
}

impl StateTable for IndexedZSet {
    fn export(&self) -> Result<Entries> {
        let mut out = Vec::with_capacity(self.rows);
        for (key, rows) in &self.index {
            for (row, count) in &rows.rows {
                out.push((to_bytes(&(key.clone(), row.clone()))?, to_bytes(count)?));
            }
        }
        Ok(out)
    }

    fn import(&mut self, entries: Entries) -> Result<()> {
        self.index.clear();
        self.undo.clear();
        self.rows = 0;
        for (k, v) in entries {
            let (key, row): (Vec<u8>, Vec<u8>) = from_bytes(&k)?;
            let count: i64 = from_bytes(&v)?;
            self.add_unlogged(&key, &row, count)?;
        }
        self.changed = Some(Default::default());
        Ok(())
    }

    fn export_changes(&self) -> Result<Changes> {
        let Some(changed) = &self.changed else {
            return Ok(Changes {
                puts: self.export()?,
                deletes: vec![],
            });
        };
        let mut out = Changes::default();
        for (key, row) in changed {
            let k = to_bytes(&(key.clone(), row.clone()))?;
            match self.index.get(key).and_then(|r| r.rows.get(row)) {
                Some(c) => out.puts.push((k, to_bytes(c)?)),
                None => out.deletes.push(k),
            }
        }
        Ok(out)
    }

    fn checkpointed(&mut self) {
        self.changed = Some(Default::default());
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn commit(&mut self) {
        match &mut self.changed {
            Some(changed) => changed.extend(self.undo.drain(..).map(|(k, r, _)| (k, r))),
            None => self.undo.clear(),
        }
    }

    fn abort(&mut self) {
        while let Some((key, row, weight)) = self.undo.pop() {
            // Negating an update that succeeded cannot go below zero.
            let _ = self.add_unlogged(&key, &row, -weight);
        }
    }

    fn len(&self) -> usize {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u32),
        Bump(u8),
        Remove(u8),
        Commit,
        Abort,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u8..6).prop_map(Op::Bump),
            (0u8..6).prop_map(Op::Remove),
            Just(Op::Commit),
            Just(Op::Abort),
        ]
    }

    #[test]
    fn export_then_import_gives_the_same_contents() {
        let mut m: StateMap<i64> = StateMap::new("m");
        m.insert(b"a".to_vec(), 1);
        m.insert(b"b".to_vec(), 2);
        m.commit();
        let mut back: StateMap<i64> = StateMap::new("m");
        back.import(m.export().unwrap()).unwrap();
        let mut got: Vec<_> = back.iter().map(|(k, v)| (k.clone(), *v)).collect();
        got.sort();
        assert_eq!(got, vec![(b"a".to_vec(), 1), (b"b".to_vec(), 2)]);

        let mut z = IndexedZSet::new("z");
        z.add(b"k", b"r1", 2).unwrap();
        z.add(b"k", b"r2", 1).unwrap();
        let mut zb = IndexedZSet::new("z");
        zb.import(z.export().unwrap()).unwrap();
        assert_eq!(zb.len(), 2);
        assert_eq!(zb.get(b"k").map(|k| k.total), Some(3));

        let mut o: OrderedState<(i64, Vec<u8>), ()> = OrderedState::new("o");
        o.insert((5, b"x".to_vec()), ());
        let mut ob: OrderedState<(i64, Vec<u8>), ()> = OrderedState::new("o");
        ob.import(o.export().unwrap()).unwrap();
        assert!(ob.get(&(5, b"x".to_vec())).is_some());
    }

    /// Apply a table's changes to a model of its store table.
    fn apply(store: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>, t: &mut dyn StateTable) {
        let changes = t.export_changes().unwrap();
        for k in changes.deletes {
            store.remove(&k);
        }
        store.extend(changes.puts);
        t.checkpointed();
    }

    fn full(t: &dyn StateTable) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
        t.export().unwrap().into_iter().collect()
    }

    proptest! {
        /// Checkpoints that write only the changes since the last one leave the store
        /// equal to a full export, whatever commits and aborts came between — also after
        /// a restore from the store.
        #[test]
        fn incremental_checkpoints_equal_a_full_export(
            ops in proptest::collection::vec((op(), proptest::bool::weighted(0.2)), 1..80)
        ) {
            let mut map: StateMap<u32> = StateMap::new("t");
            let mut ordered: OrderedState<i64, u32> = OrderedState::new("t");
            let mut z = IndexedZSet::new("z");
            let (mut sm, mut so, mut sz) = (Default::default(), Default::default(), Default::default());
            for (op, checkpoint) in ops {
                match op {
                    Op::Insert(k, v) => {
                        map.insert(vec![k], v);
                        ordered.insert(k as i64, v);
                        z.add(&[k], &v.to_le_bytes(), 1).unwrap();
                    }
                    Op::Bump(k) => {
                        if let Some(v) = map.get_mut(&[k]) { *v = v.wrapping_add(1); }
                    }
                    Op::Remove(k) => {
                        map.remove(&[k]);
                        ordered.remove(&(k as i64));
                        let rows: Vec<(Vec<u8>, i64)> = z.get(&[k]).map(|r| r.rows.iter().map(|(r, c)| (r.clone(), *c)).collect()).unwrap_or_default();
                        for (r, c) in rows { z.add(&[k], &r, -c).unwrap(); }
                    }
                    Op::Commit => { map.commit(); ordered.commit(); z.commit(); }
                    Op::Abort => { map.abort(); ordered.abort(); z.abort(); }
                }
                if checkpoint {
                    // Checkpoints happen between epochs.
                    map.commit(); ordered.commit(); z.commit();
                    apply(&mut sm, &mut map);
                    apply(&mut so, &mut ordered);
                    apply(&mut sz, &mut z);
                    prop_assert_eq!(&sm, &full(&map));
                    prop_assert_eq!(&so, &full(&ordered));
                    prop_assert_eq!(&sz, &full(&z));
                    // A restore from the store, then carry on from it.
                    let mut back: StateMap<u32> = StateMap::new("t");
                    back.import(sm.clone().into_iter().collect()).unwrap();
                    prop_assert_eq!(&full(&back), &sm);
                    map = back;
                }
            }
        }

        /// After any writes, abort restores exactly the last committed contents — for
        /// the hashed and the ordered table alike (a plain map is the model).
        #[test]
        fn abort_restores_the_last_commit(ops in proptest::collection::vec(op(), 1..80)) {
            let mut map: StateMap<u32> = StateMap::new("t");
            let mut ordered: OrderedState<i64, u32> = OrderedState::new("t");
            let mut live: std::collections::BTreeMap<u8, u32> = Default::default();
            let mut committed = live.clone();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        map.insert(vec![k], v);
                        ordered.insert(k as i64, v);
                        live.insert(k, v);
                    }
                    Op::Bump(k) => {
                        if let Some(v) = map.get_mut(&[k]) { *v = v.wrapping_add(1); }
                        if let Some(v) = ordered.get(&(k as i64)).copied() { ordered.insert(k as i64, v.wrapping_add(1)); }
                        if let Some(v) = live.get_mut(&k) { *v = v.wrapping_add(1); }
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(map.remove(&[k]), live.get(&k).copied());
                        ordered.remove(&(k as i64));
                        live.remove(&k);
                    }
                    Op::Commit => {
                        map.commit();
                        ordered.commit();
                        committed = live.clone();
                    }
                    Op::Abort => {
                        map.abort();
                        ordered.abort();
                        live = committed.clone();
                    }
                }
                let got: std::collections::BTreeMap<u8, u32> =
                    map.iter().map(|(k, v)| (k[0], *v)).collect();
                prop_assert_eq!(&got, &live);
                let got: std::collections::BTreeMap<u8, u32> =
                    ordered.iter().map(|(k, v)| (*k as u8, *v)).collect();
                prop_assert_eq!(&got, &live);
            }
        }

        /// The indexed Z-set under random additions and aborts equals a flat multiset.
        #[test]
        fn indexed_zset_abort_restores_multiplicities(
            ops in proptest::collection::vec((0u8..3, 0u8..4, -2i64..3, 0u8..4), 1..80)
        ) {
            let mut z = IndexedZSet::new("side");
            let mut live: std::collections::BTreeMap<(u8, u8), i64> = Default::default();
            let mut committed = live.clone();
            for (key, row, w, action) in ops {
                match action {
                    0 => { z.commit(); committed = live.clone(); }
                    1 => { z.abort(); live = committed.clone(); }
                    _ => {
                        let cur = live.get(&(key, row)).copied().unwrap_or(0);
                        let r = z.add(&[key], &[row], w);
                        prop_assert_eq!(r.is_err(), cur + w < 0);
                        if cur + w >= 0 {
                            if cur + w == 0 { live.remove(&(key, row)); } else { live.insert((key, row), cur + w); }
                        }
                    }
                }
                let mut got: std::collections::BTreeMap<(u8, u8), i64> = Default::default();
                for k in 0u8..3 {
                    if let Some(rows) = z.get(&[k]) {
                        prop_assert_eq!(rows.total, rows.rows.values().sum::<i64>());
                        for (r, c) in &rows.rows { got.insert((k, r[0]), *c); }
                    }
                }
                prop_assert_eq!(&got, &live);
                prop_assert_eq!(z.len(), live.len());
            }
        }
    }
}
