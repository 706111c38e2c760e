//! Kafka sources and sinks.
//!
//! A Kafka-backed stream or table is read by one task per source (librdkafka fetches all
//! of its partitions concurrently), with partitions `assign`ed at offsets eddy keeps
//! itself: every consumed batch is applied as one epoch whose log write also carries the
//! next offset of each partition (`LogEntry::KafkaOffsets`), so data and position commit
//! together and a restart resumes exactly where the committed views are. Consumer-group
//! commits are never used.
//!
//! A sink is a subscriber of a view: it writes the view's snapshot, then every committed
//! change, to a topic (at-least-once; see docs/sql.md).
//!
//! [`KafkaRuntime`] holds the registered sources and sinks, their status and the recent
//! bad records, which SQL reads as `eddy_kafka_sources` and `eddy_kafka_errors`.

pub mod decode;
pub mod options;
pub mod sink;
pub mod source;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

pub use decode::{BadRecord, Layout, RawRecord};
pub use options::{SinkConfig, SourceConfig};

use crate::error::{EddyError, Result};
use crate::Database;

/// How many recent bad records are kept for `eddy_kafka_errors`.
pub const RECENT_ERRORS: usize = 1000;

/// A bad record, as `eddy_kafka_errors` shows it.
#[derive(Debug, Clone)]
pub struct ErrorEntry {
    pub source: String,
    pub topic: String,
    pub record: BadRecord,
    /// When it was seen, µs since the epoch.
    pub at: i64,
}

/// One source or sink, as `eddy_kafka_sources` shows it.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub kind: &'static str,
    pub topic: String,
    pub brokers: String,
    /// `starting`, `running`, `disconnected: ...`, `error: ...`.
    pub state: String,
    /// Records turned into rows (sources) or produced (sinks).
    pub records: u64,
    pub bad_records: u64,
    /// Next offset per partition (sources).
    pub offsets: BTreeMap<i32, i64>,
}

struct Entry {
    status: Status,
    task: Option<tokio::task::AbortHandle>,
    /// A sink's config, the relation it reads and its CREATE statement.
    sink: Option<(SinkConfig, String, String)>,
}

/// Registered sources and sinks of a database.
#[derive(Default)]
pub struct KafkaRuntime {
    default_brokers: Mutex<Option<String>>,
    entries: Mutex<HashMap<String, Entry>>,
    errors: Mutex<VecDeque<ErrorEntry>>,
    db: OnceLock<Weak<Database>>,
    /// The tokio runtime tasks are spawned on (the one the database was opened in).
    handle: OnceLock<tokio::runtime::Handle>,
}

impl KafkaRuntime {
    pub fn set_default_brokers(&self, brokers: Option<String>) {
        *self.default_brokers.lock().expect("kafka lock") = brokers;
    }

    pub(crate) fn attach(&self, db: Weak<Database>) {
        let _ = self.db.set(db);
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let _ = self.handle.set(h);
        }
    }

    /// The broker list for a source or sink: its own, or the server's.
    pub fn brokers(&self, own: Option<&str>) -> Result<String> {
        own.map(str::to_string)
            .or_else(|| self.default_brokers.lock().expect("kafka lock").clone())
            .ok_or_else(|| {
                EddyError::query(
                    "22023",
                    "no Kafka broker configured: start eddy with --kafka-brokers host:port (or EDDY_KAFKA_BROKERS), or give properties.bootstrap.server",
                )
            })
    }

    pub fn is_registered(&self, name: &str) -> bool {
        self.entries.lock().expect("kafka lock").contains_key(name)
    }

    fn register(&self, name: &str, status: Status) {
        self.entries
            .lock()
            .expect("kafka lock")
            .entry(name.to_string())
            .and_modify(|e| {
                e.status.kind = status.kind;
                e.status.topic = status.topic.clone();
                e.status.brokers = status.brokers.clone();
            })
            .or_insert(Entry {
                status,
                task: None,
                sink: None,
            });
    }

    pub fn is_source(&self, name: &str) -> bool {
        self.status(name).is_some_and(|s| s.kind == "source")
    }

    pub fn is_sink(&self, name: &str) -> bool {
        self.status(name).is_some_and(|s| s.kind == "sink")
    }

    pub fn sink_definition(&self, name: &str) -> Option<(SinkConfig, String, String)> {
        self.entries
            .lock()
            .expect("kafka lock")
            .get(name)
            .and_then(|e| e.sink.clone())
    }

    /// Forget a dropped source or sink, stopping its task.
    pub fn forget(&self, name: &str) {
        if let Some(e) = self.entries.lock().expect("kafka lock").remove(name) {
            if let Some(t) = e.task {
                t.abort();
            }
        }
    }

    pub fn update(&self, name: &str, f: impl FnOnce(&mut Status)) {
        if let Some(e) = self.entries.lock().expect("kafka lock").get_mut(name) {
            f(&mut e.status);
        }
    }

    pub fn set_state(&self, name: &str, state: impl Into<String>) {
        let state = state.into();
        self.update(name, |s| {
            if s.state != state {
                tracing::info!(connector = name, state = %state, "kafka state");
                s.state = state;
            }
        });
    }

    pub fn status(&self, name: &str) -> Option<Status> {
        self.entries
            .lock()
            .expect("kafka lock")
            .get(name)
            .map(|e| e.status.clone())
    }

    pub fn statuses(&self) -> Vec<(String, Status)> {
        let mut v: Vec<(String, Status)> = self
            .entries
            .lock()
            .expect("kafka lock")
            .iter()
            .map(|(n, e)| (n.clone(), e.status.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Next offsets per partition of a source (from the log on restart).
    pub fn offsets(&self, name: &str) -> BTreeMap<i32, i64> {
        self.status(name).map(|s| s.offsets).unwrap_or_default()
    }

    pub fn record_offsets(&self, name: &str, offsets: &[(i32, i64)]) {
        self.update(name, |s| {
            for (p, o) in offsets {
                s.offsets.insert(*p, *o);
            }
        });
    }

    pub fn record_bad(&self, name: &str, topic: &str, bad: &[BadRecord]) {
        if bad.is_empty() {
            return;
        }
        let at = now_micros();
        self.update(name, |s| s.bad_records += bad.len() as u64);
        let mut errors = self.errors.lock().expect("kafka lock");
        for b in bad {
            tracing::warn!(
                source = name,
                topic,
                partition = b.partition,
                offset = b.offset,
                reason = %b.reason,
                "bad Kafka record skipped"
            );
            errors.push_back(ErrorEntry {
                source: name.to_string(),
                topic: topic.to_string(),
                record: b.clone(),
                at,
            });
            if errors.len() > RECENT_ERRORS {
                errors.pop_front();
            }
        }
    }

    pub fn recent_errors(&self) -> Vec<ErrorEntry> {
        self.errors
            .lock()
            .expect("kafka lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Register a source (at CREATE and on replay). Its task starts with [`Self::start`].
    pub fn register_source(&self, name: &str, config: &SourceConfig) {
        let brokers = self.brokers(config.brokers.as_deref()).unwrap_or_default();
        self.register(
            name,
            Status {
                kind: "source",
                topic: config.topic.clone(),
                brokers,
                state: "starting".into(),
                ..Default::default()
            },
        );
    }

    pub fn register_sink(&self, name: &str, config: &SinkConfig, from: &str, sql: &str) {
        let brokers = self.brokers(config.brokers.as_deref()).unwrap_or_default();
        self.register(
            name,
            Status {
                kind: "sink",
                topic: config.topic.clone(),
                brokers,
                state: "starting".into(),
                ..Default::default()
            },
        );
        if let Some(e) = self.entries.lock().expect("kafka lock").get_mut(name) {
            e.sink = Some((config.clone(), from.to_string(), sql.to_string()));
        }
    }

    /// Start the task of every registered source and sink that has none.
    pub(crate) fn start_all(&self) {
        let names: Vec<String> = self
            .entries
            .lock()
            .expect("kafka lock")
            .keys()
            .cloned()
            .collect();
        for n in names {
            self.start(&n);
        }
    }

    /// Start a registered source's or sink's task (no-op outside a tokio runtime, e.g. in
    /// unit tests that open a database synchronously; `start_all` runs later).
    pub(crate) fn start(&self, name: &str) {
        let Some(db) = self.db.get().cloned() else {
            return;
        };
        let Some(handle) = self
            .handle
            .get()
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            return;
        };
        let mut entries = self.entries.lock().expect("kafka lock");
        let Some(e) = entries.get_mut(name) else {
            return;
        };
        if e.task.is_some() {
            return;
        }
        let n = name.to_string();
        let task = if e.status.kind == "source" {
            handle.spawn(source::run(db, n))
        } else {
            handle.spawn(sink::run(db, n))
        };
        e.task = Some(task.abort_handle());
    }

    /// Stop every task (server shutdown, tests).
    pub fn stop_all(&self) {
        for e in self.entries.lock().expect("kafka lock").values_mut() {
            if let Some(t) = e.task.take() {
                t.abort();
            }
        }
    }
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Number of partitions of `topic`, None if it does not exist. Blocking (≤ `timeout`).
pub fn topic_partitions(brokers: &str, topic: &str, timeout: Duration) -> Result<Option<i32>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .and_then(|t| {
            if t.error().is_some() || t.partitions().is_empty() {
                None
            } else {
                Some(t.partitions().len() as i32)
            }
        }))
}

/// Make sure `topic` exists: create it with `partitions` if given, else fail clearly.
/// Blocking; called at CREATE time.
pub fn ensure_topic(brokers: &str, topic: &str, partitions: Option<i32>) -> Result<()> {
    let timeout = Duration::from_secs(10);
    let existing = topic_partitions(brokers, topic, timeout).map_err(|e| {
        EddyError::Kafka(format!("cannot reach the Kafka broker at {brokers}: {e}"))
    })?;
    match (existing, partitions) {
        (Some(_), _) => Ok(()),
        (None, None) => Err(EddyError::query(
            "42704",
            format!("Kafka topic \"{topic}\" does not exist at {brokers}; create it, or give PARTITIONS=n to have eddy create it"),
        )),
        (None, Some(n)) => {
            let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
            let new = NewTopic::new(topic, n, TopicReplication::Fixed(1));
            let opts = AdminOptions::new().operation_timeout(Some(timeout));
            let results = futures::executor::block_on(admin.create_topics([&new], &opts))?;
            for r in results {
                if let Err((t, code)) = r {
                    if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                        return Err(EddyError::Kafka(format!("creating topic {t}: {code}")));
                    }
                }
            }
            // Metadata may lag the creation for a moment.
            for _ in 0..50 {
                if topic_partitions(brokers, topic, timeout)?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(EddyError::Kafka(format!("topic {topic} was created but does not show in metadata")))
        }
    }
}

/// Tasks hold the database weakly, so dropping it ends them.
pub(crate) type Db = Weak<Database>;

pub(crate) fn upgrade(db: &Db) -> Result<Arc<Database>> {
    db.upgrade()
        .ok_or_else(|| EddyError::Kafka("the database was closed".into()))
}
