//! SELECT semantics a client can see: DISTINCT, aggregates.

use starrocks_emulator::QueryOutput;

use crate::support::Fixture;

async fn query(fx: &Fixture, sql: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let out = fx
        .emu
        .execute_sql(Some("d"), sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let QueryOutput::Rows { columns, rows } = out else {
        panic!("{sql}: no result set");
    };
    let names = columns.into_iter().map(|c| c.name).collect();
    let rows = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.to_text().unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect();
    (names, rows)
}

async fn with_rows() -> Fixture {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, s VARCHAR(10) NULL, x INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.sql(
        "INSERT INTO t VALUES (1, 'a', 5), (2, 'b', 5), (3, 'a', 7), (4, NULL, NULL), (5, 'b', 1)",
    )
    .await;
    fx
}

#[tokio::test]
async fn distinct_in_aggregates() {
    let fx = with_rows().await;
    let (names, rows) = query(
        &fx,
        "select count(distinct s), sum(distinct x), avg(distinct x), count(s), sum(x) from t",
    )
    .await;
    assert_eq!(
        names,
        [
            "count(DISTINCT s)",
            "sum(DISTINCT x)",
            "avg(DISTINCT x)",
            "count(s)",
            "sum(x)"
        ]
    );
    assert_eq!(rows, [["2", "13", "4.333333333333333", "4", "18"]]);
}

#[tokio::test]
async fn select_distinct_drops_repeated_rows() {
    let fx = with_rows().await;
    let (_, rows) = query(&fx, "SELECT DISTINCT s FROM t ORDER BY s").await;
    assert_eq!(rows, [["NULL"], ["a"], ["b"]]);
    let (_, rows) = query(&fx, "SELECT DISTINCT s, x FROM t WHERE x = 5 ORDER BY s").await;
    assert_eq!(rows, [["a", "5"], ["b", "5"]]);
    let (_, rows) = query(&fx, "SELECT DISTINCT x FROM t ORDER BY x LIMIT 2 OFFSET 1").await;
    assert_eq!(rows, [["1"], ["5"]]);
}

/// SUM/AVG over DECIMAL are DECIMAL (`DecimalV3FunctionAnalyzer.rectifyAggregationFunction`).
#[tokio::test]
async fn decimal_aggregates_are_exact() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE m (id INT NOT NULL, v DECIMAL(10, 2) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.sql("INSERT INTO m VALUES (1, 9.00), (2, 2.50), (3, -1.12), (4, NULL)")
        .await;
    let (_, rows) = query(&fx, "select sum(v), avg(v), min(v), max(v) from m").await;
    assert_eq!(rows, [["10.38", "3.46000000", "-1.12", "9.00"]]);
}
