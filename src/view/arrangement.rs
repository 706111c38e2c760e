//! Arrangements: the current contents of a relation, kept as rows in Arrow's row format.
//!
//! - [`Storage::Log`]: append-only streams keep their batches as they came (no per-row work).
//! - [`Storage::Multiset`]: a row → multiplicity map; applying a delta adds weights.
//! - [`Storage::Keyed`]: a table with a primary key; one row per key.
//!
//! Invariant: a snapshot equals the sum of all deltas applied so far (multiplicities never
//! negative). A view's snapshot is kept up to date by deltas, mostly outside the database
//! lock (see [`crate::view::published`]).

// hashbrown with a fast non-cryptographic hasher: row keys are hashed once per row.
use datafusion::common::HashMap;

use datafusion::arrow::array::{Array, RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::RowConverter;

use crate::core::batch::{row_converter, take_columns, ChangeBatch};
use crate::error::{EddyError, Result};
use crate::state::table::{Changes, Entries};
use crate::view::published::{Pending, Published};
use crate::view::stream_log::StreamLog;

pub struct Arrangement {
    schema: SchemaRef,
    converter: RowConverter,
    rows: HashMap<Vec<u8>, i64>,
    published: Published,
    /// Rows changed since the last checkpoint (None: not tracking, see `StateTable`).
    changed: Option<std::collections::HashSet<Vec<u8>>>,
}

impl Arrangement {
    pub fn try_new(schema: SchemaRef) -> Result<Self> {
        Ok(Arrangement {
            converter: row_converter(&schema)?,
            schema,
            rows: HashMap::new(),
            published: Published::default(),
            changed: None,
        })
    }

    pub fn apply(&mut self, delta: &ChangeBatch) -> Result<()> {
        if delta.is_empty() {
            return Ok(());
        }
        match self.apply_rows(delta) {
            Ok(()) => {
                self.published.record(delta);
                Ok(())
            }
            Err(e) => {
                // Applied in part: the deltas no longer describe the rows.
                self.published.forget();
                Err(e)
            }
        }
    }

    fn apply_rows(&mut self, delta: &ChangeBatch) -> Result<()> {
        let rows = self.converter.convert_columns(delta.data.columns())?;
        if let Some(changed) = &mut self.changed {
            changed.extend((0..rows.num_rows()).map(|i| rows.row(i).data().to_vec()));
        }
        for (i, w) in delta.weights.values().iter().enumerate() {
            let key = rows.row(i);
            match self.rows.get_mut(key.as_ref()) {
                Some(c) => {
                    *c += w;
                    if *c == 0 {
                        self.rows.remove(key.as_ref());
                    } else if *c < 0 {
                        return Err(EddyError::internal(
                            "arrangement multiplicity went negative",
                        ));
                    }
                }
                None if *w > 0 => {
                    self.rows.insert(key.as_ref().to_vec(), *w);
                }
                None if *w == 0 => {}
                None => {
                    return Err(EddyError::internal(
                        "retracted a row that is not in the arrangement",
                    ))
                }
            }
        }
        Ok(())
    }

    /// The contents; see [`Published`] for what is done under the caller's lock.
    pub fn deferred_snapshot(&mut self) -> Result<Snapshot> {
        if let Some(p) = self.published.snapshot() {
            return Ok(Snapshot::View(p));
        }
        let batch = self.build_snapshot()?;
        self.published.set_base(batch.clone());
        Ok(Snapshot::Batches(vec![batch]))
    }

    pub fn snapshot(&mut self) -> Result<RecordBatch> {
        one_batch(self.deferred_snapshot()?)
    }

    /// The contents rebuilt from the row map.
    fn build_snapshot(&self) -> Result<RecordBatch> {
        let parser = self.converter.parser();
        let mut rows = Vec::with_capacity(self.rows.len());
        for (bytes, count) in &self.rows {
            for _ in 0..*count {
                rows.push(parser.parse(bytes));
            }
        }
        let columns = self.converter.convert_rows(rows)?;
        if columns.is_empty() {
            Ok(RecordBatch::new_empty(self.schema.clone()))
        } else {
            Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
        }
    }

    pub fn len(&self) -> usize {
        self.rows.values().map(|c| *c as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn approx_bytes(&self) -> usize {
        self.rows.keys().map(|k| k.len() + 16).sum()
    }

    fn export(&self) -> Entries {
        self.rows
            .iter()
            .map(|(r, c)| (r.clone(), c.to_le_bytes().to_vec()))
            .collect()
    }

    fn import(&mut self, entries: Entries) -> Result<()> {
        self.rows.clear();
        for (row, count) in entries {
            let count: [u8; 8] = count
                .as_slice()
                .try_into()
                .map_err(|_| EddyError::Storage("checkpoint row count is not 8 bytes".into()))?;
            self.rows.insert(row, i64::from_le_bytes(count));
        }
        self.published.forget();
        self.changed = Some(Default::default());
        Ok(())
    }

    fn export_changes(&self) -> Changes {
        let Some(changed) = &self.changed else {
            return Changes {
                puts: self.export(),
                deletes: vec![],
            };
        };
        let mut out = Changes::default();
        for r in changed {
            match self.rows.get(r) {
                Some(c) => out.puts.push((r.clone(), c.to_le_bytes().to_vec())),
                None => out.deletes.push(r.clone()),
            }
        }
        out
    }
}

/// A table with a primary key: at most one row per key.
pub struct KeyedArrangement {
    schema: SchemaRef,
    key_columns: Vec<usize>,
    converter: RowConverter,
    key_converter: RowConverter,
    by_key: HashMap<Vec<u8>, Vec<u8>>,
    published: Published,
    /// Keys changed since the last checkpoint (None: not tracking).
    changed: Option<std::collections::HashSet<Vec<u8>>>,
}

impl KeyedArrangement {
    pub fn try_new(schema: SchemaRef, key_columns: Vec<usize>) -> Result<Self> {
        let key_schema = std::sync::Arc::new(schema.project(&key_columns)?);
        Ok(KeyedArrangement {
            converter: row_converter(&schema)?,
            key_converter: row_converter(&key_schema)?,
            schema,
            key_columns,
            by_key: HashMap::new(),
            published: Published::default(),
            changed: None,
        })
    }

    fn keys(&self, batch: &RecordBatch) -> Result<datafusion::arrow::row::Rows> {
        let cols: Vec<_> = self
            .key_columns
            .iter()
            .map(|i| batch.column(*i).clone())
            .collect();
        Ok(self.key_converter.convert_columns(&cols)?)
    }

    /// The delta that upserts `rows`: for each key, −old (if any and different), +new.
    /// Within `rows`, the last row for a key wins.
    pub fn upsert_delta(&self, rows: &RecordBatch) -> Result<ChangeBatch> {
        for &k in &self.key_columns {
            if rows.column(k).null_count() > 0 {
                return Err(EddyError::BadValue {
                    code: "23502",
                    message: format!(
                        "null value in column \"{}\" violates not-null constraint of the primary key",
                        self.schema.field(k).name()
                    ),
                });
            }
        }
        let keys = self.keys(rows)?;
        let full = self.converter.convert_columns(rows.columns())?;
        let mut last: HashMap<&[u8], usize> = HashMap::new();
        for i in 0..rows.num_rows() {
            last.insert(keys.row(i).data(), i);
        }
        let mut winners: Vec<usize> = last.into_values().collect();
        winners.sort_unstable();
        let mut retract = Vec::new();
        let mut insert: Vec<u32> = Vec::new();
        let parser = self.converter.parser();
        for i in winners {
            let new_row = full.row(i);
            match self.by_key.get(keys.row(i).data()) {
                Some(old) if old.as_slice() == new_row.data() => {}
                Some(old) => {
                    retract.push(parser.parse(old));
                    insert.push(i as u32);
                }
                None => insert.push(i as u32),
            }
        }
        let old = self.rows_to_batch(retract)?;
        let new = RecordBatch::try_new(
            self.schema.clone(),
            take_columns(rows.columns(), &UInt32Array::from(insert))?,
        )?;
        ChangeBatch::concat(
            &self.schema,
            &[ChangeBatch::retractions(old), ChangeBatch::inserts(new)],
        )
    }

    /// The delta that deletes the rows whose keys are those of `keys` (a batch in this
    /// schema whose other columns are ignored); absent keys are no-ops.
    pub fn delete_delta(&self, keys: &RecordBatch) -> Result<ChangeBatch> {
        let k = self.keys(keys)?;
        let parser = self.converter.parser();
        let mut seen = std::collections::HashSet::new();
        let mut retract = Vec::new();
        for i in 0..keys.num_rows() {
            let key = k.row(i);
            if !seen.insert(key.data().to_vec()) {
                continue;
            }
            if let Some(old) = self.by_key.get(key.data()) {
                retract.push(parser.parse(old));
            }
        }
        Ok(ChangeBatch::retractions(self.rows_to_batch(retract)?))
    }

    fn rows_to_batch(&self, rows: Vec<datafusion::arrow::row::Row<'_>>) -> Result<RecordBatch> {
        if rows.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        Ok(RecordBatch::try_new(
            self.schema.clone(),
            self.converter.convert_rows(rows)?,
        )?)
    }

    /// Apply a delta: retractions first, then insertions, so −old,+new of one key works in
    /// either order. Two live rows for one key are a primary key violation. Validated
    /// before anything changes, so a failed apply leaves the table as it was.
    pub fn apply(&mut self, delta: &ChangeBatch) -> Result<()> {
        if delta.is_empty() {
            return Ok(());
        }
        let keys = self.keys(&delta.data)?;
        let full = self.converter.convert_columns(delta.data.columns())?;
        let w = delta.weights.values();
        let mut removed: std::collections::HashSet<&[u8]> = Default::default();
        let mut added: std::collections::HashSet<&[u8]> = Default::default();
        for i in 0..delta.len() {
            if w[i] < 0 {
                let k = keys.row(i).data();
                if w[i] < -1 || !self.by_key.contains_key(k) || !removed.insert(k) {
                    return Err(EddyError::internal(
                        "retracted a key that is not in the table",
                    ));
                }
            }
        }
        for i in 0..delta.len() {
            if w[i] > 0 {
                let k = keys.row(i).data();
                let live = self.by_key.contains_key(k) && !removed.contains(k);
                if w[i] > 1 || live || !added.insert(k) {
                    return Err(EddyError::BadValue {
                        code: "23505",
                        message: "duplicate key value violates the primary key".into(),
                    });
                }
            }
        }
        if let Some(changed) = &mut self.changed {
            changed.extend((0..delta.len()).map(|i| keys.row(i).data().to_vec()));
        }
        for i in 0..delta.len() {
            if w[i] < 0 {
                self.by_key.remove(keys.row(i).data());
            }
        }
        for i in 0..delta.len() {
            if w[i] > 0 {
                self.by_key
                    .insert(keys.row(i).data().to_vec(), full.row(i).data().to_vec());
            }
        }
        self.published.record(delta);
        Ok(())
    }

    /// The contents; see [`Published`] for what is done under the caller's lock.
    pub fn deferred_snapshot(&mut self) -> Result<Snapshot> {
        if let Some(p) = self.published.snapshot() {
            return Ok(Snapshot::View(p));
        }
        let parser = self.converter.parser();
        let rows: Vec<_> = self.by_key.values().map(|r| parser.parse(r)).collect();
        let batch = self.rows_to_batch(rows)?;
        self.published.set_base(batch.clone());
        Ok(Snapshot::Batches(vec![batch]))
    }

    pub fn snapshot(&mut self) -> Result<RecordBatch> {
        one_batch(self.deferred_snapshot()?)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn approx_bytes(&self) -> usize {
        self.by_key
            .iter()
            .map(|(k, v)| k.len() + v.len() + 32)
            .sum()
    }

    fn export(&self) -> Entries {
        self.by_key
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    }

    fn import(&mut self, entries: Entries) {
        self.by_key = entries.into_iter().collect();
        self.published.forget();
        self.changed = Some(Default::default());
    }

    fn export_changes(&self) -> Changes {
        let Some(changed) = &self.changed else {
            return Changes {
                puts: self.export(),
                deletes: vec![],
            };
        };
        let mut out = Changes::default();
        for k in changed {
            match self.by_key.get(k) {
                Some(r) => out.puts.push((k.clone(), r.clone())),
                None => out.deletes.push(k.clone()),
            }
        }
        out
    }
}

/// A relation's contents as of one epoch ([`Storage::deferred_snapshot`]).
pub enum Snapshot {
    Batches(Vec<RecordBatch>),
    Stream(crate::view::stream_log::StreamSnapshot),
    /// A view's last published batch and the deltas since.
    View(Pending),
}

impl Snapshot {
    pub fn load(self) -> Result<Vec<RecordBatch>> {
        match self {
            Snapshot::Batches(b) => Ok(b),
            Snapshot::Stream(s) => s.load(),
            Snapshot::View(p) => Ok(vec![p.load()?]),
        }
    }
}

/// An arrangement's snapshot, loaded now (it is always one batch).
fn one_batch(s: Snapshot) -> Result<RecordBatch> {
    let mut batches = s.load()?;
    match batches.len() {
        1 => Ok(batches.remove(0)),
        _ => Err(EddyError::internal(
            "an arrangement's snapshot is not one batch",
        )),
    }
}

/// How a relation keeps its contents.
pub enum Storage {
    /// Append-only: batches as they arrived, recent ones in memory, older ones in the
    /// state store after a checkpoint.
    Log(StreamLog),
    Multiset(Arrangement),
    Keyed(KeyedArrangement),
}

impl Storage {
    pub fn log(schema: SchemaRef) -> Self {
        Storage::Log(StreamLog::new(schema))
    }

    pub fn apply(&mut self, delta: &ChangeBatch) -> Result<()> {
        match self {
            Storage::Log(l) => l.apply(delta),
            Storage::Multiset(a) => a.apply(delta),
            Storage::Keyed(k) => k.apply(delta),
        }
    }

    /// Undo the last `apply(delta)` (a failed epoch). An append-only log drops the batch
    /// the apply appended; arrangements apply the negated delta.
    pub fn revert(&mut self, delta: &ChangeBatch) -> Result<()> {
        match self {
            Storage::Log(l) => l.revert(delta),
            Storage::Multiset(_) | Storage::Keyed(_) => {
                let negated = ChangeBatch::new(
                    delta.data.clone(),
                    delta.weights.iter().map(|w| w.map(|w| -w)).collect(),
                );
                self.apply(&negated)
            }
        }
    }

    /// Drop rows of an append-only log whose event time (column `time_column`) is before
    /// `cutoff` µs, oldest first.
    pub fn trim_before(&mut self, time_column: usize, cutoff: i64) -> Result<()> {
        match self {
            Storage::Log(l) => l.trim_before(time_column, cutoff),
            _ => Ok(()),
        }
    }

    /// The current contents, with what is cheap to take now taken (a view's encoded
    /// rows, a stream's chunk list and tail) and the rest (a stream's stored chunks) read
    /// by [`Snapshot::load`], which needs no lock.
    pub fn deferred_snapshot(&mut self) -> Result<Snapshot> {
        match self {
            Storage::Log(l) => Ok(Snapshot::Stream(l.deferred_snapshot()?)),
            Storage::Multiset(a) => a.deferred_snapshot(),
            Storage::Keyed(k) => k.deferred_snapshot(),
        }
    }

    /// The current contents, as batches.
    pub fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        match self {
            Storage::Log(l) => l.snapshot(),
            Storage::Multiset(a) => Ok(vec![a.snapshot()?]),
            Storage::Keyed(k) => Ok(vec![k.snapshot()?]),
        }
    }

    pub fn row_count(&self) -> usize {
        match self {
            Storage::Log(l) => l.row_count(),
            Storage::Multiset(a) => a.len(),
            Storage::Keyed(k) => k.len(),
        }
    }

    /// An arrangement's contents as checkpoint entries: rows with their multiplicities, or
    /// a table's rows by key. (A stream checkpoints its own way: [`StreamLog::checkpoint`].)
    pub fn export(&self) -> Result<Entries> {
        match self {
            Storage::Log(_) => Err(EddyError::internal(
                "a stream's rows are checkpointed as chunks, not entries",
            )),
            Storage::Multiset(a) => Ok(a.export()),
            Storage::Keyed(k) => Ok(k.export()),
        }
    }

    /// What changed since the last checkpoint (everything, the first time), as store
    /// writes. (A stream checkpoints its own way: [`StreamLog::checkpoint`].)
    pub fn export_changes(&self) -> Result<Changes> {
        match self {
            Storage::Log(_) => Err(EddyError::internal(
                "a stream's rows are checkpointed as chunks, not entries",
            )),
            Storage::Multiset(a) => Ok(a.export_changes()),
            Storage::Keyed(k) => Ok(k.export_changes()),
        }
    }

    /// The checkpoint holding [`Self::export_changes`] is committed.
    pub fn checkpointed(&mut self) {
        match self {
            Storage::Log(_) => {}
            Storage::Multiset(a) => a.changed = Some(Default::default()),
            Storage::Keyed(k) => k.changed = Some(Default::default()),
        }
    }

    /// Replace an arrangement's contents with a checkpoint's entries.
    pub fn import(&mut self, entries: Entries) -> Result<()> {
        match self {
            Storage::Log(_) => Err(EddyError::internal(
                "a stream's rows are restored as chunks, not entries",
            )),
            Storage::Multiset(a) => a.import(entries),
            Storage::Keyed(k) => {
                k.import(entries);
                Ok(())
            }
        }
    }

    /// Bytes held in memory.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Storage::Log(l) => l.memory_bytes(),
            Storage::Multiset(a) => a.approx_bytes(),
            Storage::Keyed(k) => k.approx_bytes(),
        }
    }
}
