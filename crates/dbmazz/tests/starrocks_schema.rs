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

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::sink::starrocks::DeleteMode;
use starrocks_emulator::{Emulator, EmulatorConfig};

use crate::support::starrocks::{replicate_in_process, sink_options, sr_rows, wait_identical_in};
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
