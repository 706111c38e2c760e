//! The session settings that change how Postgres writes values, read from `SET`:
//! `TimeZone` (timestamptz is shown in that zone, with its offset: `2026-01-01
//! 05:00:00-05`), `DateStyle` (`ISO`, `SQL`, `German`, with `DMY`/`MDY` order),
//! `IntervalStyle` (`postgres`, `iso_8601`) and
//! `extra_float_digits` (at 1 or more floats are shortest round-trip; at 0 or less they
//! have `15 + n` significant digits, float4 `6 + n`). [`super::pg_text`] formats with
//! these; the defaults are Postgres' (UTC, ISO, postgres, 1).
//!
//! The invariant: a setting eddy cannot honour is refused at `SET` (22023), never
//! accepted and ignored.

use std::collections::HashMap;
use std::fmt::Write;
use std::str::FromStr;

use chrono::{Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateOrder {
    #[default]
    Mdy,
    Dmy,
    Ymd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateStyle {
    #[default]
    Iso,
    Sql,
    German,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntervalStyle {
    #[default]
    Postgres,
    Iso8601,
}

/// How values are written for one session.
#[derive(Debug, Clone)]
pub struct OutputStyle {
    /// `None` is UTC.
    pub time_zone: Option<Tz>,
    pub date_style: DateStyle,
    pub date_order: DateOrder,
    pub interval_style: IntervalStyle,
    pub extra_float_digits: i32,
}

impl Default for OutputStyle {
    fn default() -> Self {
        OutputStyle {
            time_zone: None,
            date_style: DateStyle::Iso,
            date_order: DateOrder::Mdy,
            interval_style: IntervalStyle::Postgres,
            extra_float_digits: 1,
        }
    }
}

/// Why a setting's value is refused.
pub type Invalid = String;

fn parse_time_zone(v: &str) -> Result<Option<Tz>, Invalid> {
    let v = v.trim();
    let zero_offset = v
        .trim_start_matches(['+', '-'])
        .chars()
        .all(|c| c == '0' || c == ':');
    if ["utc", "gmt", "z", "etc/utc", "default"].contains(&v.to_ascii_lowercase().as_str())
        || (!v.is_empty() && zero_offset)
    {
        return Ok(None);
    }
    // Only zone names: Postgres reads a bare `+02` or `UTC+2` as a POSIX zone, east and
    // west swapped, which Arrow's parser would read the other way round.
    if v.starts_with(['+', '-']) || v.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return Err(format!(
            "time zone \"{v}\" is not supported; use a zone name"
        ));
    }
    Tz::from_str(v)
        .map(Some)
        .map_err(|_| format!("invalid value for parameter \"TimeZone\": \"{v}\""))
}

fn parse_date_style(v: &str, style: &mut OutputStyle) -> Result<(), Invalid> {
    for part in v.split(',').map(|p| p.trim().to_ascii_lowercase()) {
        match part.as_str() {
            "iso" => style.date_style = DateStyle::Iso,
            "sql" => style.date_style = DateStyle::Sql,
            "german" => {
                style.date_style = DateStyle::German;
                style.date_order = DateOrder::Dmy;
            }
            "mdy" | "us" | "noneuropean" => style.date_order = DateOrder::Mdy,
            "dmy" | "euro" | "european" => style.date_order = DateOrder::Dmy,
            "ymd" => style.date_order = DateOrder::Ymd,
            "" => {}
            other => {
                return Err(format!(
                    "invalid value for parameter \"DateStyle\": \"{other}\"{}",
                    if other == "postgres" {
                        " (the Postgres date style is not supported by eddy)"
                    } else {
                        ""
                    }
                ))
            }
        }
    }
    Ok(())
}

impl OutputStyle {
    /// Check one `SET name = value`: `Err` if eddy cannot honour it. Other names pass.
    pub fn validate(name: &str, value: &str) -> Result<(), Invalid> {
        let mut style = OutputStyle::default();
        style.apply(name, value)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), Invalid> {
        if value.eq_ignore_ascii_case("default") {
            return Ok(());
        }
        match name {
            "timezone" | "time zone" => self.time_zone = parse_time_zone(value)?,
            "datestyle" => parse_date_style(value, self)?,
            "intervalstyle" => {
                self.interval_style = match value.trim().to_ascii_lowercase().as_str() {
                    "postgres" => IntervalStyle::Postgres,
                    "iso_8601" => IntervalStyle::Iso8601,
                    other @ ("sql_standard" | "postgres_verbose") => {
                        return Err(format!(
                            "IntervalStyle \"{other}\" is not supported by eddy"
                        ))
                    }
                    other => {
                        return Err(format!(
                            "invalid value for parameter \"IntervalStyle\": \"{other}\""
                        ))
                    }
                }
            }
            "extra_float_digits" => {
                let n: i32 = value.trim().parse().map_err(|_| {
                    format!("invalid value for parameter \"extra_float_digits\": \"{value}\"")
                })?;
                if !(-15..=3).contains(&n) {
                    return Err(format!(
                        "{n} is outside the valid range for parameter \"extra_float_digits\" (-15 .. 3)"
                    ));
                }
                self.extra_float_digits = n;
            }
            _ => {}
        }
        Ok(())
    }

    /// The style a session's settings ask for (values were checked at SET).
    pub fn from_settings(settings: &HashMap<String, String>) -> OutputStyle {
        let mut style = OutputStyle::default();
        for (name, value) in settings {
            let _ = style.apply(name, value);
        }
        style
    }

    /// The offset east of UTC, in seconds, at the instant `us` (µs since the epoch).
    pub fn offset_at(&self, us: i64) -> i32 {
        let Some(tz) = &self.time_zone else { return 0 };
        let secs = us.div_euclid(1_000_000);
        match chrono::DateTime::from_timestamp(secs, 0) {
            Some(t) => tz
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
            None => 0,
        }
    }
}

/// `+05`, `-03:30`, `+05:45:10`: Postgres' offset suffix.
pub fn offset_text(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    let mut out = format!("{sign}{h:02}");
    if m != 0 || s != 0 {
        let _ = write!(out, ":{m:02}");
    }
    if s != 0 {
        let _ = write!(out, ":{s:02}");
    }
    out
}

/// A date in the session's DateStyle.
pub fn date_text(style: &OutputStyle, y: i64, m: u32, d: u32) -> String {
    match (style.date_style, style.date_order) {
        (DateStyle::Iso, _) => format!("{y:04}-{m:02}-{d:02}"),
        (DateStyle::Sql, DateOrder::Dmy) => format!("{d:02}/{m:02}/{y:04}"),
        (DateStyle::Sql, _) => format!("{m:02}/{d:02}/{y:04}"),
        (DateStyle::German, _) => format!("{d:02}.{m:02}.{y:04}"),
    }
}

/// `%.{digits}g` as C's printf writes it (what float8out does at extra_float_digits ≤ 0).
pub fn float_g(v: f64, digits: i32) -> String {
    let p = digits.max(1) as usize;
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// An interval in IntervalStyle `iso_8601` (`None` for the default style).
pub fn interval_text(style: IntervalStyle, months: i64, days: i64, us: i64) -> Option<String> {
    let (y, mo) = (months / 12, months % 12);
    let (h, rest) = (us / 3_600_000_000, us % 3_600_000_000);
    let (mi, rest) = (rest / 60_000_000, rest % 60_000_000);
    let secs = |rest: i64| {
        let (s, f) = (rest / 1_000_000, rest % 1_000_000);
        if f == 0 {
            format!("{s}")
        } else {
            let frac = format!("{:06}", f.abs());
            format!(
                "{}{}.{}",
                if s == 0 && f < 0 { "-" } else { "" },
                s,
                frac.trim_end_matches('0')
            )
        }
    };
    Some(match style {
        IntervalStyle::Postgres => return None,
        IntervalStyle::Iso8601 => {
            if months == 0 && days == 0 && us == 0 {
                return Some("PT0S".into());
            }
            let mut out = String::from("P");
            for (v, u) in [(y, 'Y'), (mo, 'M'), (days, 'D')] {
                if v != 0 {
                    let _ = write!(out, "{v}{u}");
                }
            }
            if us != 0 {
                out.push('T');
                for (v, u) in [(h, 'H'), (mi, 'M')] {
                    if v != 0 {
                        let _ = write!(out, "{v}{u}");
                    }
                }
                if rest != 0 {
                    let _ = write!(out, "{}S", secs(rest));
                }
            }
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_as_postgres_reads_them() {
        let mut s = HashMap::new();
        s.insert("timezone".to_string(), "America/New_York".to_string());
        s.insert("extra_float_digits".to_string(), "0".to_string());
        let style = OutputStyle::from_settings(&s);
        // 2026-01-01 10:00 UTC is 05:00 in New York (EST, -5).
        assert_eq!(style.offset_at(1_767_261_600_000_000), -5 * 3600);
        assert_eq!(style.extra_float_digits, 0);
        assert!(OutputStyle::validate("timezone", "Mars/Base").is_err());
        assert!(OutputStyle::validate("extra_float_digits", "9").is_err());
        assert!(OutputStyle::validate("application_name", "x").is_ok());
    }

    #[test]
    fn float_g_is_printf() {
        assert_eq!(float_g(0.1 + 0.2, 15), "0.3");
        assert_eq!(float_g(1e20, 15), "1e+20");
        assert_eq!(float_g(123456.789, 15), "123456.789");
        assert_eq!(float_g(1.0 / 3.0, 15), "0.333333333333333");
        assert_eq!(float_g(0.5f32 as f64, 6), "0.5");
    }

    #[test]
    fn offsets_and_intervals() {
        assert_eq!(offset_text(-5 * 3600), "-05");
        assert_eq!(offset_text(5 * 3600 + 1800), "+05:30");
        assert_eq!(
            interval_text(
                IntervalStyle::Iso8601,
                14,
                3,
                4 * 3_600_000_000 + 5 * 60_000_000 + 6_000_000
            )
            .as_deref(),
            Some("P1Y2M3DT4H5M6S")
        );
    }
}
