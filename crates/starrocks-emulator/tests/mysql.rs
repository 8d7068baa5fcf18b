//! The MySQL protocol through a real client (mysql_async), as dbmazz will use it.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Row};

use crate::support::{status, Fixture};
use starrocks_emulator::{EmulatorConfig, FaultKind, FaultRule};

pub(crate) async fn connect(fx: &Fixture, password: &str) -> Result<Conn, mysql_async::Error> {
    let addr = fx.emu.mysql_addr().unwrap();
    let opts: Opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some("root"))
        .pass(Some(password))
        .prefer_socket(false)
        .into();
    Conn::new(opts).await
}

/// id, status, amount, note.
type OrderRow = (i64, Option<String>, Option<String>, Option<String>);

pub(crate) fn text(row: &Row, i: usize) -> Option<String> {
    row.get::<Option<String>, _>(i).flatten()
}

#[tokio::test]
async fn ddl_desc_and_select_after_loads() {
    let fx = Fixture::new().await;
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS orders (id BIGINT NOT NULL, status VARCHAR(16) NULL, amount DECIMAL(10,2) NULL, note STRING NULL) \
         PRIMARY KEY (id) DISTRIBUTED BY HASH(id) BUCKETS 2 PROPERTIES (\"replication_num\" = \"1\")",
    )
    .await
    .unwrap();
    let desc: Vec<Row> = conn.query("DESC orders").await.unwrap();
    let shape: Vec<Vec<Option<String>>> = desc
        .iter()
        .map(|r| (0..6).map(|i| text(r, i)).collect())
        .collect();
    assert_eq!(
        shape[0],
        vec![
            Some("id".into()),
            Some("bigint".into()),
            Some("NO".into()),
            Some("true".into()),
            None,
            Some(String::new())
        ]
    );
    assert_eq!(shape[2][1].as_deref(), Some("decimal(10,2)"));
    assert_eq!(shape[3][1].as_deref(), Some("varchar(65533)"));
    // Upserts, deletes and a partial update.
    let r = fx
        .load_json(
            "orders",
            &[],
            r#"[{"id":1,"status":"new","amount":"10.00","note":"a"},{"id":2,"status":"new","amount":"5.5"},{"id":3,"status":"new"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let r = fx
        .load_json(
            "orders",
            &[],
            r#"[{"id":2,"__op":1},{"id":4,"status":"x","amount":1}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let r = fx
        .load_json(
            "orders",
            &[("partial_update", "true"), ("columns", "id,status")],
            r#"[{"id":1,"status":"paid"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let count: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM orders")
        .await
        .unwrap();
    assert_eq!(count, Some(3));
    let rows: Vec<OrderRow> = conn
        .query(
            "SELECT id, status, amount, note FROM orders WHERE id <= 4 ORDER BY id DESC LIMIT 10",
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (4, Some("x".into()), Some("1.00".into()), None),
            (3, Some("new".into()), None, None),
            (
                1,
                Some("paid".into()),
                Some("10.00".into()),
                Some("a".into())
            ),
        ]
    );
    let tables: Vec<String> = conn.query("SHOW TABLES").await.unwrap();
    assert_eq!(tables, vec!["orders".to_string()]);
    let dbs: Vec<String> = conn.query("SHOW DATABASES").await.unwrap();
    assert!(dbs.contains(&"d".to_string()));
    let version: Option<String> = conn.query_first("select current_version()").await.unwrap();
    assert!(version.unwrap().starts_with("3.3"));
    conn.query_drop("TRUNCATE TABLE orders").await.unwrap();
    let count: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM orders")
        .await
        .unwrap();
    assert_eq!(count, Some(0));
    conn.query_drop("DROP TABLE orders").await.unwrap();
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn async_alter_until_finished_and_errors_use_1064() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, v INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.load_json("t", &[], r#"[{"id":1,"v":1}]"#).await;
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    conn.query_drop("ALTER TABLE t ADD COLUMN c VARCHAR(10) NULL DEFAULT \"z\" AFTER v")
        .await
        .unwrap();
    let err = conn
        .query_drop("ALTER TABLE t DROP COLUMN v")
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1064);
            assert!(
                e.message
                    .contains("A schema change operation is in progress"),
                "{}",
                e.message
            );
        }
        other => panic!("{other}"),
    }
    let mut finished = false;
    for _ in 0..200 {
        let rows: Vec<Row> = conn
            .query("SHOW ALTER TABLE COLUMN FROM d WHERE TableName = \"t\" ORDER BY CreateTime DESC LIMIT 1")
            .await
            .unwrap();
        let state = text(&rows[0], 9).unwrap();
        if state == "FINISHED" {
            finished = true;
            break;
        }
        assert_ne!(state, "CANCELLED");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(finished);
    let desc: Vec<Row> = conn.query("DESC t").await.unwrap();
    assert_eq!(text(&desc[2], 0).as_deref(), Some("c"));
    assert_eq!(text(&desc[2], 4).as_deref(), Some("z"));
    let rows: Vec<(i64, Option<i64>, Option<String>)> =
        conn.query("SELECT * FROM t").await.unwrap();
    assert_eq!(rows, vec![(1, Some(1), Some("z".into()))]);
    for (sql, needle) in [
        (
            "ALTER TABLE t ADD COLUMN c INT NULL",
            "Can not add column which already exists in base table: c",
        ),
        (
            "ALTER TABLE t DROP COLUMN id",
            "Can not drop key column in primary data model table",
        ),
        (
            "ALTER TABLE t ADD COLUMN n INT NOT NULL",
            "Field 'n' is not null but doesn't have a default value.",
        ),
        // Spec §6.3: DEFAULTs are checked at analysis, as ColumnDef.validateDefaultValue does.
        (
            "ALTER TABLE t ADD COLUMN j JSON NULL DEFAULT '{}'",
            "Detail message: Column definition is wrong. Invalid default value for 'j': \
             Cannot add default value for type 'JSON'.",
        ),
        (
            "ALTER TABLE t ADD COLUMN a ARRAY<INT> NULL DEFAULT '[]'",
            "Default value for complex type 'ARRAY<INT>' not supported",
        ),
        (
            "ALTER TABLE t ADD COLUMN f FLOAT NULL DEFAULT '0.1000000001'",
            "Default value will loose precision: 0.1000000001",
        ),
        (
            "CREATE TABLE t2 (id INT NOT NULL, b BOOLEAN NULL DEFAULT 't') PRIMARY KEY (id) \
             DISTRIBUTED BY HASH(id)",
            "Invalid default value for 'b': Invalid BOOLEAN literal: t",
        ),
        ("SELEC 1", "Getting syntax error"),
    ] {
        let err = conn.query_drop(sql).await.unwrap_err();
        match err {
            mysql_async::Error::Server(e) => {
                assert_eq!(e.code, 1064, "{sql}");
                assert!(e.message.contains(needle), "{sql}: {}", e.message);
            }
            other => panic!("{other}"),
        }
    }
}

#[tokio::test]
async fn alter_faults_slow_and_fail() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, v INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.emu
        .inject(FaultRule::new(FaultKind::AlterFail).message("disk full"));
    fx.sql("ALTER TABLE t ADD COLUMN x INT NULL").await;
    crate::spec7::wait_alter_finished(&fx, "t").await;
    let out = fx
        .emu
        .execute_sql(Some("d"), "SHOW ALTER TABLE COLUMN")
        .await
        .unwrap();
    assert_eq!(out.rows()[0][9].to_text().unwrap(), "CANCELLED");
    assert_eq!(out.rows()[0][10].to_text().unwrap(), "disk full");
    assert_eq!(fx.emu.table_columns("d", "t").unwrap().len(), 2);
    fx.emu
        .inject(FaultRule::new(FaultKind::AlterSlow).delay_ms(400));
    fx.sql("ALTER TABLE t ADD COLUMN x INT NULL").await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let out = fx
        .emu
        .execute_sql(
            Some("d"),
            "SHOW ALTER TABLE COLUMN ORDER BY JobId DESC LIMIT 1",
        )
        .await
        .unwrap();
    assert!(!matches!(
        out.rows()[0][9].to_text().unwrap().as_str(),
        "FINISHED" | "CANCELLED"
    ));
    crate::spec7::wait_alter_finished(&fx, "t").await;
    assert_eq!(fx.emu.table_columns("d", "t").unwrap().len(), 3);
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let mut config = EmulatorConfig::ephemeral();
    config.password = "secret".into();
    let fx = Fixture::with_config(config).await;
    assert!(connect(&fx, "nope").await.is_err());
    let mut conn = connect(&fx, "secret").await.unwrap();
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn mysql_cli_if_present() {
    let Ok(output) = std::process::Command::new("mysql")
        .arg("--version")
        .output()
    else {
        return;
    };
    if !output.status.success() {
        return;
    }
    let fx = Fixture::new().await;
    let addr = fx.emu.mysql_addr().unwrap();
    let out = tokio::process::Command::new("mysql")
        .args([
            "-h",
            &addr.ip().to_string(),
            "-P",
            &addr.port().to_string(),
            "-uroot",
            "-N",
            "-e",
            "CREATE TABLE d.c (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id); SELECT COUNT(*) FROM d.c;",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[tokio::test]
async fn prepared_statements_with_parameters() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE p (id BIGINT NOT NULL, name VARCHAR(20) NULL, at DATETIME NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.load_json(
        "p",
        &[],
        r#"[{"id":1,"name":"o'brien","at":"2024-01-01 10:00:00"},{"id":2,"name":"b","at":null}]"#,
    )
    .await;
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    let names: Vec<(i64, Option<String>)> = conn
        .exec(
            "SELECT id, name FROM p WHERE name = ? OR id = ? ORDER BY id",
            ("o'brien", 2),
        )
        .await
        .unwrap();
    assert_eq!(
        names,
        vec![(1, Some("o'brien".into())), (2, Some("b".into()))]
    );
    let count: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.columns WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            ("d", "p"),
        )
        .await
        .unwrap();
    assert_eq!(count, Some(3));
    conn.exec_drop(
        "INSERT INTO p (id, name, at) VALUES (?, ?, ?)",
        (3, "c", "2024-02-02 00:00:01"),
    )
    .await
    .unwrap();
    let at: Option<String> = conn
        .exec_first("SELECT at FROM p WHERE id = ?", (3,))
        .await
        .unwrap();
    assert_eq!(at.as_deref(), Some("2024-02-02 00:00:01"));
    let err = conn
        .exec_drop("SELECT nope FROM p WHERE id = ?", (1,))
        .await
        .unwrap_err();
    assert!(matches!(err, mysql_async::Error::Server(_)), "{err}");
}

#[tokio::test]
async fn query_text_matches_what_a_client_sees() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE q (id INT NOT NULL, v DECIMAL(5,1) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.load_json("q", &[], r#"[{"id":2,"v":1.25},{"id":1}]"#)
        .await;
    let rows = fx
        .emu
        .query_text(Some("d"), "SELECT id, v FROM q ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            vec![Some("1".to_string()), None],
            vec![Some("2".to_string()), Some("1.3".to_string())]
        ]
    );
}

/// FLOAT/DOUBLE text as StarRocks's patched Ryu writes it (`be/src/util/mysql_row_buffer.cpp`,
/// `thirdparty/patches/ryu.patch`); a FLOAT is an f32, printed from its own shortest digits.
#[tokio::test]
async fn float_and_double_text_over_mysql() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE f (id INT NOT NULL, r FLOAT NULL, d DOUBLE NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let body = r#"[{"id":1,"r":0.1,"d":0.1},{"id":2,"r":1e10,"d":1.5e300},
        {"id":3,"r":123456789,"d":1e-5},{"id":4,"r":-0.0,"d":-0.0},
        {"id":5,"r":"NaN","d":"-Infinity"},{"id":6,"r":1234567,"d":1e15}]"#;
    let j = fx.load_json("f", &[], body).await;
    assert_eq!(j["Status"], "Success", "{j}");
    let mut conn = connect(&fx, "").await.unwrap();
    let rows: Vec<(String, String)> = conn
        .query("SELECT r, d FROM d.f ORDER BY id")
        .await
        .unwrap();
    let expected = [
        ("0.1", "0.1"),
        ("1e+10", "1.5e+300"),
        ("1.2345679e+08", "1e-05"),
        ("-0", "-0"),
        ("nan", "-inf"),
        ("1234567", "1000000000000000"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(rows, expected);
}

/// The first 8 scramble bytes of the server's handshake packet.
async fn handshake_scramble(fx: &Fixture) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(fx.emu.mysql_addr().unwrap())
        .await
        .unwrap();
    let mut buf = vec![0u8; 256];
    let n = stream.read(&mut buf).await.unwrap();
    let payload = &buf[4..n];
    assert_eq!(payload[0], 10, "handshake v10");
    let version_end = payload.iter().position(|b| *b == 0).unwrap();
    let start = version_end + 1 + 4;
    payload[start..start + 8].to_vec()
}

/// Each connection gets its own auth challenge (`MysqlPassword.createRandomString`), and result
/// sets are not held back by Nagle (the FE sets TCP_NODELAY, `MysqlServer`).
#[tokio::test]
async fn fresh_scramble_and_no_nagle_delay() {
    let fx = Fixture::new().await;
    let first = handshake_scramble(&fx).await;
    let second = handshake_scramble(&fx).await;
    assert_ne!(first, second);
    assert!(first.iter().all(|b| *b != 0));
    let mut conn = connect(&fx, "").await.unwrap();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_millis(400),
        "20 queries took {elapsed:?}"
    );
}

/// DELETE on a Primary Key table with the SELECT subset's WHERE; the OK packet counts the rows.
#[tokio::test]
async fn delete_with_where() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, s VARCHAR(10) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'a'), (4, NULL)")
        .await;
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    conn.query_drop("DELETE FROM t WHERE s = 'a' OR id > 3")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 3);
    let ids: Vec<i64> = conn.query("SELECT id FROM t ORDER BY id").await.unwrap();
    assert_eq!(ids, [2]);
    conn.query_drop("DELETE FROM d.t WHERE id = 99")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 0);
    let err = conn
        .query_drop("DELETE FROM t WHERE nope = 1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
