//! PostgreSQL semantics DataFusion lacks, added to its planner: an [`ExprPlanner`] that
//! types operators as Postgres does (integer overflow raises 22003, `interval × number`,
//! `date ± interval` is a timestamp, `real` mixed with integers or numerics is computed in
//! double precision, `extract` returns numeric) and scalar functions Postgres has
//! (`pg_typeof`, `justify_*`, the degree trigonometric functions, `to_char` with Postgres
//! patterns, …). The invariant: each one either answers as PostgreSQL 15 would or fails
//! the statement with an SQL error — never a different value.

mod arith;
mod casts;
mod date_trunc;
mod datetime;
mod ksql;
mod math;
mod numeric;
pub mod panic_safe;
mod pg_casts;
mod rounding;
mod row_fn;
mod strings;
mod to_char;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{cast, Expr, ExprSchemable, ScalarUDF};
use datafusion::sql::sqlparser::ast::BinaryOperator;

pub use casts::check_casts;
pub use pg_casts::postgres_casts;
pub use row_fn::RowFunction;

/// Add eddy's Postgres planner (ahead of DataFusion's own) and functions to a session,
/// and guard every scalar function so that none can panic ([`panic_safe`]).
pub fn with_postgres_semantics(state: SessionState) -> SessionState {
    let mut planners: Vec<Arc<dyn ExprPlanner>> = vec![Arc::new(PostgresPlanner)];
    planners.extend(state.expr_planners().iter().cloned());
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_expr_planners(planners)
        .build();
    use datafusion::execution::FunctionRegistry;
    for f in functions() {
        // Remove DataFusion's function of that name with all its aliases first: a stale
        // alias (to_char's `date_format`) would bring the old function back under our name
        // whenever a SessionStateBuilder re-registers the map's values in hash order.
        let _ = state.deregister_udf(f.name());
        for alias in f.aliases() {
            let _ = state.deregister_udf(alias);
        }
        let _ = state.register_udf(f);
    }
    for f in strings::aggregates() {
        let _ = state.register_udaf(f);
    }
    // After every other function: registering a function again drops the aliases of the
    // one it replaces, so an alias added earlier would be lost (and an alias of
    // DataFusion's version, registered late, would replace eddy's).
    for (alias, target) in ksql::ALIASES {
        use datafusion::execution::FunctionRegistry;
        if let Ok(f) = state.udf(target) {
            let _ = state.register_udf(Arc::new(f.as_ref().clone().with_aliases([*alias])));
        }
    }
    // Last, so that every function registered before is guarded.
    panic_safe::guard_all(state)
}

fn functions() -> Vec<Arc<ScalarUDF>> {
    let mut out = Vec::new();
    out.extend(math::functions());
    out.extend(datetime::functions());
    out.push(date_trunc::date_trunc());
    out.extend(rounding::functions());
    out.extend(strings::functions());
    out.extend(ksql::functions());
    out
}

/// Plans SQL operators with Postgres typing; anything it does not recognise is left to
/// DataFusion's planners.
#[derive(Debug)]
struct PostgresPlanner;

fn int_rank(t: &DataType) -> Option<u8> {
    match t {
        DataType::Int16 => Some(2),
        DataType::Int32 => Some(4),
        DataType::Int64 => Some(8),
        _ => None,
    }
}

/// An integer literal as Postgres types it: int4 when it fits (DataFusion reads every
/// integer literal as int8). Returns the expression and its type.
fn narrow(e: Expr, schema: &DFSchema) -> Result<(Expr, DataType)> {
    if let Expr::Literal(ScalarValue::Int64(Some(v)), _) = &e {
        if let Ok(v) = i32::try_from(*v) {
            return Ok((
                Expr::Literal(ScalarValue::Int32(Some(v)), None),
                DataType::Int32,
            ));
        }
    }
    let t = e.get_type(schema)?;
    Ok((e, t))
}

fn is_interval(t: &DataType) -> bool {
    matches!(t, DataType::Interval(_))
}

fn is_number(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _))
}

fn call(udf: Arc<ScalarUDF>, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(udf, args))
}

impl ExprPlanner for PostgresPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let arith = matches!(
            expr.op,
            BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::Divide
                | BinaryOperator::Modulo
        );
        if !arith {
            return Ok(PlannerResult::Original(expr));
        }
        let RawBinaryExpr { op, left, right } = expr;
        let (left, lt) = narrow(left, schema)?;
        let (right, rt) = narrow(right, schema)?;

        // interval × number, number × interval, interval ÷ number
        let interval_mul = matches!(op, BinaryOperator::Multiply | BinaryOperator::Divide);
        if interval_mul && is_interval(&lt) && is_number(&rt) {
            let f = if op == BinaryOperator::Divide {
                math::interval_div()
            } else {
                math::interval_mul()
            };
            return Ok(PlannerResult::Planned(call(
                f,
                vec![to_mdn(left, &lt), cast(right, DataType::Float64)],
            )));
        }
        if op == BinaryOperator::Multiply && is_number(&lt) && is_interval(&rt) {
            return Ok(PlannerResult::Planned(call(
                math::interval_mul(),
                vec![to_mdn(right, &rt), cast(left, DataType::Float64)],
            )));
        }

        // date ± interval is a timestamp
        if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus)
            && lt == DataType::Date32
            && is_interval(&rt)
        {
            let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
            return Ok(PlannerResult::Original(RawBinaryExpr {
                op,
                left: cast(left, ts),
                right,
            }));
        }

        // numeric division has Postgres' result scale (an integer operand is a numeric)
        if op == BinaryOperator::Divide
            && ((is_decimal(&lt) && (is_decimal(&rt) || rt.is_integer()))
                || (lt.is_integer() && is_decimal(&rt)))
        {
            return Ok(PlannerResult::Planned(call(
                numeric::numeric_div(),
                vec![to_decimal(left, &lt)?, to_decimal(right, &rt)?],
            )));
        }

        // integer arithmetic is checked: overflow is 22003, not a wrapped value
        if let (Some(a), Some(b)) = (int_rank(&lt), int_rank(&rt)) {
            if matches!(
                op,
                BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply
            ) {
                let t = if a >= b { lt.clone() } else { rt.clone() };
                let which = match op {
                    BinaryOperator::Plus => arith::CheckedOp::Add,
                    BinaryOperator::Minus => arith::CheckedOp::Sub,
                    _ => arith::CheckedOp::Mul,
                };
                return Ok(PlannerResult::Planned(call(
                    arith::checked(which),
                    vec![cast_if(left, &lt, &t), cast_if(right, &rt, &t)],
                )));
            }
            // Division and modulo keep DataFusion's (truncating, 22012 on zero), at the
            // narrowed type.
            let t = if a >= b { lt.clone() } else { rt.clone() };
            return Ok(PlannerResult::Original(RawBinaryExpr {
                op,
                left: cast_if(left, &lt, &t),
                right: cast_if(right, &rt, &t),
            }));
        }

        // Postgres has no % on real or double precision
        if op == BinaryOperator::Modulo && (lt.is_floating() || rt.is_floating()) {
            return Err(datafusion::common::DataFusionError::External(Box::new(
                crate::error::EddyError::query(
                    "42883",
                    format!(
                        "operator does not exist: {} % {}",
                        crate::sql::types::pg_type_name(&lt),
                        crate::sql::types::pg_type_name(&rt)
                    ),
                ),
            )));
        }

        // float division by zero is 22012, not Infinity
        if op == BinaryOperator::Divide && (lt.is_floating() || rt.is_floating()) {
            let t = if lt == DataType::Float32 && rt == DataType::Float32 {
                DataType::Float32
            } else {
                DataType::Float64
            };
            return Ok(PlannerResult::Planned(call(
                arith::checked(arith::CheckedOp::FloatDiv),
                vec![cast_if(left, &lt, &t), cast_if(right, &rt, &t)],
            )));
        }

        // real mixed with an integer or numeric is computed in double precision
        let real_mix = |a: &DataType, b: &DataType| {
            *a == DataType::Float32 && (b.is_integer() || matches!(b, DataType::Decimal128(_, _)))
        };
        if real_mix(&lt, &rt) || real_mix(&rt, &lt) {
            return Ok(PlannerResult::Original(RawBinaryExpr {
                op,
                left: cast(left, DataType::Float64),
                right: cast(right, DataType::Float64),
            }));
        }
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }

    fn plan_extract(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        datetime::plan_extract(args)
    }
}

fn is_decimal(t: &DataType) -> bool {
    matches!(t, DataType::Decimal128(_, _))
}

/// An integer or decimal operand as a decimal; a constant stays a literal (folded here,
/// so that functions typed by their constant arguments see it).
fn to_decimal(e: Expr, t: &DataType) -> Result<Expr> {
    let target = match t {
        DataType::Int8 => DataType::Decimal128(3, 0),
        DataType::Int16 => DataType::Decimal128(5, 0),
        DataType::Int32 => DataType::Decimal128(10, 0),
        DataType::Int64 => DataType::Decimal128(19, 0),
        _ => t.clone(),
    };
    match fold_constant(&e) {
        Some(v) => Ok(Expr::Literal(v.cast_to(&target)?, None)),
        None => Ok(cast_if(e, t, &target)),
    }
}

/// The value of an expression without columns (`'7'::smallint`, `-2.5`), if it has one
/// here; `None` for anything else, or if evaluating it fails (the error is then raised
/// where the expression runs, as before).
fn fold_constant(e: &Expr) -> Option<ScalarValue> {
    use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
    use datafusion::logical_expr::ColumnarValue;
    if let Expr::Literal(v, _) = e {
        return Some(v.clone());
    }
    if !e.column_refs().is_empty() || e.is_volatile() {
        return None;
    }
    let props = datafusion::execution::context::ExecutionProps::new();
    let schema = DFSchema::empty();
    let phys =
        datafusion::physical_expr::create_physical_expr(e, &schema, &props, &Default::default())
            .ok()?;
    let batch = RecordBatch::try_new_with_options(
        Arc::new(datafusion::arrow::datatypes::Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .ok()?;
    match phys.evaluate(&batch).ok()? {
        ColumnarValue::Scalar(v) => Some(v),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0).ok(),
    }
}

fn cast_if(e: Expr, from: &DataType, to: &DataType) -> Expr {
    if from == to {
        e
    } else {
        cast(e, to.clone())
    }
}

fn to_mdn(e: Expr, t: &DataType) -> Expr {
    let mdn = DataType::Interval(IntervalUnit::MonthDayNano);
    cast_if(e, t, &mdn)
}
