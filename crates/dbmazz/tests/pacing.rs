//! `source.read_low_water` / `source.read_pacing`: waiting for the socket to fill (the default
//! low-water mark) or pausing after small reads (mark off) loses and reorders nothing, and a
//! lone change on an idle stream still arrives without waiting for a full chunk.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::replicator::{self, RunContext};
use dbmazz::sink::RecordingSink;
use tokio::sync::watch;

use crate::support::{eventually, start_pg, stream_config, wait_for_streaming, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_for_the_low_water_mark_deliver_every_change_in_order() {
    paced_reads_deliver_every_change_in_order(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_paused_after_small_reads_deliver_every_change_in_order() {
    paced_reads_deliver_every_change_in_order(Some(dbmazz::config::ByteSize(0))).await;
}

async fn paced_reads_deliver_every_change_in_order(low_water: Option<dbmazz::config::ByteSize>) {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("paced").unwrap();
    pg.psql("paced", "CREATE TABLE t (id bigint PRIMARY KEY, v text);")
        .unwrap();
    let state = TempDir::new("dbmazz-pacing-test");
    let mut config = stream_config(&pg, "paced", &["public.t"], &state);
    config.source.read_pacing = dbmazz::config::HumanDuration(Duration::from_millis(5));
    if let Some(low_water) = low_water {
        config.source.read_low_water = low_water;
    }
    let sink = RecordingSink::new();
    let (shutdown, receiver) = watch::channel(false);
    let task_sink = Arc::new(sink.clone());
    let task = tokio::spawn(async move {
        replicator::run(&config, task_sink, RunContext::new(receiver)).await
    });
    wait_for_streaming(&pg).await;
    // The first change, alone: far below the low-water mark, it must not wait for more.
    pg.psql("paced", "INSERT INTO t VALUES (-1, 'first');")
        .unwrap();
    eventually(Duration::from_secs(10), "the first change", || async {
        (!sink.durable_changes().is_empty()).then_some(())
    })
    .await;
    // Small transactions (small reads, paced) and one large one.
    for round in 0..20 {
        pg.psql(
            "paced",
            &format!("INSERT INTO t VALUES ({round}, 'small');"),
        )
        .unwrap();
    }
    pg.psql(
        "paced",
        "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(100, 20099) g;",
    )
    .unwrap();
    let changes = eventually(Duration::from_secs(60), "20,021 changes", || async {
        let changes = sink.durable_changes();
        (changes.len() >= 20_021).then_some(changes)
    })
    .await;
    assert_eq!(changes.len(), 20_021);
    assert!(changes
        .windows(2)
        .all(|pair| pair[0].commit_lsn <= pair[1].commit_lsn));
    // One small change on the now idle stream: far below the low-water mark, it must still
    // come through (the wait for a full chunk ends after `read_pacing`).
    pg.psql("paced", "INSERT INTO t VALUES (99, 'lone');")
        .unwrap();
    eventually(Duration::from_secs(10), "the lone change", || async {
        (sink.durable_changes().len() > 20_021).then_some(())
    })
    .await;
    shutdown.send_replace(true);
    task.await.unwrap().unwrap();
}
