//! Stream–stream equi-join bounded in time (ksqlDB `WITHIN`): a right row joins a left row of
//! the same key when right.time ∈ [left.time − before, left.time + after].
//!
//! Both inputs are append-only, so the output is too: Δout = ΔL ⋈ R + L ⋈ ΔR (+ ΔL ⋈ ΔR,
//! by processing the inputs in turn). State: each side's rows per key, ordered by time.
//! A row is late — dropped and counted — when its time is before watermark − grace. Once
//! watermark − grace passes the last time a row could still be matched (left: time + after,
//! right: time + before), it is evicted; an OUTER side's row that never matched is emitted
//! then, padded with NULLs, once. So state is bounded by the time bound plus grace.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::RowConverter;
use datafusion::common::HashMap;
use datafusion::physical_expr::PhysicalExpr;

use super::join::JoinKind;
use crate::dataflow::batch::{row_converter, row_converter_for, ChangeBatch};
use crate::dataflow::operator::Operator;
use crate::error::{EddyError, Result};

struct Stored {
    row: Vec<u8>,
    matched: bool,
}

pub struct IntervalJoinOp {
    kind: JoinKind,
    keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    times: [Arc<dyn PhysicalExpr>; 2],
    key_types: Vec<DataType>,
    /// right.time − left.time must lie in [−before, after].
    before: i64,
    after: i64,
    grace: i64,
    schemas: [SchemaRef; 2],
    output: SchemaRef,
    key_converter: RowConverter,
    converters: [RowConverter; 2],
    /// Per side: key → time → rows.
    state: [HashMap<Vec<u8>, BTreeMap<i64, Vec<Stored>>>; 2],
    null_rows: [Vec<u8>; 2],
    watermark: Option<i64>,
    late_rows: u64,
}

impl IntervalJoinOp {
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        kind: JoinKind,
        keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
        times: [Arc<dyn PhysicalExpr>; 2],
        before: i64,
        after: i64,
        grace: i64,
        schemas: [SchemaRef; 2],
        output: SchemaRef,
    ) -> Result<Self> {
        let key_types = keys[0]
            .iter()
            .map(|k| k.data_type(&schemas[0]).map_err(EddyError::from))
            .collect::<Result<Vec<_>>>()?;
        let converters = [row_converter(&schemas[0])?, row_converter(&schemas[1])?];
        let null_rows = [
            super::join::null_row(&schemas[0], &converters[0])?,
            super::join::null_row(&schemas[1], &converters[1])?,
        ];
        Ok(IntervalJoinOp {
            kind,
            key_converter: row_converter_for(&key_types)?,
            key_types,
            keys,
            times,
            before,
            after,
            grace,
            converters,
            schemas,
            output,
            state: [HashMap::new(), HashMap::new()],
            null_rows,
            watermark: None,
            late_rows: 0,
        })
    }

    fn outer(&self, side: usize) -> bool {
        matches!(
            (self.kind, side),
            (JoinKind::Left | JoinKind::Full, 0) | (JoinKind::Right | JoinKind::Full, 1)
        )
    }

    /// The range of the other side's times a row of `side` at time `t` matches.
    fn range(&self, side: usize, t: i64) -> (i64, i64) {
        if side == 0 {
            (t.saturating_sub(self.before), t.saturating_add(self.after))
        } else {
            (t.saturating_sub(self.after), t.saturating_add(self.before))
        }
    }

    /// The last time a row of `side` at `t` can still find a match.
    fn horizon(&self, side: usize, t: i64) -> i64 {
        t.saturating_add(if side == 0 { self.after } else { self.before })
    }

    fn build(&self, out: Vec<(Vec<u8>, Vec<u8>)>) -> Result<ChangeBatch> {
        super::join::joined_rows(
            &self.converters,
            &self.output,
            out.into_iter().map(|(l, r)| (1, l, r)).collect(),
        )
    }
}

impl Operator for IntervalJoinOp {
    fn process(&mut self, input: usize, batch: ChangeBatch) -> Result<ChangeBatch> {
        if !batch.is_insert_only() {
            return Err(EddyError::internal(
                "a stream-stream join received a retraction",
            ));
        }
        let side = input.min(1);
        let other = 1 - side;
        let n = batch.len();
        let data = RecordBatch::try_new(self.schemas[side].clone(), batch.data.columns().to_vec())?;
        let times =
            crate::database::event_times(&self.times[side].evaluate(&data)?.into_array(n)?)?;
        let mut key_cols = Vec::new();
        for (k, ty) in self.keys[side].iter().zip(&self.key_types) {
            let a = k.evaluate(&data)?.into_array(n)?;
            key_cols.push(if a.data_type() == ty {
                a
            } else {
                cast(&a, ty)?
            });
        }
        let keys = self.key_converter.convert_columns(&key_cols)?;
        let rows = self.converters[side].convert_columns(data.columns())?;
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for i in 0..n {
            let copies = batch.weights.value(i);
            let Some(t) = times[i] else { continue };
            if matches!(self.watermark, Some(w) if t < w.saturating_sub(self.grace)) {
                self.late_rows += copies as u64;
                continue;
            }
            let row = rows.row(i).data().to_vec();
            let key_valid = key_cols.iter().all(|c| c.is_valid(i));
            let key = keys.row(i).data().to_vec();
            let (lo, hi) = self.range(side, t);
            let mut matched = false;
            if key_valid {
                if let Some(theirs) = self.state[other].get_mut(&key) {
                    for (_, stored) in theirs.range_mut(lo..=hi) {
                        for s in stored.iter_mut() {
                            s.matched = true;
                            matched = true;
                            for _ in 0..copies {
                                out.push(if side == 0 {
                                    (row.clone(), s.row.clone())
                                } else {
                                    (s.row.clone(), row.clone())
                                });
                            }
                        }
                    }
                }
            }
            for _ in 0..copies {
                self.state[side]
                    .entry(key.clone())
                    .or_default()
                    .entry(t)
                    .or_default()
                    .push(Stored {
                        row: row.clone(),
                        matched,
                    });
            }
        }
        self.build(out)
    }

    fn on_watermark(&mut self, watermark: i64) -> Result<Option<ChangeBatch>> {
        if matches!(self.watermark, Some(w) if w >= watermark) {
            return Ok(None);
        }
        self.watermark = Some(watermark);
        let cutoff = watermark.saturating_sub(self.grace);
        let mut out = Vec::new();
        for side in 0..2 {
            // Rows whose horizon is before the cutoff can no longer match.
            let last_time = cutoff
                .saturating_sub(if side == 0 { self.after } else { self.before })
                .saturating_sub(1);
            let outer = self.outer(side);
            let null_other = self.null_rows[1 - side].clone();
            for per_key in self.state[side].values_mut() {
                let keep = per_key.split_off(&(last_time.saturating_add(1)));
                let evicted = std::mem::replace(per_key, keep);
                if outer {
                    for s in evicted.into_values().flatten().filter(|s| !s.matched) {
                        out.push(if side == 0 {
                            (s.row, null_other.clone())
                        } else {
                            (null_other.clone(), s.row)
                        });
                    }
                }
            }
            self.state[side].retain(|_, m| !m.is_empty());
            debug_assert!(self.state[side]
                .values()
                .flat_map(|m| m.keys())
                .all(|t| self.horizon(side, *t) >= cutoff));
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.build(out)?))
    }

    fn describe(&self) -> String {
        format!(
            "Interval Join {:?}: on [{}] = [{}], right time within [left − {}s, left + {}s], grace {}s (state retained until the watermark passes the bound)",
            self.kind,
            self.keys[0].iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "),
            self.keys[1].iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "),
            self.before as f64 / 1e6,
            self.after as f64 / 1e6,
            self.grace as f64 / 1e6
        )
    }

    fn state_rows(&self) -> usize {
        self.state
            .iter()
            .flat_map(|s| s.values())
            .flat_map(|m| m.values())
            .map(Vec::len)
            .sum()
    }

    fn late_rows(&self) -> u64 {
        self.late_rows
    }
}
