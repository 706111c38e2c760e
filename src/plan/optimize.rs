//! The DataFusion optimizer rules a view's plan goes through before it is lowered.
//!
//! Only rules that keep the query's meaning and give the dataflow a shape it can maintain:
//! subqueries (EXISTS, IN, NOT IN, scalar — correlated or not) turned into semi, anti and
//! outer joins; a
//! cross join under an equality filter (`FROM a, b WHERE a.k = b.k`) turned into an inner
//! join; filters pushed towards the inputs, so operators see fewer rows and joins get their
//! keys. Rules that only matter for batch execution (limits, projections, common
//! subexpressions) are left out: the dataflow keeps the query's shape otherwise.
//!
//! Windowed queries (TUMBLE/HOP/SESSION, JOIN ... WITHIN) skip these rules: their rewrite
//! relies on the exact shape the window rewrite produced (a filter moved below a session
//! assignment would change which rows form a session).

use std::sync::Arc;

use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{Optimizer, OptimizerContext, OptimizerRule};

use crate::error::{EddyError, Result};

fn view_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    use datafusion::optimizer::*;
    vec![
        Arc::new(rewrite_set_comparison::RewriteSetComparison::new()),
        Arc::new(simplify_expressions::SimplifyExpressions::new()),
        Arc::new(eliminate_join::EliminateJoin::new()),
        Arc::new(decorrelate_predicate_subquery::DecorrelatePredicateSubquery::new()),
        Arc::new(scalar_subquery_to_join::ScalarSubqueryToJoin::new()),
        Arc::new(extract_equijoin_predicate::ExtractEquijoinPredicate::new()),
        Arc::new(eliminate_filter::EliminateFilter::new()),
        Arc::new(eliminate_cross_join::EliminateCrossJoin::new()),
        Arc::new(eliminate_outer_join::EliminateOuterJoin::new()),
        Arc::new(push_down_filter::PushDownFilter::new()),
    ]
}

/// Run the view rules over an analyzed plan; `windowed` plans are returned unchanged.
pub fn optimize_view(plan: LogicalPlan, windowed: bool) -> Result<LogicalPlan> {
    if windowed || super::check_no_session_windows(&plan).is_err() {
        return Ok(plan);
    }
    check_scalar_subqueries(&plan)?;
    // Uncorrelated scalar subqueries become joins too (batch execution runs them apart).
    let mut options = datafusion::config::ConfigOptions::default();
    options
        .optimizer
        .enable_physical_uncorrelated_scalar_subquery = false;
    let config =
        OptimizerContext::new_with_config_options(Arc::new(options)).filter_null_keys(false);
    Ok(Optimizer::with_rules(view_rules()).optimize(plan, &config, |_, _| {})?)
}

/// A scalar subquery must give at most one row (batch execution checks it as it runs; a
/// join would repeat the outer row instead). Uncorrelated ones become joins here, so each
/// must be one row by its shape: an aggregate without GROUP BY, or LIMIT 1.
fn check_scalar_subqueries(plan: &LogicalPlan) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Expr;
    let mut bad = false;
    plan.apply(|node| {
        for e in node.expressions() {
            e.apply(|x| {
                if let Expr::ScalarSubquery(sq) = x {
                    if sq.outer_ref_columns.is_empty() && !at_most_one_row(&sq.subquery) {
                        bad = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if bad {
        return Err(EddyError::unsupported(
            "a scalar subquery that may return several rows in a continuous query; aggregate it or add LIMIT 1",
        ));
    }
    Ok(())
}

fn at_most_one_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => a.group_expr.is_empty(),
        LogicalPlan::Projection(p) => at_most_one_row(&p.input),
        LogicalPlan::Filter(f) => at_most_one_row(&f.input),
        LogicalPlan::SubqueryAlias(a) => at_most_one_row(&a.input),
        LogicalPlan::Sort(s) => s.fetch.is_some_and(|f| f <= 1) || at_most_one_row(&s.input),
        LogicalPlan::Limit(l) => {
            matches!(l.get_fetch_type(), Ok(datafusion::logical_expr::FetchType::Literal(Some(f))) if f <= 1)
                || at_most_one_row(&l.input)
        }
        LogicalPlan::EmptyRelation(_) => true,
        _ => false,
    }
}
