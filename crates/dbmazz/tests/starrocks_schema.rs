//! Schema changes while a writer keeps inserting and updating: ADD COLUMN (with a default),
//! DROP COLUMN, varchar(n) → varchar(m) and int → bigint; StarRocks converges row by row.
//!
//! `ADD COLUMN … DEFAULT 7` gives every existing row 7 in PostgreSQL without writing WAL for
//! them, and pgoutput's Relation message carries no defaults: dbmazz reads the column's
//! missing value from the catalog and adds the StarRocks column with that DEFAULT, which
//! existing rows read. Defaults StarRocks cannot take (JSON, arrays) and values no catalog
//! holds (volatile defaults: PostgreSQL rewrote the table) are warned about and counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbmazz::decode::ReplicaIdentity;
use dbmazz::local_pg::LocalPgOptions;
use dbmazz::schema::{ColumnSchema, ExistingRows, TableName, TableSchema};
use dbmazz::sink::starrocks::DeleteMode;
use dbmazz::sink::Sink;
use starrocks_emulator::{Emulator, EmulatorConfig};

use crate::support::starrocks::{
    emulator_sink, pg_rows, replicate_in_process, sink_options, sr_rows, wait_identical_in,
};
use crate::support::{eventually, start_pg, wait_for_streaming, PG_VERSIONS};

/// Inserts and updates through only the columns every shape has (id, name, n).
async fn writer(url: String, stop: Arc<AtomicBool>) -> u64 {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut id = 1000;
    let mut transactions = 0;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        client
            .batch_execute(&format!(
                "BEGIN; INSERT INTO s (id, name, n) VALUES ({id}, 'w{id}', {id});
                 UPDATE s SET n = n + 1, name = name || '+' WHERE id = {} ; COMMIT;",
                id - 7
            ))
            .await
            .unwrap();
        transactions += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    transactions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_under_writes_converge() {
    schema_changes_under_writes(&PG_VERSIONS, "ALTER TABLE s ADD COLUMN extra int").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_with_a_default_fills_existing_rows() {
    schema_changes_under_writes(&PG_VERSIONS, "ALTER TABLE s ADD COLUMN extra int DEFAULT 7").await;
}

async fn schema_changes_under_writes(majors: &[u32], add_column: &str) {
    for &major in majors {
        let started = Instant::now();
        let pg = start_pg(major, LocalPgOptions::default());
        pg.create_database("shop").unwrap();
        pg.psql(
            "shop",
            "CREATE TABLE s (id bigint PRIMARY KEY, name varchar(8), n int, gone text);
             INSERT INTO s SELECT g, 'i' || g, g, 'gone' FROM generate_series(1, 100) g;",
        )
        .unwrap();
        let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
        let replication = replicate_in_process(
            &pg,
            &emulator,
            "shop",
            &["public.s"],
            sink_options(DeleteMode::Hard),
            |_| {},
        )
        .await;
        wait_for_streaming(&pg).await;
        // Rows that exist before the table's first change reach StarRocks only through the
        // stream: touch them all so StarRocks starts with the same 100 rows.
        pg.psql("shop", "UPDATE s SET n = n WHERE id <= 100;")
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer_task = tokio::spawn(writer(pg.url("shop"), Arc::clone(&stop)));
        let alters = [
            add_column,
            "UPDATE s SET extra = id WHERE id % 3 = 0",
            "ALTER TABLE s DROP COLUMN gone",
            "ALTER TABLE s ALTER COLUMN name TYPE varchar(64)",
            "UPDATE s SET name = repeat('long', 10) WHERE id % 5 = 0",
            "ALTER TABLE s ALTER COLUMN n TYPE bigint",
            "UPDATE s SET n = n + 5000000000 WHERE id % 2 = 0",
            // Widening a column StarRocks holds with a DEFAULT: the MODIFY repeats it.
            "ALTER TABLE s ALTER COLUMN extra TYPE bigint",
            "UPDATE s SET extra = 6000000000 WHERE id % 7 = 0",
        ];
        for alter in alters {
            tokio::time::sleep(Duration::from_millis(300)).await;
            pg.psql("shop", alter)
                .unwrap_or_else(|error| panic!("PG{major}: {alter}: {error}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        let transactions = writer_task.await.unwrap();
        let sql = "SELECT id, name, n, extra FROM s ORDER BY id";
        wait_identical_in(&pg, &emulator, "shop", sql, sql, Duration::from_secs(60)).await;
        // The dropped column is gone from StarRocks too.
        let columns = eventually(Duration::from_secs(10), "DESC s", || async {
            let rows = sr_rows(&emulator, "shop", "DESC s").await;
            (!rows.is_empty()).then_some(rows)
        })
        .await;
        assert!(
            !columns.iter().any(|row| row.starts_with("gone|")),
            "PG{major}: column gone still in StarRocks: {columns:?}"
        );
        replication.stop().await;
        println!(
            "PG{major}: {transactions} writer transactions during the changes; {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// `2024-03-01 08:00:00.5+00` and `2024-03-01 08:00:00.500000` → the same text (PostgreSQL
/// trims trailing zeros of the microseconds; the offset is UTC in our session).
fn normalized_timestamp(text: &str) -> String {
    let text = text.trim_end_matches("+00");
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    format!("{seconds}.{fraction:0<6}")
}

/// Columns added with defaults of every kind: the exact missing value (text with quotes and
/// braces, `now()` evaluated once at ADD COLUMN time, a box) reaches existing rows in StarRocks; a
/// jsonb default (StarRocks takes no DEFAULT for JSON), a volatile default and an identity
/// column (PostgreSQL rewrote the table) leave them NULL, each counted in
/// `dbmazz_added_columns_unfilled_total`.
/// PG18 only (the catalog query is the same on PG15, covered above); about 6 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_column_defaults_reach_existing_rows_or_are_reported() {
    let started = Instant::now();
    let pg = start_pg(18, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE grown (id int PRIMARY KEY, v text);
         INSERT INTO grown SELECT g, 'v' || g FROM generate_series(1, 20) g;",
    )
    .unwrap();
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let replication = replicate_in_process(
        &pg,
        &emulator,
        "shop",
        &["public.grown"],
        sink_options(DeleteMode::Hard),
        |_| {},
    )
    .await;
    wait_for_streaming(&pg).await;
    pg.psql("shop", "UPDATE grown SET v = v WHERE id <= 20;")
        .unwrap();
    // The initial snapshot reads the table's shape from the catalog: let it finish first, so
    // that the ALTERs below reach StarRocks as schema changes of the stream.
    eventually(
        Duration::from_secs(20),
        "the 20 rows in StarRocks",
        || async {
            let rows = sr_rows(&emulator, "shop", "SELECT count(*) FROM grown").await;
            (rows == ["20"]).then_some(())
        },
    )
    .await;
    // The first ALTER's shape must reach StarRocks before the volatile default rewrites the
    // table (a rewrite clears PostgreSQL's missing values).
    pg.psql(
        "shop",
        "ALTER TABLE grown ADD COLUMN t text DEFAULT 'it''s {x}, \"y\"',
                           ADD COLUMN ts timestamptz DEFAULT now(),
                           ADD COLUMN j jsonb DEFAULT '{\"a\": 1}',
                           ADD COLUMN b box DEFAULT '((1,1),(0,0))';
         INSERT INTO grown (id, v) VALUES (21, 'after first');",
    )
    .unwrap();
    eventually(Duration::from_secs(20), "row 21 in StarRocks", || async {
        let rows = sr_rows(&emulator, "shop", "SELECT id FROM grown WHERE id = 21").await;
        (!rows.is_empty()).then_some(())
    })
    .await;
    pg.psql(
        "shop",
        "ALTER TABLE grown ADD COLUMN r float8 DEFAULT random(),
                           ADD COLUMN seq int GENERATED BY DEFAULT AS IDENTITY;
         INSERT INTO grown (id, v) VALUES (22, 'after second');",
    )
    .unwrap();
    eventually(Duration::from_secs(20), "row 22 in StarRocks", || async {
        let rows = sr_rows(&emulator, "shop", "SELECT id FROM grown WHERE id = 22").await;
        (!rows.is_empty()).then_some(())
    })
    .await;

    let pg_old = pg_rows(
        &pg,
        "shop",
        "SELECT id, t, ts, b FROM grown WHERE id <= 20 ORDER BY id",
    );
    let sr_old = sr_rows(
        &emulator,
        "shop",
        "SELECT id, t, ts, b, j, r, seq FROM grown WHERE id <= 20 ORDER BY id",
    )
    .await;
    assert_eq!(sr_old.len(), 20, "{sr_old:?}");
    for (pg_row, sr_row) in pg_old.iter().zip(&sr_old) {
        let pg_fields: Vec<&str> = pg_row.split('|').collect();
        let sr_fields: Vec<&str> = sr_row.split('|').collect();
        assert_eq!(
            pg_fields[..2],
            sr_fields[..2],
            "text default: {pg_row} vs {sr_row}"
        );
        assert_eq!(pg_fields[1], "it's {x}, \"y\"");
        assert_eq!(
            normalized_timestamp(pg_fields[2]),
            normalized_timestamp(sr_fields[2]),
            "now() default, evaluated once: {pg_row} vs {sr_row}"
        );
        // box: the one built-in type whose array delimiter is `;`, read another way.
        assert_eq!(pg_fields[3], "(1,1),(0,0)");
        assert_eq!(
            pg_fields[3], sr_fields[3],
            "box default: {pg_row} vs {sr_row}"
        );
        // NULL in StarRocks (known gaps, reported below).
        assert_eq!(sr_fields[4..], ["", "", ""], "{sr_row}");
    }
    // A rename looks like a drop and an add in the stream, but the rows keep their values:
    // the column's attribute number says it is the same column, renamed in StarRocks too.
    pg.psql(
        "shop",
        "ALTER TABLE grown RENAME COLUMN v TO v_renamed;
         INSERT INTO grown (id, v_renamed) VALUES (23, 'after rename');",
    )
    .unwrap();
    eventually(Duration::from_secs(20), "row 23 in StarRocks", || async {
        let rows = sr_rows(&emulator, "shop", "SELECT id FROM grown WHERE id = 23").await;
        (!rows.is_empty()).then_some(())
    })
    .await;

    let metrics = dbmazz::ops::metrics().render();
    for (column, reason) in [
        ("j", "default_not_supported"),
        ("r", "unknown_value"),
        ("seq", "unknown_value"),
    ] {
        let series = format!(
            "dbmazz_added_columns_unfilled_total{{table=\"public.grown\",column=\"{column}\",reason=\"{reason}\"}} 1"
        );
        assert!(
            metrics.contains(&series),
            "{series} missing from:\n{metrics}"
        );
    }
    assert_eq!(
        sr_rows(
            &emulator,
            "shop",
            "SELECT v_renamed FROM grown WHERE id = 3"
        )
        .await,
        ["v3"],
        "renamed with its values"
    );
    for column in ["t", "ts", "b", "v_renamed"] {
        assert!(
            !metrics.contains(&format!("table=\"public.grown\",column=\"{column}\"")),
            "{column} was filled, not a gap"
        );
    }
    replication.stop().await;
    println!(
        "added column defaults: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn shape(columns: &[(&str, u32, bool, Option<ExistingRows>)], version: u64) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        relation_oid: 16_384,
        name: TableName::new("public", "t"),
        replica_identity: ReplicaIdentity::Default,
        columns: columns
            .iter()
            .map(|(name, type_oid, is_key, existing_rows)| ColumnSchema {
                name: (*name).into(),
                type_oid: *type_oid,
                type_modifier: -1,
                is_key: *is_key,
                existing_rows: existing_rows.clone(),
                origin: None,
            })
            .collect(),
        version,
    })
}

/// A schema change StarRocks already has (a run stopped before the slot moved past it, or a
/// table the snapshot created from a newer shape) is not applied twice: ADD of a present
/// column, DROP of an absent one and MODIFY to the current type are skipped. The added
/// column's DEFAULT reaches the row that was there before it. No PostgreSQL; under 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_already_in_starrocks_is_not_applied_twice() {
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let sink = emulator_sink(&emulator, true).await;
    // int4 key, int4 n, text gone → int4 key, int8 n, int4 added DEFAULT 7.
    let old = shape(
        &[
            ("id", 23, true, None),
            ("n", 23, false, None),
            ("gone", 25, false, None),
        ],
        1,
    );
    let new = shape(
        &[
            ("id", 23, true, None),
            ("n", 20, false, None),
            ("added", 23, false, Some(ExistingRows::Value("7".into()))),
        ],
        2,
    );
    sink.apply_schema_change(None, &old).await.unwrap();
    emulator
        .execute_sql(
            Some("shop"),
            "INSERT INTO t (id, n, gone) VALUES (1, 1, 'x')",
        )
        .await
        .unwrap();
    sink.apply_schema_change(Some(&old), &new).await.unwrap();
    sink.apply_schema_change(Some(&old), &new).await.unwrap();
    let described = sr_rows(&emulator, "shop", "DESC t").await;
    let names: Vec<&str> = described
        .iter()
        .map(|row| row.split('|').next().unwrap())
        .collect();
    assert_eq!(names, ["id", "n", "added"], "{described:?}");
    assert!(described[1].starts_with("n|bigint|"), "{described:?}");
    assert_eq!(
        sr_rows(&emulator, "shop", "SELECT id, n, added FROM t").await,
        ["1|1|7"]
    );
}

/// A table first seen (after a restart) with a column StarRocks lacks — dbmazz stopped between
/// `ADD COLUMN` in PostgreSQL and in StarRocks, and the slot resumes after the last row of the
/// old shape — gets the column at start (create_tables = true), with the DEFAULT of the
/// catalog for the rows already there. No PostgreSQL; under 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_while_stopped_is_added_when_the_table_is_prepared() {
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let before = shape(&[("id", 23, true, None), ("n", 23, false, None)], 1);
    let after = shape(
        &[
            ("id", 23, true, None),
            ("n", 23, false, None),
            ("added", 23, false, Some(ExistingRows::Value("7".into()))),
        ],
        1,
    );
    let first_run = emulator_sink(&emulator, true).await;
    first_run.apply_schema_change(None, &before).await.unwrap();
    emulator
        .execute_sql(Some("shop"), "INSERT INTO t (id, n) VALUES (1, 1)")
        .await
        .unwrap();
    let second_run = emulator_sink(&emulator, true).await;
    second_run.apply_schema_change(None, &after).await.unwrap();
    assert_eq!(
        sr_rows(&emulator, "shop", "SELECT id, n, added FROM t").await,
        ["1|1|7"]
    );
    // Without create_tables the gap is an error naming the ALTER to run.
    let strict = emulator_sink(&emulator, false).await;
    let wider = shape(
        &[
            ("id", 23, true, None),
            ("n", 23, false, None),
            ("added", 23, false, None),
            ("more", 23, false, None),
        ],
        1,
    );
    let error = strict.apply_schema_change(None, &wider).await.unwrap_err();
    assert!(
        error.to_string().contains("lacks columns: more INT"),
        "{error}"
    );
}

/// A table first seen (after a restart) with columns PostgreSQL widened while dbmazz was
/// stopped — int4 → int8, varchar(10) → varchar(300) — gets them widened in StarRocks at
/// start (create_tables = true), so the first wider value loads; without create_tables the
/// start fails naming the ALTER to run. No PostgreSQL; under 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_widened_while_stopped_is_widened_when_the_table_is_prepared() {
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let sink = |create_tables: bool| emulator_sink(&emulator, create_tables);
    let with_varchar = |n_type: u32, varchar_length: i32| {
        let mut table = (*shape(
            &[
                ("id", 23, true, None),
                ("n", n_type, false, None),
                ("v", 1043, false, None),
            ],
            1,
        ))
        .clone();
        table.columns[2].type_modifier = varchar_length + 4;
        Arc::new(table)
    };
    let types = || async {
        sr_rows(&emulator, "shop", "DESC t")
            .await
            .iter()
            .map(|row| row.split('|').take(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let before = with_varchar(23, 10);
    let after = with_varchar(20, 300);
    sink(true)
        .await
        .apply_schema_change(None, &before)
        .await
        .unwrap();
    let narrow = types().await;
    assert_eq!(narrow[1], "n int", "{narrow:?}");

    let error = sink(false)
        .await
        .apply_schema_change(None, &after)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("narrower than PostgreSQL's")
            && message.contains("MODIFY COLUMN `n` BIGINT NULL"),
        "{message}"
    );
    assert_eq!(
        types().await,
        narrow,
        "nothing changed without create_tables"
    );

    sink(true)
        .await
        .apply_schema_change(None, &after)
        .await
        .unwrap();
    let wide = types().await;
    assert_eq!(wide[1], "n bigint", "{wide:?}");
    assert_ne!(wide[2], narrow[2], "v widened: {wide:?}");
    let long = "x".repeat(250);
    emulator
        .execute_sql(
            Some("shop"),
            &format!("INSERT INTO t (id, n, v) VALUES (1, 5000000000, '{long}')"),
        )
        .await
        .unwrap();
    assert_eq!(
        sr_rows(&emulator, "shop", "SELECT n, v FROM t").await,
        [format!("5000000000|{long}")]
    );
}

/// Type changes StarRocks cannot follow in place: a value column narrowed in PostgreSQL
/// (text → varchar(30)) keeps its wider StarRocks type and the stream goes on; a key column
/// widened (int → bigint) stops with what to do, since a Primary Key table's key columns
/// cannot change type. No PostgreSQL; under 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowed_values_are_kept_wide_and_key_type_changes_say_what_to_do() {
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let sink = emulator_sink(&emulator, true).await;
    let old = shape(&[("id", 23, true, None), ("v", 25, false, None)], 1);
    let mut narrowed = (*shape(&[("id", 23, true, None), ("v", 1043, false, None)], 2)).clone();
    narrowed.columns[1].type_modifier = 30 + 4;
    let narrowed = Arc::new(narrowed);
    sink.apply_schema_change(None, &old).await.unwrap();
    let before = sr_rows(&emulator, "shop", "DESC t").await;
    sink.apply_schema_change(Some(&old), &narrowed)
        .await
        .unwrap();
    assert_eq!(sr_rows(&emulator, "shop", "DESC t").await, before);

    let mut widened_key = (*narrowed).clone();
    widened_key.columns[0].type_oid = 20;
    let error = sink
        .apply_schema_change(Some(&narrowed), &Arc::new(widened_key))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("key column id changed from INT to BIGINT")
            && error.contains("dbmazz snapshot --table public.t"),
        "{error}"
    );
}
