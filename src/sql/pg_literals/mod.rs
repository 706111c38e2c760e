//! Date/time and interval input as PostgreSQL reads it. Arrow's parsers refuse many forms
//! Postgres accepts (`'2026-01-01 10:00'` without seconds, `'21 days 23:59:59'`,
//! `'00:00:01.5'`, `'P1Y2M'`, `'1 day ago'`), so every string literal typed or cast as
//! `timestamp`, `timestamptz`, `date`, `time` or `interval` is read here and replaced by a
//! canonical spelling Arrow parses to the same value; INSERT values of those types go
//! through [`normalize`] too. The invariant: a string is either rewritten to a canonical
//! form denoting exactly the value Postgres would read, or left alone (and Arrow's error, if
//! any, stands) — never turned into a different value.
//!
//! Also here, because they are rewrites of the same literals and expressions before
//! planning: numeric constants typed with their own scale (`'1.50'::numeric`), bytea
//! input ([`bytea`]), and Postgres operator spellings ([`operators`]: `-3 ^ 2`, SIMILAR TO).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, DataType, Expr, Interval, TimezoneInfo, Value,
};

mod bytea;
mod datetime;
mod operators;

pub use bytea::parse_bytea;
pub use datetime::{interval_text, normalize, parse_interval};
pub use operators::similar_to_pattern;

use bytea::decode_hex;
use datetime::field_unit;
use operators::{negate_power_base, similar_to_regex};

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

fn rewrite_literal(e: &mut Expr) {
    negate_interval_literal(e);
    array_literal(e);
    pg_typeof_literal(e);
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
    exact_numeric_literal(e);
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

/// `-interval '1 day 02:00'`: every field of the literal changes sign, as Postgres negates
/// an interval (`-1 days -02:00:00`); it is read here and written negated.
fn negate_interval_literal(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::UnaryOperator;
    let Expr::UnaryOp {
        op: UnaryOperator::Minus,
        expr,
    } = e
    else {
        return;
    };
    let Expr::Interval(iv) = expr.as_ref() else {
        return;
    };
    if iv.leading_field.is_some() || iv.last_field.is_some() {
        return;
    }
    let Some((m, d, us)) = string_of(&iv.value).and_then(parse_interval) else {
        return;
    };
    let mut negated = iv.clone();
    set_string(&mut negated.value, interval_text(-m, -d, -us));
    *e = Expr::Interval(negated);
}

/// `'{1,2,3}'::int[]`: a one-dimensional array literal in Postgres' text form is the array
/// of its elements, each cast to the element type (`NULL` unquoted is NULL). Quoted or
/// nested elements are left to the cast (and its error).
fn array_literal(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{Array, ArrayElemTypeDef};
    let Expr::Cast {
        expr, data_type, ..
    } = &*e
    else {
        return;
    };
    let DataType::Array(ArrayElemTypeDef::SquareBracket(elem, _)) = data_type else {
        return;
    };
    let Some(text) = string_of(expr).map(str::to_string) else {
        return;
    };
    let elem = elem.as_ref().clone();
    let Some(body) = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
    else {
        return;
    };
    if body.contains(['{', '}', '"', '\\']) {
        return;
    }
    let items: Vec<&str> = if body.trim().is_empty() {
        vec![]
    } else {
        body.split(',').map(str::trim).collect()
    };
    let mut elems = Vec::with_capacity(items.len());
    for item in items {
        let mut cast = e.clone();
        if let Expr::Cast {
            expr, data_type, ..
        } = &mut cast
        {
            **expr = if item.eq_ignore_ascii_case("null") {
                Expr::value(Value::Null)
            } else {
                Expr::value(Value::SingleQuotedString(item.to_string()))
            };
            *data_type = elem.clone();
        }
        elems.push(cast);
    }
    if elems.is_empty() {
        return;
    }
    *e = Expr::Array(Array {
        elem: elems,
        named: true,
    });
}

/// `pg_typeof(1)`: an integer constant is int4 when it fits, int8 when that fits, else
/// numeric (DataFusion reads every integer constant as int8). The constant is cast to the
/// type Postgres gives it, so pg_typeof names that type.
fn pg_typeof_literal(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{
        ExactNumberInfo, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator,
    };
    let Expr::Function(f) = e else { return };
    if !f.name.to_string().eq_ignore_ascii_case("pg_typeof") {
        return;
    }
    let FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_mut_slice() else {
        return;
    };
    let number = |v: &Value| match v {
        Value::Number(n, _) if n.bytes().all(|b| b.is_ascii_digit()) => Some(n.clone()),
        _ => None,
    };
    let text = match &*arg {
        Expr::Value(v) => number(&v.value),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => number(&v.value).map(|n| format!("-{n}")),
            _ => None,
        },
        _ => None,
    };
    let Some(text) = text else { return };
    let t = if text.parse::<i32>().is_ok() {
        DataType::Int(None)
    } else if text.parse::<i64>().is_ok() {
        DataType::BigInt(None)
    } else {
        DataType::Numeric(ExactNumberInfo::None)
    };
    *arg = Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
        expr: Box::new(arg.clone()),
        data_type: t,
        array: false,
        format: None,
    };
}

/// `'1.50'::numeric`, `numeric '1.50'`, `1.50::numeric`: Postgres keeps the scale a
/// number is written with (`1.50`), where an unconstrained Arrow decimal has one fixed scale
/// for every value. A constant is typed `numeric(p, s)` of exactly its digits instead, which
/// holds the same value and prints as Postgres prints it.
fn exact_numeric_literal(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::ExactNumberInfo;
    let unconstrained = |t: &DataType| {
        matches!(
            t,
            DataType::Numeric(ExactNumberInfo::None)
                | DataType::Decimal(ExactNumberInfo::None)
                | DataType::Dec(ExactNumberInfo::None)
        )
    };
    let text = |v: &Value| match v {
        Value::SingleQuotedString(s) | Value::Number(s, _) => Some(s.clone()),
        _ => None,
    };
    let exact = |text: Option<String>| {
        text.as_deref()
            .and_then(numeric_precision_scale)
            .map(|(p, s)| DataType::Numeric(ExactNumberInfo::PrecisionAndScale(p, s as i64)))
    };
    match e {
        Expr::Cast {
            expr, data_type, ..
        } if unconstrained(data_type) => {
            if let Expr::Value(v) = expr.as_ref() {
                if let Some(t) = exact(text(&v.value)) {
                    *data_type = t;
                }
            }
        }
        Expr::TypedString(t) if unconstrained(&t.data_type) => {
            if let Some(exact) = exact(text(&t.value.value)) {
                t.data_type = exact;
            }
        }
        _ => {}
    }
}

/// The precision and scale of a plain decimal number's text (`-001.50` is (3, 2)); `None`
/// for other forms (exponents, NaN) and for 38 digits or more (eddy's unconstrained width).
pub fn numeric_precision_scale(text: &str) -> Option<(u64, u64)> {
    let t = text.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let precision = (int.len() + frac.len()).max(1);
    (precision < 38).then_some((precision as u64, frac.len() as u64))
}
