//! The DataFusion optimizer rules a view's plan goes through before it is lowered.
//!
//! Only rules that keep the query's meaning and give the dataflow a shape it can maintain:
//! subqueries (EXISTS, IN, NOT IN, scalar) decorrelated into semi, anti and outer joins; a
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

use crate::error::Result;

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
    let config = OptimizerContext::new().filter_null_keys(false);
    Ok(Optimizer::with_rules(view_rules()).optimize(plan, &config, |_, _| {})?)
}
