//! Postgres operator spellings sqlparser reads differently: unary minus binds tighter
//! than `^` (`-3 ^ 2` is 9), and SIMILAR TO is an anchored regular expression.

use datafusion::sql::sqlparser::ast::{Expr, Value};

use super::string_of;

/// `-3 ^ 2`: Postgres binds unary minus tighter than `^` (9); sqlparser parses
/// `-(3 ^ 2)`. Move the minus onto the leftmost operand of the `^` chain.
pub(super) fn negate_power_base(e: &mut Expr) {
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
pub(super) fn similar_to_regex(e: &mut Expr) {
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
