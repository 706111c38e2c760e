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

#[cfg(test)]
mod differential {
    //! The operator alone against DataFusion from scratch: random epochs of append-only rows
    //! on both sides (NULL keys, duplicates, out-of-order and late times), a random watermark
    //! advance per epoch, each epoch committed or aborted at random, driven the way the
    //! runtime drives it (`Dataflow::step_unguarded`). After every epoch the committed
    //! output equals a batch join of the committed rows that were not late, and the
    //! committed late count equals the rows the test judged late.
    use super::*;
    use crate::core::batch::tests_support::{build, datafusion_rows, Accumulated};
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use datafusion::physical_expr::expressions::col;
    use datafusion::scalar::ScalarValue;
    use proptest::prelude::*;

    const SECOND: i64 = 1_000_000;
    /// Where event times are drawn around before the first watermark.
    const START: i64 = 100 * SECOND;

    /// The join's time bound and grace, in seconds.
    #[derive(Debug, Clone, Copy)]
    struct Bounds {
        before: i64,
        after: i64,
        grace: i64,
    }

    /// A row as generated: its side, key, event time in seconds from the committed
    /// watermark (negative: behind it), and how many copies (equal rows can arrive as one row
    /// of weight 2, from a join with a table that holds a row twice, say).
    #[derive(Debug, Clone)]
    struct Arrival {
        side: usize,
        key: Option<i64>,
        offset: i64,
        copies: i64,
    }

    /// One epoch: its rows; how far past the committed watermark the watermark goes (in
    /// seconds; `None`: no watermark this epoch); whether the epoch aborts.
    #[derive(Debug, Clone)]
    struct Epoch {
        rows: Vec<Arrival>,
        watermark: Option<i64>,
        abort: bool,
    }

    /// A row as fed: key, event time (µs), a value unique to the row, copies.
    #[derive(Debug, Clone)]
    struct Fed {
        key: Option<i64>,
        t: i64,
        v: i64,
        copies: i64,
    }

    fn side(prefix: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(format!("{prefix}k"), DataType::Int64, true),
            Field::new(
                format!("{prefix}t"),
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new(format!("{prefix}v"), DataType::Int64, true),
        ]))
    }

    fn op(kind: JoinKind, b: Bounds) -> IntervalJoinOp {
        let (l, r) = (side("l"), side("r"));
        let out = Arc::new(Schema::new(
            l.fields()
                .iter()
                .chain(r.fields().iter())
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        IntervalJoinOp::try_new(
            kind,
            [vec![col("lk", &l).unwrap()], vec![col("rk", &r).unwrap()]],
            [col("lt", &l).unwrap(), col("rt", &r).unwrap()],
            b.before * SECOND,
            b.after * SECOND,
            b.grace * SECOND,
            [l, r],
            out,
        )
        .unwrap()
    }

    /// The rows of one side as a change batch, each row once with its copies as weight
    /// (`expand`: as that many rows of weight 1, for the oracle's tables).
    fn batch(side_no: usize, rows: &[Fed], expand: bool) -> ChangeBatch {
        let prefix = ["l", "r"][side_no];
        build(
            side(prefix),
            rows.iter()
                .flat_map(|r| {
                    let values = vec![
                        ScalarValue::Int64(r.key),
                        ScalarValue::TimestampMicrosecond(Some(r.t), None),
                        ScalarValue::Int64(Some(r.v)),
                    ];
                    if expand {
                        vec![(1, values); r.copies as usize]
                    } else {
                        vec![(r.copies, values)]
                    }
                })
                .collect(),
        )
    }

    /// The runtime's rule for when a proposed watermark advances the current one.
    fn advance(proposed: Option<i64>, current: Option<i64>) -> Option<i64> {
        match (proposed, current) {
            (Some(w), Some(old)) if w > old => Some(w),
            (Some(w), None) => Some(w),
            _ => None,
        }
    }

    fn bounds() -> impl Strategy<Value = Bounds> {
        (0i64..4, 0i64..4, 0i64..3).prop_map(|(before, after, grace)| Bounds {
            before,
            after,
            grace,
        })
    }

    fn epochs() -> impl Strategy<Value = Vec<Epoch>> {
        let arrival = (
            0usize..2,
            proptest::option::weighted(0.8, 0i64..3),
            -6i64..8,
            prop_oneof![9 => Just(1i64), 1 => Just(2i64)],
        )
            .prop_map(|(side, key, offset, copies)| Arrival {
                side,
                key,
                offset,
                copies,
            });
        let epoch = (
            proptest::collection::vec(arrival, 0..7),
            proptest::option::weighted(0.8, 0i64..5),
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(rows, watermark, abort)| Epoch {
                rows,
                watermark,
                abort,
            });
        proptest::collection::vec(epoch, 1..11)
    }

    /// The batch answer. The pairs are the SQL join on the key and the time bound; an
    /// OUTER side's row appears NULL-padded when it has no pair *and* its horizon (left:
    /// t + after, right: t + before) is before watermark − grace, the operator's eviction
    /// rule (`on_watermark` drains times below cutoff − bound, so the horizon must be
    /// strictly below the cutoff). Both parts are one DataFusion query: an OUTER join
    /// whose padded rows are kept by a WHERE on their own time (event times are never
    /// NULL here, so a NULL time marks the padded side).
    fn oracle(kind: &str, b: Bounds, watermark: Option<i64>) -> String {
        let (before, after) = (
            format!("INTERVAL '{} seconds'", b.before),
            format!("INTERVAL '{} seconds'", b.after),
        );
        let horizon_passed = |t: &str, bound: &str| match watermark {
            Some(w) => format!(
                "{t} + {bound} < arrow_cast({}, 'Timestamp(Microsecond, None)')",
                w - b.grace * SECOND
            ),
            None => "false".to_string(),
        };
        format!(
            "SELECT lk, lt, lv, rk, rt, rv FROM l {kind} JOIN r \
               ON lk = rk AND rt BETWEEN lt - {before} AND lt + {after} \
             WHERE (lt IS NOT NULL AND rt IS NOT NULL) \
                OR (rt IS NULL AND {}) \
                OR (lt IS NULL AND {})",
            horizon_passed("lt", &after),
            horizon_passed("rt", &before),
        )
    }

    fn check(kind: JoinKind, b: Bounds, epochs: Vec<Epoch>) -> Result<(), TestCaseError> {
        let sql_kind = match kind {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
            JoinKind::Right => "RIGHT",
            JoinKind::Full => "FULL",
        };
        let mut join = op(kind, b);
        let mut view = Accumulated::default();
        let mut accepted: [Vec<Fed>; 2] = [vec![], vec![]];
        let mut watermark: Option<i64> = None;
        let (mut judged_late, mut counted_late) = (0u64, 0u64);
        let mut next_v = 0;
        for (epoch_no, epoch) in epochs.into_iter().enumerate() {
            let base = watermark.unwrap_or(START);
            let mut fed: [Vec<Fed>; 2] = [vec![], vec![]];
            let mut late = 0u64;
            for a in &epoch.rows {
                let row = Fed {
                    key: a.key,
                    t: base + a.offset * SECOND,
                    v: next_v,
                    copies: a.copies,
                };
                next_v += 1;
                if matches!(watermark, Some(w) if row.t < w - b.grace * SECOND) {
                    late += row.copies as u64;
                }
                fed[a.side].push(row);
            }
            // As the runtime: each input's data against the watermark before the epoch,
            // then the advance, then commit or abort of every state table.
            let new_watermark = advance(epoch.watermark.map(|d| base + d * SECOND), watermark);
            let mut ctx = Ctx::new(epoch_no as u64 + 1, watermark);
            let mut out = Vec::new();
            for (s, rows) in fed.iter().enumerate() {
                if !rows.is_empty() {
                    out.push(
                        join.process(s, batch(s, rows, false), &mut ctx)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?,
                    );
                }
            }
            if let Some(w) = new_watermark {
                out.extend(
                    join.on_watermark(w, &mut ctx)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?,
                );
            }
            if epoch.abort {
                for t in join.state_tables() {
                    t.abort();
                }
            } else {
                for t in join.state_tables() {
                    t.commit();
                }
                for delta in &out {
                    view.apply(delta);
                }
                for (s, rows) in fed.into_iter().enumerate() {
                    accepted[s].extend(
                        rows.into_iter().filter(
                            |r| !matches!(watermark, Some(w) if r.t < w - b.grace * SECOND),
                        ),
                    );
                }
                watermark = new_watermark.or(watermark);
                judged_late += late;
                counted_late += ctx.late_rows();
            }
            let expected = datafusion_rows(
                vec![
                    ("l", batch(0, &accepted[0], true).data),
                    ("r", batch(1, &accepted[1], true).data),
                ],
                &oracle(sql_kind, b, watermark),
            );
            prop_assert_eq!(view.rows(), expected, "after epoch {}", epoch_no + 1);
            prop_assert_eq!(
                counted_late,
                judged_late,
                "late rows after epoch {}",
                epoch_no + 1
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn inner_equals_datafusion_over_rows_not_late(b in bounds(), epochs in epochs()) {
            check(JoinKind::Inner, b, epochs)?;
        }

        #[test]
        fn left_pads_unmatched_rows_once_their_horizon_passes(b in bounds(), epochs in epochs()) {
            check(JoinKind::Left, b, epochs)?;
        }

        #[test]
        fn full_pads_both_sides_once_their_horizon_passes(b in bounds(), epochs in epochs()) {
            check(JoinKind::Full, b, epochs)?;
        }
    }
}
