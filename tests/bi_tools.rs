//! The SQL Metabase, Grafana and Superset send on connect and during schema discovery
//! (tests/fixtures/bi_tools.sql, verbatim), replayed against a live eddy: every statement
//! succeeds, and the answers that drive each tool's schema browser are the ones
//! Postgres would give for the same tables, views and materialized views.

mod common;

use common::query_rows;

fn statements() -> Vec<String> {
    include_str!("fixtures/bi_tools.sql")
        .split("-- next\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.starts_with("-- "))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

fn find<'a>(all: &'a [String], needle: &str) -> &'a str {
    all.iter()
        .find(|s| s.contains(needle))
        .unwrap_or_else(|| panic!("no fixture statement contains {needle}"))
}

#[tokio::test]
async fn bi_tools_discover_the_schema() {
    let server = common::Server::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE orders (id INT PRIMARY KEY, customer TEXT NOT NULL, amount NUMERIC(10,2));
         CREATE MATERIALIZED VIEW order_totals AS SELECT customer, sum(amount) AS total FROM orders GROUP BY customer;
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100;
         INSERT INTO orders VALUES (1, 'a', 5), (2, 'b', 500), (3, 'a', 7);",
    )
    .await
    .unwrap();

    let all = statements();
    assert_eq!(all.len(), 19);
    for sql in &all {
        if let Err(e) = c.simple_query(sql).await {
            panic!(
                "{sql}\n-> {}",
                e.as_db_error().map(|d| d.message()).unwrap_or("")
            );
        }
    }

    // Metabase's describe-database: every relation with its kind and a row estimate.
    let rows = query_rows(&c, find(&all, "estimated_row_count"))
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            vec!["public", "order_totals", "MATERIALIZED VIEW", "NULL", "2"],
            vec!["public", "orders", "TABLE", "NULL", "3"],
            vec!["public", "big_orders", "VIEW", "NULL", "1"],
        ]
    );
    // Metabase's describe-fields: information_schema for tables and views plus pg_class
    // for materialized views (each column once), the primary key flagged.
    let rows = query_rows(&c, find(&all, "database-is-auto-increment"))
        .await
        .unwrap();
    let fields: Vec<String> = rows
        .iter()
        .map(|r| format!("{}.{} {} pk={}", r[4], r[0], r[1], r[5]))
        .collect();
    assert_eq!(
        fields,
        vec![
            "big_orders.id int4 pk=f",
            "big_orders.customer text pk=f",
            "big_orders.amount numeric pk=f",
            "order_totals.customer text pk=f",
            "order_totals.total numeric pk=f",
            "orders.id int4 pk=t",
            "orders.customer text pk=f",
            "orders.amount numeric pk=f",
        ]
    );
    // Grafana: version probe, table picker (tables and views, as Postgres), columns.
    let version = query_rows(&c, find(&all, "server_version_num"))
        .await
        .unwrap();
    assert_eq!(version, vec![vec!["1500"]]);
    let tables = query_rows(&c, find(&all, "table_type IN ('BASE TABLE', 'VIEW')"))
        .await
        .unwrap();
    assert_eq!(tables, vec![vec!["big_orders"], vec!["orders"]]);
    let columns = query_rows(&c, find(&all, "udt_name, numeric_precision"))
        .await
        .unwrap();
    assert_eq!(
        columns,
        vec![
            vec!["id", "integer", "int4", "32", "0"],
            vec!["customer", "text", "text", "NULL", "NULL"],
            vec!["amount", "numeric", "numeric", "10", "2"],
        ]
    );
    let search_path = query_rows(&c, find(&all, "parse_ident")).await.unwrap();
    assert_eq!(
        search_path,
        vec![
            vec!["id", "integer"],
            vec!["customer", "text"],
            vec!["amount", "numeric"]
        ]
    );
    // Superset: databases.
    let dbs = query_rows(&c, find(&all, "datistemplate")).await.unwrap();
    assert_eq!(dbs, vec![vec!["eddy"]]);
}
