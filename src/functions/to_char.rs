//! `to_char(timestamp | date, pattern)` with Postgres' template patterns (DataFusion's
//! `to_char` reads chrono patterns and returns a Postgres pattern unchanged). Numbers and
//! intervals are refused with 0A000 rather than formatted differently.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::RowFunction;
use crate::error::EddyError;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

pub fn udf() -> Arc<ScalarUDF> {
    RowFunction::udf(
        "to_char",
        Signature::any(2, Volatility::Immutable),
        |_| Ok(DataType::Utf8),
        |a, types| {
            if a[0].is_null() || a[1].is_null() {
                return Ok(ScalarValue::Utf8(None));
            }
            let pattern = match &a[1] {
                ScalarValue::Utf8(Some(p)) | ScalarValue::LargeUtf8(Some(p)) => p.clone(),
                _ => return Err(unsupported(&types[1])),
            };
            let us = match &types[0] {
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                    match a[0].cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None))? {
                        ScalarValue::TimestampMicrosecond(Some(v), _) => v,
                        _ => return Ok(ScalarValue::Utf8(None)),
                    }
                }
                other => return Err(unsupported(other)),
            };
            Ok(ScalarValue::Utf8(Some(format_timestamp(us, &pattern))))
        },
    )
}

fn unsupported(t: &DataType) -> DataFusionError {
    DataFusionError::External(Box::new(EddyError::Unsupported(format!(
        "to_char of {}",
        crate::sql::types::pg_type_name(t)
    ))))
}

fn day_of_year(y: i64, m: u32, d: u32) -> u32 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    cum[(m - 1) as usize] + d + if leap && m > 2 { 1 } else { 0 }
}

/// Format microseconds since the epoch with a Postgres template.
pub fn format_timestamp(us: i64, pattern: &str) -> String {
    let days = us.div_euclid(86_400_000_000);
    let tod = us.rem_euclid(86_400_000_000);
    let (y, m, d) = crate::server::pg_text::civil_from_days(days);
    let dow = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let hour = tod / 3_600_000_000;
    let minute = tod / 60_000_000 % 60;
    let second = tod / 1_000_000 % 60;
    let micros = tod % 1_000_000;
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let pm = hour >= 12;

    let mut out = String::new();
    let mut rest = pattern;
    let mut fill = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("FM") {
            fill = false;
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            out.push_str(&r[..end]);
            rest = r.get(end + 1..).unwrap_or("");
            continue;
        }
        let num = |w: usize, v: i64, fill: bool| {
            if fill {
                format!("{v:0w$}")
            } else {
                v.to_string()
            }
        };
        let name = |s: &str, fill: bool| {
            if fill {
                format!("{s:<9}")
            } else {
                s.to_string()
            }
        };
        let fields: &[(&str, &dyn Fn(bool) -> String)] = &[
            ("HH24", &|f| num(2, hour, f)),
            ("HH12", &|f| num(2, hour12, f)),
            ("HH", &|f| num(2, hour12, f)),
            ("MI", &|f| num(2, minute, f)),
            ("SS", &|f| num(2, second, f)),
            ("MS", &|f| num(3, micros / 1000, f)),
            ("US", &|f| num(6, micros, f)),
            ("AM", &|_| if pm { "PM" } else { "AM" }.into()),
            ("PM", &|_| if pm { "PM" } else { "AM" }.into()),
            ("am", &|_| if pm { "pm" } else { "am" }.into()),
            ("pm", &|_| if pm { "pm" } else { "am" }.into()),
            ("YYYY", &|f| num(4, y, f)),
            ("YYY", &|f| num(3, y % 1000, f)),
            ("YY", &|f| num(2, y % 100, f)),
            ("Y", &|_| (y % 10).to_string()),
            ("MONTH", &|f| {
                name(&MONTHS[m as usize - 1].to_uppercase(), f)
            }),
            ("Month", &|f| name(MONTHS[m as usize - 1], f)),
            ("month", &|f| {
                name(&MONTHS[m as usize - 1].to_lowercase(), f)
            }),
            ("MON", &|_| MONTHS[m as usize - 1][..3].to_uppercase()),
            ("Mon", &|_| MONTHS[m as usize - 1][..3].to_string()),
            ("mon", &|_| MONTHS[m as usize - 1][..3].to_lowercase()),
            ("MM", &|f| num(2, m as i64, f)),
            ("DAY", &|f| name(&DAYS[dow].to_uppercase(), f)),
            ("Day", &|f| name(DAYS[dow], f)),
            ("day", &|f| name(&DAYS[dow].to_lowercase(), f)),
            ("DY", &|_| DAYS[dow][..3].to_uppercase()),
            ("Dy", &|_| DAYS[dow][..3].to_string()),
            ("dy", &|_| DAYS[dow][..3].to_lowercase()),
            ("DDD", &|f| num(3, day_of_year(y, m, d) as i64, f)),
            ("DD", &|f| num(2, d as i64, f)),
            ("D", &|_| (dow + 1).to_string()),
            ("Q", &|_| ((m - 1) / 3 + 1).to_string()),
        ];
        let mut matched = false;
        for (pat, f) in fields {
            if let Some(r) = rest.strip_prefix(pat) {
                out.push_str(&f(fill));
                rest = r;
                matched = true;
                break;
            }
        }
        if matched {
            // FM applies to the next field only.
            fill = true;
            continue;
        }
        let c = rest.chars().next().expect("rest is not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_patterns() {
        // 2024-02-29 23:59:59.5, a Thursday
        let us = 1_709_251_199_500_000;
        assert_eq!(
            format_timestamp(us, "YYYY-MM-DD HH24:MI:SS"),
            "2024-02-29 23:59:59"
        );
        assert_eq!(format_timestamp(us, "Day"), "Thursday ");
        assert_eq!(format_timestamp(us, "FMMonth DD"), "February 29");
        assert_eq!(format_timestamp(us, "Mon DD, YYYY"), "Feb 29, 2024");
        assert_eq!(format_timestamp(us, "HH12:MI AM"), "11:59 PM");
        assert_eq!(format_timestamp(us, "YYYY\"Q\"Q"), "2024Q1");
    }
}
