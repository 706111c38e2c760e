//! The task that reads one Kafka-backed stream or table.
//!
//! It assigns every partition of the topic at the offsets eddy stored (or the start
//! mode's position for partitions it never read), then loops: wait for a record, gather
//! what arrives within a few milliseconds (up to [`MAX_BATCH`]), apply it as one epoch.
//! Any failure (broker gone for good, log write failed) tears the consumer down and
//! starts again from eddy's stored offsets, so nothing is skipped or applied twice.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::options::Startup;
use super::{upgrade, Db, RawRecord};
use crate::error::{EddyError, Result};

/// Most records applied in one epoch.
pub const MAX_BATCH: usize = 20_000;
/// How long a batch waits for more records once it has one.
const LINGER: Duration = Duration::from_millis(20);
/// How long without records before the broker's health is checked.
const IDLE: Duration = Duration::from_secs(1);

pub async fn run(db: Db, name: String) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match consume(&db, &name).await {
            Ok(()) => return,
            Err(e) => {
                let Some(d) = db.upgrade() else { return };
                if !d.kafka().is_registered(&name) {
                    return;
                }
                tracing::warn!(source = %name, error = %e, "Kafka source restarting");
                d.kafka().set_state(&name, format!("error: {e}"));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn consume(db: &Db, name: &str) -> Result<()> {
    let (cfg, brokers, stored) = {
        let d = upgrade(db)?;
        let (cfg, _) = d.kafka_source_setup(name)?;
        let brokers = d.kafka().brokers(cfg.brokers.as_deref())?;
        (cfg, brokers, d.kafka().offsets(name))
    };
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        // Required by librdkafka; offsets are never committed to the group.
        .set("group.id", format!("eddy-{name}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set(
            "auto.offset.reset",
            if cfg.startup == Startup::Latest {
                "latest"
            } else {
                "earliest"
            },
        )
        .set("fetch.wait.max.ms", "50")
        .set("log_level", "3")
        .create()?;
    let consumer = Arc::new(consumer);
    let topic = cfg.topic.clone();
    let partitions = partitions(&consumer, &topic, Duration::from_secs(5)).await?;
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        let offset = match stored.get(p) {
            Some(o) => Offset::Offset(*o),
            None if cfg.startup == Startup::Latest => Offset::End,
            None => Offset::Beginning,
        };
        tpl.add_partition_offset(&topic, *p, offset)?;
    }
    consumer.assign(&tpl)?;
    set_state(db, name, "running");
    loop {
        let first = match tokio::time::timeout(IDLE, consumer.recv()).await {
            Err(_) => {
                if db.strong_count() == 0 {
                    return Ok(());
                }
                // Idle: say whether the broker is there.
                match partitions_now(&consumer, &topic).await {
                    Ok(n) if n != partitions.len() => {
                        return Err(EddyError::Kafka(format!(
                            "topic {topic} now has {n} partitions; reassigning"
                        )))
                    }
                    Ok(_) => set_state(db, name, "running"),
                    Err(e) => set_state(db, name, format!("disconnected: {e}")),
                }
                continue;
            }
            Ok(Err(e)) => {
                // librdkafka reconnects by itself and resumes from its fetch position.
                set_state(db, name, format!("disconnected: {e}"));
                continue;
            }
            Ok(Ok(m)) => raw(&m),
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(raw(&m)),
                _ => break,
            }
        }
        let d = upgrade(db)?;
        if !d.kafka().is_registered(name) {
            return Ok(());
        }
        d.ingest_kafka(name, &topic, batch).await?;
        d.kafka().set_state(name, "running");
    }
}

fn set_state(db: &Db, name: &str, state: impl Into<String>) {
    if let Some(d) = db.upgrade() {
        d.kafka().set_state(name, state);
    }
}

fn raw(m: &rdkafka::message::BorrowedMessage<'_>) -> RawRecord {
    RawRecord {
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
    }
}

async fn partitions_now(consumer: &Arc<StreamConsumer>, topic: &str) -> Result<usize> {
    partitions(consumer, topic, Duration::from_secs(2))
        .await
        .map(|p| p.len())
}

/// The topic's partition ids (blocking metadata call, off the async workers).
async fn partitions(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>> {
    let c = consumer.clone();
    let t = topic.to_string();
    let md = tokio::task::spawn_blocking(move || c.fetch_metadata(Some(&t), timeout))
        .await
        .map_err(|e| EddyError::internal(format!("metadata task: {e}")))??;
    let found = md.topics().iter().find(|x| x.name() == topic);
    match found {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        }
        _ => Err(EddyError::Kafka(format!("topic {topic} does not exist"))),
    }
}
