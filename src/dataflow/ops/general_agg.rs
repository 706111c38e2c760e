//! Aggregates that cannot be updated by weight (bool_and, stddev, string_agg, array_agg,
//! percentiles, any DISTINCT or ORDER BY form, user-defined ones): the aggregate operator
//! keeps each group's input rows as a multiset and, when a group changes, feeds them to a
//! fresh DataFusion [`Accumulator`] and takes its answer. Every aggregate DataFusion has
//! works this way without code of its own; the cost is the touched group's size per epoch.
//!
//! Invariant: a group's stored multiset is exactly the rows (after FILTER) the group holds,
//! each as one row-format entry of (ORDER BY values, arguments) with its multiplicity; the
//! row format orders entries by the ORDER BY keys with their directions, so the
//! accumulator sees the rows in the aggregate's own order.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::DFSchema;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;

use crate::core::batch::take_columns;
use crate::error::{EddyError, Result};

pub struct GeneralAgg {
    expr: Arc<AggregateFunctionExpr>,
    /// Evaluated per input row: the ORDER BY expressions, then the arguments.
    inputs: Vec<Arc<dyn PhysicalExpr>>,
    order_len: usize,
    converter: RowConverter,
}

impl GeneralAgg {
    /// Plan `e` (an aggregate function call, as in a logical Aggregate over `in_schema`)
    /// with DataFusion's physical planner. Returns the aggregate and its FILTER, if any.
    pub fn try_new(
        e: &Expr,
        in_schema: &DFSchema,
        props: &ExecutionProps,
    ) -> Result<(Self, Option<Arc<dyn PhysicalExpr>>)> {
        #[allow(deprecated)]
        let (expr, filter, order_by) =
            datafusion::physical_planner::create_aggregate_expr_and_maybe_filter(
                e,
                in_schema,
                in_schema.as_arrow(),
                props,
            )?;
        let args = expr.expressions();
        let schema = in_schema.as_arrow();
        let mut fields = Vec::new();
        let mut inputs = Vec::new();
        for s in &order_by {
            fields.push(SortField::new_with_options(
                s.expr.data_type(schema)?,
                s.options,
            ));
            inputs.push(s.expr.clone());
        }
        for a in &args {
            fields.push(SortField::new(a.data_type(schema)?));
            inputs.push(a.clone());
        }
        Ok((
            GeneralAgg {
                expr,
                order_len: order_by.len(),
                inputs,
                converter: RowConverter::new(fields)?,
            },
            filter,
        ))
    }

    /// Each row of `batch` as a stored entry.
    pub fn rows(&self, batch: &RecordBatch) -> Result<Rows> {
        let n = batch.num_rows();
        let cols = self
            .inputs
            .iter()
            .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        Ok(self.converter.convert_columns(&cols)?)
    }

    /// The aggregate over a group's stored rows.
    pub fn evaluate(&self, rows: &imbl::OrdMap<std::sync::Arc<[u8]>, i64>) -> Result<ScalarValue> {
        let mut acc = self.expr.create_accumulator()?;
        if !rows.is_empty() {
            let parser = self.converter.parser();
            let columns = self
                .converter
                .convert_rows(rows.keys().map(|r| parser.parse(r)))?;
            let mut take = Vec::new();
            for (i, c) in rows.values().enumerate() {
                if *c < 0 {
                    return Err(EddyError::internal(
                        "aggregate group retracted a row it never had",
                    ));
                }
                take.extend(std::iter::repeat_n(i as u32, *c as usize));
            }
            let columns = take_columns(&columns, &UInt32Array::from(take))?;
            // DataFusion's accumulators take the arguments first, then the ORDER BY values.
            let (order, args) = columns.split_at(self.order_len);
            let values: Vec<ArrayRef> = args.iter().chain(order).cloned().collect();
            acc.update_batch(&values)?;
        }
        Ok(acc.evaluate()?)
    }

    pub fn name(&self) -> &str {
        self.expr.name()
    }
}

#[cfg(test)]
mod differential {
    //! The aggregate operator with general aggregates alone against DataFusion from
    //! scratch: random inserts and retracts, epochs committed or aborted at random; after
    //! every epoch the committed output equals DataFusion's GROUP BY over the committed
    //! rows. The aggregates are planned from the oracle's own SQL.
    use super::*;
    use crate::core::batch::tests_support::{build, datafusion_rows, Accumulated};
    use crate::dataflow::operator::{Ctx, Operator};
    use crate::dataflow::ops::aggregate::{AggKind, AggSpec, AggregateOp};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::LogicalPlan;
    use datafusion::physical_expr::create_physical_expr;
    use proptest::prelude::*;

    const ORACLE: &str = "SELECT k, bool_and(v > 0) AS a, bool_or(v > 2) AS b, \
        string_agg(CAST(v AS VARCHAR), ',' ORDER BY v) FILTER (WHERE v > 0) AS c, \
        array_agg(v ORDER BY v DESC) AS d, sum(DISTINCT v) AS e, median(v) AS f, \
        bit_xor(v) AS g, first_value(v ORDER BY v) AS h, count(v) FILTER (WHERE v > 1) AS i \
        FROM t GROUP BY k";

    fn input_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]))
    }

    /// The oracle's Aggregate, planned by DataFusion (analyzer only), as an operator whose
    /// aggregates are all general.
    fn op() -> AggregateOp {
        use datafusion::execution::SessionStateBuilder;
        use datafusion::prelude::SessionContext;
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_optimizer_rules(vec![])
            .build();
        let ctx = SessionContext::new_with_state(state);
        let empty = RecordBatch::new_empty(input_schema());
        ctx.register_batch("t", empty).expect("register t");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let plan = rt.block_on(async {
            let plan = ctx
                .state()
                .create_logical_plan(ORACLE)
                .await
                .expect("plans");
            ctx.state().optimize(&plan).expect("analyzes")
        });
        let mut found = None;
        plan.apply(|n| {
            if let LogicalPlan::Aggregate(a) = n {
                found = Some(a.clone());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .expect("walks");
        let a = found.expect("an Aggregate");
        let props = ExecutionProps::new();
        let in_schema = a.input.schema();
        let groups = a
            .group_expr
            .iter()
            .map(|g| {
                create_physical_expr(g, in_schema, &props, &Default::default()).expect("group key")
            })
            .collect();
        let out = crate::plan::nullable(a.schema.as_arrow());
        let aggs = a
            .aggr_expr
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let inner = match e {
                    Expr::Alias(al) => al.expr.as_ref(),
                    other => other,
                };
                let (general, filter) =
                    GeneralAgg::try_new(inner, in_schema, &props).expect("general aggregate");
                AggSpec {
                    kind: AggKind::General,
                    arg: datafusion::physical_expr::expressions::lit(true),
                    arg_type: DataType::Boolean,
                    filter,
                    output_type: out.field(1 + i).data_type().clone(),
                    display: general.name().to_string(),
                    general: Some(general),
                }
            })
            .collect();
        AggregateOp::try_new(groups, vec![DataType::Utf8], aggs, out).expect("operator")
    }

    type Epoch = (Vec<(u8, Option<i64>, bool)>, bool);

    fn epochs() -> impl Strategy<Value = Vec<Epoch>> {
        let row = (
            0u8..3,
            proptest::option::weighted(0.85, -2i64..5),
            proptest::bool::weighted(0.4),
        );
        proptest::collection::vec(
            (
                proptest::collection::vec(row, 0..7),
                proptest::bool::weighted(0.3),
            ),
            1..10,
        )
    }

    fn row(k: u8, v: Option<i64>) -> Vec<ScalarValue> {
        vec![
            ScalarValue::from(["a", "b", "c"][k as usize]),
            ScalarValue::Int64(v),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn general_aggregates_equal_datafusion_after_every_epoch(epochs in epochs()) {
            let mut agg = op();
            let mut view = Accumulated::default();
            let mut committed: Vec<(u8, Option<i64>)> = Vec::new();
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
                let out = agg.process(0, build(input_schema(), delta), &mut Ctx::default());
                if abort {
                    for t in agg.state_tables() { t.abort(); }
                } else {
                    let out = out.expect("valid input");
                    for t in agg.state_tables() { t.commit(); }
                    view.apply(&out);
                    committed = live;
                }
                let table = build(
                    input_schema(),
                    committed.iter().map(|(k, v)| (1, row(*k, *v))).collect(),
                );
                let expected = datafusion_rows(vec![("t", table.data)], ORACLE);
                prop_assert_eq!(view.rows(), expected);
            }
        }
    }
}
