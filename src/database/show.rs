//! SHOW, DESCRIBE and EXPLAIN: what the catalog holds and how views are computed.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::Query;

use super::{Database, Output, Session, SERVER_VERSION};
use crate::catalog::RelationKind;
use crate::error::{EddyError, Result};
use crate::sql::types::pg_type_name;
use crate::sql::{EddyStatement, ShowWhat};

enum Col {
    Text(Vec<Option<String>>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

fn rows(cols: Vec<(&str, Col)>) -> Result<Output> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, c)| {
            let t = match c {
                Col::Text(_) => DataType::Utf8,
                Col::Int(_) => DataType::Int64,
                Col::Bool(_) => DataType::Boolean,
            };
            Field::new(*n, t, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = cols
        .into_iter()
        .map(|(_, c)| match c {
            Col::Text(v) => Arc::new(StringArray::from(v)) as ArrayRef,
            Col::Int(v) => Arc::new(Int64Array::from(v)) as ArrayRef,
            Col::Bool(v) => Arc::new(BooleanArray::from(v)) as ArrayRef,
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Output::Rows {
        schema,
        batches: vec![batch],
    })
}

fn lines(header: &str, text: Vec<String>) -> Result<Output> {
    rows(vec![(
        header,
        Col::Text(text.into_iter().map(Some).collect()),
    )])
}

/// Settings a client may SHOW, with Postgres-compatible values.
pub fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "server_version" => SERVER_VERSION,
        "server_version_num" => "150000",
        "server_encoding" | "client_encoding" => "UTF8",
        "standard_conforming_strings" => "on",
        "integer_datetimes" => "on",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "timezone" | "time zone" => "UTC",
        "transaction_isolation"
        | "transaction isolation level"
        | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "off",
        "search_path" => "public",
        "max_identifier_length" => "63",
        "max_index_keys" => "32",
        "application_name" => "",
        "is_superuser" => "on",
        "lc_collate" | "lc_ctype" => "C.UTF-8",
        _ => return None,
    })
}

impl Database {
    pub(super) fn show(&self, session: &Session, what: &ShowWhat) -> Result<Output> {
        let inner = self.lock();
        let relations = &inner.relations;
        let pick = |kinds: &'static [RelationKind]| {
            relations.iter().filter(move |r| kinds.contains(&r.kind))
        };
        match what {
            ShowWhat::Streams => {
                let rs: Vec<_> =
                    pick(&[RelationKind::Stream, RelationKind::DerivedStream]).collect();
                rows(vec![
                    (
                        "name",
                        Col::Text(rs.iter().map(|r| Some(r.name.clone())).collect()),
                    ),
                    (
                        "type",
                        Col::Text(rs.iter().map(|r| Some(kind_label(r.kind).into())).collect()),
                    ),
                    (
                        "rows",
                        Col::Int(rs.iter().map(|r| r.storage.row_count() as i64).collect()),
                    ),
                ])
            }
            ShowWhat::Tables => {
                let rs: Vec<_> = pick(&[RelationKind::Table, RelationKind::DerivedTable]).collect();
                rows(vec![
                    (
                        "name",
                        Col::Text(rs.iter().map(|r| Some(r.name.clone())).collect()),
                    ),
                    (
                        "type",
                        Col::Text(rs.iter().map(|r| Some(kind_label(r.kind).into())).collect()),
                    ),
                    (
                        "primary_key",
                        Col::Text(
                            rs.iter()
                                .map(|r| {
                                    (!r.primary_key.is_empty()).then(|| {
                                        r.primary_key
                                            .iter()
                                            .map(|i| r.schema.field(*i).name().clone())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    })
                                })
                                .collect(),
                        ),
                    ),
                    (
                        "rows",
                        Col::Int(rs.iter().map(|r| r.storage.row_count() as i64).collect()),
                    ),
                ])
            }
            ShowWhat::MaterializedViews => {
                let rs: Vec<_> = pick(&[RelationKind::MaterializedView]).collect();
                rows(vec![
                    (
                        "name",
                        Col::Text(rs.iter().map(|r| Some(r.name.clone())).collect()),
                    ),
                    (
                        "definition",
                        Col::Text(rs.iter().map(|r| r.definition.clone()).collect()),
                    ),
                    (
                        "rows",
                        Col::Int(rs.iter().map(|r| r.storage.row_count() as i64).collect()),
                    ),
                ])
            }
            ShowWhat::Queries => {
                let rs: Vec<_> = inner
                    .relations
                    .iter()
                    .filter(|r| r.dataflow.is_some())
                    .collect();
                rows(vec![
                    (
                        "query_id",
                        Col::Text(rs.iter().map(|r| r.query_id()).collect()),
                    ),
                    (
                        "sink",
                        Col::Text(rs.iter().map(|r| Some(r.name.clone())).collect()),
                    ),
                    (
                        "sink_type",
                        Col::Text(rs.iter().map(|r| Some(kind_label(r.kind).into())).collect()),
                    ),
                    (
                        "status",
                        Col::Text(rs.iter().map(|_| Some("RUNNING".into())).collect()),
                    ),
                    (
                        "state_rows",
                        Col::Int(
                            rs.iter()
                                .map(|r| {
                                    r.dataflow.as_ref().map(|f| f.state_rows()).unwrap_or(0) as i64
                                })
                                .collect(),
                        ),
                    ),
                    (
                        "sources",
                        Col::Text(rs.iter().map(|r| Some(r.depends_on.join(", "))).collect()),
                    ),
                    (
                        "query",
                        Col::Text(rs.iter().map(|r| r.definition.clone()).collect()),
                    ),
                ])
            }
            ShowWhat::Setting(name) => {
                let key = name.trim_matches('"').to_lowercase();
                if key == "all" {
                    return Err(EddyError::unsupported("SHOW ALL"));
                }
                let value = session
                    .settings
                    .get(&key)
                    .cloned()
                    .or_else(|| default_setting(&key).map(str::to_string))
                    .ok_or_else(|| {
                        EddyError::query(
                            "42704",
                            format!("unrecognized configuration parameter \"{key}\""),
                        )
                    })?;
                let column = match key.as_str() {
                    "transaction isolation level" => "transaction_isolation".to_string(),
                    "time zone" | "timezone" => "TimeZone".to_string(),
                    other => other.to_string(),
                };
                rows(vec![(column.as_str(), Col::Text(vec![Some(value)]))])
            }
        }
    }

    pub(super) fn describe_relation(&self, name: &str) -> Result<Output> {
        let inner = self.lock();
        let rel = inner.require(name)?;
        // Hidden columns (a stream's implicit rowtime) are not part of the relation's shape.
        let shown: Vec<usize> = (0..rel.schema.fields().len())
            .filter(|i| !rel.hidden.contains(i))
            .collect();
        let field = |i: usize| rel.schema.field(i);
        rows(vec![
            (
                "column_name",
                Col::Text(
                    shown
                        .iter()
                        .map(|&i| Some(field(i).name().clone()))
                        .collect(),
                ),
            ),
            (
                "data_type",
                Col::Text(
                    shown
                        .iter()
                        .map(|&i| Some(pg_type_name(field(i).data_type())))
                        .collect(),
                ),
            ),
            (
                "nullable",
                Col::Bool(shown.iter().map(|i| !rel.not_null.contains(i)).collect()),
            ),
            (
                "primary_key",
                Col::Bool(shown.iter().map(|i| rel.primary_key.contains(i)).collect()),
            ),
        ])
    }

    pub(super) fn explain_relation(&self, name: &str) -> Result<Output> {
        let inner = self.lock();
        let rel = inner.require(name)?;
        let mut text = vec![format!("{} {}", kind_label(rel.kind), rel.name)];
        match &rel.dataflow {
            Some(flow) => {
                if let Some(id) = rel.query_id() {
                    text.push(format!("query id: {id}"));
                }
                text.push(format!(
                    "maintained incrementally; rows: {}, state bytes: ~{}",
                    rel.storage.row_count(),
                    rel.storage.approx_bytes()
                ));
                text.extend(flow.explain().lines().map(|l| format!("  {l}")));
            }
            None => text.push(format!(
                "base {}; rows: {}",
                rel.kind.noun(),
                rel.storage.row_count()
            )),
        }
        lines("QUERY PLAN", text)
    }

    /// EXPLAIN ANALYZE: a view's operator tree with what each operator did so far in
    /// committed epochs (views run all the time, so there is nothing to run once).
    pub(super) fn explain_analyze(&self, name: &str) -> Result<Output> {
        let inner = self.lock();
        let rel = inner.require(name)?;
        let Some(flow) = &rel.dataflow else {
            return Err(EddyError::query(
                "42809",
                format!(
                    "EXPLAIN ANALYZE {name}: {name} is a base {}, which runs no operators (EXPLAIN {name} describes it)",
                    rel.kind.noun()
                ),
            ));
        };
        let since = flow
            .counters
            .last_input_at
            .map_or("never".to_string(), |t| {
                let ago = std::time::SystemTime::now()
                    .duration_since(t)
                    .unwrap_or_default();
                format!("{:.3} s ago", ago.as_secs_f64())
            });
        let text = vec![
            format!("{} {}", kind_label(rel.kind), rel.name),
            format!(
                "epochs: {}, rows in: {}, rows out: {}, rows: {}, last input: {since}",
                flow.epoch,
                flow.counters.rows_in,
                flow.counters.rows_out,
                rel.storage.row_count()
            ),
        ];
        let text = text
            .into_iter()
            .chain(flow.explain_analyze().lines().map(|l| format!("  {l}")))
            .collect();
        lines("QUERY PLAN", text)
    }

    pub(super) fn explain_create(&self, stmt: &EddyStatement) -> Result<Output> {
        let EddyStatement::CreateView { name, .. } = stmt else {
            return Err(EddyError::internal("not a CREATE ... AS"));
        };
        let flow = self.build_view(stmt)?;
        let mut text = vec![format!("dataflow for {name}")];
        text.extend(flow.explain().lines().map(|l| format!("  {l}")));
        lines("QUERY PLAN", text)
    }

    pub(super) async fn explain_query(&self, q: &Query) -> Result<Output> {
        let (ctx, plan) = self.plan_query(q, false).await?;
        let df = ctx.execute_logical_plan(plan).await?;
        let optimized = df.into_optimized_plan()?;
        let text = optimized.display_indent().to_string();
        lines("QUERY PLAN", text.lines().map(str::to_string).collect())
    }
}

fn kind_label(k: RelationKind) -> &'static str {
    match k {
        RelationKind::Stream => "STREAM",
        RelationKind::DerivedStream => "STREAM (query)",
        RelationKind::Table => "TABLE",
        RelationKind::DerivedTable => "TABLE (query)",
        RelationKind::MaterializedView => "MATERIALIZED VIEW",
    }
}
