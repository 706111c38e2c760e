//! Numeric division as Postgres computes it. PostgreSQL picks the quotient's display scale
//! per value (numeric.c `select_div_scale`): at least 16 significant digits, and never less
//! than either input's scale — `2.5 / 7` is `0.35714285714285714286`, `6.0 / 3` is
//! `2.0000000000000000`. Arrow decimals have one scale per column, so:
//!
//! - when both operands are constants, the result type carries exactly that scale (the
//!   function is then folded to a literal of that type, and prints as Postgres prints it);
//! - otherwise the column has a wide scale (precision 38, which eddy prints in its shortest
//!   exact form) and each row is rounded at its own Postgres scale first, so the digits
//!   agree with Postgres' except for trailing zeros.
//!
//! The invariant: every quotient is Postgres' quotient, rounded (half away from zero) at
//! Postgres' scale; a zero divisor is 22012, a quotient too wide for 38 digits is 22003.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, AsArray, Decimal128Builder};
use datafusion::arrow::datatypes::{i256, DataType, Decimal128Type, Field, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::EddyError;

/// NUMERIC_MIN_SIG_DIGITS: "a result no less accurate than float8".
const MIN_SIG_DIGITS: i32 = 16;
/// Decimal digits in one of Postgres' base-10000 numeric digits (DEC_DIGITS).
const DEC_DIGITS: i32 = 4;
/// The widest Decimal128.
const MAX_PRECISION: i32 = 38;
/// The scale of a quotient of non-constant operands at least has room for this many digits.
const COLUMN_SCALE: i32 = 20;

fn user_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(EddyError::BadValue {
        code,
        message: message.into(),
    }))
}

/// The weight (position of the first non-zero base-10000 digit, 0 for the units group) and
/// that digit, of `v × 10^-scale`, as Postgres' NumericVar holds it. Zero is (0, 0).
fn weight_and_first_digit(v: i128, scale: i32) -> (i32, i32) {
    if v == 0 {
        return (0, 0);
    }
    let digits = v.unsigned_abs().to_string();
    let n = digits.len() as i32;
    // The decimal exponent of the leading digit, and the base-10000 group it falls in.
    let weight = (n - 1 - scale).div_euclid(DEC_DIGITS);
    let mut first = 0;
    for exponent in (DEC_DIGITS * weight..DEC_DIGITS * (weight + 1)).rev() {
        let i = n - 1 - scale - exponent;
        let d = if (0..n).contains(&i) {
            (digits.as_bytes()[i as usize] - b'0') as i32
        } else {
            0
        };
        first = first * 10 + d;
    }
    (weight, first)
}

/// Postgres' `select_div_scale` for `v1 × 10^-s1 / v2 × 10^-s2`.
pub fn div_scale(v1: i128, s1: i32, v2: i128, s2: i32) -> i32 {
    let (w1, d1) = weight_and_first_digit(v1, s1);
    let (w2, d2) = weight_and_first_digit(v2, s2);
    // If the first digits are equal we cannot be sure; assume var1 is less than var2.
    let mut qweight = w1 - w2;
    if d1 <= d2 {
        qweight -= 1;
    }
    (MIN_SIG_DIGITS - qweight * DEC_DIGITS)
        .max(s1)
        .max(s2)
        .clamp(0, 1000)
}

fn pow10(e: u32) -> Option<i256> {
    i256::from_i128(10).checked_pow(e)
}

/// The quotient at `scale`, rounded half away from zero; `None` if it does not fit.
fn quotient(v1: i128, s1: i32, v2: i128, s2: i32, scale: i32) -> Option<i128> {
    let shift = scale - s1 + s2;
    let mut num = i256::from_i128(v1);
    let mut den = i256::from_i128(v2);
    if shift >= 0 {
        num = num.checked_mul(pow10(shift as u32)?)?;
    } else {
        den = den.checked_mul(pow10((-shift) as u32)?)?;
    }
    let q = num.checked_div(den)?;
    let r = num.checked_rem(den)?;
    let two_r = r.wrapping_abs().checked_mul(i256::from_i128(2))?;
    let q = if two_r >= den.wrapping_abs() {
        if num.is_negative() != den.is_negative() {
            q.checked_sub(i256::from_i128(1))?
        } else {
            q.checked_add(i256::from_i128(1))?
        }
    } else {
        q
    };
    let q = q.to_i128()?;
    (q.unsigned_abs() < 10u128.pow(MAX_PRECISION as u32)).then_some(q)
}

fn digits(v: i128) -> i32 {
    v.unsigned_abs().to_string().len() as i32
}

fn decimal_parts(t: &DataType) -> Result<(u8, i32)> {
    match t {
        DataType::Decimal128(p, s) => Ok((*p, *s as i32)),
        other => Err(DataFusionError::Internal(format!(
            "numeric division of {other}"
        ))),
    }
}

/// `numeric / numeric` with Postgres' result scale.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericDiv {
    signature: Signature,
}

impl NumericDiv {
    /// The result type for operands of these types (and values, when constant).
    fn result_type(
        &self,
        l: &DataType,
        r: &DataType,
        values: [Option<&ScalarValue>; 2],
    ) -> Result<DataType> {
        let ((p1, s1), (_, s2)) = (decimal_parts(l)?, decimal_parts(r)?);
        if let [Some(ScalarValue::Decimal128(Some(a), _, _)), Some(ScalarValue::Decimal128(Some(b), _, _))] =
            values
        {
            if *b != 0 {
                let scale = div_scale(*a, s1, *b, s2);
                if let Some(q) = quotient(*a, s1, *b, s2, scale) {
                    let precision = digits(q).max(scale + 1);
                    // Precision 38 is how eddy marks a column of per-value scales.
                    if precision < MAX_PRECISION {
                        return Ok(DataType::Decimal128(precision as u8, scale as i8));
                    }
                }
            }
        }
        let int_digits = (p1 as i32 - s1) + s2 + 1;
        let scale = COLUMN_SCALE
            .max(s1)
            .max(s2)
            .min(MAX_PRECISION - int_digits)
            .max(s1.max(s2));
        Ok(DataType::Decimal128(MAX_PRECISION as u8, scale as i8))
    }
}

impl ScalarUDFImpl for NumericDiv {
    fn name(&self) -> &str {
        "eddy_numeric_div"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.result_type(&args[0], &args[1], [None, None])
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let (l, r) = (&args.arg_fields[0], &args.arg_fields[1]);
        let values = [
            args.scalar_arguments.first().copied().flatten(),
            args.scalar_arguments.get(1).copied().flatten(),
        ];
        let t = self.result_type(l.data_type(), r.data_type(), values)?;
        let nullable = l.is_nullable() || r.is_nullable();
        Ok(Arc::new(Field::new(self.name(), t, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (_, s1) = decimal_parts(args.arg_fields[0].data_type())?;
        let (_, s2) = decimal_parts(args.arg_fields[1].data_type())?;
        let (p, s) = match args.return_field.data_type() {
            DataType::Decimal128(p, s) => (*p, *s as i32),
            other => {
                return Err(DataFusionError::Internal(format!(
                    "numeric division to {other}"
                )))
            }
        };
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if scalar { 1 } else { args.number_rows };
        let (x, y) = (args.args[0].to_array(n)?, args.args[1].to_array(n)?);
        let (x, y) = (
            x.as_primitive::<Decimal128Type>(),
            y.as_primitive::<Decimal128Type>(),
        );
        let mut out = Decimal128Builder::with_capacity(n);
        for i in 0..n {
            if x.is_null(i) || y.is_null(i) {
                out.append_null();
                continue;
            }
            let (a, b) = (x.value(i), y.value(i));
            if b == 0 {
                return Err(user_error("22012", "division by zero"));
            }
            // Round at this value's own Postgres scale, then widen to the column's.
            let own = div_scale(a, s1, b, s2).min(s);
            let q = quotient(a, s1, b, s2, own)
                .and_then(|q| q.checked_mul(10i128.checked_pow((s - own) as u32)?))
                .filter(|q| digits(*q) <= p as i32)
                .ok_or_else(|| user_error("22003", "numeric field overflow"))?;
            out.append_value(q);
        }
        let out = out.finish().with_precision_and_scale(p, s as i8)?;
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The `numeric / numeric` function (both arguments Decimal128).
pub fn numeric_div() -> Arc<ScalarUDF> {
    static F: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    F.get_or_init(|| {
        Arc::new(ScalarUDF::new_from_impl(NumericDiv {
            signature: Signature::any(2, Volatility::Immutable),
        }))
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (v1, s1, v2, s2) → Postgres' text of the quotient.
    fn pg(v1: i128, s1: i32, v2: i128, s2: i32) -> String {
        let scale = div_scale(v1, s1, v2, s2);
        let q = quotient(v1, s1, v2, s2, scale).expect("fits");
        let text = q.unsigned_abs().to_string();
        let text = format!("{:0>width$}", text, width = scale as usize + 1);
        let (int, frac) = text.split_at(text.len() - scale as usize);
        let sign = if q < 0 { "-" } else { "" };
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    #[test]
    fn division_scale_is_postgres_select_div_scale() {
        // Each expected value is PostgreSQL 15's answer.
        assert_eq!(pg(25, 1, 7, 0), "0.35714285714285714286");
        assert_eq!(pg(10, 1, 3, 0), "0.33333333333333333333");
        assert_eq!(pg(60, 1, 3, 0), "2.0000000000000000");
        assert_eq!(pg(1_000_000, 1, 3, 0), "33333.333333333333");
        assert_eq!(pg(1, 3, 7, 0), "0.00014285714285714286");
        assert_eq!(pg(-10, 1, 3, 0), "-0.33333333333333333333");
        assert_eq!(pg(1, 0, 30, 1), "0.33333333333333333333");
    }
}
