//! Crash soak: `kill -9` at random moments while the database is under concurrent load.
//!
//! One data directory lives through every iteration. Each iteration (re)starts the server
//! with `--checkpoint-interval 1`, checks what survived the previous kill, then lets 3–4
//! writer sessions, a subscriber, an observer and the generated sources (and optionally a
//! Kafka source) run for a random 100–600 ms, and kills the server with SIGKILL while
//! statements are in flight.
//!
//! What must survive: every acknowledged statement, exactly once; each statement in flight
//! at the kill either wholly applied or wholly absent; everything a reader saw committed;
//! and every view equal to a batch recompute by DataFusion *in this process over the test's
//! own record of the writes* — never over the server's rows, so a bug the server's views
//! share with its ad-hoc queries cannot hide.
//!
//! The workload is shaped so that the expected answer does not depend on how the server
//! interleaved the sessions:
//! - each key of `users` is owned by one session, so a key has one writer and at most one
//!   statement in flight;
//! - a stream–table join sees the table as it is when the stream row arrives, so stream
//!   rows use only keys that no session writes in that iteration ("stable" keys: the two
//!   halves swap every iteration), whose rows are known once the last kill is reconciled;
//! - event time jumps 10 minutes per iteration and the load rows of an iteration stay within
//!   its first minute, under a 2-minute watermark delay: no load row is ever late. One row
//!   per iteration is written late on purpose right after the restart, so a watermark that
//!   is lost or wrong after the restart shows in the window view.
//!
//! Replaying: the seed is printed; `EDDY_CRASH_SEED` reruns it. It fixes every session's
//! statements, the number of writers and the kill moments; how far each session gets
//! before a kill depends on timing, which is why acknowledgements are recorded rather than
//! predicted. `EDDY_CRASH_ITERATIONS` sets the number of kills (default 30),
//! `EDDY_CRASH_SOAK=1` runs 300 with loads up to 2 s, `EDDY_CRASH_KAFKA=0|1` turns the
//! Kafka source off or on (default: on when the Tansu broker is installed).

#[path = "crash/checks.rs"]
mod checks;
mod common;
#[path = "crash/processes.rs"]
mod processes;
#[path = "crash/workload.rs"]
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use checks::{verify, Progress, KAFKA_SCHEMA, SCHEMA};
use common::Server;
use processes::{checkpoint_markers, private_binary, start_server, tail, tansu_binary, KafkaFeed};
use workload::{
    mix, run_observer, run_subscriber, run_writer, sequential_writes, Model, Seen, SessionLog,
    Workload, Write, OWNERS,
};

/// The knobs, from the environment (see the module doc).
struct Config {
    seed: u64,
    iterations: u32,
    load_ms: (u64, u64),
    kafka: bool,
}

impl Config {
    fn from_env() -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let soak = var("EDDY_CRASH_SOAK").is_some_and(|v| v != "0");
        let seed = var("EDDY_CRASH_SEED")
            .map(|s| s.parse().expect("EDDY_CRASH_SEED is a u64"))
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        let iterations = var("EDDY_CRASH_ITERATIONS")
            .map(|s| s.parse().expect("EDDY_CRASH_ITERATIONS is a number"))
            .unwrap_or(if soak { 300 } else { 30 });
        let kafka = match var("EDDY_CRASH_KAFKA").as_deref() {
            Some("0") => false,
            Some(_) => true,
            None => tansu_binary().is_some(),
        };
        Config {
            seed,
            iterations,
            load_ms: if soak { (100, 2000) } else { (100, 600) },
            kafka,
        }
    }
}

/// How one iteration's concurrent phase goes, drawn from the seed.
struct KillPlan {
    writers: i32,
    /// The load starts this long after the restart (0–0.9 s), so that the first periodic
    /// checkpoint (1 s after the start) falls before, during or after it.
    idle: Duration,
    /// The kill comes this long into the load.
    load: Duration,
    /// A kill aimed at a checkpoint: `CHECKPOINT` is sent this long before the kill (0–60
    /// ms; checkpoints take 20–80 ms here), so the kill often lands between its steps.
    aim: Option<Duration>,
}

impl KillPlan {
    fn draw(rng: &mut SmallRng, cfg: &Config) -> KillPlan {
        let writers = rng.gen_range(3..=OWNERS);
        let idle = Duration::from_millis(rng.gen_range(0..=900));
        let load = Duration::from_millis(rng.gen_range(cfg.load_ms.0..=cfg.load_ms.1));
        let aim = rng
            .gen_bool(0.4)
            .then(|| Duration::from_millis(rng.gen_range(0..=60)).min(load));
        KillPlan {
            writers,
            idle,
            load,
            aim,
        }
    }
}

/// What the concurrent phase left: each writer's log, what readers saw, and whether the
/// aimed `CHECKPOINT` finished before the kill.
struct Killed {
    sessions: Vec<SessionLog>,
    seen: Seen,
    aimed_checkpoint_done: Option<bool>,
}

/// Writers, a subscriber and an observer on `server` (and the aimed `CHECKPOINT` on `main`),
/// then SIGKILL.
async fn load_then_kill(
    server: &mut Server,
    main: tokio_postgres::Client,
    plan: &KillPlan,
    since_start: Duration,
    workloads: Vec<Workload>,
    kafka: bool,
) -> Result<Killed, String> {
    tokio::time::sleep(plan.idle.saturating_sub(since_start)).await;
    let mut writers = Vec::new();
    for w in workloads {
        writers.push(tokio::spawn(run_writer(server.connect().await, w)));
    }
    let subscriber = tokio::spawn(run_subscriber(server.connect().await));
    let observer = tokio::spawn(run_observer(server.connect().await, kafka));
    let checkpoint = match plan.aim {
        None => {
            tokio::time::sleep(plan.load).await;
            None
        }
        Some(before) => {
            tokio::time::sleep(plan.load - before).await;
            let checkpoint = tokio::spawn(async move { main.batch_execute("CHECKPOINT").await });
            tokio::time::sleep(before).await;
            Some(checkpoint)
        }
    };
    server.kill();

    let noticed = Duration::from_secs(30);
    let aimed_checkpoint_done = match checkpoint {
        None => None,
        Some(task) => match task.await.expect("checkpoint task") {
            Ok(()) => Some(true),
            Err(e) => match e.as_db_error() {
                Some(db) => {
                    return Err(format!(
                        "CHECKPOINT failed: {}: {}",
                        db.code().code(),
                        db.message()
                    ))
                }
                None => Some(false),
            },
        },
    };
    let mut sessions = Vec::new();
    for w in writers {
        let log = tokio::time::timeout(noticed, w)
            .await
            .expect("a writer noticed the kill")
            .expect("writer task");
        if let Some(refused) = &log.refused {
            return Err(format!("the server refused a statement: {refused}"));
        }
        sessions.push(log);
    }
    let total = tokio::time::timeout(noticed, subscriber)
        .await
        .expect("the subscriber noticed the kill")
        .expect("subscriber task");
    let mut seen = tokio::time::timeout(noticed, observer)
        .await
        .expect("the observer noticed the kill")
        .expect("observer task");
    seen.total = total;
    Ok(Killed {
        sessions,
        seen,
        aimed_checkpoint_done,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_concurrent_load_loses_nothing_and_repeats_nothing() {
    let cfg = Config::from_env();
    println!(
        "crash soak: seed {seed} (EDDY_CRASH_SEED={seed} replays it), {} kills, loads {}..{} ms, kafka {}",
        cfg.iterations,
        cfg.load_ms.0,
        cfg.load_ms.1,
        if cfg.kafka { "on" } else { "off" },
        seed = cfg.seed,
    );
    let started = Instant::now();
    // Not a TempDir: a failure leaves the data directory and the server's log behind for
    // a look (a pass removes them).
    let root = std::env::temp_dir().join(format!("eddy-crash-{}-{}", cfg.seed, std::process::id()));
    std::fs::create_dir_all(&root).expect("test directory");
    let bin = private_binary(&root);
    let dir = root.join("data");
    let log = root.join("eddy.stderr");
    let kafka = cfg.kafka.then(KafkaFeed::start);
    let brokers = kafka.as_ref().map(|k| k.bootstrap.clone());
    let fail = |it: u32, what: String| -> ! {
        panic!(
            "\ncrash soak FAILED at iteration {it}, seed {seed} (rerun with EDDY_CRASH_SEED={seed}):\n{what}\n--- server log (last lines; data directory kept in {}) ---\n{}\n",
            root.display(),
            tail(&log, 40),
            seed = cfg.seed,
        )
    };

    let mut model = Model::default();
    let mut in_flight: Vec<Write> = Vec::new();
    let mut seen = Seen::default();
    let mut progress = Progress::default();
    let mut markers_before = Vec::new();
    let mut inside_checkpoint = 0;
    for it in 0..=cfg.iterations {
        // A checkpoint marker left in the log: the kill came between a checkpoint's first
        // step (the marker) and its last (truncating the log).
        let markers = checkpoint_markers(&dir.join("eddy.log"));
        if markers.iter().any(|m| !markers_before.contains(m)) {
            inside_checkpoint += 1;
        }
        let log_bytes = std::fs::metadata(dir.join("eddy.log")).map_or(0, |m| m.len());
        let restart = Instant::now();
        let mut server =
            std::panic::catch_unwind(|| start_server(&bin, &dir, &log, brokers.as_deref()))
                .unwrap_or_else(|_| fail(it, "the server did not restart".into()));
        let c = server.connect().await;
        let mut line = format!(
            "iteration {it:>3}: restart {:>4} ms (log tail {log_bytes:>7} B{})",
            restart.elapsed().as_millis(),
            if markers.is_empty() {
                String::new()
            } else {
                format!(", checkpoint markers {markers:?}")
            }
        );
        markers_before = markers;

        if it == 0 {
            for ddl in SCHEMA {
                c.batch_execute(ddl)
                    .await
                    .unwrap_or_else(|e| panic!("{ddl}: {e}"));
            }
            if kafka.is_some() {
                for ddl in KAFKA_SCHEMA {
                    c.batch_execute(ddl)
                        .await
                        .unwrap_or_else(|e| panic!("{ddl}: {e}"));
                }
            }
        } else {
            let checked = verify(
                &c,
                &mut model,
                &in_flight,
                &seen,
                &mut progress,
                kafka.is_some(),
            )
            .await
            .unwrap_or_else(|e| {
                let pending: Vec<String> = in_flight.iter().map(|w| w.sql()).collect();
                fail(
                    it,
                    format!(
                        "{e}\nstatements in flight at the kill:\n  {}",
                        pending.join("\n  ")
                    ),
                )
            });
            line.push_str(&format!(
                ", {} in flight ({} applied), {} rows, nexmark {}, datagen {}",
                in_flight.len(),
                checked.applied,
                model.events.len(),
                checked.nexmark,
                checked.datagen
            ));
            if kafka.is_some() {
                line.push_str(&format!(", kafka {}", checked.kafka));
            }
        }
        if it == cfg.iterations {
            println!("{line}");
            break;
        }

        let it = i64::from(it);
        let mut rng = SmallRng::seed_from_u64(mix(cfg.seed, it as u64, 0));
        for w in sequential_writes(it, &mut rng, &model) {
            if let Err(e) = c.batch_execute(&w.sql()).await {
                fail(it as u32, format!("{}: {e}", w.sql()));
            }
            w.apply(&mut model);
        }
        let plan = KillPlan::draw(&mut rng, &cfg);
        let workloads = (0..plan.writers)
            .map(|s| Workload::new(cfg.seed, it, i64::from(s), &model))
            .collect();
        let killed = load_then_kill(
            &mut server,
            c,
            &plan,
            restart.elapsed(),
            workloads,
            kafka.is_some(),
        )
        .await
        .unwrap_or_else(|e| fail(it as u32, e));
        let mut acked = 0;
        in_flight.clear();
        for log in killed.sessions {
            acked += log.acked.len();
            for w in &log.acked {
                w.apply(&mut model);
            }
            in_flight.extend(log.in_flight);
        }
        seen = killed.seen;
        let aimed = match (plan.aim, killed.aimed_checkpoint_done) {
            (Some(before), Some(done)) => format!(
                " ({} CHECKPOINT sent {} ms before)",
                if done { "after the" } else { "during a" },
                before.as_millis()
            ),
            _ => String::new(),
        };
        println!(
            "{line}; then {} writers for {:>3} ms: {acked} acknowledged, killed{aimed}",
            plan.writers,
            plan.load.as_millis()
        );
    }

    assert!(
        progress.nexmark.events > 0 && progress.generated.get("dg").is_some_and(|n| *n > 0),
        "the generated sources made progress"
    );
    if kafka.is_some() {
        assert!(
            progress.kafka.values().sum::<i64>() > 0,
            "the Kafka source consumed records"
        );
    }
    println!(
        "crash soak: {} kills ({inside_checkpoint} left a checkpoint marker in the log), seed {}, {:.1} s",
        cfg.iterations,
        cfg.seed,
        started.elapsed().as_secs_f64()
    );
    drop(kafka);
    let _ = std::fs::remove_dir_all(&root);
}

// ---------------------------------------------------------------------------------------
// Kills at the two edges of a checkpoint, placed exactly (the soak above reaches them
// only by chance): with the in-memory log and state store, a "crash" is dropping the
// database with the log as the crash would leave it.

/// A checkpoint killed after appending its log marker but before committing leaves a
/// marker whose id the next checkpoint reuses; that checkpoint killed after committing
/// but before truncating the log leaves two markers with one id. The restart must replay
/// only what follows the second (the one the committed checkpoint wrote).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_killed_at_its_edges_replays_nothing_twice() {
    use eddy::database::{Config as DbConfig, Database, Session};
    use eddy::state::{LogEntry, MemoryStateStore, MemoryStore, Store};

    let state = Arc::new(MemoryStateStore::default());
    let open = |log: Arc<MemoryStore>| {
        Database::open_with(
            Box::new(log),
            DbConfig {
                state: Some(state.clone()),
                ..Default::default()
            },
        )
        .expect("open")
    };
    let insert = |db: Arc<Database>, from: i64, to: i64| async move {
        let mut s = Session::default();
        for i in from..to {
            db.execute(&mut s, &format!("INSERT INTO s VALUES ({i})"), &[])
                .await
                .expect("insert");
        }
    };
    let count = |db: Arc<Database>| async move {
        let mut s = Session::default();
        common::rows(&db, &mut s, "SELECT count(*), count(DISTINCT a) FROM s").await
    };

    let log = Arc::new(MemoryStore::default());
    let db = open(log.clone());
    let mut s = Session::default();
    db.execute(&mut s, "CREATE STREAM s (a BIGINT)", &[])
        .await
        .expect("create");
    insert(db.clone(), 0, 10).await;
    db.checkpoint().await.expect("checkpoint 1");
    insert(db.clone(), 10, 20).await;
    // Killed inside checkpoint 2, after its marker: the marker is all it left.
    let next = db.last_checkpoint().id + 1;
    drop(db);
    log.append(&[LogEntry::Checkpoint { id: next }])
        .expect("marker");

    let db = open(log.clone());
    assert_eq!(
        count(db.clone()).await,
        vec!["20|20"],
        "after the first kill"
    );
    insert(db.clone(), 20, 30).await;
    // Killed inside the next checkpoint, after its commit and before the log truncation:
    // the log is what it was, plus the new marker.
    let before = log.replay().expect("log");
    db.checkpoint().await.expect("checkpoint");
    let id = db.last_checkpoint().id;
    assert_eq!(id, next, "the interrupted checkpoint's id is reused");
    drop(db);
    let crashed = Arc::new(MemoryStore::default());
    crashed.append(&before).expect("log");
    crashed
        .append(&[LogEntry::Checkpoint { id }])
        .expect("marker");

    let db = open(crashed);
    assert_eq!(
        count(db.clone()).await,
        vec!["30|30"],
        "after the second kill: rows 20..30 must not be replayed on top of the checkpoint that holds them"
    );
}
