//! Simple and extended query handlers for one connection. Statements run on the shared
//! [`Database`]; the connection's [`Session`] (settings, transaction flag) lives here.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::{stream, Sink, StreamExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{send_describe_response, ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::DescribeResponse;
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::Entry;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, NoopHandler, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::messages::PgWireBackendMessage;
use tokio::sync::Mutex;

use super::params::{needs_inference, render_parameters};
use super::startup::TrustStartup;
use crate::database::{Database, Output, Session};
use crate::error::EddyError;

pub struct ConnectionHandlers {
    conn: Arc<Connection>,
}

impl ConnectionHandlers {
    pub fn new(db: Arc<Database>) -> Self {
        ConnectionHandlers {
            conn: Arc::new(Connection {
                db,
                session: Mutex::new(Session::default()),
                parser: Arc::new(SqlParser),
            }),
        }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.conn.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.conn.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(TrustStartup::new())
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        Arc::new(NoopHandler)
    }
}

pub struct Connection {
    db: Arc<Database>,
    session: Mutex<Session>,
    parser: Arc<SqlParser>,
}

impl Connection {
    /// Parameter types as described to the client: its own where it gave one, else what
    /// DataFusion infers from the statement, else text.
    async fn parameter_types(
        &self,
        sql: &str,
        declared: &[Option<Type>],
    ) -> PgWireResult<Vec<Type>> {
        let inferred = self.db.parameter_types(sql).await.map_err(to_pgwire)?;
        let n = inferred.len().max(declared.len());
        Ok((0..n)
            .map(|i| {
                declared
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|t| *t != Type::UNKNOWN)
                    .unwrap_or_else(|| {
                        inferred
                            .get(i)
                            .cloned()
                            .flatten()
                            .and_then(|dt| arrow_pg::datatypes::into_pg_type(&dt).ok())
                            .unwrap_or(Type::TEXT)
                    })
            })
            .collect())
    }

    async fn parameters(&self, portal: &Portal<String>) -> PgWireResult<Vec<String>> {
        let inferred = if needs_inference(portal) {
            self.parameter_types(
                &portal.statement.statement,
                &portal.statement.parameter_types,
            )
            .await?
        } else {
            vec![]
        };
        render_parameters(portal, &inferred).map_err(to_pgwire)
    }
}

pub fn error_info(e: &EddyError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".to_owned(), e.sqlstate().to_owned(), e.to_string());
    info.position = e.position().map(|p| p.to_string());
    if e.sqlstate() == "XX000" {
        tracing::error!(error = %e, "internal error");
    } else {
        tracing::debug!(code = e.sqlstate(), error = %e, "statement failed");
    }
    info
}

fn to_pgwire(e: EddyError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

fn fields(schema: &SchemaRef, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)
}

fn rows_response(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    format: &Format,
) -> PgWireResult<Response> {
    let fields = Arc::new(fields(schema, format)?);
    let f = fields.clone();
    let rows = stream::iter(batches)
        .flat_map(move |b| stream::iter(arrow_pg::datatypes::encode_recordbatch(f.clone(), b)));
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

fn to_response(out: Output, format: &Format) -> PgWireResult<Response> {
    match out {
        Output::Rows { schema, batches } => rows_response(&schema, batches, format),
        Output::Command(tag) => Ok(Response::Execution(Tag::new(&tag))),
        Output::Transaction { tag, open: true } => Ok(Response::TransactionStart(Tag::new(&tag))),
        Output::Transaction { tag, open: false } => Ok(Response::TransactionEnd(Tag::new(&tag))),
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        let results = self.db.execute_all(&mut session, query).await;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(o) => out.push(to_response(o, &Format::UnifiedText)?),
                Err(e) => out.push(Response::Error(Box::new(error_info(&e)))),
            }
        }
        Ok(out)
    }
}

struct StatementDescription {
    parameters: Vec<Type>,
    fields: Vec<FieldInfo>,
}

impl DescribeResponse for StatementDescription {
    fn parameters(&self) -> Option<&[Type]> {
        Some(&self.parameters)
    }

    fn fields(&self) -> &[FieldInfo] {
        &self.fields
    }

    fn no_data() -> Self {
        StatementDescription {
            parameters: vec![],
            fields: vec![],
        }
    }

    fn is_no_data(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Statements are kept as SQL text and parsed when bound: planning needs the parameters'
/// values anyway, and the catalog may change between Parse and Execute.
pub struct SqlParser;

#[async_trait]
impl QueryParser for SqlParser {
    type Statement = String;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<String>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        // Reject garbage at Parse time, as Postgres does.
        let stmts = crate::sql::split_statements(sql).map_err(to_pgwire)?;
        if stmts.len() > 1 {
            return Err(to_pgwire(EddyError::query(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        Ok(stmts.into_iter().next().map(|s| s.text))
    }

    fn get_parameter_types(&self, _stmt: &String) -> PgWireResult<Vec<Type>> {
        Ok(vec![])
    }

    fn get_result_schema(
        &self,
        _stmt: &String,
        _format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(vec![])
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = String;
    type QueryParser = SqlParser;

    fn query_parser(&self) -> Arc<SqlParser> {
        self.parser.clone()
    }

    /// Describe Statement of a statement with parameters and no result rows must answer
    /// ParameterDescription + NoData, as Postgres does (pgwire would send an empty
    /// RowDescription, which pgjdbc reads as "a result was returned").
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = String>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or("");
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let r = self.do_describe_statement(client, &stmt).await?;
                let r = StatementDescription {
                    parameters: r.parameters,
                    fields: r.fields,
                };
                return send_describe_response(client, &r).await;
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<String>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = String>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = self.parameters(portal).await?;
        let mut session = self.session.lock().await;
        let out = self
            .db
            .execute(&mut session, &portal.statement.statement, &params)
            .await
            .map_err(to_pgwire)?;
        to_response(out, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<String>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = String>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = &target.statement;
        let param_types = self.parameter_types(sql, &target.parameter_types).await?;
        let session = self.session.lock().await;
        let schema = self
            .db
            .describe(&session, sql, None)
            .await
            .map_err(to_pgwire)?;
        let fields = match schema {
            Some(s) => fields(&s, &Format::UnifiedText)?,
            None => vec![],
        };
        Ok(DescribeStatementResponse::new(param_types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<String>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = String>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = self.parameters(portal).await?;
        let session = self.session.lock().await;
        let schema = self
            .db
            .describe(&session, &portal.statement.statement, Some(&params))
            .await
            .map_err(to_pgwire)?;
        Ok(DescribePortalResponse::new(match schema {
            Some(s) => fields(&s, &portal.result_column_format)?,
            None => vec![],
        }))
    }
}
