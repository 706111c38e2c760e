//! `INSERT … ON CONFLICT (key) DO NOTHING | DO UPDATE SET … [WHERE …]` on keyed tables, and
//! the small query runner RETURNING shares with it. Proposed rows whose key is already in
//! the table are dropped (DO NOTHING) or replaced by the DO UPDATE assignments evaluated
//! over the existing row and the proposed one (`excluded`); the rest are inserted. The
//! result is one upsert batch, applied like any INSERT into a keyed table.
//!
//! The conflict check reads a snapshot taken just before the write, as UPDATE does. Two
//! proposed rows with the same new key are not checked against each other (the last wins,
//! where Postgres skips the second, or for DO UPDATE refuses the statement with 21000).

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AssignmentTarget, ConflictTarget, Expr, Ident, OnConflict,
    OnConflictAction, Statement,
};

use super::dml::{cast_value, parse_query, quote_ident};
use super::Database;
use crate::error::{EddyError, Result};
use crate::sql::parser::object_name;

/// Plan and run one query on `ctx`, with eddy's Postgres rewrites and cast checks.
pub(super) async fn run_on(
    ctx: &SessionContext,
    sql: &str,
) -> Result<(datafusion::arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
    let mut q = parse_query(sql)?;
    crate::sql::pg_literals::rewrite(&mut q);
    let stmt = datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(q.clone())));
    let plan = ctx.state().statement_to_plan(stmt).await?;
    crate::functions::check_casts(&plan)?;
    let plan = crate::functions::postgres_casts(plan)?;
    let schema = super::query::postgres_schema(&q, plan.schema().as_arrow());
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    let batches = batches
        .into_iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

impl Database {
    /// The rows to upsert for `INSERT … ON CONFLICT` of `rows` (in the relation's columns).
    pub(super) async fn resolve_conflicts(
        &self,
        name: &str,
        rows: RecordBatch,
        on: &OnConflict,
    ) -> Result<RecordBatch> {
        let schema = rows.schema();
        let key: Vec<String> = {
            let inner = self.lock();
            let rel = inner.require(name)?;
            rel.primary_key
                .iter()
                .map(|&i| rel.schema.field(i).name().clone())
                .collect()
        };
        let no_constraint = || {
            EddyError::query(
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            )
        };
        if key.is_empty() {
            return Err(no_constraint());
        }
        match &on.conflict_target {
            None => {}
            Some(ConflictTarget::Columns(cols)) => {
                let named: BTreeSet<String> = cols.iter().map(|c| c.value.clone()).collect();
                if named != key.iter().cloned().collect() {
                    return Err(no_constraint());
                }
            }
            Some(ConflictTarget::OnConstraint(_)) => {
                return Err(EddyError::unsupported("ON CONFLICT ON CONSTRAINT"))
            }
        }
        let names: BTreeSet<String> = [name.to_string()].into();
        let ctx = self.snapshot_context(
            &self.batch_state,
            &names,
            &(BTreeSet::new(), BTreeSet::new()),
            false,
        )?;
        let table = MemTable::try_new(schema.clone(), vec![vec![rows]])?;
        ctx.register_table("excluded", Arc::new(table))?;
        let target = quote_ident(name);
        let matches = key
            .iter()
            .map(|k| {
                let k = quote_ident(k);
                format!("{target}.{k} = excluded.{k}")
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let (_, mut parts) = run_on(
            &ctx,
            &format!(
                "SELECT * FROM excluded WHERE NOT EXISTS (SELECT 1 FROM {target} WHERE {matches})"
            ),
        )
        .await?;
        if let OnConflictAction::DoUpdate(update) = &on.action {
            let mut values: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| format!("{target}.{}", quote_ident(f.name())))
                .collect();
            for a in &update.assignments {
                let AssignmentTarget::ColumnName(col) = &a.target else {
                    return Err(EddyError::unsupported(
                        "ON CONFLICT DO UPDATE SET (a, b) = (...)",
                    ));
                };
                let col = object_name(col);
                let i = schema.index_of(&col).map_err(|_| {
                    EddyError::UnknownColumn(format!(
                        "column \"{col}\" of relation \"{name}\" does not exist"
                    ))
                })?;
                values[i] = format!("({})", qualified(&a.value, name));
            }
            let selection = update
                .selection
                .as_ref()
                .map(|w| format!(" WHERE {}", qualified(w, name)))
                .unwrap_or_default();
            let (_, updated) = run_on(
                &ctx,
                &format!(
                    "SELECT {} FROM {target} JOIN excluded ON {matches}{selection}",
                    values.join(", ")
                ),
            )
            .await?;
            parts.extend(updated);
        }
        let parts = parts
            .iter()
            .map(|b| {
                let cols = schema
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .map(|(f, c)| cast_value(c, f.name(), f.data_type()))
                    .collect::<Result<Vec<_>>>()?;
                Ok(RecordBatch::try_new(schema.clone(), cols)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(concat_batches(&schema, parts.iter())?)
    }
}

/// `expr` with its bare column names qualified by the target table: in DO UPDATE a bare
/// name is the existing row's column (`excluded.v` is the proposed row's).
fn qualified(expr: &Expr, table: &str) -> Expr {
    let mut e = expr.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        if let Expr::Identifier(id) = x {
            *x = Expr::CompoundIdentifier(vec![Ident::with_quote('"', table), id.clone()]);
        }
        ControlFlow::<()>::Continue(())
    });
    e
}
