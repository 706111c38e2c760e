//! `round`, `trunc`, `mod` and `div` with Postgres' types and scales:
//!
//! - `round(numeric, n)` / `trunc(numeric, n)` have scale `max(n, 0)` (`round(2, 10)` is
//!   `2.0000000000`, `trunc(12.345, 1)` is `12.3`); without `n`, scale 0; numeric rounds
//!   half away from zero;
//! - `round(double)` rounds half to even (rint: `round(2.5::float8)` is 2), `trunc(double)`
//!   truncates; an integer argument is a double (Postgres' preferred numeric type);
//! - `mod(a, b)` of integers is an integer of the wider type, of numerics a numeric of the
//!   larger scale; `div(a, b)` is the integral quotient, a numeric of scale 0; a zero
//!   divisor is 22012.
//!
//! The scale of `round`/`trunc` is the constant `n`'s; with a non-constant `n` the input's
//! scale is kept (the value is still rounded at `n`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Builder, Float64Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Float64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::EddyError;

fn user_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(EddyError::BadValue {
        code,
        message: message.into(),
    }))
}

fn no_function(name: &str, types: &[DataType]) -> DataFusionError {
    let args: Vec<String> = types.iter().map(crate::sql::types::pg_type_name).collect();
    user_error(
        "42883",
        format!("function {name}({}) does not exist", args.join(", ")),
    )
}

/// An integer type as the numeric it converts to.
fn int_as_decimal(t: &DataType) -> Option<DataType> {
    Some(match t {
        DataType::Int8 => DataType::Decimal128(3, 0),
        DataType::Int16 => DataType::Decimal128(5, 0),
        DataType::Int32 => DataType::Decimal128(10, 0),
        DataType::Int64 => DataType::Decimal128(19, 0),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            DataType::Decimal128(20, 0)
        }
        _ => return None,
    })
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

/// `v × 10^-from` at scale `to` (≤ `from`), rounded half away from zero or truncated.
fn rescale_down(v: i128, from: i32, to: i32, truncate: bool) -> Option<i128> {
    let div = pow10((from - to) as u32)?;
    let (q, r) = (v / div, v % div);
    if !truncate && r.unsigned_abs() * 2 >= div.unsigned_abs() {
        Some(q + v.signum())
    } else {
        Some(q)
    }
}

/// `v` (scale `s`) rounded at `n` digits, expressed at scale `out` (≥ max(n, 0)).
fn round_at(v: i128, s: i32, n: i32, out: i32, truncate: bool) -> Option<i128> {
    let n = n.min(out).max(-38);
    let at_n = if n >= s {
        v.checked_mul(pow10((n - s) as u32)?)?
    } else {
        rescale_down(v, s, n, truncate)?
    };
    // at_n has scale n; bring it to scale `out`.
    if out >= n {
        at_n.checked_mul(pow10((out - n) as u32)?)
    } else {
        None
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Round {
    name: &'static str,
    truncate: bool,
    signature: Signature,
}

impl Round {
    fn decimal_result(&self, p: u8, s: i8, n: Option<i64>) -> DataType {
        let (p, s) = (p as i32, s as i32);
        let scale = match n {
            Some(n) => n.clamp(0, 37) as i32,
            None => s.max(0),
        };
        let precision = ((p - s).max(1) + 1 + scale).min(38);
        DataType::Decimal128(precision as u8, scale as i8)
    }
}

impl ScalarUDFImpl for Round {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        match types {
            [t] if matches!(t, DataType::Decimal128(_, _)) => Ok(vec![t.clone()]),
            [t] if t.is_integer() || t.is_floating() || t.is_null() => Ok(vec![DataType::Float64]),
            [t, n] if n.is_integer() || n.is_null() => {
                let t = match t {
                    DataType::Decimal128(_, _) => t.clone(),
                    t if t.is_floating() => DataType::Float64,
                    DataType::Null => DataType::Decimal128(38, 10),
                    t => int_as_decimal(t).ok_or_else(|| no_function(self.name, types))?,
                };
                Ok(vec![t, DataType::Int64])
            }
            _ => Err(no_function(self.name, types)),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args {
            [DataType::Decimal128(p, s)] => self.decimal_result(*p, *s, Some(0)),
            [DataType::Decimal128(p, s), _] => self.decimal_result(*p, *s, None),
            _ => DataType::Float64,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let t = match (
            types.as_slice(),
            args.scalar_arguments.get(1).copied().flatten(),
        ) {
            ([DataType::Decimal128(p, s), _], Some(ScalarValue::Int64(Some(n)))) => {
                self.decimal_result(*p, *s, Some(*n))
            }
            _ => self.return_type(&types)?,
        };
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name, t, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n_rows = if scalar { 1 } else { args.number_rows };
        let x = args.args[0].to_array(n_rows)?;
        let digits = match args.args.get(1) {
            Some(a) => Some(a.to_array(n_rows)?),
            None => None,
        };
        let digit = |i: usize| -> Option<i64> {
            match &digits {
                None => Some(0),
                Some(d) if d.is_null(i) => None,
                Some(d) => Some(
                    d.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                        .value(i),
                ),
            }
        };
        let out: ArrayRef = match (x.data_type(), args.return_field.data_type()) {
            (DataType::Decimal128(_, s), DataType::Decimal128(p, out_s)) => {
                let x = x.as_primitive::<Decimal128Type>();
                let mut b = Decimal128Builder::with_capacity(n_rows);
                for i in 0..n_rows {
                    match (x.is_null(i), digit(i)) {
                        (false, Some(n)) => {
                            let n = n.clamp(-40, 40) as i32;
                            let v =
                                round_at(x.value(i), *s as i32, n, *out_s as i32, self.truncate)
                                    .filter(|v| v.unsigned_abs() < 10u128.pow(*p as u32))
                                    .ok_or_else(|| user_error("22003", "numeric field overflow"))?;
                            b.append_value(v);
                        }
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish().with_precision_and_scale(*p, *out_s)?)
            }
            _ => {
                let x = datafusion::arrow::compute::cast(&x, &DataType::Float64)?;
                let x = x.as_primitive::<Float64Type>();
                let out: Float64Array = (0..n_rows)
                    .map(|i| {
                        if x.is_null(i) {
                            return None;
                        }
                        let v = x.value(i);
                        let n = digit(i)?;
                        Some(match (&digits, self.truncate) {
                            (None, true) => v.trunc(),
                            (None, false) => v.round_ties_even(),
                            (Some(_), truncate) => {
                                let f = 10f64.powi(n.clamp(-300, 300) as i32);
                                if truncate {
                                    (v * f).trunc() / f
                                } else {
                                    (v * f).round() / f
                                }
                            }
                        })
                    })
                    .collect();
                Arc::new(out)
            }
        };
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// `mod(a, b)` and `div(a, b)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ModDiv {
    name: &'static str,
    signature: Signature,
}

impl ModDiv {
    fn is_div(&self) -> bool {
        self.name == "div"
    }
}

impl ScalarUDFImpl for ModDiv {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let [a, b] = types else {
            return Err(no_function(self.name, types));
        };
        let rank = |t: &DataType| match t {
            DataType::Int8 | DataType::Int16 => Some(2),
            DataType::Int32 => Some(4),
            DataType::Int64 => Some(8),
            _ => None,
        };
        if !self.is_div() {
            if let (Some(x), Some(y)) = (rank(a), rank(b)) {
                let t = if x >= y { a.clone() } else { b.clone() };
                let t = if t == DataType::Int8 {
                    DataType::Int16
                } else {
                    t
                };
                return Ok(vec![t.clone(), t]);
            }
        }
        let dec = |t: &DataType| match t {
            DataType::Decimal128(_, _) => Some(t.clone()),
            t => int_as_decimal(t),
        };
        match (dec(a), dec(b)) {
            (Some(a), Some(b)) => Ok(vec![a, b]),
            _ => Err(no_function(self.name, types)),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args {
            [DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)] => {
                if self.is_div() {
                    DataType::Decimal128(*p1.max(&20), 0)
                } else {
                    let s = *s1.max(s2);
                    let p = ((*p1 as i8 - s1).max(*p2 as i8 - s2) + s).clamp(1, 37);
                    DataType::Decimal128(p as u8, s)
                }
            }
            [t, _] => t.clone(),
            _ => DataType::Int64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if scalar { 1 } else { args.number_rows };
        let (a, b) = (args.args[0].to_array(n)?, args.args[1].to_array(n)?);
        let ret = args.return_field.data_type().clone();
        let zero = || user_error("22012", "division by zero");
        let out: ArrayRef = match (a.data_type(), b.data_type(), &ret) {
            (
                DataType::Decimal128(_, s1),
                DataType::Decimal128(_, s2),
                DataType::Decimal128(p, s),
            ) => {
                let (x, y) = (
                    a.as_primitive::<Decimal128Type>(),
                    b.as_primitive::<Decimal128Type>(),
                );
                // Both operands at the common scale.
                let common = (*s1).max(*s2) as u32;
                let mut out = Decimal128Builder::with_capacity(n);
                for i in 0..n {
                    if x.is_null(i) || y.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    let overflow = || user_error("22003", "numeric field overflow");
                    let u = x
                        .value(i)
                        .checked_mul(pow10(common - *s1 as u32).ok_or_else(overflow)?)
                        .ok_or_else(overflow)?;
                    let v = y
                        .value(i)
                        .checked_mul(pow10(common - *s2 as u32).ok_or_else(overflow)?)
                        .ok_or_else(overflow)?;
                    if v == 0 {
                        return Err(zero());
                    }
                    let r = if self.is_div() { u / v } else { u % v };
                    // mod keeps the common scale; div is integral (scale 0).
                    let r = if self.is_div() {
                        r
                    } else {
                        r.checked_mul(
                            pow10((*s as u32).saturating_sub(common)).ok_or_else(overflow)?,
                        )
                        .ok_or_else(overflow)?
                    };
                    out.append_value(r);
                }
                Arc::new(out.finish().with_precision_and_scale(*p, *s)?)
            }
            _ => match datafusion::arrow::compute::kernels::numeric::rem(&a, &b) {
                Ok(r) => r,
                Err(datafusion::arrow::error::ArrowError::DivideByZero) => return Err(zero()),
                Err(e) => return Err(e.into()),
            },
        };
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

pub fn functions() -> Vec<Arc<ScalarUDF>> {
    let round = |name, truncate| {
        Arc::new(ScalarUDF::new_from_impl(Round {
            name,
            truncate,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    };
    let mod_div = |name| {
        Arc::new(ScalarUDF::new_from_impl(ModDiv {
            name,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    };
    vec![
        round("round", false),
        round("trunc", true),
        mod_div("mod"),
        mod_div("div"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_at_a_digit_as_postgres() {
        // round(12.345, 1) = 12.3; round(12.35, 1) = 12.4; trunc(-12.345, -1) = -10
        assert_eq!(round_at(12345, 3, 1, 1, false), Some(123));
        assert_eq!(round_at(1235, 2, 1, 1, false), Some(124));
        assert_eq!(round_at(-12345, 3, -1, 0, true), Some(-10));
        assert_eq!(round_at(-25, 1, 0, 0, false), Some(-3));
        // round(2, 10) = 2.0000000000
        assert_eq!(round_at(2, 0, 10, 10, false), Some(20_000_000_000));
    }
}
