//! Values in PostgreSQL 15's text output format, as a default-configured server prints them
//! (DateStyle ISO, IntervalStyle postgres, extra_float_digits 1, TimeZone UTC):
//! `3::float8` is `3`, `1e-06` is `1e-06`, infinities are `Infinity`, timestamps drop a zero
//! fraction, intervals read `1 year 2 mons 3 days 04:05:06`, bytea is `\x…` and arrays are
//! `{…}` with Postgres' quoting. Text-format result rows are built from these strings; the
//! binary format stays with arrow-pg. The invariant: for every Arrow type eddy produces, the
//! text equals what PostgreSQL prints for the corresponding Postgres value.

use std::fmt::Write;
use std::sync::Arc;

use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    DurationMicrosecondArray, DurationMillisecondArray, DurationNanosecondArray,
    DurationSecondArray, Float32Array, Float64Array, IntervalDayTimeArray,
    IntervalMonthDayNanoArray, IntervalYearMonthArray, LargeBinaryArray, RecordBatch,
    Time32MillisecondArray, Time32SecondArray, Time64MicrosecondArray, Time64NanosecondArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::pg_style::{self, OutputStyle};

const USECS_PER_DAY: i64 = 86_400_000_000;
const USECS_PER_HOUR: i64 = 3_600_000_000;
const USECS_PER_MINUTE: i64 = 60_000_000;
const USECS_PER_SEC: i64 = 1_000_000;

/// The text of row `i` of `array`, `None` for NULL, with the default settings.
pub fn format_value(array: &ArrayRef, i: usize) -> Option<String> {
    format_value_styled(array, i, &OutputStyle::default())
}

/// The text of row `i` of `array` in a session's [`OutputStyle`], `None` for NULL.
pub fn format_value_styled(array: &ArrayRef, i: usize, style: &OutputStyle) -> Option<String> {
    // A NullArray has no validity buffer: its rows are NULL only logically.
    if array.is_null(i) || array.data_type() == &DataType::Null {
        return None;
    }
    Some(format_non_null(array.as_ref(), i, style))
}

fn format_non_null(array: &dyn Array, i: usize, style: &OutputStyle) -> String {
    match array.data_type() {
        DataType::Boolean => {
            let v = array
                .as_any()
                .downcast_ref::<BooleanArray>()
                .map(|a| a.value(i));
            if v == Some(true) { "t" } else { "f" }.to_string()
        }
        DataType::Float64 => match array.as_any().downcast_ref::<Float64Array>() {
            Some(a) if style.extra_float_digits <= 0 && a.value(i).is_finite() => {
                pg_style::float_g(a.value(i), 15 + style.extra_float_digits)
            }
            Some(a) => float8(a.value(i)),
            None => fallback(array, i),
        },
        DataType::Float32 => match array.as_any().downcast_ref::<Float32Array>() {
            Some(a) if style.extra_float_digits <= 0 && a.value(i).is_finite() => {
                pg_style::float_g(a.value(i) as f64, 6 + style.extra_float_digits)
            }
            Some(a) => float4(a.value(i)),
            None => fallback(array, i),
        },
        DataType::Float16 => float4(
            array
                .as_primitive::<datafusion::arrow::datatypes::Float16Type>()
                .value(i)
                .to_f32(),
        ),
        DataType::Decimal128(precision, scale) => {
            match array.as_any().downcast_ref::<Decimal128Array>() {
                // Unconstrained `numeric` is Decimal128(38, 10), and arithmetic on it stays at
                // precision 38: Postgres keeps each value's own scale there, which Arrow does not
                // record, so print the shortest exact form. Declared numeric(p, s) keeps its scale.
                Some(a) if *precision == 38 => trim_fraction(decimal(a.value(i), *scale)),
                Some(a) => decimal(a.value(i), *scale),
                None => fallback(array, i),
            }
        }
        DataType::Date32 => match array.as_any().downcast_ref::<Date32Array>() {
            Some(a) => date_styled(a.value(i) as i64, style),
            None => fallback(array, i),
        },
        DataType::Date64 => match array.as_any().downcast_ref::<Date64Array>() {
            Some(a) => date_styled(a.value(i).div_euclid(86_400_000), style),
            None => fallback(array, i),
        },
        DataType::Timestamp(unit, tz) => {
            let us = match unit {
                TimeUnit::Second => array
                    .as_any()
                    .downcast_ref::<TimestampSecondArray>()
                    .map(|a| a.value(i).saturating_mul(USECS_PER_SEC)),
                TimeUnit::Millisecond => array
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .map(|a| a.value(i).saturating_mul(1000)),
                TimeUnit::Microsecond => array
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .map(|a| a.value(i)),
                TimeUnit::Nanosecond => array
                    .as_any()
                    .downcast_ref::<TimestampNanosecondArray>()
                    .map(|a| a.value(i).div_euclid(1000)),
            };
            match us {
                Some(us) => timestamp_styled(us, tz.is_some(), style),
                None => fallback(array, i),
            }
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            let any = array.as_any();
            let us = if let Some(a) = any.downcast_ref::<Time64MicrosecondArray>() {
                Some(a.value(i))
            } else if let Some(a) = any.downcast_ref::<Time64NanosecondArray>() {
                Some(a.value(i) / 1000)
            } else if let Some(a) = any.downcast_ref::<Time32MillisecondArray>() {
                Some(a.value(i) as i64 * 1000)
            } else {
                any.downcast_ref::<Time32SecondArray>()
                    .map(|a| a.value(i) as i64 * USECS_PER_SEC)
            };
            match us {
                Some(us) => time(us),
                None => fallback(array, i),
            }
        }
        DataType::Interval(unit) => {
            let any = array.as_any();
            let parts = match unit {
                IntervalUnit::MonthDayNano => {
                    any.downcast_ref::<IntervalMonthDayNanoArray>().map(|a| {
                        let v = a.value(i);
                        (v.months as i64, v.days as i64, v.nanoseconds / 1000)
                    })
                }
                IntervalUnit::DayTime => any.downcast_ref::<IntervalDayTimeArray>().map(|a| {
                    let v = a.value(i);
                    (0, v.days as i64, v.milliseconds as i64 * 1000)
                }),
                IntervalUnit::YearMonth => any
                    .downcast_ref::<IntervalYearMonthArray>()
                    .map(|a| (a.value(i) as i64, 0, 0)),
            };
            match parts {
                Some((m, d, us)) => interval_styled(m, d, us, style),
                None => fallback(array, i),
            }
        }
        DataType::Duration(unit) => {
            let any = array.as_any();
            let us = match unit {
                TimeUnit::Second => any
                    .downcast_ref::<DurationSecondArray>()
                    .map(|a| a.value(i).saturating_mul(USECS_PER_SEC)),
                TimeUnit::Millisecond => any
                    .downcast_ref::<DurationMillisecondArray>()
                    .map(|a| a.value(i).saturating_mul(1000)),
                TimeUnit::Microsecond => any
                    .downcast_ref::<DurationMicrosecondArray>()
                    .map(|a| a.value(i)),
                TimeUnit::Nanosecond => any
                    .downcast_ref::<DurationNanosecondArray>()
                    .map(|a| a.value(i) / 1000),
            };
            // A duration is what timestamp − timestamp gives; Postgres returns that as an
            // interval with whole days split off (justify_hours).
            match us {
                Some(us) => {
                    let days = us / USECS_PER_DAY;
                    interval_styled(0, days, us - days * USECS_PER_DAY, style)
                }
                None => fallback(array, i),
            }
        }
        DataType::Binary => match array.as_any().downcast_ref::<BinaryArray>() {
            Some(a) => bytea(a.value(i)),
            None => fallback(array, i),
        },
        DataType::LargeBinary => match array.as_any().downcast_ref::<LargeBinaryArray>() {
            Some(a) => bytea(a.value(i)),
            None => fallback(array, i),
        },
        DataType::BinaryView => bytea(array.as_binary_view().value(i)),
        DataType::FixedSizeBinary(_) => bytea(array.as_fixed_size_binary().value(i)),
        DataType::List(_) => list(array.as_list::<i32>().value(i), style),
        DataType::LargeList(_) => list(array.as_list::<i64>().value(i), style),
        DataType::FixedSizeList(_, _) => list(array.as_fixed_size_list().value(i), style),
        _ => fallback(array, i),
    }
}

/// Arrow's own display for types Postgres prints the same way (integers, text).
fn fallback(array: &dyn Array, i: usize) -> String {
    let opts = FormatOptions::default();
    match ArrayFormatter::try_new(array, &opts) {
        Ok(f) => f.value(i).to_string(),
        Err(_) => String::new(),
    }
}

/// `{a,b}` with Postgres' element quoting; nested lists print as nested braces.
fn list(values: ArrayRef, style: &OutputStyle) -> String {
    let mut out = String::from("{");
    for j in 0..values.len() {
        if j > 0 {
            out.push(',');
        }
        if values.is_null(j) {
            out.push_str("NULL");
            continue;
        }
        let s = format_non_null(values.as_ref(), j, style);
        let nested = matches!(
            values.data_type(),
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _)
        );
        if !nested && needs_quotes(&s) {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&s);
        }
    }
    out.push('}');
    out
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || s.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace())
}

/// float8out: the shortest text that reads back as the same double, in `%g`-like layout
/// (exponent form below 1e-4 and from 1e15, two-digit signed exponent).
pub fn float8(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    shortest(format!("{v:e}"), 15)
}

/// float4out: as [`float8`] with float precision (exponent form from 1e6).
pub fn float4(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    shortest(format!("{v:e}"), 6)
}

/// Lay out Rust's shortest round-trip scientific form (`-1.2345e-7`) as Postgres does.
fn shortest(sci: String, max_fixed_exp: i32) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if digits == "0" {
        out.push('0');
        return out;
    }
    if exp < -4 || exp >= max_fixed_exp {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// numeric: the unscaled value with exactly `scale` digits after the point.
pub fn decimal(v: i128, scale: i8) -> String {
    let neg = v < 0;
    let abs = v.unsigned_abs().to_string();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(&abs);
        for _ in 0..(-scale as usize) {
            if abs != "0" {
                out.push('0');
            }
        }
        return out;
    }
    let scale = scale as usize;
    if abs.len() <= scale {
        out.push_str("0.");
        for _ in abs.len()..scale {
            out.push('0');
        }
        out.push_str(&abs);
    } else {
        out.push_str(&abs[..abs.len() - scale]);
        out.push('.');
        out.push_str(&abs[abs.len() - scale..]);
    }
    out
}

fn trim_fraction(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A date in the session's DateStyle.
fn date_styled(days: i64, style: &OutputStyle) -> String {
    let (y, m, d) = civil_from_days(days);
    year_suffix(y, |y| pg_style::date_text(style, y, m, d))
}

/// A timestamp in the session's DateStyle and, with a zone, its TimeZone. With SQL or
/// German style Postgres names the zone by its abbreviation; eddy writes the offset.
fn timestamp_styled(us: i64, with_tz: bool, style: &OutputStyle) -> String {
    let offset = if with_tz { style.offset_at(us) } else { 0 };
    let local = us + offset as i64 * USECS_PER_SEC;
    let days = local.div_euclid(USECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let t = time(local.rem_euclid(USECS_PER_DAY));
    let zone = if !with_tz {
        String::new()
    } else if style.date_style == pg_style::DateStyle::Iso {
        pg_style::offset_text(offset)
    } else if style.time_zone.is_none() {
        " UTC".to_string()
    } else {
        format!(" {}", pg_style::offset_text(offset))
    };
    year_suffix(y, |y| {
        let date = pg_style::date_text(style, y, m, d);
        format!("{date} {t}{zone}")
    })
}

fn interval_styled(months: i64, days: i64, us: i64, style: &OutputStyle) -> String {
    pg_style::interval_text(style.interval_style, months, days, us)
        .unwrap_or_else(|| interval(months, days, us))
}

/// Days since 1970-01-01 as `YYYY-MM-DD`, `… BC` before year 1.
pub fn date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    year_suffix(y, |y| format!("{y:04}-{m:02}-{d:02}"))
}

fn year_suffix(y: i64, f: impl Fn(i64) -> String) -> String {
    if y <= 0 {
        format!("{} BC", f(1 - y))
    } else {
        f(y)
    }
}

/// Howard Hinnant's days → (year, month, day) in the proleptic Gregorian calendar.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Microseconds since the epoch as `YYYY-MM-DD HH:MM:SS[.ffffff]`, with `+00` for
/// timestamptz (eddy sessions run in UTC).
pub fn timestamp(us: i64, with_tz: bool) -> String {
    let days = us.div_euclid(USECS_PER_DAY);
    let tod = us.rem_euclid(USECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let t = time(tod);
    let tz = if with_tz { "+00" } else { "" };
    year_suffix(y, |y| format!("{y:04}-{m:02}-{d:02} {t}{tz}"))
}

/// Microseconds since midnight as `HH:MM:SS[.ffffff]` (trailing zeros of the fraction dropped).
pub fn time(us: i64) -> String {
    let h = us / USECS_PER_HOUR;
    let rest = us % USECS_PER_HOUR;
    let mi = rest / USECS_PER_MINUTE;
    let rest = rest % USECS_PER_MINUTE;
    let mut s = format!("{h:02}:{mi:02}:");
    seconds(&mut s, rest / USECS_PER_SEC, rest % USECS_PER_SEC);
    s
}

fn seconds(out: &mut String, sec: i64, frac_us: i64) {
    let _ = write!(out, "{:02}", sec.abs());
    if frac_us != 0 {
        let f = format!("{:06}", frac_us.abs());
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// IntervalStyle `postgres`: `1 year 2 mons -3 days +04:05:06.5`, `00:00:00` for zero.
pub fn interval(months: i64, days: i64, us: i64) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut String, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let _ = write!(
            out,
            "{}{}{} {}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            value,
            unit,
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    };
    part(&mut out, months / 12, "year");
    part(&mut out, months % 12, "mon");
    part(&mut out, days, "day");
    if is_zero || us != 0 {
        let hour = us / USECS_PER_HOUR;
        let rest = us % USECS_PER_HOUR;
        let min = rest / USECS_PER_MINUTE;
        let rest = rest % USECS_PER_MINUTE;
        let minus = us < 0;
        let _ = write!(
            out,
            "{}{}{:02}:{:02}:",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            hour.abs(),
            min.abs()
        );
        seconds(&mut out, rest / USECS_PER_SEC, rest % USECS_PER_SEC);
    }
    out
}

/// bytea_output `hex`.
pub fn bytea(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("\\x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Result rows for the wire: text-format columns as Postgres prints them (above), binary
/// ones through arrow-pg.
pub fn encode_batch(
    fields: Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
    style: Arc<OutputStyle>,
) -> impl Iterator<Item = PgWireResult<DataRow>> {
    let mut encoder = DataRowEncoder::new(fields.clone());
    let schema = batch.schema();
    (0..batch.num_rows()).map(move |row| {
        for (col, pg_field) in fields.iter().enumerate() {
            let array = batch.column(col);
            if pg_field.format() == FieldFormat::Text {
                // Type TEXT: the string is already the value's text, quoting included.
                encoder.encode_field_with_type_and_format(
                    &format_value_styled(array, row, &style),
                    &Type::TEXT,
                    FieldFormat::Text,
                    pg_field.format_options(),
                )?;
            } else {
                arrow_pg::encoder::encode_value(
                    &mut encoder,
                    array,
                    row,
                    schema.field(col),
                    pg_field,
                )?;
            }
        }
        Ok(encoder.take_row())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_postgres_prints_them() {
        for (v, s) in [
            (3.0, "3"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-6, "1e-06"),
            (1e-4, "0.0001"),
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (123456789.123, "123456789.123"),
            (-2.5, "-2.5"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-0.0, "-0"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(float8(v), s, "{v}");
        }
        assert_eq!(float4(1e10), "1e+10");
        assert_eq!(float4(123456.79), "123456.79");
        assert_eq!(float4(0.1), "0.1");
    }

    #[test]
    fn numerics_keep_their_scale() {
        assert_eq!(decimal(150, 2), "1.50");
        assert_eq!(decimal(-1, 2), "-0.01");
        assert_eq!(decimal(0, 3), "0.000");
        assert_eq!(decimal(42, 0), "42");
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(
            timestamp(1_767_261_600_000_000, false),
            "2026-01-01 10:00:00"
        );
        assert_eq!(
            timestamp(1_767_261_600_500_000, true),
            "2026-01-01 10:00:00.5+00"
        );
        assert_eq!(date(-719_162), "0001-01-01");
        assert_eq!(date(-719_163), "0001-12-31 BC");
        assert_eq!(time(45_296_789_000), "12:34:56.789");
    }

    #[test]
    fn intervals_in_postgres_style() {
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(
            interval(14, 3, 14_706_789_000),
            "1 year 2 mons 3 days 04:05:06.789"
        );
        assert_eq!(interval(0, 21, 86_399_000_000), "21 days 23:59:59");
        assert_eq!(interval(0, -1, 2 * USECS_PER_HOUR), "-1 days +02:00:00");
        assert_eq!(interval(1, -1, 0), "1 mon -1 days");
        assert_eq!(interval(0, 0, -USECS_PER_HOUR), "-01:00:00");
    }
}
