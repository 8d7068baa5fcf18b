//! Columns renamed, dropped and added back: pgoutput names columns without numbering them, so
//! dbmazz follows PostgreSQL's attribute numbers (`pg_attribute.attnum`) to tell a rename
//! (same number) from a drop and an add (new number) — while streaming and across a stop.
//! StarRocks must end up row by row identical to PostgreSQL, with renamed columns keeping
//! their values.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::decode::ReplicaIdentity;
use dbmazz::local_pg::{LocalPg, LocalPgOptions};
use dbmazz::schema::{ColumnSchema, TableName, TableSchema};
use dbmazz::sink::starrocks::DeleteMode;
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

use crate::support::starrocks::{
    emulator_sink, replicate_in_process, resume_in_process, sink_options, sr_rows,
    wait_identical_in, Replication,
};
use crate::support::{new_database, start_pg, wait_for_streaming, TempDir, PG_VERSIONS};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `table` is row by row the same on both sides.
async fn identical(pg: &LocalPg, emulator: &EmulatorHandle, table: &str, columns: &str) {
    let sql = format!("SELECT {columns} FROM {table} ORDER BY id");
    wait_identical_in(pg, emulator, "shop", &sql, &sql, TIMEOUT).await;
}

async fn starrocks_columns(emulator: &EmulatorHandle, table: &str) -> Vec<String> {
    sr_rows(emulator, "shop", &format!("DESC {table}"))
        .await
        .iter()
        .map(|row| row.split('|').next().unwrap_or_default().to_string())
        .collect()
}

/// Streams `tables` of `shop` into the emulator (hard deletes), with a new state directory.
async fn start(pg: &LocalPg, emulator: &Arc<EmulatorHandle>, tables: &[&str]) -> Replication {
    replicate_in_process(
        pg,
        emulator,
        "shop",
        tables,
        sink_options(DeleteMode::Hard),
        |_| {},
    )
    .await
}

/// [`start`] again with the state directory of an earlier run.
async fn resume(
    pg: &LocalPg,
    emulator: &Arc<EmulatorHandle>,
    tables: &[&str],
    state: TempDir,
) -> Replication {
    resume_in_process(
        pg,
        emulator,
        "shop",
        tables,
        sink_options(DeleteMode::Hard),
        |_| {},
        state,
    )
    .await
}

/// A new emulator and a run streaming `tables` (one table) into it, once StarRocks holds the
/// table's `columns` as PostgreSQL does.
async fn streaming(
    pg: &LocalPg,
    tables: &[&str],
    columns: &str,
) -> (Arc<EmulatorHandle>, Replication) {
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let replication = start(pg, &emulator, tables).await;
    wait_for_streaming(pg).await;
    let table = tables[0].trim_start_matches("public.");
    identical(pg, &emulator, table, columns).await;
    (emulator, replication)
}

/// Waits until StarRocks's `table` has the columns `columns` says it should.
async fn wait_columns(
    emulator: &EmulatorHandle,
    table: &str,
    what: &str,
    mut columns: impl FnMut(&[String]) -> bool,
) {
    tokio::time::timeout(TIMEOUT, async {
        while !columns(&starrocks_columns(emulator, table).await) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{table}: {what}"));
}

/// The metric series of a column reported as unfillable (metrics are per process: each
/// test and PostgreSQL version uses its own table name).
fn unfilled_series(table: &str, column: &str) -> String {
    format!(
        "dbmazz_added_columns_unfilled_total{{table=\"public.{table}\",column=\"{column}\",reason=\"unknown_value\"}}"
    )
}

/// While streaming: the table's last column and a middle one renamed (values kept), a column
/// dropped and added back with a DEFAULT (older rows read the DEFAULT, as in PostgreSQL), and
/// two names swapped (not followable column by column: reported, like an unfillable column).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_and_recreated_columns_while_streaming() {
    for major in PG_VERSIONS {
        let pg = start_pg(major, LocalPgOptions::default());
        let r = format!("r{major}");
        pg.create_database("shop").unwrap();
        pg.psql(
            "shop",
            &format!(
                "CREATE TABLE {r} (id int PRIMARY KEY, a text, b int, d int);
             INSERT INTO {r} SELECT g, 'a' || g, g * 10, g * 100 FROM generate_series(1, 50) g;"
            ),
        )
        .unwrap();
        let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
        let replication = replicate_in_process(
            &pg,
            &emulator,
            "shop",
            &[&format!("public.{r}")],
            sink_options(DeleteMode::Hard),
            |_| {},
        )
        .await;
        wait_for_streaming(&pg).await;
        identical(&pg, &emulator, &r, "id, a, b, d").await;

        pg.psql(
            "shop",
            &format!(
                "ALTER TABLE {r} RENAME COLUMN d TO d2;
                 ALTER TABLE {r} RENAME COLUMN a TO a2;
                 INSERT INTO {r} VALUES (51, 'a51', 510, 5100);"
            ),
        )
        .unwrap();
        identical(&pg, &emulator, &r, "id, a2, b, d2").await;
        assert_eq!(
            starrocks_columns(&emulator, &r).await,
            ["id", "a2", "b", "d2"]
        );

        pg.psql(
            "shop",
            &format!(
                "ALTER TABLE {r} DROP COLUMN b;
                 ALTER TABLE {r} ADD COLUMN b int DEFAULT 5;
                 INSERT INTO {r} (id, a2, d2, b) VALUES (52, 'a52', 5200, 520);"
            ),
        )
        .unwrap();
        // Rows older than the new b read 5 on both sides, not their old b.
        identical(&pg, &emulator, &r, "id, a2, b, d2").await;
        let old = sr_rows(
            &emulator,
            "shop",
            &format!("SELECT b FROM {r} WHERE id = 7"),
        )
        .await;
        assert_eq!(old, ["5"], "major {major}");

        let metrics = dbmazz::ops::metrics().render();
        for column in ["a2", "d2", "b"] {
            assert!(
                !metrics.contains(&unfilled_series(&r, column)),
                "{column} was followed, not a gap (major {major})"
            );
        }

        pg.psql(
            "shop",
            &format!(
                "ALTER TABLE {r} RENAME COLUMN a2 TO t;
                 ALTER TABLE {r} RENAME COLUMN d2 TO a2;
                 ALTER TABLE {r} RENAME COLUMN t TO d2;
                 INSERT INTO {r} (id, a2, d2, b) VALUES (53, '5300', 'a53', 530);"
            ),
        )
        .unwrap();
        crate::support::eventually(TIMEOUT, "row 53 in StarRocks", || async {
            let rows = sr_rows(
                &emulator,
                "shop",
                &format!("SELECT id FROM {r} WHERE id = 53"),
            )
            .await;
            (!rows.is_empty()).then_some(())
        })
        .await;
        let metrics = dbmazz::ops::metrics().render();
        for column in ["a2", "d2"] {
            assert!(
                metrics.contains(&unfilled_series(&r, column)),
                "swapped column {column} not reported (major {major}):\n{metrics}"
            );
        }
        replication.stop().await;
    }
}

/// While dbmazz is stopped: the last column renamed, a column dropped, another dropped and
/// added back with a DEFAULT. At the next start the StarRocks table follows: renamed (values
/// kept), dropped, recreated (older rows read the DEFAULT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_renamed_and_dropped_while_stopped() {
    let pg = new_database(
        18,
        "CREATE TABLE r (id int PRIMARY KEY, a text, b int, c int, d int);
         INSERT INTO r SELECT g, 'a' || g, g, g * 10, g * 100 FROM generate_series(1, 30) g;",
    );
    let tables = ["public.r"];
    let (emulator, first) = streaming(&pg, &tables, "id, a, b, c, d").await;
    let state = first.stop_keeping_state().await;

    pg.psql(
        "shop",
        "ALTER TABLE r RENAME COLUMN d TO d2;
         ALTER TABLE r DROP COLUMN c;
         ALTER TABLE r DROP COLUMN b;
         ALTER TABLE r ADD COLUMN b int DEFAULT 9;
         UPDATE r SET a = a || '!' WHERE id <= 3;",
    )
    .unwrap();
    let second = resume(&pg, &emulator, &tables, state).await;
    identical(&pg, &emulator, "r", "id, a, b, d2").await;
    assert_eq!(
        starrocks_columns(&emulator, "r").await,
        ["id", "a", "d2", "b"]
    );
    let metrics = dbmazz::ops::metrics().render();
    assert!(
        !metrics.contains(&unfilled_series("r", "d2")),
        "d2 was followed, not a gap"
    );
    second.stop().await;
}

/// A column dropped while dbmazz is stopped, then the table changed again before its next
/// row: the first Relation of the run is not the catalog's current shape, and nothing in the
/// stream says the column went (StarRocks may also have applied it ahead of the slot's
/// confirmed position before a crash). It is dropped in StarRocks all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_dropped_before_later_changes_while_stopped_is_dropped() {
    let pg = new_database(
        15,
        "CREATE TABLE gone (id int PRIMARY KEY, a text, b int, c int);
         INSERT INTO gone SELECT g, 'a' || g, g, g * 10 FROM generate_series(1, 20) g;",
    );
    let tables = ["public.gone"];
    let (emulator, first) = streaming(&pg, &tables, "id, a, b, c").await;
    let state = first.stop_keeping_state().await;

    pg.psql(
        "shop",
        "ALTER TABLE gone DROP COLUMN c;
         UPDATE gone SET a = a || '!' WHERE id <= 3;
         ALTER TABLE gone ADD COLUMN e int DEFAULT 5;
         UPDATE gone SET e = 6 WHERE id = 1;",
    )
    .unwrap();
    let second = resume(&pg, &emulator, &tables, state).await;
    identical(&pg, &emulator, "gone", "id, a, b, e").await;
    assert_eq!(
        starrocks_columns(&emulator, "gone").await,
        ["id", "a", "b", "e"]
    );
    second.stop().await;
}

/// A column added and dropped again while dbmazz was stopped: the replay adds it to StarRocks
/// (its rows come first) but the catalog no longer numbers it. The next run must still know
/// StarRocks has it, or it stays for good — and a column added later under the same name
/// found it "already in StarRocks" with the dropped column's values (chaos walkthrough,
/// session 15: columns left in StarRocks after restarts while behind on schema changes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_and_dropped_while_stopped_leaves_starrocks_at_a_later_start() {
    let pg = new_database(
        15,
        "CREATE TABLE brief (id int PRIMARY KEY, a int); INSERT INTO brief VALUES (1, 1);",
    );
    let tables = ["public.brief"];
    let (emulator, first) = streaming(&pg, &tables, "id, a").await;
    let state = first.stop_keeping_state().await;

    pg.psql(
        "shop",
        "ALTER TABLE brief ADD COLUMN x int; INSERT INTO brief VALUES (2, 2, 2);
         ALTER TABLE brief DROP COLUMN x;",
    )
    .unwrap();
    let second = resume(&pg, &emulator, &tables, state).await;
    identical(&pg, &emulator, "brief", "id, a").await;
    let state = second.stop_keeping_state().await;

    pg.psql("shop", "INSERT INTO brief VALUES (3, 3);").unwrap();
    let third = resume(&pg, &emulator, &tables, state).await;
    identical(&pg, &emulator, "brief", "id, a").await;
    wait_columns(&emulator, "brief", "column x stayed", |columns| {
        columns == ["id", "a"]
    })
    .await;
    // The name used again: a new column, with PostgreSQL's values for the older rows.
    pg.psql(
        "shop",
        "ALTER TABLE brief ADD COLUMN x int DEFAULT 99; INSERT INTO brief VALUES (4, 4, 4);",
    )
    .unwrap();
    identical(&pg, &emulator, "brief", "id, a, x").await;
    third.stop().await;
}

/// A crash while StarRocks was still running an ADD COLUMN (the job finishes without dbmazz,
/// which never recorded the shape), and PostgreSQL drops the column meanwhile: the replay
/// meets the shape with the column again and then follows the DROP, so StarRocks ends
/// without it (chaos walkthrough: columns added and dropped around stops stayed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_during_a_stop_and_dropped_after_it_is_dropped() {
    use starrocks_emulator::{FaultKind, FaultRule};
    let pg = new_database(
        15,
        "CREATE TABLE halfway (id int PRIMARY KEY, a text);
         INSERT INTO halfway SELECT g, 'a' || g FROM generate_series(1, 5) g;",
    );
    let tables = ["public.halfway"];
    let (emulator, first) = streaming(&pg, &tables, "id, a").await;
    emulator.inject(FaultRule::new(FaultKind::AlterSlow).delay_ms(2_000));
    pg.psql(
        "shop",
        "ALTER TABLE halfway ADD COLUMN c int; UPDATE halfway SET c = 7 WHERE id = 1;",
    )
    .unwrap();
    // The ALTER job is running: the run stops before it has the answer.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let state = first.kill().await;
    wait_columns(
        &emulator,
        "halfway",
        "the ADD COLUMN job never finished",
        |columns| columns.iter().any(|column| column == "c"),
    )
    .await;

    pg.psql(
        "shop",
        "ALTER TABLE halfway DROP COLUMN c; UPDATE halfway SET a = 'b' WHERE id = 2;",
    )
    .unwrap();
    let second = resume(&pg, &emulator, &tables, state).await;
    identical(&pg, &emulator, "halfway", "id, a").await;
    wait_columns(&emulator, "halfway", "column c stayed", |columns| {
        columns == ["id", "a"]
    })
    .await;
    second.stop().await;
}

/// A widening replayed after StarRocks took a wider type already (a run that got ahead of
/// the slot before it stopped) keeps the wider StarRocks column: StarRocks refuses to shorten
/// it, and the start used to stop on that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_widening_keeps_a_wider_starrocks_column() {
    let pg = new_database(
        15,
        "CREATE TABLE wide (id int PRIMARY KEY, v varchar(10));
         INSERT INTO wide SELECT g, 'v' || g FROM generate_series(1, 5) g;",
    );
    let tables = ["public.wide"];
    let (emulator, first) = streaming(&pg, &tables, "id, v").await;
    let state = first.stop_keeping_state().await;
    // StarRocks ahead of PostgreSQL's next shape.
    emulator
        .execute_sql(
            Some("shop"),
            "ALTER TABLE wide MODIFY COLUMN v VARCHAR(100) NULL",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.psql(
        "shop",
        "ALTER TABLE wide ALTER COLUMN v TYPE varchar(20);
         INSERT INTO wide VALUES (6, 'six-is-longer');",
    )
    .unwrap();
    let second = resume(&pg, &emulator, &tables, state).await;
    identical(&pg, &emulator, "wide", "id, v").await;
    let described = sr_rows(&emulator, "shop", "DESC wide").await;
    assert!(
        described
            .iter()
            .any(|row| row.to_ascii_lowercase().contains("varchar(100)")),
        "{described:?}"
    );
    second.stop().await;
}

/// Renames dbmazz reaches only after the table changed again: in one transaction with other
/// ALTERs (each Relation arrives after the catalog has moved on), and while stopped, a rename
/// followed by a DROP COLUMN. The renamed columns keep their values, rows streamed between
/// the changes keep theirs, and no stale column is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_seen_after_later_changes_keep_their_values() {
    let pg = new_database(
        18,
        "CREATE TABLE late (id int PRIMARY KEY, a text, b int, c int);
         INSERT INTO late SELECT g, 'a' || g, g, g * 10 FROM generate_series(1, 5) g;",
    );
    let tables = ["public.late"];
    let (emulator, first) = streaming(&pg, &tables, "id, a, b, c").await;
    pg.psql(
        "shop",
        "BEGIN;
         INSERT INTO late VALUES (6, 'six', 6, 60);
         ALTER TABLE late RENAME COLUMN a TO a2;
         INSERT INTO late VALUES (7, 'seven', 7, 70);
         ALTER TABLE late ADD COLUMN flag int DEFAULT 1;
         UPDATE late SET a2 = 'changed' WHERE id = 2;
         ALTER TABLE late RENAME COLUMN b TO b2;
         INSERT INTO late VALUES (8, 'eight', 8, 80, 0);
         COMMIT;",
    )
    .unwrap();
    identical(&pg, &emulator, "late", "id, a2, b2, c, flag").await;
    assert_eq!(
        starrocks_columns(&emulator, "late").await,
        ["id", "a2", "b2", "c", "flag"]
    );
    let state = first.stop_keeping_state().await;

    pg.psql(
        "shop",
        "ALTER TABLE late RENAME COLUMN a2 TO a3;
         INSERT INTO late VALUES (9, 'nine', 9, 90, 1);
         ALTER TABLE late DROP COLUMN c;
         INSERT INTO late VALUES (10, 'ten', 10, 1);",
    )
    .unwrap();
    let second = resume(&pg, &emulator, &tables, state).await;
    identical(&pg, &emulator, "late", "id, a3, b2, flag").await;
    assert_eq!(
        starrocks_columns(&emulator, "late").await,
        ["id", "a3", "b2", "flag"]
    );
    let metrics = dbmazz::ops::metrics().render();
    for column in ["a2", "a3", "b2"] {
        assert!(
            !metrics.contains(&unfilled_series("late", column)),
            "{column} was followed, not a gap"
        );
    }
    second.stop().await;
}

/// The sink alone, given origins: a key column and a value column renamed (values kept), a
/// column recreated (older rows take its DEFAULT); at a start with create_tables off the
/// same change is an error naming the ALTERs, and StarRocks is left alone. No PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_renames_and_recreates_columns_it_is_told_about() {
    use dbmazz::schema::{ColumnOrigin, ExistingRows};
    use dbmazz::sink::Sink;

    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let column = |name: &str, is_key: bool, origin: Option<ColumnOrigin>| ColumnSchema {
        name: name.into(),
        type_oid: 23,
        type_modifier: -1,
        is_key,
        existing_rows: (origin == Some(ColumnOrigin::Recreated))
            .then(|| ExistingRows::Value("7".into())),
        origin,
    };
    let shape = |columns: Vec<ColumnSchema>| {
        Arc::new(TableSchema {
            relation_oid: 16_384,
            name: TableName::new("public", "t"),
            replica_identity: ReplicaIdentity::Default,
            columns,
            version: 1,
        })
    };
    let old = shape(vec![
        column("id", true, None),
        column("a", false, None),
        column("b", false, None),
    ]);
    let renamed = |from: &str| Some(ColumnOrigin::RenamedFrom(from.into()));
    let new = shape(vec![
        column("key", true, renamed("id")),
        column("a2", false, renamed("a")),
        column("b", false, Some(ColumnOrigin::Recreated)),
    ]);
    let sink = emulator_sink(&emulator, true).await;
    sink.apply_schema_change(None, &old).await.unwrap();
    emulator
        .execute_sql(Some("shop"), "INSERT INTO t VALUES (1, 2, 3)")
        .await
        .unwrap();
    sink.apply_schema_change(Some(&old), &new).await.unwrap();
    assert_eq!(
        sr_rows(&emulator, "shop", "SELECT key, a2, b FROM t").await,
        ["1|2|7"]
    );

    let newer = shape(vec![
        column("key", true, None),
        column("a3", false, renamed("a2")),
        column("b", false, None),
    ]);
    let strict = emulator_sink(&emulator, false).await;
    let error = strict
        .apply_schema_change(Some(&new), &newer)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ALTER TABLE `t` RENAME COLUMN `a2` TO `a3`;"),
        "{error}"
    );
    assert_eq!(starrocks_columns(&emulator, "t").await, ["key", "a2", "b"]);

    // StarRocks keeps a renamed column's first name as its id: a new column of that name is
    // refused, and the error says what to do.
    let mut with_a = (*newer).clone();
    with_a.columns[1] = column("a2", false, None);
    with_a.columns.push(column("a", false, None));
    let error = sink
        .apply_schema_change(Some(&new), &Arc::new(with_a))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("already exists in column id") && error.contains("drop the StarRocks table"),
        "{error}"
    );
}
