//! Equi-join of two inputs, INNER or LEFT OUTER, maintained incrementally.
//!
//! Deltas arrive one input at a time within an epoch, which gives the bilinear rule
//! Δ(A⋈B) = ΔA⋈B + A⋈ΔB + ΔA⋈ΔB: a left delta joins the right state as it is, then enters
//! the left state; a right delta then joins the updated left state.
//!
//! State: per join key, the multiset of rows of each *stored* side. A side that is an
//! append-only stream is not stored (ksqlDB stream–table semantics): each stream row joins
//! the table as it is when the row arrives, and a later table change does not rewrite
//! output already produced — so state stays bounded by the table.
//!
//! LEFT OUTER: a left row with no match is emitted padded with NULLs; when its key gains its
//! first right match the padded row is retracted, and re-emitted when the last match goes.
//! Rows with a NULL in the key never match (SQL equality).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows};
use datafusion::common::HashMap;
use datafusion::physical_expr::PhysicalExpr;

use crate::dataflow::batch::{row_converter, row_converter_for, ChangeBatch};
use crate::dataflow::operator::Operator;
use crate::error::{EddyError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
}

#[derive(Default)]
struct KeyRows {
    /// Row (row format) → multiplicity.
    rows: HashMap<Vec<u8>, i64>,
    total: i64,
}

pub struct JoinOp {
    kind: JoinKind,
    keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    key_types: Vec<DataType>,
    schemas: [SchemaRef; 2],
    output: SchemaRef,
    key_converter: RowConverter,
    converters: [RowConverter; 2],
    /// `None` for a side that is not stored (an append-only stream).
    state: [Option<HashMap<Vec<u8>, KeyRows>>; 2],
    /// The right side's all-NULL row, for LEFT padding.
    null_right: Vec<u8>,
}

impl JoinOp {
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        kind: JoinKind,
        left_keys: Vec<Arc<dyn PhysicalExpr>>,
        right_keys: Vec<Arc<dyn PhysicalExpr>>,
        left: SchemaRef,
        right: SchemaRef,
        output: SchemaRef,
        store_left: bool,
        store_right: bool,
    ) -> Result<Self> {
        let key_types = left_keys
            .iter()
            .map(|k| k.data_type(&left).map_err(EddyError::from))
            .collect::<Result<Vec<_>>>()?;
        let right_conv = row_converter(&right)?;
        let nulls: Vec<ArrayRef> = right
            .fields()
            .iter()
            .map(|f| datafusion::arrow::array::new_null_array(f.data_type(), 1))
            .collect();
        let null_right = right_conv.convert_columns(&nulls)?.row(0).data().to_vec();
        Ok(JoinOp {
            kind,
            key_converter: row_converter_for(&key_types)?,
            key_types,
            keys: [left_keys, right_keys],
            converters: [row_converter(&left)?, right_conv],
            schemas: [left, right],
            output,
            state: [
                store_left.then(HashMap::new),
                store_right.then(HashMap::new),
            ],
            null_right,
        })
    }

    /// Join keys of a batch from side `side` (None where a key column is NULL).
    fn keys(&self, side: usize, batch: &RecordBatch) -> Result<(Rows, Vec<bool>)> {
        let n = batch.num_rows();
        let mut cols = Vec::new();
        for (k, ty) in self.keys[side].iter().zip(&self.key_types) {
            let a = k.evaluate(batch)?.into_array(n)?;
            cols.push(if a.data_type() == ty {
                a
            } else {
                cast(&a, ty)?
            });
        }
        let valid = (0..n).map(|i| cols.iter().all(|c| c.is_valid(i))).collect();
        Ok((self.key_converter.convert_columns(&cols)?, valid))
    }

    fn build(&self, out: Vec<(i64, Vec<u8>, Vec<u8>)>) -> Result<ChangeBatch> {
        if out.is_empty() {
            return Ok(ChangeBatch::empty(self.output.clone()));
        }
        let lp = self.converters[0].parser();
        let rp = self.converters[1].parser();
        let mut columns =
            self.converters[0].convert_rows(out.iter().map(|(_, l, _)| lp.parse(l)))?;
        columns.extend(self.converters[1].convert_rows(out.iter().map(|(_, _, r)| rp.parse(r)))?);
        let weights = Int64Array::from(out.iter().map(|(w, _, _)| *w).collect::<Vec<_>>());
        Ok(ChangeBatch::new(
            RecordBatch::try_new(self.output.clone(), columns)?,
            weights,
        ))
    }
}

fn add(state: &mut HashMap<Vec<u8>, KeyRows>, key: &[u8], row: &[u8], w: i64) -> Result<()> {
    let entry = state.entry(key.to_vec()).or_default();
    entry.total += w;
    let c = entry.rows.entry(row.to_vec()).or_insert(0);
    *c += w;
    if *c == 0 {
        entry.rows.remove(row);
    } else if *c < 0 {
        return Err(EddyError::internal(
            "join state retracted a row it never had",
        ));
    }
    if entry.total == 0 {
        state.remove(key);
    }
    Ok(())
}

impl Operator for JoinOp {
    fn process(&mut self, input: usize, batch: ChangeBatch) -> Result<ChangeBatch> {
        if batch.is_empty() {
            return Ok(ChangeBatch::empty(self.output.clone()));
        }
        let side = input.min(1);
        let other = 1 - side;
        let data = RecordBatch::try_new(self.schemas[side].clone(), batch.data.columns().to_vec())?;
        let (keys, valid) = self.keys(side, &data)?;
        let rows = self.converters[side].convert_columns(data.columns())?;
        let mut out: Vec<(i64, Vec<u8>, Vec<u8>)> = Vec::new();
        let pair = |mine: &[u8], theirs: &[u8]| -> (Vec<u8>, Vec<u8>) {
            if side == 0 {
                (mine.to_vec(), theirs.to_vec())
            } else {
                (theirs.to_vec(), mine.to_vec())
            }
        };
        for i in 0..batch.len() {
            let w = batch.weights.value(i);
            let row = rows.row(i);
            let row = row.data();
            if !valid[i] {
                // A NULL key never matches; a LEFT row still appears, padded.
                if side == 0 && self.kind == JoinKind::Left {
                    out.push((w, row.to_vec(), self.null_right.clone()));
                }
                continue;
            }
            let key = keys.row(i);
            let key = key.data();
            let matches = self.state[other].as_ref().and_then(|s| s.get(key));
            if let Some(m) = matches {
                for (r, c) in &m.rows {
                    let (l, rr) = pair(row, r);
                    out.push((w * c, l, rr));
                }
            }
            if self.kind == JoinKind::Left {
                if side == 0 {
                    if matches.map(|m| m.total).unwrap_or(0) == 0 {
                        out.push((w, row.to_vec(), self.null_right.clone()));
                    }
                } else if let Some(lefts) = self.state[0].as_ref().and_then(|s| s.get(key)) {
                    let before = self.state[1]
                        .as_ref()
                        .and_then(|s| s.get(key))
                        .map(|m| m.total)
                        .unwrap_or(0);
                    let after = before + w;
                    let flip = if before == 0 && after > 0 {
                        -1
                    } else if before > 0 && after == 0 {
                        1
                    } else {
                        0
                    };
                    if flip != 0 {
                        for (l, c) in &lefts.rows {
                            out.push((flip * c, l.clone(), self.null_right.clone()));
                        }
                    }
                }
            }
            if let Some(state) = self.state[side].as_mut() {
                add(state, key, row, w)?;
            }
        }
        self.build(out)?.consolidate()
    }

    fn describe(&self) -> String {
        let stored = |s: usize| {
            if self.state[s].is_some() {
                "stored"
            } else {
                "stream, not stored"
            }
        };
        format!(
            "Join {:?}: on [{}] = [{}]; left {}, right {}",
            self.kind,
            self.keys[0]
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.keys[1]
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            stored(0),
            stored(1)
        )
    }

    fn state_rows(&self) -> usize {
        self.state
            .iter()
            .flatten()
            .flat_map(|s| s.values())
            .map(|k| k.total.max(0) as usize)
            .sum()
    }
}
