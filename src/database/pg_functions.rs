//! Postgres catalog functions client tools call (`format_type`, `pg_get_viewdef`,
//! `current_setting`, `has_table_privilege`, `col_description`, ...), answered from
//! eddy's catalog. Catalog-dependent ones are bound to the snapshot a query reads.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, Array};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::catalog::pg_catalog::{self, types};
use crate::catalog::Relation;
use crate::sql::pg_compat;

type RowFn = dyn Fn(&[ScalarValue]) -> Option<ScalarValue> + Send + Sync;

/// A scalar function evaluated value by value (catalog sizes, not data sizes).
struct PgFunction {
    name: String,
    signature: Signature,
    returns: DataType,
    f: Arc<RowFn>,
}

impl std::fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgFunction({})", self.name)
    }
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for PgFunction {}
impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let null = ScalarValue::try_from(&self.returns)?;
        let eval = |vals: &[ScalarValue]| -> datafusion::error::Result<ScalarValue> {
            match (self.f)(vals) {
                Some(v) if v.data_type() == self.returns => Ok(v),
                Some(v) if v.is_null() => Ok(null.clone()),
                Some(v) => v.cast_to(&self.returns),
                None => Ok(null.clone()),
            }
        };
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            let vals: Vec<ScalarValue> = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(_) => unreachable!(),
                })
                .collect();
            return Ok(ColumnarValue::Scalar(eval(&vals)?));
        }
        let n = args.number_rows;
        if n == 0 {
            return Ok(ColumnarValue::Array(new_empty_array(&self.returns)));
        }
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let vals = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => Ok(s.clone()),
                    ColumnarValue::Array(arr) => ScalarValue::try_from_array(arr, i),
                })
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            out.push(eval(&vals)?);
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

fn udf(
    name: &str,
    returns: DataType,
    f: impl Fn(&[ScalarValue]) -> Option<ScalarValue> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(PgFunction {
        name: name.to_string(),
        signature: Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Stable,
        ),
        returns,
        f: Arc::new(f),
    })
}

fn int(v: Option<&ScalarValue>) -> Option<i64> {
    match v? {
        ScalarValue::Int8(x) => x.map(|x| x as i64),
        ScalarValue::Int16(x) => x.map(|x| x as i64),
        ScalarValue::Int32(x) => x.map(|x| x as i64),
        ScalarValue::Int64(x) => *x,
        ScalarValue::UInt32(x) => x.map(|x| x as i64),
        ScalarValue::UInt64(x) => x.map(|x| x as i64),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: Option<&ScalarValue>) -> Option<String> {
    match v? {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.clone(),
        other if other.is_null() => None,
        other => Some(other.to_string()),
    }
}

fn utf8(s: impl Into<String>) -> Option<ScalarValue> {
    Some(ScalarValue::Utf8(Some(s.into())))
}

/// Functions that do not depend on the catalog's contents.
pub fn register_static(ctx: &SessionContext) {
    let t = DataType::Utf8;
    ctx.register_udf(udf("format_type", t.clone(), |a| {
        types::format_type(int(a.first())?, int(a.get(1))).and_then(utf8)
    }));
    ctx.register_udf(udf(pg_compat::REGTYPE_FUNCTION, t.clone(), |a| {
        let oid = int(a.first())?;
        types::format_type(oid, None).and_then(utf8)
    }));
    ctx.register_udf(udf(pg_compat::REGNAMESPACE_FUNCTION, t.clone(), |a| {
        pg_catalog::namespace_name(int(a.first())?).and_then(utf8)
    }));
    ctx.register_udf(udf("to_regtype", DataType::Int64, |a| {
        let name = text(a.first())?;
        types::by_name(&name).map(|t| ScalarValue::Int64(Some(t.oid)))
    }));
    for name in [
        "pg_get_expr",
        "pg_get_ruledef",
        "pg_get_function_result",
        "pg_get_function_arguments",
        "pg_get_function_identity_arguments",
        "pg_get_serial_sequence",
        "pg_get_statisticsobjdef_columns",
        "pg_get_partkeydef",
        "pg_get_triggerdef",
        "col_description",
        "obj_description",
        "shobj_description",
    ] {
        // Nothing eddy has carries these (no defaults, comments, functions, rules).
        ctx.register_udf(udf(name, t.clone(), |_| None));
    }
    ctx.register_udf(udf("pg_encoding_to_char", t.clone(), |_| utf8("UTF8")));
    ctx.register_udf(udf("pg_get_userbyid", t.clone(), |_| {
        utf8(pg_catalog::OWNER)
    }));
    for name in [
        "pg_table_is_visible",
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
        "pg_opclass_is_visible",
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_any_column_privilege",
        "has_column_privilege",
        "has_function_privilege",
        "has_sequence_privilege",
    ] {
        // One user, who owns everything; every relation is on the search path.
        ctx.register_udf(udf(name, DataType::Boolean, |_| {
            Some(ScalarValue::Boolean(Some(true)))
        }));
    }
    for name in ["pg_relation_is_publishable", "pg_is_in_recovery"] {
        ctx.register_udf(udf(name, DataType::Boolean, |_| {
            Some(ScalarValue::Boolean(Some(false)))
        }));
    }
    let settings: HashMap<String, &'static str> = pg_catalog::SETTINGS
        .iter()
        .map(|(k, v)| (k.to_lowercase(), *v))
        .collect();
    ctx.register_udf(udf("current_setting", t.clone(), move |a| {
        let name = text(a.first())?.to_lowercase();
        settings
            .get(&name)
            .map(|v| ScalarValue::Utf8(Some(v.to_string())))
    }));
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    ctx.register_udf(udf("current_schemas", list, |a| {
        let implicit = matches!(a.first(), Some(ScalarValue::Boolean(Some(true))));
        let mut names = vec![];
        if implicit {
            names.push(ScalarValue::Utf8(Some("pg_catalog".into())));
        }
        names.push(ScalarValue::Utf8(Some("public".into())));
        Some(ScalarValue::List(ScalarValue::new_list_nullable(
            &names,
            &DataType::Utf8,
        )))
    }));
    for name in ["session_user", "current_user", "current_role", "user"] {
        ctx.register_udf(udf(name, t.clone(), |_| utf8(pg_catalog::OWNER)));
    }
    let pid = std::process::id() as i64;
    ctx.register_udf(udf("pg_backend_pid", DataType::Int32, move |_| {
        Some(ScalarValue::Int32(Some(pid as i32)))
    }));
    ctx.register_udf(udf("txid_current", DataType::Int64, |_| {
        Some(ScalarValue::Int64(Some(1)))
    }));
    ctx.register_udf(udf("quote_ident", t.clone(), |a| {
        utf8(quote_ident(&text(a.first())?))
    }));
    ctx.register_udf(udf("format", t.clone(), |a| {
        format(&text(a.first())?, &a[1..]).and_then(utf8)
    }));
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    ctx.register_udf(udf("parse_ident", list, |a| {
        let parts: Vec<ScalarValue> = parse_ident(&text(a.first())?)?
            .into_iter()
            .map(|p| ScalarValue::Utf8(Some(p)))
            .collect();
        Some(ScalarValue::List(ScalarValue::new_list_nullable(
            &parts,
            &DataType::Utf8,
        )))
    }));
    ctx.register_udf(udf("array_upper", DataType::Int32, |a| {
        let n = match a.first()? {
            ScalarValue::List(l) if l.is_valid(0) => l.value(0).len(),
            _ => return None,
        };
        (n > 0).then_some(ScalarValue::Int32(Some(n as i32)))
    }));
    ctx.register_udf(udf("array_lower", DataType::Int32, |a| {
        match a.first()? {
            ScalarValue::List(l) if l.is_valid(0) && !l.value(0).is_empty() => {
                Some(ScalarValue::Int32(Some(1)))
            }
            _ => None,
        }
    }));
}

fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .map(|c| c.is_ascii_lowercase() || c == '_')
        .unwrap_or(false)
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// Postgres' `format(fmt, ...)`: `%s` text (NULL as empty), `%I` identifier, `%L` literal,
/// `%%`. `None` (an error in Postgres) when there are too few arguments.
fn format(fmt: &str, args: &[ScalarValue]) -> Option<String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next()?;
        if spec == '%' {
            out.push('%');
            continue;
        }
        let arg = text(args.get(next));
        if next >= args.len() {
            return None;
        }
        next += 1;
        match spec {
            's' => out.push_str(arg.as_deref().unwrap_or("")),
            'I' => out.push_str(&quote_ident(arg.as_deref()?)),
            'L' => match arg {
                Some(v) => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
                None => out.push_str("NULL"),
            },
            _ => return None,
        }
    }
    Some(out)
}

/// `parse_ident('a."B".c')` = `{a,B,c}`: unquoted parts fold to lower case.
fn parse_ident(s: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = s.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            Some('.') => continue,
            None => return Some(parts),
            Some(_) => return None,
        }
    }
}

/// Functions that read the catalog, bound to one snapshot of it.
pub fn register_catalog(ctx: &SessionContext, relations: &[Relation]) {
    let t = DataType::Utf8;
    let mut names: HashMap<i64, String> = HashMap::new();
    let mut views: HashMap<i64, String> = HashMap::new();
    let mut indexes: HashMap<(i64, i64), String> = HashMap::new();
    let mut constraints: HashMap<i64, String> = HashMap::new();
    for r in relations {
        let oid = pg_catalog::relation_oid(r);
        names.insert(oid, r.name.clone());
        if let Some(d) = pg_catalog::view_definition(relations, oid) {
            views.insert(oid, d);
        }
    }
    for r in relations.iter().filter(|r| !r.primary_key.is_empty()) {
        let index = pg_catalog::index_oid(r);
        if let Some(n) = pg_catalog::relation_name(relations, index) {
            names.insert(index, n);
        }
        for c in 0..=r.primary_key.len() as i64 {
            if let Some(d) = pg_catalog::index_definition(relations, index, c) {
                indexes.insert((index, c), d);
            }
        }
        let constraint = pg_catalog::constraint_oid(r);
        if let Some(d) = pg_catalog::constraint_definition(relations, constraint) {
            constraints.insert(constraint, d);
        }
    }
    ctx.register_udf(udf(pg_compat::REGCLASS_FUNCTION, t.clone(), move |a| {
        let oid = int(a.first())?;
        Some(ScalarValue::Utf8(Some(
            names.get(&oid).cloned().unwrap_or_else(|| oid.to_string()),
        )))
    }));
    ctx.register_udf(udf("pg_get_viewdef", t.clone(), move |a| {
        views.get(&int(a.first())?).cloned().and_then(utf8)
    }));
    ctx.register_udf(udf("pg_get_indexdef", t.clone(), move |a| {
        let col = int(a.get(1)).unwrap_or(0);
        indexes.get(&(int(a.first())?, col)).cloned().and_then(utf8)
    }));
    ctx.register_udf(udf("pg_get_constraintdef", t.clone(), move |a| {
        constraints.get(&int(a.first())?).cloned().and_then(utf8)
    }));
    let sizes: HashMap<i64, i64> = relations
        .iter()
        .map(|r| (pg_catalog::relation_oid(r), r.storage.approx_bytes() as i64))
        .collect();
    for name in [
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_table_size",
    ] {
        let sizes = sizes.clone();
        ctx.register_udf(udf(name, DataType::Int64, move |a| {
            Some(ScalarValue::Int64(Some(
                sizes.get(&int(a.first())?).copied().unwrap_or(0),
            )))
        }));
    }
}
