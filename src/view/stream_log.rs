//! The rows of an append-only stream: a tail of recent batches in memory and, once a
//! checkpoint has written them, chunks in the state store (Arrow IPC, one key per chunk of
//! up to [`CHUNK_ROWS`] rows). History does not stay in memory: only what arrived since the
//! last checkpoint and one small entry per stored chunk do.
//!
//! Invariant: the stream's contents are the stored chunks (oldest first) followed by the
//! tail, in arrival order. Retention drops whole chunks whose newest event time is before
//! the cutoff; their keys are deleted by the next checkpoint, atomically with the manifest
//! that no longer lists them.
//!
//! A checkpoint is written while writes go on: [`StreamLog::checkpoint`] stages the tail as
//! new chunks and marks those tail batches as exported; rows keep arriving behind them.
//! Until the store has committed (then [`StreamLog::checkpointed`] moves the exported
//! batches into the chunk list) or failed ([`StreamLog::checkpoint_failed`]), the exported
//! batches are neither compacted nor trimmed, so they stay exactly what was written.

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;

use crate::core::batch::{take_columns, ChangeBatch};
use crate::error::{EddyError, Result};
use crate::state::encoding::{Reader, Writer};
use crate::state::store::{StateStore, WriteBatch};
use crate::state::LogEntry;

/// Rows per stored chunk (and per compacted tail batch is at most this).
pub const CHUNK_ROWS: usize = 65_536;
/// Rows per batch when the in-memory tail is compacted for scans.
const TAIL_BATCH_ROWS: usize = 8_192;

/// A chunk of the stream in the state store.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub seq: u64,
    pub rows: usize,
    /// Newest event time in the chunk (µs), if the stream has an event-time column.
    pub max_time: Option<i64>,
}

pub struct StreamLog {
    schema: SchemaRef,
    tail: Vec<RecordBatch>,
    tail_rows: usize,
    /// Bytes the tail holds, kept as it changes (metrics and `pg_relation_size` ask for
    /// it per statement, and the tail can be thousands of one-row batches).
    tail_bytes: usize,
    chunks: VecDeque<Chunk>,
    chunk_rows: usize,
    /// Chunks dropped by retention, to delete at the next checkpoint.
    trimmed: Vec<u64>,
    /// While a checkpoint is being written: how many leading tail batches it holds and
    /// which trimmed chunks it deletes.
    exporting: Option<(usize, Vec<u64>)>,
    next_seq: u64,
    /// Where the chunks are: the store and this stream's table in it.
    store: Option<(Arc<dyn StateStore>, u64)>,
    /// Held by every [`StreamSnapshot`] not yet loaded: while any is, a checkpoint does
    /// not delete trimmed chunks (a reader may still list them).
    readers: Arc<()>,
}

impl StreamLog {
    pub fn new(schema: SchemaRef) -> Self {
        StreamLog {
            schema,
            tail: Vec::new(),
            tail_rows: 0,
            tail_bytes: 0,
            chunks: VecDeque::new(),
            chunk_rows: 0,
            trimmed: Vec::new(),
            exporting: None,
            next_seq: 0,
            store: None,
            readers: Arc::new(()),
        }
    }

    pub fn apply(&mut self, delta: &ChangeBatch) -> Result<()> {
        if !delta.is_insert_only() {
            return Err(EddyError::internal(
                "retraction reached an append-only stream",
            ));
        }
        if delta.is_empty() {
            return Ok(());
        }
        // Weights > 1 mean copies of the row.
        let batch = if delta.weights.values().iter().all(|w| *w == 1) {
            delta.data.clone()
        } else {
            let idx: Vec<u32> = delta
                .weights
                .values()
                .iter()
                .enumerate()
                .flat_map(|(i, w)| std::iter::repeat_n(i as u32, *w as usize))
                .collect();
            let cols = take_columns(delta.data.columns(), &UInt32Array::from(idx))?;
            RecordBatch::try_new(delta.data.schema(), cols)?
        };
        self.tail_rows += batch.num_rows();
        self.tail_bytes += batch.get_array_memory_size();
        self.tail.push(batch);
        Ok(())
    }

    /// Undo the last `apply(delta)` (a failed epoch): drop the batch it appended. Epochs
    /// never span a checkpoint's export, so that batch is in the tail, after the exported
    /// batches.
    pub fn revert(&mut self, delta: &ChangeBatch) -> Result<()> {
        if delta.is_empty() {
            return Ok(());
        }
        let added: i64 = delta.weights.values().iter().sum();
        match self.tail.last() {
            Some(b) if b.num_rows() as i64 == added => {
                if let Some(b) = self.tail.pop() {
                    self.tail_bytes -= b.get_array_memory_size();
                }
                self.tail_rows -= added as usize;
                Ok(())
            }
            _ => Err(EddyError::internal(
                "cannot revert: the stream's last batch is not the failed one",
            )),
        }
    }

    /// Drop rows whose event time (column `time_column`) is before `cutoff` µs, oldest
    /// chunks and batches first. Rows of later batches are kept even if old: the log is in
    /// arrival order.
    pub fn trim_before(&mut self, time_column: usize, cutoff: i64) -> Result<()> {
        while let Some(first) = self.chunks.front() {
            if first.max_time.map(|t| t < cutoff).unwrap_or(false) {
                self.chunk_rows -= first.rows;
                self.trimmed.push(first.seq);
                self.chunks.pop_front();
            } else {
                return Ok(());
            }
        }
        if self.exporting.is_some() {
            // The tail's first batches are being written as they are; later epochs trim.
            return Ok(());
        }
        while let Some(first) = self.tail.first() {
            let times = crate::core::time::event_times(first.column(time_column))?;
            let newest = times.iter().flatten().max().copied();
            if newest.map(|t| t < cutoff).unwrap_or(true) {
                self.tail_rows -= first.num_rows();
                self.tail_bytes -= first.get_array_memory_size();
                self.tail.remove(0);
            } else {
                break;
            }
        }
        Ok(())
    }

    /// The whole stream, stored chunks first (read from the store), then the tail.
    pub fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        self.deferred_snapshot()?.load()
    }

    /// The whole stream as of now, with its stored chunks still to read: cheap to take
    /// under the database lock, and [`StreamSnapshot::load`] reads the chunks without it.
    pub fn deferred_snapshot(&mut self) -> Result<StreamSnapshot> {
        self.compact_tail()?;
        Ok(StreamSnapshot {
            schema: self.schema.clone(),
            store: self.store.clone(),
            chunks: self.chunks.iter().map(|c| c.seq).collect(),
            tail: self.tail.clone(),
            _pin: self.readers.clone(),
        })
    }

    /// Many small INSERT batches become chunks of up to 8192 rows, so scans stay cheap and
    /// retention can still drop old ones whole.
    fn compact_tail(&mut self) -> Result<()> {
        if self.tail.len() <= 64 || self.exporting.is_some() {
            return Ok(());
        }
        self.tail = regroup(
            &self.schema,
            std::mem::take(&mut self.tail),
            TAIL_BATCH_ROWS,
        )?;
        self.tail_bytes = self.tail.iter().map(|b| b.get_array_memory_size()).sum();
        Ok(())
    }

    pub fn row_count(&self) -> usize {
        self.chunk_rows + self.tail_rows
    }

    /// Bytes held in memory (stored chunks are on disk, not counted).
    pub fn memory_bytes(&self) -> usize {
        self.tail_bytes
    }

    /// Stage a checkpoint into `batch`: the tail as new chunks of table `table`, and the
    /// deletion of trimmed chunks. Returns what the manifest records for this stream; the
    /// rows move to the chunk list only in [`Self::checkpointed`], after the commit, and
    /// the stream keeps taking rows meanwhile.
    pub fn checkpoint(
        &mut self,
        table: u64,
        time_column: Option<usize>,
        batch: &mut WriteBatch,
    ) -> Result<(StreamCheckpoint, Vec<PendingChunk>)> {
        let mut chunks: Vec<Chunk> = self.chunks.iter().cloned().collect();
        let mut pending = Vec::new();
        let mut seq = self.next_seq;
        // Group the tail into chunks by row count only; concatenating and encoding them
        // is left to `PendingChunk::write`, after the database lock is released.
        let mut group: Vec<RecordBatch> = Vec::new();
        let mut group_rows = 0;
        let mut max_time: Option<i64> = None;
        let mut groups = Vec::new();
        for b in &self.tail {
            if group_rows + b.num_rows() > CHUNK_ROWS && !group.is_empty() {
                groups.push((std::mem::take(&mut group), group_rows, max_time.take()));
                group_rows = 0;
            }
            if let Some(c) = time_column {
                let newest = crate::core::time::event_times(b.column(c))?
                    .into_iter()
                    .flatten()
                    .max();
                max_time = max_time.max(newest);
            }
            group_rows += b.num_rows();
            group.push(b.clone());
        }
        if !group.is_empty() {
            groups.push((group, group_rows, max_time));
        }
        for (batches, rows, max_time) in groups {
            chunks.push(Chunk {
                seq,
                rows,
                max_time,
            });
            pending.push(PendingChunk {
                table,
                seq,
                schema: self.schema.clone(),
                batches,
            });
            seq += 1;
        }
        // A reader that took its chunk list before a trim may still read the trimmed
        // chunks: their deletion waits for a checkpoint with no such reader.
        let deleted = if Arc::strong_count(&self.readers) == 1 {
            self.trimmed.clone()
        } else {
            Vec::new()
        };
        for t in &deleted {
            batch.delete(table, t.to_be_bytes().to_vec());
        }
        self.exporting = Some((self.tail.len(), deleted));
        Ok((
            StreamCheckpoint {
                table,
                chunks,
                next_seq: seq,
            },
            pending,
        ))
    }

    /// The checkpoint staged by [`Self::checkpoint`] is committed: the tail batches it
    /// exported now live in the store as its new chunks (rows that arrived since stay in
    /// the tail; chunks trimmed since stay trimmed).
    pub fn checkpointed(&mut self, store: Arc<dyn StateStore>, done: &StreamCheckpoint) {
        let (exported, deleted) = self.exporting.take().unwrap_or_default();
        let new_chunks = done.chunks.iter().filter(|c| c.seq >= self.next_seq);
        self.chunks.extend(new_chunks.cloned());
        self.chunk_rows = self.chunks.iter().map(|c| c.rows).sum();
        self.tail.drain(..exported.min(self.tail.len()));
        self.tail_rows = self.tail.iter().map(|b| b.num_rows()).sum();
        self.tail_bytes = self.tail.iter().map(|b| b.get_array_memory_size()).sum();
        self.trimmed.retain(|t| !deleted.contains(t));
        self.next_seq = done.next_seq;
        self.store = Some((store, done.table));
    }

    /// The checkpoint staged by [`Self::checkpoint`] was not committed: the tail stays in
    /// memory and the next checkpoint writes it (and deletes the trimmed chunks) again.
    pub fn checkpoint_failed(&mut self) {
        self.exporting = None;
    }

    /// Load a committed checkpoint's chunk list into a fresh stream (at restart).
    pub fn restore(&mut self, store: Arc<dyn StateStore>, done: &StreamCheckpoint) {
        self.chunks = done.chunks.iter().cloned().collect();
        self.chunk_rows = self.chunks.iter().map(|c| c.rows).sum();
        self.tail.clear();
        self.tail_rows = 0;
        self.tail_bytes = 0;
        self.trimmed.clear();
        self.exporting = None;
        self.next_seq = done.next_seq;
        self.store = Some((store, done.table));
    }
}

/// A chunk a checkpoint writes: the tail batches it holds, concatenated and encoded by
/// [`PendingChunk::write`] (no lock needed).
pub struct PendingChunk {
    table: u64,
    seq: u64,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl PendingChunk {
    pub fn write(self, batch: &mut WriteBatch) -> Result<()> {
        let data = concat_batches(&self.schema, self.batches.iter())?;
        let entry = LogEntry::Changes {
            relation: String::new(),
            batch: ChangeBatch::inserts(data),
        };
        batch.put(self.table, self.seq.to_be_bytes().to_vec(), entry.encode()?);
        Ok(())
    }
}

/// A stream's contents as of one epoch: the stored chunks to read, then the tail.
pub struct StreamSnapshot {
    schema: SchemaRef,
    store: Option<(Arc<dyn StateStore>, u64)>,
    chunks: Vec<u64>,
    tail: Vec<RecordBatch>,
    _pin: Arc<()>,
}

impl StreamSnapshot {
    pub fn load(self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::with_capacity(self.chunks.len() + self.tail.len());
        if let Some((store, table)) = &self.store {
            for seq in &self.chunks {
                let bytes = store.get(*table, &seq.to_be_bytes())?.ok_or_else(|| {
                    EddyError::Storage(format!(
                        "stream chunk {seq} is missing from the state store (was the stream dropped during the query?)"
                    ))
                })?;
                out.push(decode_chunk(&self.schema, &bytes)?);
            }
        }
        out.extend(self.tail);
        Ok(out)
    }
}

fn decode_chunk(schema: &SchemaRef, bytes: &[u8]) -> Result<RecordBatch> {
    let LogEntry::Changes { batch, .. } = LogEntry::decode(bytes)? else {
        return Err(EddyError::Storage(
            "a stream chunk in the state store is not a batch".into(),
        ));
    };
    Ok(RecordBatch::try_new(
        schema.clone(),
        batch.data.columns().to_vec(),
    )?)
}

/// What a checkpoint records of a stream: its table and chunks.
#[derive(Debug, Clone)]
pub struct StreamCheckpoint {
    pub table: u64,
    pub chunks: Vec<Chunk>,
    pub next_seq: u64,
}

impl StreamCheckpoint {
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.table)
            .u64(self.next_seq)
            .u64(self.chunks.len() as u64);
        for c in &self.chunks {
            w.u64(c.seq).u64(c.rows as u64).opt_i64(c.max_time);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let table = r.u64()?;
        let next_seq = r.u64()?;
        let n = r.u64()?;
        let mut chunks = Vec::new();
        for _ in 0..n {
            chunks.push(Chunk {
                seq: r.u64()?,
                rows: r.u64()? as usize,
                max_time: r.opt_i64()?,
            });
        }
        Ok(StreamCheckpoint {
            table,
            chunks,
            next_seq,
        })
    }
}

/// Concatenate `batches` (in order) into batches of at most `rows` rows.
fn regroup(schema: &SchemaRef, batches: Vec<RecordBatch>, rows: usize) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut chunk: Vec<RecordBatch> = Vec::new();
    let mut chunk_rows = 0;
    for b in batches {
        if chunk_rows + b.num_rows() > rows && !chunk.is_empty() {
            out.push(concat_batches(schema, chunk.iter())?);
            chunk.clear();
            chunk_rows = 0;
        }
        chunk_rows += b.num_rows();
        chunk.push(b);
    }
    if !chunk.is_empty() {
        out.push(concat_batches(schema, chunk.iter())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::batch::tests_support::{build, render_rows};
    use crate::state::store::MemoryStateStore;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::scalar::ScalarValue;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new(
                "ts",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
                true,
            ),
        ]))
    }

    fn rows(from: i64, to: i64) -> ChangeBatch {
        build(
            schema(),
            (from..to)
                .map(|i| {
                    (
                        1,
                        vec![
                            ScalarValue::Int64(Some(i)),
                            ScalarValue::TimestampMicrosecond(Some(i * 1_000_000), None),
                        ],
                    )
                })
                .collect(),
        )
    }

    /// Stage a checkpoint of `log` to table 7 (event time in column 1) into `batch`.
    fn checkpoint(log: &mut StreamLog, batch: &mut WriteBatch) -> StreamCheckpoint {
        let (done, pending) = log.checkpoint(7, Some(1), batch).unwrap();
        for p in pending {
            p.write(batch).unwrap();
        }
        done
    }

    fn contents(log: &mut StreamLog) -> Vec<String> {
        let mut rows: Vec<String> = log
            .snapshot()
            .unwrap()
            .iter()
            .flat_map(render_rows)
            .collect();
        rows.sort();
        rows
    }

    /// After a checkpoint the rows come from the store, the tail is empty, and a restored
    /// log (same chunks, same store) reads the same; retention then drops stored chunks
    /// and the next checkpoint deletes their keys.
    #[test]
    fn checkpointed_rows_move_to_the_store_and_retention_deletes_them() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let mut log = StreamLog::new(schema());
        log.apply(&rows(0, 10)).unwrap();
        log.apply(&rows(10, 20)).unwrap();
        let before = contents(&mut log);
        let mut batch = WriteBatch::default();
        let done = checkpoint(&mut log, &mut batch);
        store.commit(&batch).unwrap();
        log.checkpointed(store.clone(), &done);
        assert_eq!(log.memory_bytes(), 0, "nothing left in memory");
        assert_eq!(log.row_count(), 20);
        assert_eq!(contents(&mut log), before);
        assert_eq!(done.chunks.len(), 1);
        assert_eq!(done.chunks[0].max_time, Some(19_000_000));

        let mut restored = StreamLog::new(schema());
        restored.restore(store.clone(), &done);
        restored.apply(&rows(20, 25)).unwrap();
        assert_eq!(restored.row_count(), 25);
        let mut expected = before.clone();
        expected.extend(render_rows(&rows(20, 25).data));
        expected.sort();
        assert_eq!(contents(&mut restored), expected);

        // The stored chunk's newest row is at 19 s: a cutoff after it drops the chunk.
        restored.trim_before(1, 20_000_000).unwrap();
        assert_eq!(restored.row_count(), 5);
        let mut batch = WriteBatch::default();
        let done = checkpoint(&mut restored, &mut batch);
        store.commit(&batch).unwrap();
        restored.checkpointed(store.clone(), &done);
        assert_eq!(
            store.scan(7).unwrap().len(),
            1,
            "the trimmed chunk's key is gone"
        );
        assert_eq!(contents(&mut restored).len(), 5);
    }

    /// Rows and trims that come while a checkpoint is being written stay in the stream:
    /// the commit moves only the exported batches to the store, and a failed checkpoint
    /// leaves everything in memory for the next one.
    #[test]
    fn writes_during_a_checkpoint_stay_and_a_failed_one_loses_nothing() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let mut log = StreamLog::new(schema());
        for i in 0..100 {
            log.apply(&rows(i * 10, i * 10 + 10)).unwrap();
        }
        let mut batch = WriteBatch::default();
        checkpoint(&mut log, &mut batch);
        // Meanwhile: more rows, a scan (which must not compact the exported batches) and
        // a retention trim (which must not drop them).
        log.apply(&rows(1000, 1010)).unwrap();
        let during = contents(&mut log);
        log.trim_before(1, 5_000_000_000).unwrap();
        assert_eq!(log.row_count(), 1010);
        log.checkpoint_failed();
        assert_eq!(
            contents(&mut log),
            during,
            "a failed checkpoint keeps every row"
        );

        let mut batch = WriteBatch::default();
        let done = checkpoint(&mut log, &mut batch);
        log.apply(&rows(1010, 1020)).unwrap();
        let expected = contents(&mut log);
        store.commit(&batch).unwrap();
        log.checkpointed(store.clone(), &done);
        assert_eq!(log.row_count(), 1020);
        assert_eq!(contents(&mut log), expected);
        assert_eq!(
            (log.tail.len(), log.tail_rows),
            (1, 10),
            "only the rows that came during the checkpoint are in memory"
        );
        assert_eq!(log.memory_bytes(), log.tail[0].get_array_memory_size());

        let mut restored = StreamLog::new(schema());
        restored.restore(store.clone(), &done);
        assert_eq!(
            restored.row_count(),
            1010,
            "the store holds what was exported"
        );
    }

    /// A snapshot taken before retention trims a stored chunk still reads it after a
    /// checkpoint: the chunk's deletion waits until no such snapshot is held.
    #[test]
    fn a_held_snapshot_keeps_trimmed_chunks_readable() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
        let mut log = StreamLog::new(schema());
        log.apply(&rows(0, 10)).unwrap();
        let mut batch = WriteBatch::default();
        let done = checkpoint(&mut log, &mut batch);
        store.commit(&batch).unwrap();
        log.checkpointed(store.clone(), &done);
        log.apply(&rows(10, 12)).unwrap();

        let held = log.deferred_snapshot().unwrap();
        log.trim_before(1, 10_000_000).unwrap();
        assert_eq!(log.row_count(), 2);
        let mut batch = WriteBatch::default();
        let done = checkpoint(&mut log, &mut batch);
        store.commit(&batch).unwrap();
        log.checkpointed(store.clone(), &done);
        let rows_read: usize = held.load().unwrap().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows_read, 12, "the held snapshot reads the trimmed chunk");
        assert_eq!(store.scan(7).unwrap().len(), 2, "its deletion waited");

        log.apply(&rows(12, 13)).unwrap();
        let mut batch = WriteBatch::default();
        let done = checkpoint(&mut log, &mut batch);
        store.commit(&batch).unwrap();
        log.checkpointed(store.clone(), &done);
        assert_eq!(
            store.scan(7).unwrap().len(),
            2,
            "deleted once nobody held it"
        );
        assert_eq!(contents(&mut log).len(), 3);
    }
}
