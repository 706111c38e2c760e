//! `pg_catalog` and `information_schema` as Postgres 15 shapes them, built from eddy's
//! catalog when a query reads them: what psql's backslash commands, pgjdbc's
//! `DatabaseMetaData`, SQLAlchemy's inspector and BI tools' schema discovery read.
//!
//! Streams and tables are ordinary tables (relkind `r`), materialized views `m`, views
//! made with `CREATE VIEW` `v` (eddy maintains them too); a table's primary key is a
//! unique index `<table>_pkey` with its constraint. Catalogs of features eddy does not
//! have (defaults, comments, policies, inheritance, publications, triggers, sequences,
//! functions) are present and empty, so the queries that read them plan and return
//! nothing — see [`ALWAYS_EMPTY`] and `sql::pg_compat`.

pub mod types;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, Int64Array, ListArray,
    ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int64Type, Schema, TimeUnit};

use super::{Relation, RelationKind};
use crate::error::Result;

pub const PUBLIC_NAMESPACE_OID: i64 = 2200;
pub const PG_CATALOG_NAMESPACE_OID: i64 = 11;
pub const INFORMATION_SCHEMA_NAMESPACE_OID: i64 = 13183;
/// Relation OIDs start above Postgres' reserved range.
pub const RELATION_OID_BASE: i64 = 16384;
const INDEX_OID_BASE: i64 = 1_000_000;
const CONSTRAINT_OID_BASE: i64 = 2_000_000;
pub const DATABASE_OID: i64 = 16383;
pub const OWNER_OID: i64 = 10;
pub const OWNER: &str = "eddy";
pub const DATABASE: &str = "eddy";

/// Catalog relations eddy never has rows for. A query that inner-joins one of them
/// returns no rows, and a scalar subquery over one is NULL (`sql::pg_compat` uses this
/// to answer client queries whose shape DataFusion cannot plan).
pub const ALWAYS_EMPTY: &[&str] = &[
    "pg_attrdef",
    "pg_description",
    "pg_shdescription",
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_inherits",
    "pg_rewrite",
    "pg_trigger",
    "pg_sequence",
    "pg_collation",
    "pg_enum",
    "pg_auth_members",
    "pg_depend",
    "pg_extension",
    "pg_proc",
    "pg_aggregate",
    "pg_foreign_table",
    "pg_partitioned_table",
    "pg_stat_activity",
    "pg_event_trigger",
    "pg_opclass",
    "pg_range",
    "pg_conversion",
    "pg_cast",
    "pg_operator",
];

/// Every `pg_catalog` relation eddy answers.
pub fn is_table(name: &str) -> bool {
    ALWAYS_EMPTY.contains(&name)
        || [
            "pg_class",
            "pg_namespace",
            "pg_am",
            "pg_attribute",
            "pg_type",
            "pg_database",
            "pg_roles",
            "pg_user",
            "pg_authid",
            "pg_settings",
            "pg_tablespace",
            "pg_index",
            "pg_constraint",
            "pg_tables",
            "pg_views",
            "pg_matviews",
            "pg_stat_user_tables",
            "pg_statio_user_tables",
        ]
        .contains(&name)
}

/// Relations of `information_schema`.
pub fn is_information_schema_table(name: &str) -> bool {
    [
        "tables",
        "columns",
        "schemata",
        "views",
        "table_constraints",
        "key_column_usage",
        "referential_constraints",
        "routines",
        "parameters",
    ]
    .contains(&name)
}

pub fn relation_oid(r: &Relation) -> i64 {
    RELATION_OID_BASE + r.id as i64
}

pub fn index_oid(r: &Relation) -> i64 {
    INDEX_OID_BASE + r.id as i64
}

pub fn constraint_oid(r: &Relation) -> i64 {
    CONSTRAINT_OID_BASE + r.id as i64
}

/// The relations tools see: not the transient views behind `SUBSCRIBE (SELECT ...)`.
fn listed(all: &[Relation]) -> Vec<&Relation> {
    all.iter().filter(|r| !is_transient(&r.name)).collect()
}

/// Views behind `SUBSCRIBE (SELECT ...)` are named with this prefix (reserved).
pub const TRANSIENT_PREFIX: &str = "eddy_subscribe_";

pub fn is_transient(name: &str) -> bool {
    name.starts_with(TRANSIENT_PREFIX)
}

/// Whether the user asked for a plain view (`CREATE VIEW`); eddy maintains it anyway.
pub fn is_plain_view(r: &Relation) -> bool {
    if r.kind != RelationKind::MaterializedView {
        return false;
    }
    let words: Vec<String> = r
        .create_sql
        .split_whitespace()
        .take(4)
        .map(|w| w.to_uppercase())
        .collect();
    let words: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    matches!(
        words.as_slice(),
        ["CREATE", "VIEW", ..] | ["CREATE", "OR", "REPLACE", "VIEW"]
    )
}

pub fn relkind(r: &Relation) -> &'static str {
    match r.kind {
        RelationKind::MaterializedView if is_plain_view(r) => "v",
        RelationKind::MaterializedView => "m",
        _ => "r",
    }
}

/// The visible columns of a relation with their 1-based `attnum`, OID and typmod.
pub fn columns(r: &Relation) -> Vec<(i16, String, i64, i32, bool)> {
    let mut out = Vec::new();
    let mut n = 0i16;
    for (i, f) in r.schema.fields().iter().enumerate() {
        if r.hidden.contains(&i) {
            continue;
        }
        n += 1;
        let limit = r.char_limits.iter().find(|(c, _)| *c == i).map(|(_, l)| *l);
        let (oid, typmod) = types::oid_and_typmod(f.data_type(), limit);
        let not_null = r.not_null.contains(&i) || r.primary_key.contains(&i);
        out.push((n, f.name().clone(), oid, typmod, not_null));
    }
    out
}

fn pk_attnums(r: &Relation) -> Vec<i16> {
    let cols = columns(r);
    r.primary_key
        .iter()
        .filter_map(|&i| {
            let name = r.schema.field(i).name();
            cols.iter().find(|c| &c.1 == name).map(|c| c.0)
        })
        .collect()
}

fn pk_names(r: &Relation) -> Vec<String> {
    r.primary_key
        .iter()
        .map(|&i| r.schema.field(i).name().clone())
        .collect()
}

/// `pg_get_indexdef` of a primary-key index (`column`: 0 for the whole definition).
pub fn index_definition(relations: &[Relation], oid: i64, column: i64) -> Option<String> {
    let r = relations
        .iter()
        .find(|r| index_oid(r) == oid && !r.primary_key.is_empty())?;
    let names = pk_names(r);
    if column > 0 {
        return names.get(column as usize - 1).cloned();
    }
    Some(format!(
        "CREATE UNIQUE INDEX {}_pkey ON public.{} USING btree ({})",
        r.name,
        r.name,
        names.join(", ")
    ))
}

/// `pg_get_constraintdef` of a primary-key constraint.
pub fn constraint_definition(relations: &[Relation], oid: i64) -> Option<String> {
    let r = relations
        .iter()
        .find(|r| constraint_oid(r) == oid && !r.primary_key.is_empty())?;
    Some(format!("PRIMARY KEY ({})", pk_names(r).join(", ")))
}

/// `oid::regclass`: a relation's (or its key index's) name.
pub fn relation_name(relations: &[Relation], oid: i64) -> Option<String> {
    relations.iter().find_map(|r| {
        if relation_oid(r) == oid {
            Some(r.name.clone())
        } else if index_oid(r) == oid && !r.primary_key.is_empty() {
            Some(format!("{}_pkey", r.name))
        } else {
            None
        }
    })
}

/// `'name'::regclass`: the OID of a relation by name (catalog relations included).
pub fn relation_by_name(relations: &[Relation], name: &str) -> Option<i64> {
    let n = name.trim().trim_matches('"');
    let n = n
        .strip_prefix("public.")
        .or_else(|| n.strip_prefix("pg_catalog."))
        .unwrap_or(n);
    if let Some(r) = relations
        .iter()
        .find(|r| r.name == n || r.name == n.to_lowercase())
    {
        return Some(relation_oid(r));
    }
    // Catalog relations: the OIDs Postgres gives the ones clients name in casts.
    match n.to_lowercase().as_str() {
        "pg_class" => Some(1259),
        "pg_type" => Some(1247),
        "pg_attribute" => Some(1249),
        "pg_proc" => Some(1255),
        "pg_namespace" => Some(2615),
        "pg_constraint" => Some(2606),
        "pg_extension" => Some(3079),
        "pg_database" => Some(1262),
        _ => None,
    }
}

pub fn namespace_name(oid: i64) -> Option<&'static str> {
    match oid {
        PG_CATALOG_NAMESPACE_OID => Some("pg_catalog"),
        PUBLIC_NAMESPACE_OID => Some("public"),
        INFORMATION_SCHEMA_NAMESPACE_OID => Some("information_schema"),
        _ => None,
    }
}

/// A view's defining SELECT, as `pg_get_viewdef` returns it.
pub fn view_definition(relations: &[Relation], oid: i64) -> Option<String> {
    relations
        .iter()
        .find(|r| relation_oid(r) == oid)
        .and_then(|r| r.definition.clone())
        .map(|d| format!(" {};", d.trim_end_matches(';')))
}

// ---- building batches ----

#[derive(Clone, Copy)]
enum Ty {
    Oid,
    Int4,
    Int2,
    Float4,
    Text,
    Bool,
    TextArray,
    Int2Array,
    OidArray,
    Timestamptz,
}

enum V {
    N,
    I(i64),
    F(f64),
    T(String),
    B(bool),
    IA(Vec<i64>),
}

fn t(s: impl Into<String>) -> V {
    V::T(s.into())
}

fn build(cols: &[(&str, Ty)], rows: Vec<Vec<V>>) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, (name, ty)) in cols.iter().enumerate() {
        let cells = rows.iter().map(|r| &r[i]);
        let int = |v: &V| match v {
            V::I(n) => Some(*n),
            V::B(b) => Some(*b as i64),
            _ => None,
        };
        let (dt, array): (DataType, ArrayRef) = match ty {
            Ty::Oid => (
                DataType::Int64,
                Arc::new(cells.map(int).collect::<Int64Array>()),
            ),
            Ty::Int4 => (
                DataType::Int32,
                Arc::new(
                    cells
                        .map(|v| int(v).map(|n| n as i32))
                        .collect::<Int32Array>(),
                ),
            ),
            Ty::Int2 => (
                DataType::Int16,
                Arc::new(
                    cells
                        .map(|v| int(v).map(|n| n as i16))
                        .collect::<Int16Array>(),
                ),
            ),
            Ty::Float4 => (
                DataType::Float32,
                Arc::new(
                    cells
                        .map(|v| match v {
                            V::F(f) => Some(*f as f32),
                            V::I(n) => Some(*n as f32),
                            _ => None,
                        })
                        .collect::<Float32Array>(),
                ),
            ),
            Ty::Text => (
                DataType::Utf8,
                Arc::new(
                    cells
                        .map(|v| match v {
                            V::T(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect::<StringArray>(),
                ),
            ),
            Ty::Bool => (
                DataType::Boolean,
                Arc::new(
                    cells
                        .map(|v| match v {
                            V::B(b) => Some(*b),
                            _ => None,
                        })
                        .collect::<BooleanArray>(),
                ),
            ),
            Ty::Timestamptz => (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                Arc::new(
                    TimestampMicrosecondArray::from(cells.map(int).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
            ),
            Ty::TextArray => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for v in cells {
                    // No catalog text array (reloptions, acl) has contents in eddy.
                    let _ = v;
                    b.append(false);
                }
                let a = b.finish();
                (a.data_type().clone(), Arc::new(a))
            }
            Ty::Int2Array => {
                let a = ListArray::from_iter_primitive::<Int16Type, _, _>(cells.map(|v| match v {
                    V::IA(items) => Some(items.iter().map(|n| Some(*n as i16)).collect::<Vec<_>>()),
                    _ => None,
                }));
                (a.data_type().clone(), Arc::new(a))
            }
            Ty::OidArray => {
                let a = ListArray::from_iter_primitive::<Int64Type, _, _>(cells.map(|v| match v {
                    V::IA(items) => Some(items.iter().map(|n| Some(*n)).collect::<Vec<_>>()),
                    _ => None,
                }));
                (a.data_type().clone(), Arc::new(a))
            }
        };
        fields.push(Field::new(*name, dt, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

use Ty::*;
use V::*;

/// The rows of `pg_catalog.<name>`, or `None` if eddy has no such relation.
pub fn table(name: &str, all: &[Relation]) -> Result<Option<RecordBatch>> {
    let relations = &listed(all);
    let b = |cols: &[(&str, Ty)], rows: Vec<Vec<V>>| build(cols, rows);
    let keyed = || relations.iter().filter(|r| !r.primary_key.is_empty());
    Ok(Some(match name {
        "pg_class" => {
            let cols = [
                ("oid", Oid),
                ("relname", Text),
                ("relnamespace", Oid),
                ("reltype", Oid),
                ("reloftype", Oid),
                ("relowner", Oid),
                ("relam", Oid),
                ("relfilenode", Oid),
                ("reltablespace", Oid),
                ("relpages", Int4),
                ("reltuples", Float4),
                ("relallvisible", Int4),
                ("reltoastrelid", Oid),
                ("relhasindex", Bool),
                ("relisshared", Bool),
                ("relpersistence", Text),
                ("relkind", Text),
                ("relnatts", Int2),
                ("relchecks", Int2),
                ("relhasrules", Bool),
                ("relhastriggers", Bool),
                ("relhassubclass", Bool),
                ("relrowsecurity", Bool),
                ("relforcerowsecurity", Bool),
                ("relispopulated", Bool),
                ("relreplident", Text),
                ("relispartition", Bool),
                ("relrewrite", Oid),
                ("relacl", TextArray),
                ("reloptions", TextArray),
                ("relpartbound", Text),
            ];
            let mut rows = Vec::new();
            for r in relations {
                let kind = relkind(r);
                rows.push(vec![
                    I(relation_oid(r)),
                    t(&r.name),
                    I(PUBLIC_NAMESPACE_OID),
                    I(0),
                    I(0),
                    I(OWNER_OID),
                    I(if kind == "v" { 0 } else { 2 }),
                    I(relation_oid(r)),
                    I(0),
                    I(0),
                    F(r.storage.row_count() as f64),
                    I(0),
                    I(0),
                    B(!r.primary_key.is_empty()),
                    B(false),
                    t("p"),
                    t(kind),
                    I(columns(r).len() as i64),
                    I(0),
                    B(kind == "v"),
                    B(false),
                    B(false),
                    B(false),
                    B(false),
                    B(true),
                    t("d"),
                    B(false),
                    I(0),
                    N,
                    N,
                    N,
                ]);
            }
            for r in keyed() {
                rows.push(vec![
                    I(index_oid(r)),
                    t(format!("{}_pkey", r.name)),
                    I(PUBLIC_NAMESPACE_OID),
                    I(0),
                    I(0),
                    I(OWNER_OID),
                    I(403),
                    I(index_oid(r)),
                    I(0),
                    I(0),
                    F(r.storage.row_count() as f64),
                    I(0),
                    I(0),
                    B(false),
                    B(false),
                    t("p"),
                    t("i"),
                    I(r.primary_key.len() as i64),
                    I(0),
                    B(false),
                    B(false),
                    B(false),
                    B(false),
                    B(false),
                    B(true),
                    t("n"),
                    B(false),
                    I(0),
                    N,
                    N,
                    N,
                ]);
            }
            b(&cols, rows)?
        }
        "pg_namespace" => b(
            &[
                ("oid", Oid),
                ("nspname", Text),
                ("nspowner", Oid),
                ("nspacl", TextArray),
            ],
            vec![
                vec![
                    I(PG_CATALOG_NAMESPACE_OID),
                    t("pg_catalog"),
                    I(OWNER_OID),
                    N,
                ],
                vec![I(PUBLIC_NAMESPACE_OID), t("public"), I(OWNER_OID), N],
                vec![
                    I(INFORMATION_SCHEMA_NAMESPACE_OID),
                    t("information_schema"),
                    I(OWNER_OID),
                    N,
                ],
            ],
        )?,
        "pg_am" => b(
            &[
                ("oid", Oid),
                ("amname", Text),
                ("amhandler", Text),
                ("amtype", Text),
            ],
            vec![
                vec![I(2), t("heap"), t("heap_tableam_handler"), t("t")],
                vec![I(403), t("btree"), t("bthandler"), t("i")],
            ],
        )?,
        "pg_attribute" => {
            let cols = [
                ("attrelid", Oid),
                ("attname", Text),
                ("atttypid", Oid),
                ("attstattarget", Int4),
                ("attlen", Int2),
                ("attnum", Int2),
                ("attndims", Int4),
                ("attcacheoff", Int4),
                ("atttypmod", Int4),
                ("attbyval", Bool),
                ("attalign", Text),
                ("attstorage", Text),
                ("attcompression", Text),
                ("attnotnull", Bool),
                ("atthasdef", Bool),
                ("atthasmissing", Bool),
                ("attidentity", Text),
                ("attgenerated", Text),
                ("attisdropped", Bool),
                ("attislocal", Bool),
                ("attinhcount", Int4),
                ("attcollation", Oid),
                ("attacl", TextArray),
                ("attoptions", TextArray),
            ];
            let mut rows = Vec::new();
            let mut push = |rel: i64, num: i16, name: &str, oid: i64, typmod: i32, nn: bool| {
                let ty = types::by_oid(oid);
                let len = ty.map(|t| t.len as i64).unwrap_or(-1);
                rows.push(vec![
                    I(rel),
                    t(name),
                    I(oid),
                    I(-1),
                    I(len),
                    I(num as i64),
                    I(0),
                    I(-1),
                    I(typmod as i64),
                    B(len > 0 && len <= 8),
                    t(if len == 8 { "d" } else { "i" }),
                    t(if len > 0 { "p" } else { "x" }),
                    t(""),
                    B(nn),
                    B(false),
                    B(false),
                    t(""),
                    t(""),
                    B(false),
                    B(true),
                    I(0),
                    I(ty.map(|t| t.collation).unwrap_or(0)),
                    N,
                    N,
                ]);
            };
            for r in relations {
                for (num, name, oid, typmod, nn) in columns(r) {
                    push(relation_oid(r), num, &name, oid, typmod, nn);
                }
            }
            for r in keyed() {
                let cols = columns(r);
                for (i, n) in pk_names(r).iter().enumerate() {
                    if let Some(c) = cols.iter().find(|c| &c.1 == n) {
                        push(index_oid(r), i as i16 + 1, n, c.2, c.3, true);
                    }
                }
            }
            b(&cols, rows)?
        }
        "pg_type" => {
            let cols = [
                ("oid", Oid),
                ("typname", Text),
                ("typnamespace", Oid),
                ("typowner", Oid),
                ("typlen", Int2),
                ("typbyval", Bool),
                ("typtype", Text),
                ("typcategory", Text),
                ("typispreferred", Bool),
                ("typisdefined", Bool),
                ("typdelim", Text),
                ("typrelid", Oid),
                ("typsubscript", Text),
                ("typelem", Oid),
                ("typarray", Oid),
                ("typinput", Text),
                ("typoutput", Text),
                ("typreceive", Text),
                ("typsend", Text),
                ("typalign", Text),
                ("typstorage", Text),
                ("typnotnull", Bool),
                ("typbasetype", Oid),
                ("typtypmod", Int4),
                ("typndims", Int4),
                ("typcollation", Oid),
                ("typdefault", Text),
            ];
            let rows = types::TYPES
                .iter()
                .map(|ty| {
                    let base = ty.input.trim_end_matches("in").trim_end_matches('_');
                    vec![
                        I(ty.oid),
                        t(ty.name),
                        I(PG_CATALOG_NAMESPACE_OID),
                        I(OWNER_OID),
                        I(ty.len as i64),
                        B(ty.len > 0 && ty.len <= 8),
                        t(ty.kind),
                        t(ty.category),
                        B(false),
                        B(true),
                        t(","),
                        I(0),
                        t(if ty.category == "A" {
                            "array_subscript_handler"
                        } else {
                            "-"
                        }),
                        I(ty.elem),
                        I(ty.array),
                        t(ty.input),
                        t(format!("{base}out")),
                        t(format!("{base}recv")),
                        t(format!("{base}send")),
                        t(if ty.len == 8 { "d" } else { "i" }),
                        t(if ty.len > 0 { "p" } else { "x" }),
                        B(false),
                        I(0),
                        I(-1),
                        I(0),
                        I(ty.collation),
                        N,
                    ]
                })
                .collect();
            b(&cols, rows)?
        }
        "pg_database" => b(
            &[
                ("oid", Oid),
                ("datname", Text),
                ("datdba", Oid),
                ("encoding", Int4),
                ("datlocprovider", Text),
                ("datistemplate", Bool),
                ("datallowconn", Bool),
                ("datconnlimit", Int4),
                ("dattablespace", Oid),
                ("datcollate", Text),
                ("datctype", Text),
                ("daticulocale", Text),
                ("datcollversion", Text),
                ("datacl", TextArray),
            ],
            vec![vec![
                I(DATABASE_OID),
                t(DATABASE),
                I(OWNER_OID),
                I(6),
                t("c"),
                B(false),
                B(true),
                I(-1),
                I(1663),
                t("C.UTF-8"),
                t("C.UTF-8"),
                N,
                N,
                N,
            ]],
        )?,
        "pg_roles" | "pg_authid" | "pg_user" => {
            let cols = [
                ("oid", Oid),
                ("rolname", Text),
                ("rolsuper", Bool),
                ("rolinherit", Bool),
                ("rolcreaterole", Bool),
                ("rolcreatedb", Bool),
                ("rolcanlogin", Bool),
                ("rolreplication", Bool),
                ("rolconnlimit", Int4),
                ("rolpassword", Text),
                ("rolvaliduntil", Timestamptz),
                ("rolbypassrls", Bool),
                ("rolconfig", TextArray),
                ("usename", Text),
                ("usesysid", Oid),
                ("usesuper", Bool),
            ];
            b(
                &cols,
                vec![vec![
                    I(OWNER_OID),
                    t(OWNER),
                    B(true),
                    B(true),
                    B(true),
                    B(true),
                    B(true),
                    B(false),
                    I(-1),
                    t("********"),
                    N,
                    B(true),
                    N,
                    t(OWNER),
                    I(OWNER_OID),
                    B(true),
                ]],
            )?
        }
        "pg_settings" => {
            let rows = SETTINGS
                .iter()
                .map(|(n, v)| vec![t(*n), t(*v), N, t("eddy"), t(""), t("user")])
                .collect();
            b(
                &[
                    ("name", Text),
                    ("setting", Text),
                    ("unit", Text),
                    ("category", Text),
                    ("short_desc", Text),
                    ("context", Text),
                ],
                rows,
            )?
        }
        "pg_tablespace" => b(
            &[("oid", Oid), ("spcname", Text), ("spcowner", Oid)],
            vec![
                vec![I(1663), t("pg_default"), I(OWNER_OID)],
                vec![I(1664), t("pg_global"), I(OWNER_OID)],
            ],
        )?,
        "pg_index" => {
            let cols = [
                ("indexrelid", Oid),
                ("indrelid", Oid),
                ("indnatts", Int2),
                ("indnkeyatts", Int2),
                ("indisunique", Bool),
                ("indnullsnotdistinct", Bool),
                ("indisprimary", Bool),
                ("indisexclusion", Bool),
                ("indimmediate", Bool),
                ("indisclustered", Bool),
                ("indisvalid", Bool),
                ("indcheckxmin", Bool),
                ("indisready", Bool),
                ("indislive", Bool),
                ("indisreplident", Bool),
                ("indkey", Int2Array),
                ("indcollation", OidArray),
                ("indclass", OidArray),
                ("indoption", Int2Array),
                ("indexprs", Text),
                ("indpred", Text),
            ];
            let rows = keyed()
                .map(|r| {
                    let keys = pk_attnums(r);
                    let n = keys.len() as i64;
                    vec![
                        I(index_oid(r)),
                        I(relation_oid(r)),
                        I(n),
                        I(n),
                        B(true),
                        B(false),
                        B(true),
                        B(false),
                        B(true),
                        B(false),
                        B(true),
                        B(false),
                        B(true),
                        B(true),
                        B(false),
                        IA(keys.iter().map(|k| *k as i64).collect()),
                        IA(vec![0; keys.len()]),
                        IA(vec![0; keys.len()]),
                        IA(vec![0; keys.len()]),
                        N,
                        N,
                    ]
                })
                .collect();
            b(&cols, rows)?
        }
        "pg_constraint" => {
            let cols = [
                ("oid", Oid),
                ("conname", Text),
                ("connamespace", Oid),
                ("contype", Text),
                ("condeferrable", Bool),
                ("condeferred", Bool),
                ("convalidated", Bool),
                ("conrelid", Oid),
                ("contypid", Oid),
                ("conindid", Oid),
                ("conparentid", Oid),
                ("confrelid", Oid),
                ("confupdtype", Text),
                ("confdeltype", Text),
                ("confmatchtype", Text),
                ("conislocal", Bool),
                ("coninhcount", Int4),
                ("connoinherit", Bool),
                ("conkey", Int2Array),
                ("confkey", Int2Array),
                ("conbin", Text),
            ];
            let rows = keyed()
                .map(|r| {
                    vec![
                        I(constraint_oid(r)),
                        t(format!("{}_pkey", r.name)),
                        I(PUBLIC_NAMESPACE_OID),
                        t("p"),
                        B(false),
                        B(false),
                        B(true),
                        I(relation_oid(r)),
                        I(0),
                        I(index_oid(r)),
                        I(0),
                        I(0),
                        t(" "),
                        t(" "),
                        t(" "),
                        B(true),
                        I(0),
                        B(true),
                        IA(pk_attnums(r).iter().map(|k| *k as i64).collect()),
                        N,
                        N,
                    ]
                })
                .collect();
            b(&cols, rows)?
        }
        "pg_tables" | "pg_views" | "pg_matviews" => {
            let want = match name {
                "pg_tables" => "r",
                "pg_views" => "v",
                _ => "m",
            };
            let rows = relations
                .iter()
                .filter(|r| relkind(r) == want)
                .map(|r| {
                    vec![
                        t("public"),
                        t(&r.name),
                        t(OWNER),
                        match &r.definition {
                            Some(d) => t(d),
                            None => N,
                        },
                        B(!r.primary_key.is_empty()),
                        B(true),
                    ]
                })
                .collect();
            let (name_col, owner_col) = match want {
                "r" => ("tablename", "tableowner"),
                "v" => ("viewname", "viewowner"),
                _ => ("matviewname", "matviewowner"),
            };
            b(
                &[
                    ("schemaname", Text),
                    (name_col, Text),
                    (owner_col, Text),
                    ("definition", Text),
                    ("hasindexes", Bool),
                    ("ispopulated", Bool),
                ],
                rows,
            )?
        }
        "pg_stat_user_tables" | "pg_statio_user_tables" => {
            let rows = relations
                .iter()
                .map(|r| {
                    vec![
                        I(relation_oid(r)),
                        t("public"),
                        t(&r.name),
                        I(r.storage.row_count() as i64),
                        I(0),
                    ]
                })
                .collect();
            b(
                &[
                    ("relid", Oid),
                    ("schemaname", Text),
                    ("relname", Text),
                    ("n_live_tup", Oid),
                    ("n_dead_tup", Oid),
                ],
                rows,
            )?
        }
        other if ALWAYS_EMPTY.contains(&other) => empty_table(other)?,
        _ => return Ok(None),
    }))
}

/// Settings `pg_settings`, `current_setting` and `SHOW` agree on.
pub const SETTINGS: &[(&str, &str)] = &[
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("search_path", "\"$user\", public"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("max_index_keys", "32"),
    ("max_identifier_length", "63"),
    ("default_transaction_isolation", "read committed"),
    ("transaction_isolation", "read committed"),
    ("default_transaction_read_only", "off"),
    ("default_table_access_method", "heap"),
    ("lc_collate", "C.UTF-8"),
    ("lc_ctype", "C.UTF-8"),
    ("block_size", "8192"),
];

/// The columns of the catalogs eddy keeps empty.
fn empty_table(name: &str) -> Result<RecordBatch> {
    let cols: &[(&str, Ty)] = match name {
        "pg_attrdef" => &[
            ("oid", Oid),
            ("adrelid", Oid),
            ("adnum", Int2),
            ("adbin", Text),
        ],
        "pg_description" => &[
            ("objoid", Oid),
            ("classoid", Oid),
            ("objsubid", Int4),
            ("description", Text),
        ],
        "pg_shdescription" => &[("objoid", Oid), ("classoid", Oid), ("description", Text)],
        "pg_policy" => &[
            ("oid", Oid),
            ("polname", Text),
            ("polrelid", Oid),
            ("polcmd", Text),
            ("polpermissive", Bool),
            ("polroles", OidArray),
            ("polqual", Text),
            ("polwithcheck", Text),
        ],
        "pg_statistic_ext" => &[
            ("oid", Oid),
            ("stxrelid", Oid),
            ("stxname", Text),
            ("stxnamespace", Oid),
            ("stxowner", Oid),
            ("stxstattarget", Int4),
            ("stxkeys", Int2Array),
            ("stxkind", TextArray),
        ],
        "pg_publication" => &[
            ("oid", Oid),
            ("pubname", Text),
            ("pubowner", Oid),
            ("puballtables", Bool),
            ("pubinsert", Bool),
            ("pubupdate", Bool),
            ("pubdelete", Bool),
            ("pubtruncate", Bool),
            ("pubviaroot", Bool),
        ],
        "pg_publication_namespace" => &[("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid)],
        "pg_publication_rel" => &[
            ("oid", Oid),
            ("prpubid", Oid),
            ("prrelid", Oid),
            ("prqual", Text),
            ("prattrs", Int2Array),
        ],
        "pg_inherits" => &[
            ("inhrelid", Oid),
            ("inhparent", Oid),
            ("inhseqno", Int4),
            ("inhdetachpending", Bool),
        ],
        "pg_rewrite" => &[
            ("oid", Oid),
            ("rulename", Text),
            ("ev_class", Oid),
            ("ev_type", Text),
            ("ev_enabled", Text),
            ("is_instead", Bool),
            ("ev_qual", Text),
            ("ev_action", Text),
        ],
        "pg_trigger" => &[
            ("oid", Oid),
            ("tgrelid", Oid),
            ("tgparentid", Oid),
            ("tgname", Text),
            ("tgfoid", Oid),
            ("tgtype", Int2),
            ("tgenabled", Text),
            ("tgisinternal", Bool),
            ("tgconstrrelid", Oid),
            ("tgconstrindid", Oid),
            ("tgconstraint", Oid),
        ],
        "pg_sequence" => &[
            ("seqrelid", Oid),
            ("seqtypid", Oid),
            ("seqstart", Oid),
            ("seqincrement", Oid),
            ("seqmax", Oid),
            ("seqmin", Oid),
            ("seqcache", Oid),
            ("seqcycle", Bool),
        ],
        "pg_collation" => &[
            ("oid", Oid),
            ("collname", Text),
            ("collnamespace", Oid),
            ("collowner", Oid),
            ("collprovider", Text),
            ("collisdeterministic", Bool),
            ("collencoding", Int4),
            ("collcollate", Text),
            ("collctype", Text),
        ],
        "pg_enum" => &[
            ("oid", Oid),
            ("enumtypid", Oid),
            ("enumsortorder", Float4),
            ("enumlabel", Text),
        ],
        "pg_auth_members" => &[
            ("roleid", Oid),
            ("member", Oid),
            ("grantor", Oid),
            ("admin_option", Bool),
        ],
        "pg_depend" => &[
            ("classid", Oid),
            ("objid", Oid),
            ("objsubid", Int4),
            ("refclassid", Oid),
            ("refobjid", Oid),
            ("refobjsubid", Int4),
            ("deptype", Text),
        ],
        "pg_extension" => &[
            ("oid", Oid),
            ("extname", Text),
            ("extowner", Oid),
            ("extnamespace", Oid),
            ("extrelocatable", Bool),
            ("extversion", Text),
            ("extconfig", OidArray),
            ("extcondition", TextArray),
        ],
        "pg_proc" => &[
            ("oid", Oid),
            ("proname", Text),
            ("pronamespace", Oid),
            ("proowner", Oid),
            ("prolang", Oid),
            ("procost", Float4),
            ("prorows", Float4),
            ("provariadic", Oid),
            ("prosupport", Text),
            ("prokind", Text),
            ("prosecdef", Bool),
            ("proleakproof", Bool),
            ("proisstrict", Bool),
            ("proretset", Bool),
            ("provolatile", Text),
            ("proparallel", Text),
            ("pronargs", Int2),
            ("pronargdefaults", Int2),
            ("prorettype", Oid),
            ("proargtypes", OidArray),
            ("proallargtypes", OidArray),
            ("proargmodes", TextArray),
            ("proargnames", TextArray),
            ("proargdefaults", Text),
            ("prosrc", Text),
            ("probin", Text),
            ("proconfig", TextArray),
            ("proacl", TextArray),
        ],
        "pg_aggregate" => &[("aggfnoid", Oid), ("aggkind", Text), ("aggtranstype", Oid)],
        "pg_foreign_table" => &[
            ("ftrelid", Oid),
            ("ftserver", Oid),
            ("ftoptions", TextArray),
        ],
        "pg_partitioned_table" => &[("partrelid", Oid), ("partstrat", Text), ("partnatts", Int2)],
        "pg_stat_activity" => &[
            ("datid", Oid),
            ("datname", Text),
            ("pid", Int4),
            ("usesysid", Oid),
            ("usename", Text),
            ("application_name", Text),
            ("client_addr", Text),
            ("backend_start", Timestamptz),
            ("query_start", Timestamptz),
            ("state", Text),
            ("query", Text),
        ],
        "pg_event_trigger" => &[("oid", Oid), ("evtname", Text), ("evtevent", Text)],
        "pg_opclass" => &[
            ("oid", Oid),
            ("opcmethod", Oid),
            ("opcname", Text),
            ("opcnamespace", Oid),
            ("opcowner", Oid),
            ("opcfamily", Oid),
            ("opcintype", Oid),
            ("opcdefault", Bool),
            ("opckeytype", Oid),
        ],
        "pg_range" => &[
            ("rngtypid", Oid),
            ("rngsubtype", Oid),
            ("rngmultitypid", Oid),
        ],
        "pg_conversion" => &[("oid", Oid), ("conname", Text), ("connamespace", Oid)],
        "pg_cast" => &[
            ("oid", Oid),
            ("castsource", Oid),
            ("casttarget", Oid),
            ("castfunc", Oid),
            ("castcontext", Text),
            ("castmethod", Text),
        ],
        "pg_operator" => &[("oid", Oid), ("oprname", Text), ("oprnamespace", Oid)],
        _ => &[],
    };
    build(cols, vec![])
}

/// The rows of `information_schema.<name>`. Materialized views are left out of
/// `tables`/`columns`, as in Postgres (tools find them through `pg_class`).
pub fn information_schema_table(name: &str, all: &[Relation]) -> Result<Option<RecordBatch>> {
    let relations = &listed(all);
    let in_info = |r: &&&Relation| relkind(r) != "m";
    Ok(Some(match name {
        "tables" => {
            let rows = relations
                .iter()
                .filter(in_info)
                .map(|r| {
                    vec![
                        t(DATABASE),
                        t("public"),
                        t(&r.name),
                        t(if relkind(r) == "v" {
                            "VIEW"
                        } else {
                            "BASE TABLE"
                        }),
                        N,
                        N,
                        N,
                        N,
                        N,
                        t(if r.kind.is_base() { "YES" } else { "NO" }),
                        t("NO"),
                        N,
                    ]
                })
                .collect();
            build(
                &[
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("table_type", Text),
                    ("self_referencing_column_name", Text),
                    ("reference_generation", Text),
                    ("user_defined_type_catalog", Text),
                    ("user_defined_type_schema", Text),
                    ("user_defined_type_name", Text),
                    ("is_insertable_into", Text),
                    ("is_typed", Text),
                    ("commit_action", Text),
                ],
                rows,
            )?
        }
        "columns" => {
            let mut rows = Vec::new();
            for r in relations.iter().filter(in_info) {
                for (num, name, oid, typmod, nn) in columns(r) {
                    let ty = types::by_oid(oid);
                    let udt = ty.map(|t| t.name).unwrap_or("text");
                    let (precision, radix, scale) = match oid {
                        21 => (I(16), I(2), I(0)),
                        23 => (I(32), I(2), I(0)),
                        20 => (I(64), I(2), I(0)),
                        700 => (I(24), I(2), N),
                        701 => (I(53), I(2), N),
                        1700 if typmod >= 0 => (
                            I(((typmod - 4) >> 16) as i64),
                            I(10),
                            I(((typmod - 4) & 0xffff) as i64),
                        ),
                        1700 => (N, I(10), N),
                        _ => (N, N, N),
                    };
                    let char_len = if (oid == 1043 || oid == 1042) && typmod >= 0 {
                        I((typmod - 4) as i64)
                    } else {
                        N
                    };
                    let datetime = if [1082, 1083, 1114, 1184, 1186].contains(&oid) {
                        I(if oid == 1082 { 0 } else { 6 })
                    } else {
                        N
                    };
                    rows.push(vec![
                        t(DATABASE),
                        t("public"),
                        t(&r.name),
                        t(&name),
                        I(num as i64),
                        N,
                        t(if nn { "NO" } else { "YES" }),
                        t(types::information_schema_type(oid)),
                        char_len,
                        precision,
                        radix,
                        scale,
                        datetime,
                        N,
                        t(DATABASE),
                        t("pg_catalog"),
                        t(udt),
                        t("NO"),
                        t("NEVER"),
                        t(if r.kind.is_base() { "YES" } else { "NO" }),
                    ]);
                }
            }
            build(
                &[
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("column_name", Text),
                    ("ordinal_position", Int4),
                    ("column_default", Text),
                    ("is_nullable", Text),
                    ("data_type", Text),
                    ("character_maximum_length", Int4),
                    ("numeric_precision", Int4),
                    ("numeric_precision_radix", Int4),
                    ("numeric_scale", Int4),
                    ("datetime_precision", Int4),
                    ("interval_type", Text),
                    ("udt_catalog", Text),
                    ("udt_schema", Text),
                    ("udt_name", Text),
                    ("is_identity", Text),
                    ("is_generated", Text),
                    ("is_updatable", Text),
                ],
                rows,
            )?
        }
        "schemata" => build(
            &[
                ("catalog_name", Text),
                ("schema_name", Text),
                ("schema_owner", Text),
                ("default_character_set_catalog", Text),
                ("default_character_set_schema", Text),
                ("default_character_set_name", Text),
                ("sql_path", Text),
            ],
            ["pg_catalog", "public", "information_schema"]
                .iter()
                .map(|s| vec![t(DATABASE), t(*s), t(OWNER), N, N, N, N])
                .collect(),
        )?,
        "views" => build(
            &[
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("view_definition", Text),
                ("check_option", Text),
                ("is_updatable", Text),
                ("is_insertable_into", Text),
            ],
            relations
                .iter()
                .filter(|r| relkind(r) == "v")
                .map(|r| {
                    vec![
                        t(DATABASE),
                        t("public"),
                        t(&r.name),
                        match &r.definition {
                            Some(d) => t(d),
                            None => N,
                        },
                        t("NONE"),
                        t("NO"),
                        t("NO"),
                    ]
                })
                .collect(),
        )?,
        "table_constraints" => build(
            &[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("table_catalog", Text),
                ("table_schema", Text),
                ("table_name", Text),
                ("constraint_type", Text),
                ("is_deferrable", Text),
                ("initially_deferred", Text),
                ("enforced", Text),
                ("nulls_distinct", Text),
            ],
            relations
                .iter()
                .filter(|r| !r.primary_key.is_empty())
                .map(|r| {
                    vec![
                        t(DATABASE),
                        t("public"),
                        t(format!("{}_pkey", r.name)),
                        t(DATABASE),
                        t("public"),
                        t(&r.name),
                        t("PRIMARY KEY"),
                        t("NO"),
                        t("NO"),
                        t("YES"),
                        N,
                    ]
                })
                .collect(),
        )?,
        "key_column_usage" => {
            let mut rows = Vec::new();
            for r in relations.iter().filter(|r| !r.primary_key.is_empty()) {
                for (i, c) in pk_names(r).into_iter().enumerate() {
                    rows.push(vec![
                        t(DATABASE),
                        t("public"),
                        t(format!("{}_pkey", r.name)),
                        t(DATABASE),
                        t("public"),
                        t(&r.name),
                        t(c),
                        I(i as i64 + 1),
                        N,
                    ]);
                }
            }
            build(
                &[
                    ("constraint_catalog", Text),
                    ("constraint_schema", Text),
                    ("constraint_name", Text),
                    ("table_catalog", Text),
                    ("table_schema", Text),
                    ("table_name", Text),
                    ("column_name", Text),
                    ("ordinal_position", Int4),
                    ("position_in_unique_constraint", Int4),
                ],
                rows,
            )?
        }
        "referential_constraints" => build(
            &[
                ("constraint_catalog", Text),
                ("constraint_schema", Text),
                ("constraint_name", Text),
                ("unique_constraint_name", Text),
            ],
            vec![],
        )?,
        "routines" | "parameters" => build(
            &[
                ("specific_catalog", Text),
                ("specific_schema", Text),
                ("specific_name", Text),
                ("routine_name", Text),
                ("data_type", Text),
            ],
            vec![],
        )?,
        _ => return Ok(None),
    }))
}
