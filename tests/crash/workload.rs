//! The workload of the crash soak: what each writer session sends (deterministic from the
//! seed), the model of what acknowledged statements add up to, and the tasks that write,
//! subscribe and observe until the server is killed under them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::SimpleQueryMessage;

use crate::common::query_rows;

/// Keys of `users` (and the join keys of `events`).
pub const KEYS: i32 = 64;
/// Key `id` belongs to session `id % OWNERS`; a 3-writer iteration leaves one owner idle.
pub const OWNERS: i32 = 4;
/// 2026-01-01 00:00:00 UTC: event time of iteration 0.
pub const BASE: i64 = 1_767_225_600;
/// Event time advances this much per iteration (seconds)...
pub const ITERATION_SPAN: i64 = 600;
/// ...and the load rows of an iteration lie in its first `ROW_SPREAD` seconds.
pub const ROW_SPREAD: i64 = 60;

/// A deterministic stream of seeds from one (splitmix64).
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A row of the stream `events`, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: i64,
    pub k: i32,
    pub v: i64,
    /// Event time, epoch seconds.
    pub t: i64,
    /// Late for the window view when written (the test writes these on purpose only).
    pub late: bool,
    /// `users.region` of `k` when the row was written (what the stream–table join sees).
    pub joined_region: Option<String>,
}

/// A row of the table `users` (keyed by its id).
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub region: String,
    pub score: i64,
}

/// What the acknowledged writes add up to: what `events` and `users` must hold.
#[derive(Default)]
pub struct Model {
    pub events: BTreeMap<i64, Event>,
    pub users: BTreeMap<i32, User>,
}

/// One statement a session sends.
#[derive(Clone, Debug)]
pub enum Write {
    /// `INSERT INTO events VALUES ...`, one row or several.
    Insert(Vec<Event>),
    /// `INSERT INTO users VALUES ...`: upserts by key.
    Upsert(Vec<(i32, User)>),
    /// `DELETE FROM users WHERE id = k` (or `id IN (...)`).
    Delete(Vec<i32>),
    /// `UPDATE users SET score = score + by WHERE id = k`: not idempotent, so applying it
    /// twice shows.
    Bump {
        id: i32,
        by: i64,
    },
    Checkpoint,
}

pub fn ts_literal(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("event time in range")
        .naive_utc()
        .format("'%Y-%m-%d %H:%M:%S'")
        .to_string()
}

impl Write {
    pub fn sql(&self) -> String {
        let list = |items: Vec<String>| items.join(", ");
        match self {
            Write::Insert(rows) => format!(
                "INSERT INTO events VALUES {}",
                list(
                    rows.iter()
                        .map(|e| format!("({}, {}, {}, {})", e.id, e.k, e.v, ts_literal(e.t)))
                        .collect()
                )
            ),
            Write::Upsert(rows) => format!(
                "INSERT INTO users VALUES {}",
                list(
                    rows.iter()
                        .map(|(id, u)| format!("({id}, '{}', {})", u.region, u.score))
                        .collect()
                )
            ),
            Write::Delete(ids) if ids.len() == 1 => {
                format!("DELETE FROM users WHERE id = {}", ids[0])
            }
            Write::Delete(ids) => format!(
                "DELETE FROM users WHERE id IN ({})",
                list(ids.iter().map(|i| i.to_string()).collect())
            ),
            Write::Bump { id, by } => {
                format!("UPDATE users SET score = score + {by} WHERE id = {id}")
            }
            Write::Checkpoint => "CHECKPOINT".into(),
        }
    }

    /// Keys of `users` the statement touches.
    pub fn user_keys(&self) -> Vec<i32> {
        match self {
            Write::Upsert(rows) => rows.iter().map(|(id, _)| *id).collect(),
            Write::Delete(ids) => ids.clone(),
            Write::Bump { id, .. } => vec![*id],
            Write::Insert(_) | Write::Checkpoint => vec![],
        }
    }

    pub fn apply(&self, model: &mut Model) {
        match self {
            Write::Insert(rows) => {
                for e in rows {
                    model.events.insert(e.id, e.clone());
                }
            }
            Write::Upsert(rows) => {
                for (id, u) in rows {
                    model.users.insert(*id, u.clone());
                }
            }
            Write::Delete(ids) => {
                for id in ids {
                    model.users.remove(id);
                }
            }
            Write::Bump { id, by } => {
                if let Some(u) = model.users.get_mut(id) {
                    u.score += by;
                }
            }
            Write::Checkpoint => {}
        }
    }
}

/// The statements one writer session sends in one iteration: deterministic from the seed,
/// the iteration and the session; ids and scores unique by (iteration, session, sequence).
pub struct Workload {
    rng: SmallRng,
    iteration: i64,
    session: i64,
    seq: i64,
    /// Keys no one writes this iteration, with the region the join sees for each.
    stable: Arc<Vec<(i32, Option<String>)>>,
    /// This session's keys it may write this iteration.
    writable: Vec<i32>,
    checkpoints: bool,
}

impl Workload {
    pub fn new(seed: u64, iteration: i64, session: i64, model: &Model) -> Workload {
        Workload {
            rng: SmallRng::seed_from_u64(mix(seed, iteration as u64, session as u64 + 1)),
            iteration,
            session,
            seq: 0,
            stable: Arc::new(stable_keys(iteration, model)),
            writable: (0..KEYS)
                .filter(|k| i64::from(k % OWNERS) == session && is_writable(*k, iteration))
                .collect(),
            checkpoints: session == 0,
        }
    }

    /// A number unique to this statement.
    fn unique(&self) -> i64 {
        (self.iteration * 16 + self.session) * 1_000_000 + self.seq
    }

    /// The next statement: 45% inserts into `events` (one row, or 2–5), 25% upserts (one
    /// key, or 3), 15% deletes (one key, or 2), 15% `score` bumps; session 0 sends a
    /// `CHECKPOINT` instead 3% of the time.
    pub fn next(&mut self) -> Write {
        self.seq += 1;
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=2 if self.checkpoints => Write::Checkpoint,
            0..=44 => {
                let n = if roll < 25 {
                    1
                } else {
                    self.rng.gen_range(2..=5)
                };
                let rows = (0..n)
                    .map(|i| {
                        let (k, region) =
                            self.stable[self.rng.gen_range(0..self.stable.len())].clone();
                        Event {
                            id: self.unique() * 8 + i,
                            k,
                            v: self.rng.gen_range(-1000..1_000_000),
                            t: BASE
                                + self.iteration * ITERATION_SPAN
                                + self.rng.gen_range(0..ROW_SPREAD),
                            late: false,
                            joined_region: region,
                        }
                    })
                    .collect();
                Write::Insert(rows)
            }
            45..=69 => {
                let n = if roll < 60 { 1 } else { 3 };
                let keys = self.pick_keys(n);
                let score = self.unique();
                Write::Upsert(
                    keys.into_iter()
                        .enumerate()
                        .map(|(i, id)| {
                            (
                                id,
                                User {
                                    region: format!("r{}", self.rng.gen_range(0..4)),
                                    score: score * 4 + i as i64,
                                },
                            )
                        })
                        .collect(),
                )
            }
            70..=84 => {
                let n = if roll < 80 { 1 } else { 2 };
                Write::Delete(self.pick_keys(n))
            }
            _ => Write::Bump {
                id: self.pick_keys(1)[0],
                by: self.rng.gen_range(1..1000),
            },
        }
    }

    /// `n` distinct keys of this session's writable ones.
    fn pick_keys(&mut self, n: usize) -> Vec<i32> {
        let mut keys = self.writable.clone();
        let mut out = Vec::new();
        for _ in 0..n.min(keys.len()) {
            out.push(keys.swap_remove(self.rng.gen_range(0..keys.len())));
        }
        out
    }
}

/// The halves of the key space swap roles every iteration: one is written by its owners,
/// the other only joined against.
fn is_writable(key: i32, iteration: i64) -> bool {
    i64::from((key / OWNERS) % 2) == iteration % 2
}

fn stable_keys(iteration: i64, model: &Model) -> Vec<(i32, Option<String>)> {
    (0..KEYS)
        .filter(|k| !is_writable(*k, iteration))
        .map(|k| (k, model.users.get(&k).map(|u| u.region.clone())))
        .collect()
}

/// The session number of the test's own sequential statements (ids only).
const MAIN_SESSION: i64 = 8;

/// What the test writes itself, sequentially, after a restart: a row late on purpose (its
/// window closed two iterations ago, by the watermark the restart must have restored),
/// then a row at the iteration's first event time.
pub fn sequential_writes(iteration: i64, rng: &mut SmallRng, model: &Model) -> Vec<Write> {
    let id = |seq: i64| ((iteration * 16 + MAIN_SESSION) * 1_000_000 + seq) * 8;
    let mut row = |seq: i64, t: i64, late: bool| {
        let k = rng.gen_range(0..KEYS);
        Write::Insert(vec![Event {
            id: id(seq),
            k,
            v: rng.gen_range(0..1000),
            t,
            late,
            joined_region: model.users.get(&k).map(|u| u.region.clone()),
        }])
    };
    let mut out = Vec::new();
    if iteration >= 2 {
        out.push(row(0, BASE + (iteration - 2) * ITERATION_SPAN + 5, true));
    }
    out.push(row(1, BASE + iteration * ITERATION_SPAN, false));
    out
}

#[derive(Default)]
pub struct SessionLog {
    pub acked: Vec<Write>,
    /// Sent and not acknowledged: may or may not have been applied.
    pub in_flight: Option<Write>,
    /// A statement the server refused (not a lost connection): always a failure.
    pub refused: Option<String>,
}

pub async fn run_writer(client: tokio_postgres::Client, mut workload: Workload) -> SessionLog {
    let mut log = SessionLog::default();
    loop {
        let w = workload.next();
        match client.batch_execute(&w.sql()).await {
            Ok(()) => log.acked.push(w),
            Err(e) => {
                if let Some(db) = e.as_db_error() {
                    log.refused = Some(format!(
                        "{}: {} (statement: {})",
                        db.code().code(),
                        db.message(),
                        w.sql()
                    ));
                }
                log.in_flight = Some(w);
                return log;
            }
        }
    }
}

/// Follows `total` by SUBSCRIBE; returns the largest count it saw committed.
pub async fn run_subscriber(client: tokio_postgres::Client) -> i64 {
    let mut most = 0;
    let Ok(stream) = client.simple_query_raw("SUBSCRIBE total").await else {
        return most;
    };
    futures::pin_mut!(stream);
    while let Some(Ok(msg)) = stream.next().await {
        if let SimpleQueryMessage::Row(r) = msg {
            let diff: i64 = r.get(1).and_then(|d| d.parse().ok()).unwrap_or(0);
            let n: i64 = r.get(2).and_then(|d| d.parse().ok()).unwrap_or(0);
            if diff > 0 {
                most = most.max(n);
            }
        }
    }
    most
}

/// What readers saw committed before a kill: it must all be there after the restart.
#[derive(Default, Clone, Debug)]
pub struct Seen {
    /// `total.n` through SUBSCRIBE.
    pub total: i64,
    /// Events of each generated source, by name.
    pub generated: BTreeMap<String, i64>,
    /// Records of the Kafka stream per partition.
    pub kafka: BTreeMap<i64, i64>,
}

/// Polls the generated sources' progress (and the Kafka stream's) until the server dies.
pub async fn run_observer(client: tokio_postgres::Client, kafka: bool) -> Seen {
    let mut seen = Seen::default();
    loop {
        let Ok(rows) = query_rows(&client, "SELECT name, events FROM eddy_sources").await else {
            return seen;
        };
        for r in rows {
            let e = seen.generated.entry(r[0].clone()).or_default();
            *e = (*e).max(r[1].parse().unwrap_or(0));
        }
        if kafka {
            let Ok(rows) = query_rows(
                &client,
                "SELECT CAST(rowpartition AS BIGINT), count(*) FROM kev GROUP BY rowpartition",
            )
            .await
            else {
                return seen;
            };
            for r in rows {
                let e = seen.kafka.entry(r[0].parse().unwrap_or(-1)).or_default();
                *e = (*e).max(r[1].parse().unwrap_or(0));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
