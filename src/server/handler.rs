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

use super::cursor::{self, CursorStatement, Cursors};
use super::params::{needs_inference, render_parameters};
use super::pg_style::OutputStyle;
use super::startup::{cancel_handle, Startup};
use crate::database::{Database, Output, Session};
use crate::error::EddyError;

pub struct ConnectionHandlers {
    conn: Arc<Connection>,
    startup: Arc<Startup>,
    manager: Arc<pgwire::api::ConnectionManager>,
}

impl ConnectionHandlers {
    pub fn new(
        db: Arc<Database>,
        config: &super::ServerConfig,
        manager: Arc<pgwire::api::ConnectionManager>,
        peer: Option<std::net::SocketAddr>,
    ) -> Self {
        ConnectionHandlers {
            conn: Arc::new(Connection {
                activity: db.metrics().connection_opened(peer),
                db,
                session: Mutex::new(Session::default()),
                parser: Arc::new(SqlParser),
                cursors: Mutex::new(Cursors::default()),
            }),
            startup: Arc::new(Startup::new(config, manager.clone())),
            manager,
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
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(pgwire::api::cancel::DefaultCancelHandler::new(
            self.manager.clone(),
        ))
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        Arc::new(NoopHandler)
    }
}

pub struct Connection {
    db: Arc<Database>,
    /// This connection's row in `eddy_connections`, removed when the connection ends.
    activity: crate::metrics::ConnectionHandle,
    session: Mutex<Session>,
    parser: Arc<SqlParser>,
    cursors: Mutex<Cursors>,
}

impl Connection {
    /// DECLARE / FETCH / CLOSE.
    async fn cursor_statement(
        &self,
        stmt: CursorStatement,
        params: &[String],
        format: &Format,
    ) -> PgWireResult<Response> {
        match stmt {
            CursorStatement::Declare { name, query } => {
                let out = {
                    let mut session = self.session.lock().await;
                    self.db
                        .execute(&mut session, &query, params)
                        .await
                        .map_err(to_pgwire)?
                };
                let (schema, batches, push): (SchemaRef, cursor::Batches, bool) = match out {
                    Output::Rows { schema, batches } => (
                        schema,
                        Box::pin(stream::iter(batches.into_iter().map(Ok))),
                        false,
                    ),
                    Output::Subscription {
                        schema,
                        snapshot,
                        subscription,
                        limit,
                    } => {
                        let (schema, batches) =
                            subscription_batches(schema, snapshot, subscription, limit);
                        (schema, Box::pin(batches), true)
                    }
                    _ => {
                        return Err(to_pgwire(EddyError::query(
                            "42601",
                            "DECLARE CURSOR needs a query that returns rows",
                        )))
                    }
                };
                self.cursors
                    .lock()
                    .await
                    .declare(name, schema, batches, push)
                    .map_err(to_pgwire)?;
                Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
            }
            CursorStatement::Fetch {
                name,
                count,
                timeout,
            } => {
                // A CancelRequest drops this future (pgwire selects on it around do_query);
                // the cursor stays, with what it has not returned yet.
                let mut cursors = self.cursors.lock().await;
                let c = cursors.get_mut(&name).map_err(to_pgwire)?;
                let fetched = c.fetch(count, timeout).await?;
                let style = style_of(&*self.session.lock().await);
                let mut r = rows_response(&c.schema, fetched, format, style)?;
                if let Response::Query(q) = &mut r {
                    q.set_command_tag("FETCH");
                }
                Ok(r)
            }
            CursorStatement::Close(name) => {
                self.cursors
                    .lock()
                    .await
                    .close(name.as_deref())
                    .map_err(to_pgwire)?;
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
        }
    }

    /// The row description of a cursor statement (FETCH: the cursor's columns).
    async fn cursor_fields(
        &self,
        stmt: &CursorStatement,
        format: &Format,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match stmt {
            CursorStatement::Fetch { name, .. } => match self.cursors.lock().await.get(name) {
                Some(c) => fields(&c.schema, format),
                None => Ok(vec![]),
            },
            _ => Ok(vec![]),
        }
    }

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

/// How this session writes values (its SET TimeZone, DateStyle, … ).
fn style_of(session: &Session) -> Arc<OutputStyle> {
    Arc::new(OutputStyle::from_settings(&session.settings))
}

fn rows_response(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    format: &Format,
    style: Arc<OutputStyle>,
) -> PgWireResult<Response> {
    let fields = Arc::new(fields(schema, format)?);
    let f = fields.clone();
    let rows = stream::iter(batches)
        .flat_map(move |b| stream::iter(super::pg_text::encode_batch(f.clone(), b, style.clone())));
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

/// Rows of a push query as they happen: `eddy_time` (when the change committed),
/// `eddy_diff` (+n inserted, −n retracted), then the relation's columns. Ends at the LIMIT,
/// when the client goes away, or with an error if the relation is dropped or the client
/// falls too far behind.
fn subscription_response(
    schema: SchemaRef,
    snapshot: Vec<RecordBatch>,
    subscription: crate::view::subscription::Subscription,
    limit: Option<usize>,
    format: &Format,
    cancel: Option<futures::channel::oneshot::Receiver<()>>,
    style: Arc<OutputStyle>,
) -> PgWireResult<Response> {
    let (out_schema, batches) = subscription_batches(schema, snapshot, subscription, limit);
    let batches = until_cancelled(batches, cancel);
    let fields = Arc::new(fields(&out_schema, format)?);
    let rows_fields = fields.clone();
    let rows = batches.flat_map(move |b| {
        let items: Vec<PgWireResult<pgwire::messages::data::DataRow>> = match b {
            Ok(b) => super::pg_text::encode_batch(rows_fields.clone(), b, style.clone()).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items)
    });
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

/// The batches of a push query (`eddy_time`, `eddy_diff`, then the relation's columns).
fn subscription_batches(
    schema: SchemaRef,
    snapshot: Vec<RecordBatch>,
    subscription: crate::view::subscription::Subscription,
    limit: Option<usize>,
) -> (
    SchemaRef,
    impl futures::Stream<Item = PgWireResult<RecordBatch>> + Send + 'static,
) {
    use crate::view::subscription::Event;
    use datafusion::arrow::array::{ArrayRef, Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let mut fields_out = vec![
        Field::new(
            "eddy_time",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("eddy_diff", DataType::Int64, false),
    ];
    fields_out.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
    let out_schema: SchemaRef = Arc::new(Schema::new(fields_out));
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    };
    let annotate = move |schema: &SchemaRef,
                         time: i64,
                         data: &RecordBatch,
                         weights: Vec<i64>|
          -> PgWireResult<RecordBatch> {
        let n = data.num_rows();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(vec![time; n])),
            Arc::new(Int64Array::from(weights)),
        ];
        cols.extend(data.columns().iter().cloned());
        RecordBatch::try_new(schema.clone(), cols).map_err(|e| PgWireError::ApiError(Box::new(e)))
    };
    struct State {
        snapshot: std::vec::IntoIter<RecordBatch>,
        sub: crate::view::subscription::Subscription,
        remaining: Option<usize>,
        done: bool,
    }
    let start = State {
        snapshot: snapshot.into_iter(),
        sub: subscription,
        remaining: limit,
        done: false,
    };
    let batches =
        futures::stream::unfold((start, out_schema.clone()), move |(mut st, out_schema)| {
            let annotate = annotate.clone();
            async move {
                if st.done || st.remaining == Some(0) {
                    return None;
                }
                let next: PgWireResult<RecordBatch> = if let Some(b) = st.snapshot.next() {
                    let n = b.num_rows();
                    annotate(&out_schema, now(), &b, vec![1; n])
                } else {
                    match st.sub.rx.recv().await {
                        Some(Event::Changes(time, delta)) => {
                            let cols: Vec<ArrayRef> = delta
                                .data
                                .columns()
                                .iter()
                                .take(out_schema.fields().len() - 2)
                                .cloned()
                                .collect();
                            let data = RecordBatch::try_new(
                                Arc::new(Schema::new(out_schema.fields()[2..].to_vec())),
                                cols,
                            );
                            match data {
                                Ok(d) => {
                                    annotate(&out_schema, time, &d, delta.weights.values().to_vec())
                                }
                                Err(e) => Err(PgWireError::ApiError(Box::new(e))),
                            }
                        }
                        Some(Event::Closed(reason)) => {
                            st.done = true;
                            Err(to_pgwire(EddyError::query(
                                "57014",
                                format!("subscription ended: {reason}"),
                            )))
                        }
                        None => {
                            st.done = true;
                            if st.sub.lagged() {
                                Err(to_pgwire(EddyError::query(
                                "53000",
                                "subscription ended: the client fell more than 1024 changes behind",
                            )))
                            } else {
                                return None;
                            }
                        }
                    }
                };
                let next = next.map(|b| match st.remaining.as_mut() {
                    Some(r) if b.num_rows() > *r => {
                        let b = b.slice(0, *r);
                        *r = 0;
                        b
                    }
                    Some(r) => {
                        *r -= b.num_rows();
                        b
                    }
                    None => b,
                });
                if next.is_err() {
                    st.done = true;
                }
                Some((next, (st, out_schema)))
            }
        });
    (out_schema, batches)
}

/// Rows of a batch in COPY text format: tab-separated, `\N` for NULL, one line each.
fn copy_text(batch: &RecordBatch, style: &OutputStyle) -> PgWireResult<String> {
    let mut out = String::new();
    for r in 0..batch.num_rows() {
        for (i, c) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            match super::pg_text::format_value_styled(c, r, style) {
                None => out.push_str("\\N"),
                Some(v) => out.push_str(
                    &v.replace('\\', "\\\\")
                        .replace('\t', "\\t")
                        .replace('\n', "\\n"),
                ),
            }
        }
        out.push('\n');
    }
    Ok(out)
}

fn to_response(out: Output, format: &Format, style: Arc<OutputStyle>) -> PgWireResult<Response> {
    match out {
        Output::Rows { schema, batches } => rows_response(&schema, batches, format, style),
        Output::Command(tag) => Ok(Response::Execution(Tag::new(&tag))),
        Output::Transaction { tag, open: true } => Ok(Response::TransactionStart(Tag::new(&tag))),
        Output::Transaction { tag, open: false } => Ok(Response::TransactionEnd(Tag::new(&tag))),
        Output::Subscription {
            schema,
            snapshot,
            subscription,
            limit,
        } => subscription_response(schema, snapshot, subscription, limit, format, None, style),
    }
}

/// Arm the connection's cancel handle for a push query this handler streams itself (for
/// statements run through `do_query`, pgwire arms it).
/// Run a statement, forwarding the NOTICEs it raises (a view's backfill progress) to the
/// client as they come, ahead of its result. The outer error is the client's connection
/// failing; the inner one, the statement's.
async fn execute_with_notices<C>(
    db: &Database,
    client: &mut C,
    session: &mut Session,
    sql: &str,
    params: &[String],
) -> PgWireResult<crate::error::Result<Output>>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    session.notices = Some(tx);
    let out = {
        let run = db.execute(session, sql, params);
        tokio::pin!(run);
        loop {
            tokio::select! {
                out = &mut run => break out,
                Some(text) = rx.recv() => send_notice(client, text).await?,
            }
        }
    };
    session.notices = None;
    while let Ok(text) = rx.try_recv() {
        send_notice(client, text).await?;
    }
    Ok(out)
}

async fn send_notice<C>(client: &mut C, text: String) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    use futures::SinkExt;
    let info = ErrorInfo::new("NOTICE".into(), "00000".into(), text);
    client
        .send(PgWireBackendMessage::NoticeResponse(info.into()))
        .await?;
    Ok(())
}

async fn arm_cancel<C: ClientInfo>(client: &C) -> Option<futures::channel::oneshot::Receiver<()>> {
    match cancel_handle(client) {
        Some(h) => Some(h.start_query().await),
        None => None,
    }
}

/// Send a push query's rows as they come, each flushed, then its CommandComplete.
async fn stream_rows<C>(client: &mut C, mut qr: QueryResponse) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    use futures::SinkExt;
    use pgwire::messages::response::CommandComplete;
    let mut n = 0;
    while let Some(row) = qr.data_rows().next().await {
        client.send(PgWireBackendMessage::DataRow(row?)).await?;
        n += 1;
    }
    let tag: CommandComplete = Tag::new("SELECT").with_rows(n).into();
    client
        .send(PgWireBackendMessage::CommandComplete(tag))
        .await?;
    Ok(())
}

/// A push query's rows until the client cancels it (a CancelRequest, e.g. psql's Ctrl-C):
/// then one 57014 error, as Postgres answers a cancelled statement.
fn until_cancelled<S>(
    batches: S,
    cancel: Option<futures::channel::oneshot::Receiver<()>>,
) -> impl futures::Stream<Item = PgWireResult<RecordBatch>> + Send
where
    S: futures::Stream<Item = PgWireResult<RecordBatch>> + Send + 'static,
{
    let cancelled = async move {
        if let Some(rx) = cancel {
            // Err: the handle was replaced or dropped, which is not a cancel.
            if rx.await.is_ok() {
                return;
            }
        }
        futures::future::pending::<()>().await
    };
    let state = (Box::pin(batches), Box::pin(cancelled), false);
    stream::unfold(state, |(mut batches, mut cancelled, done)| async move {
        if done {
            return None;
        }
        tokio::select! {
            biased;
            _ = &mut cancelled => Some((
                Err(to_pgwire(EddyError::query("57014", "canceling statement due to user request"))),
                (batches, cancelled, true),
            )),
            b = batches.next() => b.map(|b| (b, (batches, cancelled, false))),
        }
    })
}

/// `SUBSCRIBE ...` or `SELECT ... EMIT CHANGES`, alone in its query string.
fn is_push_query(sql: &str) -> bool {
    let sql = copy_subscribe_inner(sql).unwrap_or(sql);
    let upper = sql.trim().trim_end_matches(';').to_uppercase();
    !upper.contains(';')
        && (upper.starts_with("SUBSCRIBE")
            || (upper.starts_with("SELECT") && upper.contains("EMIT CHANGES")))
}

/// `COPY (SUBSCRIBE ...) TO STDOUT` (how psql reads a push query as it streams): the inner
/// statement.
fn copy_subscribe_inner(sql: &str) -> Option<&str> {
    let t = sql.trim().trim_end_matches(';').trim_end();
    let lower = t.to_lowercase();
    if !lower.starts_with("copy") || !lower.ends_with("to stdout") {
        return None;
    }
    let open = t.find('(')?;
    let close = t.rfind(')')?;
    (open < close).then(|| t[open + 1..close].trim())
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    /// Push queries stream: each row is flushed as its change commits (the default path
    /// buffers a response until it completes). Everything else takes the default path.
    async fn on_query<C>(
        &self,
        client: &mut C,
        query: pgwire::messages::simplequery::Query,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::api::PgWireConnectionState;
        use pgwire::messages::data::RowDescription;
        use pgwire::messages::response::CommandComplete;
        if !is_push_query(&query.query) {
            return self._on_query(client, query).await;
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let cancel = arm_cancel(client).await;
        let copy = copy_subscribe_inner(&query.query).map(str::to_string);
        let text = copy
            .clone()
            .unwrap_or_else(|| query.query.trim().to_string());
        let _active = self.activity.statement(client.metadata(), &text);
        let (out, style) = {
            let mut session = self.session.lock().await;
            let out = self.db.execute(&mut session, &text, &[]).await;
            (out, style_of(&session))
        };
        let result: PgWireResult<()> = if copy.is_some() {
            async {
                use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
                let Output::Subscription {
                    schema,
                    snapshot,
                    subscription,
                    limit,
                } = out.map_err(to_pgwire)?
                else {
                    return Err(to_pgwire(EddyError::unsupported(
                        "COPY (...) TO STDOUT of anything but a push query",
                    )));
                };
                let (out_schema, batches) =
                    subscription_batches(schema, snapshot, subscription, limit);
                let batches = until_cancelled(batches, cancel);
                let n = out_schema.fields().len();
                client
                    .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
                        0,
                        n as i16,
                        vec![0; n],
                    )))
                    .await?;
                futures::pin_mut!(batches);
                let mut rows = 0;
                while let Some(b) = batches.next().await {
                    let b = b?;
                    rows += b.num_rows();
                    let text = copy_text(&b, &style)?;
                    client
                        .send(PgWireBackendMessage::CopyData(CopyData::new(
                            bytes::Bytes::from(text),
                        )))
                        .await?;
                }
                client
                    .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
                    .await?;
                let tag: CommandComplete = Tag::new("COPY").with_rows(rows).into();
                client
                    .send(PgWireBackendMessage::CommandComplete(tag))
                    .await?;
                Ok(())
            }
            .await
        } else {
            async {
                let out = out.map(|o| match o {
                    Output::Subscription {
                        schema,
                        snapshot,
                        subscription,
                        limit,
                    } => subscription_response(
                        schema,
                        snapshot,
                        subscription,
                        limit,
                        &Format::UnifiedText,
                        cancel,
                        style,
                    ),
                    other => to_response(other, &Format::UnifiedText, style),
                });
                match out {
                    Ok(out) => match out? {
                        Response::Query(qr) => {
                            let desc =
                                RowDescription::new(qr.row_schema.iter().map(Into::into).collect());
                            client
                                .send(PgWireBackendMessage::RowDescription(desc))
                                .await?;
                            stream_rows(client, qr).await
                        }
                        _ => Err(to_pgwire(EddyError::internal("push query without rows"))),
                    },
                    Err(e) => Err(to_pgwire(e)),
                }
            }
            .await
        };
        if let Err(e) = result {
            let info = match e {
                PgWireError::UserError(info) => *info,
                other => ErrorInfo::new("ERROR".into(), "XX000".into(), other.to_string()),
            };
            client
                .send(PgWireBackendMessage::ErrorResponse(info.into()))
                .await?;
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        pgwire::api::query::send_ready_for_query(client, client.transaction_status()).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match crate::sql::split_statements(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(Box::new(error_info(&e)))]),
        };
        let mut out = Vec::with_capacity(statements.len());
        let several = statements.len() > 1;
        for st in statements {
            if several && is_push_query(&st.text) {
                // Its rows never end, so nothing after it could run.
                out.push(Response::Error(Box::new(error_info(&EddyError::unsupported(
                    "a push query (SUBSCRIBE, EMIT CHANGES) together with other statements in one query string; send it alone",
                )))));
                break;
            }
            let _active = self.activity.statement(client.metadata(), &st.text);
            let r = match cursor::parse(&st.text) {
                Some(Ok(stmt)) => {
                    match self.cursor_statement(stmt, &[], &Format::UnifiedText).await {
                        Ok(r) => Ok(r),
                        Err(PgWireError::UserError(info)) => Err(Response::Error(info)),
                        Err(e) => return Err(e),
                    }
                }
                Some(Err(e)) => Err(Response::Error(Box::new(error_info(&e)))),
                None => {
                    let mut session = self.session.lock().await;
                    let out =
                        execute_with_notices(&self.db, client, &mut session, &st.text, &[]).await?;
                    match out {
                        Ok(o) => Ok(to_response(o, &Format::UnifiedText, style_of(&session))?),
                        Err(e) => Err(Response::Error(Box::new(error_info(
                            &crate::database::shift_position(e, st.char_offset),
                        )))),
                    }
                }
            };
            match r {
                Ok(r) => out.push(r),
                Err(e) => {
                    // Stop at the first error, as Postgres does.
                    out.push(e);
                    break;
                }
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
        if message.target_type != TARGET_TYPE_BYTE_STATEMENT {
            // A cursor is also a portal of that name (psycopg: DECLARE "c", then Describe
            // Portal "c").
            let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
            if client.portal_store().get_portal(name).is_none() {
                let fields = {
                    let cursors = self.cursors.lock().await;
                    cursors
                        .get(name)
                        .map(|c| fields(&c.schema, &Format::UnifiedText))
                };
                if let Some(fields) = fields {
                    let r = DescribePortalResponse::new(fields?);
                    return send_describe_response(client, &r).await;
                }
            }
        }
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
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

    /// A push query executed without a row limit streams: each row is flushed as its
    /// change commits (pgwire's default buffers a result until it completes). With a
    /// row limit (JDBC's fetch size) the default path already suspends and flushes.
    async fn on_execute<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Execute,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = String>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::portal::PortalExecutionState;
        use pgwire::api::PgWireConnectionState;
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(p)) => Some(p),
            _ => None,
        };
        let Some(portal) =
            portal.filter(|p| message.max_rows == 0 && is_push_query(&p.statement.statement))
        else {
            return self._on_execute(client, message).await;
        };
        if !matches!(*portal.state().lock().await, PortalExecutionState::Initial) {
            return self._on_execute(client, message).await;
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let cancel = arm_cancel(client).await;
        let params = self.parameters(&portal).await?;
        let _active = self
            .activity
            .statement(client.metadata(), &portal.statement.statement);
        let (out, style) = {
            let mut session = self.session.lock().await;
            let out = self
                .db
                .execute(&mut session, &portal.statement.statement, &params)
                .await
                .map_err(to_pgwire)?;
            (out, style_of(&session))
        };
        let Output::Subscription {
            schema,
            snapshot,
            subscription,
            limit,
        } = out
        else {
            return Err(to_pgwire(EddyError::internal(
                "push query without a subscription",
            )));
        };
        let Response::Query(qr) = subscription_response(
            schema,
            snapshot,
            subscription,
            limit,
            &portal.result_column_format,
            cancel,
            style,
        )?
        else {
            return Err(to_pgwire(EddyError::internal("push query without rows")));
        };
        stream_rows(client, qr).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
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
        let _active = self
            .activity
            .statement(client.metadata(), &portal.statement.statement);
        if let Some(stmt) = cursor::parse(&portal.statement.statement) {
            let stmt = stmt.map_err(to_pgwire)?;
            return self
                .cursor_statement(stmt, &params, &portal.result_column_format)
                .await;
        }
        let mut session = self.session.lock().await;
        let out = execute_with_notices(
            &self.db,
            client,
            &mut session,
            &portal.statement.statement,
            &params,
        )
        .await?
        .map_err(to_pgwire)?;
        to_response(out, &portal.result_column_format, style_of(&session))
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
        if let Some(stmt) = cursor::parse(sql) {
            let stmt = stmt.map_err(to_pgwire)?;
            let fields = self.cursor_fields(&stmt, &Format::UnifiedText).await?;
            return Ok(DescribeStatementResponse::new(vec![], fields));
        }
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
        if let Some(stmt) = cursor::parse(&portal.statement.statement) {
            let stmt = stmt.map_err(to_pgwire)?;
            return Ok(DescribePortalResponse::new(
                self.cursor_fields(&stmt, &portal.result_column_format)
                    .await?,
            ));
        }
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
