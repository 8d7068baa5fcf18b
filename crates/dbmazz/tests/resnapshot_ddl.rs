//! Tables changed while they are being copied (docs/snapshot.md, "Schema changes and rewrites
//! during a snapshot"): columns dropped and added, rewrites and a DROP TABLE during a snapshot
//! of one table (held, DESIGN §5), and a rewrite during the initial snapshot. The copies must
//! end identical to PostgreSQL's tables, and the other tables keep streaming.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dbmazz::checkpoint::{SnapshotState, StateFile};
use dbmazz::config::{Config, SnapshotMode};
use dbmazz::local_pg::LocalPg;
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

use crate::resnapshot::{
    first_table_snapshot, orders_and_items, request_accepted, start, wait_same, wait_table_chunks,
    Running, Setup,
};
use crate::support::{eventually, new_database, wait_for_streaming, TempDir, PG_VERSIONS};

/// A column dropped and another added (with a default, then updated) after some chunks of the
/// table are loaded: the remaining chunks are read in the table's new shape, the held
/// `ALTER`s and updates are applied after the copy, and the StarRocks table has PostgreSQL's
/// columns and rows. Then the same with a rewrite (under `--replace`), and with a type widened
/// without a rewrite: each time the table is planned again. About 7 s per PostgreSQL version
/// in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_dropped_and_added_during_a_table_snapshot_converge() {
    for major in PG_VERSIONS {
        ddl_during_table_snapshot(major).await;
    }
}

async fn ddl_during_table_snapshot(major: u32) {
    let pg = new_database(
        major,
        "CREATE TABLE orders (id int PRIMARY KEY, v int, note text, code varchar(8));
         INSERT INTO orders SELECT g, g, md5(g::text), left(md5(g::text), 8)
           FROM generate_series(1, 20000) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-resnapshot-ddl");
    let tweak = |config: &mut Config| {
        config.snapshot.mode = SnapshotMode::Never;
        config.snapshot.chunk_pages = 8;
        config.snapshot.parallelism = 1;
    };
    let mut running = start(
        &pg,
        &emulator,
        &["public.orders"],
        &state,
        Duration::from_millis(150),
        tweak,
    )
    .await;
    wait_for_streaming(&pg).await;
    // The StarRocks table exists (created from the first change) before the snapshot.
    pg.psql("shop", "UPDATE orders SET v = 0 WHERE id = 1")
        .unwrap();
    let first = change_mid_snapshot(
        &mut running,
        &pg,
        &emulator,
        &state.0,
        false,
        "ALTER TABLE orders DROP COLUMN note;
         ALTER TABLE orders ADD COLUMN extra int NOT NULL DEFAULT 5;
         UPDATE orders SET extra = 9, v = v + 1 WHERE id % 100 = 0;
         INSERT INTO orders (id, v, extra) VALUES (30000, 1, 2);",
    )
    .await;
    println!("PG {major}: columns dropped and added mid-snapshot; identical");

    // Again with --replace (the StarRocks table emptied first, so a row the copy missed would
    // show), and a rewrite: rows deleted, then the table rewritten by a type change, which
    // moves rows into page ranges already read.
    let rewritten = change_mid_snapshot(
        &mut running,
        &pg,
        &emulator,
        &state.0,
        true,
        "DELETE FROM orders WHERE id % 3 = 0;
         ALTER TABLE orders ALTER COLUMN v TYPE bigint;",
    )
    .await;
    assert!(
        rewritten.epoch > first.epoch + 1 && rewritten.replace,
        "the rewritten table was planned again: {rewritten:?}"
    );

    // A type widened without a rewrite (same file): values of the new size in chunks not read
    // yet would not fit the StarRocks column of the planned type.
    let widened = change_mid_snapshot(
        &mut running,
        &pg,
        &emulator,
        &state.0,
        false,
        "ALTER TABLE orders ALTER COLUMN code TYPE varchar(60);
         UPDATE orders SET code = repeat('y', 50) WHERE id % 50 = 1;",
    )
    .await;
    assert!(
        widened.epoch > rewritten.epoch + 1,
        "the widened table was planned again: {widened:?}"
    );
    running.stop().await;
}

/// Asks for a snapshot of `orders` and, once two of its chunks are loaded, runs `sql`; then
/// waits until the snapshot is loaded and the table identical, and returns the plan it ended
/// with.
async fn change_mid_snapshot(
    running: &mut Running,
    pg: &LocalPg,
    emulator: &EmulatorHandle,
    state_dir: &Path,
    replace: bool,
    sql: &str,
) -> SnapshotState {
    let after_epoch = first_table_snapshot(state_dir).map_or(0, |plan| plan.epoch);
    request_accepted(&running.api, "public.orders", replace).await;
    wait_table_chunks(state_dir, after_epoch, 2).await;
    pg.psql("shop", sql).unwrap();
    let (done, chunks) = first_table_snapshot(state_dir)
        .map_or((0, 0), |plan| (plan.done_count(), plan.chunk_count()));
    assert!(
        done < chunks,
        "the change landed mid-snapshot ({done}/{chunks})"
    );
    running
        .wait_table_done("public.orders", Duration::from_secs(60))
        .await;
    wait_same(pg, emulator, "SELECT * FROM orders ORDER BY id").await;
    let plan = first_table_snapshot(state_dir).unwrap();
    assert!(plan.is_finished(), "{plan:?}");
    plan
}

/// The initial snapshot (on the slot's exported snapshot) of a table that is rewritten while
/// it is read: the exported snapshot would see the rewritten table empty, and its page ranges
/// hold other rows. The table leaves the initial plan, gets a snapshot of its own once
/// streaming starts (its replayed changes held behind it), and ends identical; the other
/// table's initial snapshot is unaffected. About 5 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_rewritten_during_the_initial_snapshot_is_copied_again() {
    let tweak = |config: &mut Config| {
        config.snapshot.mode = SnapshotMode::Initial;
        config.snapshot.parallelism = 1;
    };
    let Setup {
        pg,
        emulator,
        state,
        mut running,
    } = orders_and_items(
        18,
        "INSERT INTO items SELECT g, g FROM generate_series(1, 3000) g;",
        "dbmazz-snapshot-rewrite",
        Duration::from_millis(150),
        tweak,
    )
    .await;
    let initial_done = || {
        StateFile::load(&state.0)
            .ok()
            .flatten()
            .and_then(|file| file.snapshot)
            .map_or(0, |plan| plan.done_count())
    };
    eventually(
        Duration::from_secs(30),
        "two chunks of the initial snapshot",
        || async { (initial_done() >= 2).then_some(()) },
    )
    .await;
    pg.psql(
        "shop",
        "DELETE FROM orders WHERE id % 3 = 0;
         ALTER TABLE orders ALTER COLUMN v TYPE bigint;
         UPDATE orders SET note = 'after' WHERE id % 100 = 1;",
    )
    .unwrap();
    running
        .wait_table_done("public.orders", Duration::from_secs(60))
        .await;
    wait_same(&pg, &emulator, "SELECT * FROM orders ORDER BY id").await;
    wait_same(&pg, &emulator, "SELECT * FROM items ORDER BY id").await;
    running.stop().await;
    let recorded = StateFile::load(&state.0).unwrap().unwrap();
    let initial = recorded.snapshot.unwrap();
    let initial_tables: Vec<&str> = initial.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(initial_tables, ["public.items"]);
    assert!(initial.is_finished());
    assert_eq!(recorded.table_snapshots.len(), 1);
    assert!(recorded.table_snapshots[0].is_finished());
}

/// A table dropped while it is being snapshotted on its own: its copy is let go (a warning),
/// and the other tables keep streaming. About 3 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_dropped_during_its_snapshot_is_let_go() {
    let tweak = |config: &mut Config| config.snapshot.parallelism = 1;
    let Setup {
        pg,
        emulator,
        state,
        running,
    } = orders_and_items(
        18,
        "",
        "dbmazz-resnapshot-drop",
        Duration::from_millis(150),
        tweak,
    )
    .await;
    wait_for_streaming(&pg).await;
    request_accepted(&running.api, "public.orders", false).await;
    wait_table_chunks(&state.0, 0, 1).await;
    pg.psql("shop", "DROP TABLE orders").unwrap();
    pg.psql(
        "shop",
        "INSERT INTO items SELECT g, g FROM generate_series(1, 50) g",
    )
    .unwrap();
    eventually(Duration::from_secs(30), "orders let go", || async {
        let report = running.progress.report();
        let orders = report.tables.iter().find(|t| t.table == "public.orders")?;
        (!orders.holding).then_some(())
    })
    .await;
    wait_same(&pg, &emulator, "SELECT id, qty FROM items ORDER BY id").await;
    pg.psql("shop", "UPDATE items SET qty = 0 WHERE id < 10")
        .unwrap();
    wait_same(&pg, &emulator, "SELECT id, qty FROM items ORDER BY id").await;
    running.stop().await;
}
