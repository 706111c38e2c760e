//! Differential property test: random inserts, upserts, updates and deletes in random batch
//! sizes into a stream and a table, with views of every supported shape (filter, project,
//! group-by with every aggregate, HAVING, DISTINCT, UNION ALL, a view over a view, a global
//! aggregate, INNER, LEFT, RIGHT and FULL joins of two tables with duplicate and NULL keys,
//! a comma join, EXISTS / NOT EXISTS / IN / NOT IN / correlated scalar subqueries, EXCEPT and
//! INTERSECT, aggregates recomputed by DataFusion per group, ORDER BY … LIMIT/OFFSET and
//! ROW_NUMBER/RANK/DENSE_RANK per partition, VALUES, uncorrelated scalar subqueries, theta
//! and cross joins). After every step, each incrementally maintained view must equal DataFusion's
//! from-scratch batch answer to the view's own SELECT over the current inputs. At the end the
//! log is replayed into a fresh database (a restart) and every view must be unchanged.

use std::sync::Arc;

use eddy::database::{Database, Session};
use eddy::state::MemoryStore;
use proptest::prelude::*;

mod common;

const VIEWS: &[(&str, &str)] = &[
    ("s_groups", "SELECT g, count(*), sum(v) AS total, min(v) AS lo, max(v) AS hi, count(DISTINCT v) AS d, avg(v) AS mean FROM s WHERE v > 0 GROUP BY g"),
    ("t_groups", "SELECT g, count(*) AS n, sum(v) AS total, min(v) AS lo, max(v) AS hi, count(DISTINCT v) AS d FROM t GROUP BY g HAVING count(*) > 1"),
    ("t_filtered", "SELECT id, upper(g) AS big_g, v * 2 AS v2, CASE WHEN v > 50 THEN 'hi' ELSE 'lo' END AS band FROM t WHERE v % 3 <> 0"),
    ("t_parity", "SELECT n % 2 AS parity, count(*) AS c, sum(total) AS s, max(hi) AS top FROM t_groups GROUP BY n % 2"),
    ("t_distinct", "SELECT DISTINCT g FROM t"),
    ("both", "SELECT g, v FROM (SELECT g, v FROM s WHERE v > 5 UNION ALL SELECT g, v FROM t) AS u WHERE g <> 'c'"),
    ("t_global", "SELECT count(*) AS n, sum(v) AS total, max(v) AS hi, min(g) AS first_g, count(DISTINCT g) AS groups FROM t"),
    ("s_nulls", "SELECT g, count(f) AS nf, sum(f) AS sf, min(f) AS lf, avg(f) AS af FROM s GROUP BY g"),
    ("tu_inner", "SELECT t.id, t.g, t.v, u.region FROM t JOIN u ON t.id = u.id"),
    ("tu_left", "SELECT t.id, t.v, u.id AS uid, u.region FROM t LEFT JOIN u ON t.id % 4 = u.id"),
    ("tu_agg", "SELECT u.region, count(*) AS n, sum(t.v) AS total FROM t JOIN u ON t.id % 4 = u.id WHERE t.v > 0 GROUP BY u.region"),
    ("tu_theta", "SELECT t.id, u.id AS uid FROM t JOIN u ON t.id % 4 = u.id AND t.v > u.id * 10"),
    ("tu_text", "SELECT t.id, u.id AS uid FROM t JOIN u ON t.g = u.region"),
    ("tu_left_text", "SELECT u.id, u.region, t.id AS tid FROM u LEFT JOIN t ON u.region = t.g"),
    ("tu_right", "SELECT t.id, u.id AS uid, u.region FROM t RIGHT JOIN u ON t.id % 4 = u.id"),
    ("tu_full", "SELECT t.id, t.g, u.id AS uid, u.region FROM t FULL JOIN u ON t.g = u.region"),
    ("tu_full_agg", "SELECT u.region, count(t.id) AS n, count(*) AS c FROM t FULL JOIN u ON t.id % 4 = u.id GROUP BY u.region"),
    ("tu_comma", "SELECT t.id, u.region FROM t, u WHERE t.id % 4 = u.id AND t.v > 10"),
    ("t_exists", "SELECT id, g FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.region = t.g)"),
    ("t_not_exists_theta", "SELECT id FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.id = t.id % 4 AND u.region > t.g)"),
    ("t_not_in", "SELECT id, g FROM t WHERE g NOT IN (SELECT region FROM u)"),
    ("u_in", "SELECT id, region FROM u WHERE id IN (SELECT id % 4 FROM t WHERE v > 20)"),
    ("t_scalar", "SELECT id, (SELECT count(*) FROM u WHERE u.region = t.g) AS n, (SELECT max(u.id) FROM u WHERE u.region = t.g) AS top FROM t"),
    ("t_except", "SELECT g FROM t EXCEPT SELECT region FROM u"),
    ("t_intersect", "SELECT g FROM t INTERSECT SELECT region FROM u"),
    ("t_except_all", "SELECT g FROM t EXCEPT ALL SELECT region FROM u"),
    ("t_general", "SELECT g, bool_and(v > 10) AS a, string_agg(CAST(id AS VARCHAR), ',' ORDER BY id) AS ids, array_agg(v ORDER BY id DESC) AS vs, sum(DISTINCT v) AS sd, round(stddev(v), 6) AS sdev, median(v) AS med, bit_or(v) FILTER (WHERE id > 3) AS bits FROM t GROUP BY g"),
    ("s_general", "SELECT g, bool_or(f > 0) AS pos, round(var_pop(v), 6) AS var, max(v) AS hi, first_value(k ORDER BY k DESC) AS top_k FROM s GROUP BY g"),
    ("t_top", "SELECT id, v FROM t ORDER BY v DESC, id LIMIT 3"),
    ("t_top_offset", "SELECT id, g FROM t WHERE v > 0 ORDER BY id LIMIT 2 OFFSET 2"),
    ("t_top_per_g", "SELECT id, g, v, rn FROM (SELECT id, g, v, row_number() OVER (PARTITION BY g ORDER BY v DESC, id) AS rn FROM t) WHERE rn <= 2"),
    ("t_dense_per_g", "SELECT g, v, r FROM (SELECT g, v, dense_rank() OVER (PARTITION BY g ORDER BY v) AS r FROM t) AS x WHERE r < 3"),
    ("tu_rank", "SELECT region, id, r FROM (SELECT u.region, t.id, rank() OVER (PARTITION BY u.region ORDER BY t.v) AS r FROM t JOIN u ON t.id % 4 = u.id) WHERE r = 1"),
    ("u_ordered", "SELECT id, region FROM u ORDER BY region"),
    ("t_above_avg", "SELECT id, v FROM t WHERE v > (SELECT avg(v) FROM t)"),
    ("tu_scalar_uncorrelated", "SELECT id, (SELECT count(*) FROM u) AS users, v - (SELECT min(v) FROM t) AS above_min FROM t"),
    ("tu_theta_only", "SELECT t.id, u.id AS uid FROM t JOIN u ON t.id < u.id AND u.region <> t.g"),
    ("tu_cross_count", "SELECT t.g, count(*) AS n FROM t CROSS JOIN u GROUP BY t.g"),
    ("t_values", "SELECT t.id, v.label FROM t JOIN (VALUES ('a', 1), ('b', 2), ('b', 3)) AS v (g, label) ON t.g = v.g"),
    ("u_in_values", "SELECT id FROM u WHERE region NOT IN (SELECT * FROM (VALUES ('a'), ('c')) AS v (r))"),
    ("t_global_general", "SELECT string_agg(g, '' ORDER BY id) AS gs, count(DISTINCT g) AS n, avg(DISTINCT v) AS ad FROM t"),
];

/// A view created midway, so its backfill from existing data is checked too.
const LATE_VIEW: (&str, &str) = (
    "late",
    "SELECT g, max(v) AS hi, count(*) AS n FROM t WHERE id > 2 GROUP BY g",
);

#[derive(Debug, Clone)]
enum Op {
    InsertStream(Vec<(i32, u8, i64, Option<f64>)>),
    UpsertTable(Vec<(i32, u8, i64)>),
    UpdateTable { modulo: i32, rest: i32, add: i64 },
    UpdateGroup { from: u8, to: u8 },
    DeleteTable { id: i32 },
    DeleteGroup { g: u8 },
    UpsertOther(Vec<(i32, Option<u8>)>),
    DeleteOther { id: i32 },
}

fn group(g: u8) -> &'static str {
    ["a", "b", "c", "d"][(g % 4) as usize]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop::collection::vec((0..20i32, 0..4u8, -5..100i64, prop::option::of(-10.0..10.0f64)), 0..6).prop_map(Op::InsertStream),
        3 => prop::collection::vec((0..12i32, 0..4u8, -5..100i64), 0..6).prop_map(Op::UpsertTable),
        1 => (1..4i32, 0..3i32, -20..20i64).prop_map(|(modulo, rest, add)| Op::UpdateTable { modulo, rest, add }),
        1 => (0..4u8, 0..4u8).prop_map(|(from, to)| Op::UpdateGroup { from, to }),
        2 => (0..12i32).prop_map(|id| Op::DeleteTable { id }),
        1 => (0..4u8).prop_map(|g| Op::DeleteGroup { g }),
        2 => prop::collection::vec((0..6i32, prop::option::of(0..4u8)), 0..4).prop_map(Op::UpsertOther),
        1 => (0..6i32).prop_map(|id| Op::DeleteOther { id }),
    ]
}

fn sql_for(op: &Op) -> Option<String> {
    match op {
        Op::InsertStream(rows) if !rows.is_empty() => Some(format!(
            "INSERT INTO s VALUES {}",
            rows.iter()
                .map(|(k, g, v, f)| format!(
                    "({k}, '{}', {v}, {})",
                    group(*g),
                    f.map(|x| format!("{x:.3}"))
                        .unwrap_or_else(|| "NULL".into())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Op::UpsertTable(rows) if !rows.is_empty() => Some(format!(
            "INSERT INTO t VALUES {}",
            rows.iter()
                .map(|(id, g, v)| format!("({id}, '{}', {v})", group(*g)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Op::UpdateTable { modulo, rest, add } => Some(format!(
            "UPDATE t SET v = v + {add} WHERE id % {modulo} = {rest}"
        )),
        Op::UpdateGroup { from, to } => Some(format!(
            "UPDATE t SET g = '{}' WHERE g = '{}'",
            group(*to),
            group(*from)
        )),
        Op::DeleteTable { id } => Some(format!("DELETE FROM t WHERE id = {id}")),
        Op::DeleteGroup { g } => Some(format!("DELETE FROM t WHERE g = '{}'", group(*g))),
        Op::UpsertOther(rows) if !rows.is_empty() => Some(format!(
            "INSERT INTO u VALUES {}",
            rows.iter()
                .map(|(id, g)| format!(
                    "({id}, {})",
                    g.map(|g| format!("'{}'", group(g)))
                        .unwrap_or_else(|| "NULL".into())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Op::DeleteOther { id } => Some(format!("DELETE FROM u WHERE id = {id}")),
        _ => None,
    }
}

async fn check_views(
    db: &Database,
    session: &mut Session,
    views: &[(&str, &str)],
    step: &str,
) -> Result<(), TestCaseError> {
    for (name, query) in views {
        let maintained = common::rows(db, session, &format!("SELECT * FROM {name}")).await;
        let recomputed = common::rows(db, session, query).await;
        prop_assert_eq!(
            &maintained,
            &recomputed,
            "view {} differs after {}",
            name,
            step
        );
    }
    Ok(())
}

async fn scenario(ops: Vec<Op>, late_at: usize) -> Result<(), TestCaseError> {
    let store = Arc::new(MemoryStore::default());
    let db = Database::open(Box::new(store.clone())).expect("open");
    let mut session = Session::default();
    for sql in [
        "CREATE STREAM s (k INT, g TEXT, v BIGINT, f DOUBLE)",
        "CREATE TABLE t (id INT PRIMARY KEY, g TEXT, v BIGINT)",
        "CREATE TABLE u (id INT PRIMARY KEY, region TEXT)",
    ] {
        db.execute(&mut session, sql, &[]).await.expect("create");
    }
    let mut views: Vec<(&str, &str)> = Vec::new();
    for (name, q) in VIEWS {
        db.execute(
            &mut session,
            &format!("CREATE MATERIALIZED VIEW {name} AS {q}"),
            &[],
        )
        .await
        .expect("create view");
        views.push((name, q));
    }
    check_views(&db, &mut session, &views, "creation").await?;
    for (i, op) in ops.iter().enumerate() {
        if i == late_at {
            let (name, q) = LATE_VIEW;
            db.execute(
                &mut session,
                &format!("CREATE MATERIALIZED VIEW {name} AS {q}"),
                &[],
            )
            .await
            .expect("late view");
            views.push((name, q));
        }
        if let Some(sql) = sql_for(op) {
            db.execute(&mut session, &sql, &[])
                .await
                .map_err(|e| TestCaseError::fail(format!("{sql}: {e}")))?;
            check_views(&db, &mut session, &views, &sql).await?;
        }
    }
    // Restart: replaying the log gives the same views.
    let before: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for (name, _) in &views {
            v.push(common::rows(&db, &mut session, &format!("SELECT * FROM {name}")).await);
        }
        v
    };
    let reopened = Database::open(Box::new(store.clone())).expect("reopen");
    for ((name, _), expected) in views.iter().zip(before) {
        let after = common::rows(&reopened, &mut session, &format!("SELECT * FROM {name}")).await;
        prop_assert_eq!(after, expected, "view {} differs after restart", name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn views_equal_batch_recomputation(ops in prop::collection::vec(op(), 1..25), late_at in 0usize..25) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(scenario(ops, late_at))?;
    }
}
