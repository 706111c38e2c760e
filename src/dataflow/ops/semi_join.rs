//! Semi and anti joins: the left rows that have (EXISTS, IN, INTERSECT) or have not (NOT
//! EXISTS, NOT IN, EXCEPT) a matching right row, maintained incrementally.
//!
//! A left row l matches a right row r when their keys are equal (NULL never equals NULL,
//! except for INTERSECT/EXCEPT, which compare NULLs as equal) and the residual condition,
//! if any, is true of (l, r). m(l) = Σ multiplicity(r) over the right rows l matches. The
//! output holds l (with its multiplicity) when pass(m(l)): m > 0 for a semi join, m = 0 for
//! an anti join. NOT IN is the null-aware anti join: l passes when the right side is empty,
//! or when l's key is not NULL, no right key is NULL and m(l) = 0 (SQL's three-valued IN).
//!
//! Rule: a left delta (l, w) emits (l, w) if pass(m(l)) against the right state as it is.
//! A right delta changes m only for the left rows of the keys it touches (for NOT IN also
//! all left rows, when the right side becomes empty or non-empty or gains or loses its
//! first NULL): for each such left row, Δout = mult(l) · (pass_after − pass_before).
//!
//! State: the right rows by key (only their count per key when there is no residual
//! condition, so state is bounded by the distinct keys); the left rows by key, unless the
//! left side is an append-only stream, which is not stored — each stream row is judged
//! against the right side as it is when the row arrives, as a stream–table join enriches
//! with the table as it is then; past output is not revised.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows};
use datafusion::common::HashSet;
use datafusion::physical_expr::PhysicalExpr;

use crate::core::batch::{row_converter, row_converter_for, ChangeBatch};
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::{EddyError, Result};
use crate::state::table::{IndexedZSet, StateMap, StateTable};

/// Which rows of the left side come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemiKind {
    /// EXISTS, IN, INTERSECT: rows with a match.
    Semi,
    /// NOT EXISTS, EXCEPT: rows without a match.
    Anti,
    /// NOT IN: rows without a match, none at all if the right side has a NULL key, and no
    /// left row with a NULL key — unless the right side is empty.
    NullAwareAnti,
}

/// The key of rows with a NULL in their join key (when NULLs are not equal): never a
/// valid row-format key, which always has a byte per column.
const NULL_KEY: &[u8] = b"";

pub struct SemiJoinOp {
    kind: SemiKind,
    keys: [Vec<Arc<dyn PhysicalExpr>>; 2],
    key_types: Vec<DataType>,
    nulls_equal: bool,
    /// Over the left columns followed by the right columns.
    residual: Option<Arc<dyn PhysicalExpr>>,
    schemas: [SchemaRef; 2],
    pair_schema: SchemaRef,
    key_converter: RowConverter,
    converters: [RowConverter; 2],
    /// Left rows by key; `None` when the left side is a stream that is not stored.
    left: Option<IndexedZSet>,
    /// Right rows by key (the empty row for each when there is no residual condition).
    right: IndexedZSet,
    /// Sum of the right multiplicities over all keys (under the empty key), for NOT IN:
    /// a state table, so an aborted epoch rolls it back with the rows.
    right_total: StateMap<i64>,
}

impl SemiJoinOp {
    /// `left_keys` and `right_keys` are equal in number and at least one (a join without
    /// an equality compares a constant); `residual` is evaluated over left ++ right.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        kind: SemiKind,
        left_keys: Vec<Arc<dyn PhysicalExpr>>,
        right_keys: Vec<Arc<dyn PhysicalExpr>>,
        nulls_equal: bool,
        residual: Option<Arc<dyn PhysicalExpr>>,
        left: SchemaRef,
        right: SchemaRef,
        store_left: bool,
    ) -> Result<Self> {
        if left_keys.is_empty() || left_keys.len() != right_keys.len() {
            return Err(EddyError::internal(
                "a semi join needs as many keys on each side, at least one",
            ));
        }
        if kind == SemiKind::NullAwareAnti && (residual.is_some() || nulls_equal) {
            return Err(EddyError::unsupported(
                "NOT IN with a correlated subquery in a continuous query; write NOT EXISTS",
            ));
        }
        let key_types = left_keys
            .iter()
            .map(|k| k.data_type(&left).map_err(EddyError::from))
            .collect::<Result<Vec<_>>>()?;
        let pair_schema = Arc::new(Schema::new(
            left.fields()
                .iter()
                .chain(right.fields().iter())
                .cloned()
                .collect::<Vec<_>>(),
        ));
        Ok(SemiJoinOp {
            kind,
            key_converter: row_converter_for(&key_types)?,
            key_types,
            keys: [left_keys, right_keys],
            nulls_equal,
            residual,
            converters: [row_converter(&left)?, row_converter(&right)?],
            schemas: [left, right],
            pair_schema,
            left: store_left.then(|| IndexedZSet::new("left rows")),
            right: IndexedZSet::new("right rows by key"),
            right_total: StateMap::new("right row count"),
        })
    }

    /// Each row's key, `NULL_KEY` where a key column is NULL and NULLs are not equal.
    fn keys(&self, side: usize, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
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
        let rows = self.key_converter.convert_columns(&cols)?;
        Ok((0..n)
            .map(|i| {
                if !self.nulls_equal && cols.iter().any(|c| c.is_null(i)) {
                    NULL_KEY.to_vec()
                } else {
                    rows.row(i).data().to_vec()
                }
            })
            .collect())
    }

    /// m(l) for each left row `(key, row)`, against the right state as it is now.
    fn match_counts(&self, left: &[(&[u8], &[u8])]) -> Result<Vec<i64>> {
        let Some(residual) = &self.residual else {
            return Ok(left
                .iter()
                .map(|(k, _)| {
                    if *k == NULL_KEY {
                        0
                    } else {
                        self.right.get(k).map(|r| r.total).unwrap_or(0)
                    }
                })
                .collect());
        };
        // Every (l, r) pair of equal keys, evaluated in one batch.
        let mut pairs: Vec<(usize, &[u8], i64)> = Vec::new();
        for (i, (k, _)) in left.iter().enumerate() {
            if *k == NULL_KEY {
                continue;
            }
            if let Some(rows) = self.right.get(k) {
                for (r, c) in &rows.rows {
                    pairs.push((i, r.as_slice(), *c));
                }
            }
        }
        let mut counts = vec![0; left.len()];
        if pairs.is_empty() {
            return Ok(counts);
        }
        let lp = self.converters[0].parser();
        let rp = self.converters[1].parser();
        let mut columns =
            self.converters[0].convert_rows(pairs.iter().map(|(i, _, _)| lp.parse(left[*i].1)))?;
        columns.extend(self.converters[1].convert_rows(pairs.iter().map(|(_, r, _)| rp.parse(r)))?);
        let batch = RecordBatch::try_new(self.pair_schema.clone(), columns)?;
        let mask = residual.evaluate(&batch)?.into_array(batch.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| EddyError::internal("a join condition that is not boolean"))?;
        for (j, (i, _, c)) in pairs.iter().enumerate() {
            if mask.is_valid(j) && mask.value(j) {
                counts[*i] += c;
            }
        }
        Ok(counts)
    }

    fn right_total(&self) -> i64 {
        self.right_total.get(b"").copied().unwrap_or(0)
    }

    fn right_null(&self) -> i64 {
        self.right.get(NULL_KEY).map(|r| r.total).unwrap_or(0)
    }

    /// Whether a left row with key `key` and match count `m` is in the output.
    fn pass(&self, key: &[u8], m: i64) -> bool {
        match self.kind {
            SemiKind::Semi => m > 0,
            SemiKind::Anti => m == 0,
            SemiKind::NullAwareAnti => {
                self.right_total() == 0 || (key != NULL_KEY && self.right_null() == 0 && m == 0)
            }
        }
    }

    /// Whether each stored left row of `keys` passes now: `(key, row, multiplicity, pass)`.
    fn judge_stored(&self, keys: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, Vec<u8>, i64, bool)>> {
        let Some(left) = &self.left else {
            return Ok(vec![]);
        };
        let mut rows: Vec<(&[u8], &[u8], i64)> = Vec::new();
        for k in keys {
            if let Some(krows) = left.get(k) {
                for (r, c) in &krows.rows {
                    rows.push((k.as_slice(), r.as_slice(), *c));
                }
            }
        }
        let pairs: Vec<(&[u8], &[u8])> = rows.iter().map(|(k, r, _)| (*k, *r)).collect();
        let counts = self.match_counts(&pairs)?;
        Ok(rows
            .iter()
            .zip(counts)
            .map(|((k, r, c), m)| (k.to_vec(), r.to_vec(), *c, self.pass(k, m)))
            .collect())
    }

    fn output(&self, out: Vec<(i64, Vec<u8>)>) -> Result<ChangeBatch> {
        if out.is_empty() {
            return Ok(ChangeBatch::empty(self.schemas[0].clone()));
        }
        let p = self.converters[0].parser();
        let columns = self.converters[0].convert_rows(out.iter().map(|(_, r)| p.parse(r)))?;
        let weights = Int64Array::from(out.iter().map(|(w, _)| *w).collect::<Vec<_>>());
        ChangeBatch::new(
            RecordBatch::try_new(self.schemas[0].clone(), columns)?,
            weights,
        )
        .consolidate()
    }

    fn process_left(&mut self, data: &RecordBatch, weights: &Int64Array) -> Result<ChangeBatch> {
        let keys = self.keys(0, data)?;
        let rows: Rows = self.converters[0].convert_columns(data.columns())?;
        let pairs: Vec<(&[u8], &[u8])> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_slice(), rows.row(i).data()))
            .collect();
        let counts = self.match_counts(&pairs)?;
        let mut out = Vec::new();
        for (i, ((k, r), m)) in pairs.iter().zip(counts).enumerate() {
            let w = weights.value(i);
            if self.pass(k, m) {
                out.push((w, r.to_vec()));
            }
            if let Some(left) = self.left.as_mut() {
                left.add(k, r, w)?;
            }
        }
        self.output(out)
    }

    fn process_right(&mut self, data: &RecordBatch, weights: &Int64Array) -> Result<ChangeBatch> {
        let keys = self.keys(1, data)?;
        let rows = self
            .residual
            .is_some()
            .then(|| self.converters[1].convert_columns(data.columns()))
            .transpose()?;
        let delta_total: i64 = weights.values().iter().sum();
        let delta_null: i64 = keys
            .iter()
            .zip(weights.values())
            .filter(|(k, _)| k.as_slice() == NULL_KEY)
            .map(|(_, w)| w)
            .sum();
        // The left keys whose rows may change.
        let touched: Vec<Vec<u8>> = match &self.left {
            None => vec![],
            Some(left) => {
                let (total, null) = (self.right_total(), self.right_null());
                let flips = self.kind == SemiKind::NullAwareAnti
                    && ((total == 0) != (total + delta_total == 0)
                        || (null == 0) != (null + delta_null == 0));
                if flips {
                    left.keys().cloned().collect()
                } else {
                    let set: HashSet<&Vec<u8>> =
                        keys.iter().filter(|k| k.as_slice() != NULL_KEY).collect();
                    set.into_iter().cloned().collect()
                }
            }
        };
        let before = self.judge_stored(&touched)?;
        for (i, k) in keys.iter().enumerate() {
            let row = rows.as_ref().map(|r| r.row(i).data()).unwrap_or(&[]);
            self.right.add(k, row, weights.value(i))?;
        }
        if delta_total != 0 {
            let total = self.right_total() + delta_total;
            self.right_total.insert(Vec::new(), total);
        }
        let after = self.judge_stored(&touched)?;
        // Same keys, same stored left rows, same order: only the verdicts differ.
        let out = before
            .into_iter()
            .zip(after)
            .filter_map(|((_, r, c, was), (_, _, _, is))| match (was, is) {
                (false, true) => Some((c, r)),
                (true, false) => Some((-c, r)),
                _ => None,
            })
            .collect();
        self.output(out)
    }
}

impl Operator for SemiJoinOp {
    fn process(&mut self, input: usize, batch: ChangeBatch, _ctx: &mut Ctx) -> Result<ChangeBatch> {
        if batch.is_empty() {
            return Ok(ChangeBatch::empty(self.schemas[0].clone()));
        }
        let side = input.min(1);
        let data = RecordBatch::try_new(self.schemas[side].clone(), batch.data.columns().to_vec())?;
        if side == 0 {
            self.process_left(&data, &batch.weights)
        } else {
            self.process_right(&data, &batch.weights)
        }
    }

    fn describe(&self) -> String {
        let list = |ks: &[Arc<dyn PhysicalExpr>]| {
            ks.iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "SemiJoin {:?}: on [{}] = [{}]{}{}; left {}",
            self.kind,
            list(&self.keys[0]),
            list(&self.keys[1]),
            if self.nulls_equal {
                " (NULLs equal)"
            } else {
                ""
            },
            self.residual
                .as_ref()
                .map(|r| format!(" and {r}"))
                .unwrap_or_default(),
            if self.left.is_some() {
                "stored"
            } else {
                "stream, not stored"
            }
        )
    }

    fn state_rows(&self) -> usize {
        self.left.as_ref().map(|l| l.len()).unwrap_or(0) + self.right.len()
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        let mut out: Vec<&mut dyn StateTable> = vec![&mut self.right, &mut self.right_total];
        if let Some(l) = self.left.as_mut() {
            out.push(l);
        }
        out
    }
}

#[cfg(test)]
mod differential {
    //! The operator alone against DataFusion from scratch: random inserts and retracts on
    //! both sides (NULL keys included), epochs committed or aborted at random; after every
    //! epoch the committed output equals DataFusion's answer to the EXISTS / NOT EXISTS /
    //! NOT IN / INTERSECT ALL / EXCEPT ALL query over the committed rows.
    use super::*;
    use crate::core::batch::tests_support::{build, datafusion_rows, Accumulated};
    use datafusion::arrow::datatypes::Field;
    use datafusion::logical_expr::Operator as BinOp;
    use datafusion::physical_expr::expressions::{binary, col};
    use datafusion::scalar::ScalarValue;
    use proptest::prelude::*;

    fn side(prefix: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(format!("{prefix}k"), DataType::Int64, true),
            Field::new(format!("{prefix}v"), DataType::Int64, true),
        ]))
    }

    #[derive(Clone, Copy, Debug)]
    enum Shape {
        /// Keys lk = rk, optionally `rv > lv` as the residual.
        Keyed { residual: bool },
        /// Both columns are the key and NULLs are equal (INTERSECT / EXCEPT).
        WholeRow,
    }

    fn op(kind: SemiKind, shape: Shape, store_left: bool) -> SemiJoinOp {
        let (l, r) = (side("l"), side("r"));
        let pair = Arc::new(Schema::new(
            l.fields()
                .iter()
                .chain(r.fields().iter())
                .cloned()
                .collect::<Vec<_>>(),
        ));
        let (lkeys, rkeys, nulls_equal, residual) = match shape {
            Shape::Keyed { residual } => (
                vec![col("lk", &l).unwrap()],
                vec![col("rk", &r).unwrap()],
                false,
                residual.then(|| {
                    binary(
                        col("rv", &pair).unwrap(),
                        BinOp::Gt,
                        col("lv", &pair).unwrap(),
                        &pair,
                    )
                    .unwrap()
                }),
            ),
            Shape::WholeRow => (
                vec![col("lk", &l).unwrap(), col("lv", &l).unwrap()],
                vec![col("rk", &r).unwrap(), col("rv", &r).unwrap()],
                true,
                None,
            ),
        };
        SemiJoinOp::try_new(kind, lkeys, rkeys, nulls_equal, residual, l, r, store_left).unwrap()
    }

    fn batch(prefix: &str, rows: &[(i64, Option<i64>, i64)]) -> ChangeBatch {
        build(
            side(prefix),
            rows.iter()
                .map(|(w, k, v)| {
                    (
                        *w,
                        vec![ScalarValue::Int64(*k), ScalarValue::Int64(Some(*v))],
                    )
                })
                .collect(),
        )
    }

    type Epoch = (Vec<(usize, Option<i64>, i64, bool)>, bool);

    /// One epoch: per row (side, key, value, retract an existing row instead); whether the
    /// epoch aborts.
    fn epochs() -> impl Strategy<Value = Vec<Epoch>> {
        let row = (
            0usize..2,
            proptest::option::weighted(0.8, 0i64..3),
            0i64..3,
            proptest::bool::weighted(0.4),
        );
        proptest::collection::vec(
            (
                proptest::collection::vec(row, 0..6),
                proptest::bool::weighted(0.3),
            ),
            1..12,
        )
    }

    fn check(
        kind: SemiKind,
        shape: Shape,
        sql: &str,
        epochs: Vec<Epoch>,
    ) -> Result<(), TestCaseError> {
        let mut join = op(kind, shape, true);
        let mut view = Accumulated::default();
        let mut committed: [Vec<(Option<i64>, i64)>; 2] = [vec![], vec![]];
        for (rows, abort) in epochs {
            let mut live = committed.clone();
            // Several batches per side and epoch, interleaved, so a side meets the other's
            // changes of the same epoch.
            let mut deltas: Vec<(usize, Vec<(i64, Option<i64>, i64)>)> = Vec::new();
            for (s, k, v, retract) in rows {
                let row = if retract {
                    match live[s].iter().position(|r| r.0 == k) {
                        Some(p) => {
                            let (rk, rv) = live[s].remove(p);
                            (-1, rk, rv)
                        }
                        None => continue,
                    }
                } else {
                    live[s].push((k, v));
                    (1, k, v)
                };
                match deltas.last_mut() {
                    Some((side, rows)) if *side == s && rows.len() < 2 => rows.push(row),
                    _ => deltas.push((s, vec![row])),
                }
            }
            let mut ctx = Ctx::default();
            let mut outs = Vec::new();
            let mut failed = None;
            for (s, rows) in &deltas {
                let prefix = if *s == 0 { "l" } else { "r" };
                match join.process(*s, batch(prefix, rows), &mut ctx) {
                    Ok(o) => outs.push(o),
                    Err(e) => failed = Some(e),
                }
            }
            if abort {
                for t in join.state_tables() {
                    t.abort();
                }
            } else {
                if let Some(e) = failed {
                    return Err(TestCaseError::fail(format!("valid input failed: {e}")));
                }
                for t in join.state_tables() {
                    t.commit();
                }
                for o in &outs {
                    view.apply(o);
                }
                committed = live;
            }
            let table = |prefix: &str, rows: &[(Option<i64>, i64)]| {
                batch(
                    prefix,
                    &rows.iter().map(|(k, v)| (1, *k, *v)).collect::<Vec<_>>(),
                )
                .data
            };
            let expected = datafusion_rows(
                vec![
                    ("l", table("l", &committed[0])),
                    ("r", table("r", &committed[1])),
                ],
                sql,
            );
            prop_assert_eq!(view.rows(), expected, "{}", sql);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn exists_equals_datafusion(epochs in epochs()) {
            check(SemiKind::Semi, Shape::Keyed { residual: false },
                "SELECT lk, lv FROM l WHERE EXISTS (SELECT 1 FROM r WHERE rk = lk)", epochs)?;
        }

        #[test]
        fn not_exists_equals_datafusion(epochs in epochs()) {
            check(SemiKind::Anti, Shape::Keyed { residual: false },
                "SELECT lk, lv FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE rk = lk)", epochs)?;
        }

        #[test]
        fn correlated_exists_equals_datafusion(epochs in epochs()) {
            check(SemiKind::Semi, Shape::Keyed { residual: true },
                "SELECT lk, lv FROM l WHERE EXISTS (SELECT 1 FROM r WHERE rk = lk AND rv > lv)", epochs)?;
        }

        #[test]
        fn correlated_not_exists_equals_datafusion(epochs in epochs()) {
            check(SemiKind::Anti, Shape::Keyed { residual: true },
                "SELECT lk, lv FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE rk = lk AND rv > lv)", epochs)?;
        }

        #[test]
        fn not_in_equals_datafusion(epochs in epochs()) {
            check(SemiKind::NullAwareAnti, Shape::Keyed { residual: false },
                "SELECT lk, lv FROM l WHERE lk NOT IN (SELECT rk FROM r)", epochs)?;
        }

        #[test]
        fn intersect_all_equals_datafusion(epochs in epochs()) {
            check(SemiKind::Semi, Shape::WholeRow,
                "SELECT lk, lv FROM l INTERSECT ALL SELECT rk, rv FROM r", epochs)?;
        }

        #[test]
        fn except_all_equals_datafusion(epochs in epochs()) {
            check(SemiKind::Anti, Shape::WholeRow,
                "SELECT lk, lv FROM l EXCEPT ALL SELECT rk, rv FROM r", epochs)?;
        }
    }

    #[test]
    fn a_stream_left_side_is_judged_when_its_rows_arrive() {
        let mut join = op(SemiKind::Semi, Shape::Keyed { residual: false }, false);
        let mut ctx = Ctx::default();
        let early = join
            .process(0, batch("l", &[(1, Some(1), 10)]), &mut ctx)
            .unwrap();
        assert!(early.is_empty());
        let matched = join
            .process(1, batch("r", &[(1, Some(1), 0)]), &mut ctx)
            .unwrap();
        assert!(matched.is_empty(), "past stream rows are not revised");
        let late = join
            .process(0, batch("l", &[(1, Some(1), 11)]), &mut ctx)
            .unwrap();
        assert_eq!(
            crate::core::batch::tests_support::render(&late),
            vec!["+1 1|11"]
        );
        assert_eq!(
            join.state_rows(),
            1,
            "only the right side's key count is kept"
        );
    }
}
