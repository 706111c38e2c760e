//! Checkpoints: every relation's contents and every dataflow's state written to the state
//! store, so a restart loads them and replays only the log written since — restart time
//! follows the size of the state, not the length of history.
//!
//! A checkpoint (one at a time):
//! 1. under the writer and the database lock (no epoch is under way), appends a
//!    `Checkpoint { id }` marker to the log (fsynced), seals the log after it (later
//!    entries go to a new segment), and copies out what changed since the last checkpoint:
//!    the entries of each view's and table's arrangement and of each dataflow's state
//!    tables that committed epochs wrote (puts and deletes; everything the first time),
//!    each stream's rows that arrived since (as new chunks), and the manifest — the catalog
//!    as the DDL that built it, each stream's chunk list, each relation's event-time
//!    maximum, each dataflow's epoch, watermark and late counts, Kafka offsets and
//!    generator counts; change tracking restarts there;
//! 2. with the locks released (writes and reads go on), writes all of it in ONE atomic
//!    store commit;
//! 3. drops the sealed log segments, moves the written stream rows out of memory, then
//!    drops the tables of relations dropped since the previous checkpoint.
//!
//! If step 2 fails, its writes are carried into the next checkpoint's commit (before that
//! one's own, so later values win) and the streams keep their rows in memory: change
//! tracking restarted at step 1, so without the carry the next checkpoint would miss them.
//!
//! Each relation has stable store tables numbered from its id (ids are never reused), so
//! a checkpoint costs what changed, not the size of the state.
//!
//! Restart: if the store has a manifest, replay its DDL (views backfill from empty inputs,
//! which is cheap), load each relation's and dataflow's state, then replay the log entries
//! after the manifest's marker (all of them if the marker is gone: the sealed segments were
//! dropped).
//! A crash anywhere leaves either the old manifest with the whole log, or the new manifest
//! with a log whose entries before its marker are skipped: nothing is applied twice. A
//! checkpoint that fails or dies between steps 1 and 2 leaves its marker behind and the
//! next checkpoint reuses its id, so the log can hold two markers with one id: the
//! manifest's is the last (tests/crash.rs `checkpoint_killed_at_its_edges_...`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Database, Inner};
use crate::error::{EddyError, Result};
use crate::state::encoding::{Reader, Writer};
use crate::state::store::{StateStore, WriteBatch};
use crate::state::LogEntry;

const MANIFEST_TABLE: u64 = 0;
const MANIFEST_KEY: &[u8] = b"manifest";
const VERSION: u8 = 3;
/// A stream's chunks live in a table of their own across checkpoints.
const STREAM_TABLES: u64 = 1 << 63;
/// Table numbers: relation id << 16 | slot (0: the arrangement, 1 + node * 32 + table: a
/// state table); a stream's chunks: STREAM_TABLES | relation id.
const TABLES_PER_NODE: usize = 32;

fn table_base(relation_id: u64) -> u64 {
    relation_id << 16
}

/// The relation a store table belongs to (None: the manifest).
pub(super) fn relation_of_table(table: u64) -> Option<u64> {
    match table {
        MANIFEST_TABLE => None,
        t if t & STREAM_TABLES != 0 => Some(t & !STREAM_TABLES),
        t => Some(t >> 16),
    }
}

/// The relation and dataflow node a state table belongs to (None: not an operator's).
pub(super) fn node_of_table(table: u64) -> Option<(u64, usize)> {
    let slot = (table & 0xffff) as usize;
    if table & STREAM_TABLES != 0 || slot == 0 {
        return None;
    }
    Some((table >> 16, (slot - 1) / TABLES_PER_NODE))
}

/// What the log holds besides data, as of its last entry: what a checkpoint must carry
/// forward once the log is truncated.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogSummary {
    /// Every DDL statement logged, in order (drops included).
    pub ddl: Vec<String>,
    pub kafka_offsets: BTreeMap<String, BTreeMap<i32, i64>>,
    pub generated: BTreeMap<String, u64>,
    /// Entries logged since the last checkpoint (a checkpoint with nothing new is skipped).
    pub entries_since_checkpoint: u64,
    /// Approximate bytes of the changes logged since the last checkpoint (not persisted).
    pub bytes_since_checkpoint: u64,
}

impl LogSummary {
    pub fn note(&mut self, entries: &[LogEntry]) {
        for e in entries {
            match e {
                LogEntry::Ddl(sql) => self.ddl.push(sql.clone()),
                LogEntry::KafkaOffsets { relation, offsets } => {
                    let o = self.kafka_offsets.entry(relation.clone()).or_default();
                    o.extend(offsets.iter().copied());
                }
                LogEntry::Generated { source, events } => {
                    self.generated.insert(source.clone(), *events);
                }
                LogEntry::Changes { batch, .. } => {
                    self.bytes_since_checkpoint += batch.data.get_array_memory_size() as u64;
                }
                LogEntry::Checkpoint { .. } => {}
            }
            self.entries_since_checkpoint += 1;
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.u64(self.ddl.len() as u64);
        for d in &self.ddl {
            w.str(d);
        }
        w.u64(self.kafka_offsets.len() as u64);
        for (name, offsets) in &self.kafka_offsets {
            w.str(name).u64(offsets.len() as u64);
            for (p, o) in offsets {
                w.i64(*p as i64).i64(*o);
            }
        }
        w.u64(self.generated.len() as u64);
        for (name, n) in &self.generated {
            w.str(name).u64(*n);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut s = LogSummary::default();
        for _ in 0..r.u64()? {
            s.ddl.push(r.string()?);
        }
        for _ in 0..r.u64()? {
            let name = r.string()?;
            let mut offsets = BTreeMap::new();
            for _ in 0..r.u64()? {
                let p = i32::try_from(r.i64()?)
                    .map_err(|_| EddyError::Storage("checkpoint partition out of range".into()))?;
                offsets.insert(p, r.i64()?);
            }
            s.kafka_offsets.insert(name, offsets);
        }
        for _ in 0..r.u64()? {
            let name = r.string()?;
            s.generated.insert(name, r.u64()?);
        }
        Ok(s)
    }
}

/// The last checkpoint written or loaded, and how it went.
#[derive(Debug, Clone, Default)]
pub struct CheckpointInfo {
    pub id: u64,
    /// Tables that checkpoint lists (dropped once a later one no longer does).
    pub tables: Vec<u64>,
    pub at: Option<std::time::SystemTime>,
    pub duration: Duration,
    pub entries: u64,
    pub bytes: u64,
}

impl Database {
    /// Append to the log and note what the entries mean for the next checkpoint.
    pub(super) fn log(&self, entries: &[LogEntry]) -> Result<()> {
        let started = crate::metrics::Stopwatch::start();
        self.store.append(entries)?;
        if let Some(took) = started.elapsed() {
            self.metrics.log_written(took);
        }
        let mut summary = self.summary.lock().unwrap_or_else(|p| p.into_inner());
        summary.note(entries);
        if self.checkpoint_log_bytes > 0
            && summary.bytes_since_checkpoint >= self.checkpoint_log_bytes
        {
            self.checkpoint_soon.notify_one();
        }
        Ok(())
    }

    /// Write a checkpoint now (`CHECKPOINT`, or the periodic task). Returns None when
    /// there is no state store, or nothing was logged since the last checkpoint.
    ///
    /// Writers wait only while the checkpoint is staged (the marker appended and the log
    /// sealed after it, and what changed copied out); the store writes it while writes go
    /// on, and the sealed log is dropped once it is committed.
    pub async fn checkpoint(&self) -> Result<Option<CheckpointInfo>> {
        let started = Instant::now();
        let result = self.checkpoint_once().await;
        if let Err(e) = &result {
            // Counted (`eddy_checkpoint_failures_total`) and listed in `eddy_checkpoints`
            // under the id the next attempt will reuse.
            let id = self.last_checkpoint().id + 1;
            tracing::warn!(error = %e, id, "checkpoint failed");
            self.metrics
                .checkpoint_failed(crate::metrics::CheckpointRecord {
                    id,
                    kind: "failed",
                    at: std::time::SystemTime::now(),
                    duration: started.elapsed(),
                    entries: 0,
                    store_bytes: self.state.as_ref().map_or(0, |s| s.size_on_disk()),
                });
        }
        result
    }

    async fn checkpoint_once(&self) -> Result<Option<CheckpointInfo>> {
        let Some(state) = self.state.clone() else {
            return Ok(None);
        };
        let _one_at_a_time = self.checkpointing.lock().await;
        let previous = self
            .checkpoint_info
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let started = Instant::now();
        let id = previous.id + 1;
        let written = {
            let _w = self.writer.lock().await;
            let mut inner = self.lock();
            let summary = self
                .summary
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if summary.entries_since_checkpoint == 0 && previous.id > 0 {
                return Ok(None);
            }
            self.store.append(&[LogEntry::Checkpoint { id }])?;
            self.store.seal()?;
            let written = match write_checkpoint(&mut inner, id, &summary) {
                Ok(w) => w,
                Err(e) => {
                    export_failed(&mut inner);
                    return Err(e);
                }
            };
            // Later epochs' changes go to the next checkpoint. (If this one fails, its
            // writes are carried into the next: see `checkpoint_carry`.)
            for idx in &written.relations {
                let rel = &mut inner.relations[*idx];
                rel.storage.checkpointed();
                if let Some(flow) = rel.dataflow.as_mut() {
                    flow.checkpointed();
                }
            }
            {
                let mut summary = self.summary.lock().unwrap_or_else(|p| p.into_inner());
                summary.entries_since_checkpoint = 0;
                summary.bytes_since_checkpoint = 0;
            }
            written
        };
        let mut batch = self
            .checkpoint_carry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        batch.extend(written.batch);
        let pending = written.pending;
        let (batch, committed) = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                let r = pending
                    .into_iter()
                    .try_for_each(|p| p.write(&mut batch))
                    .and_then(|()| super::disk_usage::size_delta(&*state, &batch))
                    .and_then(|delta| state.commit(&batch).map(|()| delta));
                (batch, r)
            })
            .await
            .map_err(|e| EddyError::internal(format!("checkpoint writer: {e}")))?
        };
        let entries = batch.len() as u64;
        let committed = committed.and_then(|delta| {
            self.disk_usage.apply(&delta);
            self.store.drop_sealed()
        });
        if let Err(e) = committed {
            // Nothing of this checkpoint is durable (the sled batch is atomic) or it is
            // and the sealed log remains (replay skips to the marker): either way the next
            // checkpoint must write all of this one's changes again.
            let mut inner = self.lock();
            export_failed(&mut inner);
            // Streams write their tails again (same chunk numbers); the rest is carried.
            let mut failed = batch;
            failed.retain_tables(|t| t & STREAM_TABLES == 0);
            failed.compact();
            *self
                .checkpoint_carry
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(failed);
            self.summary
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entries_since_checkpoint += 1;
            return Err(e);
        }
        {
            let mut inner = self.lock();
            for (rel_id, done) in &written.streams {
                let Some(rel) = inner.relations.iter_mut().find(|r| r.id == *rel_id) else {
                    continue; // dropped meanwhile
                };
                if let crate::view::Storage::Log(l) = &mut rel.storage {
                    l.checkpointed(state.clone(), done);
                }
            }
        }
        let gone = previous
            .tables
            .iter()
            .filter(|t| !written.tables.contains(t));
        for t in gone {
            match state.drop_table(*t) {
                Ok(()) => self.disk_usage.dropped(*t),
                Err(e) => {
                    tracing::warn!(error = %e, table = t, "could not drop an old checkpoint table")
                }
            }
        }
        let info = CheckpointInfo {
            id,
            tables: written.tables,
            at: Some(std::time::SystemTime::now()),
            duration: started.elapsed(),
            entries,
            bytes: state.size_on_disk(),
        };
        *self
            .checkpoint_info
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = info.clone();
        self.metrics
            .checkpoint_finished(crate::metrics::CheckpointRecord {
                id,
                kind: "written",
                at: info.at.unwrap_or_else(std::time::SystemTime::now),
                duration: info.duration,
                entries,
                store_bytes: info.bytes,
            });
        tracing::info!(
            id,
            entries,
            ms = info.duration.as_millis() as u64,
            "checkpoint written"
        );
        Ok(Some(info))
    }

    /// Load the last checkpoint, if the store has one. Returns its id (the log marker to
    /// replay after).
    pub(super) fn restore(&self, state: &Arc<dyn StateStore>) -> Result<Option<u64>> {
        let Some(bytes) = state.get(MANIFEST_TABLE, MANIFEST_KEY)? else {
            return Ok(None);
        };
        let mut r = Reader::new(&bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(EddyError::Storage(format!(
                "checkpoint format {version} is not this version's ({VERSION})"
            )));
        }
        let id = r.u64()?;
        let summary = LogSummary::decode(&mut r)?;
        for sql in &summary.ddl {
            let stmt = crate::sql::parse_statement(sql)?;
            self.apply_ddl(&stmt, sql, false)?;
        }
        let mut tables = Vec::new();
        {
            let mut inner = self.lock();
            for _ in 0..r.u64()? {
                let name = r.string()?;
                let base = r.u64()?;
                let rel = inner.get_mut(&name).ok_or_else(|| {
                    EddyError::Storage(format!(
                        "checkpoint holds relation {name}, which its DDL does not create"
                    ))
                })?;
                if r.bool()? {
                    let done = crate::view::stream_log::StreamCheckpoint::decode(&mut r)?;
                    let crate::view::Storage::Log(l) = &mut rel.storage else {
                        return Err(EddyError::Storage(format!(
                            "checkpoint holds stream chunks for {name}, which is not a stream"
                        )));
                    };
                    l.restore(state.clone(), &done);
                    tables.push(done.table);
                } else {
                    let entries = state.scan(base)?;
                    self.disk_usage.loaded(base, &entries);
                    rel.storage.import(entries)?;
                    tables.push(base);
                }
                let max_seen = r.opt_i64()?;
                if let Some(et) = rel.event_time.as_mut() {
                    et.max_seen = max_seen;
                }
                rel.rejected_rows = r.u64()?;
                if r.bool()? {
                    let epoch = r.u64()?;
                    let watermark = r.opt_i64()?;
                    let nodes = r.u64()? as usize;
                    let mut late_rows = Vec::with_capacity(nodes);
                    let mut node_tables = Vec::with_capacity(nodes);
                    for n in 0..nodes {
                        late_rows.push(r.u64()?);
                        let count = r.u64()? as usize;
                        let mut entries = Vec::with_capacity(count);
                        for t in 0..count {
                            let table = base | (1 + n * TABLES_PER_NODE + t) as u64;
                            let e = state.scan(table)?;
                            self.disk_usage.loaded(table, &e);
                            entries.push(e);
                            tables.push(table);
                        }
                        node_tables.push(entries);
                    }
                    let flow = rel.dataflow.as_mut().ok_or_else(|| {
                        EddyError::Storage(format!(
                            "checkpoint holds a dataflow for {name}, which has none"
                        ))
                    })?;
                    flow.import_state(crate::dataflow::graph::FlowState {
                        epoch,
                        watermark,
                        late_rows,
                        tables: node_tables,
                    })?;
                }
            }
            for (source, events) in &summary.generated {
                if let Some(s) = inner.sources.iter_mut().find(|s| &s.name == source) {
                    s.events = *events;
                }
            }
        }
        for (name, offsets) in &summary.kafka_offsets {
            let offsets: Vec<(i32, i64)> = offsets.iter().map(|(p, o)| (*p, *o)).collect();
            self.kafka.record_offsets(name, &offsets);
        }
        let mut summary = summary;
        summary.entries_since_checkpoint = 0;
        *self.summary.lock().unwrap_or_else(|p| p.into_inner()) = summary;
        *self
            .checkpoint_info
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = CheckpointInfo {
            id,
            tables,
            ..Default::default()
        };
        self.metrics
            .checkpoint_finished(crate::metrics::CheckpointRecord {
                id,
                kind: "loaded",
                at: std::time::SystemTime::now(),
                duration: Duration::ZERO,
                entries: 0,
                store_bytes: state.size_on_disk(),
            });
        tracing::info!(id, "loaded checkpoint");
        Ok(Some(id))
    }

    /// Checkpoint every `interval` while the database lives.
    pub(super) fn start_checkpoints(&self, interval: Duration) {
        let Some(me) = self.self_ref.get().cloned() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let soon = self.checkpoint_soon.clone();
        handle.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = soon.notified() => {}
                }
                let Some(db) = me.upgrade() else { break };
                if let Err(e) = db.checkpoint().await {
                    tracing::warn!(error = %e, "checkpoint failed; the log keeps everything");
                    // Not again before the interval, however fast the log grows.
                    drop(db);
                    tokio::time::sleep(interval).await;
                }
            }
        });
    }

    pub fn last_checkpoint(&self) -> CheckpointInfo {
        self.checkpoint_info
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What a checkpoint writes: the store batch, the tables of this checkpoint, and per
/// stream (by relation index) what its log becomes once the batch is committed.
struct Written {
    batch: WriteBatch,
    /// New stream chunks, encoded into the batch after the locks are released.
    pending: Vec<crate::view::stream_log::PendingChunk>,
    tables: Vec<u64>,
    /// By relation id: relations may be created or dropped while the batch is written.
    streams: Vec<(u64, crate::view::stream_log::StreamCheckpoint)>,
    /// Relations (by index) whose arrangement and dataflow changes were written.
    relations: Vec<usize>,
}

/// The store writes of checkpoint `id`: every (non-transient) relation's storage and
/// dataflow state, then the manifest. Nothing in memory changes yet.
fn write_checkpoint(inner: &mut Inner, id: u64, summary: &LogSummary) -> Result<Written> {
    let mut batch = WriteBatch::default();
    let mut pending = Vec::new();
    let mut streams = Vec::new();
    let mut written = Vec::new();
    let mut tables = Vec::new();
    let mut m = Writer::new();
    m.u8(VERSION).u64(id);
    summary.encode(&mut m);
    let relations: Vec<usize> = inner
        .relations
        .iter()
        .enumerate()
        .filter(|(_, r)| !super::ddl::is_transient(&r.name))
        .map(|(i, _)| i)
        .collect();
    m.u64(relations.len() as u64);
    for idx in relations {
        let rel = &mut inner.relations[idx];
        let base = table_base(rel.id);
        if rel.id >= 1 << 47 {
            return Err(EddyError::Storage(
                "relation ids are past what checkpoint tables can number".into(),
            ));
        }
        written.push(idx);
        m.str(&rel.name).u64(base);
        let time_column = rel.event_time.as_ref().map(|e| e.column);
        match &mut rel.storage {
            crate::view::Storage::Log(l) => {
                let (done, chunks) =
                    l.checkpoint(STREAM_TABLES | rel.id, time_column, &mut batch)?;
                pending.extend(chunks);
                m.bool(true);
                done.encode(&mut m);
                streams.push((rel.id, done));
            }
            storage => {
                m.bool(false);
                stage(&mut batch, base, storage.export_changes()?);
                tables.push(base);
            }
        }
        m.opt_i64(rel.event_time.as_ref().and_then(|e| e.max_seen));
        m.u64(rel.rejected_rows);
        match rel.dataflow.as_mut() {
            None => {
                m.bool(false);
            }
            Some(flow) => {
                let (state, changes) = flow.export_changes()?;
                m.bool(true)
                    .u64(state.epoch)
                    .opt_i64(state.watermark)
                    .u64(changes.len() as u64);
                for (n, (node_tables, late)) in changes.into_iter().zip(state.late_rows).enumerate()
                {
                    if node_tables.len() > TABLES_PER_NODE
                        || 1 + (n + 1) * TABLES_PER_NODE >= 1 << 16
                    {
                        return Err(EddyError::unsupported(format!(
                            "checkpointing view {} ({} operators): too many for the table numbering",
                            rel.name,
                            n + 1
                        )));
                    }
                    m.u64(late).u64(node_tables.len() as u64);
                    for (t, changes) in node_tables.into_iter().enumerate() {
                        let table = base | (1 + n * TABLES_PER_NODE + t) as u64;
                        stage(&mut batch, table, changes);
                        tables.push(table);
                    }
                }
            }
        }
    }
    batch.put(MANIFEST_TABLE, MANIFEST_KEY.to_vec(), m.into_bytes());
    tables.extend(streams.iter().map(|(_, s)| s.table));
    Ok(Written {
        batch,
        pending,
        tables,
        streams,
        relations: written,
    })
}

/// A checkpoint was not written: every stream keeps its tail for the next one.
fn export_failed(inner: &mut Inner) {
    for rel in inner.relations.iter_mut() {
        if let crate::view::Storage::Log(l) = &mut rel.storage {
            l.checkpoint_failed();
        }
    }
}

fn stage(batch: &mut WriteBatch, table: u64, changes: crate::state::table::Changes) {
    for k in changes.deletes {
        batch.delete(table, k);
    }
    for (k, v) in changes.puts {
        batch.put(table, k, v);
    }
}
