//! The checks after each restart of the crash soak: the base relations against the model
//! (reconciling the statements in flight at the kill), every view against DataFusion over
//! the model, the generated sources against the reference generator, and the Kafka
//! stream's offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;

use crate::common::{self, query_rows};
use crate::workload::{Model, Seen, User, Write, KEYS};

/// The generated sources' first event time (the nexmark reference default), epoch ms.
const GENERATED_BASE_MS: i64 = 1_436_918_400_000;

/// The database the soak restarts again and again: a stream and a table the sessions
/// write, a view of each kind (aggregate with min/max, tumbling window under a watermark,
/// stream–table join, global count, aggregate over a table), and two generated sources.
pub const SCHEMA: &[&str] = &[
    "CREATE STREAM events (id BIGINT, k INT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' MINUTE)",
    "CREATE TABLE users (id INT PRIMARY KEY, region TEXT, score BIGINT)",
    "CREATE MATERIALIZED VIEW per_key AS SELECT k, count(*) AS n, sum(v) AS total, min(v) AS lo, max(v) AS hi FROM events GROUP BY k",
    "CREATE MATERIALIZED VIEW per_10s AS SELECT window_start, window_end, count(*) AS n FROM TUMBLE(events, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end",
    "CREATE MATERIALIZED VIEW enriched AS SELECT e.k, u.region, count(*) AS n, sum(e.v) AS total FROM events e JOIN users u ON e.k = u.id GROUP BY e.k, u.region",
    "CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(v) AS total FROM events",
    "CREATE MATERIALIZED VIEW by_region AS SELECT region, count(*) AS n, sum(score) AS total, min(score) AS lo, max(score) AS hi FROM users GROUP BY region",
    // Generated sources: event time 1 ms per event, so every event has its own timestamp.
    "CREATE SOURCE nx WITH (connector = 'nexmark', rate = 400, inter_event_delay_us = 1000)",
    "CREATE MATERIALIZED VIEW bids_per_bidder AS SELECT bidder % 10 AS b, count(*) AS n, sum(price) AS total, max(price) AS hi FROM bid GROUP BY bidder % 10",
    "CREATE STREAM dg (k INT, v BIGINT, ts TIMESTAMP) WITH (connector = 'datagen', rate = 300, seed = 7, TIMESTAMP = 'ts')",
];

/// The Kafka stream (fed by the producer in processes.rs) and a view over it.
pub const KAFKA_SCHEMA: &[&str] = &[
    "CREATE STREAM kev (k VARCHAR KEY, seq BIGINT) WITH (KAFKA_TOPIC = 'kev', VALUE_FORMAT = 'JSON')",
    "CREATE MATERIALIZED VIEW kev_per_key AS SELECT k, count(*) AS n, sum(seq) AS total FROM kev GROUP BY k",
];

/// A view as the server maintains it, and the same answer as a batch query over the
/// test's model: `events (id, k, v, t, late, joined_region)` with `t` in epoch seconds,
/// `late` for rows the window view must drop and `joined_region` the `users.region` of
/// `k` when the row was written; `users (id, region, score)`.
struct View {
    name: &'static str,
    server: &'static str,
    oracle: &'static str,
}

const VIEWS: &[View] = &[
    View {
        name: "per_key",
        server: "SELECT k, n, total, lo, hi FROM per_key",
        oracle: "SELECT k, count(*), sum(v), min(v), max(v) FROM events GROUP BY k",
    },
    View {
        name: "per_10s",
        server: "SELECT to_unixtime(window_start), to_unixtime(window_end), n FROM per_10s",
        oracle: "SELECT w, w + 10, count(*) FROM (SELECT t - t % 10 AS w FROM events WHERE NOT late) AS x GROUP BY w",
    },
    View {
        name: "enriched",
        server: "SELECT k, region, n, total FROM enriched",
        oracle: "SELECT k, joined_region, count(*), sum(v) FROM events WHERE joined_region IS NOT NULL GROUP BY k, joined_region",
    },
    View {
        name: "total",
        server: "SELECT n, total FROM total",
        oracle: "SELECT count(*), sum(v) FROM events",
    },
    View {
        name: "by_region",
        server: "SELECT region, n, total, lo, hi FROM by_region",
        oracle: "SELECT region, count(*), sum(score), min(score), max(score) FROM users GROUP BY region",
    },
];

/// Sorted `a|b|c` rows of a server query.
async fn server_rows(c: &tokio_postgres::Client, sql: &str) -> Result<Vec<String>, String> {
    let mut rows: Vec<String> = query_rows(c, sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))?
        .into_iter()
        .map(|r| r.join("|"))
        .collect();
    rows.sort();
    Ok(rows)
}

/// Rows only on one side, as a diff: `-` expected and missing, `+` there and unexpected
/// (the first 40 lines, and how many more).
fn diff(expected: &[String], got: &[String]) -> String {
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    for r in expected {
        *count.entry(r).or_default() += 1;
    }
    for r in got {
        *count.entry(r).or_default() -= 1;
    }
    let lines: Vec<String> = count
        .into_iter()
        .flat_map(|(row, n)| {
            let sign = if n > 0 { '-' } else { '+' };
            (0..n.abs()).map(move |_| format!("  {sign} {row}"))
        })
        .collect();
    let mut out = lines[..lines.len().min(40)].join("\n");
    if lines.len() > 40 {
        out.push_str(&format!("\n  ... {} more lines", lines.len() - 40));
    }
    out
}

/// Compare the server's `events` and `users` with the model, deciding for each statement
/// in flight at the kill whether it was applied (all of it) or not (none of it). Applies
/// the applied ones to the model and returns how many there were.
fn reconcile(
    model: &mut Model,
    in_flight: &[Write],
    events: Vec<Vec<String>>,
    users: Vec<Vec<String>>,
) -> Result<usize, String> {
    let num = |s: &str| -> Result<i64, String> {
        s.parse::<i64>().map_err(|_| format!("not a number: {s:?}"))
    };
    let mut stored: BTreeMap<i64, (i32, i64, i64)> = BTreeMap::new();
    for r in &events {
        let id = num(&r[0])?;
        let row = (num(&r[1])? as i32, num(&r[2])?, num(&r[3])?);
        if stored.insert(id, row).is_some() {
            return Err(format!("events: row {id} is there twice (applied twice?)"));
        }
    }
    let mut lost = Vec::new();
    for (id, e) in &model.events {
        match stored.remove(id) {
            None => lost.push(format!("{e:?}")),
            Some(row) if row != (e.k, e.v, e.t) => {
                return Err(format!("events: row {id} is {row:?}, was written as {e:?}"))
            }
            Some(_) => {}
        }
    }
    if !lost.is_empty() {
        return Err(format!(
            "events: {} acknowledged rows are lost, e.g. {}",
            lost.len(),
            lost[..lost.len().min(5)].join(", ")
        ));
    }
    let mut applied = Vec::new();
    for w in in_flight {
        if let Write::Insert(rows) = w {
            let there = rows.iter().filter(|e| stored.contains_key(&e.id)).count();
            if there == rows.len() {
                for e in rows {
                    let row = stored.remove(&e.id).expect("counted above");
                    if row != (e.k, e.v, e.t) {
                        return Err(format!(
                            "events: row {} is {row:?}, was written as {e:?}",
                            e.id
                        ));
                    }
                }
                applied.push(w.clone());
            } else if there > 0 {
                return Err(format!(
                    "events: a statement in flight at the kill is partly applied ({there} of {} rows): {}",
                    rows.len(),
                    w.sql()
                ));
            }
        }
    }
    if !stored.is_empty() {
        return Err(format!(
            "events: {} rows no statement wrote, e.g. {:?}",
            stored.len(),
            stored.iter().take(5).collect::<Vec<_>>()
        ));
    }

    let mut server: BTreeMap<i32, User> = BTreeMap::new();
    for r in &users {
        let id = num(&r[0])? as i32;
        let u = User {
            region: r[1].clone(),
            score: num(&r[2])?,
        };
        if server.insert(id, u).is_some() {
            return Err(format!("users: key {id} is there twice"));
        }
    }
    let restrict = |m: &BTreeMap<i32, User>, keys: &[i32]| -> BTreeMap<i32, User> {
        m.iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, u)| (*k, u.clone()))
            .collect()
    };
    let touched: Vec<i32> = in_flight.iter().flat_map(|w| w.user_keys()).collect();
    let untouched: Vec<i32> = (0..KEYS).filter(|k| !touched.contains(k)).collect();
    let (want, got) = (
        restrict(&model.users, &untouched),
        restrict(&server, &untouched),
    );
    if let Some(stray) = server.keys().find(|k| !(0..KEYS).contains(*k)) {
        return Err(format!("users: key {stray}, which no statement wrote"));
    }
    if want != got {
        let differ: Vec<String> = untouched
            .iter()
            .filter(|k| want.get(k) != got.get(k))
            .map(|k| format!("{k}: expected {:?}, got {:?}", want.get(k), got.get(k)))
            .collect();
        return Err(format!(
            "users: keys no statement in flight touched differ from the acknowledged writes:\n  {}",
            differ.join("\n  ")
        ));
    }
    for w in in_flight {
        let keys = w.user_keys();
        if keys.is_empty() {
            continue;
        }
        let before = restrict(&model.users, &keys);
        let mut after = Model {
            events: BTreeMap::new(),
            users: before.clone(),
        };
        w.apply(&mut after);
        let now = restrict(&server, &keys);
        if now == after.users && now != before {
            applied.push(w.clone());
        } else if now != before {
            return Err(format!(
                "users: a statement in flight at the kill is neither applied nor absent: {}\n  before   {before:?}\n  after    {:?}\n  got      {now:?}",
                w.sql(),
                after.users
            ));
        }
    }
    for w in &applied {
        w.apply(model);
    }
    Ok(applied.len())
}

/// The model as DataFusion tables `events` and `users`.
fn oracle_context(model: &Model) -> SessionContext {
    let ctx = SessionContext::new();
    let ev = model.events.values();
    let events = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("k", DataType::Int32, false),
            Field::new("v", DataType::Int64, false),
            Field::new("t", DataType::Int64, false),
            Field::new("late", DataType::Boolean, false),
            Field::new("joined_region", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(ev.clone().map(|e| e.id))),
            Arc::new(Int32Array::from_iter_values(ev.clone().map(|e| e.k))),
            Arc::new(Int64Array::from_iter_values(ev.clone().map(|e| e.v))),
            Arc::new(Int64Array::from_iter_values(ev.clone().map(|e| e.t))),
            Arc::new(BooleanArray::from(
                ev.clone().map(|e| e.late).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                ev.map(|e| e.joined_region.clone()).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("events batch");
    let us = model.users.iter();
    let users = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("region", DataType::Utf8, false),
            Field::new("score", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int32Array::from_iter_values(us.clone().map(|(id, _)| *id))),
            Arc::new(StringArray::from_iter_values(
                us.clone().map(|(_, u)| u.region.clone()),
            )),
            Arc::new(Int64Array::from_iter_values(us.map(|(_, u)| u.score))),
        ],
    )
    .expect("users batch");
    ctx.register_batch("events", events).expect("register");
    ctx.register_batch("users", users).expect("register");
    ctx
}

async fn oracle_rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("oracle {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("oracle {sql}: {e}"));
    common::render(&batches)
}

/// The Nexmark events `[0, n)`, regenerated by the reference generator this test links
/// (the `nexmark` crate) with the source's options, summarised as the checks need them.
#[derive(Default)]
pub struct NexmarkOracle {
    pub events: u64,
    pub persons: i64,
    pub auctions: i64,
    pub bids: i64,
    /// bidder % 10 → (bids, sum of prices, max price)
    pub per_bidder: BTreeMap<i64, (i64, i64, i64)>,
}

impl NexmarkOracle {
    pub fn advance(&mut self, to: u64) {
        let config = nexmark::config::NexmarkConfig {
            base_time: GENERATED_BASE_MS as u64,
            first_rate: 1,
            next_rate: 1,
            us_per_unit: 1000,
            ..Default::default()
        };
        let events = nexmark::EventGenerator::new(config)
            .with_offset(self.events)
            .take(to.saturating_sub(self.events) as usize);
        for e in events {
            match e {
                nexmark::event::Event::Person(_) => self.persons += 1,
                nexmark::event::Event::Auction(_) => self.auctions += 1,
                nexmark::event::Event::Bid(b) => {
                    self.bids += 1;
                    let s = self.per_bidder.entry(b.bidder as i64 % 10).or_default();
                    s.0 += 1;
                    s.1 += b.price as i64;
                    s.2 = s.2.max(b.price as i64);
                }
            }
        }
        self.events = self.events.max(to);
    }
}

/// State the checks carry from one restart to the next.
#[derive(Default)]
pub struct Progress {
    pub nexmark: NexmarkOracle,
    /// Generated events per source at the last restart.
    pub generated: BTreeMap<String, i64>,
    pub kafka: BTreeMap<i64, i64>,
}

/// What one restart's checks found, for the iteration's line.
#[derive(Default)]
pub struct Checked {
    pub applied: usize,
    pub nexmark: i64,
    pub datagen: i64,
    pub kafka: i64,
}

pub async fn verify(
    c: &tokio_postgres::Client,
    model: &mut Model,
    in_flight: &[Write],
    seen: &Seen,
    progress: &mut Progress,
    kafka: bool,
) -> Result<Checked, String> {
    let q = |sql: &'static str| async move {
        query_rows(c, sql).await.map_err(|e| format!("{sql}: {e}"))
    };
    let mut checked = Checked::default();
    // Base relations: exactly the acknowledged writes, in-flight ones whole or not at all.
    let events = q("SELECT id, k, v, to_unixtime(ts) FROM events").await?;
    let users = q("SELECT id, region, score FROM users").await?;
    checked.applied = reconcile(model, in_flight, events, users)?;

    // Views: equal to DataFusion over the model.
    let ctx = oracle_context(model);
    for v in VIEWS {
        let expected = oracle_rows(&ctx, v.oracle).await;
        let got = server_rows(c, v.server).await?;
        if expected != got {
            return Err(format!(
                "view {} differs from the batch answer over the acknowledged writes (- expected, + server):\n{}",
                v.name,
                diff(&expected, &got)
            ));
        }
    }
    let late = model.events.values().filter(|e| e.late).count().to_string();
    let counted = q("SELECT late_rows FROM eddy_relations WHERE name = 'per_10s'").await?;
    if counted != vec![vec![late.clone()]] {
        return Err(format!(
            "per_10s counts {counted:?} late rows; {late} were written late"
        ));
    }
    if seen.total > model.events.len() as i64 {
        return Err(format!(
            "a subscriber saw total.n = {} before the kill; after the restart there are {} rows",
            seen.total,
            model.events.len()
        ));
    }

    // Generated sources: every event once, none lost, the count never going back, views
    // equal to the reference generator's events. One query each: one snapshot.
    let rows = q("SELECT '#events' AS b, events AS n, CAST(NULL AS BIGINT) AS total, CAST(NULL AS BIGINT) AS hi FROM eddy_sources WHERE name = 'nx' \
         UNION ALL SELECT '#person', count(*), count(DISTINCT id), count(DISTINCT date_time) FROM person \
         UNION ALL SELECT '#auction', count(*), count(DISTINCT id), count(DISTINCT date_time) FROM auction \
         UNION ALL SELECT '#bid', count(*), count(DISTINCT date_time), CAST(NULL AS BIGINT) FROM bid \
         UNION ALL SELECT CAST(b AS VARCHAR), n, total, hi FROM bids_per_bidder")
    .await?;
    let mut got: Vec<String> = rows.iter().map(|r| r.join("|")).collect();
    got.sort();
    let events: i64 = rows
        .iter()
        .find(|r| r[0] == "#events")
        .and_then(|r| r[1].parse().ok())
        .ok_or_else(|| format!("no nexmark source in eddy_sources: {rows:?}"))?;
    check_generated("nx", events, seen, progress)?;
    progress.nexmark.advance(events as u64);
    let n = &progress.nexmark;
    let mut expected = vec![
        format!("#events|{events}|NULL|NULL"),
        format!("#person|{0}|{0}|{0}", n.persons),
        format!("#auction|{0}|{0}|{0}", n.auctions),
        format!("#bid|{0}|{0}|NULL", n.bids),
    ];
    for (b, (count, total, hi)) in &n.per_bidder {
        expected.push(format!("{b}|{count}|{total}|{hi}"));
    }
    expected.sort();
    if expected != got {
        return Err(format!(
            "nexmark streams or bids_per_bidder differ from the reference generator's first {events} events (- expected, + server):\n{}",
            diff(&expected, &got)
        ));
    }
    checked.nexmark = events;

    let rows = q("SELECT (SELECT events FROM eddy_sources WHERE name = 'dg') AS e, count(*) AS n, count(DISTINCT ts) AS d, CAST(min(ts) AS BIGINT) AS lo, CAST(max(ts) AS BIGINT) AS hi FROM dg").await?;
    let events: i64 = rows[0][0]
        .parse()
        .map_err(|_| format!("no datagen source: {rows:?}"))?;
    check_generated("dg", events, seen, progress)?;
    // Row n has event time base + n ms: n rows with distinct times from the first to the
    // n-th are rows 0..n, each once.
    let want = if events == 0 {
        vec![
            "0".to_string(),
            "0".into(),
            "0".into(),
            "NULL".into(),
            "NULL".into(),
        ]
    } else {
        let base_us = GENERATED_BASE_MS * 1000;
        vec![
            events.to_string(),
            events.to_string(),
            events.to_string(),
            base_us.to_string(),
            (base_us + (events - 1) * 1000).to_string(),
        ]
    };
    if rows[0] != want {
        return Err(format!(
            "datagen stream dg: (events, rows, distinct times, first, last) = {:?}, expected {want:?}",
            rows[0]
        ));
    }
    checked.datagen = events;

    if kafka {
        checked.kafka = verify_kafka(c, seen, progress).await?;
    }
    Ok(checked)
}

/// A generated source's event count after a restart: at least what a reader saw committed
/// before the kill, and never less than at the last restart.
fn check_generated(
    name: &str,
    events: i64,
    seen: &Seen,
    progress: &mut Progress,
) -> Result<(), String> {
    let before = progress.generated.get(name).copied().unwrap_or(0);
    let observed = seen.generated.get(name).copied().unwrap_or(0);
    if events < before.max(observed) {
        return Err(format!(
            "generated source {name} is at {events} events after the restart; it was at {before} at the last restart and a reader saw {observed} before the kill"
        ));
    }
    progress.generated.insert(name.to_string(), events);
    Ok(())
}

/// The Kafka stream after a restart: per partition, offsets `0..n` each exactly once
/// (nothing consumed twice, no gap up to where it resumed), at least what a reader saw
/// before the kill; the record's sequence number matches where the producer sent it; and
/// the view equals the rows. One query: one snapshot.
async fn verify_kafka(
    c: &tokio_postgres::Client,
    seen: &Seen,
    progress: &mut Progress,
) -> Result<i64, String> {
    let sql =
        "SELECT 'row' AS src, k, seq, CAST(rowpartition AS BIGINT) AS p, rowoffset AS o FROM kev \
               UNION ALL SELECT 'view', k, n, total, CAST(NULL AS BIGINT) FROM kev_per_key";
    let rows = query_rows(c, sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("kafka: not a number {s:?}"))
    };
    let mut offsets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut seqs = BTreeSet::new();
    let mut per_key: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut view: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        if r[0] == "row" {
            let (seq, p, o) = (num(&r[2])?, num(&r[3])?, num(&r[4])?);
            offsets.entry(p).or_default().push(o);
            if !seqs.insert(seq) {
                return Err(format!("kafka: record seq {seq} consumed twice"));
            }
            if seq % 3 != p || r[1] != format!("k{}", seq % 7) {
                return Err(format!(
                    "kafka: record {r:?} is not what was produced there"
                ));
            }
            let e = per_key.entry(r[1].clone()).or_default();
            e.0 += 1;
            e.1 += seq;
        } else {
            view.insert(r[1].clone(), (num(&r[2])?, num(&r[3])?));
        }
    }
    let mut total = 0;
    for (p, mut os) in offsets {
        os.sort();
        let n = os.len() as i64;
        if os.iter().copied().ne(0..n) {
            let dups = os.windows(2).filter(|w| w[0] == w[1]).count();
            return Err(format!(
                "kafka partition {p}: {n} records, offsets {}..={} with {dups} repeated: not each of 0..{n} once",
                os[0],
                os[os.len() - 1]
            ));
        }
        let before = progress.kafka.get(&p).copied().unwrap_or(0);
        let observed = seen.kafka.get(&p).copied().unwrap_or(0);
        if n < before.max(observed) {
            return Err(format!(
                "kafka partition {p}: {n} records after the restart; {before} at the last restart, a reader saw {observed} before the kill"
            ));
        }
        progress.kafka.insert(p, n);
        total += n;
    }
    for (p, n) in progress.kafka.clone() {
        if n > 0 && !rows.iter().any(|r| r[0] == "row" && r[3] == p.to_string()) {
            return Err(format!("kafka partition {p}: had {n} records, now none"));
        }
    }
    if view != per_key {
        return Err(format!(
            "kafka view kev_per_key {view:?} differs from its rows {per_key:?}"
        ));
    }
    Ok(total)
}
