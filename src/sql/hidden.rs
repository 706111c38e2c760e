//! Hidden columns: a stream declared without an event-time column gets `rowtime` (its
//! insertion time), as ksqlDB's ROWTIME. It is usable by name (`SELECT rowtime, ...`,
//! `TUMBLE(s, rowtime, ...)`) but, as in ksqlDB, not part of `SELECT *`: wildcards over such
//! relations are expanded to their visible columns before planning.

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    TableFactor,
};

use crate::sql::parser::object_name;

/// Columns of a relation: (all names, visible names). `None` for unknown relations.
pub type ColumnsOf<'a> = &'a dyn Fn(&str) -> Option<(Vec<String>, Vec<String>)>;

pub fn expand_wildcards(query: &mut Query, columns: ColumnsOf) {
    if let Some(with) = query.with.as_mut() {
        for cte in with.cte_tables.iter_mut() {
            expand_wildcards(&mut cte.query, columns);
        }
    }
    expand_set_expr(&mut query.body, columns);
}

fn expand_set_expr(body: &mut SetExpr, columns: ColumnsOf) {
    match body {
        SetExpr::Select(select) => {
            // Relations in FROM, in order: (qualifier, all columns, visible columns).
            let mut relations: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
            let mut expandable = true;
            for twj in select.from.iter_mut() {
                let factors = std::iter::once(&mut twj.relation)
                    .chain(twj.joins.iter_mut().map(|j| &mut j.relation));
                for f in factors {
                    match f {
                        TableFactor::Table {
                            name,
                            alias,
                            args: None,
                            ..
                        } => {
                            let rel = object_name(name);
                            match columns(&rel) {
                                Some((all, visible)) => {
                                    let q =
                                        alias.as_ref().map(|a| a.name.value.clone()).unwrap_or(rel);
                                    relations.push((q, all, visible));
                                }
                                None => expandable = false,
                            }
                        }
                        TableFactor::Derived { subquery, .. } => {
                            expand_wildcards(subquery, columns);
                            expandable = false;
                        }
                        _ => expandable = false,
                    }
                }
            }
            let hides = relations
                .iter()
                .any(|(_, all, visible)| all.len() != visible.len());
            if !hides {
                return;
            }
            let column = |q: &str, c: &str| {
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![
                    Ident::with_quote('"', q),
                    Ident::with_quote('"', c),
                ]))
            };
            let mut projection = Vec::with_capacity(select.projection.len());
            for item in select.projection.drain(..) {
                match item {
                    SelectItem::Wildcard(_) if expandable => {
                        for (q, _, visible) in &relations {
                            projection.extend(visible.iter().map(|c| column(q, c)));
                        }
                    }
                    SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(ref name),
                        _,
                    ) => {
                        let wanted = qualifier(name);
                        match relations
                            .iter()
                            .find(|(q, _, _)| q.eq_ignore_ascii_case(&wanted))
                        {
                            Some((q, _, visible)) => {
                                projection.extend(visible.iter().map(|c| column(q, c)))
                            }
                            None => projection.push(item),
                        }
                    }
                    other => projection.push(other),
                }
            }
            select.projection = projection;
        }
        SetExpr::SetOperation { left, right, .. } => {
            expand_set_expr(left, columns);
            expand_set_expr(right, columns);
        }
        SetExpr::Query(q) => expand_wildcards(q, columns),
        _ => {}
    }
}

fn qualifier(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default()
}
