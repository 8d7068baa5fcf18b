//! Pipeline tests over hand-built decoded messages and the recording sink.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::*;
use crate::decode::{
    LogicalMessage as M, OldTuple, RelationBody, RelationColumn, ReplicaIdentity, TupleData,
    TupleValue,
};
use crate::sink::{RecordedOp, RecordingSink};
use crate::Lsn;

const ORDERS: u32 = 100;
const ITEMS: u32 = 200;

fn relation(oid: u32, name: &str, extra_column: bool) -> M {
    let mut columns = vec![
        RelationColumn {
            is_key: true,
            name: "id".into(),
            type_oid: 23,
            type_modifier: -1,
        },
        RelationColumn {
            is_key: false,
            name: "note".into(),
            type_oid: 25,
            type_modifier: -1,
        },
    ];
    if extra_column {
        columns.push(RelationColumn {
            is_key: false,
            name: "extra".into(),
            type_oid: 23,
            type_modifier: -1,
        });
    }
    M::Relation(RelationBody {
        xid: None,
        oid,
        namespace: "public".into(),
        name: name.into(),
        replica_identity: ReplicaIdentity::Default,
        columns,
    })
}

fn text(value: &str) -> TupleValue {
    TupleValue::Text(Bytes::copy_from_slice(value.as_bytes()))
}

fn row(id: u32, note: &str) -> TupleData {
    TupleData(vec![text(&id.to_string()), text(note)])
}

fn insert(xid: Option<u32>, oid: u32, id: u32, note: &str) -> M {
    M::Insert {
        xid,
        relation_oid: oid,
        new: row(id, note),
    }
}

fn begin(lsn: u64) -> M {
    M::Begin {
        final_lsn: Lsn(lsn),
        commit_time: 0,
        xid: lsn as u32,
    }
}

fn commit(lsn: u64) -> M {
    M::Commit {
        flags: 0,
        commit_lsn: Lsn(lsn),
        end_lsn: Lsn(lsn + 1),
        commit_time: 0,
    }
}

fn limits() -> PipelineLimits {
    PipelineLimits {
        batch: BatchLimits {
            max_rows: 1000,
            max_bytes: 1 << 20,
            max_wait: Duration::from_secs(3600),
        },
        max_memory: 8 << 20,
        spill_threshold: 1 << 20,
        max_in_flight: 4,
    }
}

struct Harness {
    core: StreamCore<RecordingSink>,
    sink: RecordingSink,
    completions: mpsc::UnboundedReceiver<Completion>,
    _spill: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Harness {
    fn new(limits: PipelineLimits) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dbmazz-pipeline-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let sink = RecordingSink::new();
        let (core, completions) = StreamCore::new(
            Arc::new(sink.clone()),
            Default::default(),
            limits,
            dir.clone(),
            Lsn::ZERO,
        );
        Harness {
            core,
            sink,
            completions,
            _spill: TempDir(dir),
        }
    }

    fn feed(&mut self, messages: impl IntoIterator<Item = M>) {
        for message in messages {
            self.core.on_message(message, Instant::now()).unwrap();
        }
    }

    /// Flushes open batches and waits until every operation completed.
    async fn settle(&mut self) {
        self.core.flush_all(Instant::now()).unwrap();
        while !self.core.is_drained() || self.core.stats().assembler.streamed_open > 0 {
            if self.core.is_drained() {
                break;
            }
            let completion = tokio::time::timeout(Duration::from_secs(5), self.completions.recv())
                .await
                .expect("sink completes")
                .expect("channel open");
            self.core.on_completion(completion, Instant::now()).unwrap();
        }
    }

    /// (table, kind, id, note) of every durable change, in order.
    fn changes(&self) -> Vec<(String, ChangeKind, String, String)> {
        self.sink
            .durable_changes()
            .into_iter()
            .map(|change| {
                let image = change
                    .new
                    .clone()
                    .unwrap_or_else(|| change.old.as_ref().unwrap().image().clone());
                let values = image.values();
                let show = |value: Option<&TupleValue>| match value {
                    Some(TupleValue::Text(bytes)) => String::from_utf8_lossy(bytes).to_string(),
                    Some(TupleValue::Null) => "NULL".into(),
                    Some(TupleValue::UnchangedToast) => "UNCHANGED".into(),
                    other => format!("{other:?}"),
                };
                (
                    change.schema.name.name.clone(),
                    change.kind,
                    show(values.get(0)),
                    show(values.get(1)),
                )
            })
            .collect()
    }
}

fn ids(changes: &[(String, ChangeKind, String, String)]) -> Vec<&str> {
    changes.iter().map(|change| change.2.as_str()).collect()
}

#[tokio::test]
async fn plain_transactions_reach_the_sink_in_commit_order_and_become_durable() {
    let mut h = Harness::new(limits());
    h.feed([
        relation(ORDERS, "orders", false),
        relation(ITEMS, "items", false),
    ]);
    h.feed([
        begin(10),
        insert(None, ORDERS, 1, "a"),
        insert(None, ITEMS, 2, "b"),
        commit(10),
    ]);
    h.feed([begin(20), insert(None, ORDERS, 3, "c"), commit(20)]);
    assert_eq!(h.core.durable(), Lsn::ZERO, "rows still in open batches");
    h.settle().await;
    // Order is per table; tables load in parallel.
    let changes = h.changes();
    let orders: Vec<_> = changes
        .iter()
        .filter(|c| c.0 == "orders")
        .cloned()
        .collect();
    assert_eq!(ids(&orders), vec!["1", "3"]);
    assert_eq!(changes.len(), 3);
    assert_eq!(h.core.durable(), Lsn(21));
    // First sight of each table is announced before its rows.
    let ops = h.sink.durable_ops();
    let first_orders = ops
        .iter()
        .position(|op| matches!(op, RecordedOp::SchemaChange { new, old: None } if new.name.name == "orders"))
        .unwrap();
    let first_batch = ops
        .iter()
        .position(|op| matches!(op, RecordedOp::Batch(b) if b.table.name.name == "orders"))
        .unwrap();
    assert!(first_orders < first_batch);
}

#[tokio::test]
async fn durable_position_waits_for_the_sink() {
    let mut h = Harness::new(limits());
    h.sink.hold();
    h.feed([
        relation(ORDERS, "orders", false),
        begin(10),
        insert(None, ORDERS, 1, "a"),
        commit(10),
    ]);
    h.core.flush_all(Instant::now()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        h.completions.try_recv().is_err(),
        "held sink answers nothing"
    );
    assert_eq!(h.core.durable(), Lsn::ZERO);
    h.core.on_keepalive(Lsn(999));
    assert_eq!(
        h.core.durable(),
        Lsn::ZERO,
        "no idle advance while work is pending"
    );
    h.sink.release();
    h.settle().await;
    // Once the load is done the keepalive received meanwhile is followed (not only at the
    // next keepalive, up to wal_sender_timeout / 2 later: lag_bytes showed WAL of other
    // tables until then).
    assert_eq!(h.core.durable(), Lsn(999));
    h.core.on_keepalive(Lsn(1500));
    assert_eq!(h.core.durable(), Lsn(1500), "idle: follows the keepalive");
}

fn stream_start(xid: u32) -> M {
    M::StreamStart {
        xid,
        first_segment: false,
    }
}

fn stream_commit(xid: u32, lsn: u64) -> M {
    M::StreamCommit {
        xid,
        flags: 0,
        commit_lsn: Lsn(lsn),
        end_lsn: Lsn(lsn + 1),
        commit_time: 0,
    }
}

fn stream_abort(xid: u32, subxid: u32) -> M {
    M::StreamAbort {
        xid,
        subxid,
        abort_lsn: None,
        abort_time: None,
    }
}

async fn streamed_transactions_scenario(spill_threshold: usize) {
    let mut h = Harness::new(PipelineLimits {
        spill_threshold,
        ..limits()
    });
    h.feed([relation(ORDERS, "orders", false)]);
    // xid 500 streams in two chunks, with a savepoint (subxid 501) rolled back.
    h.feed([
        stream_start(500),
        insert(Some(500), ORDERS, 1, "kept"),
        M::StreamStop,
    ]);
    // xid 600 streams and aborts entirely.
    h.feed([
        stream_start(600),
        insert(Some(600), ORDERS, 66, "gone"),
        M::StreamStop,
    ]);
    // A plain transaction commits in between.
    h.feed([begin(40), insert(None, ORDERS, 4, "plain"), commit(40)]);
    h.feed([
        stream_start(500),
        insert(Some(501), ORDERS, 2, "rolled back"),
        insert(Some(500), ORDERS, 3, "kept too"),
        M::StreamStop,
    ]);
    h.feed([stream_abort(500, 501), stream_abort(600, 600)]);
    h.feed([stream_commit(500, 50)]);
    while h.core.stats().assembler.streamed_open > 0 || !h.core.can_read() {
        h.core.pump(Instant::now()).unwrap();
    }
    h.settle().await;
    let changes = h.changes();
    assert_eq!(ids(&changes), vec!["4", "1", "3"]);
    assert_eq!(h.core.durable(), Lsn(51));
    let stats = h.core.stats().assembler;
    assert_eq!(stats.aborted_transactions, 1);
    assert_eq!(stats.aborted_subtransactions, 1);
    assert_eq!(stats.buffered_bytes, 0);
    if spill_threshold < 100 {
        assert!(stats.spilled_transactions >= 1, "{stats:?}");
    }
}

#[tokio::test]
async fn streamed_transactions_release_at_commit_and_drop_aborted_parts() {
    streamed_transactions_scenario(1 << 20).await;
}

#[tokio::test]
async fn spilled_streamed_transactions_give_the_same_result() {
    streamed_transactions_scenario(1).await;
}

#[tokio::test]
async fn a_large_streamed_transaction_is_replayed_within_the_memory_budget() {
    let mut h = Harness::new(PipelineLimits {
        spill_threshold: 64 * 1024,
        max_memory: 256 * 1024,
        batch: BatchLimits {
            max_rows: 500,
            max_bytes: 64 * 1024,
            max_wait: Duration::from_secs(3600),
        },
        ..limits()
    });
    h.feed([relation(ORDERS, "orders", false), stream_start(7)]);
    let note = "x".repeat(100);
    for id in 0..20_000 {
        h.feed([insert(Some(7), ORDERS, id, &note)]);
    }
    h.feed([M::StreamStop]);
    // Spilled bytes count while the transaction is still open, and not twice at commit.
    let spilling = h.core.stats().assembler.spilled_bytes;
    assert!(spilling > 1_000_000, "{spilling}");
    h.feed([stream_commit(7, 100)]);
    assert!(h.core.stats().assembler.spilled_transactions == 1);
    assert_eq!(h.core.stats().assembler.spilled_bytes, spilling);
    let mut peak = 0;
    let mut received = 0;
    loop {
        peak = peak.max(h.core.held_bytes());
        if h.core.can_read() && h.core.is_drained() {
            break;
        }
        if let Ok(completion) = h.completions.try_recv() {
            received += 1;
            h.core.on_completion(completion, Instant::now()).unwrap();
        } else if !h.core.can_read() && h.core.held_bytes() < 256 * 1024 {
            h.core.pump(Instant::now()).unwrap();
        } else {
            tokio::task::yield_now().await;
        }
        h.core.flush_all(Instant::now()).unwrap();
    }
    assert!(received > 10);
    assert!(peak <= 256 * 1024 + 64 * 1024, "peak {peak}");
    assert_eq!(h.sink.durable_changes().len(), 20_000);
    assert_eq!(h.core.durable(), Lsn(101));
}

#[tokio::test]
async fn backpressure_stops_reading_until_the_sink_catches_up() {
    let mut h = Harness::new(PipelineLimits {
        max_memory: 4 * 1024,
        ..limits()
    });
    h.sink.hold();
    h.feed([relation(ORDERS, "orders", false), begin(10)]);
    let mut fed = 0;
    while h.core.can_read() {
        h.feed([insert(None, ORDERS, fed, "payload payload payload")]);
        fed += 1;
        assert!(fed < 10_000, "never stopped reading");
    }
    assert!(h.core.held_bytes() >= 4 * 1024);
    h.sink.release();
    while !h.core.can_read() {
        let completion = h.completions.recv().await.unwrap();
        h.core.on_completion(completion, Instant::now()).unwrap();
    }
    h.feed([commit(10)]);
    h.settle().await;
    assert_eq!(h.sink.durable_changes().len(), fed as usize);
}

/// Memory full with many tables: the pipeline waits for the load in flight instead of cutting
/// every open batch, so loads stay large (each read used to refill one-row batches of every
/// table, and each load carried about one row).
#[tokio::test]
async fn under_memory_pressure_with_many_tables_loads_stay_large() {
    const TABLES: u32 = 10;
    let mut h = Harness::new(PipelineLimits {
        max_memory: 16 * 1024,
        max_in_flight: 1,
        ..limits()
    });
    h.feed((0..TABLES).map(|table| relation(1000 + table, &format!("t{table}"), false)));
    let mut fed = 0u32;
    let mut lsn = 10;
    for _ in 0..200 {
        while h.core.can_read() {
            h.feed([begin(lsn)]);
            for _ in 0..TABLES {
                h.feed([insert(None, 1000 + fed % TABLES, fed, "payload payload")]);
                fed += 1;
            }
            h.feed([commit(lsn)]);
            lsn += 10;
        }
        h.core.pump(Instant::now()).unwrap();
        let completion = tokio::time::timeout(Duration::from_secs(5), h.completions.recv())
            .await
            .expect("a load in flight")
            .expect("channel open");
        h.core.on_completion(completion, Instant::now()).unwrap();
    }
    h.settle().await;
    let loads = h
        .sink
        .durable_ops()
        .iter()
        .filter(|op| matches!(op, RecordedOp::Batch(_)))
        .count();
    assert_eq!(h.sink.durable_changes().len(), fed as usize);
    let rows_per_load = fed as usize / loads;
    assert!(
        rows_per_load >= 8,
        "{fed} rows in {loads} loads: {rows_per_load} rows per load"
    );
}

#[tokio::test]
async fn schema_changes_and_truncates_keep_stream_order_per_table() {
    let mut h = Harness::new(limits());
    h.feed([
        relation(ORDERS, "orders", false),
        begin(10),
        insert(None, ORDERS, 1, "old shape"),
    ]);
    h.feed([
        M::Truncate {
            xid: None,
            cascade: false,
            restart_identity: false,
            relation_oids: vec![ORDERS],
        },
        insert(None, ORDERS, 2, "after truncate"),
        commit(10),
    ]);
    h.feed([relation(ORDERS, "orders", true), begin(20)]);
    h.feed([M::Insert {
        xid: None,
        relation_oid: ORDERS,
        new: TupleData(vec![text("3"), text("new shape"), text("7")]),
    }]);
    h.feed([commit(20)]);
    h.settle().await;
    let kinds: Vec<String> = h
        .sink
        .durable_ops()
        .iter()
        .map(|op| match op {
            RecordedOp::Batch(batch) => format!("rows{}", batch.changes.len()),
            RecordedOp::Truncate(_) => "truncate".into(),
            RecordedOp::SchemaChange { old: None, .. } => "create".into(),
            RecordedOp::SchemaChange { new, .. } => format!("alter{}", new.columns.len()),
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["create", "rows1", "truncate", "rows1", "alter3", "rows1"]
    );
}

#[tokio::test]
async fn key_changing_updates_carry_the_old_key_and_unchanged_toast_stays_marked() {
    let mut h = Harness::new(limits());
    h.feed([relation(ORDERS, "orders", false), begin(10)]);
    h.feed([M::Update {
        xid: None,
        relation_oid: ORDERS,
        old: Some(OldTuple::Key(TupleData(vec![text("1"), TupleValue::Null]))),
        new: TupleData(vec![text("2"), TupleValue::UnchangedToast]),
    }]);
    h.feed([commit(10)]);
    h.settle().await;
    let changes = h.sink.durable_changes();
    assert_eq!(changes.len(), 1);
    let change = &changes[0];
    assert_eq!(change.kind, ChangeKind::Update);
    let Some(OldImage::Key(old)) = &change.old else {
        panic!("old key expected");
    };
    assert_eq!(old.values().0[0], text("1"));
    assert_eq!(
        change.new.as_ref().unwrap().values().0[1],
        TupleValue::UnchangedToast
    );
}

#[tokio::test]
async fn a_sink_error_stops_the_pipeline_without_acknowledging() {
    let mut h = Harness::new(limits());
    h.sink.fail_with("disk on fire");
    h.feed([
        relation(ORDERS, "orders", false),
        begin(10),
        insert(None, ORDERS, 1, "a"),
        commit(10),
    ]);
    h.core.flush_all(Instant::now()).unwrap();
    let completion = h.completions.recv().await.unwrap();
    let error = h
        .core
        .on_completion(completion, Instant::now())
        .unwrap_err();
    assert!(error.to_string().contains("disk on fire"), "{error}");
    assert_eq!(h.core.durable(), Lsn::ZERO);
}

#[test]
fn changes_for_unknown_relations_are_errors() {
    let (mut core, _completions) = StreamCore::new(
        Arc::new(RecordingSink::new()),
        Default::default(),
        limits(),
        std::env::temp_dir(),
        Lsn::ZERO,
    );
    core.on_message(begin(1), Instant::now()).unwrap();
    let error = core
        .on_message(insert(None, 999, 1, "x"), Instant::now())
        .unwrap_err();
    assert!(error.to_string().contains("999"), "{error}");
}

#[test]
fn a_table_told_to_slow_down_batches_longer_until_loads_pass_again() {
    let limits = BatchLimits {
        max_rows: 10,
        max_bytes: 1 << 20,
        max_wait: Duration::from_millis(500),
    };
    let mut batcher = Batcher::new(limits);
    assert_eq!(batcher.max_wait(ORDERS), Duration::from_millis(500));
    batcher.slow_down(ORDERS);
    batcher.slow_down(ORDERS);
    assert_eq!(batcher.max_wait(ORDERS), Duration::from_secs(2));
    assert_eq!(batcher.max_wait(ITEMS), Duration::from_millis(500));
    for _ in 0..10 {
        batcher.slow_down(ORDERS);
    }
    assert_eq!(
        batcher.max_wait(ORDERS),
        Duration::from_secs(8),
        "capped at 16×"
    );
    batcher.speed_up(ORDERS);
    assert_eq!(batcher.max_wait(ORDERS), Duration::from_secs(4));
    for _ in 0..5 {
        batcher.speed_up(ORDERS);
    }
    assert_eq!(batcher.max_wait(ORDERS), Duration::from_millis(500));
}

/// Waits for one completion and books it.
async fn complete_one(h: &mut Harness) {
    let completion = tokio::time::timeout(Duration::from_secs(5), h.completions.recv())
        .await
        .expect("sink completes")
        .expect("channel open");
    h.core.on_completion(completion, Instant::now()).unwrap();
}

/// Flushes every batch and completes the loads that start (held tables' batches stay held).
async fn flush_loadable(h: &mut Harness) {
    h.core.flush_all(Instant::now()).unwrap();
    while h.core.loads_in_flight() > 0 {
        complete_one(h).await;
    }
}

#[tokio::test]
async fn a_held_table_waits_for_its_earlier_loads_then_holds_its_changes_and_the_durable_position()
{
    let mut h = Harness::new(limits());
    h.feed([
        relation(ORDERS, "orders", false),
        relation(ITEMS, "items", false),
        begin(10),
        insert(None, ORDERS, 1, "before"),
        commit(10),
    ]);
    h.sink.hold();
    h.core.flush_all(Instant::now()).unwrap();
    h.core.hold_table(ORDERS);
    assert!(
        !h.core.is_table_quiet(ORDERS),
        "the load from before the hold is in flight"
    );
    h.feed([
        begin(20),
        insert(None, ORDERS, 2, "held"),
        commit(20),
        begin(30),
        insert(None, ITEMS, 3, "flows"),
        commit(30),
    ]);
    h.core.flush_all(Instant::now()).unwrap();
    h.sink.release();
    for _ in 0..3 {
        complete_one(&mut h).await;
    }
    assert!(h.core.is_table_quiet(ORDERS));
    assert_eq!(h.core.held_for(ORDERS).0, 1, "one batch waits");
    assert_eq!(
        ids(&h.changes()),
        vec!["1", "3"],
        "items flowed, orders waited"
    );
    assert_eq!(
        h.core.durable(),
        Lsn(11),
        "the durable position stays before the held change"
    );
    h.core.release_table(ORDERS, Instant::now()).unwrap();
    h.settle().await;
    assert_eq!(ids(&h.changes()), vec!["1", "3", "2"]);
    assert_eq!(h.core.durable(), Lsn(31));
}

#[tokio::test]
async fn an_unknown_table_first_seen_by_its_truncate_is_held_from_there() {
    let mut h = Harness::new(limits());
    h.core.watch_unknown_tables(["public.orders".to_string()]);
    h.feed([
        relation(ORDERS, "orders", false),
        relation(ITEMS, "items", false),
        begin(10),
        M::Truncate {
            xid: None,
            cascade: false,
            restart_identity: false,
            relation_oids: vec![ITEMS],
        },
        insert(None, ORDERS, 1, "known"),
        commit(10),
        begin(20),
        insert(None, ITEMS, 2, "new table"),
        commit(20),
    ]);
    let unknown = h.core.take_unknown_tables();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].name.to_string(), "public.items");
    flush_loadable(&mut h).await;
    let truncated = h
        .sink
        .durable_ops()
        .iter()
        .any(|op| matches!(op, RecordedOp::Truncate(_)));
    assert!(!truncated, "the TRUNCATE waits for the table's snapshot");
    assert_eq!(ids(&h.changes()), vec!["1"]);
    assert_eq!(
        h.core.durable(),
        Lsn::ZERO,
        "nothing passes the held TRUNCATE"
    );
}

#[tokio::test]
async fn changes_of_an_unknown_table_are_held_and_reported_once() {
    let mut h = Harness::new(limits());
    h.core.watch_unknown_tables(["public.orders".to_string()]);
    h.feed([
        relation(ORDERS, "orders", false),
        relation(ITEMS, "items", false),
        begin(10),
        insert(None, ORDERS, 1, "known"),
        insert(None, ITEMS, 2, "new table"),
        commit(10),
        begin(20),
        insert(None, ITEMS, 3, "new table"),
        commit(20),
    ]);
    let unknown = h.core.take_unknown_tables();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].name.to_string(), "public.items");
    assert!(h.core.take_unknown_tables().is_empty());
    flush_loadable(&mut h).await;
    assert_eq!(ids(&h.changes()), vec!["1"]);
    assert_eq!(h.core.durable(), Lsn::ZERO);
    // Shutdown: what waits is dropped, never acknowledged.
    h.core.discard_held();
    assert!(h.core.is_drained());
    assert_eq!(h.core.durable(), Lsn::ZERO);
}

#[tokio::test]
async fn a_skipped_table_is_acknowledged_without_the_sink_until_it_is_held_again() {
    let mut h = Harness::new(limits());
    h.core.watch_unknown_tables(["public.orders".to_string()]);
    h.feed([
        relation(ORDERS, "orders", false),
        relation(ITEMS, "items", false),
        begin(10),
        insert(None, ORDERS, 1, "known"),
        insert(None, ITEMS, 2, "not replicated"),
        commit(10),
    ]);
    assert_eq!(h.core.take_unknown_tables().len(), 1);
    flush_loadable(&mut h).await;
    assert_eq!(h.core.durable(), Lsn::ZERO, "held: not acknowledged");
    h.core.skip_table(ITEMS, Instant::now()).unwrap();
    h.feed([
        begin(20),
        insert(None, ITEMS, 3, "not replicated"),
        commit(20),
    ]);
    h.settle().await;
    assert_eq!(ids(&h.changes()), vec!["1"], "the sink saw only orders");
    assert_eq!(
        h.core.durable(),
        Lsn(21),
        "the skipped changes are acknowledged"
    );
    assert!(!h.core.table_counters().contains_key("public.items"));
    // Held again (published again and copied): its changes wait for the copy once more.
    h.core.hold_table(ITEMS);
    h.feed([begin(30), insert(None, ITEMS, 4, "copied"), commit(30)]);
    flush_loadable(&mut h).await;
    assert_eq!(h.core.durable(), Lsn(21));
    h.core.release_table(ITEMS, Instant::now()).unwrap();
    h.settle().await;
    assert_eq!(ids(&h.changes()), vec!["1", "4"]);
    assert_eq!(h.core.durable(), Lsn(31));
}

#[tokio::test]
async fn held_batches_past_the_spill_threshold_go_to_disk_and_come_back_in_order() {
    let mut limits = limits();
    limits.batch.max_rows = 10;
    limits.spill_threshold = 1_000;
    let mut h = Harness::new(limits);
    h.feed([relation(ORDERS, "orders", false)]);
    h.core.hold_table(ORDERS);
    for id in 1..=120u32 {
        let lsn = u64::from(id) * 10;
        h.feed([begin(lsn), insert(None, ORDERS, id, "held"), commit(lsn)]);
    }
    h.core.flush_all(Instant::now()).unwrap();
    let (ops, bytes) = h.core.held_for(ORDERS);
    assert!(ops >= 12, "{ops} operations held");
    assert!(
        h.core.held_bytes() < bytes / 2,
        "most held bytes are on disk: {} in memory of {bytes}",
        h.core.held_bytes()
    );
    let spill_dir = h._spill.0.clone();
    let spilled = || {
        std::fs::read_dir(&spill_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|entry| entry.file_name().to_string_lossy().starts_with("held-"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(spilled(), 1, "one spill file for the hold");
    assert_eq!(h.core.durable(), Lsn::ZERO);
    h.core.release_table(ORDERS, Instant::now()).unwrap();
    h.settle().await;
    let expected: Vec<String> = (1..=120).map(|id| id.to_string()).collect();
    assert_eq!(ids(&h.changes()), expected);
    assert_eq!(h.core.durable(), Lsn(1201));
    assert_eq!(spilled(), 0, "read back and removed");
}

#[tokio::test]
async fn discarding_a_spilled_hold_removes_its_files_and_acknowledges_nothing() {
    let mut limits = limits();
    limits.batch.max_rows = 10;
    limits.spill_threshold = 1_000;
    let mut h = Harness::new(limits);
    h.feed([relation(ORDERS, "orders", false)]);
    h.core.hold_table(ORDERS);
    for id in 1..=80u32 {
        let lsn = u64::from(id) * 10;
        h.feed([begin(lsn), insert(None, ORDERS, id, "held"), commit(lsn)]);
    }
    h.core.flush_all(Instant::now()).unwrap();
    let spill_dir = h._spill.0.clone();
    let files = || std::fs::read_dir(&spill_dir).map_or(0, |dir| dir.count());
    assert_eq!(files(), 1);
    h.core.discard_held();
    assert_eq!(files(), 0);
    assert!(h.core.is_drained());
    assert_eq!(h.core.held_bytes(), 0);
    assert_eq!(h.core.durable(), Lsn::ZERO);
}

#[tokio::test]
async fn replicated_truncates_and_the_applied_position_are_tracked() {
    let mut h = Harness::new(limits());
    h.feed([relation(ORDERS, "orders", false), begin(10)]);
    h.feed([M::Truncate {
        xid: None,
        cascade: false,
        restart_identity: false,
        relation_oids: vec![ORDERS],
    }]);
    // Open transaction: a keepalive past it says nothing about what was applied.
    h.core.on_keepalive(Lsn(50));
    assert_eq!(h.core.applied_through(), Lsn::ZERO);
    h.feed([commit(10)]);
    assert_eq!(h.core.last_truncate("public.orders"), Some(Lsn(10)));
    assert_eq!(h.core.last_truncate("public.items"), None);
    assert_eq!(h.core.applied_through(), Lsn(11), "the commit's end");
    h.core.on_keepalive(Lsn(60));
    assert_eq!(
        h.core.applied_through(),
        Lsn(60),
        "idle: up to the keepalive"
    );
    h.core.on_keepalive(Lsn(40));
    assert_eq!(h.core.applied_through(), Lsn(60), "never backwards");
}
