//! `INSERT … VALUES` of plain literals, built into a batch directly.
//!
//! Most INSERTs are a few rows of integers, strings, booleans and NULLs. Planning and running
//! those through DataFusion costs far more CPU than the insert itself, and ran on the ad-hoc
//! query runtime, where a long SELECT made the INSERT wait for a thread (p99 of half a
//! second next to a self-join). This path builds the same columns the planner would give —
//! integers as Int64, strings as Utf8, booleans, NULLs typed Null, numbers cast to double
//! precision as Float64 — and anything else (decimals, expressions, mixed kinds in a column,
//! DEFAULT) returns None and takes the general path. The caller casts the columns to their
//! target types either way, so both paths answer the same.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, RecordBatch, RecordBatchOptions,
    StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, Query, SetExpr, UnaryOperator, Value,
};

/// One literal of a VALUES row.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl Literal {
    fn kind(&self) -> Option<DataType> {
        match self {
            Literal::Null => None,
            Literal::Int(_) => Some(DataType::Int64),
            Literal::Float(_) => Some(DataType::Float64),
            Literal::Text(_) => Some(DataType::Utf8),
            Literal::Bool(_) => Some(DataType::Boolean),
        }
    }
}

/// The rows of `q` as a batch, if `q` is a bare VALUES list of plain literals whose columns
/// each hold one kind of literal (NULLs aside).
pub(super) fn literal_batch(q: &Query) -> Option<RecordBatch> {
    if q.with.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
        || !q.locks.is_empty()
    {
        return None;
    }
    let SetExpr::Values(values) = q.body.as_ref() else {
        return None;
    };
    let width = values.rows.first()?.len();
    if width == 0 || values.rows.iter().any(|r| r.len() != width) {
        return None;
    }
    let rows: Vec<Vec<Literal>> = values
        .rows
        .iter()
        .map(|r| r.iter().map(literal).collect::<Option<Vec<_>>>())
        .collect::<Option<_>>()?;
    let mut fields = Vec::with_capacity(width);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(width);
    for c in 0..width {
        let column = rows.iter().map(|r| &r[c]);
        let mut kinds = column.clone().filter_map(Literal::kind);
        let kind = kinds.next();
        if kinds.any(|k| Some(k) != kind) {
            return None;
        }
        let array: ArrayRef = match kind {
            None => Arc::new(NullArray::new(rows.len())),
            Some(DataType::Int64) => Arc::new(Int64Array::from_iter(column.map(|v| match v {
                Literal::Int(i) => Some(*i),
                _ => None,
            }))),
            Some(DataType::Float64) => Arc::new(Float64Array::from_iter(column.map(|v| match v {
                Literal::Float(f) => Some(*f),
                _ => None,
            }))),
            Some(DataType::Boolean) => Arc::new(BooleanArray::from_iter(column.map(|v| match v {
                Literal::Bool(b) => Some(*b),
                _ => None,
            }))),
            Some(_) => Arc::new(StringArray::from_iter(column.map(|v| match v {
                Literal::Text(s) => Some(s.as_str()),
                _ => None,
            }))),
        };
        fields.push(Field::new(
            format!("column{}", c + 1),
            array.data_type().clone(),
            true,
        ));
        columns.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .ok()
}

fn literal(e: &Expr) -> Option<Literal> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Null => Some(Literal::Null),
            Value::Boolean(b) => Some(Literal::Bool(*b)),
            Value::SingleQuotedString(s) => Some(Literal::Text(s.clone())),
            Value::Number(n, false) => n.parse().ok().map(Literal::Int),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, false) => format!("-{n}").parse().ok().map(Literal::Int),
                _ => None,
            },
            _ => None,
        },
        // Number literals into a double precision column (see `type_value_strings`).
        Expr::Cast {
            kind: CastKind::Cast,
            expr,
            data_type: SqlType::DoublePrecision,
            array: false,
            format: None,
        } => {
            let (sign, n) = match expr.as_ref() {
                Expr::Value(v) => ("", &v.value),
                Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr,
                } => match expr.as_ref() {
                    Expr::Value(v) => ("-", &v.value),
                    _ => return None,
                },
                _ => return None,
            };
            match n {
                Value::Number(n, false) if is_plain_number(n) => {
                    format!("{sign}{n}").parse().ok().map(Literal::Float)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Digits with at most one point and an optional exponent: what Rust and Postgres read alike.
fn is_plain_number(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && n.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn query(sql: &str) -> Query {
        *Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap()
    }

    /// The fast path gives the values, and the types, DataFusion's planner gives.
    #[tokio::test]
    async fn same_batch_as_datafusion() {
        let ctx = SessionContext::new();
        for sql in [
            "VALUES (1, 'a', true), (-2, NULL, false), (NULL, 'c''d', NULL)",
            "VALUES (9223372036854775807), (-9223372036854775808)",
            "VALUES (NULL, NULL)",
            "VALUES ('2026-01-01 10:00:00', '')",
            "VALUES (CAST(1.5 AS DOUBLE PRECISION)), (CAST(-2 AS DOUBLE PRECISION)), (NULL)",
            "VALUES (CAST(1e-6 AS DOUBLE PRECISION))",
        ] {
            let ours = literal_batch(&query(sql)).unwrap_or_else(|| panic!("{sql}: no batch"));
            let theirs = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            assert_eq!(theirs.len(), 1, "{sql}");
            for (a, b) in ours.columns().iter().zip(theirs[0].columns()) {
                assert_eq!(a.data_type(), b.data_type(), "{sql}");
            }
            assert_eq!(
                pretty_format_batches(&[ours]).unwrap().to_string(),
                pretty_format_batches(&theirs).unwrap().to_string(),
                "{sql}"
            );
        }
    }

    /// Anything but plain literals of one kind per column goes the general way.
    #[test]
    fn refuses_what_it_cannot_type_alone() {
        for sql in [
            "VALUES (1.5)",
            "VALUES (1), ('a')",
            "VALUES (1 + 1)",
            "VALUES (DEFAULT)",
            "VALUES (E'a\\nb')",
            "VALUES (1), (2) ORDER BY 1",
            "VALUES (1, 2), (3)",
            "VALUES (99999999999999999999)",
            "VALUES (CAST('NaN' AS DOUBLE PRECISION))",
            "VALUES (CAST(1 AS REAL))",
            "SELECT 1",
        ] {
            assert!(literal_batch(&query(sql)).is_none(), "{sql}");
        }
    }
}
