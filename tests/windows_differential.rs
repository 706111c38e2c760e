//! Differential property test for windows: random out-of-order event times and random
//! watermark delays. After every step each windowed view (tumbling and hopping, EMIT CHANGES
//! and EMIT FINAL, ksqlDB's WINDOW with grace and retention) must equal a DataFusion batch
//! computation over the rows that were on time, and its late-row count must equal the rows
//! that were not.
//!
//! The oracle is independent of the operator's bookkeeping: every row is also inserted into
//! a plain shadow stream together with the watermark at the moment it arrived (`wm`), so
//! "on time for window w" is the batch predicate `wm IS NULL OR end(w) + grace > wm`.

use chrono::{Duration, NaiveDate};
use datafusion::scalar::ScalarValue;
use eddy::database::{Database, Session};
use eddy::state::MemoryStore;
use proptest::prelude::*;

mod common;

async fn exec(db: &Database, s: &mut Session, sql: &str) {
    if let Err(e) = db.execute(s, sql, &[]).await {
        panic!("{sql}: {e}");
    }
}

fn ts(secs: i64) -> String {
    let t0 = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    (t0 + Duration::seconds(secs))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn lit(w: Option<i64>) -> String {
    w.map(|w| format!("TIMESTAMP '{}'", ts(w)))
        .unwrap_or_else(|| "NULL".into())
}

/// (view name, on-time oracle, late-count oracle) for the current watermark `w`.
fn oracles(w_s: Option<i64>, w_k: Option<i64>) -> Vec<(&'static str, String, String)> {
    let bin = "date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01 00:00:00')";
    let on_time_tumble = format!("(wm IS NULL OR {bin} + INTERVAL '10 seconds' > wm)");
    let closed_s = |end: &str, grace: i64| match w_s {
        Some(w) => format!("{end} + INTERVAL '{grace} seconds' <= {}", lit(Some(w))),
        None => "false".into(),
    };
    let k_grace = 5;
    vec![
        (
            "tumble_changes",
            format!(
                "SELECT {bin} AS ws, {bin} + INTERVAL '10 seconds' AS we, g, count(*), sum(v), min(v), max(v) FROM shadow_s WHERE {on_time_tumble} GROUP BY 1, 2, 3"
            ),
            format!("SELECT count(*) FROM shadow_s WHERE NOT {on_time_tumble}"),
        ),
        (
            "tumble_final",
            format!(
                "SELECT {bin} AS ws, g, count(*), sum(v) FROM shadow_s WHERE {on_time_tumble} AND {} GROUP BY 1, 2",
                closed_s(&format!("{bin} + INTERVAL '10 seconds'"), 0)
            ),
            format!("SELECT count(*) FROM shadow_s WHERE NOT {on_time_tumble}"),
        ),
        (
            "hop_changes",
            "SELECT window_start, window_end, count(*), sum(v) FROM HOP(shadow_s, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) WHERE wm IS NULL OR window_end > wm GROUP BY 1, 2".to_string(),
            "SELECT count(*) FROM HOP(shadow_s, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) WHERE wm IS NOT NULL AND window_end <= wm".to_string(),
        ),
        (
            "ksql_table",
            format!(
                "SELECT window_start, window_end, g, count(*) FROM TUMBLE(shadow_k, ts, INTERVAL '20' SECOND) WHERE (wm IS NULL OR window_end + INTERVAL '{k_grace} seconds' > wm) AND {} GROUP BY 1, 2, 3",
                match w_k {
                    Some(w) => format!("window_end + INTERVAL '60 seconds' > {}", lit(Some(w))),
                    None => "true".into(),
                }
            ),
            format!("SELECT count(*) FROM TUMBLE(shadow_k, ts, INTERVAL '20' SECOND) WHERE wm IS NOT NULL AND window_end + INTERVAL '{k_grace} seconds' <= wm"),
        ),
    ]
}

/// An independent model of session windows (gap 10 s, grace 0): rows in arrival order; a
/// row is late if its own window [t, t + gap) ended at or before the watermark; sessions
/// whose end passed the watermark are closed and never merge again.
#[derive(Default)]
struct SessionModel {
    /// (key, start, last, count, sum, closed)
    sessions: Vec<(String, i64, i64, i64, i64, bool)>,
    late: u64,
}

impl SessionModel {
    const GAP: i64 = 10;

    fn insert(&mut self, g: &str, v: i64, t: i64, watermark: Option<i64>) {
        if matches!(watermark, Some(w) if t + Self::GAP <= w) {
            self.late += 1;
            return;
        }
        let (mut start, mut last, mut n, mut sum) = (t, t, 1, v);
        self.sessions.retain(|(k, s, l, c, x, closed)| {
            let overlaps = k == g && !*closed && *s < t + Self::GAP && *l + Self::GAP > t;
            if overlaps {
                start = start.min(*s);
                last = last.max(*l);
                n += c;
                sum += x;
            }
            !overlaps
        });
        self.sessions
            .push((g.to_string(), start, last, n, sum, false));
    }

    fn close(&mut self, watermark: i64) {
        for s in self.sessions.iter_mut() {
            if s.2 + Self::GAP <= watermark {
                s.5 = true;
            }
        }
    }

    fn rows(&self) -> Vec<String> {
        let micros = |secs: i64| (1_767_225_600 + secs) * 1_000_000;
        let mut out: Vec<String> = self
            .sessions
            .iter()
            .map(|(g, s, l, n, x, _)| {
                format!(
                    "{g}|{}|{}|{n}|{x}",
                    ScalarValue::TimestampMicrosecond(Some(micros(*s)), None),
                    ScalarValue::TimestampMicrosecond(Some(micros(*l + Self::GAP)), None)
                )
            })
            .collect();
        out.sort();
        out
    }
}

async fn scenario(delay: i64, steps: Vec<(u8, Vec<(u8, i64, i64)>)>) -> Result<(), TestCaseError> {
    let db = Database::open(Box::new(MemoryStore::default())).expect("open");
    let mut s = Session::default();
    for sql in [
        format!("CREATE STREAM s (g TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND)"),
        "CREATE STREAM k (g TEXT, v BIGINT, ts TIMESTAMP) WITH (TIMESTAMP = 'ts')".into(),
        "CREATE STREAM shadow_s (g TEXT, v BIGINT, ts TIMESTAMP, wm TIMESTAMP)".into(),
        "CREATE STREAM shadow_k (g TEXT, v BIGINT, ts TIMESTAMP, wm TIMESTAMP)".into(),
        "CREATE MATERIALIZED VIEW tumble_changes AS SELECT window_start, window_end, g, count(*) AS n, sum(v) AS total, min(v) AS lo, max(v) AS hi FROM TUMBLE(s, ts, INTERVAL '10' SECOND) GROUP BY window_start, window_end, g".into(),
        "CREATE MATERIALIZED VIEW tumble_final AS SELECT window_start, g, count(*) AS n, sum(v) AS total FROM TUMBLE(s, ts, INTERVAL '10' SECOND) GROUP BY window_start, g EMIT FINAL".into(),
        "CREATE MATERIALIZED VIEW hop_changes AS SELECT window_start, window_end, count(*) AS n, sum(v) AS total FROM HOP(s, ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) GROUP BY window_start, window_end".into(),
        "CREATE TABLE ksql_table AS SELECT g, count(*) AS n FROM k WINDOW TUMBLING (SIZE 20 SECONDS, GRACE PERIOD 5 SECONDS, RETENTION 60 SECONDS) GROUP BY g EMIT CHANGES".into(),
        "CREATE STREAM sj (g TEXT, v BIGINT, ts TIMESTAMP) WITH (TIMESTAMP = 'ts')".into(),
        "CREATE STREAM rj (g TEXT, v BIGINT, ts TIMESTAMP) WITH (TIMESTAMP = 'ts')".into(),
        "CREATE STREAM shadow_sj (g TEXT, v BIGINT, ts TIMESTAMP, wm TIMESTAMP)".into(),
        "CREATE STREAM shadow_rj (g TEXT, v BIGINT, ts TIMESTAMP, wm TIMESTAMP)".into(),
        "CREATE STREAM ij_inner AS SELECT a.g, a.v AS av, b.v AS bv, a.ts AS at, b.ts AS bt FROM sj a JOIN rj b WITHIN (5 SECONDS, 10 SECONDS) GRACE PERIOD 2 SECONDS ON a.g = b.g".into(),
        "CREATE MATERIALIZED VIEW ij_left AS SELECT a.g, a.v AS av, b.v AS bv, a.ts AS at, b.ts AS bt FROM sj a LEFT JOIN rj b WITHIN (5 SECONDS, 10 SECONDS) GRACE PERIOD 2 SECONDS ON a.g = b.g".into(),
        "CREATE MATERIALIZED VIEW ij_full AS SELECT a.g, a.v AS av, b.v AS bv, a.ts AS at, b.ts AS bt FROM sj a FULL JOIN rj b WITHIN (5 SECONDS, 10 SECONDS) GRACE PERIOD 2 SECONDS ON a.g = b.g".into(),
        "CREATE STREAM ij_between AS SELECT a.g, a.v AS av, b.v AS bv, a.ts AS at, b.ts AS bt FROM sj a JOIN rj b ON a.g = b.g AND b.ts BETWEEN a.ts - INTERVAL '5' SECOND AND a.ts + INTERVAL '10' SECOND".into(),
        "CREATE MATERIALIZED VIEW sessions AS SELECT g, window_start, window_end, count(*) AS n, sum(v) AS total FROM SESSION(s, ts, INTERVAL '10' SECOND) GROUP BY g, window_start, window_end".into(),
    ] {
        exec(&db, &mut s, &sql).await;
    }
    let (mut max_s, mut max_k): (Option<i64>, Option<i64>) = (None, None);
    let mut model = SessionModel::default();
    let (mut max_sj, mut max_rj): (Option<i64>, Option<i64>) = (None, None);
    let mut cursor = 0i64;
    for (advance, batch) in steps {
        cursor += advance as i64;
        if batch.is_empty() {
            continue;
        }
        let w_s = max_s.map(|m| m - delay);
        let w_k = max_k;
        let values: Vec<(String, i64, i64)> = batch
            .iter()
            .map(|(g, v, off)| {
                (
                    ["a", "b", "c"][(*g % 3) as usize].to_string(),
                    *v,
                    (cursor + off).max(0),
                )
            })
            .collect();
        let row = |(g, v, t): &(String, i64, i64)| format!("('{g}', {v}, TIMESTAMP '{}')", ts(*t));
        let shadow = |(g, v, t): &(String, i64, i64), wm: Option<i64>| {
            format!("('{g}', {v}, TIMESTAMP '{}', {})", ts(*t), lit(wm))
        };
        let list = values.iter().map(row).collect::<Vec<_>>().join(", ");
        exec(&db, &mut s, &format!("INSERT INTO s VALUES {list}")).await;
        exec(&db, &mut s, &format!("INSERT INTO k VALUES {list}")).await;
        exec(
            &db,
            &mut s,
            &format!(
                "INSERT INTO shadow_s VALUES {}",
                values
                    .iter()
                    .map(|r| shadow(r, w_s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await;
        exec(
            &db,
            &mut s,
            &format!(
                "INSERT INTO shadow_k VALUES {}",
                values
                    .iter()
                    .map(|r| shadow(r, w_k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await;
        let batch_max = values.iter().map(|r| r.2).max();
        for (g, v, t) in &values {
            model.insert(g, *v, *t, w_s);
        }
        max_s = max_s.max(batch_max);
        max_k = max_k.max(batch_max);
        let (w_s, w_k) = (max_s.map(|m| m - delay), max_k);
        if let Some(w) = w_s {
            model.close(w);
        }
        // Interval joins: the watermark is the minimum over both streams, judged per statement.
        let w_join = |a: Option<i64>, b: Option<i64>| a.zip(b).map(|(a, b)| a.min(b));
        let w_before = w_join(max_sj, max_rj);
        exec(&db, &mut s, &format!("INSERT INTO sj VALUES {list}")).await;
        exec(
            &db,
            &mut s,
            &format!(
                "INSERT INTO shadow_sj VALUES {}",
                values
                    .iter()
                    .map(|r| shadow(r, w_before))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await;
        max_sj = max_sj.max(batch_max);
        let shifted: Vec<(String, i64, i64)> = values
            .iter()
            .map(|(g, v, t)| (g.clone(), v + 100, (t + 3).max(0)))
            .collect();
        let w_before = w_join(max_sj, max_rj);
        let list_r = shifted.iter().map(row).collect::<Vec<_>>().join(", ");
        exec(&db, &mut s, &format!("INSERT INTO rj VALUES {list_r}")).await;
        exec(
            &db,
            &mut s,
            &format!(
                "INSERT INTO shadow_rj VALUES {}",
                shifted
                    .iter()
                    .map(|r| shadow(r, w_before))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await;
        max_rj = max_rj.max(shifted.iter().map(|r| r.2).max());
        let w_now = w_join(max_sj, max_rj);
        let on_time =
            |x: &str| format!("({x}.wm IS NULL OR {x}.ts >= {x}.wm - INTERVAL '2 seconds')");
        let inner = format!(
            "SELECT a.g AS g, a.v AS av, b.v AS bv, a.ts AS at, b.ts AS bt FROM shadow_sj a JOIN shadow_rj b ON a.g = b.g AND b.ts >= a.ts - INTERVAL '5 seconds' AND b.ts <= a.ts + INTERVAL '10 seconds' WHERE {} AND {}",
            on_time("a"), on_time("b")
        );
        let maintained = common::rows(&db, &mut s, "SELECT * FROM ij_inner").await;
        prop_assert_eq!(
            &maintained,
            &common::rows(&db, &mut s, &inner).await,
            "ij_inner after {}",
            list
        );
        let padded = format!(
            "SELECT a.g AS g, a.v AS av, CAST(NULL AS BIGINT) AS bv, a.ts AS at, CAST(NULL AS TIMESTAMP) AS bt FROM shadow_sj a WHERE {} AND a.ts + INTERVAL '10 seconds' < {} - INTERVAL '2 seconds' AND NOT EXISTS (SELECT 1 FROM shadow_rj b WHERE a.g = b.g AND b.ts >= a.ts - INTERVAL '5 seconds' AND b.ts <= a.ts + INTERVAL '10 seconds' AND {})",
            on_time("a"), lit(w_now), on_time("b")
        );
        let maintained = common::rows(&db, &mut s, "SELECT * FROM ij_left").await;
        let expected = common::rows(&db, &mut s, &format!("{inner} UNION ALL {padded}")).await;
        prop_assert_eq!(&maintained, &expected, "ij_left after {}", list);
        let padded_right = format!(
            "SELECT CAST(NULL AS TEXT) AS g, CAST(NULL AS BIGINT) AS av, b.v AS bv, CAST(NULL AS TIMESTAMP) AS at, b.ts AS bt FROM shadow_rj b WHERE {} AND b.ts + INTERVAL '5 seconds' < {} - INTERVAL '2 seconds' AND NOT EXISTS (SELECT 1 FROM shadow_sj a WHERE a.g = b.g AND b.ts >= a.ts - INTERVAL '5 seconds' AND b.ts <= a.ts + INTERVAL '10 seconds' AND {})",
            on_time("b"), lit(w_now), on_time("a")
        );
        let maintained = common::rows(&db, &mut s, "SELECT * FROM ij_full").await;
        let expected = common::rows(
            &db,
            &mut s,
            &format!("{inner} UNION ALL {padded} UNION ALL {padded_right}"),
        )
        .await;
        prop_assert_eq!(&maintained, &expected, "ij_full after {}", list);
        // The same bound written as an interval condition in ON (grace 0).
        let on_time0 = |x: &str| format!("({x}.wm IS NULL OR {x}.ts >= {x}.wm)");
        let between = format!(
            "SELECT a.g AS g, a.v AS av, b.v AS bv, a.ts AS at, b.ts AS bt FROM shadow_sj a JOIN shadow_rj b ON a.g = b.g AND b.ts >= a.ts - INTERVAL '5 seconds' AND b.ts <= a.ts + INTERVAL '10 seconds' WHERE {} AND {}",
            on_time0("a"), on_time0("b")
        );
        let maintained = common::rows(&db, &mut s, "SELECT * FROM ij_between").await;
        prop_assert_eq!(
            &maintained,
            &common::rows(&db, &mut s, &between).await,
            "ij_between after {}",
            list
        );
        let late_expected = common::rows(&db, &mut s, &format!(
            "SELECT (SELECT count(*) FROM shadow_sj a WHERE NOT {}) + (SELECT count(*) FROM shadow_rj b WHERE NOT {})",
            on_time("a"), on_time("b")
        )).await;
        let late_seen = common::rows(
            &db,
            &mut s,
            "SELECT late_rows FROM eddy_relations WHERE name = 'ij_inner'",
        )
        .await;
        prop_assert_eq!(late_seen, late_expected, "late rows of ij_inner");

        let maintained = common::rows(
            &db,
            &mut s,
            "SELECT g, window_start, window_end, n, total FROM sessions",
        )
        .await;
        prop_assert_eq!(
            &maintained,
            &model.rows(),
            "session view after inserting {}",
            list
        );
        let late_seen = common::rows(
            &db,
            &mut s,
            "SELECT late_rows FROM eddy_relations WHERE name = 'sessions'",
        )
        .await;
        prop_assert_eq!(
            late_seen,
            vec![model.late.to_string()],
            "late rows of sessions"
        );
        for (view, oracle, late) in oracles(w_s, w_k) {
            let maintained = common::rows(&db, &mut s, &format!("SELECT * FROM {view}")).await;
            let expected = common::rows(&db, &mut s, &oracle).await;
            prop_assert_eq!(
                &maintained,
                &expected,
                "view {} after inserting {}",
                view,
                list
            );
            let late_seen = common::rows(
                &db,
                &mut s,
                &format!("SELECT late_rows FROM eddy_relations WHERE name = '{view}'"),
            )
            .await;
            let late_expected = common::rows(&db, &mut s, &late).await;
            prop_assert_eq!(late_seen, late_expected, "late rows of {}", view);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn windowed_views_equal_batch_over_on_time_rows(
        delay in 0i64..20,
        steps in prop::collection::vec((0u8..8, prop::collection::vec((0u8..3, -5i64..50, -30i64..10), 0..5)), 1..25),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(scenario(delay, steps))?;
    }
}
