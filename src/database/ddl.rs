//! CREATE and DROP: catalog changes. Each is logged as its statement text; replaying the
//! text rebuilds the same relation (a view is backfilled from its inputs as they were at
//! that point of the log, so replay gives the same contents).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{Query, SqlOption};

use super::backfill::{BackfillInput, NoticeSender, Reporting};
use super::{Database, Inner};
use crate::catalog::{EventTime, Relation, RelationKind};
use crate::dataflow::Dataflow;
use crate::error::{EddyError, Result};
use crate::plan::Lowering;
use crate::sql::parser::{ident_name, is_not_null, primary_key, DropKind};

use crate::sql::{EddyStatement, Emit, ViewKind};
use crate::state::LogEntry;
use crate::view::arrangement::KeyedArrangement;
use crate::view::{Arrangement, Storage};

impl Database {
    /// Apply a CREATE/DROP. With `log`, the change is made durable before it is visible.
    /// The view behind a `SUBSCRIBE (SELECT ...)`: maintained like any view, never logged
    /// (it does not outlive its subscription, nor a restart), dropped once its subscriber
    /// is gone.
    pub(super) fn create_transient_view(
        &self,
        query: datafusion::sql::sqlparser::ast::Query,
    ) -> Result<String> {
        use std::sync::atomic::Ordering;
        let n = TRANSIENT_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{TRANSIENT_PREFIX}{n}");
        let sql = format!("CREATE MATERIALIZED VIEW {name} AS {query}");
        let stmt = EddyStatement::CreateView {
            name: name.clone(),
            kind: ViewKind::MaterializedView,
            query: Box::new(query),
            emit: None,
            options: vec![],
            if_not_exists: false,
            window: None,
        };
        self.apply_ddl(&stmt, &sql, false)?;
        Ok(name)
    }

    pub(super) fn apply_ddl(&self, stmt: &EddyStatement, sql: &str, log: bool) -> Result<String> {
        self.apply_ddl_inner(stmt, sql, log, false, None)
    }

    /// `apply_ddl`, sending a view's backfill progress to `notices` (the client's session).
    pub(super) fn apply_ddl_reporting(
        &self,
        stmt: &EddyStatement,
        sql: &str,
        notices: &NoticeSender,
    ) -> Result<String> {
        self.apply_ddl_inner(stmt, sql, true, false, Some(notices))
    }

    /// `source_streams`: the statement may drop streams a generated source feeds (it is
    /// that source's DROP SOURCE).
    pub(super) fn apply_ddl_inner(
        &self,
        stmt: &EddyStatement,
        sql: &str,
        log: bool,
        source_streams: bool,
        notices: Option<&NoticeSender>,
    ) -> Result<String> {
        match stmt {
            EddyStatement::CreateSource {
                name,
                is_stream,
                columns,
                constraints,
                options,
                if_not_exists,
                watermark,
            } => {
                if let Some(connector) = super::sources::generated_connector(options) {
                    return self.create_generated_source(stmt, sql, log, connector);
                }
                if self.lock().get(name).is_some() {
                    if *if_not_exists {
                        return Ok(tag_create(*is_stream));
                    }
                    return Err(EddyError::DuplicateRelation(name.clone()));
                }
                let source_options = check_source_options(options, *is_stream)?;
                let kafka = source_options.kafka.clone();
                let mut fields = Vec::new();
                let mut not_null = Vec::new();
                for (i, c) in columns.iter().enumerate() {
                    let n = ident_name(&c.name);
                    if fields.iter().any(|f: &Field| f.name() == &n) {
                        return Err(EddyError::query(
                            "42701",
                            format!("column \"{n}\" specified more than once"),
                        ));
                    }
                    fields.push(Field::new(
                        n,
                        crate::sql::types::arrow_type(&c.data_type)?,
                        true,
                    ));
                    if is_not_null(c) {
                        not_null.push(i);
                    }
                }
                // A stream without a declared event time gets ksqlDB's ROWTIME: its
                // insertion time, hidden from SELECT *.
                // A Kafka-backed stream or table always has it: the record timestamp.
                let implicit_rowtime =
                    ((*is_stream && watermark.is_none() && source_options.timestamp.is_none())
                        || kafka.is_some())
                        && !fields.iter().any(|f| f.name() == ROWTIME);
                let char_limits: Vec<(usize, u64)> = columns
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        crate::sql::types::char_limit(&c.data_type).map(|n| (i, n))
                    })
                    .collect();
                let mut hidden = Vec::new();
                if implicit_rowtime {
                    hidden.push(fields.len());
                    fields.push(Field::new(
                        ROWTIME,
                        DataType::Timestamp(
                            datafusion::arrow::datatypes::TimeUnit::Microsecond,
                            None,
                        ),
                        true,
                    ));
                }
                if kafka.is_some() {
                    super::kafka::add_pseudo_columns(&mut fields, &mut hidden);
                }
                let schema = Arc::new(Schema::new(fields));
                for c in columns {
                    for o in &c.options {
                        use datafusion::sql::sqlparser::ast::ColumnOption as O;
                        match &o.option {
                            O::Default(_) => {
                                return Err(EddyError::unsupported(format!(
                                    "DEFAULT for column \"{}\" is not supported yet",
                                    ident_name(&c.name)
                                )))
                            }
                            O::Check(_) | O::ForeignKey(_) | O::Unique(_) | O::Generated { .. } => {
                                return Err(EddyError::unsupported(format!(
                                    "column constraint {} is not supported",
                                    o.option
                                )))
                            }
                            _ => {}
                        }
                    }
                }
                let declared_keys = columns
                    .iter()
                    .filter(|c| {
                        c.options.iter().any(|o| {
                            matches!(
                                o.option,
                                datafusion::sql::sqlparser::ast::ColumnOption::PrimaryKey(_)
                            )
                        })
                    })
                    .count()
                    + constraints
                        .iter()
                        .filter(|c| {
                            matches!(
                                c,
                                datafusion::sql::sqlparser::ast::TableConstraint::PrimaryKey(_)
                            )
                        })
                        .count();
                for c in constraints {
                    if !matches!(
                        c,
                        datafusion::sql::sqlparser::ast::TableConstraint::PrimaryKey(_)
                    ) {
                        return Err(EddyError::unsupported(format!(
                            "table constraint {c} is not supported; only PRIMARY KEY is"
                        )));
                    }
                }
                if declared_keys > 1 {
                    return Err(EddyError::query(
                        "42P16",
                        format!("multiple primary keys for table \"{name}\" are not allowed"),
                    ));
                }
                let mut key = Vec::new();
                for k in primary_key(columns, constraints) {
                    let idx = schema.index_of(&k).map_err(|_| {
                        EddyError::UnknownColumn(format!(
                            "column \"{k}\" named in key does not exist"
                        ))
                    })?;
                    key.push(idx);
                }
                if let Some(k) = &kafka {
                    super::kafka::check_source_shape(name, *is_stream, k, &key)?;
                }
                if *is_stream && !key.is_empty() && kafka.is_none() {
                    return Err(EddyError::query(
                        "42P16",
                        format!("stream {name} cannot have a PRIMARY KEY: streams are append-only; use CREATE TABLE for keyed upserts"),
                    ));
                }
                let storage = if *is_stream {
                    Storage::log(schema.clone())
                } else if key.is_empty() {
                    Storage::Multiset(Arrangement::try_new(schema.clone())?)
                } else {
                    not_null.extend(key.iter().copied());
                    Storage::Keyed(KeyedArrangement::try_new(schema.clone(), key.clone())?)
                };
                let time_column = match (watermark, &source_options.timestamp) {
                    (Some(_), Some(_)) => {
                        return Err(EddyError::syntax("syntax error: give the event time either as WATERMARK FOR or as WITH (TIMESTAMP=...), not both"))
                    }
                    (Some((c, delay)), None) => Some((c.clone(), *delay)),
                    (None, Some(c)) => Some((c.clone(), 0)),
                    (None, None) if implicit_rowtime && *is_stream => {
                        Some((ROWTIME.to_string(), 0))
                    }
                    (None, None) => None,
                };
                let event_time = match time_column {
                    Some((c, delay)) => {
                        let idx = schema.index_of(&c).map_err(|_| {
                            EddyError::UnknownColumn(format!(
                                "event-time column \"{c}\" does not exist in {name}"
                            ))
                        })?;
                        let t = schema.field(idx).data_type();
                        if !matches!(t, DataType::Timestamp(_, _) | DataType::Int64) {
                            return Err(EddyError::query(
                                "42804",
                                format!("event-time column \"{c}\" must be TIMESTAMP, TIMESTAMPTZ or BIGINT (epoch milliseconds), not {}", crate::sql::types::pg_type_name(t)),
                            ));
                        }
                        Some(EventTime {
                            column: idx,
                            delay,
                            retention: source_options.retention,
                            max_seen: None,
                        })
                    }
                    None => {
                        if source_options.retention.is_some() {
                            return Err(EddyError::query(
                                "22023",
                                "RETENTION needs an event-time column (WATERMARK FOR or TIMESTAMP)",
                            ));
                        }
                        None
                    }
                };
                if let (Some(k), true) = (&kafka, log) {
                    // Checked (and created with PARTITIONS) before anything is logged.
                    self.kafka_ensure_topic(k.brokers.as_deref(), &k.topic, k.partitions, false)?;
                }
                let mut inner = self.lock();
                if log {
                    self.log(&[LogEntry::Ddl(sql.to_string())])?;
                }
                let id = inner.next_id;
                inner.next_id += 1;
                inner.relations.push(Relation {
                    id,
                    name: name.clone(),
                    kind: if *is_stream {
                        RelationKind::Stream
                    } else {
                        RelationKind::Table
                    },
                    schema,
                    primary_key: key,
                    not_null,
                    hidden,
                    char_limits,
                    definition: None,
                    create_sql: sql.to_string(),
                    depends_on: vec![],
                    storage,
                    dataflow: None,
                    event_time,
                    rejected_rows: 0,
                    watermark_from: None,
                    activity: Default::default(),
                });
                drop(inner);
                if let Some(k) = &kafka {
                    self.kafka.register_source(name, k);
                    if log {
                        if k.startup == crate::connectors::kafka::options::Startup::Latest {
                            if let Err(e) = self.kafka_pin_latest(name, k) {
                                // The source still starts at the end; only a restart before
                                // its first record would re-resolve "latest".
                                tracing::warn!(source = %name, error = %e, "could not pin the latest offsets");
                            }
                        }
                        self.kafka.start(name);
                    }
                }
                Ok(tag_create(*is_stream))
            }
            EddyStatement::CreateView {
                name,
                kind,
                query,
                if_not_exists,
                ..
            } => {
                let tag = match kind {
                    ViewKind::MaterializedView => "CREATE MATERIALIZED VIEW",
                    ViewKind::Table => "CREATE TABLE",
                    ViewKind::Stream => "CREATE STREAM",
                };
                let mut inner = self.lock();
                if inner.get(name).is_some() {
                    if *if_not_exists {
                        return Ok(tag.into());
                    }
                    return Err(EddyError::DuplicateRelation(name.clone()));
                }
                let flow = self.plan_view(&inner, stmt)?;
                let reads_kafka = flow
                    .sources
                    .iter()
                    .any(|s| super::kafka::reads_kafka(&inner, &self.kafka, s));
                let sink = super::kafka::view_sink(stmt, &flow, reads_kafka)?;
                let storage = view_storage(*kind, &flow.schema)?;
                // Transient views take ids of their own, so the ids (and OIDs) of logged
                // relations are the same after a restart.
                let transient = is_transient(name);
                let id = match name.strip_prefix(TRANSIENT_PREFIX) {
                    Some(n) if transient => TRANSIENT_ID_BASE + n.parse::<u64>().unwrap_or(0),
                    _ => inner.next_id,
                };
                let mut rel = Relation {
                    id,
                    name: name.clone(),
                    kind: match kind {
                        ViewKind::MaterializedView => RelationKind::MaterializedView,
                        ViewKind::Table => RelationKind::DerivedTable,
                        ViewKind::Stream => RelationKind::DerivedStream,
                    },
                    schema: flow.schema.clone(),
                    primary_key: vec![],
                    not_null: vec![],
                    hidden: vec![],
                    char_limits: vec![],
                    definition: Some(query.to_string()),
                    create_sql: sql.to_string(),
                    depends_on: flow.sources.clone(),
                    storage,
                    dataflow: Some(flow),
                    event_time: None,
                    rejected_rows: 0,
                    watermark_from: None,
                    activity: Default::default(),
                };
                inherit_event_time(&inner, &mut rel);
                let input = BackfillInput::read(&mut inner, &rel)?;
                // Stepped without the database lock (readers go on, and see the progress
                // in `eddy_progress`); the caller holds the writer lock, so no write
                // interleaves (see backfill.rs).
                drop(inner);
                let progress =
                    (!transient).then(|| self.metrics.backfill_started(name, input.rows_total()));
                input.run(
                    &mut rel,
                    Reporting {
                        chunk_rows: self.backfill_chunk_rows,
                        interval: self.progress_interval,
                        notices,
                        progress: progress.as_ref(),
                    },
                )?;
                drop(progress);
                inner = self.lock();
                if inner.get(name).is_some() {
                    return Err(EddyError::DuplicateRelation(name.clone()));
                }
                if let (Some(k), true) = (&sink, log) {
                    drop(inner);
                    self.kafka_ensure_topic(k.brokers.as_deref(), &k.topic, k.partitions, true)?;
                    inner = self.lock();
                    if inner.get(name).is_some() {
                        return Err(EddyError::DuplicateRelation(name.clone()));
                    }
                }
                if log {
                    self.log(&[LogEntry::Ddl(sql.to_string())])?;
                }
                if !transient {
                    inner.next_id += 1;
                }
                inner.relations.push(rel);
                drop(inner);
                if let Some(k) = &sink {
                    self.kafka.register_sink(name, k, name, sql);
                    if log {
                        self.kafka.start(name);
                    }
                }
                Ok(tag.into())
            }
            EddyStatement::Drop {
                kind,
                names,
                if_exists,
                cascade,
            } => {
                if *kind == DropKind::Source {
                    return self.drop_generated_source(names, *if_exists, *cascade, sql, log);
                }
                let mut inner = self.lock();
                let mut to_drop: Vec<String> = Vec::new();
                for name in names {
                    let Some(rel) = inner.get(name) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(EddyError::UnknownRelation(name.clone()));
                    };
                    if !source_streams {
                        if let Some(source) = Database::source_of_stream(&inner, name) {
                            return Err(EddyError::DependentObjects(format!(
                                "cannot drop stream {name}: source {source} feeds it; use DROP SOURCE {source}"
                            )));
                        }
                    }
                    check_drop_kind(*kind, rel)?;
                    let dependents = dependents_of(&inner, name);
                    let outside: Vec<&String> =
                        dependents.iter().filter(|d| !names.contains(d)).collect();
                    if !outside.is_empty() && !cascade {
                        return Err(EddyError::DependentObjects(format!(
                            "cannot drop {} {name} because other objects depend on it: {}; use DROP ... CASCADE to drop them too",
                            rel.kind.noun(),
                            outside.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        )));
                    }
                    to_drop.push(name.clone());
                    to_drop.extend(dependents);
                }
                if log && !to_drop.is_empty() {
                    self.log(&[LogEntry::Ddl(sql.to_string())])?;
                }
                inner.relations.retain(|r| !to_drop.contains(&r.name));
                for name in &to_drop {
                    self.kafka.forget(name);
                }
                for name in &to_drop {
                    if let Some(subs) = inner.subscribers.remove(name) {
                        crate::view::subscription::close(
                            subs,
                            &format!("relation \"{name}\" was dropped"),
                        );
                    }
                }
                Ok(match kind {
                    DropKind::Stream => "DROP STREAM",
                    DropKind::Table => "DROP TABLE",
                    DropKind::MaterializedView => "DROP MATERIALIZED VIEW",
                    DropKind::View => "DROP VIEW",
                    DropKind::Source => "DROP SOURCE",
                }
                .into())
            }
            EddyStatement::Sink(s) => self.apply_sink_ddl(s, sql, log),
            _ => Err(EddyError::internal("not a DDL statement")),
        }
    }

    /// Plan a view's query against the catalog (schemas only) and lower it to a dataflow.
    /// Window functions and a ksqlDB WINDOW clause are rewritten to plain SQL first.
    pub(super) fn plan_view(&self, inner: &Inner, stmt: &EddyStatement) -> Result<Dataflow> {
        let EddyStatement::CreateView {
            name,
            kind,
            query,
            emit,
            window,
            options,
            ..
        } = stmt
        else {
            return Err(EddyError::internal("not a CREATE ... AS"));
        };
        let (kind, emit, ksql_window) = (*kind, *emit, window.as_ref());
        let options = check_view_options(options)?;
        let mut query: Query = (**query).clone();
        inner.expand_hidden(&mut query);
        crate::sql::pg_compat::epoch_millis_comparisons(&mut query);
        let window = inner.rewrite_windows(&mut query, ksql_window)?;
        // The same Postgres literals, casts and operators as an ad-hoc query.
        crate::sql::pg_literals::rewrite(&mut query);
        let emit_final = emit == Some(Emit::Final);
        let window = without_watermark_check(inner, window, emit_final)?;
        if emit_final && window.is_none() {
            return Err(EddyError::unsupported(
                "EMIT FINAL needs a windowed aggregation (TUMBLE/HOP or WINDOW TUMBLING/HOPPING)",
            ));
        }
        // Planning needs only schemas: register empty tables for the relations it reads.
        let names = super::query::referenced_relations(&query);
        let schema = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
        for n in &names {
            if let Some(r) = inner.get(n) {
                let t = datafusion::catalog::MemTable::try_new(r.schema.clone(), vec![vec![]])?;
                datafusion::catalog::SchemaProvider::register_table(
                    schema.as_ref(),
                    n.clone(),
                    Arc::new(t),
                )?;
            }
        }
        let ctx = super::query::context_with_schema(&self.view_state, schema);
        let stmt = datafusion::sql::parser::Statement::Statement(Box::new(
            datafusion::sql::sqlparser::ast::Statement::Query(Box::new(query.clone())),
        ));
        // The planner does no I/O for in-memory tables, so this completes at once.
        let plan = futures::executor::block_on(ctx.state().statement_to_plan(stmt))?;
        crate::functions::check_casts(&plan)?;
        let plan = crate::functions::postgres_casts(plan)?;
        crate::plan::check_time_functions(&plan)?;
        let plan = ctx.state().optimize(&plan)?;
        let plan = crate::plan::optimize_view(plan, window.is_some())?;
        let schema = super::query::postgres_schema(&query, plan.schema().as_arrow());
        let schema = if kind == ViewKind::MaterializedView {
            schema
        } else {
            ksql_column_names(&query, schema)
        };
        let mut seen = std::collections::HashSet::new();
        for f in schema.fields() {
            if !seen.insert(f.name().clone()) {
                return Err(EddyError::query(
                    "42701",
                    format!("column \"{}\" specified more than once in {name}; give the columns distinct names with AS", f.name()),
                ));
            }
        }
        let append_only = |n: &str| {
            inner
                .get(n)
                .map(|r| r.kind.is_append_only())
                .unwrap_or(false)
        };
        let event_time = |n: &str| {
            let r = inner.get(n)?;
            r.event_time
                .as_ref()
                .map(|e| r.schema.field(e.column).name().clone())
        };
        let flow = Lowering::new(&append_only)
            .with_event_times(&event_time)
            .with_unbounded_joins(options.unbounded_state)
            .with_window(window.map(|w| (w, emit_final)))
            .lower(&plan, schema)?;
        if kind == ViewKind::Stream && !flow.append_only {
            return Err(EddyError::WrongObjectType(format!(
                "CREATE STREAM {name} AS SELECT needs an append-only result, but this query updates or retracts rows (it aggregates, or reads a table); use CREATE TABLE {name} AS ... or CREATE MATERIALIZED VIEW"
            )));
        }
        Ok(flow)
    }

    /// The dataflow a CREATE ... AS statement would get (EXPLAIN).
    pub(super) fn build_view(&self, stmt: &EddyStatement) -> Result<Dataflow> {
        let inner = self.lock();
        self.plan_view(&inner, stmt)
    }
}

/// An append-only view over one stream that passes the stream's event-time column through
/// keeps it as its own event time and follows the stream's watermark, so windows and
/// time-bounded joins over it work (e.g. a filtered stream).
fn inherit_event_time(inner: &Inner, rel: &mut Relation) {
    let Some(flow) = rel.dataflow.as_ref() else {
        return;
    };
    if !flow.append_only || flow.sources.len() != 1 {
        return;
    }
    let source = &flow.sources[0];
    let Some(src) = inner.get(source) else { return };
    let Some(et) = src.event_time.as_ref() else {
        return;
    };
    let column = src.schema.field(et.column);
    let Ok(idx) = rel.schema.index_of(column.name()) else {
        return;
    };
    if rel.schema.field(idx).data_type() != column.data_type() {
        return;
    }
    rel.event_time = Some(EventTime {
        column: idx,
        delay: et.delay,
        retention: None,
        max_seen: None,
    });
    rel.watermark_from = Some(source.clone());
}

/// A derived stream keeps an append-only log; every other view, an arrangement.
fn view_storage(
    kind: ViewKind,
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Result<Storage> {
    Ok(if kind == ViewKind::Stream {
        Storage::log(schema.clone())
    } else {
        Storage::Multiset(Arrangement::try_new(schema.clone())?)
    })
}

/// Every relation that reads `name`, directly or not, in creation order.
fn dependents_of(inner: &Inner, name: &str) -> Vec<String> {
    let mut found: Vec<String> = vec![name.to_string()];
    for r in &inner.relations {
        if r.depends_on.iter().any(|d| found.contains(d)) && !found.contains(&r.name) {
            found.push(r.name.clone());
        }
    }
    found.remove(0);
    found
}

fn check_drop_kind(kind: DropKind, rel: &Relation) -> Result<()> {
    let ok = match kind {
        DropKind::Stream => matches!(rel.kind, RelationKind::Stream | RelationKind::DerivedStream),
        DropKind::Table => matches!(rel.kind, RelationKind::Table | RelationKind::DerivedTable),
        DropKind::MaterializedView | DropKind::View => rel.kind == RelationKind::MaterializedView,
        DropKind::Source => false,
    };
    if ok {
        Ok(())
    } else {
        let verb = match rel.kind {
            RelationKind::Stream | RelationKind::DerivedStream => "DROP STREAM",
            RelationKind::Table | RelationKind::DerivedTable => "DROP TABLE",
            RelationKind::MaterializedView => "DROP MATERIALIZED VIEW",
        };
        Err(EddyError::WrongObjectType(format!(
            "\"{}\" is a {}; use {verb}",
            rel.name,
            rel.kind.noun()
        )))
    }
}

pub(super) fn option_name(o: &SqlOption) -> String {
    match o {
        SqlOption::KeyValue { key, .. } => key.value.to_lowercase(),
        other => other.to_string().to_lowercase(),
    }
}

#[derive(Default)]
struct SourceOptions {
    timestamp: Option<String>,
    retention: Option<i64>,
    kafka: Option<crate::connectors::kafka::SourceConfig>,
}

/// WITH options as (lower-case name, value).
pub(super) fn option_pairs(options: &[SqlOption]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|o| (option_name(o), option_value(o)))
        .collect()
}

pub(super) fn option_value(o: &SqlOption) -> String {
    use datafusion::sql::sqlparser::ast::{Expr, Value};
    match o {
        SqlOption::KeyValue { value, .. } => match value {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}

fn check_source_options(options: &[SqlOption], is_stream: bool) -> Result<SourceOptions> {
    let mut out = SourceOptions::default();
    let pairs = option_pairs(options);
    if crate::connectors::kafka::options::is_kafka(&pairs) {
        out.kafka = Some(crate::connectors::kafka::options::source_config(&pairs)?);
    }
    for o in options {
        let n = option_name(o);
        if out.kafka.is_some() && crate::connectors::kafka::options::NAMES.contains(&n.as_str()) {
            continue;
        }
        match n.as_str() {
            "timestamp" if is_stream => out.timestamp = Some(option_value(o).to_lowercase()),
            "retention" if is_stream => {
                out.retention = Some(crate::sql::windows::parse_duration(&option_value(o))?)
            }
            _ => return Err(unknown_option(&n)),
        }
    }
    Ok(out)
}

pub use crate::catalog::pg_catalog::{is_transient, TRANSIENT_PREFIX};
const TRANSIENT_ID_BASE: u64 = 1 << 40;
static TRANSIENT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The implicit event-time column of a stream that declares none (ksqlDB's ROWTIME).
pub(crate) const ROWTIME: &str = "rowtime";

/// Options of a continuous query.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ViewOptions {
    /// Opt in to state that grows without bound (a stream-stream join without WITHIN).
    pub unbounded_state: bool,
}

fn check_view_options(options: &[SqlOption]) -> Result<ViewOptions> {
    let mut out = ViewOptions::default();
    for o in options {
        let n = option_name(o);
        if n == "unbounded_state" {
            out.unbounded_state = match option_value(o).to_lowercase().as_str() {
                "true" | "on" | "1" => true,
                "false" | "off" | "0" => false,
                other => {
                    return Err(EddyError::query(
                        "22023",
                        format!("unbounded_state must be true or false, not {other}"),
                    ))
                }
            };
            continue;
        }
        if crate::connectors::kafka::options::NAMES.contains(&n.as_str()) {
            // A Kafka sink's options, checked by super::kafka::view_sink.
            continue;
        }
        return Err(unknown_option(&n));
    }
    Ok(out)
}

/// ksqlDB's names for unnamed expressions (`ksql_col_0`, `ksql_col_1`, ...), used by a
/// `CREATE STREAM|TABLE ... AS` whose Postgres names would collide (two `?column?`);
/// otherwise the Postgres names stay (`count`, `sum`), which existing scripts read.
fn ksql_column_names(
    query: &Query,
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::sql::sqlparser::ast::{Expr, SelectItem, SetExpr};
    let mut seen = std::collections::HashSet::new();
    if schema
        .fields()
        .iter()
        .all(|f| seen.insert(f.name().clone()))
    {
        return schema;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return schema;
    };
    let items = &select.projection;
    let n = schema.fields().len();
    if items.len() > n
        || items.iter().any(|i| {
            !matches!(
                i,
                SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
            )
        })
    {
        return schema;
    }
    // A ksqlDB window puts its bounds in front of the SELECT items.
    let offset = n - items.len();
    let mut fields: Vec<datafusion::arrow::datatypes::FieldRef> =
        schema.fields().iter().cloned().collect();
    let mut next = 0;
    for (i, item) in items.iter().enumerate() {
        if let SelectItem::UnnamedExpr(e) = item {
            if !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                let f = fields[offset + i].as_ref().clone();
                fields[offset + i] = Arc::new(f.with_name(format!("ksql_col_{next}")));
                next += 1;
            }
        }
    }
    Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// ksqlDB options eddy does not implement: refused as unsupported, naming them.
const KSQL_UNSUPPORTED_OPTIONS: &[&str] = &[
    "wrap_single_value",
    "value_delimiter",
    "key_delimiter",
    "value_schema_id",
    "key_schema_id",
    "value_schema_full_name",
    "key_schema_full_name",
    "value_avro_schema_full_name",
    "window_type",
    "window_size",
];

fn unknown_option(n: &str) -> EddyError {
    if KSQL_UNSUPPORTED_OPTIONS.contains(&n) {
        return EddyError::unsupported(format!(
            "the ksqlDB option {} is not supported",
            n.to_uppercase()
        ));
    }
    EddyError::query("22023", format!("unknown option \"{n}\" in WITH (...)"))
}

fn tag_create(is_stream: bool) -> String {
    if is_stream {
        "CREATE STREAM".into()
    } else {
        "CREATE TABLE".into()
    }
}

/// A window over a column that is not its stream's event time has no watermark: nothing
/// tells when its windows are complete. Such a window drops no row as late and never
/// closes (it is a plain GROUP BY over the window bounds, with the state of every window
/// kept); what needs windows to close — EMIT FINAL, SESSION windows — is refused naming the
/// column. Before, such a window was judged against the stream's own watermark (insertion
/// time by default), and rows whose time was older than the wall clock were dropped as late.
fn without_watermark_check(
    inner: &Inner,
    window: Option<crate::sql::windows::WindowSpec>,
    emit_final: bool,
) -> Result<Option<crate::sql::windows::WindowSpec>> {
    let Some(w) = window else { return Ok(None) };
    let watermarked = inner
        .get(&w.source)
        .and_then(|r| {
            let e = r.event_time.as_ref()?;
            Some(
                r.schema
                    .field(e.column)
                    .name()
                    .eq_ignore_ascii_case(&w.time_column),
            )
        })
        .unwrap_or(false);
    if watermarked {
        return Ok(Some(w));
    }
    let how = format!(
        "declare it as {}'s event time (WATERMARK FOR {c} AS {c} - INTERVAL '5' SECOND, or WITH (TIMESTAMP='{c}'))",
        w.source,
        c = w.time_column
    );
    let session = matches!(w.kind, crate::sql::windows::WindowKind::Session { .. });
    if emit_final || session {
        let what = if session {
            "a SESSION window"
        } else {
            "EMIT FINAL"
        };
        return Err(EddyError::unsupported(format!(
            "{what} over {}.{} needs a watermark on that column to close windows: {how}",
            w.source, w.time_column
        )));
    }
    Ok(None)
}
