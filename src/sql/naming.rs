//! Result column names as Postgres gives them: `count(*)` is named `count`, `sum(x)` is
//! `sum`, `x::int` is `x`, `CASE ...` is `case`, any other unnamed expression `?column?`.
//! DataFusion names columns after the whole expression, which clients and BI tools do not
//! expect.

use datafusion::sql::sqlparser::ast::{Expr, Query, SelectItem, SetExpr};

/// For each output column of `query`, the Postgres name when it differs from DataFusion's
/// (`None` = keep DataFusion's). `None` overall when the select list has a wildcard, so
/// positions cannot be matched to items.
pub fn postgres_column_names(query: &Query) -> Option<Vec<Option<String>>> {
    let select = match query.body.as_ref() {
        SetExpr::Select(s) => s,
        // For UNION and friends Postgres takes the names of the first branch.
        SetExpr::SetOperation { left, .. } => match left.as_ref() {
            SetExpr::Select(s) => s,
            _ => return None,
        },
        SetExpr::Query(q) => return postgres_column_names(q),
        _ => return None,
    };
    let mut names = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(e) => names.push(figure_name(e)),
            SelectItem::ExprWithAlias { .. } => names.push(None),
            SelectItem::ExprWithAliases { .. } => names.push(None),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(_, _) => return None,
        }
    }
    Some(names)
}

/// Postgres' FigureColname, for the cases DataFusion names differently.
fn figure_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        Expr::Function(f) => {
            let name = f.name.0.last()?.as_ident()?;
            Some(if name.quote_style.is_some() {
                name.value.clone()
            } else {
                name.value.to_lowercase()
            })
        }
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            Expr::Identifier(i) => Some(normal(&i.value, i.quote_style.is_some())),
            Expr::CompoundIdentifier(parts) => parts
                .last()
                .map(|i| normal(&i.value, i.quote_style.is_some())),
            Expr::Value(_) => Some(cast_type_name(&data_type.to_string())),
            inner => figure_name(inner).or_else(|| Some("?column?".into())),
        },
        Expr::Nested(inner) => figure_name(inner).or_else(|| Some("?column?".into())),
        Expr::Case { .. } => Some("case".into()),
        Expr::Exists { .. } => Some("exists".into()),
        Expr::Array(_) => Some("array".into()),
        Expr::Extract { .. } => Some("extract".into()),
        Expr::Substring { .. } => Some("substring".into()),
        Expr::Position { .. } => Some("position".into()),
        Expr::Ceil { .. } => Some("ceil".into()),
        Expr::Floor { .. } => Some("floor".into()),
        Expr::Trim { .. } => Some("btrim".into()),
        Expr::Subquery(q) => postgres_column_names(q)
            .and_then(|n| n.into_iter().next().flatten())
            .or_else(|| Some("?column?".into())),
        _ => Some("?column?".into()),
    }
}

fn normal(v: &str, quoted: bool) -> String {
    if quoted {
        v.to_string()
    } else {
        v.to_lowercase()
    }
}

/// `'1'::int` is named after the type, as Postgres' internal type name.
fn cast_type_name(t: &str) -> String {
    match t.to_lowercase().as_str() {
        "int" | "integer" | "int4" => "int4".into(),
        "bigint" | "int8" => "int8".into(),
        "smallint" | "int2" => "int2".into(),
        "text" => "text".into(),
        "boolean" | "bool" => "bool".into(),
        "double precision" | "float8" => "float8".into(),
        "real" | "float4" => "float4".into(),
        "date" => "date".into(),
        "timestamp" => "timestamp".into(),
        "timestamptz" | "timestamp with time zone" => "timestamptz".into(),
        other => other.split('(').next().unwrap_or(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn names(sql: &str) -> Option<Vec<Option<String>>> {
        let q = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap();
        postgres_column_names(&q)
    }

    #[test]
    fn names_follow_postgres() {
        let n = names(
            "SELECT page, count(*), avg(ms) AS a, ms::int, 1 + 2, CASE WHEN true THEN 1 END FROM t",
        )
        .unwrap();
        assert_eq!(
            n,
            vec![
                None,
                Some("count".into()),
                None,
                Some("ms".into()),
                Some("?column?".into()),
                Some("case".into())
            ]
        );
        assert!(names("SELECT *, count(*) FROM t").is_none());
    }
}
