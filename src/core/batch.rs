//! `ChangeBatch`: an Arrow `RecordBatch` plus one signed weight per row — a Z-set delta.
//! +1 inserts a row, −1 retracts one; an update is −old,+new. Everything that flows between
//! operators is a `ChangeBatch`; weights of equal rows add up, and zero-weight rows mean
//! nothing (see [`ChangeBatch::consolidate`]).

// hashbrown with a fast non-cryptographic hasher: row keys are hashed once per row.
use datafusion::common::HashMap;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub data: RecordBatch,
    /// One weight per row of `data`.
    pub weights: Int64Array,
}

impl ChangeBatch {
    pub fn new(data: RecordBatch, weights: Int64Array) -> Self {
        debug_assert_eq!(data.num_rows(), weights.len());
        ChangeBatch { data, weights }
    }

    /// All rows inserted once (+1).
    pub fn inserts(data: RecordBatch) -> Self {
        let weights = Int64Array::from(vec![1i64; data.num_rows()]);
        ChangeBatch { data, weights }
    }

    /// All rows retracted once (−1).
    pub fn retractions(data: RecordBatch) -> Self {
        let weights = Int64Array::from(vec![-1i64; data.num_rows()]);
        ChangeBatch { data, weights }
    }

    pub fn empty(schema: SchemaRef) -> Self {
        ChangeBatch::inserts(RecordBatch::new_empty(schema))
    }

    pub fn schema(&self) -> SchemaRef {
        self.data.schema()
    }

    pub fn len(&self) -> usize {
        self.data.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.data.num_rows() == 0
    }

    /// True when every weight is positive: the batch only adds rows.
    pub fn is_insert_only(&self) -> bool {
        self.weights.values().iter().all(|w| *w > 0)
    }

    /// Same rows and weights under another schema with the same column types
    /// (a rename: subquery aliases, view column names).
    pub fn with_schema(self, schema: SchemaRef) -> Result<Self> {
        let data = RecordBatch::try_new(schema, self.data.columns().to_vec())?;
        Ok(ChangeBatch {
            data,
            weights: self.weights,
        })
    }

    /// Keep the rows where `mask` is true.
    pub fn filter(&self, mask: &datafusion::arrow::array::BooleanArray) -> Result<Self> {
        let data = filter_record_batch(&self.data, mask)?;
        let weights = datafusion::arrow::compute::filter(&self.weights, mask)?;
        let weights = weights
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("filter of Int64Array is Int64Array")
            .clone();
        Ok(ChangeBatch { data, weights })
    }

    /// Concatenate batches of one schema into one.
    pub fn concat(schema: &SchemaRef, parts: &[ChangeBatch]) -> Result<Self> {
        match parts {
            [] => Ok(ChangeBatch::empty(schema.clone())),
            [one] => Ok(one.clone()),
            _ => {
                let data = concat_batches(schema, parts.iter().map(|p| &p.data))?;
                let weights: Vec<i64> = parts
                    .iter()
                    .flat_map(|p| p.weights.values().iter().copied())
                    .collect();
                Ok(ChangeBatch {
                    data,
                    weights: Int64Array::from(weights),
                })
            }
        }
    }

    /// Sum the weights of equal rows and drop rows whose weight is zero. Order of first
    /// appearance is kept, so consolidation is deterministic.
    pub fn consolidate(self) -> Result<Self> {
        // Only insertions: nothing can cancel, and equal rows may stay separate rows (a
        // multiset is the same either way). The common case for streams, so skip the work.
        if self.is_insert_only() {
            return Ok(self);
        }
        if self.len() <= 1 {
            return Ok(self.drop_zero_weights()?);
        }
        let converter = row_converter(&self.data.schema())?;
        let rows = converter.convert_columns(self.data.columns())?;
        let mut first: HashMap<&[u8], usize> = HashMap::with_capacity(self.len());
        let mut order: Vec<u32> = Vec::new();
        let mut sums: Vec<i64> = Vec::new();
        for (i, w) in self.weights.values().iter().enumerate() {
            let key = rows.row(i).data();
            match first.get(key) {
                Some(slot) => sums[*slot] += w,
                None => {
                    first.insert(key, sums.len());
                    order.push(i as u32);
                    sums.push(*w);
                }
            }
        }
        let (idx, weights): (Vec<u32>, Vec<i64>) =
            order.into_iter().zip(sums).filter(|(_, w)| *w != 0).unzip();
        let indices = UInt32Array::from(idx);
        let columns = take_columns(self.data.columns(), &indices)?;
        let data = RecordBatch::try_new(self.data.schema(), columns)?;
        Ok(ChangeBatch {
            data,
            weights: Int64Array::from(weights),
        })
    }

    fn drop_zero_weights(self) -> Result<Self> {
        if self.weights.values().iter().all(|w| *w != 0) {
            return Ok(self);
        }
        let mask: datafusion::arrow::array::BooleanArray = self
            .weights
            .values()
            .iter()
            .map(|w| Some(*w != 0))
            .collect();
        self.filter(&mask)
    }
}

pub fn take_columns(columns: &[ArrayRef], indices: &UInt32Array) -> Result<Vec<ArrayRef>> {
    columns
        .iter()
        .map(|c| take(c.as_ref(), indices, None).map_err(Into::into))
        .collect()
}

/// A row converter for all columns of `schema`: equal rows get equal bytes, and byte order
/// is the SQL order of the values (used for MIN/MAX state).
pub fn row_converter(schema: &SchemaRef) -> Result<RowConverter> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    Ok(RowConverter::new(fields)?)
}

pub fn row_converter_for(types: &[datafusion::arrow::datatypes::DataType]) -> Result<RowConverter> {
    Ok(RowConverter::new(
        types.iter().map(|t| SortField::new(t.clone())).collect(),
    )?)
}

/// Build a [`ChangeBatch`] from readable rows in tests: `changes!(schema; +1 => [..], -1 => [..])`.
#[cfg(test)]
#[macro_export]
macro_rules! changes {
    ($schema:expr; $($w:expr => [$($v:expr),* $(,)?]),* $(,)?) => {{
        use datafusion::scalar::ScalarValue;
        let schema: datafusion::arrow::datatypes::SchemaRef = $schema;
        let rows: Vec<(i64, Vec<ScalarValue>)> = vec![$(($w, vec![$(ScalarValue::from($v)),*])),*];
        $crate::core::batch::tests_support::build(schema, rows)
    }};
}

#[cfg(test)]
pub mod tests_support {
    use super::*;
    use datafusion::scalar::ScalarValue;

    pub fn build(schema: SchemaRef, rows: Vec<(i64, Vec<ScalarValue>)>) -> ChangeBatch {
        let ncols = schema.fields().len();
        let columns: Vec<ArrayRef> = (0..ncols)
            .map(|c| {
                let values: Vec<ScalarValue> = rows
                    .iter()
                    .map(|(_, r)| {
                        r[c].cast_to(schema.field(c).data_type())
                            .expect("fixture value casts")
                    })
                    .collect();
                if values.is_empty() {
                    datafusion::arrow::array::new_empty_array(schema.field(c).data_type())
                } else {
                    ScalarValue::iter_to_array(values).expect("fixture column")
                }
            })
            .collect();
        let data = RecordBatch::try_new(schema, columns).expect("fixture batch");
        ChangeBatch::new(
            data,
            Int64Array::from(rows.iter().map(|(w, _)| *w).collect::<Vec<_>>()),
        )
    }

    /// Rows of a change batch as readable strings `"+1 a|b"`, sorted.
    pub fn render(batch: &ChangeBatch) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..batch.len() {
            let vals: Vec<String> = batch
                .data
                .columns()
                .iter()
                .map(|c| {
                    ScalarValue::try_from_array(c, i)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                })
                .collect();
            out.push(format!("{:+} {}", batch.weights.value(i), vals.join("|")));
        }
        out.sort();
        out
    }

    /// The rows of a batch as sorted strings `"a|b"`, one per row.
    pub fn render_rows(batch: &RecordBatch) -> Vec<String> {
        let mut out: Vec<String> = (0..batch.num_rows())
            .map(|i| {
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        ScalarValue::try_from_array(c, i)
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        out.sort();
        out
    }

    /// The from-scratch answer: `sql` run by DataFusion over the named tables.
    pub fn datafusion_rows(tables: Vec<(&str, RecordBatch)>, sql: &str) -> Vec<String> {
        use datafusion::datasource::MemTable;
        use datafusion::prelude::SessionContext;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a test runtime");
        rt.block_on(async {
            let ctx = SessionContext::new();
            for (name, batch) in tables {
                let table =
                    MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("a memory table");
                ctx.register_table(name, std::sync::Arc::new(table))
                    .expect("register a table");
            }
            let batches = ctx
                .sql(sql)
                .await
                .expect("the oracle query plans")
                .collect()
                .await
                .expect("the oracle query runs");
            let mut out: Vec<String> = batches.iter().flat_map(render_rows).collect();
            out.sort();
            out
        })
    }

    /// A maintained result: the sum of the committed output deltas, as rows rendered like
    /// [`render_rows`] (a row with multiplicity n appears n times).
    #[derive(Default)]
    pub struct Accumulated(std::collections::BTreeMap<String, i64>);

    impl Accumulated {
        pub fn apply(&mut self, delta: &ChangeBatch) {
            let rows = render(delta);
            for r in rows {
                let (w, row) = r.split_once(' ').expect("rendered as weight and row");
                let w: i64 = w.parse().expect("a weight");
                let c = self.0.entry(row.to_string()).or_insert(0);
                *c += w;
                if *c == 0 {
                    self.0.remove(row);
                }
            }
        }

        /// The rows; panics on a negative multiplicity (a retraction of a row never there).
        pub fn rows(&self) -> Vec<String> {
            let mut out = Vec::new();
            for (row, c) in &self.0 {
                assert!(*c > 0, "row {row} has multiplicity {c}");
                out.extend(std::iter::repeat_n(row.clone(), *c as usize));
            }
            out.sort();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::render;
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    #[test]
    fn consolidate_sums_equal_rows_and_drops_zeros() {
        let b = crate::changes!(schema();
            1 => ["a", 1i64], 1 => ["b", 2i64], -1 => ["a", 1i64], 1 => ["b", 2i64], 1 => ["c", 3i64]);
        let c = b.consolidate().unwrap();
        assert_eq!(render(&c), vec!["+1 c|3", "+2 b|2"]);
    }

    #[test]
    fn consolidate_of_cancelling_batch_is_empty() {
        let b = crate::changes!(schema(); 1 => ["a", 1i64], -1 => ["a", 1i64]);
        assert!(b.consolidate().unwrap().is_empty());
    }
}
