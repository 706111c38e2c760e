//! Date/time and interval strings as Postgres reads them, and the canonical spellings
//! Arrow parses back to the same values.

use datafusion::sql::sqlparser::ast::DateTimeField;

use super::Kind;

pub(super) fn field_unit(f: &DateTimeField) -> Option<&'static str> {
    Some(match f {
        DateTimeField::Year | DateTimeField::Years => "year",
        DateTimeField::Month | DateTimeField::Months => "month",
        DateTimeField::Week(_) | DateTimeField::Weeks => "week",
        DateTimeField::Day | DateTimeField::Days => "day",
        DateTimeField::Hour | DateTimeField::Hours => "hour",
        DateTimeField::Minute | DateTimeField::Minutes => "minute",
        DateTimeField::Second | DateTimeField::Seconds => "second",
        _ => return None,
    })
}

/// The canonical spelling of `s` read as `kind`, or `None` to leave it to Arrow.
pub fn normalize(kind: Kind, s: &str) -> Option<String> {
    match kind {
        Kind::Interval => parse_interval(s).map(|(m, d, us)| interval_text(m, d, us)),
        Kind::Timestamp | Kind::TimestampTz => {
            let t = parse_timestamp(s)?;
            let base = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
                t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
            );
            Some(match (kind, t.offset_secs) {
                // timestamp without time zone ignores a written offset, as Postgres does.
                (Kind::Timestamp, _) => base,
                (_, None) => format!("{base}+00:00"),
                (_, Some(off)) => format!(
                    "{base}{}{:02}:{:02}",
                    if off < 0 { '-' } else { '+' },
                    off.abs() / 3600,
                    off.abs() % 3600 / 60
                ),
            })
        }
        Kind::Date => {
            let t = parse_timestamp(s)?;
            if t.has_time {
                return None;
            }
            Some(format!("{:04}-{:02}-{:02}", t.year, t.month, t.day))
        }
        Kind::Time => {
            let (h, mi, sec, us, rest) = parse_clock(s.trim())?;
            if !rest.trim().is_empty() {
                return None;
            }
            if h > 24 || mi > 59 || sec > 59 || (h == 24 && (mi, sec, us) != (0, 0, 0)) {
                return None;
            }
            Some(format!("{h:02}:{mi:02}:{sec:02}.{us:06}"))
        }
    }
}

struct Stamp {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
    offset_secs: Option<i32>,
    has_time: bool,
}

fn digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at(n)
}

/// `HH:MM[:SS[.ffffff]]`, returning the rest of the string.
fn parse_clock(s: &str) -> Option<(u32, u32, u32, u32, &str)> {
    let (h, rest) = digits(s);
    if h.is_empty() || h.len() > 2 {
        return None;
    }
    let rest = rest.strip_prefix(':')?;
    let (mi, mut rest) = digits(rest);
    if mi.len() != 2 {
        return None;
    }
    let mut sec = 0;
    let mut us = 0;
    if let Some(r) = rest.strip_prefix(':') {
        let (ss, r) = digits(r);
        if ss.len() != 2 {
            return None;
        }
        sec = ss.parse().ok()?;
        rest = r;
        if let Some(r) = rest.strip_prefix('.') {
            let (frac, r) = digits(r);
            if frac.is_empty() {
                return None;
            }
            us = frac_micros(frac)?;
            rest = r;
        }
    }
    Some((h.parse().ok()?, mi.parse().ok()?, sec, us, rest))
}

/// A fraction's digits as microseconds, rounded half up at the sixth digit.
fn frac_micros(frac: &str) -> Option<u32> {
    let mut padded: String = frac.chars().take(7).collect();
    while padded.len() < 7 {
        padded.push('0');
    }
    let v: u32 = padded.parse().ok()?;
    // A carry into the seconds is left to Arrow (None): it is rare enough.
    let us = (v + 5) / 10;
    (us < 1_000_000).then_some(us)
}

fn parse_timestamp(s: &str) -> Option<Stamp> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("epoch") {
        return Some(Stamp {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            offset_secs: None,
            has_time: false,
        });
    }
    let (y, rest) = digits(s);
    if y.len() < 4 {
        return None;
    }
    let rest = rest.strip_prefix('-')?;
    let (m, rest) = digits(rest);
    let rest = rest.strip_prefix('-')?;
    let (d, rest) = digits(rest);
    if m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let mut t = Stamp {
        year: y.parse().ok()?,
        month: m.parse().ok()?,
        day: d.parse().ok()?,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
        offset_secs: None,
        has_time: false,
    };
    if !valid_date(t.year, t.month, t.day) {
        return None;
    }
    let rest = rest.trim_start_matches([' ', 'T', 't']);
    if rest.is_empty() {
        return Some(t);
    }
    let (h, mi, sec, us, rest) = parse_clock(rest)?;
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    t.hour = h;
    t.minute = mi;
    t.second = sec;
    t.micros = us;
    t.has_time = true;
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(t);
    }
    if rest.eq_ignore_ascii_case("z") || rest.eq_ignore_ascii_case("utc") {
        t.offset_secs = Some(0);
        return Some(t);
    }
    let (sign, r) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (hh, r) = digits(r);
    let (hh, mm) = match (hh.len(), r.strip_prefix(':')) {
        (1 | 2, Some(r)) => {
            let (mm, r2) = digits(r);
            if mm.len() != 2 || !r2.is_empty() {
                return None;
            }
            (hh.parse::<i32>().ok()?, mm.parse::<i32>().ok()?)
        }
        (1 | 2, None) if r.is_empty() => (hh.parse::<i32>().ok()?, 0),
        (4, None) if r.is_empty() => (hh[..2].parse().ok()?, hh[2..].parse().ok()?),
        _ => return None,
    };
    if hh > 15 || mm > 59 {
        return None;
    }
    t.offset_secs = Some(sign * (hh * 3600 + mm * 60));
    Some(t)
}

fn valid_date(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= days[(m - 1) as usize]
}

const US_PER_SEC: f64 = 1e6;
const US_PER_DAY: i64 = 86_400_000_000;

/// Postgres interval input (postgres style, SQL-standard `D HH:MM:SS`, ISO 8601 `P…`,
/// `ago`) as (months, days, microseconds).
pub fn parse_interval(s: &str) -> Option<(i64, i64, i64)> {
    let s = s.trim();
    let s = s.strip_prefix('@').unwrap_or(s).trim();
    if s.is_empty() {
        return None;
    }
    if let Some(iso) = s.strip_prefix(['P', 'p']) {
        return parse_iso_interval(iso);
    }
    let lower = s.to_ascii_lowercase();
    let mut tokens: Vec<&str> = lower.split_whitespace().collect();
    let ago = tokens.last() == Some(&"ago");
    if ago {
        tokens.pop();
    }
    let mut months = 0f64;
    let mut days = 0f64;
    let mut us = 0f64;
    let mut i = 0;
    let mut any = false;
    while i < tokens.len() {
        let tok = tokens[i];
        if tok.contains(':') {
            let (neg, clock) = match tok.as_bytes()[0] {
                b'-' => (true, &tok[1..]),
                b'+' => (false, &tok[1..]),
                _ => (false, tok),
            };
            let (h, mi, sec, frac, rest) = parse_clock_unbounded(clock)?;
            if !rest.is_empty() {
                return None;
            }
            let v = ((h * 60 + mi) * 60 + sec) as f64 * US_PER_SEC + frac as f64;
            us += if neg { -v } else { v };
            any = true;
            i += 1;
            continue;
        }
        let value: f64 = tok.parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        let unit = tokens.get(i + 1).copied();
        let (unit, step) = match unit {
            Some(u) if u.parse::<f64>().is_err() && !u.contains(':') => (u, 2),
            // A bare number is seconds; in SQL-standard form a number before a clock is days.
            Some(u) if u.contains(':') => ("day", 1),
            _ => ("second", 1),
        };
        match unit {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" => us += value,
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => us += value * 1000.0,
            "second" | "seconds" | "s" | "sec" | "secs" => us += value * US_PER_SEC,
            "minute" | "minutes" | "m" | "min" | "mins" => us += value * 60.0 * US_PER_SEC,
            "hour" | "hours" | "h" | "hr" | "hrs" => us += value * 3600.0 * US_PER_SEC,
            "day" | "days" | "d" => days += value,
            "week" | "weeks" | "w" => days += value * 7.0,
            "month" | "months" | "mon" | "mons" => months += value,
            "year" | "years" | "y" | "yr" | "yrs" => months += value * 12.0,
            "decade" | "decades" => months += value * 120.0,
            "century" | "centuries" => months += value * 1200.0,
            "millennium" | "millennia" | "millenniums" => months += value * 12000.0,
            _ => return None,
        }
        any = true;
        i += step;
    }
    if !any {
        return None;
    }
    Some(spill(months, days, us, ago))
}

/// Fractional months spill into days (30 a month), fractional days into time, as Postgres.
fn spill(months: f64, days: f64, us: f64, ago: bool) -> (i64, i64, i64) {
    let whole_months = months.trunc();
    let days = days + (months - whole_months) * 30.0;
    let whole_days = days.trunc();
    let us = us + (days - whole_days) * US_PER_DAY as f64;
    let sign = if ago { -1 } else { 1 };
    (
        sign * whole_months as i64,
        sign * whole_days as i64,
        sign * us.round() as i64,
    )
}

fn parse_clock_unbounded(s: &str) -> Option<(i64, i64, i64, i64, &str)> {
    let (h, rest) = digits(s);
    if h.is_empty() {
        return None;
    }
    let rest = rest.strip_prefix(':')?;
    let (mi, mut rest) = digits(rest);
    if mi.is_empty() {
        return None;
    }
    let (mut sec, mut us) = (0i64, 0i64);
    if let Some(r) = rest.strip_prefix(':') {
        let (ss, r) = digits(r);
        if ss.is_empty() {
            return None;
        }
        sec = ss.parse().ok()?;
        rest = r;
        if let Some(r) = rest.strip_prefix('.') {
            let (frac, r) = digits(r);
            us = frac_micros(frac)? as i64;
            rest = r;
        }
    }
    Some((h.parse().ok()?, mi.parse().ok()?, sec, us, rest))
}

fn parse_iso_interval(s: &str) -> Option<(i64, i64, i64)> {
    let (date, time) = match s.find(['T', 't']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let (mut months, mut days, mut us) = (0f64, 0f64, 0f64);
    let mut any = false;
    for (part, is_time) in [(date, false), (time, true)] {
        let mut rest = part;
        while !rest.is_empty() {
            let n = rest
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b'.' || *b == b'-')
                .count();
            let value: f64 = rest[..n].parse().ok()?;
            let unit = rest[n..].chars().next()?.to_ascii_uppercase();
            rest = &rest[n + 1..];
            match (unit, is_time) {
                ('Y', false) => months += value * 12.0,
                ('M', false) => months += value,
                ('W', false) => days += value * 7.0,
                ('D', false) => days += value,
                ('H', true) => us += value * 3600.0 * US_PER_SEC,
                ('M', true) => us += value * 60.0 * US_PER_SEC,
                ('S', true) => us += value * US_PER_SEC,
                _ => return None,
            }
            any = true;
        }
    }
    any.then(|| spill(months, days, us, false))
}

/// A spelling of (months, days, µs) that Arrow's interval parser reads back exactly.
pub fn interval_text(months: i64, days: i64, us: i64) -> String {
    let mut parts = Vec::new();
    if months != 0 {
        parts.push(format!("{months} months"));
    }
    if days != 0 {
        parts.push(format!("{days} days"));
    }
    if us != 0 || parts.is_empty() {
        parts.push(format!("{us} microseconds"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    #[test]
    fn intervals_as_postgres_reads_them() {
        let cases: &[(&str, (i64, i64, i64))] = &[
            ("21 days 23:59:59", (0, 21, 24 * H - 1_000_000)),
            ("00:00:01.5", (0, 0, 1_500_000)),
            ("1 day", (0, 1, 0)),
            (
                "1 year 2 mons 3 days 04:05:06.789",
                (14, 3, 4 * H + 306_789_000),
            ),
            ("-1 day", (0, -1, 0)),
            ("1 day ago", (0, -1, 0)),
            ("90 minutes", (0, 0, 90 * 60_000_000)),
            ("1.5 days", (0, 1, 12 * H)),
            ("1 week", (0, 7, 0)),
            ("0", (0, 0, 0)),
            ("4", (0, 0, 4_000_000)),
            ("P1Y2M3DT4H5M6S", (14, 3, 4 * H + 306_000_000)),
            ("-02:00", (0, 0, -2 * H)),
            ("1 mon -1 day", (1, -1, 0)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_interval(s), Some(*want), "{s}");
        }
        assert_eq!(parse_interval("banana"), None);
        assert_eq!(parse_interval("1 fortnight"), None);
    }

    #[test]
    fn timestamps_as_postgres_reads_them() {
        assert_eq!(
            normalize(Kind::Timestamp, "2026-01-01 10:00").as_deref(),
            Some("2026-01-01T10:00:00.000000")
        );
        assert_eq!(
            normalize(Kind::TimestampTz, "2026-01-01 10:00:00+02").as_deref(),
            Some("2026-01-01T10:00:00.000000+02:00")
        );
        assert_eq!(
            normalize(Kind::Timestamp, "2026-01-01 10:00:00+02").as_deref(),
            Some("2026-01-01T10:00:00.000000")
        );
        assert_eq!(normalize(Kind::Date, "2026-02-30"), None);
        assert_eq!(
            normalize(Kind::Time, "10:00").as_deref(),
            Some("10:00:00.000000")
        );
        assert_eq!(normalize(Kind::Time, "25:00:00"), None);
    }
}
