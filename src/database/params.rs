//! Bind parameters: `$n` placeholders in a parsed statement are replaced by the literal
//! each parameter was bound to (already rendered as SQL by the wire layer). Substituting
//! into the AST (never into the text) means a parameter can never change the statement's
//! shape: it is one expression.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{EddyError, Result};
use crate::sql::EddyStatement;

pub fn bind(stmt: &mut EddyStatement, params: &[String]) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    let exprs = params
        .iter()
        .map(|p| {
            Ok(Parser::new(&PostgreSqlDialect {})
                .try_with_sql(p)?
                .parse_expr()?)
        })
        .collect::<Result<Vec<Expr>>>()?;
    let mut error = None;
    let mut replace = |e: &mut Expr| {
        if let Expr::Value(v) = e {
            if let Value::Placeholder(p) = &v.value {
                let idx = p.trim_start_matches('$').parse::<usize>().ok();
                match idx
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| exprs.get(i))
                {
                    Some(x) => *e = Expr::Nested(Box::new(x.clone())),
                    None => {
                        error = Some(EddyError::query(
                            "08P01",
                            format!("there is no parameter {p} (bound {})", exprs.len()),
                        ));
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    };
    match stmt {
        EddyStatement::Query(q) | EddyStatement::ExplainQuery(q) => {
            let _ = visit_expressions_mut(q.as_mut(), &mut replace);
        }
        EddyStatement::Insert(s) | EddyStatement::Update(s) | EddyStatement::Delete(s) => {
            let _ = visit_expressions_mut(s.as_mut(), &mut replace);
        }
        _ => {}
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
