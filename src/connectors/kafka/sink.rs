//! Writing to Kafka: sink tasks, and the rows an INSERT sends to a source's topic.
//!
//! A sink subscribes to its relation (snapshot, then every committed change, taken under
//! the database lock so nothing falls between them) and writes JSON:
//! - plain (append-only relations): one record per inserted row, no key;
//! - upsert (tables, aggregates): per changed key, the new row, or a tombstone (null
//!   value) when the key's row went away.
//!
//! A `CREATE SINK` keys records by a JSON object of the key columns (a windowed
//! aggregate's key carries `window_start`/`window_end`) and writes whole rows. A ksqlDB
//! `CREATE STREAM|TABLE ... AS` writes what ksqlDB writes: the key columns in KEY_FORMAT
//! (KAFKA by default), a windowed key in Kafka Streams' windowed formats, and a value
//! without the key columns ([`RecordShape`]).
//!
//! Delivery is at-least-once: a sink (re)starting — server restart, broker outage, a
//! failed send — writes the relation's current snapshot again, then follows its changes.
//! For upsert topics that converges to exactly the relation; plain topics may repeat rows.

use std::collections::HashMap;
use std::time::Duration;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::decode::{Layout, Role};
use super::options::Format;
use super::{upgrade, Db};
use crate::database::kafka::RecordShape;
use crate::dataflow::ChangeBatch;
use crate::error::{EddyError, Result};
use crate::view::subscription::Event;

/// A record to produce: key and value (None: null, a tombstone for a value).
pub type Record = (Option<Vec<u8>>, Option<Vec<u8>>);

pub async fn run(db: Db, name: String) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match write(&db, &name).await {
            Ok(()) => return,
            Err(e) => {
                let Some(d) = db.upgrade() else { return };
                if !d.kafka().is_registered(&name) {
                    return;
                }
                tracing::warn!(sink = %name, error = %e, "Kafka sink restarting from a snapshot");
                d.kafka().set_state(&name, format!("error: {e}"));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn write(db: &Db, name: &str) -> Result<()> {
    let (setup, brokers, schema, snapshot, mut sub) = {
        let d = upgrade(db)?;
        let setup = d.kafka_sink_setup(name)?;
        let brokers = d.kafka().brokers(setup.config.brokers.as_deref())?;
        let (schema, snapshot, sub) = d.subscribe_sink(&setup.from)?;
        (setup, brokers, schema, snapshot, sub)
    };
    let producer = producer(&brokers)?;
    let topic = setup.config.topic.clone();
    let data = datafusion::arrow::compute::concat_batches(&schema, snapshot.iter())?;
    let mut pending = vec![ChangeBatch::inserts(data)];
    set_state(db, name, "running");
    loop {
        for delta in pending.drain(..) {
            let (keys, values) = keys_and_values(&delta.data, &setup.shape)?;
            let records = if setup.upsert {
                upsert_records(&delta, keys, values)
            } else {
                plain_records(&delta, keys, values)
            };
            let n = records.len();
            send(&producer, &topic, records).await?;
            if let Some(d) = db.upgrade() {
                d.kafka().update(name, |s| s.records += n as u64);
            }
        }
        match sub.rx.recv().await {
            Some(Event::Changes(_, delta)) => {
                pending.push(visible(delta, &schema)?);
                // Take whatever else is already there, to send it together.
                while let Ok(Event::Changes(_, more)) = sub.rx.try_recv() {
                    pending.push(visible(more, &schema)?);
                }
            }
            Some(Event::Closed(reason)) => {
                set_state(db, name, format!("stopped: {reason}"));
                return Ok(());
            }
            None if sub.lagged() => {
                return Err(EddyError::Kafka("the sink fell behind its relation".into()))
            }
            None => return Ok(()),
        }
    }
}

/// A delta's visible columns (subscribers get whole rows; hidden columns stay hidden).
fn visible(
    delta: ChangeBatch,
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Result<ChangeBatch> {
    let idx = schema
        .fields()
        .iter()
        .map(|f| delta.data.schema().index_of(f.name()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let data = delta.data.project(&idx)?;
    Ok(ChangeBatch::new(data, delta.weights).with_schema(schema.clone())?)
}

fn set_state(db: &Db, name: &str, state: impl Into<String>) {
    if let Some(d) = db.upgrade() {
        d.kafka().set_state(name, state);
    }
}

fn producer(brokers: &str) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.ms", "5")
        .set("log_level", "3")
        .create()?)
}

/// Produce records and wait until the broker has them all.
pub async fn send(producer: &FutureProducer, topic: &str, records: Vec<Record>) -> Result<()> {
    let mut waits = Vec::with_capacity(records.len());
    for (key, value) in &records {
        let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(k) = key {
            r = r.key(k.as_slice());
        }
        if let Some(v) = value {
            r = r.payload(v.as_slice());
        }
        waits.push(producer.send(r, Duration::from_secs(30)));
    }
    for w in futures::future::join_all(waits).await {
        w.map_err(|(e, _)| EddyError::Kafka(format!("producing to {topic}: {e}")))?;
    }
    Ok(())
}

/// Produce once (an INSERT into a Kafka-backed relation).
pub async fn produce_all(brokers: &str, topic: &str, records: Vec<Record>) -> Result<()> {
    let p = producer(brokers)?;
    send(&p, topic, records).await
}

/// One JSON object per row (NULL columns left out).
pub fn json_rows(batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    if batch.num_rows() == 0 {
        return Ok(vec![]);
    }
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
        w.write(batch)?;
        w.finish()?;
    }
    Ok(buf
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Each row's record key (None: no key) and value, as the sink's shape says.
fn keys_and_values(
    rows: &RecordBatch,
    shape: &RecordShape,
) -> Result<(Vec<Option<Vec<u8>>>, Vec<Vec<u8>>)> {
    let n = rows.num_rows();
    let values = json_rows(&rows.project(&shape.value_columns)?)?;
    let values = if values.len() == n {
        values
    } else {
        // No value column at all: ksqlDB writes an empty JSON object.
        vec![b"{}".to_vec(); n]
    };
    if shape.key_columns.is_empty() && shape.window.is_none() {
        return Ok((vec![None; n], values));
    }
    let key_rows = rows.project(&shape.key_columns)?;
    let mut keys: Vec<Option<Vec<u8>>> = match shape.key_format {
        None => json_rows(&key_rows)?.into_iter().map(Some).collect(),
        Some(_) if shape.key_columns.is_empty() => vec![Some(Vec::new()); n],
        Some(Format::Json) if shape.key_columns.len() == 1 => json_values(key_rows.column(0))?
            .into_iter()
            .map(Some)
            .collect(),
        // A NULL key column is a record without a key (the KAFKA format has no NULL).
        Some(Format::Kafka) => (0..n)
            .map(|i| {
                if key_rows.column(0).is_null(i) {
                    Ok(None)
                } else {
                    Ok(encode(Format::Kafka, &key_rows.slice(i, 1))?.pop())
                }
            })
            .collect::<Result<_>>()?,
        Some(f) => encode(f, &key_rows)?.into_iter().map(Some).collect(),
    };
    if let Some(w) = shape.window {
        let start = epoch_millis(rows.column(w.start))?;
        let end = epoch_millis(rows.column(w.end))?;
        for (i, k) in keys.iter_mut().enumerate() {
            let k = k.get_or_insert_with(Vec::new);
            if let Some(gap) = w.session_gap {
                k.extend_from_slice(&(end[i] - gap).to_be_bytes());
            }
            k.extend_from_slice(&start[i].to_be_bytes());
        }
    }
    Ok((keys, values))
}

/// A single key column as bare JSON values (ksqlDB's JSON key of one column).
fn json_values(column: &datafusion::arrow::array::ArrayRef) -> Result<Vec<Vec<u8>>> {
    use datafusion::arrow::datatypes::{Field, Schema};
    let schema = std::sync::Arc::new(Schema::new(vec![Field::new(
        "k",
        column.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema, vec![column.clone()])?;
    json_rows(&batch)?
        .into_iter()
        .map(|row| {
            let v: serde_json::Value = serde_json::from_slice(&row)
                .map_err(|e| EddyError::internal(format!("JSON key: {e}")))?;
            Ok(v.get("k")
                .cloned()
                .unwrap_or(serde_json::Value::Null)
                .to_string()
                .into_bytes())
        })
        .collect()
}

/// Window bounds as epoch milliseconds.
fn epoch_millis(column: &datafusion::arrow::array::ArrayRef) -> Result<Vec<i64>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int64Type, TimeUnit};
    let per_ms = match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => -1000,
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Int64 => 1,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1_000_000,
        other => {
            return Err(EddyError::internal(format!(
                "a window bound of type {other}"
            )))
        }
    };
    let ints = datafusion::arrow::compute::cast(column, &DataType::Int64)?;
    let ints = ints.as_primitive::<Int64Type>();
    Ok((0..ints.len())
        .map(|i| {
            let v = ints.value(i);
            if per_ms < 0 {
                v.saturating_mul(-per_ms)
            } else {
                v.div_euclid(per_ms)
            }
        })
        .collect())
}

fn plain_records(
    delta: &ChangeBatch,
    keys: Vec<Option<Vec<u8>>>,
    values: Vec<Vec<u8>>,
) -> Vec<Record> {
    let mut out = Vec::new();
    for (i, (k, v)) in keys.into_iter().zip(values).enumerate() {
        for _ in 0..delta.weights.value(i).max(0) {
            out.push((k.clone(), Some(v.clone())));
        }
    }
    out
}

/// Per key in the delta: the row it has now, or a tombstone.
fn upsert_records(
    delta: &ChangeBatch,
    keys: Vec<Option<Vec<u8>>>,
    values: Vec<Vec<u8>>,
) -> Vec<Record> {
    let mut order: Vec<Option<Vec<u8>>> = Vec::new();
    let mut state: HashMap<Option<Vec<u8>>, Option<Vec<u8>>> = HashMap::new();
    for pass_inserts in [false, true] {
        for i in 0..delta.len() {
            let w = delta.weights.value(i);
            if (w > 0) != pass_inserts || w == 0 {
                continue;
            }
            let k = keys[i].clone();
            if !state.contains_key(&k) {
                order.push(k.clone());
            }
            if pass_inserts {
                state.insert(k, Some(values[i].clone()));
            } else {
                state.entry(k).or_insert(None);
            }
        }
    }
    order
        .into_iter()
        .map(|k| {
            let v = state.remove(&k).flatten();
            (k, v)
        })
        .collect()
}

/// Rows INSERTed into a Kafka-backed relation, as the records its source would read back.
pub fn encode_source_rows(layout: &Layout, rows: &RecordBatch) -> Result<Vec<Record>> {
    let cols = |role: Role| -> Vec<usize> {
        (0..layout.roles.len())
            .filter(|i| layout.roles[*i] == role)
            .collect()
    };
    let (key_cols, value_cols) = (cols(Role::Key), cols(Role::Value));
    let values = encode(layout.value_format, &rows.project(&value_cols)?)?;
    let keys: Vec<Option<Vec<u8>>> = if key_cols.is_empty() {
        vec![None; rows.num_rows()]
    } else {
        encode(layout.key_format, &rows.project(&key_cols)?)?
            .into_iter()
            .map(Some)
            .collect()
    };
    Ok(keys.into_iter().zip(values.into_iter().map(Some)).collect())
}

fn encode(format: Format, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let n = batch.num_rows();
    match format {
        Format::Json => json_rows(batch),
        Format::Delimited => (0..n)
            .map(|i| {
                let fields: Vec<String> = batch
                    .columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(i) {
                            return Ok(String::new());
                        }
                        let s = array_value_to_string(c, i)?;
                        Ok(if s.contains([',', '"', '\n']) || s.is_empty() {
                            format!("\"{}\"", s.replace('"', "\"\""))
                        } else {
                            s
                        })
                    })
                    .collect::<Result<_>>()?;
                Ok(fields.join(",").into_bytes())
            })
            .collect(),
        Format::Kafka => {
            if batch.num_columns() != 1 {
                return Err(EddyError::unsupported("the KAFKA format holds one column"));
            }
            let c = batch.column(0);
            (0..n)
                .map(|i| {
                    if c.is_null(i) {
                        return Err(EddyError::unsupported("a NULL in a KAFKA-format column"));
                    }
                    use datafusion::arrow::array::AsArray;
                    use datafusion::arrow::datatypes::{Float64Type, Int32Type, Int64Type};
                    Ok(match c.data_type() {
                        DataType::Int32 => c
                            .as_primitive::<Int32Type>()
                            .value(i)
                            .to_be_bytes()
                            .to_vec(),
                        DataType::Int64 => c
                            .as_primitive::<Int64Type>()
                            .value(i)
                            .to_be_bytes()
                            .to_vec(),
                        DataType::Float64 => c
                            .as_primitive::<Float64Type>()
                            .value(i)
                            .to_be_bytes()
                            .to_vec(),
                        _ => array_value_to_string(c, i)?.into_bytes(),
                    })
                })
                .collect()
        }
    }
}
