//! ALTER TABLE ... RENAME COLUMN (spec §6.3a) through a real MySQL client.

use mysql_async::prelude::*;
use mysql_async::Row;

use crate::mysql::{connect, text};
use crate::support::{basic, raw_request, status, BodyMode, Fixture};

#[tokio::test]
async fn rename_is_synchronous_and_keeps_values_position_and_keys() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE t (id INT NOT NULL, k2 VARCHAR(8) NOT NULL, v INT NULL DEFAULT \"7\", \
         w VARCHAR(8) NULL) PRIMARY KEY (id, k2) DISTRIBUTED BY HASH(id)",
    )
    .await;
    let r = fx
        .load_json(
            "t",
            &[],
            r#"[{"id":1,"k2":"a","v":10,"w":"x"},{"id":2,"k2":"b","v":20}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    conn.query_drop("ALTER TABLE t RENAME COLUMN v TO v2")
        .await
        .unwrap();
    // Done when the statement returns: no job to wait for, none listed.
    let desc: Vec<Row> = conn.query("DESC t").await.unwrap();
    let v2: Vec<Option<String>> = (0..6).map(|i| text(&desc[2], i)).collect();
    let expected = ["v2", "int", "YES", "false", "7", ""];
    assert_eq!(v2, expected.map(|s| Some(s.to_string())));
    let jobs: Vec<Row> = conn.query("SHOW ALTER TABLE COLUMN FROM d").await.unwrap();
    assert!(jobs.is_empty());
    let rows: Vec<(i64, Option<i64>)> = conn
        .query("SELECT id, v2 FROM t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows, vec![(1, Some(10)), (2, Some(20))]);
    assert!(conn.query_drop("SELECT v FROM t").await.is_err());

    // A key column (also the distribution column) may be renamed too.
    conn.query_drop("ALTER TABLE d.t RENAME COLUMN `id` TO pk")
        .await
        .unwrap();
    let (_, create): (String, String) = conn
        .query_first("SHOW CREATE TABLE t")
        .await
        .unwrap()
        .unwrap();
    assert!(create.contains("PRIMARY KEY(`pk`, `k2`)"), "{create}");
    assert!(create.contains("DISTRIBUTED BY HASH(`pk`)"), "{create}");
    assert!(
        create.contains("`v2` int(11) NULL DEFAULT \"7\" COMMENT \"\""),
        "{create}"
    );
    let columns: Vec<Row> = conn
        .query(
            "SELECT COLUMN_NAME, ORDINAL_POSITION FROM information_schema.columns \
             WHERE TABLE_SCHEMA = 'd' AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION",
        )
        .await
        .unwrap();
    let columns: Vec<(String, String)> = columns
        .iter()
        .map(|r| (text(r, 0).unwrap(), text(r, 1).unwrap()))
        .collect();
    let expected = [("pk", "1"), ("k2", "2"), ("v2", "3"), ("w", "4")];
    assert_eq!(
        columns,
        expected.map(|(n, p)| (n.to_string(), p.to_string()))
    );

    // Stream Load maps JSON keys to the new names; the old name is an unknown key (ignored),
    // so the renamed column reads as a missing key: NULL.
    let r = fx
        .load_json(
            "t",
            &[],
            r#"[{"pk":3,"k2":"c","v2":30,"w":"y"},{"pk":4,"k2":"d","v":40}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    assert_eq!(
        fx.text_rows("t"),
        vec![
            vec!["1", "a", "10", "x"],
            vec!["2", "b", "20", "NULL"],
            vec!["3", "c", "30", "y"],
            vec!["4", "d", "NULL", "NULL"],
        ]
    );
}

#[tokio::test]
async fn rename_errors_match_starrocks() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, v INT NULL, w INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    let conflict = |a: &str, b: &str| {
        format!("Getting analyzing error. Detail message: Alter operation {a} conflicts with operation {b}.")
    };
    let cases: Vec<(&str, u16, String)> = vec![
        // StarRocks sends 5509 (SQLSTATE 42S22); the emulator MySQL's 1054, same state and text.
        (
            "ALTER TABLE t RENAME COLUMN nope TO x",
            1054,
            "Unknown column 'nope' in 't'".into(),
        ),
        (
            "ALTER TABLE t RENAME COLUMN v TO w",
            1060,
            "Duplicate column name 'w'".into(),
        ),
        (
            "ALTER TABLE t RENAME COLUMN v TO v",
            1060,
            "Duplicate column name 'v'".into(),
        ),
        (
            "ALTER TABLE t RENAME COLUMN v TO V",
            1060,
            "Duplicate column name 'V'".into(),
        ),
        // The new name is analysed before the old one is looked up.
        (
            "ALTER TABLE t RENAME COLUMN nope TO __OP",
            1064,
            "Getting analyzing error. Detail message: Column name [__OP] is a system reserved \
             name. Please choose a different one."
                .into(),
        ),
        (
            "ALTER TABLE t RENAME COLUMN v TO `a=b`",
            1166,
            "Getting analyzing error. Detail message: Incorrect column name 'a=b'.".into(),
        ),
        (
            "ALTER TABLE t RENAME COLUMN v TO ``",
            1064,
            "Getting analyzing error. Detail message: New column name is not set.".into(),
        ),
        (
            "ALTER TABLE t RENAME COLUMN v TO x, ADD COLUMN y INT NULL",
            1064,
            conflict("SCHEMA_CHANGE", "RENAME"),
        ),
        (
            "ALTER TABLE t ADD COLUMN y INT NULL, RENAME COLUMN v TO x",
            1064,
            conflict("RENAME", "SCHEMA_CHANGE"),
        ),
        (
            "ALTER TABLE t RENAME COLUMN v TO x, RENAME COLUMN w TO z",
            1064,
            conflict("RENAME", "RENAME"),
        ),
    ];
    for (sql, code, message) in cases {
        match conn.query_drop(sql).await.unwrap_err() {
            mysql_async::Error::Server(e) => {
                assert_eq!(
                    (e.code, e.message.as_str()),
                    (code, message.as_str()),
                    "{sql}"
                );
            }
            other => panic!("{sql}: {other}"),
        }
    }
    // TO is required by the grammar (the docs' `[ TO ]` is not).
    let err = conn
        .query_drop("ALTER TABLE t RENAME COLUMN v x")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Unexpected input 'x', the most similar input is {'TO'}"),
        "{err}"
    );
    assert_eq!(fx.emu.table_columns("d", "t").unwrap(), ["id", "v", "w"]);

    // Not while a schema change job runs on the table.
    conn.query_drop("ALTER TABLE t ADD COLUMN c INT NULL")
        .await
        .unwrap();
    let err = conn
        .query_drop("ALTER TABLE t RENAME COLUMN v TO v2")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "A schema change operation is in progress on the table \"t\". Please wait until the \
             current operation completes."
        ),
        "{err}"
    );
    crate::spec7::wait_alter_finished(&fx, "t").await;

    // The old name stays the column's ColumnId: a new column may not take it...
    conn.query_drop("ALTER TABLE t RENAME COLUMN v TO v2")
        .await
        .unwrap();
    let err = conn
        .query_drop("ALTER TABLE t ADD COLUMN v INT NULL")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "Can not add column which already exists in column id: v, you can remove `v2` \
             int(11) NULL COMMENT \"\" and try again."
        ),
        "{err}"
    );
    // ...but renaming back to it is allowed.
    conn.query_drop("ALTER TABLE t RENAME COLUMN v2 TO v")
        .await
        .unwrap();
    assert_eq!(
        fx.emu.table_columns("d", "t").unwrap(),
        ["id", "v", "w", "c"]
    );
}

#[tokio::test]
async fn a_load_planned_before_a_rename_commits_into_the_renamed_column() {
    // The BE writes by ColumnId, which the rename keeps (spec §6.3a).
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, v INT NULL, w INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.load_json("t", &[], r#"[{"id":1,"v":1,"w":1}]"#).await;
    let auth = basic("root", "");
    let call = |op: &'static str, body: &'static str| {
        let auth = auth.clone();
        let addr = fx.emu.be_http_addr();
        async move {
            let method = if op == "load" { "PUT" } else { "POST" };
            let headers = [
                ("Authorization", auth.as_str()),
                ("label", "renamed"),
                ("db", "d"),
                ("table", "t"),
                ("format", "json"),
                ("partial_update", "true"),
                ("columns", "id,v"),
            ];
            let path = format!("/api/transaction/{op}");
            raw_request(
                addr,
                method,
                &path,
                &headers,
                body.as_bytes(),
                BodyMode::Eager,
            )
            .await
            .unwrap()
            .json()
        }
    };
    assert_eq!(call("begin", "").await["Status"], "OK");
    assert_eq!(call("load", r#"{"id":1,"v":5}"#).await["Status"], "OK");
    fx.sql("ALTER TABLE t RENAME COLUMN v TO v2").await;
    let commit = call("commit", "").await;
    assert_eq!(commit["Status"], "OK", "{commit}");
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "5", "1"]]);
}

/// MODIFY COLUMN never shortens a string (`Column.checkSchemaChangeAllowed`, spec §6.3);
/// lengthening is a schema change job as usual.
#[tokio::test]
async fn a_varchar_cannot_be_shortened() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, v VARCHAR(10) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    let err = conn
        .query_drop("ALTER TABLE t MODIFY COLUMN v VARCHAR(5) NULL")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Cannot shorten string length"),
        "{err}"
    );
    conn.query_drop("ALTER TABLE t MODIFY COLUMN v VARCHAR(20) NULL")
        .await
        .unwrap();
}
