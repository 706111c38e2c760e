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

/// The sink of a `CREATE STREAM|TABLE ... WITH (KAFKA_TOPIC=...) AS SELECT`, if any.
pub(super) fn view_sink(stmt: &EddyStatement, _flow: &Dataflow) -> Result<Option<SinkConfig>> {
    let EddyStatement::CreateView { options, .. } = stmt else {
        return Ok(None);
    };
    let pairs = super::ddl::option_pairs(options);
    if !options::is_kafka(&pairs) {
        return Ok(None);
    }
    options::sink_config(&pairs).map(Some)
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
    /// Columns (of the visible schema) that form a record's key.
    pub key_columns: Vec<usize>,
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

    /// Apply one batch of consumed records as one epoch, logging each partition's next
    /// offset with it. Records before the stored offsets (already applied) are skipped,
    /// so a redelivery never duplicates. Bad records are counted and skipped; a batch a
    /// view refuses (e.g. division by zero) is skipped whole and reported.
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
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &records {
            let e = next.entry(r.partition).or_insert(r.offset + 1);
            *e = (*e).max(r.offset + 1);
        }
        let offsets: Vec<(i32, i64)> = next.into_iter().collect();
        let (_, layout) = self.kafka_source_setup(name)?;
        let decoded = layout.decode(&records)?;
        let entry = LogEntry::KafkaOffsets {
            relation: name.to_string(),
            offsets: offsets.clone(),
        };
        let mut bad = decoded.bad;
        let applied = {
            let mut inner = self.lock();
            let result = build_delta(&mut inner, name, decoded.rows, &decoded.tombstones).and_then(
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
            );
            match result {
                Ok(n) => n,
                Err(e @ (EddyError::Storage(_) | EddyError::Io(_) | EddyError::Internal(_))) => {
                    return Err(e)
                }
                Err(e) => {
                    // The records are fine but a view cannot take them: skip the batch
                    // (reported per record) rather than stall the source forever.
                    self.log(std::slice::from_ref(&entry))?;
                    let reason = format!("batch refused: {e}");
                    bad = records
                        .iter()
                        .map(|r| k::BadRecord {
                            partition: r.partition,
                            offset: r.offset,
                            reason: reason.clone(),
                        })
                        .collect();
                    0
                }
            }
        };
        self.kafka.record_offsets(name, &offsets);
        self.kafka.record_bad(name, topic, &bad);
        self.kafka.update(name, |s| s.records += applied as u64);
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
        let key_columns = key_columns_of(rel, &visible);
        Ok(SinkSetup {
            config,
            from,
            upsert,
            key_columns,
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
    let mut keys = Vec::new();
    if let Ok(EddyStatement::CreateView { query, window, .. }) =
        crate::sql::parse_statement(&rel.create_sql)
    {
        use datafusion::sql::sqlparser::ast::{Expr, GroupByExpr, SelectItem, SetExpr};
        if let SetExpr::Select(s) = query.body.as_ref() {
            if let GroupByExpr::Expressions(groups, _) = &s.group_by {
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
                        SelectItem::ExprWithAlias { expr, alias } => {
                            (expr, Some(alias.value.to_lowercase()))
                        }
                        _ => continue,
                    };
                    let text = expr.to_string().to_lowercase();
                    let last_part = text.rsplit('.').next().unwrap_or(&text).to_string();
                    let grouped = groups
                        .iter()
                        .any(|g| *g == text || *g == last_part || alias.as_ref() == Some(g))
                        || ordinals.contains(&(i + 1));
                    if grouped && i < names.len() {
                        keys.push(i);
                    }
                }
            }
        }
        let _ = window;
        if !keys.is_empty() {
            for (i, n) in names.iter().enumerate() {
                if matches!(
                    n.as_str(),
                    "window_start" | "window_end" | "windowstart" | "windowend"
                ) && !keys.contains(&i)
                {
                    keys.push(i);
                }
            }
            keys.sort_unstable();
            return keys;
        }
    }
    (0..visible.len()).collect()
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
