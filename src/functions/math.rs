//! Numeric operators and functions with Postgres semantics:
//! interval × and ÷ by numbers, the degree trigonometric functions, `sign`, `ceiling`.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::RowFunction;
use crate::error::EddyError;

fn user_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(EddyError::BadValue {
        code,
        message: message.into(),
    }))
}

const USECS_PER_SEC: f64 = 1e6;
const SECS_PER_DAY: f64 = 86_400.0;
const DAYS_PER_MONTH: f64 = 30.0;

fn ts_round(x: f64) -> f64 {
    (x * 1e6).round_ties_even() / 1e6
}

fn mdn_sig() -> Signature {
    Signature::exact(
        vec![
            DataType::Interval(IntervalUnit::MonthDayNano),
            DataType::Float64,
        ],
        Volatility::Immutable,
    )
}

fn mdn(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Interval(IntervalUnit::MonthDayNano))
}

/// Postgres' interval_mul: fractional months spill into days (30 a month) and fractional
/// days into time.
fn interval_scale(a: &[ScalarValue], divide: bool) -> Result<ScalarValue> {
    let (ScalarValue::IntervalMonthDayNano(Some(iv)), ScalarValue::Float64(Some(f))) =
        (&a[0], &a[1])
    else {
        return Ok(ScalarValue::IntervalMonthDayNano(None));
    };
    if divide && *f == 0.0 {
        return Err(user_error("22012", "division by zero"));
    }
    let scale = |x: f64| if divide { x / f } else { x * f };
    let month_d = scale(iv.months as f64);
    let day_d = scale(iv.days as f64);
    if !month_d.is_finite() || month_d.abs() > i32::MAX as f64 || day_d.abs() > i32::MAX as f64 {
        return Err(user_error("22008", "interval out of range"));
    }
    let months = month_d.trunc() as i32;
    let mut days = day_d.trunc() as i32;
    let month_remainder_days = ts_round((month_d - months as f64) * DAYS_PER_MONTH);
    let mut sec_remainder = ts_round(
        (day_d - days as f64 + month_remainder_days - month_remainder_days.trunc()) * SECS_PER_DAY,
    );
    if sec_remainder.abs() >= SECS_PER_DAY {
        let extra = (sec_remainder / SECS_PER_DAY).trunc();
        days += extra as i32;
        sec_remainder -= extra * SECS_PER_DAY;
    }
    days += month_remainder_days.trunc() as i32;
    let time_us = (iv.nanoseconds / 1000) as f64;
    let us = (scale(time_us) + sec_remainder * USECS_PER_SEC).round_ties_even();
    if !us.is_finite() || us.abs() > i64::MAX as f64 / 1000.0 {
        return Err(user_error("22008", "interval out of range"));
    }
    Ok(ScalarValue::IntervalMonthDayNano(Some(
        IntervalMonthDayNano::new(months, days, us as i64 * 1000),
    )))
}

pub fn interval_mul() -> Arc<ScalarUDF> {
    static F: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    F.get_or_init(|| {
        RowFunction::udf("eddy_interval_mul", mdn_sig(), mdn, |a, _| {
            interval_scale(a, false)
        })
    })
    .clone()
}

pub fn interval_div() -> Arc<ScalarUDF> {
    static F: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    F.get_or_init(|| {
        RowFunction::udf("eddy_interval_div", mdn_sig(), mdn, |a, _| {
            interval_scale(a, true)
        })
    })
    .clone()
}

// Degree trigonometry, as Postgres' float.c computes it so that sind(30) is exactly 0.5.
const RADIANS_PER_DEGREE: f64 = 0.017_453_292_519_943_295;

fn sin_30() -> f64 {
    (30.0 * RADIANS_PER_DEGREE).sin()
}

fn one_minus_cos_60() -> f64 {
    1.0 - (60.0 * RADIANS_PER_DEGREE).cos()
}

fn sind_0_to_30(x: f64) -> f64 {
    ((x * RADIANS_PER_DEGREE).sin() / sin_30()) / 2.0
}

fn cosd_0_to_60(x: f64) -> f64 {
    1.0 - ((1.0 - (x * RADIANS_PER_DEGREE).cos()) / one_minus_cos_60()) / 2.0
}

fn sind_q1(x: f64) -> f64 {
    if x <= 30.0 {
        sind_0_to_30(x)
    } else {
        cosd_0_to_60(90.0 - x)
    }
}

fn cosd_q1(x: f64) -> f64 {
    if x <= 60.0 {
        cosd_0_to_60(x)
    } else {
        sind_0_to_30(90.0 - x)
    }
}

fn sind(arg: f64) -> Result<f64> {
    if arg.is_nan() {
        return Ok(f64::NAN);
    }
    if arg.is_infinite() {
        return Err(user_error("22003", "input is out of range"));
    }
    let mut x = arg % 360.0;
    let mut sign = 1.0;
    if x < 0.0 {
        x = -x;
        sign = -sign;
    }
    if x > 180.0 {
        x -= 180.0;
        sign = -sign;
    }
    if x > 90.0 {
        x = 180.0 - x;
    }
    Ok(sign * sind_q1(x))
}

fn cosd(arg: f64) -> Result<f64> {
    if arg.is_nan() {
        return Ok(f64::NAN);
    }
    if arg.is_infinite() {
        return Err(user_error("22003", "input is out of range"));
    }
    let mut x = (arg % 360.0).abs();
    let mut sign = 1.0;
    if x > 180.0 {
        x = 360.0 - x;
    }
    if x > 90.0 {
        x = 180.0 - x;
        sign = -sign;
    }
    Ok(sign * cosd_q1(x))
}

fn tand(arg: f64) -> Result<f64> {
    if arg.is_nan() {
        return Ok(f64::NAN);
    }
    if arg.is_infinite() {
        return Err(user_error("22003", "input is out of range"));
    }
    let mut x = arg % 360.0;
    let mut sign = 1.0;
    if x < 0.0 {
        x = -x;
        sign = -sign;
    }
    if x > 180.0 {
        x -= 180.0;
        sign = -sign;
    }
    if x > 90.0 {
        x = 180.0 - x;
        sign = -sign;
    }
    let tan_45 = sind_q1(45.0) / cosd_q1(45.0);
    let r = sign * ((sind_q1(x) / cosd_q1(x)) / tan_45);
    Ok(if r == 0.0 { 0.0 } else { r })
}

fn float_arg(a: &ScalarValue) -> Result<Option<f64>> {
    if a.is_null() {
        return Ok(None);
    }
    match a.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(v) => Ok(v),
        _ => Ok(None),
    }
}

fn f64_ret(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Float64)
}

fn one_number() -> Signature {
    Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable)
}

fn rounding_type(args: &[DataType]) -> Result<DataType> {
    Ok(match args.first() {
        Some(DataType::Decimal128(p, _)) => DataType::Decimal128(*p, 0),
        Some(DataType::Float32) => DataType::Float32,
        _ => DataType::Float64,
    })
}

fn rounding_eval(a: &ScalarValue, up: bool) -> Result<ScalarValue> {
    Ok(match a {
        ScalarValue::Decimal128(v, p, s) => {
            let div = 10i128.pow((*s).max(0) as u32);
            let r = v.map(|v| {
                let q = v.div_euclid(div);
                if up && v.rem_euclid(div) != 0 {
                    q + 1
                } else {
                    q
                }
            });
            ScalarValue::Decimal128(r, *p, 0)
        }
        ScalarValue::Float32(v) => {
            ScalarValue::Float32(v.map(|x| if up { x.ceil() } else { x.floor() }))
        }
        other => {
            ScalarValue::Float64(float_arg(other)?.map(|x| if up { x.ceil() } else { x.floor() }))
        }
    })
}

/// `ceil`/`floor`: numeric in, numeric of scale 0 out (DataFusion keeps the scale: 2.0).
fn rounding(name: &'static str, up: bool) -> Arc<ScalarUDF> {
    let sig = Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Float64]),
            TypeSignature::Exact(vec![DataType::Float32]),
            TypeSignature::Numeric(1),
        ],
        Volatility::Immutable,
    );
    if up {
        RowFunction::udf(name, sig, rounding_type, |a, _| rounding_eval(&a[0], true))
    } else {
        RowFunction::udf(name, sig, rounding_type, |a, _| rounding_eval(&a[0], false))
    }
}

/// `f` on a double, with Postgres' domain errors instead of NaN or infinity.
fn checked_float(
    a: &ScalarValue,
    f: fn(f64) -> f64,
    check: fn(f64) -> Option<(&'static str, &'static str)>,
) -> Result<ScalarValue> {
    let Some(x) = float_arg(a)? else {
        return Ok(ScalarValue::Float64(None));
    };
    if let Some((code, message)) = check(x) {
        return Err(user_error(code, message));
    }
    Ok(ScalarValue::Float64(Some(f(x))))
}

fn log_domain(x: f64) -> Option<(&'static str, &'static str)> {
    if x == 0.0 {
        Some(("2201E", "cannot take logarithm of zero"))
    } else if x < 0.0 {
        Some(("2201E", "cannot take logarithm of a negative number"))
    } else {
        None
    }
}

fn unit_domain(x: f64) -> Option<(&'static str, &'static str)> {
    (!x.is_nan() && !(-1.0..=1.0).contains(&x)).then_some(("22003", "input is out of range"))
}

/// `log(x)` / `log(b, x)` over DataFusion's, with Postgres' domain errors (2201E for a zero
/// or negative argument) instead of -Infinity or NaN.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Log {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for Log {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let fields: Vec<_> = types
            .iter()
            .map(|t| {
                Arc::new(datafusion::arrow::datatypes::Field::new(
                    "f",
                    t.clone(),
                    true,
                ))
            })
            .collect();
        Ok(
            datafusion::logical_expr::type_coercion::functions::fields_with_udf(
                &fields,
                self.inner.as_ref(),
            )?
            .iter()
            .map(|f| f.data_type().clone())
            .collect(),
        )
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray};
        for a in &args.args {
            let values = a.to_array(args.number_rows.max(1))?;
            let values = datafusion::arrow::compute::cast(&values, &DataType::Float64)?;
            let values = values.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            for i in 0..values.len() {
                if values.is_null(i) {
                    continue;
                }
                if let Some((code, message)) = log_domain(values.value(i)) {
                    return Err(user_error(code, message));
                }
            }
        }
        self.inner.invoke_with_args(args)
    }
}

pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::new_from_impl(Log {
            inner: datafusion::functions::math::log(),
            signature: Signature::user_defined(Volatility::Immutable),
        })),
        RowFunction::udf("ln", one_number(), f64_ret, |a, _| {
            checked_float(&a[0], f64::ln, log_domain)
        }),
        RowFunction::udf("log10", one_number(), f64_ret, |a, _| {
            checked_float(&a[0], f64::log10, log_domain)
        }),
        RowFunction::udf("sqrt", one_number(), f64_ret, |a, _| {
            checked_float(&a[0], f64::sqrt, |x| {
                (x < 0.0).then_some(("2201F", "cannot take square root of a negative number"))
            })
        }),
        RowFunction::udf("asin", one_number(), f64_ret, |a, _| {
            checked_float(&a[0], f64::asin, unit_domain)
        }),
        RowFunction::udf("acos", one_number(), f64_ret, |a, _| {
            checked_float(&a[0], f64::acos, unit_domain)
        }),
        RowFunction::udf("sind", one_number(), f64_ret, |a, _| {
            Ok(ScalarValue::Float64(
                float_arg(&a[0])?.map(sind).transpose()?,
            ))
        }),
        RowFunction::udf("cosd", one_number(), f64_ret, |a, _| {
            Ok(ScalarValue::Float64(
                float_arg(&a[0])?.map(cosd).transpose()?,
            ))
        }),
        RowFunction::udf("tand", one_number(), f64_ret, |a, _| {
            Ok(ScalarValue::Float64(
                float_arg(&a[0])?.map(tand).transpose()?,
            ))
        }),
        Arc::new(
            datafusion::functions::math::signum()
                .as_ref()
                .clone()
                .with_aliases(["sign"]),
        ),
        rounding("ceil", true),
        rounding("ceiling", true),
        rounding("floor", false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degree_functions_are_exact_at_the_usual_angles() {
        assert_eq!(sind(30.0).unwrap(), 0.5);
        assert_eq!(sind(90.0).unwrap(), 1.0);
        assert_eq!(sind(-90.0).unwrap(), -1.0);
        assert_eq!(cosd(60.0).unwrap(), 0.5);
        assert_eq!(cosd(180.0).unwrap(), -1.0);
        assert_eq!(tand(45.0).unwrap(), 1.0);
    }

    #[test]
    fn interval_times_number_spills_like_postgres() {
        let iv = |m, d, us: i64| {
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(m, d, us * 1000)))
        };
        let f = |x: f64| ScalarValue::Float64(Some(x));
        // 1 mon * 0.5 = 15 days; 1 day * 1.5 = 1 day 12:00:00; 1 s * 3 = 3 s
        assert_eq!(
            interval_scale(&[iv(1, 0, 0), f(0.5)], false).unwrap(),
            iv(0, 15, 0)
        );
        assert_eq!(
            interval_scale(&[iv(0, 1, 0), f(1.5)], false).unwrap(),
            iv(0, 1, 12 * 3_600_000_000)
        );
        assert_eq!(
            interval_scale(&[iv(0, 0, 1_000_000), f(3.0)], false).unwrap(),
            iv(0, 0, 3_000_000)
        );
        assert_eq!(
            interval_scale(&[iv(0, 0, 3_600_000_000), f(4.0)], true).unwrap(),
            iv(0, 0, 900_000_000)
        );
        assert!(interval_scale(&[iv(0, 1, 0), f(0.0)], true).is_err());
    }
}
