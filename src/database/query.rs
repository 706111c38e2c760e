//! Ad-hoc queries: DataFusion over a consistent snapshot of the relations a query reads.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemTable, MemoryCatalogProvider,
    MemoryCatalogProviderList, MemorySchemaProvider, SchemaProvider,
};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{create_udf, ColumnarValue, LogicalPlan, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{visit_relations, Query, Statement};

use super::{Database, VERSION_STRING};
use crate::error::{EddyError, Result};
use crate::sql::naming::postgres_column_names;
use crate::sql::parser::object_name;

/// Functions clients call on connect, answering as Postgres 15 would.
pub(super) fn with_postgres_functions(state: SessionState) -> Result<SessionState> {
    let ctx = SessionContext::new_with_state(state);
    let constant = |name: &str, value: &'static str| {
        create_udf(
            name,
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(move |_args: &[ColumnarValue]| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    value.to_string(),
                ))))
            }),
        )
    };
    ctx.register_udf(constant("version", VERSION_STRING));
    ctx.register_udf(constant("current_schema", "public"));
    ctx.register_udf(constant("current_database", "eddy"));
    // psql's relation listings: every relation belongs to the one user and is visible.
    for (name, value) in [
        ("pg_get_userbyid", ScalarValue::Utf8(Some("eddy".into()))),
        ("pg_table_is_visible", ScalarValue::Boolean(Some(true))),
    ] {
        let ty = value.data_type();
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int64],
            ty,
            Volatility::Stable,
            Arc::new(move |args: &[ColumnarValue]| {
                let n = match &args[0] {
                    ColumnarValue::Array(a) => a.len(),
                    ColumnarValue::Scalar(_) => return Ok(ColumnarValue::Scalar(value.clone())),
                };
                Ok(ColumnarValue::Array(value.to_array_of_size(n)?))
            }),
        ));
    }
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        SessionBound::new(),
    ));
    ctx.register_udf(create_udf(
        crate::sql::windows::WITHIN_FUNCTION,
        vec![DataType::Int64, DataType::Int64, DataType::Int64],
        DataType::Boolean,
        // Volatile so that planning never folds it away: the dataflow reads it off the plan.
        Volatility::Volatile,
        Arc::new(|_args: &[ColumnarValue]| {
            datafusion::common::not_impl_err!(
                "JOIN ... WITHIN in an ad-hoc query; time-bounded stream joins are maintained by continuous queries"
            )
        }),
    ));
    super::pg_functions::register_static(&ctx);
    Ok(crate::functions::with_postgres_semantics(ctx.state()))
}

/// Marks session window bounds in a plan. Only the dataflow can compute them (a row's
/// session depends on the other rows), so evaluating it in a batch query is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionBound {
    signature: datafusion::logical_expr::Signature,
}

impl SessionBound {
    fn new() -> Self {
        SessionBound {
            signature: datafusion::logical_expr::Signature::any(3, Volatility::Immutable),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for SessionBound {
    fn name(&self) -> &str {
        crate::sql::windows::SESSION_BOUND_FUNCTION
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            None,
        ))
    }

    fn invoke_with_args(
        &self,
        _args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        datafusion::common::not_impl_err!(
            "SESSION windows in an ad-hoc query; they are maintained by continuous queries (CREATE ... AS SELECT ... FROM SESSION(...))"
        )
    }
}

/// A session context over `state` whose only catalog is `eddy.public` = `schema`. Every
/// query gets its own catalog, so concurrent queries never see each other's snapshots.
pub(super) fn context_with_schema(
    state: &SessionState,
    schema: Arc<MemorySchemaProvider>,
) -> SessionContext {
    let catalog = Arc::new(MemoryCatalogProvider::new());
    let _ = catalog.register_schema("public", schema);
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    catalogs.register_catalog("eddy".to_string(), catalog);
    let state = SessionStateBuilder::new_from_existing(state.clone())
        .with_catalog_list(catalogs)
        .build();
    SessionContext::new_with_state(state)
}

/// The system relation describing every stream, table and view: sizes, state, watermark,
/// late and rejected rows.
pub const SYSTEM_RELATIONS: &str = "eddy_relations";

fn system_relations(inner: &super::Inner) -> Result<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::TimeUnit;
    let rels = &inner.relations;
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("state_rows", DataType::Int64, false),
        Field::new("state_bytes", DataType::Int64, false),
        Field::new(
            "watermark",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("late_rows", DataType::Int64, false),
        Field::new("rejected_rows", DataType::Int64, false),
    ]));
    let watermark = |r: &crate::catalog::Relation| {
        inner
            .watermark_of(&r.name)
            .or_else(|| r.dataflow.as_ref().and_then(|f| f.watermark))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rels.iter().map(|r| r.name.clone()),
        )),
        Arc::new(StringArray::from_iter_values(
            rels.iter().map(|r| r.kind.noun().to_string()),
        )),
        Arc::new(Int64Array::from_iter_values(
            rels.iter().map(|r| r.storage.row_count() as i64),
        )),
        Arc::new(Int64Array::from_iter_values(rels.iter().map(|r| {
            r.dataflow.as_ref().map(|f| f.state_rows()).unwrap_or(0) as i64
        }))),
        Arc::new(Int64Array::from_iter_values(
            rels.iter().map(|r| r.storage.approx_bytes() as i64),
        )),
        Arc::new(TimestampMicrosecondArray::from(
            rels.iter().map(watermark).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from_iter_values(rels.iter().map(|r| {
            r.dataflow.as_ref().map(|f| f.late_rows()).unwrap_or(0) as i64
        }))),
        Arc::new(Int64Array::from_iter_values(
            rels.iter().map(|r| r.rejected_rows as i64),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The `pg_catalog` and `information_schema` relations a statement reads.
pub(super) fn referenced_catalogs<V: datafusion::sql::sqlparser::ast::Visit>(
    q: &V,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut pg = BTreeSet::new();
    let mut info = BTreeSet::new();
    let _ = visit_relations(q, |r| {
        if r.0.len() == 2 {
            let schema = r.0[0]
                .as_ident()
                .map(|i| i.value.to_lowercase())
                .unwrap_or_default();
            match schema.as_str() {
                "pg_catalog" => {
                    pg.insert(object_name(r));
                }
                "information_schema" => {
                    info.insert(object_name(r));
                }
                _ => {}
            }
        }
        ControlFlow::<()>::Continue(())
    });
    (pg, info)
}

struct Lookup<'a>(&'a super::Inner);

impl crate::sql::pg_compat::CatalogLookup for Lookup<'_> {
    fn is_user_relation(&self, name: &str) -> bool {
        self.0.get(name).is_some() || name == SYSTEM_RELATIONS
    }
    fn relation_oid(&self, name: &str) -> Option<i64> {
        crate::catalog::pg_catalog::relation_by_name(&self.0.relations, name)
    }
}

impl super::Inner {
    /// Rewrite the Postgres-only spellings client tools use in catalog queries.
    pub(super) fn rewrite_pg_compat(&self, q: &mut Query) -> Result<()> {
        crate::sql::pg_compat::rewrite(q, &Lookup(self))
    }
}

/// Names of the relations a query mentions (CTE names included; unknown ones are skipped).
pub(super) fn referenced_relations(q: &Query) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let _ = visit_relations(q, |r| {
        names.insert(object_name(r));
        ControlFlow::<()>::Continue(())
    });
    names
}

impl Database {
    /// A session context whose tables are snapshots of the named relations, all taken in
    /// one epoch. With `empty`, the tables have schemas but no rows (for planning only).
    pub(super) fn snapshot_context(
        &self,
        state: &SessionState,
        names: &BTreeSet<String>,
        catalogs: &(BTreeSet<String>, BTreeSet<String>),
        empty: bool,
    ) -> Result<SessionContext> {
        use crate::catalog::pg_catalog as pg;
        let schema = Arc::new(MemorySchemaProvider::new());
        let pg_catalog = Arc::new(MemorySchemaProvider::new());
        let information_schema = Arc::new(MemorySchemaProvider::new());
        let register = |s: &MemorySchemaProvider, name: &str, batch: RecordBatch| -> Result<()> {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            s.register_table(name.to_string(), Arc::new(table))?;
            Ok(())
        };
        let ctx;
        let mut relations = Vec::new();
        {
            let mut inner = self.lock();
            for t in &catalogs.0 {
                if let Some(batch) = pg::table(t, &inner.relations)? {
                    register(&pg_catalog, t, batch)?;
                }
            }
            for t in &catalogs.1 {
                if let Some(batch) = pg::information_schema_table(t, &inner.relations)? {
                    register(&information_schema, t, batch)?;
                }
            }
            for (table, batch) in [
                (
                    super::kafka::SYSTEM_KAFKA_SOURCES,
                    super::kafka::system_kafka_sources as fn(&_) -> _,
                ),
                (
                    super::kafka::SYSTEM_KAFKA_ERRORS,
                    super::kafka::system_kafka_errors,
                ),
            ] {
                if names.contains(table) {
                    let batch = batch(&self.kafka)?;
                    let t = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
                    schema.register_table(table.to_string(), Arc::new(t))?;
                }
            }
            if names.contains(super::sources::SYSTEM_SOURCES) {
                let batch = super::sources::system_sources(&inner)?;
                let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
                schema
                    .register_table(super::sources::SYSTEM_SOURCES.to_string(), Arc::new(table))?;
            }
            self.register_observability_views(&inner, names, &schema)?;
            if names.contains(SYSTEM_RELATIONS) {
                let batch = system_relations(&inner)?;
                let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
                schema.register_table(SYSTEM_RELATIONS.to_string(), Arc::new(table))?;
            }
            for name in names {
                let Some(rel) = inner.get_mut(name) else {
                    continue;
                };
                let snapshot = if empty {
                    None
                } else {
                    Some(rel.storage.deferred_snapshot()?)
                };
                relations.push((name.clone(), rel.schema.clone(), snapshot));
            }
            ctx = context_with_schema(state, schema.clone());
            super::pg_functions::register_catalog(&ctx, &inner.relations);
        }
        // Stored stream chunks are read here, without the lock: writers go on meanwhile.
        for (name, rel_schema, snapshot) in relations {
            let batches = match snapshot {
                Some(s) => s.load()?,
                None => vec![],
            };
            let table = MemTable::try_new(rel_schema, vec![batches])?;
            schema.register_table(name, Arc::new(table))?;
        }
        if let Some(catalog) = ctx.catalog("eddy") {
            catalog.register_schema("pg_catalog", pg_catalog)?;
            catalog.register_schema("information_schema", information_schema)?;
        }
        Ok(ctx)
    }

    /// Plan a query against the catalog. `for_view` selects the analyzer-only state.
    pub(super) async fn plan_query(
        &self,
        q: &Query,
        for_view: bool,
    ) -> Result<(SessionContext, LogicalPlan)> {
        // Window table functions work in ad-hoc queries too: rewrite them to plain SQL.
        let rewritten;
        let q = {
            let mut copy = q.clone();
            {
                let inner = self.lock();
                if !for_view {
                    inner.rewrite_pg_compat(&mut copy)?;
                }
                inner.expand_hidden(&mut copy);
                inner.rewrite_windows(&mut copy, None)?;
                crate::sql::pg_literals::rewrite(&mut copy);
            }
            rewritten = copy;
            &rewritten
        };
        let names = referenced_relations(q);
        let catalogs = referenced_catalogs(q);
        let state = if for_view {
            &self.view_state
        } else {
            &self.batch_state
        };
        let ctx = self.snapshot_context(state, &names, &catalogs, for_view)?;
        let stmt = DfStatement::Statement(Box::new(Statement::Query(Box::new(q.clone()))));
        let plan = ctx.state().statement_to_plan(stmt).await?;
        crate::functions::check_casts(&plan)?;
        let plan = crate::functions::postgres_casts(plan)?;
        // Views: run the analyzer (type coercion) only; the view state has no optimizer
        // rules, so the plan keeps the query's shape.
        let plan = if for_view {
            crate::plan::check_time_functions(&plan)?;
            ctx.state().optimize(&plan)?
        } else {
            crate::plan::check_no_session_windows(&plan)?;
            plan
        };
        Ok((ctx, plan))
    }

    /// Run an ad-hoc query; results carry Postgres column names.
    pub(crate) async fn run_query(&self, q: &Query) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let (ctx, plan) = self.plan_query(q, false).await?;
        let schema = postgres_schema(q, plan.schema().as_arrow());
        let task = query_runtime().spawn(async move {
            let df = ctx.execute_logical_plan(plan).await?;
            Ok::<_, EddyError>(df.collect().await?)
        });
        // A cancelled statement or a vanished client drops this future: stop the query.
        struct AbortOnDrop(tokio::task::AbortHandle);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _abort = AbortOnDrop(task.abort_handle());
        let batches = task.await.map_err(|e| match e.try_into_panic() {
            Ok(p) => EddyError::OperatorPanic(format!(
                "the query failed on this input: {}",
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into())
            )),
            Err(e) => EddyError::internal(format!("query task: {e}")),
        })??;
        let batches = batches
            .into_iter()
            .map(|b| {
                // The physical plan may produce a different (compatible) type than the
                // logical schema promises, e.g. nanosecond timestamps in one UNION branch.
                let columns = b
                    .columns()
                    .iter()
                    .zip(schema.fields())
                    .map(|(c, f)| {
                        if c.data_type() == f.data_type() {
                            Ok(c.clone())
                        } else {
                            datafusion::arrow::compute::cast(c, f.data_type())
                                .map_err(EddyError::from)
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                RecordBatch::try_new(schema.clone(), columns).map_err(EddyError::from)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((schema, batches))
    }

    /// The result schema a query would have, without running it.
    pub async fn describe_query(&self, q: &Query) -> Result<SchemaRef> {
        let (_, plan) = self.plan_query(q, false).await?;
        Ok(postgres_schema(q, plan.schema().as_arrow()))
    }
}

/// Rename result columns as Postgres names them (`count`, not `count(*)`).
pub(crate) fn postgres_schema(q: &Query, schema: &Schema) -> SchemaRef {
    let names = postgres_column_names(q);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = names
                .as_ref()
                .filter(|n| n.len() == schema.fields().len())
                .and_then(|n| n[i].clone())
                .unwrap_or_else(|| f.name().clone());
            Field::new(name, f.data_type().clone(), true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

impl Database {
    /// Types of `$n` parameters, as DataFusion infers them from context (a column they are
    /// compared with or inserted into). `None` where no type can be inferred.
    pub async fn parameter_types(&self, sql: &str) -> Result<Vec<Option<DataType>>> {
        use crate::sql::EddyStatement;
        let stmt = crate::sql::parse_statement(sql)?;
        let ast = match stmt {
            EddyStatement::Query(mut q) => {
                self.lock().rewrite_pg_compat(&mut q)?;
                Statement::Query(q)
            }
            EddyStatement::Insert(s) | EddyStatement::Update(s) | EddyStatement::Delete(s) => *s,
            _ => return Ok(vec![]),
        };
        let mut names = BTreeSet::new();
        let _ = visit_relations(&ast, |r| {
            names.insert(object_name(r));
            ControlFlow::<()>::Continue(())
        });
        let catalogs = referenced_catalogs(&ast);
        let ctx = self.snapshot_context(&self.batch_state, &names, &catalogs, true)?;
        let plan = match ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(ast)))
            .await
        {
            Ok(p) => p,
            // The statement's own error is reported when it runs, with its parameters.
            Err(_) => return Ok(vec![]),
        };
        let types = plan.get_parameter_types()?;
        let mut ordered: Vec<(usize, Option<DataType>)> = types
            .into_iter()
            .filter_map(|(k, v)| {
                k.trim_start_matches('$')
                    .parse::<usize>()
                    .ok()
                    .map(|i| (i, v))
            })
            .collect();
        ordered.sort_by_key(|(i, _)| *i);
        let n = ordered.last().map(|(i, _)| *i).unwrap_or(0);
        let mut out = vec![None; n];
        for (i, t) in ordered {
            out[i - 1] = t;
        }
        Ok(out)
    }

    /// The row description of a statement, without side effects. `None`: the statement
    /// returns no rows. Without `params`, parameters stay placeholders.
    pub async fn describe(
        &self,
        session: &super::Session,
        sql: &str,
        params: Option<&[String]>,
    ) -> Result<Option<SchemaRef>> {
        use crate::sql::EddyStatement;
        let mut stmt = crate::sql::parse_statement(sql)?;
        if let Some(p) = params {
            super::params::bind(&mut stmt, p)?;
        }
        match stmt {
            EddyStatement::Query(q) => Ok(Some(self.describe_query(&q).await?)),
            EddyStatement::Show(what) => match self.show(session, &what)? {
                super::Output::Rows { schema, .. } => Ok(Some(schema)),
                _ => Ok(None),
            },
            EddyStatement::Subscribe { query: Some(q), .. } => {
                let schema = self.describe_query(&q).await?;
                Ok(Some(super::push_schema(&schema)))
            }
            EddyStatement::Subscribe { name, .. } => Ok(Some(self.subscription_schema(&name)?)),
            EddyStatement::Describe(name) => match self.describe_relation(&name)? {
                super::Output::Rows { schema, .. } => Ok(Some(schema)),
                _ => Ok(None),
            },
            EddyStatement::ExplainRelation(_)
            | EddyStatement::ExplainAnalyze(_)
            | EddyStatement::ExplainCreate(_)
            | EddyStatement::ExplainQuery(_) => Ok(Some(Arc::new(Schema::new(vec![Field::new(
                "QUERY PLAN",
                DataType::Utf8,
                true,
            )])))),
            _ => Ok(None),
        }
    }
}

/// Ad-hoc queries run here, not on the server's runtime: DataFusion keeps a worker busy for
/// as long as an operator computes, and on the server's few workers a multi-second query
/// would stall every session's statements (INSERTs waited 200 ms at the median behind a
/// 1 M-row self-join on 2 cores). These threads also run at a lower CPU priority (nice 5),
/// so writes and short statements go first when the cores are busy.
fn query_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )
            .thread_name("eddy-query")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .expect("the query runtime starts")
    })
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // On Linux a thread has its own nice value; `who` = the thread id.
    // SAFETY: plain syscalls on the calling thread, no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 5);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}
