//! `datagen`: random rows of a stream's declared schema, reproducible from a seed.
//!
//! Row `n` is drawn from a generator seeded with (seed, n) alone, so any range of rows can
//! be regenerated exactly. Timestamp and date columns advance with the row number
//! (`base time + n × step`), so a datagen stream's event time is in order and windows over
//! it close; the other columns are uniform: integers in `[0, key_range)`, floats in
//! `[0, 1000)`, strings of 1–12 lowercase letters, booleans fair coins.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::Generator;
use crate::error::{EddyError, Result};

/// Configuration of one datagen stream.
#[derive(Debug, Clone)]
pub struct DatagenOptions {
    pub seed: u64,
    /// Integers are drawn from `[0, key_range)`.
    pub key_range: i64,
    /// Time of row 0, µs since the epoch.
    pub base_time_us: i64,
    /// Event time between rows, µs.
    pub step_us: i64,
}

impl Default for DatagenOptions {
    fn default() -> Self {
        DatagenOptions {
            seed: 0,
            key_range: 1000,
            base_time_us: super::nexmark::DEFAULT_BASE_TIME_MS as i64 * 1000,
            step_us: 1000,
        }
    }
}

pub struct DatagenGenerator {
    stream: String,
    schema: SchemaRef,
    options: DatagenOptions,
}

impl DatagenGenerator {
    /// Refuses (0A000) column types datagen cannot draw.
    pub fn try_new(stream: String, schema: SchemaRef, options: DatagenOptions) -> Result<Self> {
        if options.key_range <= 0 {
            return Err(EddyError::query("22023", "key_range must be positive"));
        }
        for f in schema.fields() {
            match f.data_type() {
                DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(_, _)
                | DataType::Utf8
                | DataType::Boolean
                | DataType::Date32
                | DataType::Timestamp(TimeUnit::Microsecond, _) => {}
                other => {
                    return Err(EddyError::unsupported(format!(
                        "datagen cannot generate column \"{}\" of type {}",
                        f.name(),
                        crate::sql::types::pg_type_name(other)
                    )))
                }
            }
        }
        Ok(DatagenGenerator {
            stream,
            schema,
            options,
        })
    }

    fn row_rng(&self, row: u64) -> SmallRng {
        SmallRng::seed_from_u64(
            self.options
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(row),
        )
    }
}

impl Generator for DatagenGenerator {
    fn streams(&self) -> Vec<String> {
        vec![self.stream.clone()]
    }

    fn generate(&self, from: u64, to: u64) -> Result<Vec<RecordBatch>> {
        let n = to.saturating_sub(from) as usize;
        let mut rngs: Vec<SmallRng> = (from..to).map(|r| self.row_rng(r)).collect();
        let o = &self.options;
        let time_of = |row: u64| o.base_time_us + row as i64 * o.step_us;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for f in self.schema.fields() {
            let col: ArrayRef = match f.data_type() {
                DataType::Int16 => {
                    let mut b = Int16Builder::with_capacity(n);
                    let hi = o.key_range.min(i16::MAX as i64) as i16;
                    rngs.iter_mut()
                        .for_each(|r| b.append_value(r.gen_range(0..hi)));
                    Arc::new(b.finish())
                }
                DataType::Int32 => {
                    let mut b = Int32Builder::with_capacity(n);
                    let hi = o.key_range.min(i32::MAX as i64) as i32;
                    rngs.iter_mut()
                        .for_each(|r| b.append_value(r.gen_range(0..hi)));
                    Arc::new(b.finish())
                }
                DataType::Int64 => {
                    let mut b = Int64Builder::with_capacity(n);
                    rngs.iter_mut()
                        .for_each(|r| b.append_value(r.gen_range(0..o.key_range)));
                    Arc::new(b.finish())
                }
                DataType::Float32 => {
                    let mut b = Float32Builder::with_capacity(n);
                    rngs.iter_mut()
                        .for_each(|r| b.append_value(r.gen::<f32>() * 1000.0));
                    Arc::new(b.finish())
                }
                DataType::Float64 => {
                    let mut b = Float64Builder::with_capacity(n);
                    rngs.iter_mut()
                        .for_each(|r| b.append_value(r.gen::<f64>() * 1000.0));
                    Arc::new(b.finish())
                }
                DataType::Decimal128(p, s) => {
                    let mut b = Decimal128Builder::with_capacity(n);
                    // Up to 1000 in whole units, within the precision.
                    let max = 10i128.pow((*p as u32).min(38)) - 1;
                    let hi = (1000i128 * 10i128.pow(*s as u32)).min(max).max(1);
                    rngs.iter_mut()
                        .for_each(|r| b.append_value(r.gen_range(0..hi)));
                    Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
                }
                DataType::Utf8 => {
                    let mut b = StringBuilder::with_capacity(n, n * 7);
                    let mut s = String::new();
                    for r in rngs.iter_mut() {
                        s.clear();
                        let len = r.gen_range(1..=12);
                        s.extend((0..len).map(|_| r.gen_range(b'a'..=b'z') as char));
                        b.append_value(&s);
                    }
                    Arc::new(b.finish())
                }
                DataType::Boolean => {
                    let mut b = BooleanBuilder::with_capacity(n);
                    rngs.iter_mut().for_each(|r| b.append_value(r.gen()));
                    Arc::new(b.finish())
                }
                DataType::Date32 => {
                    let mut b = Date32Builder::with_capacity(n);
                    (from..to).for_each(|row| {
                        b.append_value((time_of(row).div_euclid(86_400_000_000)) as i32)
                    });
                    Arc::new(b.finish())
                }
                DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                    let mut b = TimestampMicrosecondBuilder::with_capacity(n);
                    (from..to).for_each(|row| b.append_value(time_of(row)));
                    Arc::new(b.finish().with_timezone_opt(tz.clone()))
                }
                other => {
                    return Err(EddyError::internal(format!(
                        "datagen type {other} passed validation"
                    )))
                }
            };
            columns.push(col);
        }
        Ok(vec![RecordBatch::try_new(self.schema.clone(), columns)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};

    #[test]
    fn rows_depend_only_on_seed_and_row_number() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let g = DatagenGenerator::try_new("t".into(), schema.clone(), DatagenOptions::default())
            .unwrap();
        let all = g.generate(0, 100).unwrap().remove(0);
        let a = g.generate(0, 37).unwrap().remove(0);
        let b = g.generate(37, 100).unwrap().remove(0);
        let joined = datafusion::arrow::compute::concat_batches(&schema, [&a, &b]).unwrap();
        assert_eq!(joined, all);
        let other = DatagenGenerator::try_new(
            "t".into(),
            schema,
            DatagenOptions {
                seed: 7,
                ..Default::default()
            },
        )
        .unwrap()
        .generate(0, 100)
        .unwrap()
        .remove(0);
        assert_ne!(other.column(0), all.column(0));
        assert_eq!(other.column(2), all.column(2));
    }
}
