//! Date/time functions as Postgres has them: `extract` returning numeric (with decade,
//! century, millennium), `justify_hours/days/interval`, `to_char` with Postgres patterns,
//! and `pg_typeof`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::PlannerResult;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::RowFunction;

/// `EXTRACT(field FROM x)` is numeric in Postgres 14+: plan it as [`Extract`].
pub fn plan_extract(args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
    Ok(PlannerResult::Planned(Expr::ScalarFunction(
        ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(Extract::new())), args),
    )))
}

/// DataFusion's `date_part`, returned as numeric with Postgres' scale (6 for epoch and
/// second, 3 for millisecond, 0 otherwise and for dates), plus decade/century/millennium.
///
/// As `date_part(field, x)` (`double: true`) the same values are double precision, as
/// Postgres' date_part returns them (`date_part('decade', …)` is `202`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Extract {
    signature: Signature,
    double: bool,
}

impl Extract {
    fn new() -> Self {
        Extract {
            signature: Signature::any(2, Volatility::Immutable),
            double: false,
        }
    }

    fn date_part() -> Self {
        Extract {
            double: true,
            ..Extract::new()
        }
    }
}

fn field_of(v: Option<&ScalarValue>) -> Option<String> {
    match v? {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.to_ascii_lowercase()),
        _ => None,
    }
}

fn extract_scale(field: &str, arg: &DataType) -> i8 {
    if matches!(arg, DataType::Date32 | DataType::Date64) {
        return 0;
    }
    match field {
        "epoch" | "second" | "seconds" => 6,
        "millisecond" | "milliseconds" => 3,
        _ => 0,
    }
}

impl ScalarUDFImpl for Extract {
    fn name(&self) -> &str {
        if self.double {
            "date_part"
        } else {
            "extract"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(30, 6))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let field = field_of(args.scalar_arguments.first().copied().flatten())
            .ok_or_else(|| DataFusionError::Plan("EXTRACT needs a field name".into()))?;
        let arg = args.arg_fields[1].data_type();
        let time_unit = matches!(
            field.as_str(),
            "hour"
                | "hours"
                | "minute"
                | "minutes"
                | "second"
                | "seconds"
                | "millisecond"
                | "milliseconds"
                | "microsecond"
                | "microseconds"
        );
        if self.double {
            return Ok(Arc::new(Field::new(self.name(), DataType::Float64, true)));
        }
        if time_unit && matches!(arg, DataType::Date32 | DataType::Date64) {
            return Err(DataFusionError::External(Box::new(
                crate::error::EddyError::Unsupported(format!(
                    "unit \"{field}\" not supported for type date"
                )),
            )));
        }
        let scale = extract_scale(&field, arg);
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Decimal128(30, scale),
            true,
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ret = args.return_field.data_type().clone();
        let field = match &args.args[0] {
            ColumnarValue::Scalar(s) => field_of(Some(s)),
            ColumnarValue::Array(_) => None,
        }
        .ok_or_else(|| DataFusionError::Plan("EXTRACT needs a field name".into()))?;
        let (part, post): (&str, fn(f64) -> f64) = match field.as_str() {
            "decade" | "decades" => ("year", |y| (y / 10.0).floor()),
            "century" | "centuries" => ("year", |y| {
                if y > 0.0 {
                    ((y + 99.0) / 100.0).floor()
                } else {
                    -((99.0 - (y - 1.0)) / 100.0).floor()
                }
            }),
            "millennium" | "millennia" => ("year", |y| {
                if y > 0.0 {
                    ((y + 999.0) / 1000.0).floor()
                } else {
                    -((999.0 - (y - 1.0)) / 1000.0).floor()
                }
            }),
            // DataFusion's second and millisecond drop the fraction; microsecond keeps it.
            "second" | "seconds" => ("microsecond", |v| v / 1e6),
            "millisecond" | "milliseconds" => ("microsecond", |v| v / 1e3),
            other => (other, |v| v),
        };
        let date_part = datafusion::functions::datetime::date_part();
        let part = ScalarValue::Utf8(Some(part.to_string()));
        let mut inner_args = args.clone();
        inner_args.args[0] = ColumnarValue::Scalar(part.clone());
        inner_args.arg_fields[0] = Arc::new(Field::new("part", DataType::Utf8, true));
        inner_args.return_field = date_part.return_field_from_args(ReturnFieldArgs {
            arg_fields: &inner_args.arg_fields,
            scalar_arguments: &[Some(&part), None],
        })?;
        let out = date_part.invoke_with_args(inner_args)?;
        let out = match out {
            ColumnarValue::Scalar(s) => {
                ColumnarValue::Scalar(ScalarValue::Float64(float(&s)?.map(post)).cast_to(&ret)?)
            }
            ColumnarValue::Array(a) => {
                let a = datafusion::arrow::compute::cast(&a, &DataType::Float64)?;
                let f = a
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Float64Array>()
                    .ok_or_else(|| DataFusionError::Internal("date_part result".into()))?;
                let mapped: datafusion::arrow::array::Float64Array =
                    f.iter().map(|v| v.map(post)).collect();
                ColumnarValue::Array(datafusion::arrow::compute::cast(&mapped, &ret)?)
            }
        };
        Ok(out)
    }
}

fn float(s: &ScalarValue) -> Result<Option<f64>> {
    if s.is_null() {
        return Ok(None);
    }
    match s.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(v) => Ok(v),
        _ => Ok(None),
    }
}

const USECS_PER_DAY: i64 = 86_400_000_000;

fn interval_parts(v: &ScalarValue) -> Option<(i32, i32, i64)> {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(iv)) => {
            Some((iv.months, iv.days, iv.nanoseconds / 1000))
        }
        _ => None,
    }
}

fn make_interval(m: i32, d: i32, us: i64) -> ScalarValue {
    ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(m, d, us * 1000)))
}

fn justify_hours(m: i32, d: i32, us: i64) -> (i32, i32, i64) {
    let mut d = d + (us / USECS_PER_DAY) as i32;
    let mut us = us % USECS_PER_DAY;
    if d > 0 && us < 0 {
        us += USECS_PER_DAY;
        d -= 1;
    } else if d < 0 && us > 0 {
        us -= USECS_PER_DAY;
        d += 1;
    }
    (m, d, us)
}

fn justify_days(m: i32, d: i32, us: i64) -> (i32, i32, i64) {
    let mut m = m + d / 30;
    let mut d = d % 30;
    if m > 0 && d < 0 {
        d += 30;
        m -= 1;
    } else if m < 0 && d > 0 {
        d -= 30;
        m += 1;
    }
    (m, d, us)
}

fn justify_interval(m: i32, d: i32, us: i64) -> (i32, i32, i64) {
    let mut m = m + d / 30;
    let mut d = d % 30;
    d += (us / USECS_PER_DAY) as i32;
    let mut us = us % USECS_PER_DAY;
    m += d / 30;
    d %= 30;
    if m > 0 && (d < 0 || (d == 0 && us < 0)) {
        d += 30;
        m -= 1;
    } else if m < 0 && (d > 0 || (d == 0 && us > 0)) {
        d -= 30;
        m += 1;
    }
    if d > 0 && us < 0 {
        us += USECS_PER_DAY;
        d -= 1;
    } else if d < 0 && us > 0 {
        us -= USECS_PER_DAY;
        d += 1;
    }
    (m, d, us)
}

fn justified(v: &ScalarValue, f: fn(i32, i32, i64) -> (i32, i32, i64)) -> ScalarValue {
    match interval_parts(v) {
        Some((m, d, us)) => {
            let (m, d, us) = f(m, d, us);
            make_interval(m, d, us)
        }
        None => ScalarValue::IntervalMonthDayNano(None),
    }
}

fn interval_sig() -> Signature {
    Signature::exact(
        vec![DataType::Interval(IntervalUnit::MonthDayNano)],
        Volatility::Immutable,
    )
}

fn interval_ret(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Interval(IntervalUnit::MonthDayNano))
}

fn text_ret(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}

/// The Postgres name of a value's type, as `pg_typeof` prints it.
pub fn pg_typeof_name(t: &DataType) -> String {
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => "numeric".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}[]", pg_typeof_name(f.data_type()))
        }
        other => other.to_string().to_lowercase(),
    }
}

pub fn functions() -> Vec<Arc<ScalarUDF>> {
    let mut out = vec![
        RowFunction::udf("justify_hours", interval_sig(), interval_ret, |a, _| {
            Ok(justified(&a[0], justify_hours))
        }),
        RowFunction::udf("justify_days", interval_sig(), interval_ret, |a, _| {
            Ok(justified(&a[0], justify_days))
        }),
        RowFunction::udf("justify_interval", interval_sig(), interval_ret, |a, _| {
            Ok(justified(&a[0], justify_interval))
        }),
    ];
    out.push(Arc::new(ScalarUDF::new_from_impl(Extract::date_part())));
    out.push(RowFunction::udf(
        "pg_typeof",
        Signature::any(1, Volatility::Immutable),
        text_ret,
        |_, types| Ok(ScalarValue::Utf8(Some(pg_typeof_name(&types[0])))),
    ));
    out.push(RowFunction::udf(
        "quote_literal",
        Signature::any(1, Volatility::Immutable),
        text_ret,
        |a, _| {
            if a[0].is_null() {
                return Ok(ScalarValue::Utf8(None));
            }
            let s = match &a[0] {
                ScalarValue::Utf8(Some(s)) => s.clone(),
                other => other.to_string(),
            };
            let body = s.replace('\'', "''");
            Ok(ScalarValue::Utf8(Some(if body.contains('\\') {
                format!("E'{}'", body.replace('\\', "\\\\"))
            } else {
                format!("'{body}'")
            })))
        },
    ));
    out.push(super::to_char::udf());
    out
}
