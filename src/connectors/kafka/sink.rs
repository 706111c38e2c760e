//! Writing to Kafka: sink tasks, and the rows an INSERT sends to a source's topic.
//!
//! A sink subscribes to its relation (snapshot, then every committed change, taken under
//! the database lock so nothing falls between them) and writes JSON:
//! - plain (append-only relations): one record per inserted row, no key;
//! - upsert (tables, aggregates): per changed key, the new row, or a tombstone (null
//!   value) when the key's row went away. The key is a JSON object of the key columns
//!   (a windowed aggregate's key carries `window_start`/`window_end`).
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
            let records = if setup.upsert {
                upsert_records(&delta, &setup.key_columns)?
            } else {
                plain_records(&delta)?
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

fn plain_records(delta: &ChangeBatch) -> Result<Vec<Record>> {
    let values = json_rows(&delta.data)?;
    let mut out = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        for _ in 0..delta.weights.value(i).max(0) {
            out.push((None, Some(v.clone())));
        }
    }
    Ok(out)
}

/// Per key in the delta: the row it has now, or a tombstone.
fn upsert_records(delta: &ChangeBatch, key_columns: &[usize]) -> Result<Vec<Record>> {
    let keys = json_rows(&delta.data.project(key_columns)?)?;
    let values = json_rows(&delta.data)?;
    let mut order: Vec<Vec<u8>> = Vec::new();
    let mut state: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
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
    Ok(order
        .into_iter()
        .map(|k| {
            let v = state.remove(&k).flatten();
            (Some(k), v)
        })
        .collect())
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
