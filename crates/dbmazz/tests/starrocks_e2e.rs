//! PostgreSQL → dbmazz → StarRocks (the emulator), compared row by row.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::{LocalPg, LocalPgOptions};
use dbmazz::replicator;
use dbmazz::sink::starrocks::DeleteMode;
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use tokio::sync::watch;

use crate::support::starrocks::{self as sr, replicate_in_process, sink_options};
use crate::support::{start_pg, stream_config, wait_for_streaming, TempDir, PG_VERSIONS};

pub(crate) async fn wait_identical(
    pg: &LocalPg,
    emulator: &EmulatorHandle,
    pg_sql: &str,
    sr_sql: &str,
) {
    sr::wait_identical_in(
        pg,
        emulator,
        "shop",
        pg_sql,
        sr_sql,
        Duration::from_secs(60),
    )
    .await;
}

const SCHEMA: &str = "
CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, amount numeric(12,2), note text);
ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL;
-- `key` is a reserved word in StarRocks (not in PostgreSQL): the loads must backquote it.
CREATE TABLE items (order_id bigint, line int, key int, PRIMARY KEY (order_id, line));
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_updates_deletes_key_changes_toast_and_truncate_stay_identical() {
    for major in PG_VERSIONS {
        let pg = start_pg(major, LocalPgOptions::default());
        pg.create_database("shop").unwrap();
        pg.psql("shop", SCHEMA).unwrap();
        let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
        let replication = replicate_in_process(
            &pg,
            &emulator,
            "shop",
            &["public.orders", "public.items"],
            sink_options(DeleteMode::Hard),
            |_| {},
        )
        .await;
        // The replicator creates the slot; write only once it streams.
        wait_for_streaming(&pg).await;
        pg.psql(
            "shop",
            "INSERT INTO orders SELECT g, 'new', g * 1.5, repeat(md5(g::text), 200) FROM generate_series(1, 300) g;
             INSERT INTO items SELECT g, l, l FROM generate_series(1, 300) g, generate_series(1, 3) l;
             UPDATE orders SET status = 'paid' WHERE id % 3 = 0;
             UPDATE orders SET id = id + 1000 WHERE id % 10 = 0;
             DELETE FROM orders WHERE id % 7 = 0;
             BEGIN; UPDATE orders SET amount = NULL WHERE id < 20; ROLLBACK;
             DELETE FROM items WHERE line = 2;
             UPDATE items SET key = key * 10 WHERE order_id < 50;",
        )
        .unwrap();
        // Later batch: updates that leave the TOASTed note unchanged, in their own loads.
        tokio::time::sleep(Duration::from_millis(400)).await;
        pg.psql(
            "shop",
            "UPDATE orders SET status = 'shipped' WHERE id % 5 = 1;
             TRUNCATE items;
             INSERT INTO items VALUES (1, 1, 1), (2, 1, 2);",
        )
        .unwrap();
        wait_identical(
            &pg,
            &emulator,
            "SELECT id, status, amount, note FROM orders ORDER BY id",
            "SELECT id, status, amount, note FROM orders ORDER BY id",
        )
        .await;
        wait_identical(
            &pg,
            &emulator,
            "SELECT order_id, line, key FROM items ORDER BY order_id, line",
            "SELECT order_id, line, `key` FROM items ORDER BY order_id, line",
        )
        .await;
        replication.stop().await;
    }
}

/// The whole product path: `connect_sink` from the config, Stream Load over HTTP (FE → 307 →
/// BE), with load faults injected on the way; the tables still end identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_with_faults_the_tables_converge() {
    use starrocks_emulator::{FaultKind, FaultRule};
    let pg = start_pg(18, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql("shop", SCHEMA).unwrap();
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let state = TempDir::new("dbmazz-e2e-test");
    let mut config = stream_config(&pg, "shop", &["public.orders", "public.items"], &state);
    let toml = format!(
        "[source]\nurl = \"{}\"\n[sink.starrocks]\nfe_http = \"http://{}\"\nmysql = \"{}\"\n\
         user = \"root\"\npassword = \"\"\ndatabase = \"shop\"\n\
         table_properties = {{ replication_num = \"1\" }}\n",
        pg.url("shop"),
        emulator.fe_http_addr(),
        emulator.mysql_addr().unwrap()
    );
    let sink_config = dbmazz::config::Config::from_toml(&toml).unwrap();
    config.sink = sink_config.sink;
    let sink = dbmazz::sink::starrocks::connect_sink(&config)
        .await
        .unwrap();
    for kind in [
        FaultKind::Http5xx,
        FaultKind::CloseMidBody,
        FaultKind::DropResponse,
        FaultKind::PublishTimeout,
        FaultKind::TooManyVersions,
    ] {
        emulator.inject(FaultRule::new(kind).table("orders"));
    }
    let (shutdown, receiver) = watch::channel(false);
    let task = tokio::spawn(async move {
        replicator::run(
            &config,
            Arc::new(sink),
            replicator::RunContext::new(receiver),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    });
    // The replicator creates the slot; write only once it streams.
    wait_for_streaming(&pg).await;
    for round in 0..6 {
        pg.psql(
            "shop",
            &format!(
                "INSERT INTO orders SELECT g, 'r{round}', g, 'note' FROM generate_series({0}, {0} + 49) g;
                 UPDATE orders SET status = 'paid' WHERE id % 4 = {1};
                 DELETE FROM orders WHERE id % 9 = {1};
                 INSERT INTO items SELECT g, 1, {round} FROM generate_series({0}, {0} + 9) g;",
                round * 50 + 1,
                round % 4
            ),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    wait_identical(
        &pg,
        &emulator,
        "SELECT id, status, amount, note FROM orders ORDER BY id",
        "SELECT id, status, amount, note FROM orders ORDER BY id",
    )
    .await;
    wait_identical(
        &pg,
        &emulator,
        "SELECT order_id, line, key FROM items ORDER BY order_id, line",
        "SELECT order_id, line, `key` FROM items ORDER BY order_id, line",
    )
    .await;
    shutdown.send_replace(true);
    task.await.unwrap();
    let stats = emulator.table_stats("shop", "orders").unwrap();
    assert!(stats.failed_loads >= 1, "faults were hit: {stats:?}");
}
