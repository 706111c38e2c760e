//! Decoding Kafka records into rows of a stream or table.
//!
//! Invariant: one bad record never spoils the batch. Each record either becomes one row
//! (or one tombstone, for a keyed table) or one [`BadRecord`] with its position and the
//! reason; the good rows of the batch go on.
//!
//! JSON follows ksqlDB: field names match columns case-insensitively, missing fields are
//! NULL, extra fields are ignored, and values are coerced where the meaning is clear
//! (`"12"` into an INT, `12` into a VARCHAR, epoch milliseconds or ISO-8601 text into a
//! TIMESTAMP; a nested object or array into a VARCHAR as its JSON text).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{cast, cast_with_options, filter_record_batch, CastOptions};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use serde_json::Value;

use super::options::Format;
use crate::error::{EddyError, Result};

/// One record as read from the broker.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// A record that could not be decoded.
#[derive(Debug, Clone)]
pub struct BadRecord {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
}

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Value,
    Key,
    /// The record timestamp (ksqlDB ROWTIME).
    RowTime,
    RowPartition,
    RowOffset,
}

pub const ROWPARTITION: &str = "rowpartition";
pub const ROWOFFSET: &str = "rowoffset";

/// How to turn records into rows of one relation.
#[derive(Debug, Clone)]
pub struct Layout {
    pub schema: SchemaRef,
    pub roles: Vec<Role>,
    pub value_format: Format,
    pub key_format: Format,
    pub timestamp_format: Option<String>,
    /// Keyed table: a null value is a tombstone, the last record of a key in a batch wins.
    pub upsert: bool,
    /// Columns that may not be NULL (declared NOT NULL, or keys of a table).
    pub not_null: Vec<usize>,
}

/// The result of decoding a batch of records.
pub struct Decoded {
    /// Rows to insert (streams) or upsert (tables), in the relation's schema.
    pub rows: RecordBatch,
    /// Keys to delete (tables), as rows whose key columns are set.
    pub tombstones: RecordBatch,
    pub bad: Vec<BadRecord>,
}

impl Layout {
    fn columns_with(&self, role: Role) -> Vec<usize> {
        (0..self.roles.len())
            .filter(|i| self.roles[*i] == role)
            .collect()
    }

    /// Decode a batch. Records must be in offset order within each partition.
    pub fn decode(&self, records: &[RawRecord]) -> Result<Decoded> {
        let n_cols = self.schema.fields().len();
        let value_cols = self.columns_with(Role::Value);
        let key_cols = self.columns_with(Role::Key);
        let lower: HashMap<String, usize> = value_cols
            .iter()
            .map(|&i| (self.schema.field(i).name().to_lowercase(), i))
            .collect();
        let key_lower: HashMap<String, usize> = key_cols
            .iter()
            .map(|&i| (self.schema.field(i).name().to_lowercase(), i))
            .collect();
        // Cells by column, then row; rows are records that decoded so far.
        let mut cells: Vec<Vec<Option<Value>>> = vec![Vec::with_capacity(records.len()); n_cols];
        let mut kept: Vec<usize> = Vec::with_capacity(records.len());
        let mut tombstone: Vec<bool> = Vec::with_capacity(records.len());
        let mut bad = Vec::new();
        for (ri, r) in records.iter().enumerate() {
            let mut row: Vec<Option<Value>> = vec![None; n_cols];
            let res = (|| -> std::result::Result<bool, String> {
                // A stream keeps a record without a key, its key columns NULL (as ksqlDB
                // does); a table cannot place it.
                let key = match r.key.as_deref() {
                    None if self.upsert => return Err("the record has no key".into()),
                    key => key,
                };
                if let (false, Some(key)) = (key_cols.is_empty(), key) {
                    fill(
                        &mut row,
                        key,
                        self.key_format,
                        &key_cols,
                        &key_lower,
                        &self.schema,
                        "key",
                    )?;
                }
                let is_tombstone = match r.value.as_deref() {
                    None if self.upsert => true,
                    None => return Err("the record has no value (a tombstone in a stream)".into()),
                    Some(v) => {
                        fill(
                            &mut row,
                            v,
                            self.value_format,
                            &value_cols,
                            &lower,
                            &self.schema,
                            "value",
                        )?;
                        false
                    }
                };
                if self.upsert {
                    for &k in &key_cols {
                        if row[k].as_ref().is_none_or(Value::is_null) {
                            return Err(format!(
                                "key column \"{}\" is missing",
                                self.schema.field(k).name()
                            ));
                        }
                    }
                }
                Ok(is_tombstone)
            })();
            match res {
                Ok(t) => {
                    for (i, role) in self.roles.iter().enumerate() {
                        match role {
                            Role::RowTime => row[i] = r.timestamp_ms.map(Value::from),
                            Role::RowPartition => row[i] = Some(Value::from(r.partition)),
                            Role::RowOffset => row[i] = Some(Value::from(r.offset)),
                            _ => {}
                        }
                    }
                    for (c, v) in row.into_iter().enumerate() {
                        cells[c].push(v);
                    }
                    kept.push(ri);
                    tombstone.push(t);
                }
                Err(reason) => bad.push(BadRecord {
                    partition: r.partition,
                    offset: r.offset,
                    reason,
                }),
            }
        }
        // Typed columns; a value that does not convert marks its row bad.
        let mut errors: Vec<Option<String>> = vec![None; kept.len()];
        let mut columns = Vec::with_capacity(n_cols);
        for (c, col) in cells.iter().enumerate() {
            let f = self.schema.field(c);
            let is_time = self.roles[c] == Role::RowTime;
            let fmt = if is_time {
                None
            } else {
                self.timestamp_format.as_deref()
            };
            let a = to_array(f.data_type(), col, &mut errors, f.name(), fmt)?;
            if self.not_null.contains(&c) {
                for (i, t) in tombstone.iter().enumerate() {
                    if !*t && a.is_null(i) && errors[i].is_none() {
                        errors[i] = Some(format!(
                            "column \"{}\" is NOT NULL but the record has no value for it",
                            f.name()
                        ));
                    }
                }
            }
            columns.push(a);
        }
        let all = RecordBatch::try_new(self.schema.clone(), columns)?;
        // Last record of a key wins within the batch (tables).
        let mut winner = vec![true; kept.len()];
        if self.upsert {
            let mut last: HashMap<String, usize> = HashMap::new();
            for i in 0..kept.len() {
                if errors[i].is_some() {
                    continue;
                }
                let k: Vec<String> = key_cols
                    .iter()
                    .map(|&c| {
                        datafusion::arrow::util::display::array_value_to_string(all.column(c), i)
                            .unwrap_or_default()
                    })
                    .collect();
                if let Some(prev) = last.insert(k.join("\u{1}"), i) {
                    winner[prev] = false;
                }
            }
        }
        let mut rows_mask = Vec::with_capacity(kept.len());
        let mut tomb_mask = Vec::with_capacity(kept.len());
        for i in 0..kept.len() {
            if let Some(reason) = errors[i].take() {
                let r = &records[kept[i]];
                bad.push(BadRecord {
                    partition: r.partition,
                    offset: r.offset,
                    reason,
                });
                rows_mask.push(false);
                tomb_mask.push(false);
                continue;
            }
            rows_mask.push(winner[i] && !tombstone[i]);
            tomb_mask.push(winner[i] && tombstone[i]);
        }
        bad.sort_by_key(|b| (b.partition, b.offset));
        Ok(Decoded {
            rows: filter_record_batch(&all, &rows_mask.into())?,
            tombstones: filter_record_batch(&all, &tomb_mask.into())?,
            bad,
        })
    }
}

/// Put the fields of a key or value into `row`.
fn fill(
    row: &mut [Option<Value>],
    bytes: &[u8],
    format: Format,
    cols: &[usize],
    by_name: &HashMap<String, usize>,
    schema: &SchemaRef,
    what: &str,
) -> std::result::Result<(), String> {
    if cols.is_empty() {
        return Ok(());
    }
    match format {
        Format::Json => {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| format!("invalid JSON in the {what}: {e}"))?;
            match v {
                Value::Object(map) => {
                    let single_struct_like = cols.len() == 1
                        && !by_name
                            .keys()
                            .any(|k| map.keys().any(|m| m.eq_ignore_ascii_case(k)));
                    if single_struct_like && what == "key" {
                        return Err(format!(
                            "the JSON key has no field \"{}\"",
                            schema.field(cols[0]).name()
                        ));
                    }
                    for (k, v) in map {
                        let idx = by_name.get(&k).or_else(|| by_name.get(&k.to_lowercase()));
                        if let Some(&i) = idx {
                            row[i] = Some(v);
                        }
                    }
                }
                // A bare value is the one column (ksqlDB's unwrapped single key/value).
                other if cols.len() == 1 => row[cols[0]] = Some(other),
                other => {
                    return Err(format!(
                        "the {what} must be a JSON object, not {}",
                        json_kind(&other)
                    ))
                }
            }
        }
        Format::Delimited => {
            let text =
                std::str::from_utf8(bytes).map_err(|_| format!("the {what} is not UTF-8 text"))?;
            let fields = split_delimited(text.trim_end_matches(['\r', '\n']));
            if fields.len() != cols.len() {
                return Err(format!(
                    "the delimited {what} has {} fields, expected {}",
                    fields.len(),
                    cols.len()
                ));
            }
            for (f, &c) in fields.into_iter().zip(cols) {
                row[c] = f.map(Value::String);
            }
        }
        Format::Kafka => {
            if cols.len() != 1 {
                return Err(format!(
                    "the KAFKA format holds one column, but the {what} has {}",
                    cols.len()
                ));
            }
            let c = cols[0];
            row[c] = Some(
                kafka_value(bytes, schema.field(c).data_type())
                    .map_err(|e| format!("{what}: {e}"))?,
            );
        }
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Kafka's serializers: StringSerializer (UTF-8), IntegerSerializer/LongSerializer
/// (big-endian), DoubleSerializer (big-endian IEEE 754).
fn kafka_value(bytes: &[u8], t: &DataType) -> std::result::Result<Value, String> {
    let wrong = |n: usize| format!("expected {n} bytes for {t}, got {}", bytes.len());
    Ok(match t {
        DataType::Int32 | DataType::Int16 | DataType::Int8 => {
            Value::from(i32::from_be_bytes(bytes.try_into().map_err(|_| wrong(4))?))
        }
        DataType::Int64 => Value::from(i64::from_be_bytes(bytes.try_into().map_err(|_| wrong(8))?)),
        DataType::Float64 => {
            Value::from(f64::from_be_bytes(bytes.try_into().map_err(|_| wrong(8))?))
        }
        _ => Value::String(
            String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8 text".to_string())?,
        ),
    })
}

/// Split one line of comma-separated values; `"..."` quotes a field (`""` is a quote).
/// An empty unquoted field is NULL.
pub fn split_delimited(line: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if cur.is_empty() => {
                quoted = true;
                was_quoted = true;
            }
            ',' if !quoted => {
                out.push(if cur.is_empty() && !was_quoted {
                    None
                } else {
                    Some(std::mem::take(&mut cur))
                });
                was_quoted = false;
            }
            c => cur.push(c),
        }
    }
    out.push(if cur.is_empty() && !was_quoted {
        None
    } else {
        Some(cur)
    });
    out
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Build a column of type `t` from JSON cells; a cell that does not convert records an
/// error for its row (the first error of a row is kept).
fn to_array(
    t: &DataType,
    cells: &[Option<Value>],
    errors: &mut [Option<String>],
    name: &str,
    timestamp_format: Option<&str>,
) -> Result<ArrayRef> {
    let mut fail = |i: usize, v: &Value| {
        if errors[i].is_none() {
            let mut shown = text_of(v);
            if shown.len() > 60 {
                let cut = (0..=60)
                    .rev()
                    .find(|c| shown.is_char_boundary(*c))
                    .unwrap_or(0);
                shown.truncate(cut);
                shown.push('…');
            }
            errors[i] = Some(format!(
                "column \"{name}\": cannot convert {} {shown:?} to {}",
                json_kind(v),
                crate::sql::types::pg_type_name(t)
            ));
        }
    };
    let cell = |i: usize| cells[i].as_ref().filter(|v| !v.is_null());
    let n = cells.len();
    Ok(match t {
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(n, n * 8);
            for i in 0..n {
                match cell(i) {
                    None => b.append_null(),
                    Some(Value::String(s)) => b.append_value(s),
                    Some(v) => b.append_value(v.to_string()),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let (lo, hi) = match t {
                DataType::Int8 => (i8::MIN as i64, i8::MAX as i64),
                DataType::Int16 => (i16::MIN as i64, i16::MAX as i64),
                DataType::Int32 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            let mut b = Int64Builder::with_capacity(n);
            for i in 0..n {
                let Some(v) = cell(i) else {
                    b.append_null();
                    continue;
                };
                let parsed = match v {
                    Value::Number(x) => x.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                match parsed.filter(|x| (lo..=hi).contains(x)) {
                    Some(x) => b.append_value(x),
                    None => {
                        fail(i, v);
                        b.append_null()
                    }
                }
            }
            cast(&(Arc::new(b.finish()) as ArrayRef), t)?
        }
        DataType::Float32 | DataType::Float64 => {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                let Some(v) = cell(i) else {
                    vals.push(None);
                    continue;
                };
                let parsed = match v {
                    Value::Number(x) => x.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                if parsed.is_none() {
                    fail(i, v);
                }
                vals.push(parsed);
            }
            if *t == DataType::Float32 {
                let mut b = Float32Builder::with_capacity(n);
                vals.into_iter()
                    .for_each(|v| b.append_option(v.map(|x| x as f32)));
                Arc::new(b.finish())
            } else {
                let mut b = Float64Builder::with_capacity(n);
                vals.into_iter().for_each(|v| b.append_option(v));
                Arc::new(b.finish())
            }
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(n);
            for i in 0..n {
                let Some(v) = cell(i) else {
                    b.append_null();
                    continue;
                };
                let parsed = match v {
                    Value::Bool(x) => Some(*x),
                    Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
                    Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
                    _ => None,
                };
                match parsed {
                    Some(x) => b.append_value(x),
                    None => {
                        fail(i, v);
                        b.append_null()
                    }
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(_, _) => {
            let mut micros = Vec::with_capacity(n);
            for i in 0..n {
                let Some(v) = cell(i) else {
                    micros.push(None);
                    continue;
                };
                let parsed = match v {
                    Value::Number(x) => x.as_i64().and_then(|ms| ms.checked_mul(1000)),
                    Value::String(s) => parse_timestamp(s, timestamp_format),
                    _ => None,
                };
                if parsed.is_none() {
                    fail(i, v);
                }
                micros.push(parsed);
            }
            let a: ArrayRef = Arc::new(TimestampMicrosecondArray::from(micros));
            cast(&a, t)?
        }
        _ => {
            // Everything else (DECIMAL, DATE, TIME, INTERVAL, ...) through Arrow's casts
            // from text; a value the cast turns into NULL did not convert.
            let text: Vec<Option<String>> = (0..n).map(|i| cell(i).map(text_of)).collect();
            let a: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(text));
            let out = cast_with_options(
                &a,
                t,
                &CastOptions {
                    safe: true,
                    ..Default::default()
                },
            )
            .map_err(|e| {
                EddyError::unsupported(format!("column \"{name}\" of type {t} from Kafka: {e}"))
            })?;
            for i in 0..n {
                if let Some(v) = cell(i) {
                    if out.is_null(i) {
                        fail(i, v);
                    }
                }
            }
            out
        }
    })
}

/// A timestamp string: with the source's TIMESTAMP_FORMAT (chrono syntax, e.g.
/// `%Y-%m-%d %H:%M:%S`), or ISO 8601 / SQL text. Returns µs since the epoch (UTC).
fn parse_timestamp(s: &str, format: Option<&str>) -> Option<i64> {
    match format {
        Some(f) => {
            if let Ok(t) = chrono::DateTime::parse_from_str(s, f) {
                return Some(t.timestamp_micros());
            }
            chrono::NaiveDateTime::parse_from_str(s, f)
                .ok()
                .map(|t| t.and_utc().timestamp_micros())
                .or_else(|| {
                    chrono::NaiveDate::parse_from_str(s, f)
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| t.and_utc().timestamp_micros())
                })
        }
        None => {
            datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(s.trim())
                .ok()
                .map(|ns| ns.div_euclid(1000))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use datafusion::arrow::util::pretty::pretty_format_batches;

    fn layout(upsert: bool) -> Layout {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "rowtime",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("rowpartition", DataType::Int32, true),
            Field::new("rowoffset", DataType::Int64, true),
        ]));
        Layout {
            schema,
            roles: vec![
                Role::Key,
                Role::Value,
                Role::Value,
                Role::Value,
                Role::RowTime,
                Role::RowPartition,
                Role::RowOffset,
            ],
            value_format: Format::Json,
            key_format: Format::Kafka,
            timestamp_format: None,
            upsert,
            not_null: if upsert { vec![0] } else { vec![] },
        }
    }

    fn rec(offset: i64, key: Option<&str>, value: Option<&str>) -> RawRecord {
        RawRecord {
            partition: 1,
            offset,
            timestamp_ms: Some(1_700_000_000_000 + offset),
            key: key.map(|k| k.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
        }
    }

    #[test]
    fn json_coercions_and_bad_records() {
        let d = layout(false)
            .decode(&[
                rec(
                    0,
                    Some("a"),
                    Some(r#"{"N": "12", "price": 1.5, "at": 1700000000123, "extra": [1]}"#),
                ),
                rec(
                    1,
                    Some("b"),
                    Some(r#"{"n": 3, "AT": "2024-01-02T03:04:05Z"}"#),
                ),
                rec(2, Some("c"), Some(r#"{"n": "twelve"}"#)),
                rec(3, Some("d"), Some("not json")),
                rec(4, Some("e"), Some(r#"{"n": 99999999999}"#)),
                rec(5, Some("f"), None),
                rec(6, None, Some(r#"{"n": 1}"#)),
            ])
            .unwrap();
        let shown = pretty_format_batches(&[d.rows]).unwrap().to_string();
        assert!(shown.contains("| a  | 12 | 1.50  | 2023-11-14T22:13:20.123 | 2023-11-14T22:13:20     | 1            | 0         |"), "{shown}");
        assert!(
            shown.contains("| b  | 3  |       | 2024-01-02T03:04:05     |"),
            "{shown}"
        );
        let reasons: Vec<(i64, &str)> = d
            .bad
            .iter()
            .map(|b| (b.offset, b.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(
            reasons[0]
                .1
                .contains("cannot convert a string \"twelve\" to integer"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].1.starts_with("invalid JSON in the value"),
            "{reasons:?}"
        );
        assert!(reasons[2].1.contains("99999999999"), "{reasons:?}");
        assert!(reasons[3].1.contains("no value"), "{reasons:?}");
        // A stream record without a key is kept, its key column NULL.
        assert!(shown.contains("|    | 1  |"), "{shown}");
    }

    #[test]
    fn upserts_last_wins_and_tombstones() {
        let d = layout(true)
            .decode(&[
                rec(0, Some("a"), Some(r#"{"n": 1}"#)),
                rec(1, Some("b"), Some(r#"{"n": 2}"#)),
                rec(2, Some("a"), Some(r#"{"n": 3}"#)),
                rec(3, Some("b"), None),
                rec(4, Some("c"), None),
            ])
            .unwrap();
        assert_eq!(d.rows.num_rows(), 1);
        assert_eq!(d.tombstones.num_rows(), 2);
        let shown = pretty_format_batches(&[d.rows]).unwrap().to_string();
        assert!(shown.contains("| a  | 3 "), "{shown}");
        assert!(d.bad.is_empty());
    }

    #[test]
    fn delimited_fields() {
        assert_eq!(
            split_delimited(r#"1,"a, ""b""",,x"#),
            vec![
                Some("1".into()),
                Some("a, \"b\"".into()),
                None,
                Some("x".into())
            ]
        );
    }
}
