//! Bad input never panics: random bytes, random token soup and mutations of valid
//! statements go through the parser and the executor; each gets a result (usually an
//! error with a SQLSTATE) and the database stays usable.

use eddy::database::{Database, Session};
use eddy::state::MemoryStore;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "CREATE STREAM s (a INT, b TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)",
    "CREATE TABLE t (id INT PRIMARY KEY, v BIGINT)",
    "INSERT INTO s VALUES (1, 'x', '2026-01-01 00:00:00'), (2, NULL, NULL)",
    "INSERT INTO t VALUES (1, 10), (2, 20)",
    "UPDATE t SET v = v / 0 WHERE id = 1",
    "DELETE FROM t WHERE id = 2",
    "CREATE MATERIALIZED VIEW m AS SELECT b, count(*), sum(a), min(ts) FROM s GROUP BY b",
    "CREATE TABLE w AS SELECT a, count(*) FROM s WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY a",
    "SELECT window_start, count(*) FROM TUMBLE(s, ts, INTERVAL '1' MINUTE) GROUP BY 1",
    "SELECT * FROM m ORDER BY 1 LIMIT 3",
    "EXPLAIN m",
    "DROP STREAM s CASCADE",
    "SHOW QUERIES",
    "SET x = 'y'",
];

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "(",
    ")",
    ",",
    "'",
    "\"",
    "*",
    "s",
    "t",
    "m",
    "a",
    "1",
    "-1",
    "1e999",
    "NULL",
    "TUMBLE",
    "HOP",
    "WINDOW",
    "EMIT",
    "CHANGES",
    "FINAL",
    "CREATE",
    "STREAM",
    "TABLE",
    "MATERIALIZED",
    "VIEW",
    "AS",
    "INSERT",
    "INTO",
    "VALUES",
    "WATERMARK",
    "FOR",
    "INTERVAL",
    "'1' SECOND",
    "$1",
    ";",
    "::",
    "INT",
    "CASE",
    "WHEN",
    "END",
    "count(",
    "sum(",
    "DISTINCT",
    "UNION",
    "ALL",
    "JOIN",
    "ON",
    "=",
    "<>",
    "/",
    "%",
    "E'\\\\x'",
    "--",
    "/*",
    "*/",
    "SESSION",
    "SIZE",
    "ADVANCE",
    "GRACE",
    "PERIOD",
    "RETENTION",
    "DROP",
    "CASCADE",
];

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|t| t.join(" ")),
        (prop::sample::select(SEEDS), any::<usize>(), any::<usize>()).prop_map(|(s, cut, keep)| {
            // Truncate or splice a valid statement.
            let chars: Vec<char> = s.chars().collect();
            let cut = cut % (chars.len() + 1);
            let keep = keep % (chars.len() + 1);
            chars[..cut].iter().chain(chars[keep..].iter()).collect()
        }),
        prop::sample::select(SEEDS).prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_statement_panics(stmts in prop::collection::vec(statement(), 1..12)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let db = Database::open(Box::new(MemoryStore::default())).expect("open");
            let mut s = Session::default();
            for sql in &stmts {
                for r in db.execute_all(&mut s, sql).await {
                    if let Err(e) = r {
                        assert!(!e.sqlstate().is_empty());
                        assert_ne!(e.sqlstate(), "XX000", "internal error for {sql:?}: {e}");
                    }
                }
            }
            // Still usable.
            db.execute_all(&mut s, "CREATE STREAM still_ok (a INT); INSERT INTO still_ok VALUES (1)").await
                .into_iter()
                .for_each(|r| { r.expect("database usable after bad input"); });
        });
    }
}
