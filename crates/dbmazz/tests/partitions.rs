//! Partitions attached to a published partitioned table after it was copied: `ATTACH
//! PARTITION` writes no row to the WAL, so the rows an attached partition holds reach
//! StarRocks only through a snapshot of that partition. Real PostgreSQL, the in-process
//! emulator.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dbmazz::checkpoint::StateFile;
use dbmazz::config::{Config, HumanDuration};
use dbmazz::ops::{metrics, TableLabels};
use starrocks_emulator::{Emulator, EmulatorConfig};

use crate::resnapshot::{start, wait_same};
use crate::support::starrocks::sr_rows;
use crate::support::{eventually, new_database, wait_for_streaming, TempDir, PG_VERSIONS};

const SCHEMA: &str = "
CREATE TABLE m (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu');
CREATE TABLE m_old PARTITION OF m FOR VALUES IN ('old');
INSERT INTO m SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'old' END, 'v' || g
  FROM generate_series(1, 1000) g;
CREATE TABLE other (id int PRIMARY KEY, n int);
";

/// A partition with rows attached while dbmazz streams is copied (its rows from before the
/// attach included) while the stream keeps running; one created empty is only recorded; a
/// detached one is reported and its rows stay in StarRocks; one attached while dbmazz is
/// stopped is copied at the next start.
/// About 4 s per version in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_attached_later_are_copied() {
    for major in PG_VERSIONS {
        attached_later(major).await;
    }
}

async fn attached_later(major: u32) {
    let pg = new_database(major, SCHEMA);
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-partitions");
    let tweak = |config: &mut Config| {
        config.snapshot.chunk_pages = 4;
        config.snapshot.partition_check_interval = HumanDuration(Duration::from_millis(200));
    };
    let tables = ["public.m", "public.other"];
    let all_rows = "SELECT id, region, v FROM m ORDER BY id, region";
    let running = start(&pg, &emulator, &tables, &state, Duration::ZERO, tweak).await;
    wait_same(&pg, &emulator, all_rows).await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "CREATE TABLE m_us (LIKE m);
         INSERT INTO m_us SELECT g, 'us', 'before attach ' || g FROM generate_series(1, 3000) g;
         ALTER TABLE m ATTACH PARTITION m_us FOR VALUES IN ('us');
         UPDATE m SET v = 'after attach' WHERE region = 'us' AND id <= 10;
         DELETE FROM m WHERE region = 'us' AND id = 20;
         INSERT INTO other VALUES (1, 1);",
    )
    .unwrap();
    wait_same(&pg, &emulator, all_rows).await;
    wait_same(&pg, &emulator, "SELECT id, n FROM other ORDER BY id").await;
    let copied = wait_recorded(&state.0, &["public.m_eu", "public.m_old", "public.m_us"]).await;
    let plan = copied
        .table_snapshots
        .iter()
        .find(|plan| plan.tables.iter().any(|table| table.table == "public.m"))
        .expect("a snapshot of the attached partition");
    assert!(
        plan.tables[0]
            .chunks
            .iter()
            .all(|chunk| chunk.relation_name == "m_us"),
        "only the attached partition is read: {plan:?}"
    );

    // A partition created empty is recorded without a copy (nothing holds the table); its
    // rows come by the stream.
    pg.psql(
        "shop",
        "CREATE TABLE m_new PARTITION OF m FOR VALUES IN ('new')",
    )
    .unwrap();
    let recorded = wait_recorded(
        &state.0,
        &["public.m_eu", "public.m_new", "public.m_old", "public.m_us"],
    )
    .await;
    let epochs = |state: &StateFile| -> Vec<u64> {
        state
            .table_snapshots
            .iter()
            .map(|plan| plan.epoch)
            .collect()
    };
    assert_eq!(
        epochs(&recorded),
        epochs(&copied),
        "an empty partition is not copied"
    );
    pg.psql("shop", "INSERT INTO m VALUES (1, 'new', 'streamed')")
        .unwrap();
    wait_same(&pg, &emulator, all_rows).await;

    pg.psql("shop", "ALTER TABLE m DETACH PARTITION m_old")
        .unwrap();
    wait_recorded(&state.0, &["public.m_eu", "public.m_new", "public.m_us"]).await;
    running.stop().await;

    pg.psql(
        "shop",
        "CREATE TABLE m_apac (LIKE m);
         INSERT INTO m_apac SELECT g, 'apac', 'while stopped' FROM generate_series(1, 500) g;
         ALTER TABLE m ATTACH PARTITION m_apac FOR VALUES IN ('apac');",
    )
    .unwrap();
    let running = start(&pg, &emulator, &tables, &state, Duration::ZERO, tweak).await;
    let current = "SELECT id, region, v FROM m WHERE region <> 'old' ORDER BY id, region";
    wait_same(&pg, &emulator, current).await;
    wait_recorded(
        &state.0,
        &[
            "public.m_apac",
            "public.m_eu",
            "public.m_new",
            "public.m_us",
        ],
    )
    .await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "UPDATE m SET v = 'streamed' WHERE region = 'apac' AND id = 7",
    )
    .unwrap();
    wait_same(&pg, &emulator, current).await;
    let kept = sr_rows(
        &emulator,
        "shop",
        "SELECT count(*) FROM m WHERE region = 'old'",
    )
    .await;
    assert_eq!(
        kept,
        ["500"],
        "a detached partition's rows stay in StarRocks"
    );

    // A partition truncated alone: pgoutput does not send that TRUNCATE; the partition's new
    // file is reported (the warning and the counter).
    let files = StateFile::load(&state.0).unwrap().unwrap().partition_files;
    let leaves: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        leaves,
        [
            "public.m_apac",
            "public.m_eu",
            "public.m_new",
            "public.m_us"
        ]
    );
    let reported = || {
        metrics()
            .partitions_rewritten
            .get_or_create(&TableLabels {
                table: "public.m".into(),
            })
            .get()
    };
    let before = reported();
    pg.psql("shop", "TRUNCATE m_eu").unwrap();
    let files_after = eventually(
        Duration::from_secs(30),
        "the truncated partition reported and its new file recorded",
        || async {
            let now = StateFile::load(&state.0).ok()??.partition_files;
            let renewed = now
                .get("public.m_eu")
                .is_some_and(|file| Some(file) != files.get("public.m_eu"));
            (reported() > before && renewed).then_some(now)
        },
    )
    .await;
    assert_eq!(files_after["public.m_us"], files["public.m_us"]);
    assert_eq!(reported(), before + 1, "only m_eu");

    // The whole table truncated: that TRUNCATE is replicated, so the new files of all its
    // leaves are not reported; a partition truncated alone after it still is.
    pg.psql("shop", "TRUNCATE m").unwrap();
    eventually(
        Duration::from_secs(30),
        "every leaf's new file recorded",
        || async {
            let now = StateFile::load(&state.0).ok()??.partition_files;
            let renewed = now.len() == files_after.len()
                && now
                    .iter()
                    .all(|(leaf, file)| files_after.get(leaf) != Some(file));
            renewed.then_some(())
        },
    )
    .await;
    wait_same(&pg, &emulator, current).await;
    // Several checks later, so the next finding's window starts after that TRUNCATE.
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.psql("shop", "TRUNCATE m_eu").unwrap();
    eventually(
        Duration::from_secs(30),
        "the partition truncated alone reported",
        || async { (reported() > before + 1).then_some(()) },
    )
    .await;
    assert_eq!(
        reported(),
        before + 2,
        "m_eu only: the leaves renewed by the replicated TRUNCATE are not reported"
    );
    running.stop().await;

    // Truncated while dbmazz is stopped: found by the first check after the start.
    pg.psql("shop", "TRUNCATE m_us").unwrap();
    let running = start(&pg, &emulator, &tables, &state, Duration::ZERO, tweak).await;
    eventually(
        Duration::from_secs(30),
        "the partition truncated while stopped reported",
        || async { (reported() > before + 2).then_some(()) },
    )
    .await;
    running.stop().await;
}

/// Waits until the state file records exactly `leaves` as the copied partitions of `m`.
async fn wait_recorded(state_dir: &Path, leaves: &[&str]) -> StateFile {
    let wanted: BTreeSet<String> = leaves.iter().map(|leaf| leaf.to_string()).collect();
    eventually(
        Duration::from_secs(30),
        &format!("partitions {leaves:?} recorded"),
        || async {
            let state = StateFile::load(state_dir).ok()??;
            let recorded = state.partitions.as_ref()?.get("public.m")?;
            let finished = state.table_snapshots.iter().all(|plan| plan.is_finished());
            (recorded == &wanted && finished).then_some(state)
        },
    )
    .await
}
