//! `sink.starrocks.transactional = true`: loads go through the transaction API (begin, load,
//! prepare, then commit) against the emulator.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::replicator::{self, RunContext};
use dbmazz::sink::starrocks::stream_load::{
    LabelTaken, LoadRequest as HttpLoadRequest, RetryPolicy, StreamLoadClient, StreamLoadConfig,
    StreamLoader, TxnStage,
};
use dbmazz::sink::starrocks::{HttpLoader, LoadRequest, Loader};
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultKind, FaultRule};
use tokio::sync::watch;

use crate::support::{eventually, start_pg, stream_config, wait_for_streaming, TempDir};

async fn emulator_with_table() -> EmulatorHandle {
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    for sql in [
        "CREATE DATABASE shop",
        "CREATE TABLE shop.t (id BIGINT NOT NULL, v VARCHAR(100)) PRIMARY KEY (id) \
         DISTRIBUTED BY HASH (id) PROPERTIES (\"replication_num\" = \"1\")",
    ] {
        emulator.execute_sql(None, sql).await.unwrap();
    }
    emulator
}

fn stream_loader(emulator: &EmulatorHandle) -> StreamLoader {
    let client = StreamLoadClient::new(StreamLoadConfig::new(
        format!("http://{}", emulator.fe_http_addr()),
        "root",
        "",
    ))
    .unwrap();
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    StreamLoader::new(client, policy)
}

async fn rows(emulator: &EmulatorHandle) -> Vec<String> {
    emulator
        .query_text(Some("shop"), "SELECT id, v FROM t ORDER BY id")
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

#[tokio::test]
async fn a_prepared_load_is_invisible_until_committed_and_a_replay_commits_it() {
    let emulator = emulator_with_table().await;
    let loader = stream_loader(&emulator);
    let mut request = HttpLoadRequest {
        db: "shop".into(),
        table: "t".into(),
        label: "dbmazz-test-txn-1".into(),
        body: bytes::Bytes::from_static(br#"[{"id":1,"v":"a"},{"id":2,"v":"b"}]"#).into(),
        headers: vec![("columns".into(), "id,v".into())],
        label_taken: LabelTaken::AlreadyLoaded,
    };
    assert_eq!(
        loader.prepare_txn(&mut request).await.unwrap(),
        TxnStage::Prepared
    );
    assert!(
        rows(&emulator).await.is_empty(),
        "prepared rows must not be visible"
    );

    // A new process replays the same batch: the label is found PREPARED and committed.
    let replay = HttpLoader::new(stream_loader(&emulator), "shop");
    let mut replay = replay;
    replay.transactional = true;
    let stream_batch = |body: &[u8]| LoadRequest {
        table: "t".into(),
        label: "dbmazz-test-txn-1".into(),
        columns: "id,v".into(),
        partial_update: false,
        body: body.to_vec().into(),
        rows: 2,
        label_taken: LabelTaken::LoadAgain,
    };
    let staged = replay
        .stage(stream_batch(br#"[{"id":1,"v":"a"},{"id":2,"v":"b"}]"#))
        .await
        .unwrap()
        .expect("still to commit");
    assert_eq!(staged.label, "dbmazz-test-txn-1");
    replay.commit(staged.clone()).await.unwrap();
    assert_eq!(rows(&emulator).await, ["1|a", "2|b"]);
    // Committing again is a no-op, and staging the label again finds it committed: done for
    // a snapshot chunk, ...
    replay.commit(staged).await.unwrap();
    assert_eq!(
        loader.prepare_txn(&mut request).await.unwrap(),
        TxnStage::Committed
    );
    assert_eq!(emulator.table_stats("shop", "t").unwrap().loads, 1);
    // ... loaded again under a new label for a stream batch (a replay may have loaded older
    // images of its rows since).
    let again = replay
        .stage(stream_batch(br#"[{"id":1,"v":"c"},{"id":2,"v":"d"}]"#))
        .await
        .unwrap()
        .expect("prepared under a new label");
    assert!(
        again.label.starts_with("dbmazz-test-txn-1-r"),
        "{}",
        again.label
    );
    replay.commit(again).await.unwrap();
    assert_eq!(rows(&emulator).await, ["1|c", "2|d"]);
    assert_eq!(emulator.table_stats("shop", "t").unwrap().loads, 2);
}

#[tokio::test]
async fn an_aborted_commit_is_loaded_again_and_bad_data_is_a_clear_error() {
    let emulator = emulator_with_table().await;
    let mut loader = HttpLoader::new(stream_loader(&emulator), "shop");
    loader.transactional = true;
    let request = |label: &str, body: &[u8]| LoadRequest {
        table: "t".into(),
        label: label.into(),
        columns: "id,v".into(),
        partial_update: false,
        body: body.to_vec().into(),
        rows: 1,
        label_taken: LabelTaken::LoadAgain,
    };
    // The commit fails (StarRocks aborts the prepared txn, as for a busy BE): the loader
    // loads the rows again under the label and commits them, without a restart.
    emulator.inject(FaultRule::new(FaultKind::Fail).table("t"));
    let staged = loader
        .stage(request("dbmazz-test-txn-2", br#"[{"id":7,"v":"x"}]"#))
        .await
        .unwrap()
        .expect("staged");
    loader.commit(staged).await.unwrap();
    assert_eq!(rows(&emulator).await, ["7|x"]);
    // A value StarRocks cannot take: a permanent error naming the label.
    let bad = request("dbmazz-test-txn-3", br#"[{"id":"not a number","v":"x"}]"#);
    let error = match loader.stage(bad).await {
        Err(error) => error,
        Ok(Some(staged)) => loader.commit(staged).await.expect_err("must fail"),
        Ok(None) => panic!("bad data committed"),
    };
    assert!(
        error.message.contains("dbmazz-test-txn-3"),
        "{}",
        error.message
    );
    assert!(
        !error.message.contains("prepared_timeout"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_with_transactional_loads_converges() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, note text);
         ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL;",
    )
    .unwrap();
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    emulator
        .execute_sql(None, "CREATE DATABASE shop")
        .await
        .unwrap();
    let state = TempDir::new("dbmazz-txn-test");
    let mut config = stream_config(&pg, "shop", &["public.orders"], &state);
    let toml = format!(
        "[source]\nurl = \"{}\"\n[sink.starrocks]\nfe_http = \"http://{}\"\nmysql = \"{}\"\n\
         database = \"shop\"\ntransactional = true\n\
         table_properties = {{ replication_num = \"1\" }}\n",
        pg.url("shop"),
        emulator.fe_http_addr(),
        emulator.mysql_addr().unwrap()
    );
    config.sink = dbmazz::config::Config::from_toml(&toml).unwrap().sink;
    let sink = dbmazz::sink::starrocks::connect_sink(&config)
        .await
        .unwrap();
    emulator.inject(FaultRule::new(FaultKind::PublishTimeout).table("orders"));
    emulator.inject(FaultRule::new(FaultKind::Http5xx).table("orders"));
    let (shutdown, receiver) = watch::channel(false);
    let task = tokio::spawn(async move {
        replicator::run(&config, Arc::new(sink), RunContext::new(receiver)).await
    });
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "INSERT INTO orders SELECT g, 'new', repeat(md5(g::text), 200) FROM generate_series(1, 300) g;
         UPDATE orders SET status = 'paid' WHERE id % 3 = 0;
         UPDATE orders SET id = id + 1000 WHERE id % 10 = 0;
         DELETE FROM orders WHERE id % 7 = 0;",
    )
    .unwrap();
    let expected: Vec<String> = pg
        .psql(
            "shop",
            "SELECT id, status, length(note), right(note, 40) FROM orders ORDER BY id",
        )
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    eventually(Duration::from_secs(60), "identical tables", || async {
        let actual: Vec<String> = emulator
            .query_text(
                Some("shop"),
                "SELECT id, status, note FROM orders ORDER BY id",
            )
            .await
            .ok()?
            .into_iter()
            .map(|row| {
                let id = row[0].clone().unwrap_or_default();
                let status = row[1].clone().unwrap_or_default();
                let note = row[2].clone().unwrap_or_default();
                let tail: String = note
                    .chars()
                    .skip(note.chars().count().saturating_sub(40))
                    .collect();
                format!("{id}|{status}|{}|{tail}", note.chars().count())
            })
            .collect();
        (actual == expected).then_some(())
    })
    .await;
    shutdown.send_replace(true);
    task.await.unwrap().unwrap();
}
