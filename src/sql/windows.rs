//! Windowed queries, in both dialects, rewritten into plain SQL plus a [`WindowSpec`].
//!
//! - Postgres/Flink/RisingWave: `FROM TUMBLE(s, ts, INTERVAL '1' MINUTE)`,
//!   `HOP(s, ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTES)` (slide, then size, as Flink),
//!   producing `window_start` / `window_end` columns to GROUP BY.
//! - ksqlDB: `FROM s WINDOW TUMBLING (SIZE 1 MINUTE [, RETENTION ...] [, GRACE PERIOD ...])`,
//!   `WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE, ...)`, with `WINDOWSTART` /
//!   `WINDOWEND` usable in SELECT; the window is implicitly part of the GROUP BY.
//!
//! The rewrite replaces the windowed relation by a subquery that adds the window columns
//! (a hopping window is a UNION ALL of one branch per window a row falls into). The same SQL
//! therefore runs in batch on DataFusion (the differential oracle) and lowers onto the
//! ordinary operators; the spec tells the aggregate which column is the window, so it can
//! drop late rows, close windows at the watermark and free their state.

use datafusion::sql::sqlparser::ast::{
    DateTimeField, Expr, FunctionArg, FunctionArgExpr, Ident, Query, SetExpr, TableFactor, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{EddyError, Result};

pub const MICROS_PER_SECOND: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling {
        size: i64,
    },
    Hopping {
        size: i64,
        advance: i64,
    },
    /// Rows of one key closer than `gap` apart form one session: [first, last + gap).
    Session {
        gap: i64,
    },
}

impl WindowKind {
    /// The fixed window length; a session's is at least its gap.
    pub fn size(&self) -> i64 {
        match self {
            WindowKind::Tumbling { size } | WindowKind::Hopping { size, .. } => *size,
            WindowKind::Session { gap } => *gap,
        }
    }
}

/// Name of the planning-only function that marks session window bounds: the dataflow
/// computes them (they depend on other rows); in a batch query it is an error.
pub const SESSION_BOUND_FUNCTION: &str = "eddy_session_bound";

/// Everything the dataflow needs to know about a windowed aggregation. Times in µs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub kind: WindowKind,
    /// The stream the window reads and its event-time column.
    pub source: String,
    pub time_column: String,
    /// Late rows within `grace` after the window end still count.
    pub grace: i64,
    /// Closed windows stay readable in the view for this long after their end + grace.
    pub retention: Option<i64>,
    /// Output column names of the window bounds.
    pub start_column: String,
    pub end_column: String,
}

/// A ksqlDB `WINDOW ...` clause cut out of the statement text.
#[derive(Debug, Clone, PartialEq)]
pub struct KsqlWindow {
    pub kind: WindowKind,
    pub grace: Option<i64>,
    pub retention: Option<i64>,
}

/// Parse a duration: `1 MINUTE`, `'5' SECOND`, `'1 hour'`, `10 SECONDS`, `500 ms`.
pub fn parse_duration(text: &str) -> Result<i64> {
    let cleaned = text.replace('\'', " ");
    let mut parts = cleaned.split_whitespace();
    let n = parts.next().ok_or_else(|| bad_duration(text))?;
    let n: f64 = n.parse().map_err(|_| bad_duration(text))?;
    let unit = parts.next().unwrap_or("second").to_lowercase();
    if parts.next().is_some() {
        return Err(bad_duration(text));
    }
    let per = match unit.as_str() {
        "us" | "microsecond" | "microseconds" => 1,
        "ms" | "millisecond" | "milliseconds" => 1_000,
        "s" | "sec" | "secs" | "second" | "seconds" => MICROS_PER_SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * MICROS_PER_SECOND,
        "h" | "hour" | "hours" => 3_600 * MICROS_PER_SECOND,
        "d" | "day" | "days" => 86_400 * MICROS_PER_SECOND,
        _ => return Err(bad_duration(text)),
    };
    let v = (n * per as f64).round();
    if v <= 0.0 {
        return Err(EddyError::query(
            "22023",
            format!("window duration must be positive, got {text}"),
        ));
    }
    Ok(v as i64)
}

fn bad_duration(text: &str) -> EddyError {
    EddyError::query(
        "22007",
        format!(
            "invalid duration \"{}\"; write e.g. INTERVAL '1' MINUTE or 10 SECONDS",
            text.trim()
        ),
    )
}

/// A duration that may be zero (a watermark delay, a grace period).
pub fn delay_of(e: &Expr) -> Result<i64> {
    let text = match e {
        Expr::Interval(i) => i.value.to_string(),
        other => other.to_string(),
    };
    if text
        .trim_matches(|c: char| c == '\'' || c.is_whitespace())
        .split_whitespace()
        .next()
        .map(|n| n.parse::<f64>() == Ok(0.0))
        .unwrap_or(false)
    {
        return Ok(0);
    }
    duration_of(e)
}

/// A duration given as an SQL expression (`INTERVAL '1' MINUTE`, `INTERVAL '1 minute'`).
pub fn duration_of(e: &Expr) -> Result<i64> {
    match e {
        Expr::Interval(i) => {
            let value = match i.value.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) | Value::Number(s, _) => s.clone(),
                    other => other.to_string(),
                },
                other => other.to_string(),
            };
            let unit = match &i.leading_field {
                Some(DateTimeField::Microsecond | DateTimeField::Microseconds) => " microsecond",
                Some(DateTimeField::Millisecond | DateTimeField::Milliseconds) => " millisecond",
                Some(DateTimeField::Second | DateTimeField::Seconds) => " second",
                Some(DateTimeField::Minute | DateTimeField::Minutes) => " minute",
                Some(DateTimeField::Hour | DateTimeField::Hours) => " hour",
                Some(DateTimeField::Day | DateTimeField::Days) => " day",
                None => "",
                Some(other) => {
                    return Err(EddyError::unsupported(format!(
                        "window durations in {other}"
                    )))
                }
            };
            parse_duration(&format!("{value}{unit}"))
        }
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => parse_duration(s),
            other => parse_duration(&other.to_string()),
        },
        other => Err(bad_duration(&other.to_string())),
    }
}

/// Cut a ksqlDB `WINDOW TUMBLING|HOPPING|SESSION (...)` clause out of `sql`.
pub fn extract_ksql_window(sql: &str) -> Result<(String, Option<KsqlWindow>)> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| EddyError::syntax(format!("syntax error: {e}")))?;
    let significant: Vec<(usize, &Token)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, t)| (i, &t.token))
        .collect();
    let word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    for (k, (_, t)) in significant.iter().enumerate() {
        if !word(t, "WINDOW") {
            continue;
        }
        let Some((_, kind_tok)) = significant.get(k + 1) else {
            continue;
        };
        let kind = if word(kind_tok, "TUMBLING") {
            "TUMBLING"
        } else if word(kind_tok, "HOPPING") {
            "HOPPING"
        } else if word(kind_tok, "SESSION") {
            "SESSION"
        } else {
            continue;
        };
        // The parenthesised body.
        let Some((_, Token::LParen)) = significant.get(k + 2) else {
            return Err(EddyError::syntax(format!(
                "syntax error: expected ( after WINDOW {kind}"
            )));
        };
        let mut depth = 0;
        let mut end = None;
        for (j, (_, t)) in significant.iter().enumerate().skip(k + 2) {
            match t {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| EddyError::syntax("syntax error: unclosed WINDOW (...)"))?;
        let body: String = significant[k + 3..end]
            .iter()
            .map(|(_, t)| t.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let window = parse_ksql_window_body(kind, &body)?;
        // Rebuild the statement without the clause.
        let (from, to) = (significant[k].0, significant[end].0);
        let rest: String = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < from || *i > to)
            .map(|(_, t)| t.token.to_string())
            .collect();
        return Ok((rest, Some(window)));
    }
    Ok((sql.to_string(), None))
}

fn parse_ksql_window_body(kind: &str, body: &str) -> Result<KsqlWindow> {
    if kind == "SESSION" {
        // ksqlDB: WINDOW SESSION (30 SECONDS [, GRACE PERIOD ...] [, RETENTION ...])
        let mut parts = body.split(',');
        let gap = parse_duration(parts.next().unwrap_or(""))?;
        let mut grace = None;
        let mut retention = None;
        for part in parts {
            let upper = part.trim().to_uppercase();
            if let Some(rest) = upper.strip_prefix("GRACE PERIOD") {
                grace = Some(parse_grace(rest)?);
            } else if let Some(rest) = upper.strip_prefix("RETENTION") {
                retention = Some(parse_duration(rest)?);
            } else {
                return Err(EddyError::syntax(format!(
                    "syntax error: unknown session window property \"{}\"",
                    part.trim()
                )));
            }
        }
        return Ok(KsqlWindow {
            kind: WindowKind::Session { gap },
            grace,
            retention,
        });
    }
    let mut size = None;
    let mut advance = None;
    let mut grace = None;
    let mut retention = None;
    for part in body.split(',') {
        let p = part.trim();
        let upper = p.to_uppercase();
        if let Some(rest) = upper.strip_prefix("SIZE") {
            size = Some(parse_duration(rest)?);
        } else if let Some(rest) = upper.strip_prefix("ADVANCE BY") {
            advance = Some(parse_duration(rest)?);
        } else if let Some(rest) = upper.strip_prefix("GRACE PERIOD") {
            grace = Some(parse_grace(rest)?);
        } else if let Some(rest) = upper.strip_prefix("RETENTION") {
            retention = Some(parse_duration(rest)?);
        } else {
            return Err(EddyError::syntax(format!("syntax error: unknown window property \"{p}\" (expected SIZE, ADVANCE BY, GRACE PERIOD or RETENTION)")));
        }
    }
    let size =
        size.ok_or_else(|| EddyError::syntax(format!("syntax error: WINDOW {kind} needs SIZE")))?;
    let kind = match kind {
        "TUMBLING" => {
            if advance.is_some() {
                return Err(EddyError::syntax(
                    "syntax error: ADVANCE BY applies to WINDOW HOPPING",
                ));
            }
            WindowKind::Tumbling { size }
        }
        _ => {
            let advance = advance.ok_or_else(|| {
                EddyError::syntax("syntax error: WINDOW HOPPING needs ADVANCE BY")
            })?;
            hopping(size, advance)?
        }
    };
    Ok(KsqlWindow {
        kind,
        grace,
        retention,
    })
}

fn parse_grace(text: &str) -> Result<i64> {
    // GRACE PERIOD 0 SECONDS is allowed.
    if text
        .split_whitespace()
        .next()
        .map(|n| n.parse::<f64>() == Ok(0.0))
        .unwrap_or(false)
    {
        return Ok(0);
    }
    parse_duration(text)
}

/// A hopping window must advance by a divisor of its size, so every row is in exactly
/// size/advance windows.
pub fn hopping(size: i64, advance: i64) -> Result<WindowKind> {
    if advance > size {
        return Err(EddyError::query(
            "22023",
            "ADVANCE BY must not be larger than the window SIZE",
        ));
    }
    if size % advance != 0 {
        return Err(EddyError::query(
            "22023",
            "the window SIZE must be a multiple of ADVANCE BY",
        ));
    }
    if size / advance > 1000 {
        return Err(EddyError::query(
            "22023",
            "a row would fall into more than 1000 hopping windows; use a larger ADVANCE BY",
        ));
    }
    Ok(WindowKind::Hopping { size, advance })
}

/// SQL for the window-start expression(s) of a time column: one per window a row falls
/// into. `time` is the quoted column, already a timestamp.
fn window_starts(kind: WindowKind, time: &str, offset: i64) -> Vec<String> {
    let origin = if offset == 0 {
        "TIMESTAMP '1970-01-01 00:00:00'".to_string()
    } else {
        format!("TIMESTAMP '1970-01-01 00:00:00' + INTERVAL '{offset} microseconds'")
    };
    let bin = |stride: i64| format!("date_bin(INTERVAL '{stride} microseconds', {time}, {origin})");
    match kind {
        WindowKind::Tumbling { size } => vec![bin(size)],
        WindowKind::Session { .. } => vec![],
        WindowKind::Hopping { size, advance } => (0..size / advance)
            .map(|i| {
                if i == 0 {
                    bin(advance)
                } else {
                    format!("{} - INTERVAL '{} microseconds'", bin(advance), i * advance)
                }
            })
            .collect(),
    }
}

/// The subquery replacing a windowed relation: its columns plus the window bounds.
/// `time_expr` converts the event-time column to a timestamp.
/// `offset` shifts tumbling and hopping windows from the epoch (RisingWave's offset
/// argument): a 1-day window with an 8-hour offset starts at 08:00.
pub fn windowed_relation_sql(
    kind: WindowKind,
    source: &str,
    time_expr: &str,
    start: &str,
    end: &str,
    offset: i64,
) -> String {
    if let WindowKind::Session { gap } = kind {
        let f = SESSION_BOUND_FUNCTION;
        return format!(
            "SELECT *, {f}({time_expr}, {gap}, 0) AS \"{start}\", {f}({time_expr}, {gap}, 1) AS \"{end}\" FROM \"{}\"",
            source.replace('"', "\"\"")
        );
    }
    let size = kind.size();
    window_starts(kind, time_expr, offset)
        .into_iter()
        .map(|s| {
            format!(
                "SELECT *, {s} AS \"{start}\", {s} + INTERVAL '{size} microseconds' AS \"{end}\" FROM \"{}\"",
                source.replace('"', "\"\"")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// A window table function in FROM: `TUMBLE(s, ts, size)` or `HOP(s, ts, slide, size)`.
pub struct WindowFunction {
    pub kind: WindowKind,
    pub source: String,
    pub time_column: String,
    pub alias: Option<Ident>,
    /// Microseconds the windows are shifted from the epoch (TUMBLE's 4th, HOP's 5th argument).
    pub offset: i64,
}

pub fn window_function(t: &TableFactor) -> Result<Option<WindowFunction>> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        ..
    } = t
    else {
        return Ok(None);
    };
    let fname = name.to_string().to_uppercase();
    if !matches!(fname.as_str(), "TUMBLE" | "HOP" | "SESSION") {
        return Ok(None);
    }
    let exprs: Vec<&Expr> = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(EddyError::syntax(format!(
                "syntax error: unexpected argument {other} to {fname}"
            ))),
        })
        .collect::<Result<_>>()?;
    let ident = |e: &Expr, what: &str| match e {
        Expr::Identifier(i) => Ok(crate::sql::parser::ident_name(i)),
        Expr::CompoundIdentifier(parts) => Ok(crate::sql::parser::ident_name(
            parts.last().expect("non-empty"),
        )),
        other => Err(EddyError::syntax(format!(
            "syntax error: {fname} expects {what}, got {other}"
        ))),
    };
    let (kind, source, time_column, offset) = match (fname.as_str(), exprs.as_slice()) {
        ("TUMBLE", [s, ts, size, offset @ ..]) if offset.len() <= 1 => (
            WindowKind::Tumbling {
                size: duration_of(size)?,
            },
            ident(s, "a stream")?,
            ident(ts, "a time column")?,
            offset.first().map(|o| duration_of(o)).transpose()?,
        ),
        ("HOP", [s, ts, slide, size, offset @ ..]) if offset.len() <= 1 => (
            hopping(duration_of(size)?, duration_of(slide)?)?,
            ident(s, "a stream")?,
            ident(ts, "a time column")?,
            offset.first().map(|o| duration_of(o)).transpose()?,
        ),
        ("SESSION", [s, ts, gap]) => (
            WindowKind::Session {
                gap: duration_of(gap)?,
            },
            ident(s, "a stream")?,
            ident(ts, "a time column")?,
            None,
        ),
        ("SESSION", _) => {
            return Err(EddyError::syntax(
                "syntax error: SESSION(stream, time_column, INTERVAL gap)",
            ))
        }
        ("TUMBLE", _) => {
            return Err(EddyError::syntax(
                "syntax error: TUMBLE(stream, time_column, INTERVAL size [, INTERVAL offset])",
            ))
        }
        _ => {
            return Err(EddyError::syntax(
                "syntax error: HOP(stream, time_column, INTERVAL slide, INTERVAL size [, INTERVAL offset])",
            ))
        }
    };
    let offset = offset.unwrap_or(0);
    if offset != 0 && offset.abs() >= kind.size() {
        return Err(EddyError::query(
            "22023",
            format!("the window offset must be smaller than the window size in {fname}(...)"),
        ));
    }
    Ok(Some(WindowFunction {
        kind,
        source,
        time_column,
        alias: alias.as_ref().map(|a| a.name.clone()),
        offset,
    }))
}

/// Parse SQL text of a subquery into a FROM-clause factor.
pub fn derived_table(sql: &str, alias: &str) -> Result<TableFactor> {
    let q = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&format!("SELECT * FROM ({sql}) AS \"{alias}\""))?
        .parse_query()?;
    match *q.body {
        SetExpr::Select(s) => Ok(s.from.into_iter().next().expect("one FROM item").relation),
        _ => Err(EddyError::internal("derived table did not parse as SELECT")),
    }
}

pub fn parse_query(sql: &str) -> Result<Box<Query>> {
    Ok(Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)?
        .parse_query()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_spelling() {
        assert_eq!(parse_duration("1 MINUTE").unwrap(), 60_000_000);
        assert_eq!(parse_duration("10 SECONDS").unwrap(), 10_000_000);
        assert_eq!(parse_duration("'5' second").unwrap(), 5_000_000);
        assert_eq!(parse_duration("500 ms").unwrap(), 500_000);
        assert!(parse_duration("0 seconds").is_err());
        assert!(parse_duration("-1 minute").is_err());
        assert!(parse_duration("1 fortnight").is_err());
    }

    #[test]
    fn ksql_window_clause_is_cut_out() {
        let (rest, w) = extract_ksql_window(
            "SELECT page, count(*) FROM pv WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS) GROUP BY page",
        )
        .unwrap();
        assert_eq!(
            rest.split_whitespace().collect::<Vec<_>>().join(" "),
            "SELECT page, count(*) FROM pv GROUP BY page"
        );
        assert_eq!(
            w.unwrap(),
            KsqlWindow {
                kind: WindowKind::Tumbling { size: 60_000_000 },
                grace: Some(10_000_000),
                retention: None
            }
        );
    }

    #[test]
    fn hopping_advance_must_divide_size() {
        assert!(hopping(60, 20).is_ok());
        assert!(hopping(60, 25).is_err());
        assert!(hopping(60, 120).is_err());
    }
}

/// What the rewrite needs to know about relations.
pub struct WindowCatalog<'a> {
    /// Type of a column of a relation.
    pub column_type: &'a dyn Fn(&str, &str) -> Option<datafusion::arrow::datatypes::DataType>,
    /// The declared event-time column of a stream.
    pub event_time: &'a dyn Fn(&str) -> Option<String>,
}

/// ksqlDB's default grace period when a window has none.
pub const KSQL_DEFAULT_GRACE: i64 = 24 * 3_600 * MICROS_PER_SECOND;

/// SQL converting a time column to a timestamp for windowing.
fn time_expr(cat: &WindowCatalog, source: &str, column: &str) -> Result<String> {
    use datafusion::arrow::datatypes::DataType;
    let quoted = format!("\"{}\"", column.replace('"', "\"\""));
    match (cat.column_type)(source, column) {
        Some(DataType::Timestamp(_, None)) => Ok(quoted),
        Some(DataType::Timestamp(_, Some(_))) => Ok(format!("CAST({quoted} AS TIMESTAMP)")),
        Some(DataType::Int64) => Ok(format!("to_timestamp_millis({quoted})")),
        Some(other) => Err(EddyError::query(
            "42804",
            format!(
                "window time column \"{column}\" must be TIMESTAMP, TIMESTAMPTZ or BIGINT (epoch milliseconds), not {}",
                crate::sql::types::pg_type_name(&other)
            ),
        )),
        None => Err(EddyError::UnknownColumn(format!("column \"{column}\" of relation \"{source}\" does not exist"))),
    }
}

/// Rewrite window table functions (and a ksqlDB WINDOW clause) into plain SQL. Returns the
/// spec of the first window found.
pub fn rewrite_windows(
    query: &mut Query,
    ksql: Option<&KsqlWindow>,
    cat: &WindowCatalog,
) -> Result<Option<WindowSpec>> {
    if let Some(w) = ksql {
        return rewrite_ksql(query, w, cat).map(Some);
    }
    let mut spec = None;
    rewrite_set_expr(&mut query.body, cat, &mut spec)?;
    Ok(spec)
}

fn rewrite_set_expr(
    body: &mut SetExpr,
    cat: &WindowCatalog,
    spec: &mut Option<WindowSpec>,
) -> Result<()> {
    match body {
        SetExpr::Select(select) => {
            let mut here = None;
            for twj in select.from.iter_mut() {
                rewrite_factor(&mut twj.relation, cat, &mut here, spec)?;
                for j in twj.joins.iter_mut() {
                    rewrite_factor(&mut j.relation, cat, &mut here, spec)?;
                }
            }
            if let Some(s) = here {
                check_window_grouping(select, &s)?;
                if spec.is_none() {
                    *spec = Some(s);
                }
            }
            Ok(())
        }
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left, cat, spec)?;
            rewrite_set_expr(right, cat, spec)
        }
        SetExpr::Query(q) => rewrite_set_expr(&mut q.body, cat, spec),
        _ => Ok(()),
    }
}

/// `spec` is the window of this SELECT's own FROM; a subquery in FROM reports its window
/// to `outer` (it groups by its window itself, the SELECT around it need not).
fn rewrite_factor(
    f: &mut TableFactor,
    cat: &WindowCatalog,
    spec: &mut Option<WindowSpec>,
    outer: &mut Option<WindowSpec>,
) -> Result<()> {
    if let TableFactor::Derived { subquery, .. } = f {
        return rewrite_set_expr(&mut subquery.body, cat, outer);
    }
    let Some(w) = window_function(f)? else {
        return Ok(());
    };
    let time = time_expr(cat, &w.source, &w.time_column)?;
    let alias = w
        .alias
        .as_ref()
        .map(|a| a.value.clone())
        .unwrap_or_else(|| w.source.clone());
    *f = derived_table(
        &windowed_relation_sql(
            w.kind,
            &w.source,
            &time,
            "window_start",
            "window_end",
            w.offset,
        ),
        &alias,
    )?;
    if spec.is_none() {
        *spec = Some(WindowSpec {
            kind: w.kind,
            source: w.source,
            time_column: w.time_column,
            grace: 0,
            retention: None,
            start_column: "window_start".into(),
            end_column: "window_end".into(),
        });
    }
    Ok(())
}

fn is_ident(e: &Expr, name: &str) -> bool {
    match e {
        Expr::Identifier(i) => crate::sql::parser::ident_name(i) == name,
        Expr::CompoundIdentifier(p) => p
            .last()
            .map(|i| crate::sql::parser::ident_name(i) == name)
            .unwrap_or(false),
        _ => false,
    }
}

/// The column name of a plain or qualified column reference.
fn last_ident(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(crate::sql::parser::ident_name(i)),
        Expr::CompoundIdentifier(p) => p.last().map(crate::sql::parser::ident_name),
        _ => None,
    }
}

/// An aggregation over a window must group by the window, or every window would be mixed
/// into one group that never closes.
fn check_window_grouping(
    select: &datafusion::sql::sqlparser::ast::Select,
    spec: &WindowSpec,
) -> Result<()> {
    use datafusion::sql::sqlparser::ast::GroupByExpr;
    let GroupByExpr::Expressions(exprs, _) = &select.group_by else {
        return Ok(());
    };
    if exprs.is_empty() {
        return Ok(());
    }
    use datafusion::sql::sqlparser::ast::SelectItem;
    // GROUP BY 1, 2 refers to select items by position.
    let resolve = |e: &Expr| -> Option<Expr> {
        if let Expr::Value(v) = e {
            if let Value::Number(n, _) = &v.value {
                let i: usize = n.parse().ok()?;
                return match select.projection.get(i.checked_sub(1)?)? {
                    SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => {
                        Some(x.clone())
                    }
                    _ => None,
                };
            }
        }
        Some(e.clone())
    };
    let session = matches!(spec.kind, WindowKind::Session { .. });
    if exprs
        .iter()
        .filter_map(resolve)
        .any(|e| is_ident(&e, &spec.end_column) || (!session && is_ident(&e, &spec.start_column)))
    {
        Ok(())
    } else {
        Err(EddyError::query(
            "42803",
            if session {
                format!(
                    "GROUP BY over a SESSION window must include {}",
                    spec.end_column
                )
            } else {
                format!(
                    "GROUP BY over a window must include {} or {}",
                    spec.start_column, spec.end_column
                )
            },
        ))
    }
}

fn rewrite_ksql(query: &mut Query, w: &KsqlWindow, cat: &WindowCatalog) -> Result<WindowSpec> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, SelectItem};
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(EddyError::unsupported(
            "a WINDOW clause on a UNION or nested query",
        ));
    };
    if select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return Err(EddyError::unsupported(
            "a WINDOW clause over more than one relation",
        ));
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &select.from[0].relation
    else {
        return Err(EddyError::unsupported(
            "a WINDOW clause over something other than a stream",
        ));
    };
    let source = crate::sql::parser::object_name(name);
    let alias = alias
        .as_ref()
        .map(|a| a.name.value.clone())
        .unwrap_or_else(|| source.clone());
    let time_column = (cat.event_time)(&source).ok_or_else(|| {
        EddyError::query(
            "42P16",
            format!("stream {source} has no event-time column for WINDOW; declare it with WITH (TIMESTAMP='column') or WATERMARK FOR column AS ..."),
        )
    })?;
    let time = time_expr(cat, &source, &time_column)?;
    select.from[0].relation = derived_table(
        &windowed_relation_sql(w.kind, &source, &time, "windowstart", "windowend", 0),
        &alias,
    )?;
    // The window is part of the key: group by it and show it.
    let GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
        return Err(EddyError::unsupported("GROUP BY ALL with a WINDOW clause"));
    };
    if exprs.is_empty() {
        return Err(EddyError::query(
            "42803",
            "a WINDOW clause needs an aggregation with GROUP BY",
        ));
    }
    // `GROUP BY 1` counts the SELECT items as written: resolve it before the window
    // columns go in front of them. A grouping repeated under another spelling
    // (`data, test.data`) is one grouping.
    let mut resolved: Vec<Expr> = Vec::new();
    for e in exprs.drain(..) {
        let e = match &e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    let item = n
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| i.checked_sub(1))
                        .and_then(|i| select.projection.get(i));
                    match item {
                        Some(SelectItem::UnnamedExpr(x))
                        | Some(SelectItem::ExprWithAlias { expr: x, .. }) => x.clone(),
                        _ => {
                            return Err(EddyError::query(
                                "42P10",
                                format!("GROUP BY position {n} is not in select list"),
                            ))
                        }
                    }
                }
                _ => e,
            },
            _ => e,
        };
        let same = |a: &Expr, b: &Expr| match (a, b) {
            (
                Expr::Identifier(_) | Expr::CompoundIdentifier(_),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_),
            ) => last_ident(a) == last_ident(b),
            _ => a == b,
        };
        if !resolved.iter().any(|r| same(r, &e)) {
            resolved.push(e);
        }
    }
    *exprs = resolved;
    for c in ["windowstart", "windowend"] {
        if !exprs.iter().any(|e| is_ident(e, c)) {
            exprs.push(Expr::Identifier(Ident::new(c)));
        }
    }
    let mentions = |c: &str| {
        select.projection.iter().any(|i| match i {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                is_ident(e, c)
            }
            _ => false,
        })
    };
    let mut front = Vec::new();
    for c in ["windowstart", "windowend"] {
        if !mentions(c) {
            front.push(SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(c))));
        }
    }
    if !select
        .projection
        .iter()
        .any(|i| matches!(i, SelectItem::Wildcard(_)))
    {
        front.append(&mut select.projection);
        select.projection = front;
    }
    let grace = w.grace.unwrap_or(KSQL_DEFAULT_GRACE);
    if let Some(r) = w.retention {
        if r < w.kind.size() + grace {
            return Err(EddyError::query(
                "22023",
                "RETENTION must be at least the window SIZE plus its GRACE PERIOD",
            ));
        }
    }
    Ok(WindowSpec {
        kind: w.kind,
        source,
        time_column,
        grace,
        retention: w.retention,
        start_column: "windowstart".into(),
        end_column: "windowend".into(),
    })
}

/// Name of the planning-only predicate that carries a ksqlDB `WITHIN` bound into the plan.
pub const WITHIN_FUNCTION: &str = "eddy_within";

/// ksqlDB's `JOIN b WITHIN 1 HOUR [GRACE PERIOD ...] ON cond` and `WITHIN (1 HOUR, 2 HOURS)`
/// become `ON eddy_within(before_µs, after_µs, grace_µs) AND (cond)`: b's time must lie in
/// [a.time − before, a.time + after]. The lowering reads the bound off the join condition.
pub fn extract_within(sql: &str) -> Result<String> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| EddyError::syntax(format!("syntax error: {e}")))?;
    let is_word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let Some(start) = tokens.iter().position(|t| is_word(t, "WITHIN")) else {
        return Ok(sql.to_string());
    };
    let Some(on) = (start..tokens.len()).find(|&i| is_word(&tokens[i], "ON")) else {
        return Err(EddyError::syntax(
            "syntax error: JOIN ... WITHIN ... needs an ON condition after it",
        ));
    };
    let clause: String = tokens[start + 1..on]
        .iter()
        .map(|t| t.to_string())
        .collect();
    let upper = clause.to_uppercase();
    let (bounds, grace) = match upper.find("GRACE PERIOD") {
        Some(i) => (
            &clause[..i],
            Some(parse_grace(&clause[i + "GRACE PERIOD".len()..])?),
        ),
        None => (&clause[..], None),
    };
    let bounds = bounds.trim();
    let (before, after) =
        if let Some(inner) = bounds.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
            let (b, a) = inner.split_once(',').ok_or_else(|| {
                EddyError::syntax("syntax error: WITHIN (before, after) needs two durations")
            })?;
            (parse_grace(b)?, parse_grace(a)?)
        } else {
            let d = parse_grace(bounds)?;
            (d, d)
        };
    let grace = grace.unwrap_or(KSQL_DEFAULT_GRACE);
    // The rest of the ON condition is everything up to the next clause keyword; wrapping it
    // in parentheses keeps its precedence.
    let end = (on + 1..tokens.len())
        .find(|&i| {
            [
                "WHERE", "GROUP", "HAVING", "WINDOW", "EMIT", "JOIN", "LEFT", "RIGHT", "FULL",
                "INNER", "ORDER", "LIMIT", "UNION",
            ]
            .iter()
            .any(|k| is_word(&tokens[i], k))
                || matches!(tokens[i], Token::SemiColon | Token::RParen)
        })
        .unwrap_or(tokens.len());
    let cond: String = tokens[on + 1..end]
        .iter()
        .map(|t| t.to_string())
        .collect::<String>()
        .trim()
        .to_string();
    let head: String = tokens[..start].iter().map(|t| t.to_string()).collect();
    let tail: String = tokens[end..].iter().map(|t| t.to_string()).collect();
    Ok(format!(
        "{head} ON {WITHIN_FUNCTION}({before}, {after}, {grace}) AND ({cond}) {tail}"
    ))
}

#[cfg(test)]
mod within_tests {
    use super::*;

    #[test]
    fn within_becomes_a_join_predicate() {
        let sql = extract_within("SELECT * FROM a JOIN b WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 1 MINUTE ON a.k = b.k WHERE a.x > 1").unwrap();
        let squeezed: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            squeezed,
            "SELECT * FROM a JOIN b ON eddy_within(3600000000, 7200000000, 60000000) AND (a.k = b.k) WHERE a.x > 1"
        );
    }
}
