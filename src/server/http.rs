//! The HTTP endpoint (`--http-listen`): `/metrics` in the Prometheus text format (or
//! OpenMetrics, when the scraper asks for it), encoded by `prometheus-client`; `/health`;
//! and a read-only web console: `/` (relations with their SQL, dependencies, live counts
//! and throughput sparklines), `/api/relations` (the same as JSON) and `/api/query?sql=`
//! (one SELECT, as JSON). One short request per connection (the response ends when the
//! connection closes), which is all Prometheus, probes and the console need.
//!
//! A request can never change the database: the console's query box runs only a single
//! statement that parses as a SELECT, and a malformed or slow request only costs its own
//! connection.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::database::Database;

/// Requests larger than this are refused (a scrape's request is a few hundred bytes).
const MAX_REQUEST: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve HTTP on `listener` until the task is dropped. With `data_api` false (eddy
/// requires a password on the Postgres port, and HTTP has none), the console's data
/// endpoints (`/api/*`: rows, view definitions) answer 403; metrics and health stay.
pub async fn serve_http(
    db: Arc<Database>,
    listener: TcpListener,
    data_api: bool,
) -> std::io::Result<()> {
    let mut registry = Registry::default();
    db.metrics().register(&mut registry);
    registry.register_collector(Box::new(StateCollector(Arc::downgrade(&db))));
    let registry = Arc::new(registry);
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (db, registry) = (Arc::downgrade(&db), registry.clone());
        tokio::spawn(async move {
            let r = tokio::time::timeout(REQUEST_TIMEOUT, handle(socket, db, &registry, data_api))
                .await;
            if let Ok(Err(e)) = r {
                tracing::debug!(%peer, error = %e, "HTTP request failed");
            }
        });
    }
}

async fn handle(
    mut socket: TcpStream,
    db: Weak<Database>,
    registry: &Registry,
    data_api: bool,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        let mut chunk = [0u8; 1024];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n").or_else(|| find(&buf, b"\n\n")) {
            break String::from_utf8_lossy(&buf[..end]).into_owned();
        }
        if buf.len() > MAX_REQUEST {
            return respond(&mut socket, 431, "text/plain", "request too large\n", false).await;
        }
    };
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut socket, 405, "text/plain", "only GET\n", false).await;
    }
    let path = target.split('?').next().unwrap_or("");
    if path.starts_with("/api/") && !data_api {
        let body = error_json(
            "the console's data is off: eddy requires a password for SQL, and HTTP has none (use psql)",
        );
        return respond(&mut socket, 403, "application/json", &body, head_only).await;
    }
    match path {
        "/metrics" => {
            let openmetrics = accept.contains("application/openmetrics-text");
            let mut body = String::new();
            let encoded = if openmetrics {
                prometheus_client::encoding::text::encode(&mut body, registry)
            } else {
                prometheus_client::encoding::prometheus_text::encode(&mut body, registry)
            };
            if encoded.is_err() {
                return respond(
                    &mut socket,
                    500,
                    "text/plain",
                    "encoding failed\n",
                    head_only,
                )
                .await;
            }
            let content_type = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            };
            respond(&mut socket, 200, content_type, &body, head_only).await
        }
        "/" => {
            respond(
                &mut socket,
                200,
                "text/html; charset=utf-8",
                CONSOLE,
                head_only,
            )
            .await
        }
        "/api/relations" => match db.upgrade() {
            Some(db) => {
                let body = relations_json(&db.relation_stats());
                respond(&mut socket, 200, "application/json", &body, head_only).await
            }
            None => respond(&mut socket, 503, "text/plain", "shutting down\n", head_only).await,
        },
        "/api/query" => {
            let sql = target
                .split_once('?')
                .and_then(|(_, q)| query_param(q, "sql"))
                .unwrap_or_default();
            let (status, body) = match db.upgrade() {
                Some(db) => read_only_query(&db, &sql).await,
                None => (503, error_json("shutting down")),
            };
            respond(&mut socket, status, "application/json", &body, head_only).await
        }
        "/health" => match db.upgrade() {
            Some(db) => {
                // Taking the database lock proves the server is not wedged.
                let relations = db.relation_stats().len();
                let body = format!(
                    "{{\"status\":\"ok\",\"version\":\"{}\",\"relations\":{relations}}}\n",
                    env!("CARGO_PKG_VERSION")
                );
                respond(&mut socket, 200, "application/json", &body, head_only).await
            }
            None => respond(&mut socket, 503, "text/plain", "shutting down\n", head_only).await,
        },
        _ => respond(&mut socket, 404, "text/plain", "not found\n", head_only).await,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn respond(
    socket: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    if !head_only {
        socket.write_all(body.as_bytes()).await?;
    }
    socket.shutdown().await
}

const CONSOLE: &str = include_str!("console.html");

/// Rows a console query returns at most.
const CONSOLE_ROW_LIMIT: usize = 1000;

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

fn relations_json(rels: &[crate::database::RelationStats]) -> String {
    let now = SystemTime::now();
    let list: Vec<serde_json::Value> = rels
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "kind": r.kind,
                "rows": r.rows,
                "rows_in": r.rows_in,
                "rows_out": r.rows_out,
                "epochs": r.epochs,
                "freshness_s": r.freshness(now),
                "watermark_lag_s": r.watermark_lag(now),
                "state_rows": r.state_rows,
                "late_rows": r.late_rows,
                "bad_records": r.bad_records,
                "definition": r.definition,
                "depends_on": r.depends_on,
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// The console's query box: exactly one statement, and it must be a SELECT.
async fn read_only_query(db: &Database, sql: &str) -> (u16, String) {
    use crate::sql::EddyStatement;
    let statements = match crate::sql::split_statements(sql) {
        Ok(s) => s,
        Err(e) => return (400, error_json(&e.to_string())),
    };
    let [statement] = statements.as_slice() else {
        return (400, error_json("one statement at a time"));
    };
    match crate::sql::parse_statement(&statement.text) {
        Ok(EddyStatement::Query(_)) => {}
        Ok(_) => {
            return (
                400,
                error_json(
                    "the console is read-only: only SELECT runs here (use psql to change anything)",
                ),
            )
        }
        Err(e) => return (400, error_json(&e.to_string())),
    }
    let mut session = crate::database::Session::default();
    let (schema, batches) = match db.execute(&mut session, &statement.text, &[]).await {
        Ok(crate::database::Output::Rows { schema, batches }) => (schema, batches),
        Ok(_) => return (400, error_json("not a query")),
        Err(e) => return (400, error_json(&format!("{}: {e}", e.sqlstate()))),
    };
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut rows = Vec::new();
    let mut truncated = false;
    let options = datafusion::arrow::util::display::FormatOptions::default();
    'batches: for b in &batches {
        let formatters = match b
            .columns()
            .iter()
            .map(|c| datafusion::arrow::util::display::ArrayFormatter::try_new(c, &options))
            .collect::<std::result::Result<Vec<_>, _>>()
        {
            Ok(f) => f,
            Err(e) => return (400, error_json(&e.to_string())),
        };
        for i in 0..b.num_rows() {
            if rows.len() == CONSOLE_ROW_LIMIT {
                truncated = true;
                break 'batches;
            }
            let row: Vec<serde_json::Value> = b
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| {
                    if c.is_null(i) {
                        serde_json::Value::Null
                    } else {
                        serde_json::Value::String(f.value(i).to_string())
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    let body = serde_json::json!({ "columns": columns, "rows": rows, "truncated": truncated });
    (200, body.to_string())
}

/// `name`'s value in a query string, percent-decoded (`+` is a space).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))?
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_parameters_are_percent_decoded() {
        use super::query_param;
        assert_eq!(
            query_param("a=1&sql=SELECT%20*+FROM%20t%3B", "sql").as_deref(),
            Some("SELECT * FROM t;")
        );
        assert_eq!(query_param("sql=%E2%82%AC", "sql").as_deref(), Some("€"));
        assert_eq!(query_param("sql=%zz", "sql"), None);
        assert_eq!(query_param("sql=%4", "sql"), None);
        assert_eq!(query_param("x=1", "sql"), None);
    }
}

/// Per-relation and server figures read from the database at each scrape.
#[derive(Debug)]
struct StateCollector(Weak<Database>);

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(db) = self.0.upgrade() else {
            return Ok(());
        };
        let now = SystemTime::now();
        let relations = db.relation_stats();
        let server = db.server_stats();

        let labels = |r: &crate::database::RelationStats| {
            [("relation", r.name.clone()), ("kind", r.kind.to_string())]
        };
        type Get = fn(&crate::database::RelationStats, SystemTime) -> Option<f64>;
        let gauges: [(&str, &str, Option<Unit>, Get); 6] = [
            (
                "eddy_relation_rows",
                "Rows the relation holds.",
                None,
                |r, _| Some(r.rows as f64),
            ),
            (
                "eddy_relation_state_rows",
                "Rows of operator state (groups, join sides, open windows).",
                None,
                |r, _| Some(r.state_rows as f64),
            ),
            (
                "eddy_relation_memory",
                "Approximate memory held by the relation's rows.",
                Some(Unit::Bytes),
                |r, _| Some(r.memory_bytes as f64),
            ),
            (
                "eddy_relation_freshness",
                "Time since a committed epoch last brought the relation input.",
                Some(Unit::Seconds),
                |r, now| r.freshness(now),
            ),
            (
                "eddy_relation_watermark_lag",
                "Wall-clock time minus the relation's watermark (event time).",
                Some(Unit::Seconds),
                |r, now| r.watermark_lag(now),
            ),
            (
                "eddy_relation_last_input_timestamp",
                "When a committed epoch last brought the relation input (Unix time).",
                Some(Unit::Seconds),
                |r, _| {
                    r.last_input_at.and_then(|t| {
                        t.duration_since(SystemTime::UNIX_EPOCH)
                            .ok()
                            .map(|d| d.as_secs_f64())
                    })
                },
            ),
        ];
        for (name, help, unit, get) in gauges {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                unit.as_ref(),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for r in &relations {
                if let Some(v) = get(r, now) {
                    ConstGauge::new(v).encode(family.encode_family(&labels(r))?)?;
                }
            }
        }
        type Count = fn(&crate::database::RelationStats) -> u64;
        let counters: [(&str, &str, Count); 5] = [
            (
                "eddy_relation_rows_in",
                "Change rows received (base relations: applied; views: read from their inputs).",
                |r| r.rows_in,
            ),
            (
                "eddy_relation_rows_out",
                "Change rows emitted (views: applied to the view).",
                |r| r.rows_out,
            ),
            (
                "eddy_relation_epochs",
                "Committed epochs that changed the relation.",
                |r| r.epochs,
            ),
            (
                "eddy_relation_late_rows",
                "Rows that arrived behind the watermark.",
                |r| r.late_rows,
            ),
            (
                "eddy_relation_bad_records",
                "Rows refused at the door and Kafka records that could not be decoded.",
                |r| r.bad_records,
            ),
        ];
        for (name, help, get) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for r in &relations {
                ConstCounter::new(get(r)).encode(family.encode_family(&labels(r))?)?;
            }
        }

        if relations.iter().any(|r| r.disk_bytes.is_some()) {
            let mut family = encoder.encode_descriptor(
                "eddy_relation_disk",
                "Bytes of the relation's entries in the state store (keys and values; a stream's chunks written before the last restart are not counted).",
                Some(&Unit::Bytes),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for r in &relations {
                if let Some(b) = r.disk_bytes {
                    ConstGauge::new(b as f64).encode(family.encode_family(&labels(r))?)?;
                }
            }
        }
        encode_operators(&mut encoder, &db.operator_stats())?;

        let mut gauge = |name: &str, help: &str, unit: Option<Unit>, v: f64| {
            let m = ConstGauge::new(v);
            m.encode(encoder.encode_descriptor(name, help, unit.as_ref(), m.metric_type())?)
        };
        gauge(
            "eddy_connections",
            "Client connections open.",
            None,
            server.connections as f64,
        )?;
        gauge(
            "eddy_log",
            "Size of the log (entries since the last checkpoint).",
            Some(Unit::Bytes),
            server.log_bytes as f64,
        )?;
        if let Some(b) = server.store_bytes {
            gauge(
                "eddy_state_store",
                "Size of the state store on disk.",
                Some(Unit::Bytes),
                b as f64,
            )?;
        }
        let cp = &server.last_checkpoint;
        if cp.id > 0 {
            gauge(
                "eddy_checkpoint_id",
                "Id of the last checkpoint written or loaded.",
                None,
                cp.id as f64,
            )?;
        }
        if let Some(at) = cp.at {
            let age = now.duration_since(at).unwrap_or(Duration::ZERO);
            gauge(
                "eddy_checkpoint_age",
                "Time since the last checkpoint was written.",
                Some(Unit::Seconds),
                age.as_secs_f64(),
            )?;
            gauge(
                "eddy_checkpoint_last_duration",
                "How long the last checkpoint took.",
                Some(Unit::Seconds),
                cp.duration.as_secs_f64(),
            )?;
        }
        Ok(())
    }
}

/// Per dataflow operator (labels `view`, `node`: its position, `operator`: its kind).
fn encode_operators(
    encoder: &mut DescriptorEncoder,
    ops: &[crate::database::OperatorStats],
) -> Result<(), std::fmt::Error> {
    use prometheus_client::metrics::MetricType;
    let labels = |o: &crate::database::OperatorStats| {
        [
            ("view", o.view.clone()),
            ("node", o.node.to_string()),
            ("operator", operator_kind(&o.operator).to_string()),
        ]
    };
    type Get = fn(&crate::database::OperatorStats) -> Option<f64>;
    let families: [(&str, &str, Option<Unit>, MetricType, Get); 6] = [
        (
            "eddy_operator_rows_in",
            "Change rows the operator received.",
            None,
            MetricType::Counter,
            |o| Some(o.rows_in as f64),
        ),
        (
            "eddy_operator_rows_out",
            "Change rows the operator emitted.",
            None,
            MetricType::Counter,
            |o| Some(o.rows_out as f64),
        ),
        (
            "eddy_operator_busy",
            "Time the operator spent processing (zero while metrics are off).",
            Some(Unit::Seconds),
            MetricType::Counter,
            |o| Some(o.busy.as_secs_f64()),
        ),
        (
            "eddy_operator_late_rows",
            "Rows that reached the operator behind the watermark.",
            None,
            MetricType::Counter,
            |o| Some(o.late_rows as f64),
        ),
        (
            "eddy_operator_state_rows",
            "Rows of state the operator holds (groups, join sides, open windows).",
            None,
            MetricType::Gauge,
            |o| Some(o.state_rows as f64),
        ),
        (
            "eddy_operator_state_disk",
            "Bytes of the operator's state tables in the state store.",
            Some(Unit::Bytes),
            MetricType::Gauge,
            |o| o.state_disk_bytes.map(|b| b as f64),
        ),
    ];
    for (name, help, unit, kind, get) in families {
        let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), kind)?;
        for o in ops {
            let Some(v) = get(o) else { continue };
            let labels = labels(o);
            let sample = family.encode_family(&labels)?;
            match kind {
                MetricType::Counter => ConstCounter::new(v).encode(sample)?,
                _ => ConstGauge::new(v).encode(sample)?,
            }
        }
    }
    Ok(())
}

/// What EXPLAIN prints before the colon: `Aggregate: group by [...]` → `Aggregate`,
/// `Interval Join Inner: on ...` → `Interval Join Inner` (few values: a label, not a plan).
fn operator_kind(describe: &str) -> &str {
    describe.split(':').next().unwrap_or(describe).trim()
}
