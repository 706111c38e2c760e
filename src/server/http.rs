//! The HTTP endpoint (`--http-listen`): `/metrics` in the Prometheus text format (or
//! OpenMetrics, when the scraper asks for it), encoded by `prometheus-client`, and
//! `/health`. Read-only; one short request per connection (HTTP/1.0 style: the response
//! ends when the connection closes), which is all Prometheus and health probes need.
//!
//! A request can never touch the database's state: handlers only read it, and a malformed
//! or slow request only costs its own connection.

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

/// Serve HTTP on `listener` until the task is dropped.
pub async fn serve_http(db: Arc<Database>, listener: TcpListener) -> std::io::Result<()> {
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
            let r = tokio::time::timeout(REQUEST_TIMEOUT, handle(socket, db, &registry)).await;
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
