//! Casts that Arrow performs differently from Postgres, replaced on the plan by functions
//! that do what Postgres does:
//!
//! - to `text`/`varchar`: a value's text is its Postgres output text (`2026-01-01 10:30:00`,
//!   `1 day 02:00:00`, `1e+20`), the same text [`crate::server::pg_text`] sends to
//!   clients — Arrow's cast writes `2026-01-01T10:30:00`, `1 days 2 hours`, `1e20`;
//! - numeric → integer rounds half away from zero (`2.5::numeric::int` is 3) and float →
//!   integer rounds half to even (`2.5::float8::int` is 2, rint); Arrow truncates. Out of
//!   range (or NaN) is 22003.
//!
//! The invariant: the rewritten expression has the cast's type and keeps its name, so the
//! plan's schema does not change.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float32Type, Float64Type};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use crate::error::EddyError;
use crate::server::pg_text;

fn user_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(EddyError::BadValue {
        code,
        message: message.into(),
    }))
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether Arrow's text for this type differs from Postgres' (integers and strings agree,
/// and a boolean cast to text is `true`/`false` in Postgres too, unlike its output `t`).
fn needs_pg_text(t: &DataType) -> bool {
    !(is_string(t) || t.is_integer() || matches!(t, DataType::Null | DataType::Boolean))
}

/// Rewrite the casts of `plan` (and its subqueries) that Postgres performs differently.
pub fn postgres_casts(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let schema = match node.inputs().as_slice() {
            [one] => one.schema().clone(),
            _ => node.schema().clone(),
        };
        let names = NamePreserver::new(&node);
        let node = node.map_expressions(|e| {
            let saved = names.save(&e);
            let t = e.transform_up(|x| rewrite_cast(x, &schema))?;
            Ok(if t.transformed {
                Transformed::yes(saved.restore(t.data))
            } else {
                t
            })
        })?;
        if node.transformed {
            node.map_data(|p| p.recompute_schema())
        } else {
            Ok(node)
        }
    })
    .map(|t| t.data)
}

fn rewrite_cast(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(c) = &e else {
        return Ok(Transformed::no(e));
    };
    let to = c.field.data_type().clone();
    let Ok(from) = c.expr.get_type(schema) else {
        return Ok(Transformed::no(e));
    };
    let udf = if to == DataType::Utf8 && needs_pg_text(&from) {
        pg_text_udf()
    } else if to.is_integer()
        && matches!(to, DataType::Int16 | DataType::Int32 | DataType::Int64)
        && (from.is_floating() || matches!(from, DataType::Decimal128(_, _)))
    {
        round_to_int(&to)
    } else {
        return Ok(Transformed::no(e));
    };
    let Expr::Cast(c) = e else {
        unreachable!("matched above")
    };
    Ok(Transformed::yes(Expr::ScalarFunction(
        ScalarFunction::new_udf(udf, vec![*c.expr]),
    )))
}

/// A value's Postgres output text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgText {
    signature: Signature,
}

impl ScalarUDFImpl for PgText {
    fn name(&self) -> &str {
        "eddy_pg_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (array, scalar) = match &args.args[0] {
            ColumnarValue::Array(a) => (a.clone(), false),
            ColumnarValue::Scalar(s) => (s.to_array()?, true),
        };
        let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
        for i in 0..array.len() {
            out.append_option(pg_text::format_value(&array, i));
        }
        let out: ArrayRef = Arc::new(out.finish());
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn pg_text_udf() -> Arc<ScalarUDF> {
    static F: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    F.get_or_init(|| {
        Arc::new(ScalarUDF::new_from_impl(PgText {
            signature: Signature::any(1, Volatility::Immutable),
        }))
    })
    .clone()
}

/// numeric or float → smallint/integer/bigint, rounding as Postgres does.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundToInt {
    name: &'static str,
    target: DataType,
    signature: Signature,
}

fn range_error(t: &DataType) -> DataFusionError {
    let name = match t {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        _ => "bigint",
    };
    user_error("22003", format!("{name} out of range"))
}

/// Round half away from zero at scale 0.
fn round_decimal(v: i128, scale: i8) -> i128 {
    if scale <= 0 {
        return v.saturating_mul(10i128.saturating_pow((-scale) as u32));
    }
    let div = 10i128.pow(scale as u32);
    let (q, r) = (v / div, v % div);
    if r.unsigned_abs() * 2 >= div as u128 {
        q + v.signum()
    } else {
        q
    }
}

impl ScalarUDFImpl for RoundToInt {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (array, scalar) = match &args.args[0] {
            ColumnarValue::Array(a) => (a.clone(), false),
            ColumnarValue::Scalar(s) => (s.to_array()?, true),
        };
        let (lo, hi) = match self.target {
            DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
            DataType::Int32 => (i32::MIN as i128, i32::MAX as i128),
            _ => (i64::MIN as i128, i64::MAX as i128),
        };
        let from_float = |x: f64| -> Result<i128> {
            let r = x.round_ties_even();
            // NaN and values beyond i128 fail the range check below.
            if !r.is_finite() || r < lo as f64 || r > hi as f64 {
                return Err(range_error(&self.target));
            }
            Ok(r as i128)
        };
        let mut values: Vec<Option<i64>> = Vec::with_capacity(array.len());
        for i in 0..array.len() {
            if array.is_null(i) {
                values.push(None);
                continue;
            }
            let v = match array.data_type() {
                DataType::Decimal128(_, s) => {
                    round_decimal(array.as_primitive::<Decimal128Type>().value(i), *s)
                }
                DataType::Float32 => {
                    from_float(array.as_primitive::<Float32Type>().value(i) as f64)?
                }
                DataType::Float64 => from_float(array.as_primitive::<Float64Type>().value(i))?,
                other => {
                    return Err(DataFusionError::Internal(format!(
                        "rounding {other} to an integer"
                    )))
                }
            };
            if v < lo || v > hi {
                return Err(range_error(&self.target));
            }
            values.push(Some(v as i64));
        }
        let out: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(values));
        let out = datafusion::arrow::compute::cast(&out, &self.target)?;
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn round_to_int(target: &DataType) -> Arc<ScalarUDF> {
    static I2: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    static I4: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    static I8: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    let make = |name: &'static str, target: DataType| {
        Arc::new(ScalarUDF::new_from_impl(RoundToInt {
            name,
            target,
            signature: Signature::any(1, Volatility::Immutable),
        }))
    };
    match target {
        DataType::Int16 => I2.get_or_init(|| make("eddy_round_int2", DataType::Int16)),
        DataType::Int32 => I4.get_or_init(|| make("eddy_round_int4", DataType::Int32)),
        _ => I8.get_or_init(|| make("eddy_round_int8", DataType::Int64)),
    }
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_rounds_half_away_from_zero() {
        assert_eq!(round_decimal(25, 1), 3);
        assert_eq!(round_decimal(-35, 1), -4);
        assert_eq!(round_decimal(1249, 2), 12);
        assert_eq!(round_decimal(7, 0), 7);
    }
}
