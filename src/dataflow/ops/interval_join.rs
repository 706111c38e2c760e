//! Stream–stream equi-join bounded in time (ksqlDB `WITHIN`): a right row joins a left row of
//! the same key when right.time ∈ [left.time − before, left.time + after].
//!
//! Both inputs are append-only, so the output is too: Δout = ΔL ⋈ R + L ⋈ ΔR (+ ΔL ⋈ ΔR,
//! by processing the inputs in turn). State: each side's rows per key, ordered by time.
//! A row is late — dropped and counted — when its time is before watermark − grace. Once
//! watermark − grace passes the last time a row could still be matched (left: time + after,
//! right: time + before), it is evicted; an OUTER side's row that never matched is emitted
//! then, padded with NULLs, once. So state is bounded by the time bound plus grace.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::RowConverter;
use datafusion::physical_expr::PhysicalExpr;

use super::join::JoinKind;
use crate::core::batch::{row_converter, row_converter_for, ChangeBatch};
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::{EddyError, Result};
use crate::state::encoding::{Reader, StateCodec, Writer};
use crate::state::table::{OrderedState, StateTable};

#[derive(Clone)]
struct Stored {
    row: Vec<u8>,
    matched: bool,
}

impl StateCodec for Stored {
    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.bytes(&self.row).bool(self.matched);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Stored {
            row: r.vec()?,
            matched: r.bool()?,
        })
    }
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
    /// Per side: (key, time, arrival number) → row.
    state: [OrderedState<(Vec<u8>, i64, u64), Stored>; 2],
    /// Per side: the same entries by time first, to evict in time order.
    by_time: [OrderedState<(i64, Vec<u8>, u64), ()>; 2],
    /// Makes the stored entries of equal rows distinct. Only ever grows (an aborted
    /// epoch leaves a gap, which is harmless).
    next_seq: u64,
    null_rows: [Vec<u8>; 2],
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
            state: [
                OrderedState::new("left rows"),
                OrderedState::new("right rows"),
            ],
            by_time: [
                OrderedState::new("left rows by time"),
                OrderedState::new("right rows by time"),
            ],
            next_seq: 0,
            null_rows,
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
    fn process(&mut self, input: usize, batch: ChangeBatch, ctx: &mut Ctx) -> Result<ChangeBatch> {
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
            crate::core::time::event_times(&self.times[side].evaluate(&data)?.into_array(n)?)?;
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
            if matches!(ctx.watermark(), Some(w) if t < w.saturating_sub(self.grace)) {
                ctx.count_late(copies.unsigned_abs());
                continue;
            }
            let row = rows.row(i).data().to_vec();
            let key_valid = key_cols.iter().all(|c| c.is_valid(i));
            let key = keys.row(i).data().to_vec();
            let (lo, hi) = self.range(side, t);
            let mut matched = false;
            if key_valid {
                let mut newly_matched = Vec::new();
                for (k, stored) in
                    self.state[other].range((key.clone(), lo, 0)..=(key.clone(), hi, u64::MAX))
                {
                    matched = true;
                    if !stored.matched {
                        newly_matched.push(k.clone());
                    }
                    for _ in 0..copies {
                        out.push(if side == 0 {
                            (row.clone(), stored.row.clone())
                        } else {
                            (stored.row.clone(), row.clone())
                        });
                    }
                }
                for k in newly_matched {
                    if let Some(mut stored) = self.state[other].get(&k).cloned() {
                        stored.matched = true;
                        self.state[other].insert(k, stored);
                    }
                }
            }
            for _ in 0..copies {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.state[side].insert(
                    (key.clone(), t, seq),
                    Stored {
                        row: row.clone(),
                        matched,
                    },
                );
                self.by_time[side].insert((t, key.clone(), seq), ());
            }
        }
        self.build(out)
    }

    fn on_watermark(&mut self, watermark: i64, _ctx: &mut Ctx) -> Result<Option<ChangeBatch>> {
        let cutoff = watermark.saturating_sub(self.grace);
        let mut out = Vec::new();
        for side in 0..2 {
            // Rows whose horizon is before the cutoff can no longer match.
            let last_time = cutoff
                .saturating_sub(if side == 0 { self.after } else { self.before })
                .saturating_sub(1);
            let outer = self.outer(side);
            let null_other = self.null_rows[1 - side].clone();
            let evicted =
                self.by_time[side].drain_below(&(last_time.saturating_add(1), Vec::new(), 0));
            for ((t, key, seq), ()) in evicted {
                let Some(s) = self.state[side].remove(&(key, t, seq)) else {
                    continue;
                };
                if outer && !s.matched {
                    out.push(if side == 0 {
                        (s.row, null_other.clone())
                    } else {
                        (null_other.clone(), s.row)
                    });
                }
            }
            debug_assert!(self.state[side]
                .iter()
                .all(|((_, t, _), _)| self.horizon(side, *t) >= cutoff));
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
        self.state.iter().map(|s| s.len()).sum()
    }

    fn after_restore(&mut self) {
        self.next_seq = self
            .state
            .iter()
            .flat_map(|s| s.iter().map(|((_, _, seq), _)| seq + 1))
            .max()
            .unwrap_or(0);
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        let [l, r] = &mut self.state;
        let [lt, rt] = &mut self.by_time;
        vec![l, r, lt, rt]
    }
}
