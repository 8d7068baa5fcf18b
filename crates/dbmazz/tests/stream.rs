//! The stream path end to end: real PostgreSQL 15 and 18 → replicator → recording sink.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::decode::TupleValue;
use dbmazz::local_pg::{LocalPg, LocalPgOptions};
use dbmazz::pipeline::{ChangeKind, OldImage, RowChange};
use dbmazz::replicator::{self, RunContext, RunSummary};
use dbmazz::sink::{RecordedOp, RecordingSink};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::support::{
    eventually, start_pg, stream_config, wait_for_streaming, TempDir, PG_VERSIONS,
};

const SCHEMA: &str = "
CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, amount numeric(12,2), note text);
ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL;
CREATE TABLE items (order_id bigint, line int, qty int, PRIMARY KEY (order_id, line));
CREATE TABLE other (id int PRIMARY KEY, v text);
";

struct Running {
    sink: RecordingSink,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<RunSummary, replicator::RunError>>,
    _state: TempDir,
}

impl Running {
    fn start(pg: &LocalPg, database: &str) -> Self {
        let state = TempDir::new("dbmazz-stream-test");
        let config = stream_config(pg, database, &["public.orders", "public.items"], &state);
        let sink = RecordingSink::new();
        let (shutdown, receiver) = watch::channel(false);
        let task_sink = Arc::new(sink.clone());
        let task = tokio::spawn(async move {
            replicator::run(&config, task_sink, RunContext::new(receiver)).await
        });
        Running {
            sink,
            shutdown,
            task,
            _state: state,
        }
    }

    /// Stops and hands back the state directory.
    async fn stop_keep_state(self) -> (RunSummary, TempDir) {
        let Running {
            shutdown,
            task,
            _state,
            ..
        } = self;
        shutdown.send_replace(true);
        let summary = task
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("{error}"));
        (summary, _state)
    }

    async fn stop(self) -> RunSummary {
        self.shutdown.send_replace(true);
        self.task
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn wait_for_changes(&self, count: usize) -> Vec<RowChange> {
        eventually(
            Duration::from_secs(90),
            &format!("{count} changes"),
            || async {
                let changes = self.sink.durable_changes();
                (changes.len() >= count).then_some(changes)
            },
        )
        .await
    }
}

fn text(change: &RowChange, column: usize) -> Option<String> {
    let image = change
        .new
        .as_ref()
        .or(change.old.as_ref().map(OldImage::image))?;
    match image.values().0.get(column)? {
        TupleValue::Text(bytes) => Some(String::from_utf8_lossy(bytes).to_string()),
        TupleValue::Null => None,
        TupleValue::UnchangedToast => Some("<unchanged>".into()),
        TupleValue::Binary(_) => Some("<binary>".into()),
    }
}

fn prepare(major: u32) -> LocalPg {
    let pg = start_pg(major, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql("shop", SCHEMA).unwrap();
    pg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_in_commit_order_with_their_values() {
    for major in PG_VERSIONS {
        let pg = prepare(major);
        let running = Running::start(&pg, "shop");
        // The replicator creates the slot; write only once it streams.
        wait_for_streaming(&pg).await;
        let big = "x".repeat(10_000);
        pg.psql(
            "shop",
            &format!(
                "INSERT INTO orders VALUES (1, 'new', 10.50, '{big}');
                 INSERT INTO items VALUES (1, 1, 3), (1, 2, 4);
                 BEGIN; INSERT INTO orders VALUES (2, 'new', NULL, 'small'); ROLLBACK;
                 UPDATE orders SET status = 'paid' WHERE id = 1;
                 UPDATE orders SET id = 10 WHERE id = 1;
                 DELETE FROM items WHERE order_id = 1 AND line = 2;
                 INSERT INTO other VALUES (1, 'not published');
                 TRUNCATE items;
                 INSERT INTO items VALUES (10, 1, 1);"
            ),
        )
        .unwrap();
        let changes = running.wait_for_changes(7).await;
        let orders: Vec<&RowChange> = changes
            .iter()
            .filter(|change| change.schema.name.name == "orders")
            .collect();
        assert_eq!(
            orders.len(),
            3,
            "PG{major}: rolled-back insert must not arrive"
        );
        assert_eq!(orders[0].kind, ChangeKind::Insert);
        assert_eq!(text(orders[0], 2).as_deref(), Some("10.50"));
        assert_eq!(text(orders[0], 3).map(|note| note.len()), Some(10_000));
        assert_eq!(orders[1].kind, ChangeKind::Update);
        assert_eq!(text(orders[1], 1).as_deref(), Some("paid"));
        assert_eq!(
            text(orders[1], 3).as_deref(),
            Some("<unchanged>"),
            "PG{major}: unchanged TOAST is marked, not empty"
        );
        // Key change: the old key travels with the update.
        let key_change = orders[2];
        assert_eq!(text(key_change, 0).as_deref(), Some("10"));
        let Some(OldImage::Key(old)) = &key_change.old else {
            panic!("PG{major}: key change without old key: {key_change:?}");
        };
        assert!(matches!(&old.values().0[0], TupleValue::Text(id) if &id[..] == b"1"));

        let items: Vec<&RowChange> = changes
            .iter()
            .filter(|change| change.schema.name.name == "items")
            .collect();
        assert_eq!(items.len(), 4);
        assert_eq!(items[2].kind, ChangeKind::Delete);
        assert!(changes
            .iter()
            .all(|change| change.schema.name.name != "other"));
        // Commit order per table, and TRUNCATE between the delete and the last insert.
        let ops = running.sink.durable_ops();
        let truncate = ops
            .iter()
            .position(|op| matches!(op, RecordedOp::Truncate(table) if table.name.name == "items"))
            .expect("TRUNCATE arrives");
        let last_insert = ops
            .iter()
            .rposition(
                |op| matches!(op, RecordedOp::Batch(batch) if batch.table.name.name == "items"),
            )
            .unwrap();
        assert!(truncate < last_insert);
        let lsns: Vec<_> = changes.iter().map(|change| change.commit_lsn).collect();
        let mut sorted = lsns.clone();
        sorted.sort();
        let per_table_sorted = orders
            .windows(2)
            .all(|w| w[0].commit_lsn <= w[1].commit_lsn);
        assert!(per_table_sorted, "PG{major}: commit order");
        let summary = running.stop().await;
        assert!(summary.durable >= *lsns.iter().max().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_200k_row_transaction_arrives_whole_and_rolled_back_savepoints_do_not() {
    for major in PG_VERSIONS {
        let pg = prepare(major);
        let running = Running::start(&pg, "shop");
        // The replicator creates the slot; write only once it streams.
        wait_for_streaming(&pg).await;
        pg.psql(
            "shop",
            "BEGIN;
             INSERT INTO orders SELECT g, 'bulk', g, NULL FROM generate_series(1, 100000) g;
             SAVEPOINT s1;
             INSERT INTO orders SELECT g, 'rolled back', g, NULL FROM generate_series(100001, 120000) g;
             ROLLBACK TO SAVEPOINT s1;
             INSERT INTO items SELECT g, 1, 1 FROM generate_series(1, 100000) g;
             COMMIT;
             BEGIN; INSERT INTO orders SELECT g, 'aborted', g, NULL FROM generate_series(200001, 230000) g; ROLLBACK;
             INSERT INTO orders VALUES (999999, 'after', 1, NULL);",
        )
        .unwrap();
        let changes = running.wait_for_changes(200_001).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let changes_after = running.sink.durable_changes();
        assert_eq!(
            changes_after.len(),
            200_001,
            "PG{major}: nothing extra arrives"
        );
        let statuses: std::collections::BTreeMap<String, usize> =
            changes
                .iter()
                .fold(Default::default(), |mut counts, change| {
                    if change.schema.name.name == "orders" {
                        *counts
                            .entry(text(change, 1).unwrap_or_default())
                            .or_default() += 1;
                    }
                    counts
                });
        assert_eq!(
            statuses.get("bulk"),
            Some(&100_000),
            "PG{major}: {statuses:?}"
        );
        assert_eq!(statuses.get("after"), Some(&1));
        assert!(!statuses.contains_key("rolled back"));
        assert!(!statuses.contains_key("aborted"));
        let summary = running.stop().await;
        assert!(
            summary.stats.assembler.aborted_subtransactions >= 1
                || summary.stats.assembler.aborted_transactions >= 1,
            "PG{major}: the transaction was streamed: {:?}",
            summary.stats
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_slot_and_a_lost_slot_are_clear_errors() {
    let pg = prepare(15);
    let running = Running::start(&pg, "shop");
    // The replicator creates the slot; write only once it streams.
    wait_for_streaming(&pg).await;
    // A second pipeline on the same slot (own state dir) is refused, naming the slot.
    let other_state = TempDir::new("dbmazz-stream-test");
    let config = stream_config(
        &pg,
        "shop",
        &["public.orders", "public.items"],
        &other_state,
    );
    let (_shutdown, receiver) = watch::channel(false);
    let error = replicator::run(
        &config,
        Arc::new(RecordingSink::new()),
        RunContext::new(receiver),
    )
    .await
    .expect_err("second process refused");
    let message = error.to_string();
    // It names the connection holding the slot: the server process and the client.
    assert!(
        message.contains("in use by another connection (server process "),
        "{message}"
    );
    assert!(
        message.contains(": \"dbmazz\" from 127.0.0.1)"),
        "{message}"
    );
    assert!(message.contains("test_slot"), "{message}");

    // The first one stops; someone drops its slot; its state dir remembers the slot.
    let (summary, state) = running.stop_keep_state().await;
    let config = stream_config(&pg, "shop", &["public.orders", "public.items"], &state);
    assert!(summary.durable > dbmazz::Lsn::ZERO);
    pg.psql("shop", "SELECT pg_drop_replication_slot('test_slot')")
        .unwrap();
    let (_shutdown, receiver) = watch::channel(false);
    let error = replicator::run(
        &config,
        Arc::new(RecordingSink::new()),
        RunContext::new(receiver),
    )
    .await
    .expect_err("lost slot refused");
    let message = error.to_string();
    assert!(message.contains("is gone"), "{message}");
    assert!(message.contains("Snapshot the tables again"), "{message}");
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM pg_replication_slots")
            .unwrap(),
        "0",
        "a lost slot is not silently recreated"
    );
}
