//! The slice of `pg_catalog` that psql's relation listings need (`\d`, `\dt`, `\dv`, `\dm`):
//! `pg_class`, `pg_namespace` and `pg_am`, built from the catalog when a query reads them,
//! plus `pg_get_userbyid` and `pg_table_is_visible`. Streams and tables list as tables
//! (relkind 'r'), materialized views as 'm'. The full emulation for drivers and BI tools is
//! issue 6.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::{Relation, RelationKind};
use crate::error::Result;

pub const PUBLIC_NAMESPACE_OID: i64 = 2200;
pub const PG_CATALOG_NAMESPACE_OID: i64 = 11;
/// Relation OIDs start above Postgres' reserved range.
pub const RELATION_OID_BASE: i64 = 16384;

pub const TABLES: &[&str] = &["pg_class", "pg_namespace", "pg_am"];

pub fn relkind(kind: RelationKind) -> &'static str {
    match kind {
        RelationKind::MaterializedView => "m",
        _ => "r",
    }
}

pub fn table(name: &str, relations: &[Relation]) -> Result<Option<RecordBatch>> {
    let text = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let int = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let batch = |fields: Vec<(&str, DataType)>, cols: Vec<ArrayRef>| -> Result<RecordBatch> {
        let schema = Schema::new(
            fields
                .into_iter()
                .map(|(n, t)| Field::new(n, t, true))
                .collect::<Vec<_>>(),
        );
        Ok(RecordBatch::try_new(Arc::new(schema), cols)?)
    };
    Ok(Some(match name {
        "pg_class" => batch(
            vec![
                ("oid", DataType::Int64),
                ("relname", DataType::Utf8),
                ("relnamespace", DataType::Int64),
                ("relkind", DataType::Utf8),
                ("relowner", DataType::Int64),
                ("relam", DataType::Int64),
            ],
            vec![
                int(relations
                    .iter()
                    .map(|r| RELATION_OID_BASE + r.id as i64)
                    .collect()),
                text(relations.iter().map(|r| r.name.clone()).collect()),
                int(relations.iter().map(|_| PUBLIC_NAMESPACE_OID).collect()),
                text(
                    relations
                        .iter()
                        .map(|r| relkind(r.kind).to_string())
                        .collect(),
                ),
                int(relations.iter().map(|_| 10).collect()),
                int(relations.iter().map(|_| 2).collect()),
            ],
        )?,
        "pg_namespace" => batch(
            vec![("oid", DataType::Int64), ("nspname", DataType::Utf8)],
            vec![
                int(vec![PG_CATALOG_NAMESPACE_OID, PUBLIC_NAMESPACE_OID]),
                text(vec!["pg_catalog".into(), "public".into()]),
            ],
        )?,
        "pg_am" => batch(
            vec![("oid", DataType::Int64), ("amname", DataType::Utf8)],
            vec![int(vec![2]), text(vec!["heap".into()])],
        )?,
        _ => return Ok(None),
    }))
}
