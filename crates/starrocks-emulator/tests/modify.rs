//! ALTER TABLE ... MODIFY COLUMN: only the changes `Column.checkSchemaChangeAllowed` allows
//! (spec §6.3); narrowing or incompatible changes are refused at once, values are kept.

use crate::spec7::wait_alter_finished;
use crate::support::Fixture;

async fn table_with_values() -> Fixture {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE t (id INT NOT NULL, b BIGINT NULL, f DOUBLE NULL, dt DATE NULL, \
         i INT NULL DEFAULT \"7\", s VARCHAR(10) NULL, m DECIMAL(10, 2) NULL) \
         PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    fx.sql("INSERT INTO t VALUES (1, 5000000000, 1.5, '2024-02-03', 42, 'abc', 12.34)")
        .await;
    fx
}

#[tokio::test]
async fn narrowing_and_incompatible_changes_are_refused() {
    let fx = table_with_values().await;
    for (sql, message) in [
        (
            "ALTER TABLE t MODIFY COLUMN b INT NULL",
            "Can not change BIGINT to INT",
        ),
        (
            "ALTER TABLE t MODIFY COLUMN f INT NULL",
            "Can not change DOUBLE to INT",
        ),
        (
            "ALTER TABLE t MODIFY COLUMN dt INT NULL",
            "Can not change DATE to INT",
        ),
        (
            "ALTER TABLE t MODIFY COLUMN m DECIMAL(10, 3) NULL",
            "Can not change DECIMAL64(10,2) to DECIMAL64(10,3)",
        ),
        (
            "ALTER TABLE t MODIFY COLUMN i INT NULL",
            "Can not change default value",
        ),
        (
            "ALTER TABLE t MODIFY COLUMN i BIGINT NULL DEFAULT \"8\"",
            "Can not change default value",
        ),
        (
            "ALTER TABLE t MODIFY COLUMN s VARCHAR(10) NOT NULL",
            "Can not change from nullable to non-nullable",
        ),
    ] {
        let err = fx.emu.execute_sql(Some("d"), sql).await.unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (1064, message), "{sql}");
    }
    // Nothing was started and nothing changed.
    let jobs = fx
        .emu
        .execute_sql(Some("d"), "SHOW ALTER TABLE COLUMN")
        .await
        .unwrap();
    assert!(jobs.rows().is_empty());
    assert_eq!(
        fx.text_rows("t"),
        vec![vec![
            "1",
            "5000000000",
            "1.5",
            "2024-02-03",
            "42",
            "abc",
            "12.34"
        ]]
    );
}

#[tokio::test]
async fn widening_keeps_the_values() {
    let fx = table_with_values().await;
    for sql in [
        "ALTER TABLE t MODIFY COLUMN b LARGEINT NULL",
        "ALTER TABLE t MODIFY COLUMN i BIGINT NULL DEFAULT \"7\"",
        "ALTER TABLE t MODIFY COLUMN s VARCHAR(20) NULL",
        "ALTER TABLE t MODIFY COLUMN m DECIMAL(12, 3) NULL",
        "ALTER TABLE t MODIFY COLUMN dt DATETIME NULL",
    ] {
        fx.sql(sql).await;
        wait_alter_finished(&fx, "t").await;
    }
    assert_eq!(
        fx.text_rows("t"),
        vec![vec![
            "1",
            "5000000000",
            "1.5",
            "2024-02-03 00:00:00",
            "42",
            "abc",
            "12.340"
        ]]
    );
}

/// A value the BE cannot convert fails the job (CANCELLED) and leaves the table as it was.
#[tokio::test]
async fn an_unconvertible_value_cancels_the_job() {
    let fx = table_with_values().await;
    fx.sql("ALTER TABLE t MODIFY COLUMN s INT NULL").await;
    wait_alter_finished(&fx, "t").await;
    let jobs = fx
        .emu
        .execute_sql(Some("d"), "SHOW ALTER TABLE COLUMN")
        .await
        .unwrap();
    assert_eq!(jobs.rows()[0][9].to_text().unwrap(), "CANCELLED");
    assert_eq!(fx.text_rows("t")[0][5], "abc");
}
