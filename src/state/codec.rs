//! Log entry encoding: a tag byte, then either UTF-8 SQL or a relation name and an Arrow
//! IPC stream whose last column holds the weights.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

use crate::core::batch::ChangeBatch;
use crate::error::{EddyError, Result};

const TAG_DDL: u8 = 1;
const TAG_CHANGES: u8 = 2;
const TAG_KAFKA_OFFSETS: u8 = 3;
/// Far from the other tags so that other entry kinds can be added without clashing.
const TAG_GENERATED: u8 = 10;
const TAG_CHECKPOINT: u8 = 11;
const WEIGHT_COLUMN: &str = "__eddy_weight";

#[derive(Debug, Clone)]
pub enum LogEntry {
    /// A catalog change, as the statement text that made it.
    Ddl(String),
    /// A delta accepted into a base relation.
    Changes {
        relation: String,
        batch: ChangeBatch,
    },
    /// Where a Kafka source stands: for each partition, the next offset to read. Appended in
    /// the same atomic write as the changes consumed up to there, so a restart resumes
    /// exactly where the committed views are.
    KafkaOffsets {
        relation: String,
        offsets: Vec<(i32, i64)>,
    },
    /// A built-in generator (nexmark, datagen) has produced its first `events` events
    /// and they were applied as the epochs between this entry and the previous one of the
    /// same source: replay regenerates them instead of reading logged rows.
    Generated { source: String, events: u64 },
    /// Checkpoint `id` holds everything logged before this entry (see
    /// `database/checkpoint.rs`): a restart from that checkpoint replays only what follows.
    Checkpoint { id: u64 },
}

impl LogEntry {
    pub fn encode(&self) -> Result<Vec<u8>> {
        match self {
            LogEntry::Ddl(sql) => {
                let mut out = vec![TAG_DDL];
                out.extend_from_slice(sql.as_bytes());
                Ok(out)
            }
            LogEntry::Checkpoint { id } => {
                let mut out = vec![TAG_CHECKPOINT];
                out.extend_from_slice(&id.to_be_bytes());
                Ok(out)
            }
            LogEntry::Generated { source, events } => {
                let mut out = vec![TAG_GENERATED];
                out.extend_from_slice(&events.to_be_bytes());
                out.extend_from_slice(source.as_bytes());
                Ok(out)
            }
            LogEntry::Changes { relation, batch } => {
                let mut out = vec![TAG_CHANGES];
                let name = relation.as_bytes();
                out.extend_from_slice(&(name.len() as u32).to_be_bytes());
                out.extend_from_slice(name);
                let data = &batch.data;
                let mut fields: Vec<Field> = data
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                fields.push(Field::new(WEIGHT_COLUMN, DataType::Int64, false));
                let schema = Arc::new(Schema::new(fields));
                let mut columns = data.columns().to_vec();
                columns.push(Arc::new(batch.weights.clone()));
                let with_weights = RecordBatch::try_new(schema.clone(), columns)?;
                let mut w = StreamWriter::try_new(&mut out, &schema)?;
                w.write(&with_weights)?;
                w.finish()?;
                drop(w);
                Ok(out)
            }
            LogEntry::KafkaOffsets { relation, offsets } => {
                let mut out = vec![TAG_KAFKA_OFFSETS];
                let name = relation.as_bytes();
                out.extend_from_slice(&(name.len() as u32).to_be_bytes());
                out.extend_from_slice(name);
                out.extend_from_slice(&(offsets.len() as u32).to_be_bytes());
                for (p, o) in offsets {
                    out.extend_from_slice(&p.to_be_bytes());
                    out.extend_from_slice(&o.to_be_bytes());
                }
                Ok(out)
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = || EddyError::Storage("corrupt log entry".into());
        match bytes.first() {
            Some(&TAG_DDL) => Ok(LogEntry::Ddl(
                String::from_utf8(bytes[1..].to_vec()).map_err(|_| corrupt())?,
            )),
            Some(&TAG_CHANGES) => {
                let len = u32::from_be_bytes(
                    bytes
                        .get(1..5)
                        .ok_or_else(corrupt)?
                        .try_into()
                        .map_err(|_| corrupt())?,
                ) as usize;
                let name = bytes.get(5..5 + len).ok_or_else(corrupt)?;
                let relation = String::from_utf8(name.to_vec()).map_err(|_| corrupt())?;
                let reader = StreamReader::try_new(Cursor::new(&bytes[5 + len..]), None)?;
                let mut batches = Vec::new();
                for b in reader {
                    batches.push(b?);
                }
                let b = batches.pop().ok_or_else(corrupt)?;
                let n = b.num_columns();
                let weights = b
                    .column(n - 1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(corrupt)?
                    .clone();
                let mut schema = b.schema().as_ref().clone();
                schema = Schema::new(schema.fields()[..n - 1].to_vec());
                let data = RecordBatch::try_new(Arc::new(schema), b.columns()[..n - 1].to_vec())?;
                Ok(LogEntry::Changes {
                    relation,
                    batch: ChangeBatch::new(data, weights),
                })
            }
            Some(&TAG_KAFKA_OFFSETS) => {
                let mut at = 1;
                let mut take = |n: usize| -> Result<&[u8]> {
                    let s = bytes.get(at..at + n).ok_or_else(corrupt)?;
                    at += n;
                    Ok(s)
                };
                let be32 = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap_or([0; 4]));
                let len = be32(take(4)?) as usize;
                let relation = String::from_utf8(take(len)?.to_vec()).map_err(|_| corrupt())?;
                let count = be32(take(4)?) as usize;
                let mut offsets = Vec::with_capacity(count.min(1 << 16));
                for _ in 0..count {
                    let p = i32::from_be_bytes(take(4)?.try_into().map_err(|_| corrupt())?);
                    let o = i64::from_be_bytes(take(8)?.try_into().map_err(|_| corrupt())?);
                    offsets.push((p, o));
                }
                Ok(LogEntry::KafkaOffsets { relation, offsets })
            }
            Some(&TAG_GENERATED) => {
                let events = u64::from_be_bytes(
                    bytes
                        .get(1..9)
                        .ok_or_else(corrupt)?
                        .try_into()
                        .map_err(|_| corrupt())?,
                );
                let source = String::from_utf8(bytes[9..].to_vec()).map_err(|_| corrupt())?;
                Ok(LogEntry::Generated { source, events })
            }
            Some(&TAG_CHECKPOINT) => Ok(LogEntry::Checkpoint {
                id: u64::from_be_bytes(
                    bytes
                        .get(1..9)
                        .ok_or_else(corrupt)?
                        .try_into()
                        .map_err(|_| corrupt())?,
                ),
            }),
            _ => Err(corrupt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_offsets_round_trip() {
        let e = LogEntry::KafkaOffsets {
            relation: "clicks".into(),
            offsets: vec![(0, 17), (3, 1 << 40)],
        };
        match LogEntry::decode(&e.encode().unwrap()).unwrap() {
            LogEntry::KafkaOffsets { relation, offsets } => {
                assert_eq!(relation, "clicks");
                assert_eq!(offsets, vec![(0, 17), (3, 1 << 40)]);
            }
            other => panic!("decoded {other:?}"),
        }
        let mut cut = e.encode().unwrap();
        cut.truncate(cut.len() - 3);
        assert!(LogEntry::decode(&cut).is_err());
    }

    #[test]
    fn generated_entry_round_trips() {
        let e = LogEntry::Generated {
            source: "nexmark".into(),
            events: 1 << 40,
        };
        match LogEntry::decode(&e.encode().unwrap()).unwrap() {
            LogEntry::Generated { source, events } => {
                assert_eq!((source.as_str(), events), ("nexmark", 1 << 40))
            }
            other => panic!("{other:?}"),
        }
        assert!(LogEntry::decode(&[TAG_GENERATED, 1, 2]).is_err());
    }
}
