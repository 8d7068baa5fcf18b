//! `delete_mode = "soft"`: a deleted row stays in StarRocks with `dbmazz_is_deleted = true`
//! and its last values; so does the old key of an UPDATE that changes the key, next to the
//! row under its new key. A row deleted and inserted again under its key is live again.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::sink::starrocks::DeleteMode;
use starrocks_emulator::{Emulator, EmulatorConfig};

use crate::support::starrocks::{replicate_in_process, sink_options, sr_rows};
use crate::support::{start_pg, wait_for_streaming};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_deleted_rows_keep_their_last_values() {
    let pg = start_pg(18, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE s (id int PRIMARY KEY, v text, n int);
         ALTER TABLE s ALTER COLUMN v SET STORAGE EXTERNAL;
         INSERT INTO s SELECT g, 'v' || g, g FROM generate_series(1, 5) g;
         INSERT INTO s VALUES (6, repeat('t', 3000), 6);",
    )
    .unwrap();
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let replication = replicate_in_process(
        &pg,
        &emulator,
        "shop",
        &["public.s"],
        sink_options(DeleteMode::Soft),
        |_| {},
    )
    .await;
    wait_for_streaming(&pg).await;
    // Row 6's TOASTed v is only in StarRocks: its key change carries v from there, and the
    // soft-deleted old key keeps v and n.
    pg.psql("shop", "UPDATE s SET id = 60 WHERE id = 6")
        .unwrap();
    pg.psql(
        "shop",
        "UPDATE s SET n = n + 100 WHERE id = 1;
         DELETE FROM s WHERE id = 1;
         UPDATE s SET id = 20, n = 200 WHERE id = 2;
         DELETE FROM s WHERE id = 3;
         INSERT INTO s VALUES (3, 'again', 33);",
    )
    .unwrap();
    // v's length stands for v (row 6's is 3000 characters).
    let expected = [
        "1|2|101|1",
        "2|2|2|1",
        "3|5|33|0",
        "4|2|4|0",
        "5|2|5|0",
        "6|3000|6|1",
        "20|2|200|0",
        "60|3000|6|0",
    ];
    let sql = "SELECT id, length(v), n, dbmazz_is_deleted FROM s ORDER BY id";
    let mut last = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            last = sr_rows(&emulator, "shop", sql).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "StarRocks has {last:?}, expected {expected:?}"
    );
    replication.stop().await;
}
