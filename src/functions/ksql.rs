//! ksqlDB's spellings of scalar functions DataFusion has under other names (`LEN`,
//! `LCASE`, `UCASE`), and ksqlDB functions it lacks (`SIGN`, `INSTR` with 2–4 arguments,
//! `REGEXP_EXTRACT`),
//! with ksqlDB's NULL rules: a NULL argument gives NULL.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::RowFunction;

/// ksqlDB's names for functions eddy has under Postgres' names: (ksqlDB name, function).
/// Added as one more alias of the function registered under that name at the end, so
/// they call eddy's Postgres version where it has one (`len` of bytea included).
pub const ALIASES: &[(&str, &str)] = &[
    ("len", "character_length"),
    ("lcase", "lower"),
    ("ucase", "upper"),
];

pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![instr(), regexp_extract()]
}

/// `REGEXP_EXTRACT(pattern, string [, group])`: the first match of `pattern` in `string`
/// (or its capture group), NULL when there is none; an invalid pattern is an error
/// (2201B).
fn regexp_extract() -> Arc<ScalarUDF> {
    let (s, i) = (DataType::Utf8, DataType::Int64);
    RowFunction::udf(
        "regexp_extract",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![s.clone(), s.clone()]),
                TypeSignature::Exact(vec![s.clone(), s, i]),
            ],
            Volatility::Immutable,
        ),
        |_| Ok(DataType::Utf8),
        |a, _| {
            let text = |v: &ScalarValue| match v {
                ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
                    s.clone()
                }
                _ => None,
            };
            let group = match a.get(2) {
                None => Some(0),
                Some(ScalarValue::Int64(g)) => *g,
                Some(_) => None,
            };
            let (Some(pattern), Some(input), Some(group)) = (text(&a[0]), text(&a[1]), group)
            else {
                return Ok(ScalarValue::Utf8(None));
            };
            let re = regex::Regex::new(&pattern).map_err(|e| {
                datafusion::common::DataFusionError::External(Box::new(
                    crate::error::EddyError::BadValue {
                        code: "2201B",
                        message: format!("invalid regular expression: {e}"),
                    },
                ))
            })?;
            let found = usize::try_from(group).ok().and_then(|g| {
                re.captures(&input)
                    .and_then(|c| c.get(g))
                    .map(|m| m.as_str().to_string())
            });
            Ok(ScalarValue::Utf8(found))
        },
    )
}

/// `INSTR(string, substring [, position [, occurrence]])`: the 1-based position of the
/// occurrence-th match searching from `position` (from the end when negative), 0 when
/// there is none.
fn instr() -> Arc<ScalarUDF> {
    let (s, i) = (DataType::Utf8, DataType::Int64);
    RowFunction::udf(
        "instr",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![s.clone(), s.clone()]),
                TypeSignature::Exact(vec![s.clone(), s.clone(), i.clone()]),
                TypeSignature::Exact(vec![s.clone(), s, i.clone(), i]),
            ],
            Volatility::Immutable,
        ),
        |_| Ok(DataType::Int32),
        |a, _| {
            let text = |v: &ScalarValue| match v {
                ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
                    s.clone()
                }
                _ => None,
            };
            let int = |v: Option<&ScalarValue>| match v {
                None => Some(Some(1)),
                Some(ScalarValue::Int64(x)) => Some(*x),
                Some(_) => None,
            };
            let (Some(hay), Some(needle), Some(Some(pos)), Some(Some(occ))) =
                (text(&a[0]), text(&a[1]), int(a.get(2)), int(a.get(3)))
            else {
                return Ok(ScalarValue::Int32(None));
            };
            Ok(ScalarValue::Int32(Some(instr_of(&hay, &needle, pos, occ))))
        },
    )
}

fn instr_of(hay: &str, needle: &str, pos: i64, occurrence: i64) -> i32 {
    let h: Vec<char> = hay.chars().collect();
    let n: Vec<char> = needle.chars().collect();
    if pos == 0 || occurrence < 1 || n.len() > h.len() {
        return 0;
    }
    let matches_at = |i: usize| h[i..].starts_with(&n);
    let last = h.len() - n.len();
    let mut seen = 0;
    let candidates: Box<dyn Iterator<Item = usize>> = if pos > 0 {
        let from = (pos - 1) as usize;
        if from > last {
            return 0;
        }
        Box::new(from..=last)
    } else {
        let from = h.len() as i64 + pos;
        if from < 0 {
            return 0;
        }
        Box::new((0..=(from as usize).min(last)).rev())
    };
    for i in candidates {
        if matches_at(i) {
            seen += 1;
            if seen == occurrence {
                return i32::try_from(i + 1).unwrap_or(i32::MAX);
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::instr_of;

    #[test]
    fn instr_as_ksqldb() {
        assert_eq!(instr_of("CORPORATE FLOOR", "OR", 1, 1), 2);
        assert_eq!(instr_of("CORPORATE FLOOR", "OR", 3, 1), 5);
        assert_eq!(instr_of("CORPORATE FLOOR", "OR", 3, 2), 14);
        assert_eq!(instr_of("CORPORATE FLOOR", "OR", -3, 2), 2);
        assert_eq!(instr_of("CORPORATE FLOOR", "MISSING", 1, 1), 0);
        assert_eq!(instr_of("", "", 1, 1), 1);
        assert_eq!(instr_of("abc", "c", 9, 1), 0);
    }
}
