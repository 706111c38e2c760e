//! Casts PostgreSQL does not have are refused (42846) instead of answered: Arrow can turn
//! an integer into a date or a timestamp into a number, Postgres cannot, and a client
//! that sends one means something else. Checked on the plan as the SQL planner builds it,
//! where every cast is one the query wrote (or one of eddy's own rewrites, all allowed).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};

use crate::error::{EddyError, Result};
use crate::sql::types::pg_type_name;

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Interval(_)
            | DataType::Duration(_)
    )
}

fn is_number(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _))
}

/// Whether Postgres has a cast from `from` to `to` (for the pairs Arrow allows and
/// Postgres does not; everything else is left to Arrow).
pub fn postgres_allows(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    if from == to || matches!(from, T::Null | T::Utf8 | T::LargeUtf8 | T::Utf8View) {
        return true;
    }
    if matches!(to, T::Utf8 | T::LargeUtf8 | T::Utf8View) {
        return true;
    }
    // eddy keeps timestamp <-> bigint (its epoch-based event times, and existing clients
    // rely on it); Postgres has no such cast.
    if matches!(
        (from, to),
        (T::Timestamp(_, _), T::Int64) | (T::Int64, T::Timestamp(_, _))
    ) {
        return true;
    }
    // numbers and date/time values do not convert into each other
    if (is_number(from) && is_temporal(to)) || (is_temporal(from) && is_number(to)) {
        return false;
    }
    // booleans convert only to and from integer (int4)
    if matches!(from, T::Boolean) && is_number(to) || is_number(from) && matches!(to, T::Boolean) {
        return matches!(from, T::Int32) || matches!(to, T::Int32);
    }
    let date = |t: &DataType| matches!(t, T::Date32 | T::Date64);
    let time = |t: &DataType| matches!(t, T::Time32(_) | T::Time64(_));
    let interval = |t: &DataType| matches!(t, T::Interval(_) | T::Duration(_));
    let stamp = |t: &DataType| matches!(t, T::Timestamp(_, _));
    if (date(from) && (time(to) || interval(to)))
        || (time(from) && (date(to) || stamp(to)))
        || (stamp(from) && interval(to))
        || (interval(from) && (date(to) || stamp(to)))
    {
        return false;
    }
    true
}

/// Refuse the plan if it casts between types Postgres has no cast for.
pub fn check_casts(plan: &LogicalPlan) -> Result<()> {
    let mut err = None;
    let _ = plan.apply_with_subqueries(|node| {
        let inputs = node.inputs();
        let schema = match inputs.as_slice() {
            [one] => one.schema().clone(),
            _ => node.schema().clone(),
        };
        let _ = node.apply_expressions(|e| {
            e.apply(|x| {
                // `x::timestamptz` is planned as arrow_cast(x, 'Timestamp(…, Some("+00:00"))').
                let arrow_target;
                let (inner, to) = match x {
                    Expr::Cast(c) => (c.expr.as_ref(), c.field.data_type()),
                    Expr::TryCast(c) => (c.expr.as_ref(), c.field.data_type()),
                    Expr::ScalarFunction(f) if f.name() == "arrow_cast" && f.args.len() == 2 => {
                        let Expr::Literal(datafusion::common::ScalarValue::Utf8(Some(t)), _) =
                            &f.args[1]
                        else {
                            return Ok(TreeNodeRecursion::Continue);
                        };
                        let Ok(t) = t.parse::<DataType>() else {
                            return Ok(TreeNodeRecursion::Continue);
                        };
                        arrow_target = t;
                        (&f.args[0], &arrow_target)
                    }
                    _ => return Ok(TreeNodeRecursion::Continue),
                };
                // An integer literal that fits is int4 in Postgres (DataFusion: int8).
                let literal_int4 = matches!(inner,
                    Expr::Literal(datafusion::common::ScalarValue::Int64(Some(v)), _)
                        if i32::try_from(*v).is_ok());
                let from = if literal_int4 {
                    Ok(DataType::Int32)
                } else {
                    inner.get_type(&schema)
                };
                if let Ok(from) = from {
                    if !postgres_allows(&from, to) {
                        err = Some(EddyError::query(
                            "42846",
                            format!(
                                "cannot cast type {} to {}",
                                pg_type_name(&from),
                                pg_type_name(to)
                            ),
                        ));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        });
        Ok(if err.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;

    #[test]
    fn casts_postgres_lacks() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert!(!postgres_allows(&DataType::Int32, &DataType::Date32));
        assert!(!postgres_allows(&ts, &DataType::Int32));
        assert!(postgres_allows(&ts, &DataType::Int64)); // eddy's extension
        assert!(!postgres_allows(&DataType::Float64, &DataType::Boolean));
        assert!(postgres_allows(&DataType::Int32, &DataType::Boolean));
        assert!(postgres_allows(&DataType::Date32, &ts));
        assert!(postgres_allows(&DataType::Utf8, &DataType::Date32));
        assert!(postgres_allows(&DataType::Int32, &DataType::Float64));
    }
}
