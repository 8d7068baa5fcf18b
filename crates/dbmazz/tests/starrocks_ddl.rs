//! StarRocks DDL over the MySQL protocol, against the emulator.

use std::time::Duration;

use dbmazz::sink::starrocks::{ColumnDef, DdlError, StarRocksDdl};
use starrocks_emulator::{Emulator, EmulatorConfig};

fn column(name: &str, sql_type: &str, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        sql_type: sql_type.into(),
        nullable,
    }
}

#[tokio::test]
async fn creates_describes_alters_and_truncates_primary_key_tables() {
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let address = emulator.mysql_addr().unwrap().to_string();
    let ddl = StarRocksDdl::connect(&address, "root", "", "shop")
        .await
        .unwrap();
    assert!(!ddl.version().await.unwrap().is_empty());
    assert!(!ddl.database_exists().await.unwrap());
    ddl.create_database().await.unwrap();
    assert!(ddl.database_exists().await.unwrap());
    assert_eq!(ddl.describe("orders").await.unwrap(), None);

    ddl.create_table(
        "orders",
        &[column("id", "BIGINT", false)],
        &[column("status", "VARCHAR(40)", true)],
        &[("replication_num".into(), "1".into())],
    )
    .await
    .unwrap();
    let described = ddl.describe("orders").await.unwrap().unwrap();
    assert_eq!(described.len(), 2);
    assert_eq!(described[0].name, "id");
    assert!(described[0].is_key && !described[0].nullable);
    assert_eq!(described[1].sql_type.to_ascii_lowercase(), "varchar(40)");
    assert!(described[1].nullable);

    ddl.alter_and_wait(
        "orders",
        "ADD COLUMN note VARCHAR(100) NULL",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let described = ddl.describe("orders").await.unwrap().unwrap();
    assert_eq!(described.len(), 3);
    // Several ALTERs within one second (CreateTime ties): each wait sees its own job.
    for clause in [
        "ADD COLUMN a INT NULL",
        "DROP COLUMN a",
        "MODIFY COLUMN status VARCHAR(80) NULL",
    ] {
        ddl.alter_and_wait("orders", clause, Duration::from_secs(5))
            .await
            .unwrap_or_else(|error| panic!("{clause}: {error}"));
    }
    let described = ddl.describe("orders").await.unwrap().unwrap();
    assert_eq!(described.len(), 3);
    assert_eq!(described[1].sql_type.to_ascii_lowercase(), "varchar(80)");

    emulator
        .execute_sql(Some("shop"), "INSERT INTO orders VALUES (1, 'new', NULL)")
        .await
        .unwrap();
    ddl.truncate("orders").await.unwrap();
    assert!(emulator.table_rows("shop", "orders").unwrap().is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unreachable_fe_are_clear_errors() {
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let address = emulator.mysql_addr().unwrap().to_string();
    let error = StarRocksDdl::connect(&address, "root", "wrong", "shop")
        .await
        .unwrap_err();
    assert!(
        matches!(error, DdlError::Auth { .. }),
        "wrong password: {error}"
    );
    assert!(error.to_string().contains("sink.starrocks"), "{error}");
    emulator.shutdown().await;
    let error = StarRocksDdl::connect("127.0.0.1:1", "root", "", "shop")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("cannot reach StarRocks"),
        "{error}"
    );
}
