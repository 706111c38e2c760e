//! Equi-join of two inputs, INNER, LEFT, RIGHT or FULL OUTER, maintained incrementally.
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
//! OUTER sides: a row of an outer side with no match is emitted padded with NULLs; when its
//! key gains its first match on the other side the padded row is retracted, and re-emitted
//! when the last match goes (only for stored sides: a stream's past output stays as it was).
//! Rows with a NULL in the key never match (SQL equality).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows};
use datafusion::physical_expr::PhysicalExpr;

use crate::core::batch::{row_converter, row_converter_for, ChangeBatch};
use crate::dataflow::operator::{Ctx, Operator};
use crate::error::{EddyError, Result};
use crate::state::table::{IndexedZSet, StateTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

impl JoinKind {
    /// Whether rows of side 0 (left) / 1 (right) appear padded when unmatched.
    fn outer(&self, side: usize) -> bool {
        matches!(
            (self, side),
            (JoinKind::Left | JoinKind::Full, 0) | (JoinKind::Right | JoinKind::Full, 1)
        )
    }
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
    state: [Option<IndexedZSet>; 2],
    /// Each side's all-NULL row, for padding.
    null_rows: [Vec<u8>; 2],
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
        let left_conv = row_converter(&left)?;
        let right_conv = row_converter(&right)?;
        let null_rows = [null_row(&left, &left_conv)?, null_row(&right, &right_conv)?];
        Ok(JoinOp {
            kind,
            key_converter: row_converter_for(&key_types)?,
            key_types,
            keys: [left_keys, right_keys],
            converters: [left_conv, right_conv],
            schemas: [left, right],
            output,
            state: [
                store_left.then(|| IndexedZSet::new("left rows")),
                store_right.then(|| IndexedZSet::new("right rows")),
            ],
            null_rows,
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
        joined_rows(&self.converters, &self.output, out)
    }
}

/// The row-format encoding of a row of NULLs (outer-join padding).
pub(super) fn null_row(schema: &SchemaRef, conv: &RowConverter) -> Result<Vec<u8>> {
    let nulls: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| datafusion::arrow::array::new_null_array(f.data_type(), 1))
        .collect();
    Ok(conv.convert_columns(&nulls)?.row(0).data().to_vec())
}

/// A change batch of joined rows `(weight, left row, right row)` in row format.
pub(super) fn joined_rows(
    converters: &[RowConverter; 2],
    output: &SchemaRef,
    out: Vec<(i64, Vec<u8>, Vec<u8>)>,
) -> Result<ChangeBatch> {
    if out.is_empty() {
        return Ok(ChangeBatch::empty(output.clone()));
    }
    let lp = converters[0].parser();
    let rp = converters[1].parser();
    let mut columns = converters[0].convert_rows(out.iter().map(|(_, l, _)| lp.parse(l)))?;
    columns.extend(converters[1].convert_rows(out.iter().map(|(_, _, r)| rp.parse(r)))?);
    let weights = Int64Array::from(out.iter().map(|(w, _, _)| *w).collect::<Vec<_>>());
    Ok(ChangeBatch::new(
        RecordBatch::try_new(output.clone(), columns)?,
        weights,
    ))
}

impl Operator for JoinOp {
    fn process(&mut self, input: usize, batch: ChangeBatch, _ctx: &mut Ctx) -> Result<ChangeBatch> {
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
        let (outer_here, outer_there) = (self.kind.outer(side), self.kind.outer(other));
        for i in 0..batch.len() {
            let w = batch.weights.value(i);
            let row = rows.row(i);
            let row = row.data();
            if !valid[i] {
                // A NULL key never matches; an outer side's row still appears, padded.
                if outer_here {
                    let (l, r) = pair(row, &self.null_rows[other]);
                    out.push((w, l, r));
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
            if outer_here && matches.map(|m| m.total).unwrap_or(0) == 0 {
                let (l, r) = pair(row, &self.null_rows[other]);
                out.push((w, l, r));
            }
            if outer_there {
                // The other side's rows of this key lose or regain their padding.
                if let Some(theirs) = matches {
                    let before = self.state[side]
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
                        for (t, c) in &theirs.rows {
                            let (l, r) = pair(&self.null_rows[side], t);
                            // pair() puts `mine` on this side: here the NULLs are ours.
                            out.push((flip * c, l, r));
                        }
                    }
                }
            }
            if let Some(state) = self.state[side].as_mut() {
                state.add(key, row, w)?;
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
            .map(|s| s.total().max(0) as usize)
            .sum()
    }

    fn state_tables(&mut self) -> Vec<&mut dyn StateTable> {
        self.state
            .iter_mut()
            .flatten()
            .map(|s| s as &mut dyn StateTable)
            .collect()
    }
}

#[cfg(test)]
mod differential {
    //! The operator alone against DataFusion from scratch: random inserts and retracts on
    //! both sides (NULL keys included), epochs committed or aborted at random; after every
    //! epoch the committed output equals the batch join of the committed rows.
    use super::*;
    use crate::core::batch::tests_support::{build, datafusion_rows, Accumulated};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::col;
    use datafusion::scalar::ScalarValue;
    use proptest::prelude::*;

    fn side(prefix: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(format!("{prefix}k"), DataType::Int64, true),
            Field::new(format!("{prefix}v"), DataType::Int64, true),
        ]))
    }

    fn op(kind: JoinKind) -> JoinOp {
        let (l, r) = (side("l"), side("r"));
        let out = Arc::new(Schema::new(
            l.fields()
                .iter()
                .chain(r.fields().iter())
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        JoinOp::try_new(
            kind,
            vec![col("lk", &l).unwrap()],
            vec![col("rk", &r).unwrap()],
            l,
            r,
            out,
            true,
            true,
        )
        .unwrap()
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

    /// One epoch: per row (side, key, value, retract an existing row instead); whether the
    /// epoch aborts.
    fn epochs() -> impl Strategy<Value = Vec<(Vec<(usize, Option<i64>, i64, bool)>, bool)>> {
        let row = (
            0usize..2,
            proptest::option::weighted(0.85, 0i64..3),
            0i64..3,
            proptest::bool::weighted(0.35),
        );
        proptest::collection::vec(
            (
                proptest::collection::vec(row, 0..6),
                proptest::bool::weighted(0.3),
            ),
            1..10,
        )
    }

    fn check(
        kind: JoinKind,
        sql_kind: &str,
        epochs: Vec<(Vec<(usize, Option<i64>, i64, bool)>, bool)>,
    ) -> Result<(), TestCaseError> {
        let mut join = op(kind);
        let mut view = Accumulated::default();
        let mut committed: [Vec<(Option<i64>, i64)>; 2] = [vec![], vec![]];
        for (rows, abort) in epochs {
            let mut live = committed.clone();
            let mut deltas: [Vec<(i64, Option<i64>, i64)>; 2] = [vec![], vec![]];
            for (s, k, v, retract) in rows {
                if retract {
                    if let Some(p) = live[s].iter().position(|r| r.0 == k) {
                        let (rk, rv) = live[s].remove(p);
                        deltas[s].push((-1, rk, rv));
                    }
                } else {
                    live[s].push((k, v));
                    deltas[s].push((1, k, v));
                }
            }
            let mut ctx = Ctx::default();
            let out = join
                .process(0, batch("l", &deltas[0]), &mut ctx)
                .and_then(|a| Ok((a, join.process(1, batch("r", &deltas[1]), &mut ctx)?)));
            if abort {
                for t in join.state_tables() {
                    t.abort();
                }
            } else {
                let (a, b) = out.expect("valid input");
                for t in join.state_tables() {
                    t.commit();
                }
                view.apply(&a);
                view.apply(&b);
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
                &format!("SELECT lk, lv, rk, rv FROM l {sql_kind} JOIN r ON lk = rk"),
            );
            prop_assert_eq!(view.rows(), expected);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn inner_equals_datafusion_after_every_epoch(epochs in epochs()) {
            check(JoinKind::Inner, "INNER", epochs)?;
        }

        #[test]
        fn left_equals_datafusion_after_every_epoch(epochs in epochs()) {
            check(JoinKind::Left, "LEFT", epochs)?;
        }

        #[test]
        fn full_equals_datafusion_after_every_epoch(epochs in epochs()) {
            check(JoinKind::Full, "FULL", epochs)?;
        }
    }
}
