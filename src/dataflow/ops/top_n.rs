//! Top-N: `ORDER BY … LIMIT n OFFSET m`, and `ROW_NUMBER() / RANK() / DENSE_RANK() OVER
//! (PARTITION BY … ORDER BY …) <= n` (Top-N per group, dedup with `= 1`), with retractions.
//!
//! Takes deltas, keeps each partition's rows in sort order, emits deltas. For every
//! partition p touched by Δin: Δout = top(p after Δin) − top(p before Δin), where top is
//! the rows at positions [m, m + n) (LIMIT) or the rows whose rank is ≤ n, with their rank
//! as an extra column (ranking). A row's rank changes when rows before it come or go, so
//! the diff retracts it with its old rank and inserts it with its new one. The cost per
//! touched partition is its first m + n rows.
//!
//! Ties: rows with equal sort keys are ordered by their whole value, so the result is
//! deterministic (SQL leaves the order of ties open; ROW_NUMBER and LIMIT pick among them).
//!
//! State: each partition's rows, in (partition, sort key, row) order, with multiplicities.
//! Over an append-only input, rows that fall out of the top can never come back, so they
//! are dropped and the state stays bounded by the partitions × (m + n); otherwise every row
//! is kept, since a retraction from the top lets the next one in.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::HashSet;
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

use crate::core::batch::{row_converter, ChangeBatch};
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::{EddyError, Result};
use crate::state::table::{OrderedState, StateTable};

/// Which rows of a partition are in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopNKind {
    /// Positions [skip, skip + fetch); no rank column.
    Limit { skip: usize, fetch: Option<usize> },
    /// ROW_NUMBER() ≤ max, emitted as the last column.
    RowNumber { max: u64 },
    /// RANK() ≤ max (ties share a rank, the next rank skips).
    Rank { max: u64 },
    /// DENSE_RANK() ≤ max (ties share a rank, the next rank does not skip).
    DenseRank { max: u64 },
}

type Key = (Vec<u8>, Vec<u8>, Vec<u8>);

pub struct TopNOp {
    kind: TopNKind,
    partition: Vec<Arc<dyn PhysicalExpr>>,
    order: Vec<PhysicalSortExpr>,
    input: SchemaRef,
    output: SchemaRef,
    partition_converter: Option<RowConverter>,
    order_converter: RowConverter,
    row_converter: RowConverter,
    /// (partition, sort key, row) → multiplicity.
    rows: OrderedState<Key, i64>,
    /// The input only inserts: rows below the top are dropped.
    append_only: bool,
}

impl TopNOp {
    /// `input` is the schema of the rows; `output` is the same, plus the rank column for
    /// the ranking kinds.
    pub fn try_new(
        kind: TopNKind,
        partition: Vec<Arc<dyn PhysicalExpr>>,
        order: Vec<PhysicalSortExpr>,
        input: SchemaRef,
        output: SchemaRef,
        append_only: bool,
    ) -> Result<Self> {
        let extra = usize::from(!matches!(kind, TopNKind::Limit { .. }));
        if output.fields().len() != input.fields().len() + extra {
            return Err(EddyError::internal(
                "Top-N output schema does not fit its kind",
            ));
        }
        let partition_converter = if partition.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                partition
                    .iter()
                    .map(|p| Ok(SortField::new(p.data_type(&input)?)))
                    .collect::<Result<Vec<_>>>()?,
            )?)
        };
        let order_converter = RowConverter::new(
            order
                .iter()
                .map(|s| {
                    Ok(SortField::new_with_options(
                        s.expr.data_type(&input)?,
                        s.options,
                    ))
                })
                .collect::<Result<Vec<_>>>()?,
        )?;
        Ok(TopNOp {
            kind,
            partition,
            order,
            row_converter: row_converter(&input)?,
            input,
            output,
            partition_converter,
            order_converter,
            rows: OrderedState::new("rows by partition and order"),
            append_only,
        })
    }

    fn partition_rows(&self, p: &[u8]) -> impl Iterator<Item = (&Key, &i64)> {
        let p = p.to_vec();
        self.rows
            .range((p.clone(), Vec::new(), Vec::new())..)
            .take_while(move |(k, _)| k.0 == p)
    }

    /// The partition's output now: (row, rank) with one entry per copy, and the key of
    /// the last stored entry that can still matter when the top ends inside the partition
    /// (entries after it are never in the top of an insert-only input again).
    fn top(&self, p: &[u8]) -> (Vec<(Vec<u8>, Option<i64>)>, Option<Key>) {
        let mut out = Vec::new();
        let mut position = 0usize;
        let mut rank = 0i64;
        let mut dense = 0i64;
        let mut previous: Option<&[u8]> = None;
        let mut last: Option<Key>;
        for (key, count) in self.partition_rows(p) {
            // This entry may still be (partly) in the top: it is kept.
            last = Some(key.clone());
            let tied = previous == Some(key.1.as_slice());
            if !tied {
                dense += 1;
            }
            for copy in 0..*count {
                position += 1;
                if !tied && copy == 0 {
                    rank = position as i64;
                }
                let taken = match self.kind {
                    TopNKind::Limit { skip, fetch } => {
                        if fetch.is_some_and(|f| position > skip + f) {
                            return (out, last);
                        }
                        (position > skip).then_some(None)
                    }
                    TopNKind::RowNumber { max } => {
                        if position as u64 > max {
                            return (out, last);
                        }
                        Some(Some(position as i64))
                    }
                    TopNKind::Rank { max } => {
                        if rank as u64 > max {
                            return (out, last);
                        }
                        Some(Some(rank))
                    }
                    TopNKind::DenseRank { max } => {
                        if dense as u64 > max {
                            return (out, last);
                        }
                        Some(Some(dense))
                    }
                };
                if let Some(r) = taken {
                    out.push((key.2.clone(), r));
                }
            }
            previous = Some(key.1.as_slice());
        }
        (out, None)
    }

    fn build(&self, out: Vec<(i64, Vec<u8>, Option<i64>)>) -> Result<ChangeBatch> {
        if out.is_empty() {
            return Ok(ChangeBatch::empty(self.output.clone()));
        }
        let parser = self.row_converter.parser();
        let mut columns: Vec<ArrayRef> = self
            .row_converter
            .convert_rows(out.iter().map(|(_, r, _)| parser.parse(r)))?;
        if !matches!(self.kind, TopNKind::Limit { .. }) {
            let ranks: ArrayRef = Arc::new(Int64Array::from(
                out.iter().map(|(_, _, r)| *r).collect::<Vec<_>>(),
            ));
            let target = self.output.field(columns.len()).data_type();
            columns.push(cast(&ranks, target)?);
        }
        let weights = Int64Array::from(out.iter().map(|(w, _, _)| *w).collect::<Vec<_>>());
        ChangeBatch::new(RecordBatch::try_new(self.output.clone(), columns)?, weights).consolidate()
    }
}

impl Operator for TopNOp {
    fn process(
        &mut self,
        _input: usize,
        batch: ChangeBatch,
        _ctx: &mut Ctx,
    ) -> Result<ChangeBatch> {
        if batch.is_empty() {
            return Ok(ChangeBatch::empty(self.output.clone()));
        }
        let data = RecordBatch::try_new(self.input.clone(), batch.data.columns().to_vec())?;
        let n = data.num_rows();
        let eval = |exprs: Vec<&Arc<dyn PhysicalExpr>>| {
            exprs
                .into_iter()
                .map(|e| e.evaluate(&data).and_then(|v| v.into_array(n)))
                .collect::<datafusion::error::Result<Vec<_>>>()
        };
        let partitions = match &self.partition_converter {
            Some(c) => Some(c.convert_columns(&eval(self.partition.iter().collect())?)?),
            None => None,
        };
        let order = self
            .order_converter
            .convert_columns(&eval(self.order.iter().map(|s| &s.expr).collect())?)?;
        let rows = self.row_converter.convert_columns(data.columns())?;
        let mut touched: Vec<Vec<u8>> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut changes: Vec<(Key, i64)> = Vec::with_capacity(n);
        for i in 0..n {
            let p = partitions
                .as_ref()
                .map(|r| r.row(i).data().to_vec())
                .unwrap_or_default();
            if seen.insert(p.clone()) {
                touched.push(p.clone());
            }
            let key = (p, order.row(i).data().to_vec(), rows.row(i).data().to_vec());
            changes.push((key, batch.weights.value(i)));
        }
        let before: Vec<_> = touched.iter().map(|p| self.top(p).0).collect();
        for (key, w) in changes {
            let count = self.rows.get(&key).copied().unwrap_or(0) + w;
            if count < 0 {
                if self.append_only {
                    return Err(EddyError::internal(
                        "retraction reached an append-only Top-N",
                    ));
                }
                return Err(EddyError::internal("Top-N retracted a row it never had"));
            }
            if count == 0 {
                self.rows.remove(&key);
            } else {
                self.rows.insert(key, count);
            }
        }
        let mut out = Vec::new();
        for (p, old) in touched.iter().zip(before) {
            let (new, last) = self.top(p);
            out.extend(old.into_iter().map(|(r, rank)| (-1, r, rank)));
            out.extend(new.into_iter().map(|(r, rank)| (1, r, rank)));
            // Over an insert-only input a row past the top never comes back.
            if self.append_only {
                if let Some(last) = last {
                    let dropped: Vec<Key> = self
                        .partition_rows(p)
                        .map(|(k, _)| k.clone())
                        .filter(|k| *k > last)
                        .collect();
                    for k in dropped {
                        self.rows.remove(&k);
                    }
                }
            }
        }
        self.build(out)
    }

    fn describe(&self) -> String {
        let list = |v: Vec<String>| v.join(", ");
        format!(
            "TopN {:?}: partition by [{}] order by [{}]{}",
            self.kind,
            list(self.partition.iter().map(|p| p.to_string()).collect()),
            list(self.order.iter().map(|s| s.to_string()).collect()),
            if self.append_only {
                "; append-only input, rows past the top dropped"
            } else {
                ""
            }
        )
    }

    fn state_rows(&self) -> usize {
        self.rows.len()
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        vec![&mut self.rows]
    }
}

#[cfg(test)]
mod differential {
    //! The operator alone against DataFusion from scratch: random inserts and retracts,
    //! epochs committed or aborted at random; after every epoch the committed output equals
    //! DataFusion's ORDER BY … LIMIT … OFFSET, or its ROW_NUMBER / RANK / DENSE_RANK per
    //! partition filtered to ≤ n, over the committed rows. Over an insert-only input the
    //! state must also stay within the top.
    use super::*;
    use crate::core::batch::tests_support::{build, datafusion_rows, Accumulated};
    use datafusion::arrow::compute::SortOptions;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::col;
    use datafusion::scalar::ScalarValue;
    use proptest::prelude::*;

    fn input() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    fn op(kind: TopNKind, partitioned: bool, descending: bool, append_only: bool) -> TopNOp {
        let s = input();
        let mut fields: Vec<Field> = s.fields().iter().map(|f| f.as_ref().clone()).collect();
        if !matches!(kind, TopNKind::Limit { .. }) {
            fields.push(Field::new("rank", DataType::UInt64, true));
        }
        let order = vec![PhysicalSortExpr::new(
            col("v", &s).unwrap(),
            SortOptions {
                descending,
                nulls_first: !descending,
            },
        )];
        let partition = if partitioned {
            vec![col("k", &s).unwrap()]
        } else {
            vec![]
        };
        TopNOp::try_new(
            kind,
            partition,
            order,
            s,
            Arc::new(Schema::new(fields)),
            append_only,
        )
        .unwrap()
    }

    type Epoch = (Vec<(u8, Option<i64>, bool)>, bool);

    fn epochs(retractions: f64) -> impl Strategy<Value = Vec<Epoch>> {
        let row = (
            0u8..3,
            proptest::option::weighted(0.85, 0i64..6),
            proptest::bool::weighted(retractions),
        );
        proptest::collection::vec(
            (
                proptest::collection::vec(row, 0..7),
                proptest::bool::weighted(0.3),
            ),
            1..12,
        )
    }

    fn row(k: u8, v: Option<i64>) -> Vec<ScalarValue> {
        vec![
            ScalarValue::from(["a", "b", "c"][k as usize]),
            ScalarValue::Int64(v),
        ]
    }

    /// Runs the epochs; returns the largest state seen after a committed epoch.
    fn check(mut top: TopNOp, sql: &str, epochs: Vec<Epoch>) -> Result<usize, TestCaseError> {
        let mut view = Accumulated::default();
        let mut committed: Vec<(u8, Option<i64>)> = Vec::new();
        let mut largest = 0;
        for (rows, abort) in epochs {
            let mut live = committed.clone();
            let mut delta = Vec::new();
            for (k, v, retract) in rows {
                if retract {
                    if let Some(p) = live.iter().position(|r| r.0 == k) {
                        let (rk, rv) = live.remove(p);
                        delta.push((-1, row(rk, rv)));
                    }
                } else {
                    live.push((k, v));
                    delta.push((1, row(k, v)));
                }
            }
            // Two batches per epoch, so a partition changes twice before the commit.
            let half = delta.len() / 2;
            let second = delta.split_off(half);
            let mut ctx = Ctx::default();
            let out = top
                .process(0, build(input(), delta), &mut ctx)
                .and_then(|a| Ok((a, top.process(0, build(input(), second), &mut ctx)?)));
            if abort {
                for t in top.state_tables() {
                    t.abort();
                }
            } else {
                let (a, b) = out.expect("valid input");
                for t in top.state_tables() {
                    t.commit();
                }
                view.apply(&a);
                view.apply(&b);
                committed = live;
                largest = largest.max(top.state_rows());
            }
            let table = build(
                input(),
                committed.iter().map(|(k, v)| (1, row(*k, *v))).collect(),
            );
            let expected = datafusion_rows(vec![("t", table.data)], sql);
            prop_assert_eq!(view.rows(), expected, "{}", sql);
        }
        Ok(largest)
    }

    fn ranked(function: &str, max: u64) -> String {
        format!(
            "SELECT k, v, r FROM (SELECT k, v, {function}() OVER (PARTITION BY k ORDER BY v DESC NULLS LAST) AS r FROM t) WHERE r <= {max}"
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn limit_offset_equals_datafusion(epochs in epochs(0.4)) {
            // Ties on v are broken by the whole row, which is k then v: ORDER BY v, k.
            check(op(TopNKind::Limit { skip: 1, fetch: Some(3) }, false, false, false),
                "SELECT k, v FROM t ORDER BY v ASC NULLS FIRST, k LIMIT 3 OFFSET 1", epochs)?;
        }

        #[test]
        fn row_number_per_partition_equals_datafusion(epochs in epochs(0.4)) {
            check(op(TopNKind::RowNumber { max: 2 }, true, true, false), &ranked("row_number", 2), epochs)?;
        }

        #[test]
        fn rank_per_partition_equals_datafusion(epochs in epochs(0.4)) {
            check(op(TopNKind::Rank { max: 2 }, true, true, false), &ranked("rank", 2), epochs)?;
        }

        #[test]
        fn dense_rank_per_partition_equals_datafusion(epochs in epochs(0.4)) {
            check(op(TopNKind::DenseRank { max: 2 }, true, true, false), &ranked("dense_rank", 2), epochs)?;
        }

        #[test]
        fn insert_only_top_n_keeps_bounded_state(epochs in epochs(0.0)) {
            let largest = check(op(TopNKind::RowNumber { max: 2 }, true, true, true), &ranked("row_number", 2), epochs)?;
            // Three partitions, two rows each, plus at most one boundary entry per partition.
            prop_assert!(largest <= 9, "state grew to {largest} rows");
        }
    }
}
