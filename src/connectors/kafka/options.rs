//! The WITH (...) options of Kafka-backed streams, tables, CREATE ... AS and sinks, in
//! both spellings: ksqlDB (`KAFKA_TOPIC`, `VALUE_FORMAT`, `KEY_FORMAT`, `PARTITIONS`, ...)
//! and RisingWave (`connector='kafka'`, `topic`, `properties.bootstrap.server`,
//! `scan.startup.mode`, and the `FORMAT ... ENCODE ...` clause, which the parser turns
//! into the options `format_type` and `encode`).

use crate::error::{EddyError, Result};

/// How a record key or value is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON object whose fields are the columns (case-insensitive), or for a single
    /// key column, a bare JSON value.
    Json,
    /// Comma-separated values, in column order.
    Delimited,
    /// Kafka's own serializers, one column: UTF-8 text, or big-endian INT/BIGINT/DOUBLE.
    Kafka,
}

impl Format {
    fn parse(what: &str, v: &str) -> Result<Format> {
        match v.to_uppercase().as_str() {
            "JSON" => Ok(Format::Json),
            "DELIMITED" | "CSV" => Ok(Format::Delimited),
            "KAFKA" => Ok(Format::Kafka),
            other => Err(EddyError::unsupported(format!(
                "{what}='{other}' is not supported; JSON, DELIMITED and KAFKA are"
            ))),
        }
    }
}

/// Where a new source starts when eddy has no stored offsets for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    Earliest,
    Latest,
}

/// A Kafka-backed stream or table (a source).
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub topic: String,
    /// Per-source broker list; the server's `--kafka-brokers` otherwise.
    pub brokers: Option<String>,
    pub value_format: Format,
    pub key_format: Format,
    /// Create the topic with this many partitions if it does not exist.
    pub partitions: Option<i32>,
    pub startup: Startup,
    /// chrono format for string values of the TIMESTAMP column.
    pub timestamp_format: Option<String>,
    /// RisingWave `FORMAT UPSERT`: keyed upserts, a null value deleting the key.
    pub upsert: bool,
}

/// Where a view's changes are written (ksqlDB CREATE ... WITH (KAFKA_TOPIC) AS, or
/// CREATE SINK).
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub topic: String,
    pub brokers: Option<String>,
    pub partitions: Option<i32>,
    /// Upserts keyed by the view's key, deletes as tombstones; otherwise plain inserts.
    pub upsert: Option<bool>,
    /// `KEY_FORMAT` of a ksqlDB `CREATE ... AS` sink (default: KAFKA for one key column).
    pub key_format: Option<Format>,
}

/// Options, lower-cased names with their values.
pub type Options = [(String, String)];

fn get<'a>(opts: &'a Options, names: &[&str]) -> Option<&'a str> {
    opts.iter()
        .find(|(k, _)| names.contains(&k.as_str()))
        .map(|(_, v)| v.as_str())
}

/// The option names this module understands (all others are the caller's business).
pub const NAMES: &[&str] = &[
    "kafka_topic",
    "topic",
    "value_format",
    "key_format",
    "format",
    "partitions",
    "replicas",
    "connector",
    "properties.bootstrap.server",
    "properties.bootstrap.servers",
    "scan.startup.mode",
    "timestamp_format",
    "format_type",
    "encode",
];

/// True when the options ask for Kafka.
pub fn is_kafka(opts: &Options) -> bool {
    opts.iter().any(|(k, _)| NAMES.contains(&k.as_str()))
}

fn check_connector(opts: &Options) -> Result<()> {
    if let Some(c) = get(opts, &["connector"]) {
        if !c.eq_ignore_ascii_case("kafka") {
            return Err(EddyError::unsupported(format!(
                "connector='{c}' is not supported; connector='kafka' is"
            )));
        }
    }
    Ok(())
}

fn topic(opts: &Options) -> Result<String> {
    get(opts, &["kafka_topic", "topic"])
        .map(str::to_string)
        .ok_or_else(|| {
            EddyError::query(
                "22023",
                "a Kafka source or sink needs KAFKA_TOPIC (or topic=...)",
            )
        })
}

fn partitions(opts: &Options) -> Result<Option<i32>> {
    get(opts, &["partitions"])
        .map(|p| {
            p.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                EddyError::query(
                    "22023",
                    format!("PARTITIONS must be a positive integer, not {p}"),
                )
            })
        })
        .transpose()
}

fn brokers(opts: &Options) -> Option<String> {
    get(
        opts,
        &[
            "properties.bootstrap.server",
            "properties.bootstrap.servers",
        ],
    )
    .map(str::to_string)
}

/// RisingWave's FORMAT: PLAIN, UPSERT (DEBEZIUM etc. are refused).
fn format_type(opts: &Options) -> Result<Option<bool>> {
    match get(opts, &["format_type"]).map(|f| f.to_uppercase()) {
        None => Ok(None),
        Some(f) if f == "PLAIN" => Ok(Some(false)),
        Some(f) if f == "UPSERT" => Ok(Some(true)),
        Some(f) => Err(EddyError::unsupported(format!(
            "FORMAT {f} is not supported; FORMAT PLAIN and FORMAT UPSERT are"
        ))),
    }
}

pub fn source_config(opts: &Options) -> Result<SourceConfig> {
    check_connector(opts)?;
    // ksqlDB's FORMAT sets both key and value formats; RisingWave's ENCODE, the value's.
    let both = get(opts, &["format"])
        .map(|f| Format::parse("FORMAT", f))
        .transpose()?;
    let encode = get(opts, &["encode"])
        .map(|f| Format::parse("ENCODE", f))
        .transpose()?;
    let value_format = match get(opts, &["value_format"]) {
        Some(v) => Format::parse("VALUE_FORMAT", v)?,
        None => encode.or(both).unwrap_or(Format::Json),
    };
    let key_format = match get(opts, &["key_format"]) {
        Some(v) => Format::parse("KEY_FORMAT", v)?,
        // RisingWave keys are JSON with ENCODE JSON; ksqlDB's default is KAFKA.
        None => both.or(encode).unwrap_or(Format::Kafka),
    };
    let startup = match get(opts, &["scan.startup.mode"]).map(|s| s.to_lowercase()) {
        None => Startup::Earliest,
        Some(s) if s == "earliest" => Startup::Earliest,
        Some(s) if s == "latest" => Startup::Latest,
        Some(s) => {
            return Err(EddyError::unsupported(format!(
                "scan.startup.mode='{s}' is not supported; earliest and latest are"
            )))
        }
    };
    if let Some(r) = get(opts, &["replicas"]) {
        if r != "1" {
            return Err(EddyError::unsupported(format!(
                "REPLICAS={r}: topics are created with one replica"
            )));
        }
    }
    Ok(SourceConfig {
        topic: topic(opts)?,
        brokers: brokers(opts),
        value_format,
        key_format,
        partitions: partitions(opts)?,
        startup,
        timestamp_format: get(opts, &["timestamp_format"]).map(str::to_string),
        upsert: format_type(opts)? == Some(true),
    })
}

pub fn sink_config(opts: &Options) -> Result<SinkConfig> {
    check_connector(opts)?;
    for (what, names) in [("VALUE_FORMAT", &["value_format", "encode", "format"][..])] {
        if let Some(v) = get(opts, names) {
            if !v.eq_ignore_ascii_case("json") {
                return Err(EddyError::unsupported(format!(
                    "{what}='{v}' for a Kafka sink is not supported; sinks write JSON"
                )));
            }
        }
    }
    if get(opts, &["timestamp_format", "scan.startup.mode"]).is_some() {
        return Err(EddyError::query(
            "22023",
            "TIMESTAMP_FORMAT and scan.startup.mode apply to sources, not sinks",
        ));
    }
    Ok(SinkConfig {
        topic: topic(opts)?,
        brokers: brokers(opts),
        partitions: partitions(opts)?,
        upsert: format_type(opts)?,
        key_format: get(opts, &["key_format"])
            .map(|v| Format::parse("KEY_FORMAT", v))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ksqldb_and_risingwave_spellings() {
        let k = source_config(&opts(&[
            ("kafka_topic", "t"),
            ("value_format", "delimited"),
            ("partitions", "3"),
        ]))
        .unwrap();
        assert_eq!(
            (k.topic.as_str(), k.value_format, k.key_format, k.partitions),
            ("t", Format::Delimited, Format::Kafka, Some(3))
        );
        let r = source_config(&opts(&[
            ("connector", "kafka"),
            ("topic", "u"),
            ("properties.bootstrap.server", "h:1"),
            ("scan.startup.mode", "latest"),
            ("format_type", "upsert"),
            ("encode", "json"),
        ]))
        .unwrap();
        assert_eq!(r.brokers.as_deref(), Some("h:1"));
        assert_eq!(
            (r.startup, r.upsert, r.key_format),
            (Startup::Latest, true, Format::Json)
        );
        assert!(source_config(&opts(&[("value_format", "json")])).is_err());
        assert!(source_config(&opts(&[("topic", "t"), ("connector", "kinesis")])).is_err());
        assert!(source_config(&opts(&[("topic", "t"), ("value_format", "avro")])).is_err());
        assert!(source_config(&opts(&[("topic", "t"), ("partitions", "0")])).is_err());
        assert!(sink_config(&opts(&[("topic", "t"), ("value_format", "delimited")])).is_err());
    }
}
