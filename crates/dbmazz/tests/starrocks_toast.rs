//! Unchanged TOAST values with REPLICA IDENTITY DEFAULT (DESIGN §3): updates that leave large
//! text/jsonb unchanged in the insert's batch and in later batches, and key changes that leave
//! them unchanged — the hard case, where the value must be carried from the old row.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::sink::starrocks::DeleteMode;
use starrocks_emulator::{Emulator, EmulatorConfig, FaultKind, FaultRule};

use crate::support::starrocks::{
    replicate_in_process, resume_in_process, sink_options, wait_identical,
};
use crate::support::{new_database, start_pg, wait_for_streaming, PG_VERSIONS};

const CHECK: &str = "SELECT id, k2, status, body, doc FROM docs ORDER BY id, k2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_toast_survives_updates_and_key_changes_across_batches() {
    for major in PG_VERSIONS {
        let pg = start_pg(major, LocalPgOptions::default());
        pg.create_database("shop").unwrap();
        pg.psql(
            "shop",
            "CREATE TABLE docs (id bigint, k2 text, status text, body text, doc jsonb, PRIMARY KEY (id, k2));
             ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
             ALTER TABLE docs ALTER COLUMN doc SET STORAGE EXTERNAL;",
        )
        .unwrap();
        let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
        let replication = replicate_in_process(
            &pg,
            &emulator,
            "shop",
            &["public.docs"],
            sink_options(DeleteMode::Hard),
            |_| {},
        )
        .await;
        wait_for_streaming(&pg).await;
        let pause = || tokio::time::sleep(Duration::from_millis(400));
        // Batch 1: inserts, then in the same batch updates and a key change leaving TOAST alone.
        pg.psql(
            "shop",
            "INSERT INTO docs SELECT g, 'a', 'new', repeat(md5(g::text), 300),
                    jsonb_build_object('g', g, 'pad', repeat(md5(g::text), 300))
               FROM generate_series(1, 40) g;
             UPDATE docs SET status = 'same-batch' WHERE id % 2 = 0;
             UPDATE docs SET id = id + 100 WHERE id % 5 = 0;",
        )
        .unwrap();
        pause().await;
        // Batch 2: updates leaving TOAST unchanged, key changes of both key columns (the old
        // rows are only in StarRocks now), and one row moved twice within the batch.
        pg.psql(
            "shop",
            "UPDATE docs SET status = 'later' WHERE id % 3 = 0;
             UPDATE docs SET id = id + 1000 WHERE id % 7 = 0;
             UPDATE docs SET k2 = 'b' WHERE id % 11 = 0;
             UPDATE docs SET id = 5000 WHERE id = 1;
             UPDATE docs SET id = 5001, status = 'twice' WHERE id = 5000;
             DELETE FROM docs WHERE id = 2;",
        )
        .unwrap();
        pause().await;
        // Batch 3: a key change of a row whose TOAST came from a carried value, a TOAST change,
        // and a key change right after it in the same transaction.
        pg.psql(
            "shop",
            "BEGIN;
             UPDATE docs SET id = 6001 WHERE id = 5001;
             UPDATE docs SET body = 'short now' WHERE id = 3;
             UPDATE docs SET id = 6003 WHERE id = 3;
             UPDATE docs SET doc = NULL WHERE id = 4;
             UPDATE docs SET status = 'x' WHERE id = 4;
             COMMIT;",
        )
        .unwrap();
        wait_identical(&pg, &emulator, "shop", CHECK).await;
        replication.stop().await;
    }
}

/// An UPDATE that moves a row into a publication's row filter reaches dbmazz as an INSERT
/// whose TOASTed value PostgreSQL did not send (pgoutput keeps the unchanged marker). The
/// value exists only in PostgreSQL: the column stays NULL in StarRocks, and that is counted
/// (`dbmazz_lossy_values_total{reason="toast_not_sent"}`) and logged, never silent. PG 15+
/// (row filters). About 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_without_its_toast_value_is_counted_as_lossy() {
    let pg = new_database(
        15,
        "CREATE TABLE filtered_docs (id int PRIMARY KEY, body text);
         ALTER TABLE filtered_docs ALTER COLUMN body SET STORAGE EXTERNAL;
         INSERT INTO filtered_docs SELECT g, repeat(md5(g::text), 200) FROM generate_series(1, 4) g;
         CREATE PUBLICATION test_pub FOR TABLE filtered_docs WHERE (id % 2 = 0);",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let replication = replicate_in_process(
        &pg,
        &emulator,
        "shop",
        &["public.filtered_docs"],
        sink_options(DeleteMode::Hard),
        |_| {},
    )
    .await;
    let check = "SELECT id FROM filtered_docs WHERE id % 2 = 0 ORDER BY id";
    wait_identical(&pg, &emulator, "shop", check).await;
    let lossy = || {
        dbmazz::ops::metrics()
            .render()
            .lines()
            .find(|line| {
                line.starts_with("dbmazz_lossy_values_total")
                    && line.contains("public.filtered_docs")
                    && line.contains("toast_not_sent")
            })
            .map(str::to_string)
    };
    assert_eq!(lossy(), None);
    pg.psql("shop", "UPDATE filtered_docs SET id = 104 WHERE id = 3")
        .unwrap();
    wait_identical(&pg, &emulator, "shop", check).await;
    let counted =
        crate::support::eventually(Duration::from_secs(10), "the lossy count", || async {
            lossy()
        })
        .await;
    assert!(counted.ends_with(" 1"), "{counted}");
    replication.stop().await;
}

/// A crash replays changes StarRocks already holds: a row moved away (its TOASTed value not
/// sent) and a new row inserted at its old key were both loaded, the checkpoint held back by
/// another table's failing loads, then the process died. The replayed key change must not
/// take the new row's value from StarRocks's old-key row: it reads PostgreSQL's. About 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_key_change_does_not_take_a_later_rows_toast_values() {
    let pg = new_database(
        15,
        "CREATE TABLE moved (id int PRIMARY KEY, small int, big text);
         ALTER TABLE moved ALTER COLUMN big SET STORAGE EXTERNAL;
         INSERT INTO moved SELECT g, g, repeat(md5(g::text), 200) FROM generate_series(1, 20) g;
         CREATE TABLE held (id int PRIMARY KEY, v text);",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let tables = ["public.moved", "public.held"];
    let replication = replicate_in_process(
        &pg,
        &emulator,
        "shop",
        &tables,
        sink_options(DeleteMode::Hard),
        |_| {},
    )
    .await;
    let check = "SELECT id, small, big FROM moved ORDER BY id";
    wait_identical(&pg, &emulator, "shop", check).await;
    wait_for_streaming(&pg).await;
    // `held`'s load hangs: the slot cannot pass its change, the `moved` loads go on.
    emulator.inject(
        FaultRule::new(FaultKind::Delay)
            .delay_ms(600_000)
            .times(1)
            .table("held"),
    );
    pg.psql("shop", "INSERT INTO held VALUES (1, 'stuck')")
        .unwrap();
    pg.psql("shop", "UPDATE moved SET id = 2009 WHERE id = 9")
        .unwrap();
    pg.psql(
        "shop",
        "INSERT INTO moved VALUES (9, 0, repeat(md5('a later row'), 200))",
    )
    .unwrap();
    wait_identical(&pg, &emulator, "shop", check).await;
    let state = replication.kill().await;
    // The hung load's transaction dies with the connection (as on a real FE after a crash).
    emulator.clear_faults();
    emulator.restart();
    let replication = resume_in_process(
        &pg,
        &emulator,
        "shop",
        &tables,
        sink_options(DeleteMode::Hard),
        |_| {},
        state,
    )
    .await;
    wait_identical(&pg, &emulator, "shop", "SELECT id, v FROM held ORDER BY id").await;
    wait_identical(&pg, &emulator, "shop", check).await;
    replication.stop().await;
}
