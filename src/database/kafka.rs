//! The database side of Kafka sources and sinks: checking their shape at CREATE, applying
//! consumed batches as epochs that log their offsets atomically with their changes,
//! producing INSERTed rows to a source's topic, handing sinks a consistent snapshot plus
//! subscription, and the `eddy_kafka_sources` / `eddy_kafka_errors` system tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{Database, Inner};
use crate::catalog::{Relation, RelationKind};
use crate::connectors::kafka::decode::{Role, ROWOFFSET, ROWPARTITION};
use crate::connectors::kafka::options::{self, Format};
use crate::connectors::kafka::{
    self as k, KafkaRuntime, Layout, RawRecord, SinkConfig, SourceConfig,
};
use crate::dataflow::{ChangeBatch, Dataflow};
use crate::error::{EddyError, Result};
use crate::sql::kafka::SinkStatement;
use crate::sql::EddyStatement;
use crate::state::LogEntry;
use crate::view::Storage;

pub const SYSTEM_KAFKA_SOURCES: &str = "eddy_kafka_sources";
pub const SYSTEM_KAFKA_ERRORS: &str = "eddy_kafka_errors";

/// ksqlDB's ROWPARTITION and ROWOFFSET, hidden like ROWTIME.
pub(super) fn add_pseudo_columns(fields: &mut Vec<Field>, hidden: &mut Vec<usize>) {
    for (name, t) in [
        (ROWPARTITION, DataType::Int32),
        (ROWOFFSET, DataType::Int64),
    ] {
        if !fields.iter().any(|f| f.name() == name) {
            hidden.push(fields.len());
            fields.push(Field::new(name, t, true));
        }
    }
}

/// What a Kafka-backed stream or table may look like.
pub(super) fn check_source_shape(
    name: &str,
    is_stream: bool,
    cfg: &SourceConfig,
    key: &[usize],
) -> Result<()> {
    if is_stream && cfg.upsert {
        return Err(EddyError::unsupported(format!(
            "FORMAT UPSERT on a stream: use CREATE TABLE {name} (... PRIMARY KEY) ... FORMAT UPSERT ENCODE JSON"
        )));
    }
    if !is_stream && key.is_empty() {
        return Err(EddyError::query(
            "42P16",
            format!("Kafka-backed table {name} needs a PRIMARY KEY: its rows are upserts by the record key"),
        ));
    }
    if key.len() > 1 && cfg.key_format == Format::Kafka {
        return Err(EddyError::unsupported(format!(
            "{} key columns with KEY_FORMAT='KAFKA' (one column only); use KEY_FORMAT='JSON' or 'DELIMITED'",
            key.len()
        )));
    }
    Ok(())
}

/// The sink of a `CREATE STREAM|TABLE ... [WITH (KAFKA_TOPIC=...)] AS SELECT`, if any.
/// As in ksqlDB, such a statement over Kafka-backed input writes a topic even when not
/// told: one named after the relation, upper-cased. (Over INSERTed relations, which
/// ksqlDB does not have, it writes none unless given KAFKA_TOPIC.)
pub(super) fn view_sink(
    stmt: &EddyStatement,
    _flow: &Dataflow,
    reads_kafka: bool,
) -> Result<Option<SinkConfig>> {
    let EddyStatement::CreateView {
        name,
        kind,
        options,
        ..
    } = stmt
    else {
        return Ok(None);
    };
    let pairs = super::ddl::option_pairs(options);
    if options::is_kafka(&pairs) {
        return options::sink_config(&pairs).map(Some);
    }
    if !reads_kafka || *kind == crate::sql::ViewKind::MaterializedView {
        return Ok(None);
    }
    let mut pairs = pairs;
    pairs.push(("kafka_topic".into(), name.to_uppercase()));
    options::sink_config(&pairs).map(Some)
}

/// Whether `name` is, or reads (through views), a Kafka-backed relation.
pub(super) fn reads_kafka(inner: &Inner, kafka: &KafkaRuntime, name: &str) -> bool {
    if kafka.is_source(name) {
        return true;
    }
    inner
        .get(name)
        .map(|r| r.depends_on.iter().any(|d| reads_kafka(inner, kafka, d)))
        .unwrap_or(false)
}

/// The layout of a Kafka-backed relation's records.
fn layout_of(rel: &Relation, cfg: &SourceConfig) -> Layout {
    let roles = rel
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if rel.hidden.contains(&i) {
                match f.name().as_str() {
                    super::ddl::ROWTIME => Role::RowTime,
                    ROWPARTITION => Role::RowPartition,
                    ROWOFFSET => Role::RowOffset,
                    _ => Role::Value,
                }
            } else if rel.primary_key.contains(&i) {
                Role::Key
            } else {
                Role::Value
            }
        })
        .collect();
    Layout {
        schema: rel.schema.clone(),
        roles,
        value_format: cfg.value_format,
        key_format: cfg.key_format,
        timestamp_format: cfg.timestamp_format.clone(),
        upsert: rel.kind == RelationKind::Table,
        not_null: rel.not_null.clone(),
    }
}

fn source_config_of(rel: &Relation) -> Result<SourceConfig> {
    match crate::sql::parse_statement(&rel.create_sql)? {
        EddyStatement::CreateSource { options, .. } => {
            options::source_config(&super::ddl::option_pairs(&options))
        }
        _ => Err(EddyError::internal(
            "a Kafka source's CREATE did not parse back",
        )),
    }
}

/// What a sink task needs.
pub struct SinkSetup {
    pub config: SinkConfig,
    pub from: String,
    pub upsert: bool,
    /// How rows become records.
    pub shape: RecordShape,
}

impl Database {
    pub fn kafka(&self) -> &KafkaRuntime {
        &self.kafka
    }

    /// Check a topic exists at CREATE (creating it when `partitions` is given, or for a
    /// sink with one partition by default).
    pub(super) fn kafka_ensure_topic(
        &self,
        own: Option<&str>,
        topic: &str,
        partitions: Option<i32>,
        sink: bool,
    ) -> Result<()> {
        let brokers = self.kafka.brokers(own)?;
        let partitions = if sink {
            Some(partitions.unwrap_or(1))
        } else {
            partitions
        };
        k::ensure_topic(&brokers, topic, partitions)
    }

    /// `scan.startup.mode='latest'`: pin "latest" to the partitions' ends at CREATE, in
    /// the log, so a restart before the first record does not skip what came meanwhile.
    pub(super) fn kafka_pin_latest(&self, name: &str, cfg: &SourceConfig) -> Result<()> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let brokers = self.kafka.brokers(cfg.brokers.as_deref())?;
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("log_level", "3")
            .create()?;
        let timeout = std::time::Duration::from_secs(10);
        let md = consumer.fetch_metadata(Some(&cfg.topic), timeout)?;
        let mut offsets = Vec::new();
        for t in md.topics().iter().filter(|t| t.name() == cfg.topic) {
            for p in t.partitions() {
                let (_, high) = consumer.fetch_watermarks(&cfg.topic, p.id(), timeout)?;
                offsets.push((p.id(), high));
            }
        }
        self.log(&[LogEntry::KafkaOffsets {
            relation: name.to_string(),
            offsets: offsets.clone(),
        }])?;
        self.kafka.record_offsets(name, &offsets);
        Ok(())
    }

    /// The config and record layout of a Kafka-backed relation.
    pub(crate) fn kafka_source_setup(&self, name: &str) -> Result<(SourceConfig, Layout)> {
        let inner = self.lock();
        let rel = inner.require(name)?;
        let cfg = source_config_of(rel)?;
        let layout = layout_of(rel, &cfg);
        Ok((cfg, layout))
    }

    /// Apply one batch of consumed records, logging each partition's next offset with
    /// the changes. Records before the stored offsets (already applied) are skipped, so a
    /// redelivery never duplicates. Bad records are counted and skipped. When a view
    /// refuses the batch (a function error, a division by zero), the batch is split and
    /// its halves applied as epochs of their own, down to the single records that fail:
    /// those are reported with the view's reason, every other record is applied.
    pub(crate) async fn ingest_kafka(
        &self,
        name: &str,
        topic: &str,
        mut records: Vec<RawRecord>,
    ) -> Result<usize> {
        let _w = self.writer.lock().await;
        let have = self.kafka.offsets(name);
        records.retain(|r| r.offset >= have.get(&r.partition).copied().unwrap_or(0));
        if records.is_empty() {
            return Ok(0);
        }
        let (_, layout) = self.kafka_source_setup(name)?;
        let mut bad = Vec::new();
        let applied = self.ingest_part(name, &layout, &records, &mut bad)?;
        self.kafka.record_bad(name, topic, &bad);
        self.kafka.update(name, |s| s.records += applied as u64);
        Ok(applied)
    }

    /// One epoch of `records` (or, refused by a view, of each half in turn).
    fn ingest_part(
        &self,
        name: &str,
        layout: &Layout,
        records: &[RawRecord],
        bad: &mut Vec<k::BadRecord>,
    ) -> Result<usize> {
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for r in records {
            let e = next.entry(r.partition).or_insert(r.offset + 1);
            *e = (*e).max(r.offset + 1);
        }
        let offsets: Vec<(i32, i64)> = next.into_iter().collect();
        let decoded = layout.decode(records)?;
        let entry = LogEntry::KafkaOffsets {
            relation: name.to_string(),
            offsets: offsets.clone(),
        };
        let result = {
            let mut inner = self.lock();
            build_delta(&mut inner, name, decoded.rows, &decoded.tombstones).and_then(
                |(delta, n)| {
                    self.apply_epoch_with(
                        &mut inner,
                        name,
                        delta,
                        true,
                        std::slice::from_ref(&entry),
                    )
                    .map(|_| n)
                },
            )
        };
        let applied = match result {
            Ok(n) => {
                bad.extend(decoded.bad);
                n
            }
            Err(e @ (EddyError::Storage(_) | EddyError::Io(_) | EddyError::Internal(_))) => {
                return Err(e)
            }
            Err(_) if records.len() > 1 => {
                let (a, b) = records.split_at(records.len() / 2);
                let n = self.ingest_part(name, layout, a, bad)?;
                return Ok(n + self.ingest_part(name, layout, b, bad)?);
            }
            Err(e) => {
                // This record is fine as a record but a view cannot take it: skip it
                // (reported) rather than stall the source forever.
                self.log(std::slice::from_ref(&entry))?;
                bad.extend(records.iter().map(|r| k::BadRecord {
                    partition: r.partition,
                    offset: r.offset,
                    reason: format!("refused by a view: {e}"),
                }));
                0
            }
        };
        self.kafka.record_offsets(name, &offsets);
        Ok(applied)
    }

    /// INSERT into a Kafka-backed relation: produce the rows to its topic.
    pub(super) async fn kafka_produce(&self, name: &str, rows: &RecordBatch) -> Result<usize> {
        let (cfg, layout) = self.kafka_source_setup(name)?;
        let brokers = self.kafka.brokers(cfg.brokers.as_deref())?;
        let records = k::sink::encode_source_rows(&layout, rows)?;
        let n = records.len();
        k::sink::produce_all(&brokers, &cfg.topic, records).await?;
        Ok(n)
    }

    pub(super) fn kafka_refuse_write(&self, name: &str, verb: &str) -> Result<()> {
        if self.kafka.is_source(name) {
            return Err(EddyError::unsupported(format!(
                "{verb} on Kafka-backed {name}: it follows its topic; produce an upsert or a tombstone (null value) for the key instead"
            )));
        }
        Ok(())
    }

    pub(super) fn apply_sink_ddl(&self, s: &SinkStatement, sql: &str, log: bool) -> Result<String> {
        match s {
            SinkStatement::Create {
                name,
                from,
                options: opts,
                if_not_exists,
            } => {
                if self.kafka.is_registered(name) || self.lock().get(name).is_some() {
                    if *if_not_exists {
                        return Ok("CREATE SINK".into());
                    }
                    return Err(EddyError::DuplicateRelation(name.clone()));
                }
                let pairs = super::ddl::option_pairs(opts);
                let cfg = options::sink_config(&pairs)?;
                {
                    let inner = self.lock();
                    let rel = inner.require(from)?;
                    if cfg.upsert == Some(false) && !rel.kind.is_append_only() {
                        return Err(EddyError::unsupported(format!(
                            "FORMAT PLAIN sink from {} {from}, which updates and deletes rows; use FORMAT UPSERT ENCODE JSON",
                            rel.kind.noun()
                        )));
                    }
                }
                if log {
                    self.kafka_ensure_topic(
                        cfg.brokers.as_deref(),
                        &cfg.topic,
                        cfg.partitions,
                        true,
                    )?;
                    self.log(&[LogEntry::Ddl(sql.to_string())])?;
                }
                self.kafka.register_sink(name, &cfg, from, sql);
                if log {
                    self.kafka.start(name);
                }
                Ok("CREATE SINK".into())
            }
            SinkStatement::Drop { names, if_exists } => {
                for n in names {
                    if !self.kafka.is_sink(n) && !*if_exists {
                        return Err(EddyError::UnknownRelation(n.clone()));
                    }
                }
                if log {
                    self.log(&[LogEntry::Ddl(sql.to_string())])?;
                }
                for n in names {
                    if self.kafka.is_sink(n) {
                        self.kafka.forget(n);
                    }
                }
                Ok("DROP SINK".into())
            }
        }
    }

    /// What a sink task needs to run.
    pub(crate) fn kafka_sink_setup(&self, name: &str) -> Result<SinkSetup> {
        let (config, from, sql) = self
            .kafka
            .sink_definition(name)
            .ok_or_else(|| EddyError::UnknownRelation(name.to_string()))?;
        let inner = self.lock();
        let rel = inner.require(&from)?;
        let visible: Vec<usize> = (0..rel.schema.fields().len())
            .filter(|i| !rel.hidden.contains(i))
            .collect();
        let upsert = config.upsert.unwrap_or(match rel.kind {
            RelationKind::DerivedStream | RelationKind::Stream => false,
            _ => true,
        });
        let _ = sql;
        // A CREATE STREAM|TABLE ... AS sink has the view's own name; a CREATE SINK another.
        let ksql = from == name;
        let shape = record_shape(rel, &visible, ksql, &config, &inner)?;
        Ok(SinkSetup {
            config,
            from,
            upsert,
            shape,
        })
    }

    /// A sink's start: the relation's visible rows now, and every committed change after.
    pub(crate) fn subscribe_sink(
        &self,
        from: &str,
    ) -> Result<(
        SchemaRef,
        Vec<RecordBatch>,
        crate::view::subscription::Subscription,
    )> {
        match self.subscribe(from, Some(true), None)? {
            super::Output::Subscription {
                schema,
                snapshot,
                subscription,
                ..
            } => Ok((schema, snapshot, subscription)),
            _ => Err(EddyError::internal("subscribe returned no subscription")),
        }
    }
}

/// The delta of a consumed batch: inserts (streams), or upserts and deletes (tables).
fn build_delta(
    inner: &mut Inner,
    name: &str,
    rows: RecordBatch,
    tombstones: &RecordBatch,
) -> Result<(ChangeBatch, usize)> {
    let rows = super::dml::admit(inner, name, rows)?;
    let n = rows.num_rows() + tombstones.num_rows();
    let rel = inner.require(name)?;
    let delta = match &rel.storage {
        Storage::Keyed(keyed) => {
            let up = keyed.upsert_delta(&rows)?;
            let del = keyed.delete_delta(tombstones)?;
            ChangeBatch::concat(&rel.schema, &[del, up])?
        }
        _ => ChangeBatch::inserts(rows),
    };
    Ok((delta, n))
}

/// The key of a relation's rows, as positions in its visible columns: a table's primary
/// key; a view's GROUP BY columns (window bounds included) when its SELECT lists them;
/// otherwise the whole row.
fn key_columns_of(rel: &Relation, visible: &[usize]) -> Vec<usize> {
    let pos = |i: usize| visible.iter().position(|v| *v == i);
    if !rel.primary_key.is_empty() {
        return rel.primary_key.iter().filter_map(|&i| pos(i)).collect();
    }
    let names: Vec<String> = visible
        .iter()
        .map(|&i| rel.schema.field(i).name().to_lowercase())
        .collect();
    let mut keys = grouped_columns(rel, &names);
    if !keys.is_empty() {
        for (i, n) in names.iter().enumerate() {
            if is_window_column(n) && !keys.contains(&i) {
                keys.push(i);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        return keys;
    }
    (0..visible.len()).collect()
}

fn is_window_column(name: &str) -> bool {
    matches!(
        name,
        "window_start" | "window_end" | "windowstart" | "windowend"
    )
}

/// The visible columns (named `names`) of a view that its GROUP BY lists. A ksqlDB
/// windowed query shows the window bounds it does not select in front of its own
/// columns, so SELECT items are counted from the end of the visible columns.
fn grouped_columns(rel: &Relation, names: &[String]) -> Vec<usize> {
    use datafusion::sql::sqlparser::ast::{Expr, GroupByExpr, SelectItem, SetExpr};
    let mut keys = Vec::new();
    let Ok(EddyStatement::CreateView { query, .. }) = crate::sql::parse_statement(&rel.create_sql)
    else {
        return keys;
    };
    let SetExpr::Select(s) = query.body.as_ref() else {
        return keys;
    };
    let GroupByExpr::Expressions(groups, _) = &s.group_by else {
        return keys;
    };
    if s.projection.iter().any(|i| {
        !matches!(
            i,
            SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
        )
    }) || s.projection.len() > names.len()
    {
        return keys;
    }
    let offset = names.len() - s.projection.len();
    let last = |t: &str| t.rsplit('.').next().unwrap_or(t).to_string();
    let groups: Vec<String> = groups
        .iter()
        .map(|g| g.to_string().to_lowercase())
        .collect();
    let ordinals: Vec<usize> = groups
        .iter()
        .filter_map(|g| g.parse::<usize>().ok())
        .collect();
    for (i, item) in s.projection.iter().enumerate() {
        let (expr, alias): (&Expr, Option<String>) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.to_lowercase())),
            _ => continue,
        };
        let text = expr.to_string().to_lowercase();
        let grouped = groups.iter().any(|g| {
            *g == text || *g == last(&text) || last(g) == last(&text) || alias.as_ref() == Some(g)
        }) || ordinals.contains(&(i + 1));
        if grouped {
            keys.push(i + offset);
        }
    }
    keys
}

/// How a sink turns a row into a record key and value.
#[derive(Debug, Clone)]
pub struct RecordShape {
    /// Key columns (visible positions), window bounds excluded for a ksqlDB windowed key.
    pub key_columns: Vec<usize>,
    /// None: a JSON object of the key columns (CREATE SINK, RisingWave's upsert key).
    /// Some: ksqlDB's key serialization in that format.
    pub key_format: Option<Format>,
    /// ksqlDB's windowed key: the key, then the window start in big-endian epoch
    /// milliseconds (Kafka Streams' TimeWindowedSerde), or end then start for a session
    /// window (SessionWindowedSerde). Visible positions of the bounds.
    pub window: Option<WindowedKey>,
    /// Columns of the value (ksqlDB leaves the key columns and window bounds out).
    pub value_columns: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
pub struct WindowedKey {
    /// A session window's gap in milliseconds: eddy's session ends at the last event plus
    /// the gap, ksqlDB's key carries the last event's time.
    pub session_gap: Option<i64>,
    pub start: usize,
    pub end: usize,
}

/// The record shape of a relation's sink. `ksql`: a `CREATE STREAM|TABLE ... AS` sink,
/// which writes what ksqlDB writes; otherwise a CREATE SINK (JSON key object, whole row).
fn record_shape(
    rel: &Relation,
    visible: &[usize],
    ksql: bool,
    cfg: &SinkConfig,
    inner: &Inner,
) -> Result<RecordShape> {
    let all: Vec<usize> = (0..visible.len()).collect();
    let names: Vec<String> = visible
        .iter()
        .map(|&i| rel.schema.field(i).name().to_lowercase())
        .collect();
    if !ksql {
        return Ok(RecordShape {
            key_columns: key_columns_of(rel, visible),
            key_format: None,
            window: None,
            value_columns: all,
        });
    }
    let window = rel
        .dataflow
        .as_ref()
        .and_then(|f| f.window.as_ref())
        .and_then(|w| {
            let at = |c: &str| names.iter().position(|n| *n == c.to_lowercase());
            Some(WindowedKey {
                session_gap: match w.kind {
                    crate::sql::windows::WindowKind::Session { gap } => Some(gap / 1000),
                    _ => None,
                },
                start: at(&w.start_column)?,
                end: at(&w.end_column)?,
            })
        });
    // The key of the relation read, when the new one selects all its columns: a stream
    // keeps its source's KEY column, a table over a table its PRIMARY KEY. (ksqlDB
    // refuses a projection without them; eddy then writes records without a key, or for
    // a table keys them by the whole row.)
    let source_keys: Vec<String> = rel
        .depends_on
        .first()
        .and_then(|s| inner.get(s))
        .map(|s| {
            s.primary_key
                .iter()
                .map(|&i| s.schema.field(i).name().to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let inherited: Vec<usize> = source_keys
        .iter()
        .filter_map(|n| names.iter().position(|x| x == n))
        .collect();
    let inherited = if inherited.len() == source_keys.len() && rel.depends_on.len() == 1 {
        inherited
    } else {
        vec![]
    };
    let mut key_columns: Vec<usize> = if rel.kind.is_append_only() {
        inherited
    } else if !rel.primary_key.is_empty() {
        key_columns_of(rel, visible)
    } else {
        let g = grouped_columns(rel, &names);
        if !g.is_empty() {
            g
        } else if !inherited.is_empty() {
            inherited
        } else {
            // No key ksqlDB would write (e.g. an aggregate without GROUP BY): key by the
            // whole row, which the value then repeats.
            return Ok(RecordShape {
                key_columns: all.clone(),
                key_format: Some(Format::Json),
                window: None,
                value_columns: all,
            });
        }
    };
    if let Some(w) = window {
        key_columns.retain(|&i| i != w.start && i != w.end);
    }
    key_columns.sort_unstable();
    key_columns.dedup();
    let key_format = cfg.key_format.unwrap_or(if key_columns.len() > 1 {
        // ksqlDB needs KEY_FORMAT='JSON' here; writing JSON is what it would be told to do.
        Format::Json
    } else {
        Format::Kafka
    });
    if key_format == Format::Kafka && key_columns.len() > 1 {
        return Err(EddyError::unsupported(format!(
            "KEY_FORMAT='KAFKA' with {} key columns (one column only); use KEY_FORMAT='JSON'",
            key_columns.len()
        )));
    }
    let value_columns = all
        .into_iter()
        .filter(|i| {
            !key_columns.contains(i) && window.map_or(true, |w| *i != w.start && *i != w.end)
        })
        .collect();
    Ok(RecordShape {
        key_columns,
        key_format: Some(key_format),
        window,
        value_columns,
    })
}

pub(super) fn system_kafka_sources(rt: &KafkaRuntime) -> Result<RecordBatch> {
    let st = rt.statuses();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("brokers", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("records", DataType::Int64, false),
        Field::new("bad_records", DataType::Int64, false),
        Field::new("offsets", DataType::Utf8, false),
    ]));
    let text = |f: &dyn Fn(&k::Status) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(st.iter().map(|(_, s)| f(s))))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            st.iter().map(|(n, _)| n.clone()),
        )),
        text(&|s| s.kind.to_string()),
        text(&|s| s.topic.clone()),
        text(&|s| s.brokers.clone()),
        text(&|s| s.state.clone()),
        Arc::new(Int64Array::from_iter_values(
            st.iter().map(|(_, s)| s.records as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            st.iter().map(|(_, s)| s.bad_records as i64),
        )),
        text(&|s| {
            s.offsets
                .iter()
                .map(|(p, o)| format!("{p}:{o}"))
                .collect::<Vec<_>>()
                .join(",")
        }),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

pub(super) fn system_kafka_errors(rt: &KafkaRuntime) -> Result<RecordBatch> {
    let errs = rt.recent_errors();
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new(
            "seen_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            errs.iter().map(|e| e.source.clone()),
        )),
        Arc::new(StringArray::from_iter_values(
            errs.iter().map(|e| e.topic.clone()),
        )),
        Arc::new(Int32Array::from_iter_values(
            errs.iter().map(|e| e.record.partition),
        )),
        Arc::new(Int64Array::from_iter_values(
            errs.iter().map(|e| e.record.offset),
        )),
        Arc::new(StringArray::from_iter_values(
            errs.iter().map(|e| e.record.reason.clone()),
        )),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            errs.iter().map(|e| e.at),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
