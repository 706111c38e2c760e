//! The catalog: streams, tables and views, with their schemas, keys, definitions,
//! dependencies and contents. Creation order is a topological order of the dependency
//! graph (a view can only read relations that exist), which is the order deltas are
//! propagated in.

pub mod pg_catalog;

use datafusion::arrow::datatypes::SchemaRef;

use crate::dataflow::Dataflow;
use crate::view::Storage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// Base stream: append-only, fed by INSERT.
    Stream,
    /// Base table: INSERT/UPDATE/DELETE, upsert by primary key if it has one.
    Table,
    /// `CREATE MATERIALIZED VIEW`.
    MaterializedView,
    /// ksqlDB `CREATE TABLE ... AS SELECT`.
    DerivedTable,
    /// ksqlDB `CREATE STREAM ... AS SELECT`.
    DerivedStream,
}

impl RelationKind {
    pub fn noun(&self) -> &'static str {
        match self {
            RelationKind::Stream | RelationKind::DerivedStream => "stream",
            RelationKind::Table | RelationKind::DerivedTable => "table",
            RelationKind::MaterializedView => "materialized view",
        }
    }

    pub fn is_base(&self) -> bool {
        matches!(self, RelationKind::Stream | RelationKind::Table)
    }

    pub fn is_append_only(&self) -> bool {
        matches!(self, RelationKind::Stream | RelationKind::DerivedStream)
    }
}

pub struct Relation {
    pub id: u64,
    pub name: String,
    pub kind: RelationKind,
    pub schema: SchemaRef,
    /// Column indexes of the primary key (tables).
    pub primary_key: Vec<usize>,
    /// Columns declared NOT NULL.
    pub not_null: Vec<usize>,
    /// Columns left out of `SELECT *` (a stream's implicit `rowtime`).
    pub hidden: Vec<usize>,
    /// `VARCHAR(n)` / `CHAR(n)` limits: (column, n characters).
    pub char_limits: Vec<(usize, u64)>,
    /// The defining SELECT of a view.
    pub definition: Option<String>,
    /// The statement that created it, as logged.
    pub create_sql: String,
    /// Relations this one reads.
    pub depends_on: Vec<String>,
    pub storage: Storage,
    pub dataflow: Option<Dataflow>,
    /// The event-time column of a stream, and its watermark.
    pub event_time: Option<EventTime>,
    /// Rows refused at the door (e.g. a NULL event time), since start.
    pub rejected_rows: u64,
    /// A derived stream that passes its source's event-time column through follows that
    /// stream's watermark (so windows over a filtered stream close).
    pub watermark_from: Option<String>,
    /// Change rows applied to this base relation in committed epochs, since start.
    pub activity: Activity,
}

/// What committed epochs brought a base relation (views count in their dataflow).
#[derive(Debug, Clone, Copy, Default)]
pub struct Activity {
    pub rows_in: u64,
    pub epochs: u64,
    pub last_input_at: Option<std::time::SystemTime>,
}

impl Activity {
    /// `rows` change rows applied at `at`; `new_epoch` unless this epoch already counted.
    pub fn applied(&mut self, rows: usize, new_epoch: bool, at: std::time::SystemTime) {
        self.rows_in += rows as u64;
        self.epochs += u64::from(new_epoch);
        self.last_input_at = Some(at);
    }
}

/// Event time of a stream: which column, how out of order rows may arrive, and how long
/// rows are kept for reading. Times are µs since the epoch.
#[derive(Debug, Clone)]
pub struct EventTime {
    pub column: usize,
    pub delay: i64,
    pub retention: Option<i64>,
    /// Largest event time seen.
    pub max_seen: Option<i64>,
}

impl EventTime {
    /// Max event time seen − allowed delay; never goes back (max_seen only grows).
    pub fn watermark(&self) -> Option<i64> {
        self.max_seen.map(|m| m.saturating_sub(self.delay))
    }
}

impl Relation {
    pub fn query_id(&self) -> Option<String> {
        self.dataflow.as_ref().map(|_| {
            let prefix = match self.kind {
                RelationKind::DerivedStream => "CSAS",
                RelationKind::DerivedTable => "CTAS",
                _ => "MV",
            };
            format!("{}_{}_{}", prefix, self.name.to_uppercase(), self.id)
        })
    }
}
