//! Postgres spellings that client tools send in catalog queries, rewritten into SQL that
//! DataFusion plans with the same answer:
//!
//! - `OPERATOR(pg_catalog.~)` is `~`; `COLLATE ...` is dropped (one collation);
//! - `'name'::regclass` / `'type'::regtype` become OIDs, `oid::regclass` / `::regtype` /
//!   `::regnamespace` become names (through `eddy_regclass` & co.), `::oid` is a bigint;
//! - `pg_catalog.` / `information_schema.` qualifiers on functions are dropped, and
//!   unqualified `pg_*` catalog relations are read from `pg_catalog`;
//! - `ARRAY(SELECT x ...)` is `(SELECT array_agg(x) ...)`;
//! - reading a catalog eddy keeps empty ([`ALWAYS_EMPTY`]): a scalar subquery over one is
//!   NULL, and a SELECT that inner-joins one (and is not a global aggregate) returns no
//!   rows — its output columns become typed NULLs under `WHERE false`. This is exact,
//!   and it lets psql's `\d` queries that use constructs DataFusion cannot plan
//!   (`array(select ... any(polroles))`, `'d' = any(stxkind)`) answer as Postgres does.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, visit_relations_mut, AccessExpr, BinaryOperator, CastKind, DataType,
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    TableWithJoins, Value, VisitMut, VisitorMut,
};

use crate::catalog::pg_catalog::{self, types, ALWAYS_EMPTY};
use crate::error::{EddyError, Result};

/// What the rewrite needs to know about the catalog.
pub trait CatalogLookup {
    /// A user relation of that (normalized) name exists.
    fn is_user_relation(&self, name: &str) -> bool;
    /// `'name'::regclass`.
    fn relation_oid(&self, name: &str) -> Option<i64>;
}

pub const REGCLASS_FUNCTION: &str = "eddy_regclass";
pub const REGTYPE_FUNCTION: &str = "eddy_regtype";
pub const REGNAMESPACE_FUNCTION: &str = "eddy_regnamespace";

pub fn rewrite(q: &mut Query, catalog: &dyn CatalogLookup) -> Result<()> {
    qualify_catalog_relations(q, catalog);
    empty_selects(q, catalog);
    let _ = q.visit(&mut TableFunctions);
    let expanded = expandarray_aliases(q);
    let _ = q.visit(&mut ExpandArray(&expanded));
    let mut err = None;
    let _ = visit_expressions_mut(q, |e| {
        if let Err(x) = rewrite_expr(e, catalog) {
            err = Some(x);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn ident_eq(p: &ObjectNamePart, s: &str) -> bool {
    p.as_ident()
        .map(|i| i.value.eq_ignore_ascii_case(s))
        .unwrap_or(false)
}

fn last_name(name: &ObjectName) -> String {
    crate::sql::parser::object_name(name)
}

/// `pg_class` → `pg_catalog.pg_class` unless the user has a relation of that name.
fn qualify_catalog_relations(q: &mut Query, catalog: &dyn CatalogLookup) {
    let _ = visit_relations_mut(q, |name| {
        // Table functions: `pg_catalog.generate_series(...)` is `generate_series(...)`.
        if name.0.len() == 2
            && ident_eq(&name.0[0], "pg_catalog")
            && TABLE_FUNCTIONS.contains(&last_name(name).as_str())
        {
            name.0.remove(0);
        }
        if name.0.len() == 1 {
            let n = last_name(name);
            if pg_catalog::is_table(&n) && !catalog.is_user_relation(&n) {
                name.0
                    .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Scalar functions clients call in FROM (a one-row table). Only these: other calls in
/// FROM are table functions (eddy's TUMBLE/HOP/SESSION among them).
const SCALAR_FUNCTIONS_IN_FROM: &[&str] = &[
    "string_to_array",
    "regexp_split_to_array",
    "current_schemas",
    "current_schema",
    "current_setting",
    "current_database",
    "version",
    "pg_backend_pid",
];

const TABLE_FUNCTIONS: &[&str] = &["generate_series", "unnest", "generate_subscripts", "range"];

/// Whether a relation reference names a catalog eddy keeps empty.
fn is_empty_catalog(name: &ObjectName, catalog: &dyn CatalogLookup) -> bool {
    let n = last_name(name);
    if !ALWAYS_EMPTY.contains(&n.as_str()) {
        return false;
    }
    match name.0.len() {
        1 => !catalog.is_user_relation(&n),
        2 => ident_eq(&name.0[0], "pg_catalog"),
        _ => false,
    }
}

fn factor_is_empty(f: &TableFactor, catalog: &dyn CatalogLookup) -> bool {
    match f {
        TableFactor::Table {
            name, args: None, ..
        } => is_empty_catalog(name, catalog),
        _ => false,
    }
}

/// A FROM clause that certainly produces no rows: some inner-joined relation is empty.
fn from_is_empty(from: &[TableWithJoins], catalog: &dyn CatalogLookup) -> bool {
    use datafusion::sql::sqlparser::ast::JoinOperator as J;
    from.iter().any(|twj| {
        let outer_right = twj.joins.iter().any(|j| {
            matches!(
                j.join_operator,
                J::Right(_) | J::RightOuter(_) | J::FullOuter(_)
            )
        });
        (!outer_right && factor_is_empty(&twj.relation, catalog))
            || twj.joins.iter().any(|j| {
                matches!(
                    j.join_operator,
                    J::Join(_) | J::Inner(_) | J::CrossJoin(_) | J::Right(_) | J::RightOuter(_)
                ) && factor_is_empty(&j.relation, catalog)
            })
    })
}

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
];

fn has_aggregate(select: &Select) -> bool {
    let mut found = false;
    for item in &select.projection {
        let e = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        let mut e = e.clone();
        // Aggregates inside a subquery are the subquery's own.
        let _ = visit_expressions_mut(&mut e, |x| {
            if matches!(
                x,
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
            ) {
                *x = Expr::value(Value::Null);
            }
            ControlFlow::<()>::Continue(())
        });
        let _ = visit_expressions_mut(&mut e, |x| {
            if let Expr::Function(f) = x {
                if f.over.is_none() && AGGREGATES.contains(&last_name(&f.name).as_str()) {
                    found = true;
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

fn output_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.to_lowercase(),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_lowercase()).unwrap_or_default(),
        Expr::Function(f) => last_name(&f.name),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => output_name(expr),
        _ => "?column?".into(),
    }
}

/// Replace every SELECT that reads an empty catalog with `SELECT NULL AS ... WHERE false`.
fn empty_selects(q: &mut Query, catalog: &dyn CatalogLookup) {
    if let Some(with) = q.with.as_mut() {
        for cte in with.cte_tables.iter_mut() {
            empty_selects(&mut cte.query, catalog);
        }
    }
    if empty_set_expr(&mut q.body, catalog) {
        // Zero rows: the order is moot, and it may name columns that are gone.
        q.order_by = None;
    }
}

/// Returns whether the whole set expression is now known to be empty.
fn empty_set_expr(body: &mut SetExpr, catalog: &dyn CatalogLookup) -> bool {
    match body {
        SetExpr::Select(select) => {
            for twj in select.from.iter_mut() {
                if let TableFactor::Derived { subquery, .. } = &mut twj.relation {
                    empty_selects(subquery, catalog);
                }
                for j in twj.joins.iter_mut() {
                    if let TableFactor::Derived { subquery, .. } = &mut j.relation {
                        empty_selects(subquery, catalog);
                    }
                }
            }
            let wildcard = select.projection.iter().any(|i| {
                matches!(
                    i,
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                )
            });
            let global_aggregate = matches!(&select.group_by,
                datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty())
                && has_aggregate(select);
            if wildcard || global_aggregate || !from_is_empty(&select.from, catalog) {
                return false;
            }
            let mut used = std::collections::HashSet::new();
            let projection = select
                .projection
                .iter()
                .map(|item| {
                    let name = match item {
                        SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                        SelectItem::UnnamedExpr(e) => output_name(e),
                        _ => "?column?".into(),
                    };
                    let mut unique = name.clone();
                    let mut n = 1;
                    while !used.insert(unique.clone()) {
                        n += 1;
                        unique = format!("{name}_{n}");
                    }
                    SelectItem::ExprWithAlias {
                        expr: typed_null(),
                        alias: Ident::with_quote('"', unique),
                    }
                })
                .collect();
            select.projection = projection;
            select.from = vec![];
            select.selection = Some(Expr::value(Value::Boolean(false)));
            select.group_by =
                datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(vec![], vec![]);
            select.having = None;
            select.distinct = None;
            true
        }
        SetExpr::Query(q) => {
            empty_selects(q, catalog);
            false
        }
        SetExpr::SetOperation { left, right, .. } => {
            let l = empty_set_expr(left, catalog);
            let r = empty_set_expr(right, catalog);
            l && r
        }
        _ => false,
    }
}

/// `SELECT ... FROM unnest(x.reloptions)`.
fn unnests_reloptions(q: &Query) -> bool {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    let [twj] = s.from.as_slice() else {
        return false;
    };
    match &twj.relation {
        TableFactor::Table {
            name,
            args: Some(args),
            ..
        } if last_name(name) == "unnest" => args.args.iter().any(|a| {
            matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::CompoundIdentifier(p)))
                if p.last().map(|i| i.value.eq_ignore_ascii_case("reloptions")).unwrap_or(false))
        }),
        _ => false,
    }
}

/// `CAST(NULL AS TEXT)`: an untyped NULL column does not unify with others in a UNION.
fn typed_null() -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::value(Value::Null)),
        data_type: DataType::Text,
        array: false,
        format: None,
    }
}

fn query_reads_empty(q: &Query, catalog: &dyn CatalogLookup) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => {
            let global_aggregate = matches!(&s.group_by,
                datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty())
                && has_aggregate(s);
            !global_aggregate && from_is_empty(&s.from, catalog)
        }
        _ => false,
    }
}

/// A scalar subquery that looks a row up in the catalog by key (`(SELECT c.relkind = 'c'
/// FROM pg_class c WHERE c.oid = t.typrelid)`) returns at most one row; DataFusion plans
/// correlated scalar subqueries only when they aggregate, so take `max` of the one row.
fn aggregate_catalog_lookup(sub: &mut Query) {
    let SetExpr::Select(s) = sub.body.as_mut() else {
        return;
    };
    let catalog_only = !s.from.is_empty()
        && s.from.iter().all(|twj| {
            std::iter::once(&twj.relation)
                .chain(twj.joins.iter().map(|j| &j.relation))
                .all(|f| match f {
                    TableFactor::Table {
                        name, args: None, ..
                    } => {
                        name.0.len() == 2
                            && (ident_eq(&name.0[0], "pg_catalog")
                                || ident_eq(&name.0[0], "information_schema"))
                    }
                    _ => false,
                })
        });
    let grouped = !matches!(&s.group_by,
        datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if !catalog_only || grouped || has_aggregate(s) || sub.limit_clause.is_some() {
        return;
    }
    if let [SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. }] =
        s.projection.as_mut_slice()
    {
        *x = function("max", vec![x.clone()]);
    }
}

fn function(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            _ => None,
        },
        Expr::Nested(inner) => string_literal(inner),
        _ => None,
    }
}

/// The Postgres name of a cast target, without a `pg_catalog.` qualifier.
fn type_name(t: &DataType) -> String {
    let s = match t {
        DataType::Custom(name, _) => name
            .0
            .iter()
            .map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("."),
        other => other.to_string(),
    };
    let s = s.to_lowercase();
    s.strip_prefix("pg_catalog.")
        .map(str::to_string)
        .unwrap_or(s)
}

/// `generate_series(1, array_upper(a, 1))`: DataFusion's generate_series takes bigints.
struct TableFunctions;

impl VisitorMut for TableFunctions {
    type Break = ();
    fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } = f
        else {
            return ControlFlow::Continue(());
        };
        let fname = last_name(name);
        if fname == "generate_series" {
            for a in args.args.iter_mut() {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                    *x = bigint(x.clone());
                }
            }
            // `generate_series(...) AS i`: Postgres names the column after the alias.
            if let Some(a) = alias.as_mut() {
                if a.columns.is_empty() {
                    a.columns = vec![
                        datafusion::sql::sqlparser::ast::TableAliasColumnDef::from_name(
                            a.name.value.clone(),
                        ),
                    ];
                }
            }
        } else if SCALAR_FUNCTIONS_IN_FROM.contains(&fname.as_str()) {
            // A scalar function in FROM is a one-row table whose column is named after
            // the alias (Grafana: `string_to_array(current_setting('search_path'), ',') s`).
            let column = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| fname.clone());
            let call = Expr::Function(Function {
                name: ObjectName::from(vec![Ident::new(fname.clone())]),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: args.args.clone(),
                    clauses: vec![],
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: vec![],
            });
            let sql = format!(
                "SELECT {call} AS {}",
                Ident::with_quote('"', column.clone())
            );
            if let Ok(Statement::Query(q)) = datafusion::sql::sqlparser::parser::Parser::new(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            )
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_statement())
            {
                *f = TableFactor::Derived {
                    lateral: false,
                    subquery: q,
                    alias: Some(alias.clone().unwrap_or(
                        datafusion::sql::sqlparser::ast::TableAlias {
                            explicit: true,
                            name: Ident::new(column),
                            columns: vec![],
                            at: None,
                        },
                    )),
                    sample: None,
                };
            }
        }
        ControlFlow::Continue(())
    }
}

fn bigint(x: Expr) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(x),
        data_type: DataType::BigInt(None),
        array: false,
        format: None,
    }
}

/// Aliases given to `_pg_expandarray(a)` (pgjdbc: `... AS KEYS`, then `(result.KEYS).x`).
fn expandarray_aliases(q: &mut Query) -> Vec<String> {
    let mut out = Vec::new();
    let _ = q.visit(&mut AliasCollector(&mut out));
    out
}

struct AliasCollector<'a>(&'a mut Vec<String>);

impl VisitorMut for AliasCollector<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(s) = q.body.as_ref() {
            for item in &s.projection {
                if let SelectItem::ExprWithAlias {
                    expr: Expr::Function(f),
                    alias,
                } = item
                {
                    if last_name(&f.name) == "_pg_expandarray" {
                        self.0.push(alias.value.to_lowercase());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn first_arg(f: &Function) -> Option<Expr> {
    match &f.args {
        FunctionArguments::List(l) => match l.args.first() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(a))) => Some(a.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `generate_subscripts(a, 1)`: `unnest(range(1, array_length(a) + 1))`. Beside
/// `unnest(a)` in one SELECT both run in step, as in Postgres.
fn subscripts(a: Expr) -> Expr {
    let len = bigint(function("array_length", vec![a]));
    let stop = Expr::BinaryOp {
        left: Box::new(function(
            "coalesce",
            vec![len, Expr::value(Value::Number("0".into(), false))],
        )),
        op: BinaryOperator::Plus,
        right: Box::new(Expr::value(Value::Number("1".into(), false))),
    };
    let range = function(
        "range",
        vec![Expr::value(Value::Number("1".into(), false)), stop],
    );
    function("unnest", vec![range])
}

/// `(_pg_expandarray(a)).n` / `.x`: the subscripts / elements of `a`, in step; and
/// `(result.KEYS).x` where `KEYS` was `_pg_expandarray(a)`. Before the main pass, which
/// rewrites a bare `_pg_expandarray(a)` to its elements.
struct ExpandArray<'a>(&'a [String]);

impl VisitorMut for ExpandArray<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let expanded = self.0;
        match e {
            // `(_pg_expandarray(a)).n` / `.x`: the subscripts / elements of `a`, in step.
            Expr::CompoundFieldAccess { root, access_chain } => {
                let mut r = root.as_ref();
                while let Expr::Nested(inner) = r {
                    r = inner;
                }
                let field = field_name(access_chain);
                match (r, field.as_deref()) {
                    (Expr::Function(f), Some(field))
                        if ["_pg_expandarray", "information_schema._pg_expandarray"]
                            .contains(&f.name.to_string().to_lowercase().as_str()) =>
                    {
                        if let Some(a) = first_arg(f) {
                            *e = if field == "n" {
                                subscripts(a)
                            } else {
                                function("unnest", vec![a])
                            };
                        }
                    }
                    (Expr::CompoundIdentifier(parts), Some("x"))
                        if parts
                            .last()
                            .map(|i| expanded.contains(&i.value.to_lowercase()))
                            .unwrap_or(false) =>
                    {
                        *e = r.clone();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn field_name(chain: &[AccessExpr]) -> Option<String> {
    match chain {
        [AccessExpr::Dot(Expr::Identifier(i))] => Some(i.value.to_lowercase()),
        _ => None,
    }
}

/// [`epoch_millis_comparison`] over a whole query (a view's; ad-hoc queries get it in
/// [`rewrite`]).
pub fn epoch_millis_comparisons(q: &mut Query) {
    let _ = visit_expressions_mut(q, |e| {
        epoch_millis_comparison(e);
        ControlFlow::<()>::Continue(())
    });
}

/// ksqlDB compares ROWTIME, WINDOWSTART and WINDOWEND with BIGINT epoch milliseconds
/// (`WHERE rowtime BETWEEN 1514764800001 AND 1514764801000`); eddy's are timestamps, so
/// a number compared with one of them is read as epoch milliseconds.
fn epoch_millis_comparison(e: &mut Expr) {
    let is_time = |x: &Expr| {
        let name = match x {
            Expr::Identifier(i) => Some(i.value.to_lowercase()),
            Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_lowercase()),
            _ => None,
        };
        matches!(
            name.as_deref(),
            Some("rowtime" | "windowstart" | "windowend")
        )
    };
    let is_number = |x: &Expr| match x {
        Expr::Value(v) => matches!(v.value, Value::Number(..)),
        Expr::UnaryOp { expr, .. } => {
            matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::Number(..)))
        }
        _ => false,
    };
    let as_timestamp = |x: &mut Expr| {
        if is_number(x) {
            let n = std::mem::replace(x, Expr::Value(Value::Null.into()));
            *x = datafusion::sql::sqlparser::parser::Parser::new(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            )
            .try_with_sql(&format!("to_timestamp_millis({n})"))
            .and_then(|mut p| p.parse_expr())
            .unwrap_or(n);
        }
    };
    match e {
        Expr::BinaryOp { left, op, right }
            if matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
            ) =>
        {
            if is_time(left) {
                as_timestamp(right);
            } else if is_time(right) {
                as_timestamp(left);
            }
        }
        Expr::Between {
            expr, low, high, ..
        } if is_time(expr) => {
            as_timestamp(low);
            as_timestamp(high);
        }
        _ => {}
    }
}

fn rewrite_expr(e: &mut Expr, catalog: &dyn CatalogLookup) -> Result<()> {
    epoch_millis_comparison(e);
    match e {
        Expr::BinaryOp { op, .. } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                let new = match parts.last().map(|s| s.as_str()) {
                    Some("~") => Some(BinaryOperator::PGRegexMatch),
                    Some("~*") => Some(BinaryOperator::PGRegexIMatch),
                    Some("!~") => Some(BinaryOperator::PGRegexNotMatch),
                    Some("!~*") => Some(BinaryOperator::PGRegexNotIMatch),
                    Some("=") => Some(BinaryOperator::Eq),
                    Some("<>") => Some(BinaryOperator::NotEq),
                    Some("<") => Some(BinaryOperator::Lt),
                    Some(">") => Some(BinaryOperator::Gt),
                    Some("<=") => Some(BinaryOperator::LtEq),
                    Some(">=") => Some(BinaryOperator::GtEq),
                    Some("||") => Some(BinaryOperator::StringConcat),
                    _ => None,
                };
                if let Some(n) = new {
                    *op = n;
                }
            }
        }
        Expr::Collate { expr, .. } => {
            let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = inner;
        }
        Expr::Cast {
            expr,
            data_type,
            kind,
            ..
        } => {
            let name = type_name(data_type);
            let literal = string_literal(expr);
            let replacement = match name.as_str() {
                "regclass" => Some(match literal {
                    Some(s) => match catalog.relation_oid(&s) {
                        Some(oid) => Expr::value(Value::Number(oid.to_string(), false)),
                        None => {
                            return Err(EddyError::query(
                                "42P01",
                                format!("relation \"{s}\" does not exist"),
                            ))
                        }
                    },
                    None => function(REGCLASS_FUNCTION, vec![(**expr).clone()]),
                }),
                "regtype" => Some(match literal {
                    Some(s) => match types::by_name(&s) {
                        Some(t) => Expr::value(Value::Number(t.oid.to_string(), false)),
                        None => {
                            return Err(EddyError::query(
                                "42704",
                                format!("type \"{s}\" does not exist"),
                            ))
                        }
                    },
                    None => function(REGTYPE_FUNCTION, vec![(**expr).clone()]),
                }),
                "regnamespace" => Some(function(REGNAMESPACE_FUNCTION, vec![(**expr).clone()])),
                // Catalog procedure columns hold names: compare names.
                "regproc" | "regprocedure" => Some(match literal {
                    Some(s) => Expr::value(Value::SingleQuotedString(
                        s.strip_prefix("pg_catalog.").unwrap_or(&s).to_string(),
                    )),
                    None => (**expr).clone(),
                }),
                "oid" | "xid" | "regoper" | "regrole" | "cid" => {
                    *data_type = DataType::BigInt(None);
                    *kind = CastKind::DoubleColon;
                    None
                }
                "text" | "name" | "\"char\"" | "char" | "bpchar" => {
                    *data_type = DataType::Text;
                    None
                }
                "int2vector" | "int2[]" => {
                    *data_type = DataType::Array(
                        datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                            Box::new(DataType::SmallInt(None)),
                            None,
                        ),
                    );
                    None
                }
                "oidvector" | "oid[]" => {
                    *data_type = DataType::Array(
                        datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                            Box::new(DataType::BigInt(None)),
                            None,
                        ),
                    );
                    None
                }
                other => {
                    // `pg_catalog.int4` and friends: the unqualified type.
                    if let DataType::Custom(n, _) = data_type {
                        if n.0.len() == 2 && ident_eq(&n.0[0], "pg_catalog") {
                            if let Ok(t) = datafusion::sql::sqlparser::parser::Parser::new(
                                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                            )
                            .try_with_sql(other)
                            .and_then(|mut p| p.parse_data_type())
                            {
                                *data_type = t;
                            }
                        }
                    }
                    None
                }
            };
            if let Some(r) = replacement {
                *e = r;
            }
        }
        Expr::Function(f) => {
            // pg_catalog.f(...) / information_schema.f(...) is f(...).
            if f.name.0.len() == 2
                && (ident_eq(&f.name.0[0], "pg_catalog")
                    || ident_eq(&f.name.0[0], "information_schema"))
            {
                let last = f.name.0[1].clone();
                f.name = ObjectName(vec![last]);
            }
            if last_name(&f.name) == "generate_subscripts" {
                if let Some(a) = first_arg(f) {
                    *e = subscripts(a);
                    return Ok(());
                }
            }
            // A bare `_pg_expandarray(a)` is its elements (see CompoundFieldAccess).
            if last_name(&f.name) == "_pg_expandarray" {
                if let Some(a) = first_arg(f) {
                    *e = function("unnest", vec![a]);
                    return Ok(());
                }
            }
            // ARRAY(SELECT x ...) is (SELECT array_agg(x) ...).
            if last_name(&f.name) == "array" {
                if let FunctionArguments::Subquery(sub) = &f.args {
                    let mut sub = sub.clone();
                    if query_reads_empty(&sub, catalog) {
                        *e = Expr::value(Value::SingleQuotedString("{}".into()));
                        return Ok(());
                    }
                    if unnests_reloptions(&sub) {
                        // psql's `\d+`: `array(select 'toast.' || x from unnest(tc.reloptions) x)`.
                        // eddy has no storage options, so reloptions is NULL everywhere.
                        *e = Expr::Cast {
                            kind: CastKind::Cast,
                            expr: Box::new(Expr::value(Value::Null)),
                            data_type: DataType::Array(
                                datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                                    Box::new(DataType::Text),
                                    None,
                                ),
                            ),
                            array: false,
                            format: None,
                        };
                        return Ok(());
                    }
                    if let SetExpr::Select(s) = sub.body.as_mut() {
                        if let [SelectItem::UnnamedExpr(x)
                        | SelectItem::ExprWithAlias { expr: x, .. }] =
                            s.projection.as_mut_slice()
                        {
                            let agg = function("array_agg", vec![x.clone()]);
                            s.projection = vec![SelectItem::UnnamedExpr(agg)];
                            sub.order_by = None;
                            *e = Expr::Subquery(sub);
                        }
                    }
                }
            }
        }
        Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } => {
            // DataFusion's LIKE escapes with a backslash only: translate the pattern.
            let esc = escape_char.as_ref().and_then(|v| match &v.value {
                Value::SingleQuotedString(s) => Some(s.clone()),
                _ => None,
            });
            if let Some(esc) = esc.filter(|e| e != "\\" && e.chars().count() == 1) {
                let lit = |s: &str| Expr::value(Value::SingleQuotedString(s.to_string()));
                let inner = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
                let doubled = function("replace", vec![inner, lit("\\"), lit("\\\\")]);
                **pattern = function("replace", vec![doubled, lit(&esc), lit("\\")]);
                *escape_char = None;
            }
        }
        Expr::Subquery(sub) => {
            if query_reads_empty(sub, catalog) {
                *e = Expr::value(Value::Null);
            } else {
                empty_selects(sub, catalog);
                aggregate_catalog_lookup(sub);
            }
        }
        Expr::Exists { subquery, negated } => {
            if query_reads_empty(subquery, catalog) {
                *e = Expr::value(Value::Boolean(*negated));
            }
        }
        Expr::InSubquery {
            subquery, negated, ..
        } => {
            if query_reads_empty(subquery, catalog) {
                *e = Expr::value(Value::Boolean(*negated));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Orders;
    impl CatalogLookup for Orders {
        fn is_user_relation(&self, name: &str) -> bool {
            name == "orders"
        }
        fn relation_oid(&self, name: &str) -> Option<i64> {
            (name == "orders").then_some(16384)
        }
    }

    fn rewritten(sql: &str) -> String {
        let stmt = crate::sql::parse_statement(sql).unwrap();
        let crate::sql::EddyStatement::Query(mut q) = stmt else {
            panic!("not a query")
        };
        rewrite(&mut q, &Orders).unwrap();
        q.to_string()
    }

    #[test]
    fn postgres_operators_casts_and_qualifiers() {
        assert_eq!(
            rewritten("SELECT c.oid FROM pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default"),
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname ~ '^(orders)$'"
        );
        assert_eq!(
            rewritten("SELECT 'orders'::regclass::oid, c.oid::pg_catalog.regclass, pg_catalog.format_type(23, NULL)"),
            "SELECT 16384::BIGINT, eddy_regclass(c.oid), format_type(23, NULL)"
        );
        assert_eq!(rewritten("SELECT 'int4'::regtype"), "SELECT 23");
    }

    #[test]
    fn reading_an_empty_catalog_is_empty() {
        // A join with a catalog eddy keeps empty: no rows, columns keep their names.
        assert_eq!(
            rewritten("SELECT pol.polname, array(select rolname from pg_roles where oid = any (pol.polroles)) AS r FROM pg_catalog.pg_policy pol WHERE pol.polrelid = '16384' ORDER BY 1"),
            "SELECT CAST(NULL AS TEXT) AS \"polname\", CAST(NULL AS TEXT) AS \"r\" WHERE false"
        );
        // A scalar subquery over one is NULL; a global aggregate still returns its row.
        assert_eq!(
            rewritten("SELECT (SELECT d.adbin FROM pg_catalog.pg_attrdef d WHERE d.adnum = 1), (SELECT count(*) FROM pg_description)"),
            "SELECT NULL, (SELECT count(*) FROM pg_catalog.pg_description)"
        );
        // Joining a user relation with an empty catalog is empty too.
        assert!(
            rewritten("SELECT o.id FROM orders o JOIN pg_catalog.pg_proc p ON true")
                .ends_with("WHERE false")
        );
    }
}
