//! Generated sources: `CREATE SOURCE x WITH (connector='nexmark', ...)` and
//! `CREATE STREAM t (...) WITH (connector='datagen', ...)`. A background task per source
//! produces events in chunks; each chunk is applied as one epoch over the streams it feeds,
//! through the same path as INSERT, under the writer lock, made durable by one
//! [`LogEntry::Generated`] entry holding the new event count, then committed.
//!
//! Durability without logging rows: generators are pure functions of the event range
//! (see `connectors`), so replay regenerates each logged chunk exactly, as the same
//! epochs in the same place in history. A chunk whose entry did not reach the log before
//! a crash was never acknowledged; after restart the task regenerates it from the last
//! logged count — no event is lost or applied twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::sql::sqlparser::ast::SqlOption;

use super::{Database, Inner};
use crate::connectors::datagen::{DatagenGenerator, DatagenOptions};
use crate::connectors::nexmark::{stream_ddl, NexmarkGenerator, NexmarkOptions};
use crate::connectors::Generator;
use crate::dataflow::ChangeBatch;
use crate::error::{EddyError, Result};
use crate::sql::EddyStatement;
use crate::state::LogEntry;

/// Events per chunk (one epoch per stream) when running as fast as possible.
const DEFAULT_BATCH_SIZE: u64 = 10_000;

/// A running (or finished) generated source.
pub(crate) struct GeneratedSource {
    pub name: String,
    pub connector: &'static str,
    pub streams: Vec<String>,
    pub generator: Arc<dyn Generator>,
    /// Stop after this many events; `None`: endless.
    pub target: Option<u64>,
    /// Events per second; 0: as fast as possible.
    pub rate: u64,
    pub batch_size: u64,
    /// Events generated and applied so far.
    pub events: u64,
    /// Why the source stopped early (a view failed on its rows, the disk is full).
    pub error: Option<String>,
    pub stop: Arc<AtomicBool>,
}

impl GeneratedSource {
    pub fn status(&self) -> String {
        match (&self.error, self.target) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(t)) if self.events >= t => "done".into(),
            _ => "running".into(),
        }
    }

    fn chunk(&self) -> u64 {
        if self.rate == 0 {
            self.batch_size
        } else {
            // About ten commits a second at the requested rate.
            (self.rate / 10).clamp(1, self.batch_size)
        }
    }
}

/// The `connector` option, if a source has one we generate.
pub(super) fn generated_connector(options: &[SqlOption]) -> Option<&'static str> {
    options.iter().find_map(|o| {
        if super::ddl::option_name(o) != "connector" {
            return None;
        }
        match super::ddl::option_value(o).to_lowercase().as_str() {
            "nexmark" => Some("nexmark"),
            "datagen" => Some("datagen"),
            _ => None,
        }
    })
}

/// The options every generated source takes.
struct CommonOptions {
    target: Option<u64>,
    rate: u64,
    batch_size: u64,
}

fn parse_u64(name: &str, value: &str) -> Result<u64> {
    value.trim().parse::<u64>().map_err(|_| {
        EddyError::query(
            "22023",
            format!("option {name} must be a non-negative integer, not '{value}'"),
        )
    })
}

/// Split options into (generator options by name, options left for the stream itself).
fn split_options<'a>(
    options: &'a [SqlOption],
    generator: &[&str],
) -> (Vec<(String, String)>, Vec<&'a SqlOption>) {
    let mut mine = Vec::new();
    let mut rest = Vec::new();
    for o in options {
        let n = super::ddl::option_name(o);
        if n == "connector" || generator.contains(&n.as_str()) {
            mine.push((n, super::ddl::option_value(o)));
        } else {
            rest.push(o);
        }
    }
    (mine, rest)
}

fn common_options(opts: &[(String, String)], count_name: &str) -> Result<CommonOptions> {
    let mut out = CommonOptions {
        target: None,
        rate: 0,
        batch_size: DEFAULT_BATCH_SIZE,
    };
    for (n, v) in opts {
        match n.as_str() {
            x if x == count_name => out.target = Some(parse_u64(n, v)?),
            "rate" => out.rate = parse_u64(n, v)?,
            "batch_size" => {
                out.batch_size = parse_u64(n, v)?;
                if out.batch_size == 0 {
                    return Err(EddyError::query("22023", "batch_size must be at least 1"));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A timestamp option: epoch milliseconds, or a timestamp literal ('2015-07-15 00:00:00').
fn parse_time_ms(name: &str, v: &str) -> Result<u64> {
    if let Ok(ms) = v.trim().parse::<u64>() {
        return Ok(ms);
    }
    chrono::NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%d %H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M:%S"))
        .map(|t| t.and_utc().timestamp_millis().max(0) as u64)
        .map_err(|_| {
            EddyError::query(
                "22023",
                format!(
                    "option {name} must be epoch milliseconds or 'YYYY-MM-DD HH:MM:SS', not '{v}'"
                ),
            )
        })
}

const NEXMARK_OPTIONS: &[&str] = &[
    "events",
    "rate",
    "batch_size",
    "prefix",
    "base_time",
    "inter_event_delay_us",
    "retention",
];
const DATAGEN_OPTIONS: &[&str] = &[
    "rows",
    "rate",
    "batch_size",
    "seed",
    "key_range",
    "base_time",
    "time_step_us",
];

impl Database {
    /// CREATE of a generated source: make its streams, log the statement, register the
    /// generator and (unless replaying) start it.
    pub(super) fn create_generated_source(
        &self,
        stmt: &EddyStatement,
        sql: &str,
        log: bool,
        connector: &'static str,
    ) -> Result<String> {
        let EddyStatement::CreateSource {
            name,
            is_stream,
            columns,
            options,
            if_not_exists,
            ..
        } = stmt
        else {
            return Err(EddyError::internal("not a CREATE SOURCE"));
        };
        if !is_stream {
            return Err(EddyError::WrongObjectType(format!(
                "the {connector} connector feeds streams; use CREATE STREAM or CREATE SOURCE"
            )));
        }
        {
            let inner = self.lock();
            if inner.sources.iter().any(|s| &s.name == name) {
                if *if_not_exists {
                    return Ok("CREATE SOURCE".into());
                }
                return Err(EddyError::query(
                    "42710",
                    format!("source \"{name}\" already exists"),
                ));
            }
        }
        let allowed = if connector == "nexmark" {
            NEXMARK_OPTIONS
        } else {
            DATAGEN_OPTIONS
        };
        let (mine, rest) = split_options(options, allowed);
        let (generator, streams, common, tag): (Arc<dyn Generator>, Vec<String>, _, _) =
            if connector == "nexmark" {
                if !columns.is_empty() {
                    return Err(EddyError::syntax(format!(
                        "syntax error: the nexmark connector defines its own streams (person, auction, bid); write CREATE SOURCE {name} WITH (connector='nexmark', ...) without a column list"
                    )));
                }
                if let Some(o) = rest.first() {
                    return Err(EddyError::query(
                        "22023",
                        format!(
                            "unknown option \"{}\" for the nexmark connector (known: {})",
                            super::ddl::option_name(o),
                            NEXMARK_OPTIONS.join(", ")
                        ),
                    ));
                }
                let common = common_options(&mine, "events")?;
                let mut o = NexmarkOptions::default();
                let mut retention = None;
                for (n, v) in &mine {
                    match n.as_str() {
                        "prefix" => o.prefix = v.clone(),
                        "base_time" => o.base_time_ms = parse_time_ms(n, v)?,
                        "inter_event_delay_us" => o.inter_event_delay_us = parse_u64(n, v)?,
                        "retention" => retention = Some(v.replace('\'', "")),
                        _ => {}
                    }
                }
                let generator = NexmarkGenerator::new(o.clone())?;
                let ddl = stream_ddl(
                    &o.prefix,
                    retention.map(|r| format!("RETENTION = '{r}'")).as_deref(),
                );
                let mut created: Vec<String> = Vec::new();
                for (stream, text) in &ddl {
                    let r = crate::sql::parse_statement(text)
                        .and_then(|s| self.apply_ddl(&s, text, false));
                    if let Err(e) = r {
                        self.lock().relations.retain(|r| !created.contains(&r.name));
                        return Err(e);
                    }
                    created.push(stream.clone());
                }
                (
                    Arc::new(generator) as Arc<dyn Generator>,
                    created,
                    common,
                    "CREATE SOURCE",
                )
            } else {
                let common = common_options(&mine, "rows")?;
                let mut o = DatagenOptions::default();
                for (n, v) in &mine {
                    match n.as_str() {
                        "seed" => o.seed = parse_u64(n, v)?,
                        "key_range" => o.key_range = parse_u64(n, v)? as i64,
                        "base_time" => o.base_time_us = parse_time_ms(n, v)? as i64 * 1000,
                        "time_step_us" => o.step_us = parse_u64(n, v)? as i64,
                        _ => {}
                    }
                }
                // The stream itself, with its own options (TIMESTAMP, RETENTION).
                let EddyStatement::CreateSource {
                    name,
                    is_stream,
                    columns,
                    constraints,
                    if_not_exists,
                    watermark,
                    ..
                } = stmt.clone()
                else {
                    unreachable!("matched above")
                };
                if self.lock().get(&name).is_some() {
                    // The stream exists already (and is not a generated one: that case
                    // was answered above): nothing to create or generate.
                    if if_not_exists {
                        return Ok("CREATE STREAM".into());
                    }
                    return Err(EddyError::DuplicateRelation(name));
                }
                let plain = EddyStatement::CreateSource {
                    name: name.clone(),
                    is_stream,
                    columns,
                    constraints,
                    options: rest.into_iter().cloned().collect(),
                    if_not_exists,
                    watermark,
                };
                self.apply_ddl(&plain, sql, false)?;
                let schema = self.lock().require(&name)?.schema.clone();
                let generator = match DatagenGenerator::try_new(name.clone(), schema, o) {
                    Ok(g) => g,
                    Err(e) => {
                        self.lock().relations.retain(|r| r.name != name);
                        return Err(e);
                    }
                };
                (
                    Arc::new(generator) as Arc<dyn Generator>,
                    vec![name],
                    common,
                    "CREATE STREAM",
                )
            };
        let mut inner = self.lock();
        if log {
            if let Err(e) = self.log(&[LogEntry::Ddl(sql.to_string())]) {
                inner.relations.retain(|r| !streams.contains(&r.name));
                return Err(e);
            }
        }
        inner.sources.push(GeneratedSource {
            name: name.clone(),
            connector,
            streams,
            generator,
            target: common.target,
            rate: common.rate,
            batch_size: common.batch_size,
            events: 0,
            error: None,
            stop: Arc::new(AtomicBool::new(false)),
        });
        drop(inner);
        if log {
            self.start_generator(name);
        }
        Ok(tag.into())
    }

    /// DROP SOURCE: stop the generator and drop its streams (and, with CASCADE, what
    /// reads them).
    pub(super) fn drop_generated_source(
        &self,
        names: &[String],
        if_exists: bool,
        cascade: bool,
        sql: &str,
        log: bool,
    ) -> Result<String> {
        let mut streams = Vec::new();
        let mut dropping = Vec::new();
        {
            let inner = self.lock();
            for n in names {
                match inner.sources.iter().find(|s| &s.name == n) {
                    Some(s) => {
                        streams.extend(s.streams.clone());
                        dropping.push(n.clone());
                    }
                    None if if_exists => {}
                    None => {
                        return Err(EddyError::query(
                            "42704",
                            format!("source \"{n}\" does not exist"),
                        ))
                    }
                }
            }
        }
        if dropping.is_empty() {
            return Ok("DROP SOURCE".into());
        }
        // Drop the streams as DROP STREAM would (refusing dependents without CASCADE), but
        // log the DROP SOURCE statement itself.
        let drop_streams = EddyStatement::Drop {
            kind: crate::sql::parser::DropKind::Stream,
            names: streams,
            if_exists: true,
            cascade,
        };
        self.apply_ddl_inner(&drop_streams, sql, log, true, None)?;
        let mut inner = self.lock();
        inner.sources.retain(|s| {
            if dropping.contains(&s.name) {
                s.stop.store(true, Ordering::SeqCst);
                false
            } else {
                true
            }
        });
        Ok("DROP SOURCE".into())
    }

    /// The generated source a stream belongs to, if any.
    pub(super) fn source_of_stream(inner: &Inner, stream: &str) -> Option<String> {
        inner
            .sources
            .iter()
            .find(|s| s.streams.iter().any(|x| x == stream))
            .map(|s| s.name.clone())
    }

    /// Apply the chunk of events `[source.events, to)` (already generated as `batches`,
    /// one per stream): one epoch staging every non-empty stream batch, then (with `log`)
    /// one durable entry, then the commit. All or nothing: if a step fails the epoch aborts.
    pub(super) fn apply_generated(
        &self,
        inner: &mut Inner,
        source: &str,
        to: u64,
        batches: Vec<RecordBatch>,
        log: bool,
    ) -> Result<()> {
        let streams = inner
            .sources
            .iter()
            .find(|s| s.name == source)
            .map(|s| s.streams.clone())
            .ok_or_else(|| EddyError::internal(format!("no generated source {source}")))?;
        // The chunk is one epoch over all its streams: its views commit together, after
        // the chunk's log entry, or abort together.
        let mut work = super::EpochWork::default();
        let mut result = Ok(());
        for (stream, batch) in streams.iter().zip(batches) {
            if batch.num_rows() == 0 {
                continue;
            }
            // Rows come in the generator's schema; the stream's may carry the same
            // fields under its own metadata.
            let staged = inner
                .require(stream)
                .map(|r| r.schema.clone())
                .and_then(|schema| Ok(RecordBatch::try_new(schema, batch.columns().to_vec())?))
                .and_then(|batch| {
                    Self::stage(inner, stream, &ChangeBatch::inserts(batch), &mut work)
                });
            if let Err(e) = staged {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() && log {
            result = self.log(&[LogEntry::Generated {
                source: source.to_string(),
                events: to,
            }]);
        }
        self.finish_epoch(inner, work, result)?;
        if let Some(s) = inner.sources.iter_mut().find(|s| s.name == source) {
            s.events = to;
        }
        Ok(())
    }

    /// Replay a logged chunk: regenerate events up to `to` and apply them.
    pub(super) fn replay_generated(&self, source: &str, to: u64) -> Result<()> {
        let mut inner = self.lock();
        let Some(s) = inner.sources.iter().find(|s| s.name == source) else {
            return Err(EddyError::Storage(format!(
                "log names generated source {source}, which does not exist at that point"
            )));
        };
        let batches = s.generator.generate(s.events, to)?;
        self.apply_generated(&mut inner, source, to, batches, false)
    }

    /// Start the background task of every source that has events left (after replay).
    pub(super) fn start_generators(&self) {
        let names: Vec<String> = self.lock().sources.iter().map(|s| s.name.clone()).collect();
        for n in names {
            self.start_generator(&n);
        }
    }

    fn start_generator(&self, name: &str) {
        let Some(me) = self.self_ref.get().cloned() else {
            tracing::warn!(
                source = name,
                "database not shared yet; generator not started"
            );
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(source = name, "no async runtime; generator not started");
            return;
        };
        let stop = match self.lock().sources.iter().find(|s| s.name == name) {
            Some(s) => s.stop.clone(),
            None => return,
        };
        handle.spawn(run_generator(me, name.to_string(), stop));
    }
}

/// The background task of one source: generate a chunk, apply it, pace, repeat.
async fn run_generator(db: Weak<Database>, name: String, stop: Arc<AtomicBool>) {
    let started = Instant::now();
    let mut produced: u64 = 0;
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(db) = db.upgrade() else { break };
        let plan = {
            let inner = db.lock();
            let Some(s) = inner.sources.iter().find(|s| s.name == name) else {
                break;
            };
            if s.error.is_some() {
                break;
            }
            let from = s.events;
            let to = match s.target {
                Some(t) => t.min(from + s.chunk()),
                None => from + s.chunk(),
            };
            (from < to).then(|| (s.generator.clone(), from, to, s.rate))
        };
        let Some((generator, from, to, rate)) = plan else {
            break;
        };
        let batches = match generator.generate(from, to) {
            Ok(b) => b,
            Err(e) => {
                fail(&db, &name, e);
                break;
            }
        };
        {
            let _w = db.writer.lock().await;
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let mut inner = db.lock();
            // Another writer cannot move the count, but a DROP + CREATE of the same name
            // could: apply only on top of what this task generated from.
            match inner.sources.iter().find(|s| s.name == name) {
                Some(s) if s.events == from => {}
                _ => break,
            }
            if let Err(e) = db.apply_generated(&mut inner, &name, to, batches, true) {
                drop(inner);
                fail(&db, &name, e);
                break;
            }
        }
        produced += to - from;
        drop(db);
        if rate > 0 {
            let due = Duration::from_secs_f64(produced as f64 / rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        } else {
            tokio::task::yield_now().await;
        }
    }
}

fn fail(db: &Database, name: &str, e: EddyError) {
    tracing::error!(source = name, error = %e, "generated source stopped");
    if let Some(s) = db.lock().sources.iter_mut().find(|s| s.name == name) {
        s.error = Some(e.to_string());
    }
}

/// The `eddy_sources` system relation: one row per generated source.
pub const SYSTEM_SOURCES: &str = "eddy_sources";

pub(super) fn system_sources(inner: &Inner) -> Result<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let s = &inner.sources;
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("connector", DataType::Utf8, false),
        Field::new("streams", DataType::Utf8, false),
        Field::new("events", DataType::Int64, false),
        Field::new("target", DataType::Int64, true),
        Field::new("rate", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            s.iter().map(|x| x.name.clone()),
        )),
        Arc::new(StringArray::from_iter_values(s.iter().map(|x| x.connector))),
        Arc::new(StringArray::from_iter_values(
            s.iter().map(|x| x.streams.join(", ")),
        )),
        Arc::new(Int64Array::from_iter_values(
            s.iter().map(|x| x.events as i64),
        )),
        Arc::new(Int64Array::from(
            s.iter()
                .map(|x| x.target.map(|t| t as i64))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from_iter_values(
            s.iter().map(|x| x.rate as i64),
        )),
        Arc::new(StringArray::from_iter_values(s.iter().map(|x| x.status()))),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
