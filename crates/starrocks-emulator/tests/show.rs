//! SHOW statements with LIKE / WHERE filters (spec §6.4).

use crate::support::Fixture;

async fn names(fx: &Fixture, sql: &str) -> Vec<Vec<String>> {
    let out = fx
        .emu
        .execute_sql(Some("d"), sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    out.rows()
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.to_text().unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn show_tables_and_databases_filter() {
    let fx = Fixture::new().await;
    fx.sql("CREATE DATABASE d1").await;
    for t in ["users", "user_x", "u", "Orders"] {
        fx.sql(&format!(
            "CREATE TABLE {t} (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)"
        ))
        .await;
    }
    assert!(names(&fx, "SHOW TABLES LIKE 'x'").await.is_empty());
    assert_eq!(names(&fx, "SHOW TABLES LIKE 'u'").await, [["u"]]);
    assert_eq!(
        names(&fx, "SHOW TABLES LIKE 'user%'").await,
        [["user_x"], ["users"]]
    );
    assert_eq!(
        names(&fx, "SHOW TABLES LIKE 'user\\_x'").await,
        [["user_x"]]
    );
    // Table names are case-sensitive here (CaseSensibility.TABLE).
    assert!(names(&fx, "SHOW TABLES LIKE 'orders'").await.is_empty());
    assert_eq!(
        names(&fx, "SHOW TABLES FROM d WHERE Tables_in_d = 'u'").await,
        [["u"]]
    );
    assert_eq!(
        names(&fx, "SHOW FULL TABLES LIKE 'u'").await,
        [["u", "BASE TABLE"]]
    );
    assert_eq!(names(&fx, "SHOW DATABASES LIKE 'd1'").await, [["d1"]]);
    assert!(names(&fx, "SHOW DATABASES LIKE 'nope'").await.is_empty());
}

#[tokio::test]
async fn show_columns_filter_and_full() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, Name VARCHAR(10) NULL COMMENT 'who') PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    // Column names are case-insensitive (CaseSensibility.COLUMN).
    assert_eq!(
        names(&fx, "SHOW COLUMNS FROM t LIKE 'name'").await,
        [["Name", "varchar(10)", "YES", "NO", "NULL", ""]]
    );
    assert_eq!(
        names(&fx, "SHOW FULL COLUMNS FROM t WHERE Field = 'id'").await,
        [["id", "int", "", "NO", "YES", "NULL", "", "", ""]]
    );
}
