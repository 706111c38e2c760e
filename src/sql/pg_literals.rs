//! Date/time and interval input as PostgreSQL reads it. Arrow's parsers refuse many forms
//! Postgres accepts (`'2026-01-01 10:00'` without seconds, `'21 days 23:59:59'`,
//! `'00:00:01.5'`, `'P1Y2M'`, `'1 day ago'`), so every string literal typed or cast as
//! `timestamp`, `timestamptz`, `date`, `time` or `interval` is read here and replaced by a
//! canonical spelling Arrow parses to the same value; INSERT values of those types go
//! through [`normalize`] too. The invariant: a string is either rewritten to a canonical
//! form denoting exactly the value Postgres would read, or left alone (and Arrow's error, if
//! any, stands) — never turned into a different value.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, DataType, DateTimeField, Expr, Interval, TimezoneInfo, Value,
};

/// The kinds of literal this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Timestamp,
    TimestampTz,
    Date,
    Time,
    Interval,
}

impl Kind {
    pub fn of_sql(t: &DataType) -> Option<Kind> {
        Some(match t {
            DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
                Kind::TimestampTz
            }
            DataType::Timestamp(_, _) => Kind::Timestamp,
            DataType::Date => Kind::Date,
            DataType::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => Kind::Time,
            DataType::Interval { .. } => Kind::Interval,
            DataType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("timestamptz") => {
                Kind::TimestampTz
            }
            _ => return None,
        })
    }

    pub fn of_arrow(t: &datafusion::arrow::datatypes::DataType) -> Option<Kind> {
        use datafusion::arrow::datatypes::DataType as A;
        Some(match t {
            A::Timestamp(_, Some(_)) => Kind::TimestampTz,
            A::Timestamp(_, None) => Kind::Timestamp,
            A::Date32 | A::Date64 => Kind::Date,
            A::Time32(_) | A::Time64(_) => Kind::Time,
            A::Interval(_) => Kind::Interval,
            _ => return None,
        })
    }
}

/// Rewrite the string literals of these types in `q` into Arrow-readable spellings.
pub fn rewrite<V: datafusion::sql::sqlparser::ast::VisitMut>(q: &mut V) {
    let _ = visit_expressions_mut(q, |e| {
        rewrite_expr(e);
        ControlFlow::<()>::Continue(())
    });
}

fn string_of(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn set_string(e: &mut Expr, new: String) {
    if let Expr::Value(v) = e {
        v.value = Value::SingleQuotedString(new);
    }
}

fn rewrite_expr(e: &mut Expr) {
    // DataFusion plans `timestamptz` as a timestamp without zone (no session time zone is
    // configured, so that stream time columns keep their type); cast to the zoned type
    // eddy stores timestamptz columns as instead.
    let to_tz = match e {
        Expr::Cast { data_type, .. } => Kind::of_sql(data_type) == Some(Kind::TimestampTz),
        Expr::TypedString(t) => Kind::of_sql(&t.data_type) == Some(Kind::TimestampTz),
        _ => false,
    };
    rewrite_literal(e);
    if to_tz {
        let inner = match e {
            Expr::Cast { expr, .. } => expr.as_ref().clone(),
            Expr::TypedString(t) => Expr::Value(t.value.clone()),
            _ => return,
        };
        *e = arrow_cast(inner, TIMESTAMPTZ_ARROW);
    }
}

const TIMESTAMPTZ_ARROW: &str = "Timestamp(Microsecond, Some(\"+00:00\"))";

fn arrow_cast(e: Expr, ty: &str) -> Expr {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
        ObjectName, ObjectNamePart,
    };
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new("arrow_cast"))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)),
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                    Value::SingleQuotedString(ty.into()),
                ))),
            ],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn is_float_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Real
            | DataType::Float4
            | DataType::Float8
            | DataType::Double(_)
            | DataType::DoublePrecision
            | DataType::Float(_)
    )
}

/// `-3 ^ 2`: Postgres binds unary minus tighter than `^` (9); sqlparser parses
/// `-(3 ^ 2)`. Move the minus onto the leftmost operand of the `^` chain.
fn negate_power_base(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, UnaryOperator};
    let Expr::UnaryOp {
        op: UnaryOperator::Minus,
        expr,
    } = e
    else {
        return;
    };
    if !matches!(
        expr.as_ref(),
        Expr::BinaryOp {
            op: BinaryOperator::PGExp,
            ..
        }
    ) {
        return;
    }
    let mut inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
    let mut base = &mut inner;
    while let Expr::BinaryOp {
        op: BinaryOperator::PGExp,
        left,
        ..
    } = base
    {
        base = left.as_mut();
    }
    let operand = std::mem::replace(base, Expr::value(Value::Null));
    *base = Expr::UnaryOp {
        op: UnaryOperator::Minus,
        expr: Box::new(operand),
    };
    *e = inner;
}

/// `x SIMILAR TO 'pattern'` as the anchored regular expression Postgres builds from the
/// pattern (`%` any string, `_` any character, regex alternation and grouping kept).
fn similar_to_regex(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    let Expr::SimilarTo {
        negated,
        expr,
        pattern,
        escape_char: None,
    } = e
    else {
        return;
    };
    let Some(p) = string_of(pattern) else { return };
    let Some(regex) = similar_to_pattern(p) else {
        return;
    };
    let op = if *negated {
        BinaryOperator::PGRegexNotMatch
    } else {
        BinaryOperator::PGRegexMatch
    };
    *e = Expr::BinaryOp {
        left: Box::new(std::mem::replace(expr.as_mut(), Expr::value(Value::Null))),
        op,
        right: Box::new(Expr::value(Value::SingleQuotedString(regex))),
    };
}

/// Postgres' similar_to_escape with the default escape `\`.
pub fn similar_to_pattern(p: &str) -> Option<String> {
    let mut out = String::from("^(?:");
    let mut chars = p.chars();
    let mut in_bracket = false;
    while let Some(c) = chars.next() {
        if in_bracket {
            if c == ']' {
                in_bracket = false;
            }
            out.push(c);
            continue;
        }
        match c {
            '\\' => {
                let next = chars.next()?;
                if next.is_alphanumeric() {
                    out.push(next);
                } else {
                    out.push('\\');
                    out.push(next);
                }
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '[' => {
                in_bracket = true;
                out.push(c);
            }
            '.' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out.push_str(")$");
    Some(out)
}

fn rewrite_literal(e: &mut Expr) {
    negate_power_base(e);
    similar_to_regex(e);
    // `1e15::float8`: a decimal literal goes to float through its text, as Postgres reads
    // it; Arrow's decimal-to-float cast is not correctly rounded (999999999999999.9).
    if let Expr::Cast {
        expr, data_type, ..
    } = e
    {
        if is_float_type(data_type) {
            if let Expr::Value(v) = expr.as_mut() {
                if let Value::Number(n, _) = &v.value {
                    v.value = Value::SingleQuotedString(n.clone());
                    return;
                }
            }
        }
    }
    // `'\\xdeadbeef'::bytea` is hex input (or escape input), not the string's own bytes.
    let bytea_text = match e {
        Expr::Cast {
            expr, data_type, ..
        } if matches!(data_type, DataType::Bytea) => string_of(expr).map(str::to_string),
        Expr::TypedString(t) if matches!(t.data_type, DataType::Bytea) => match &t.value.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    if let Some(bytes) = bytea_text.as_deref().and_then(parse_bytea) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        *e = decode_hex(hex);
        return;
    }
    match e {
        Expr::Cast {
            expr, data_type, ..
        } => {
            if let (Some(kind), Some(s)) = (Kind::of_sql(data_type), string_of(expr)) {
                if let Some(n) = normalize(kind, s) {
                    set_string(expr, n);
                }
            }
        }
        Expr::TypedString(t) => {
            if let (Some(kind), Value::SingleQuotedString(s)) =
                (Kind::of_sql(&t.data_type), &t.value.value)
            {
                if let Some(n) = normalize(kind, s) {
                    t.value.value = Value::SingleQuotedString(n);
                }
            }
        }
        Expr::Interval(Interval {
            value,
            leading_field,
            leading_precision: None,
            last_field: None,
            fractional_seconds_precision: None,
        }) => {
            let Some(s) = string_of(value) else { return };
            // `INTERVAL '4' SECOND`: a bare number counts in the leading field's unit.
            let text = match leading_field.as_ref().and_then(field_unit) {
                Some(unit) if s.trim().parse::<f64>().is_ok() => format!("{} {unit}", s.trim()),
                Some(_) => return,
                None if leading_field.is_some() => return,
                None => s.to_string(),
            };
            if let Some((m, d, us)) = parse_interval(&text) {
                set_string(value, interval_text(m, d, us));
                *leading_field = None;
            }
        }
        _ => {}
    }
}

/// Postgres bytea input: `\\x` hex, or the escape format (`\\\\`, `\\ooo`).
pub fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if digits.len() % 2 != 0 {
            return None;
        }
        return digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
            .collect();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let oct = b.get(i + 1..i + 4)?;
            if !oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(oct).ok()?, 8).ok()?);
            i += 4;
        }
    }
    Some(out)
}

fn decode_hex(hex: String) -> Expr {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
        ObjectName, ObjectNamePart,
    };
    let arg = |s: String| {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
            Value::SingleQuotedString(s),
        )))
    };
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new("decode"))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![arg(hex), arg("hex".into())],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn field_unit(f: &DateTimeField) -> Option<&'static str> {
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
