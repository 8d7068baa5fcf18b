//! Snapshots of one table while the stream keeps running for the others (DESIGN §5, the
//! ordering rule): `POST /snapshot?table=` and `dbmazz snapshot --table`, tables added to the
//! publication later, and the CLI's refusals. Real PostgreSQL, the in-process emulator.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbmazz::checkpoint::{SnapshotState, StateFile};
use dbmazz::config::{Config, HumanDuration, SnapshotMode};
use dbmazz::local_pg::LocalPg;
use dbmazz::monitor::ApiUrl;
use dbmazz::ops::{self, SnapshotAnswer, Telemetry};
use dbmazz::replicator::{self, RunContext, RunError};
use dbmazz::schema::{TableName, TableSchema};
use dbmazz::sink::starrocks::{
    DeleteMode, LoadFailure, LoadRequest, Loader, StarRocksDdl, StarRocksSink,
};
use dbmazz::sink::{Batch, BatchOrigin, Sink, SinkError};
use dbmazz::snapshot::SnapshotProgress;
use dbmazz::Lsn;
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle, TxnState};
use tokio::sync::watch;

use crate::support::starrocks::{
    confirmed_flush, sink_options, sr_rows, wait_identical_in, EmulatorLoader,
};
use crate::support::{
    eventually, new_database, stream_config, wait_for_streaming, TempDir, PG_VERSIONS,
};

/// Slows snapshot loads down (stream loads untouched), so a test can watch a snapshot while
/// it runs.
struct SlowSnapshots<S> {
    inner: S,
    delay: Duration,
}

impl<S: Sink> Sink for SlowSnapshots<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), SinkError> {
        if matches!(batch.origin, BatchOrigin::Snapshot { .. }) {
            tokio::time::sleep(self.delay).await;
        }
        self.inner.write_batch(batch).await
    }

    async fn truncate(&self, table: &Arc<TableSchema>) -> Result<(), SinkError> {
        self.inner.truncate(table).await
    }

    async fn apply_schema_change(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        self.inner.apply_schema_change(old, new).await
    }

    fn take_slow_down(&self, relation_oid: u32) -> bool {
        self.inner.take_slow_down(relation_oid)
    }

    async fn holds_rows(&self, table: &Arc<TableSchema>) -> Option<bool> {
        self.inner.holds_rows(table).await
    }

    async fn has_table(&self, table: &TableName) -> Option<bool> {
        self.inner.has_table(table).await
    }

    fn fill_unsent_before(&self, table: &TableName, before: Lsn) {
        self.inner.fill_unsent_before(table, before)
    }

    fn forget_table(&self, table: &TableName) {
        self.inner.forget_table(table)
    }
}

/// The in-process loader, resolving "Label Already Exists" by the label's state as the HTTP
/// loader does (a restart replays loads the slot had not acknowledged yet).
struct ReplayingLoader(EmulatorLoader);

impl Loader for ReplayingLoader {
    async fn load(&self, request: LoadRequest) -> Result<(), LoadFailure> {
        let label = request.label.clone();
        match self.0.load(request).await {
            Err(failure) if failure.message.starts_with("LabelAlreadyExists") => {
                match self.0.emulator.label_state(&self.0.database, &label) {
                    Some(TxnState::Committed | TxnState::Visible) => Ok(()),
                    _ => Err(failure),
                }
            }
            other => other,
        }
    }
}

pub(crate) struct Running {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<replicator::RunSummary, RunError>>,
    pub(crate) progress: Arc<SnapshotProgress>,
    pub(crate) api: ApiUrl,
    _http: ops::HttpServer,
}

impl Running {
    pub(crate) async fn stop(self) {
        self.shutdown.send_replace(true);
        self.task
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("{error}"));
    }

    /// The error the replicator stops with on its own (within a minute).
    pub(crate) async fn failure(self) -> RunError {
        match tokio::time::timeout(Duration::from_secs(60), self.task).await {
            Ok(Ok(Err(error))) => error,
            Ok(outcome) => panic!("the replicator ended without an error: {outcome:?}"),
            Err(_) => panic!("the replicator did not stop within 60 s"),
        }
    }

    /// Whether `table`'s snapshot taken while streaming is loaded and released.
    fn table_done(&self, table: &str) -> bool {
        assert!(!self.task.is_finished(), "the replicator stopped");
        self.progress
            .report()
            .tables
            .iter()
            .any(|figures| figures.table == table && figures.done)
    }

    pub(crate) async fn wait_table_done(&mut self, table: &str, timeout: Duration) {
        eventually(timeout, &format!("the snapshot of {table}"), || async {
            (self.task.is_finished() || self.table_done(table)).then_some(())
        })
        .await;
        if self.task.is_finished() {
            let outcome = (&mut self.task).await.unwrap();
            panic!("the replicator stopped: {outcome:?}");
        }
    }
}

/// Streams `tables` of database `shop` into the emulator with an HTTP API on a free port;
/// snapshot loads wait `snapshot_delay` each.
pub(crate) async fn start(
    pg: &LocalPg,
    emulator: &Arc<EmulatorHandle>,
    tables: &[&str],
    state: &TempDir,
    snapshot_delay: Duration,
    tweak: impl FnOnce(&mut Config),
) -> Running {
    let mut config = stream_config(pg, "shop", tables, state);
    config.snapshot.parallelism = 2;
    tweak(&mut config);
    let mysql = emulator.mysql_addr().unwrap().to_string();
    let ddl = StarRocksDdl::connect(&mysql, "root", "", "shop")
        .await
        .unwrap();
    let loader = EmulatorLoader {
        emulator: Arc::clone(emulator),
        database: "shop".into(),
    };
    // As `dbmazz run` builds it: values PostgreSQL did not send are read from it.
    let inner = StarRocksSink::new(ddl, ReplayingLoader(loader), sink_options(DeleteMode::Hard))
        .with_source_rows(config.source_connect().ok());
    let sink = SlowSnapshots {
        inner,
        delay: snapshot_delay,
    };
    let telemetry = Telemetry::new();
    let http = ops::serve("127.0.0.1:0", Arc::clone(&telemetry))
        .await
        .unwrap();
    let api = ApiUrl::parse(&http.local_addr().to_string()).unwrap();
    let progress = SnapshotProgress::new();
    let (shutdown, receiver) = watch::channel(false);
    let context = RunContext::new(receiver)
        .with_telemetry(telemetry)
        .with_snapshot_progress(Arc::clone(&progress));
    let task = tokio::spawn(async move { replicator::run(&config, Arc::new(sink), context).await });
    Running {
        shutdown,
        task,
        progress,
        api,
        _http: http,
    }
}

/// The tables most snapshot tests start from: 20,000 `orders` (several 8-page chunks) and an
/// empty `items` that keeps streaming beside it.
pub(crate) const ORDERS_AND_ITEMS: &str =
    "CREATE TABLE orders (id int PRIMARY KEY, v int, note text);
     INSERT INTO orders SELECT g, g, md5(g::text) FROM generate_series(1, 20000) g;
     CREATE TABLE items (id int PRIMARY KEY, qty int);";

/// What [`orders_and_items`] started.
pub(crate) struct Setup {
    pub pg: LocalPg,
    pub emulator: Arc<EmulatorHandle>,
    pub state: TempDir,
    pub running: Running,
}

/// [`ORDERS_AND_ITEMS`] plus `extra_sql` in a fresh database of PostgreSQL `major`, the
/// emulator, and dbmazz streaming both tables ([`start`]) under [`several_chunks_no_initial`]
/// and then `tweak`.
pub(crate) async fn orders_and_items(
    major: u32,
    extra_sql: &str,
    state_name: &str,
    snapshot_delay: Duration,
    tweak: impl FnOnce(&mut Config),
) -> Setup {
    let pg = new_database(major, &format!("{ORDERS_AND_ITEMS}\n{extra_sql}"));
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new(state_name);
    let tables = ["public.orders", "public.items"];
    let settings = |config: &mut Config| {
        several_chunks_no_initial(config);
        tweak(config);
    };
    let running = start(&pg, &emulator, &tables, &state, snapshot_delay, settings).await;
    Setup {
        pg,
        emulator,
        state,
        running,
    }
}

/// No initial snapshot, and `orders` cut into several 8-page chunks.
pub(crate) fn several_chunks_no_initial(config: &mut Config) {
    config.snapshot.mode = SnapshotMode::Never;
    config.snapshot.chunk_pages = 8;
}

fn insert_lsn(pg: &LocalPg) -> Lsn {
    pg.psql("shop", "SELECT pg_current_wal_insert_lsn()")
        .unwrap()
        .parse()
        .unwrap()
}

async fn sr_count(emulator: &EmulatorHandle, table: &str) -> u64 {
    sr_rows(emulator, "shop", &format!("SELECT count(*) FROM {table}"))
        .await
        .first()
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

pub(crate) async fn wait_same(pg: &LocalPg, emulator: &EmulatorHandle, sql: &str) {
    wait_identical_in(pg, emulator, "shop", sql, sql, Duration::from_secs(60)).await;
}

/// Keeps changing `orders` (existing keys: updates, deletes) and `items` (inserts, updates)
/// in small transactions until `stop`.
fn spawn_writer(
    url: String,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let connect = dbmazz::source::PgConnectConfig::from_url(&url).unwrap();
        let client = dbmazz::source::connect_sql(&connect).await.unwrap();
        let mut round: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            let id = (round * 7919) % 20_000 + 1;
            let script = format!(
                "UPDATE orders SET v = v + 1, note = 'w{round}' WHERE id BETWEEN {id} AND {id} + 5;
                 DELETE FROM orders WHERE id = {gone};
                 INSERT INTO orders VALUES ({new}, 0, 'new') ON CONFLICT (id) DO NOTHING;
                 INSERT INTO items VALUES ({round}, 1);
                 UPDATE items SET qty = qty + 1 WHERE id = {item};",
                gone = (round * 104_729) % 20_000 + 1,
                new = 100_000 + round,
                item = round / 2 + 1,
            );
            client.batch_execute(&script).await.unwrap();
            rounds.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    })
}

/// (a) `orders` was never copied (snapshot.mode = never) while writers change `orders` and
/// `items`; `POST /snapshot?table=public.orders` copies it while `items` keeps streaming, the
/// slot's confirmed position never passes a held change, and both tables end identical. Then
/// `dbmazz snapshot --table public.items --wait` (the binary) re-copies `items`, and an unknown
/// table is refused. About 10 s per PostgreSQL version in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_resnapshotted_while_others_stream_ends_identical() {
    for major in PG_VERSIONS {
        resnapshot_while_streaming(major).await;
    }
}

async fn resnapshot_while_streaming(major: u32) {
    let tweak = |config: &mut Config| {
        // Held changes past 64 KiB go to disk.
        config.pipeline.spill_threshold = dbmazz::config::ByteSize(64 * 1024);
    };
    let Setup {
        pg,
        emulator,
        state,
        running,
    } = orders_and_items(
        major,
        "",
        "dbmazz-resnapshot",
        Duration::from_millis(150),
        tweak,
    )
    .await;
    wait_for_streaming(&pg).await;
    let (stop, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let writer = spawn_writer(pg.url("shop"), Arc::clone(&stop), Arc::clone(&rounds));
    eventually(Duration::from_secs(30), "items streamed", || async {
        (sr_count(&emulator, "items").await > 10).then_some(())
    })
    .await;
    assert!(
        sr_count(&emulator, "orders").await < 20_000,
        "orders was never copied"
    );

    let (epoch, chunks) = request_accepted(&running.api, "public.orders", false).await;
    assert!(chunks >= 4, "several chunks: {chunks}");
    let again = running.api.request_snapshot("orders", false).await.unwrap();
    assert!(
        matches!(again, SnapshotAnswer::AlreadyRunning { .. }),
        "{again:?}"
    );
    // Committed after the hold began: held until the copy is loaded.
    pg.psql("shop", "UPDATE orders SET note = 'held' WHERE id = 2")
        .unwrap();
    let held_change_bound = insert_lsn(&pg);
    let items_before = sr_count(&emulator, "items").await;
    let started = Instant::now();
    let mut samples = 0;
    let mut most_held = 0;
    let mut spill_files_seen = false;
    while !running.table_done("public.orders") {
        spill_files_seen |= std::fs::read_dir(state.0.join("spill")).is_ok_and(|dir| {
            dir.filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().starts_with("held-"))
        });
        let report = running.progress.report();
        if let Some(orders) = report.tables.iter().find(|t| t.table == "public.orders") {
            most_held = most_held.max(orders.held_bytes);
        }
        if let Some(confirmed) = confirmed_flush(&pg, "shop", "test_slot") {
            // Judged only if the table is still not done after the slot was read: the copy may
            // end (and the held changes go out) while psql runs, and then the slot may pass.
            if !running.table_done("public.orders") {
                assert!(
                    confirmed <= held_change_bound,
                    "the slot passed a held change: confirmed {confirmed} > {held_change_bound}"
                );
                samples += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "snapshot too slow"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items_during = sr_count(&emulator, "items").await - items_before;
    println!(
        "PG {major}: snapshot of orders (epoch {epoch}, {chunks} chunks) took {:.1}s; \
         {samples} slot samples; {items_during} items rows streamed meanwhile; \
         up to {most_held} bytes held",
        started.elapsed().as_secs_f64()
    );
    assert!(samples >= 3, "the snapshot was watched while it ran");
    assert!(items_during > 0, "items kept streaming during the snapshot");
    assert!(
        spill_files_seen,
        "held changes past spill_threshold went to disk ({most_held} bytes held)"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    wait_same(&pg, &emulator, "SELECT id, v, note FROM orders ORDER BY id").await;
    wait_same(&pg, &emulator, "SELECT id, qty FROM items ORDER BY id").await;
    eventually(Duration::from_secs(10), "the slot to move on", || async {
        (confirmed_flush(&pg, "shop", "test_slot")? > held_change_bound).then_some(())
    })
    .await;

    // Through the binary: items again with --replace, waiting for it (a row that exists only
    // in StarRocks goes); then an unknown table.
    emulator
        .execute_sql(Some("shop"), "INSERT INTO items VALUES (999999999, 7)")
        .await
        .unwrap();
    let url = running.api.to_string();
    let args = [
        "--table",
        "public.items",
        "--url",
        &url,
        "--wait",
        "--replace",
    ];
    let output = run_cli(&args).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("accepted")
            && stdout.contains("emptied first")
            && stdout.contains("loaded"),
        "{stdout}"
    );
    wait_same(&pg, &emulator, "SELECT id, qty FROM items ORDER BY id").await;
    let output = run_cli(&["--table", "public.nope", "--api", &url]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not in publication"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    running.stop().await;
    let recorded = StateFile::load(&state.0).unwrap().unwrap();
    let epochs: Vec<(String, u64, bool, bool)> = recorded
        .table_snapshots
        .iter()
        .map(|plan| {
            let table = plan.tables[0].table.clone();
            (table, plan.epoch, plan.is_finished(), plan.emptied)
        })
        .collect();
    assert_eq!(
        epochs,
        [
            ("public.orders".to_string(), epoch, true, false),
            ("public.items".to_string(), epoch + 1, true, true)
        ]
    );
}

/// The first snapshot of one table recorded in the state file in `state_dir`.
pub(crate) fn first_table_snapshot(state_dir: &Path) -> Option<SnapshotState> {
    StateFile::load(state_dir)
        .ok()
        .flatten()
        .and_then(|file| file.table_snapshots.first().cloned())
}

/// Waits until that snapshot, of an epoch past `after_epoch`, has `chunks` chunks done.
pub(crate) async fn wait_table_chunks(state_dir: &Path, after_epoch: u64, chunks: usize) {
    eventually(
        Duration::from_secs(30),
        &format!("{chunks} chunks recorded"),
        || async {
            first_table_snapshot(state_dir)
                .filter(|plan| plan.epoch > after_epoch && plan.done_count() >= chunks)
                .map(drop)
        },
    )
    .await;
}

/// Asks for a snapshot of `table` and expects it accepted; returns its epoch and chunk count.
/// Right after the slot turns active the replicator may not have registered its request
/// channel yet ("not streaming yet"): ask again until it has.
pub(crate) async fn request_accepted(api: &ApiUrl, table: &str, replace: bool) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = api.request_snapshot(table, replace).await.unwrap();
        match answer {
            SnapshotAnswer::Accepted { epoch, chunks, .. } => return (epoch, chunks),
            SnapshotAnswer::Unavailable { .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("snapshot of {table} not accepted: {other:?}"),
        }
    }
}

/// [`run_cli`], asked again while dbmazz answers "not streaming yet".
async fn run_cli_when_streaming(args: &[&str]) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = run_cli(args).await;
        let early = String::from_utf8_lossy(&output.stderr).contains("not streaming yet");
        if output.status.success() || !early || Instant::now() > deadline {
            return output;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_cli(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dbmazz"))
            .arg("snapshot")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// (b) A table added to the publication while dbmazz streams, with rows already in it, ends
/// identical (rows from before it was added included); one added while dbmazz is stopped is
/// copied at the next start, without any change to it. About 4 s per version in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_added_to_the_publication_later_are_snapshotted() {
    for major in PG_VERSIONS {
        added_later(major).await;
    }
}

async fn added_later(major: u32) {
    let pg = new_database(
        major,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 100) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-added-later");
    let tweak = |config: &mut Config| config.snapshot.chunk_pages = 4;
    let mut running = start(&pg, &emulator, &["public.a"], &state, Duration::ZERO, tweak).await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "CREATE TABLE late (id int PRIMARY KEY, v text);
         INSERT INTO late SELECT g, 'old' || g FROM generate_series(1, 3000) g;
         ALTER PUBLICATION test_pub ADD TABLE late;
         UPDATE late SET v = 'new' WHERE id <= 10;
         INSERT INTO late VALUES (5000, 'x');
         DELETE FROM late WHERE id = 20;
         INSERT INTO a VALUES (1000, 'z');",
    )
    .unwrap();
    wait_same(&pg, &emulator, "SELECT id, v FROM late ORDER BY id").await;
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    running
        .wait_table_done("public.late", Duration::from_secs(30))
        .await;
    running.stop().await;
    let recorded = StateFile::load(&state.0).unwrap().unwrap();
    let known = recorded.known_tables.clone().unwrap();
    assert!(
        known.contains("public.late") && known.contains("public.a"),
        "{known:?}"
    );
    assert!(recorded
        .table_snapshots
        .iter()
        .all(|plan| plan.is_finished()));

    pg.psql(
        "shop",
        "CREATE TABLE later (id int PRIMARY KEY, n int);
         INSERT INTO later SELECT g, g * 2 FROM generate_series(1, 500) g;
         ALTER PUBLICATION test_pub ADD TABLE later;",
    )
    .unwrap();
    let mut running = start(&pg, &emulator, &["public.a"], &state, Duration::ZERO, tweak).await;
    wait_same(&pg, &emulator, "SELECT id, n FROM later ORDER BY id").await;
    running
        .wait_table_done("public.later", Duration::from_secs(30))
        .await;
    wait_for_streaming(&pg).await;
    pg.psql("shop", "UPDATE later SET n = -1 WHERE id = 7")
        .unwrap();
    wait_same(&pg, &emulator, "SELECT id, n FROM later ORDER BY id").await;
    running.stop().await;
}

/// A table added to the publication that no change touches afterwards is copied at the next
/// catalog check, not left empty until its first change or the next start. About 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_table_added_to_the_publication_is_copied() {
    let pg = new_database(
        15,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         INSERT INTO a VALUES (1, 'x');",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-quiet-added");
    let tweak = |config: &mut Config| {
        config.snapshot.chunk_pages = 4;
        config.snapshot.partition_check_interval = HumanDuration(Duration::from_millis(300));
    };
    let mut running = start(&pg, &emulator, &["public.a"], &state, Duration::ZERO, tweak).await;
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "CREATE TABLE quiet (id int PRIMARY KEY, v text);
         INSERT INTO quiet SELECT g, 'q' || g FROM generate_series(1, 2000) g;
         ALTER PUBLICATION test_pub ADD TABLE quiet;",
    )
    .unwrap();
    running
        .wait_table_done("public.quiet", Duration::from_secs(30))
        .await;
    wait_same(&pg, &emulator, "SELECT id, v FROM quiet ORDER BY id").await;
    // Its later changes stream as any table's.
    pg.psql("shop", "UPDATE quiet SET v = 'streamed' WHERE id = 7")
        .unwrap();
    wait_same(&pg, &emulator, "SELECT id, v FROM quiet ORDER BY id").await;
    running.stop().await;
    let known = StateFile::load(&state.0)
        .unwrap()
        .unwrap()
        .known_tables
        .unwrap();
    assert!(known.contains("public.quiet"), "{known:?}");
}

/// A table without a key published while dbmazz streams stops it (nothing to key it by);
/// once the table is removed from the publication, the next start skips its changes that are
/// still in the slot instead of failing on them again, and the slot moves past them. About
/// 3 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_table_unpublished_after_the_stop_no_longer_blocks_the_stream() {
    let pg = new_database(
        15,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         INSERT INTO a VALUES (1, 'x');",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-keyless-unpublished");
    let only_a = ["public.a"];
    let running = start(&pg, &emulator, &only_a, &state, Duration::ZERO, |_| {}).await;
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "CREATE TABLE loose (v text);
         ALTER PUBLICATION test_pub ADD TABLE loose;
         INSERT INTO loose VALUES ('l1'), ('l2');
         INSERT INTO a VALUES (2, 'y');",
    )
    .unwrap();
    let error = running.failure().await.to_string();
    assert!(
        error.contains("public.loose") && error.contains("no key columns"),
        "{error}"
    );

    pg.psql(
        "shop",
        "ALTER PUBLICATION test_pub DROP TABLE loose;
         INSERT INTO loose VALUES ('l3');
         INSERT INTO a VALUES (3, 'z');",
    )
    .unwrap();
    let after_writes = insert_lsn(&pg);
    for _ in 0..2 {
        let running = start(&pg, &emulator, &only_a, &state, Duration::ZERO, |_| {}).await;
        wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
        wait_for_streaming(&pg).await;
        running.stop().await;
    }
    let tables = sr_rows(&emulator, "shop", "SHOW TABLES").await;
    assert_eq!(tables, ["a"]);
    // The last write (into `a`) is durable, so the slot is past the skipped ones before it.
    let confirmed = confirmed_flush(&pg, "shop", "test_slot");
    assert!(
        confirmed.is_some_and(|lsn| lsn.0 + 256 >= after_writes.0),
        "the slot stayed behind: {confirmed:?} vs {after_writes}"
    );
}

/// A table snapshot reads its chunks in fresh transactions, one after another: an UPDATE that
/// leaves a TOASTed value unchanged and moves its row from a chunk not read yet into one read
/// already hides the row from the copy, and the held UPDATE comes without that value. It is
/// read from PostgreSQL instead of the row being created with the column NULL. About 6 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_moved_into_a_copied_chunk_keeps_its_unchanged_toast_value() {
    let pg = new_database(
        15,
        "CREATE TABLE t3 (id int PRIMARY KEY, k int, pad text, big text);
         INSERT INTO t3 SELECT g, 0, repeat('p', 100), CASE WHEN g % 500 = 0 THEN
           (SELECT string_agg(md5((g + i)::text), '') FROM generate_series(1, 500) i) END
         FROM generate_series(1, 10000) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-moved-toast");
    let tweak = |config: &mut Config| {
        several_chunks_no_initial(config);
        config.snapshot.parallelism = 1;
    };
    let delay = Duration::from_millis(300);
    let mut running = start(&pg, &emulator, &["public.t3"], &state, delay, tweak).await;
    wait_for_streaming(&pg).await;
    let (epoch, chunks) = request_accepted(&running.api, "public.t3", false).await;
    assert!(chunks > 10, "{chunks} chunks");
    wait_table_chunks(&state.0, epoch - 1, 1).await;
    // Room in the first pages (reclaimed once no chunk transaction from before the DELETE
    // is open), then row 8000, far from the chunks read, updated into it.
    pg.psql("shop", "DELETE FROM t3 WHERE id <= 464").unwrap();
    wait_table_chunks(&state.0, epoch - 1, 3).await;
    pg.psql(
        "shop",
        "VACUUM t3; UPDATE t3 SET k = k + 1 WHERE id = 8000;",
    )
    .unwrap();
    let page: u32 = pg
        .psql(
            "shop",
            "SELECT (ctid::text::point)[0]::int FROM t3 WHERE id = 8000",
        )
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        page < 8,
        "row 8000 did not move into the first chunk: page {page}"
    );
    let copied = first_table_snapshot(&state.0).unwrap();
    assert!(
        copied.done_count() < copied.chunk_count(),
        "the copy ended before the row moved"
    );
    running
        .wait_table_done("public.t3", Duration::from_secs(60))
        .await;
    wait_same(
        &pg,
        &emulator,
        "SELECT id, k, length(big) FROM t3 ORDER BY id",
    )
    .await;
    running.stop().await;
}

/// Tables dropped during an unfinished initial snapshot are let go with a warning, not a stop
/// at every start: one dropped while dbmazz is stopped leaves the resumed plan, one dropped
/// while its chunks wait leaves it when its first chunk finds it gone. About 6 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_dropped_during_an_unfinished_snapshot_are_let_go() {
    let pg = new_database(
        15,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         INSERT INTO a SELECT g, repeat('a', 100) FROM generate_series(1, 3000) g;
         CREATE TABLE b (id int PRIMARY KEY, v text);
         INSERT INTO b SELECT g, 'b' FROM generate_series(1, 3000) g;
         CREATE TABLE c (id int PRIMARY KEY, v text);
         INSERT INTO c SELECT g, 'c' FROM generate_series(1, 3000) g;
         CREATE PUBLICATION test_pub FOR TABLE a, b, c;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-dropped-mid-snapshot");
    // Every table of the publication (a dropped table leaves it).
    let tables: [&str; 0] = [];
    let tweak = |config: &mut Config| {
        config.snapshot.chunk_pages = 8;
        config.snapshot.parallelism = 1;
    };
    let delay = Duration::from_millis(200);
    let initial_done = |dir: &Path| {
        StateFile::load(dir)
            .ok()
            .flatten()
            .and_then(|file| file.snapshot)
            .map_or(0, |plan| plan.done_count())
    };
    let running = start(&pg, &emulator, &tables, &state, delay, tweak).await;
    eventually(Duration::from_secs(30), "a first chunk", || async {
        (initial_done(&state.0) >= 1).then_some(())
    })
    .await;
    // The slot's figures are there during the snapshot too (it holds WAL meanwhile).
    eventually(
        Duration::from_secs(10),
        "slot figures in /status",
        || async {
            let text = running.api.status_text().await.ok()?;
            let status: serde_json::Value = serde_json::from_str(&text).ok()?;
            let slot_read = status["slot"]["retained_wal_bytes"].is_u64();
            let start = status["lsn"]["start"]
                .as_str()
                .is_some_and(|lsn| lsn.contains('/'));
            let snapshotting = status["state"] == "snapshotting";
            (slot_read && start && snapshotting).then_some(())
        },
    )
    .await;
    running.stop().await;
    pg.psql("shop", "DROP TABLE b").unwrap();

    let running = start(&pg, &emulator, &tables, &state, delay, tweak).await;
    let before = initial_done(&state.0);
    eventually(Duration::from_secs(30), "one more chunk", || async {
        (initial_done(&state.0) > before).then_some(())
    })
    .await;
    pg.psql("shop", "DROP TABLE c").unwrap();
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    wait_for_streaming(&pg).await;
    pg.psql("shop", "INSERT INTO a VALUES (5000, 'late')")
        .unwrap();
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    running.stop().await;
    let recorded = StateFile::load(&state.0).unwrap().unwrap();
    let planned: Vec<String> = recorded
        .snapshot
        .iter()
        .flat_map(|plan| plan.tables.iter().map(|table| table.table.clone()))
        .collect();
    assert_eq!(planned, ["public.a"]);
    assert!(
        recorded.table_snapshots.is_empty(),
        "{:?}",
        recorded.table_snapshots
    );
}

/// `POST /pause` during the initial snapshot: the chunk being read finishes, no next one
/// starts until `POST /resume`. About 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_snapshot_reads_no_further_chunk_until_resumed() {
    let pg = new_database(
        15,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         INSERT INTO a SELECT g, repeat('a', 100) FROM generate_series(1, 3000) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-paused-snapshot");
    let tweak = |config: &mut Config| {
        config.snapshot.chunk_pages = 8;
        config.snapshot.parallelism = 1;
    };
    let delay = Duration::from_millis(200);
    let done = |dir: &Path| {
        StateFile::load(dir)
            .ok()
            .flatten()
            .and_then(|file| file.snapshot)
            .map_or(0, |plan| plan.done_count())
    };
    let running = start(&pg, &emulator, &["public.a"], &state, delay, tweak).await;
    eventually(Duration::from_secs(30), "a first chunk", || async {
        (done(&state.0) >= 1).then_some(())
    })
    .await;
    running.api.set_paused(true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let paused_at = done(&state.0);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(done(&state.0), paused_at, "chunks read while paused");
    running.api.set_paused(false).await.unwrap();
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    running.stop().await;
}

/// A StarRocks table dropped while dbmazz was stopped (or lost by StarRocks) is copied again at
/// the next start, not recreated empty by the next change; the same when the whole database
/// is gone. About 3 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_table_lost_while_stopped_is_copied_again() {
    let pg = new_database(
        15,
        "CREATE TABLE kept (id int PRIMARY KEY, v text);
         INSERT INTO kept SELECT g, 'k' || g FROM generate_series(1, 300) g;
         CREATE TABLE lost (id int PRIMARY KEY, v text);
         INSERT INTO lost SELECT g, 'l' || g FROM generate_series(1, 2000) g;
         CREATE TABLE never_written (id int PRIMARY KEY);",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-lost-table");
    // An empty table has no StarRocks table until its first change: not "lost".
    let tables = ["public.kept", "public.lost", "public.never_written"];
    let running = start(&pg, &emulator, &tables, &state, Duration::ZERO, |_| {}).await;
    wait_same(&pg, &emulator, "SELECT id, v FROM lost ORDER BY id").await;
    wait_for_streaming(&pg).await;
    running.stop().await;

    emulator
        .execute_sql(Some("shop"), "DROP TABLE lost")
        .await
        .unwrap();
    pg.psql("shop", "UPDATE lost SET v = 'changed' WHERE id = 5")
        .unwrap();
    let running = start(&pg, &emulator, &tables, &state, Duration::ZERO, |_| {}).await;
    wait_same(&pg, &emulator, "SELECT id, v FROM lost ORDER BY id").await;
    wait_same(&pg, &emulator, "SELECT id, v FROM kept ORDER BY id").await;
    wait_for_streaming(&pg).await;
    running.stop().await;
    let recorded = StateFile::load(&state.0).unwrap().unwrap();
    let copies: Vec<&str> = recorded
        .table_snapshots
        .iter()
        .flat_map(|plan| plan.tables.iter().map(|table| table.table.as_str()))
        .collect();
    assert_eq!(copies, ["public.lost"]);

    emulator
        .execute_sql(None, "DROP DATABASE shop")
        .await
        .unwrap();
    let running = start(&pg, &emulator, &tables, &state, Duration::ZERO, |_| {}).await;
    wait_same(&pg, &emulator, "SELECT id, v FROM lost ORDER BY id").await;
    wait_same(&pg, &emulator, "SELECT id, v FROM kept ORDER BY id").await;
    running.stop().await;
}

/// (c) The CLI's refusals when nothing answers: exit code 1 and one line saying so. Under 1 s.
/// A table that left the publication (its changes no longer sent) and is published again is
/// copied anew at the next start; with `snapshot.replace` its StarRocks table is emptied
/// first, so the rows deleted while it was unpublished go too. A table published for the
/// first time gets its StarRocks table created before it is emptied. Then the same while
/// dbmazz runs (the catalog check notices), and a table removed and added back while dbmazz
/// is stopped (its membership rows are new). About 8 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_published_again_is_copied_anew() {
    let pg = new_database(
        18,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 200) g;
         CREATE TABLE b (id int PRIMARY KEY, v text);
         INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 2000) g;
         CREATE TABLE c (id int PRIMARY KEY, v text);
         INSERT INTO c SELECT g, 'c' || g FROM generate_series(1, 300) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-published-again");
    let tweak = |config: &mut Config| {
        config.snapshot.chunk_pages = 4;
        config.snapshot.replace = true;
        config.snapshot.partition_check_interval = HumanDuration(Duration::from_millis(200));
    };
    let running = start(
        &pg,
        &emulator,
        &["public.a", "public.b"],
        &state,
        Duration::ZERO,
        tweak,
    )
    .await;
    wait_same(&pg, &emulator, "SELECT id, v FROM b ORDER BY id").await;
    running.stop().await;

    // b leaves the publication: nothing that happens to it meanwhile is sent.
    pg.psql(
        "shop",
        "ALTER PUBLICATION test_pub DROP TABLE b;
         DELETE FROM b WHERE id % 10 = 0;
         UPDATE b SET v = 'unpublished' WHERE id % 7 = 0;",
    )
    .unwrap();
    let running = start(&pg, &emulator, &["public.a"], &state, Duration::ZERO, tweak).await;
    wait_for_streaming(&pg).await;
    pg.psql("shop", "INSERT INTO a VALUES (1000, 'streamed')")
        .unwrap();
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    running.stop().await;
    let known = StateFile::load(&state.0)
        .unwrap()
        .unwrap()
        .known_tables
        .unwrap();
    assert!(!known.contains("public.b"), "b is forgotten: {known:?}");

    pg.psql("shop", "ALTER PUBLICATION test_pub ADD TABLE b, c")
        .unwrap();
    let all = ["public.a", "public.b", "public.c"];
    let mut running = start(&pg, &emulator, &all, &state, Duration::ZERO, tweak).await;
    for table in ["public.b", "public.c"] {
        running
            .wait_table_done(table, Duration::from_secs(60))
            .await;
    }
    for table in ["a", "b", "c"] {
        wait_same(
            &pg,
            &emulator,
            &format!("SELECT id, v FROM {table} ORDER BY id"),
        )
        .await;
    }

    // The same while dbmazz runs: c leaves (noticed by the catalog check), changes, and is
    // published again.
    let epoch_of_c = || {
        let state = StateFile::load(&state.0).ok()??;
        let plan = state
            .table_snapshots
            .iter()
            .find(|plan| plan.tables.iter().any(|t| t.table == "public.c"))?;
        let known = state.known_tables.as_ref()?.contains("public.c");
        Some((plan.epoch, plan.is_finished(), known))
    };
    let (first_epoch, _, _) = epoch_of_c().unwrap();
    pg.psql("shop", "ALTER PUBLICATION test_pub DROP TABLE c")
        .unwrap();
    eventually(Duration::from_secs(30), "c forgotten", || async {
        epoch_of_c()
            .is_some_and(|(_, _, known)| !known)
            .then_some(())
    })
    .await;
    pg.psql(
        "shop",
        "DELETE FROM c WHERE id % 3 = 0;
         UPDATE c SET v = 'unpublished' WHERE id % 5 = 0;
         ALTER PUBLICATION test_pub ADD TABLE c;",
    )
    .unwrap();
    eventually(Duration::from_secs(60), "c copied anew", || async {
        let (epoch, finished, known) = epoch_of_c()?;
        (epoch > first_epoch && finished && known).then_some(())
    })
    .await;
    wait_same(&pg, &emulator, "SELECT id, v FROM c ORDER BY id").await;

    // a removed and added back while dbmazz is stopped: no check sees it gone, and the
    // changes made meanwhile are never streamed; its new membership row gives it away.
    eventually(
        Duration::from_secs(30),
        "a's membership recorded",
        || async {
            let state = StateFile::load(&state.0).ok()??;
            state
                .publication_members
                .contains_key("public.a")
                .then_some(())
        },
    )
    .await;
    running.stop().await;
    pg.psql("shop", "ALTER PUBLICATION test_pub DROP TABLE a")
        .unwrap();
    pg.psql(
        "shop",
        "DELETE FROM a WHERE id % 4 = 0; UPDATE a SET v = 'gap' WHERE id % 9 = 0",
    )
    .unwrap();
    pg.psql("shop", "ALTER PUBLICATION test_pub ADD TABLE a")
        .unwrap();
    let mut running = start(&pg, &emulator, &all, &state, Duration::ZERO, tweak).await;
    running
        .wait_table_done("public.a", Duration::from_secs(60))
        .await;
    wait_same(&pg, &emulator, "SELECT id, v FROM a ORDER BY id").await;
    running.stop().await;
}

/// A table dropped while dbmazz runs leaves its StarRocks table's name free: a table of the
/// same name in another schema, published afterwards, is copied into it (it was refused as
/// "would both go to" the same table until a restart). About 3 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_table_leaves_its_name_to_a_table_published_later() {
    let pg = new_database(
        15,
        "CREATE TABLE orders (id int PRIMARY KEY, v text);
         INSERT INTO orders SELECT g, 'public ' || g FROM generate_series(1, 100) g;
         CREATE PUBLICATION test_pub FOR TABLE orders;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-name-freed");
    let tweak = |config: &mut Config| {
        config.snapshot.replace = true;
        config.snapshot.partition_check_interval = HumanDuration(Duration::from_millis(200));
    };
    let running = start(&pg, &emulator, &[], &state, Duration::ZERO, tweak).await;
    wait_same(&pg, &emulator, "SELECT id, v FROM orders ORDER BY id").await;

    pg.psql("shop", "DROP TABLE orders").unwrap();
    // The catalog check sees it gone before the other table comes.
    eventually(Duration::from_secs(30), "orders forgotten", || async {
        let known = StateFile::load(&state.0).ok()??.known_tables?;
        (!known.contains("public.orders")).then_some(())
    })
    .await;
    pg.psql(
        "shop",
        "CREATE SCHEMA other;
         CREATE TABLE other.orders (id int PRIMARY KEY, v text);
         INSERT INTO other.orders SELECT g, 'other ' || g FROM generate_series(50, 120) g;
         ALTER PUBLICATION test_pub ADD TABLE other.orders;",
    )
    .unwrap();
    let copied = || {
        wait_identical_in(
            &pg,
            &emulator,
            "shop",
            "SELECT id, v FROM other.orders ORDER BY id",
            "SELECT id, v FROM orders ORDER BY id",
            Duration::from_secs(30),
        )
    };
    copied().await;
    pg.psql(
        "shop",
        "UPDATE other.orders SET v = 'streamed' WHERE id = 60",
    )
    .unwrap();
    copied().await;
    assert!(!running.task.is_finished(), "the run stopped");
    running.stop().await;
}

/// A table that gets a dot in its name while dbmazz runs stops the pipeline with the reason,
/// and its changes are not acknowledged (they were skipped as "no longer published", and the
/// slot moved past them). About 2 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_renamed_to_a_dotted_name_stops_the_pipeline() {
    let pg = new_database(
        15,
        "CREATE TABLE plain (id int PRIMARY KEY, v text);
         INSERT INTO plain VALUES (1, 'a');
         CREATE PUBLICATION test_pub FOR ALL TABLES;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-dotted-run");
    let tweak = |config: &mut Config| {
        config.snapshot.partition_check_interval = HumanDuration(Duration::from_millis(200));
    };
    let running = start(&pg, &emulator, &[], &state, Duration::ZERO, tweak).await;
    wait_same(&pg, &emulator, "SELECT id, v FROM plain ORDER BY id").await;
    pg.psql(
        "shop",
        "CREATE TABLE fresh (id int PRIMARY KEY, v text);
         ALTER TABLE fresh RENAME TO \"fre.sh\";
         INSERT INTO \"fre.sh\" VALUES (1, 'x');",
    )
    .unwrap();
    let written: Lsn = pg
        .psql("shop", "SELECT pg_current_wal_lsn()")
        .unwrap()
        .parse()
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), running.task)
        .await
        .expect("the run stops")
        .unwrap();
    let error = outcome.expect_err("the run fails").to_string();
    assert!(error.contains("fre.sh") && error.contains("dot"), "{error}");
    let confirmed = confirmed_flush(&pg, "shop", "test_slot").unwrap();
    assert!(
        confirmed < written,
        "the slot passed the dotted table's changes: {confirmed} >= {written}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_command_says_when_dbmazz_is_not_running() {
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("127.0.0.1:{free_port}");
    let output = run_cli(&["--table", "public.orders", "--url", &url]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the dbmazz HTTP API"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// (d) dbmazz stopped in the middle of a table snapshot resumes it at the next start: a new
/// attempt reads only the chunks not recorded as done, the held changes (never acknowledged)
/// are replayed after it, and the table ends identical. About 5 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_snapshot_interrupted_by_a_stop_resumes_at_the_next_start() {
    let tweak = |config: &mut Config| {
        several_chunks_no_initial(config);
        config.pipeline.spill_threshold = dbmazz::config::ByteSize(16 * 1024);
    };
    let Setup {
        pg,
        emulator,
        state,
        running,
    } = orders_and_items(
        18,
        "",
        "dbmazz-resnapshot-resume",
        Duration::from_millis(300),
        tweak,
    )
    .await;
    wait_for_streaming(&pg).await;
    request_accepted(&running.api, "public.orders", false).await;
    pg.psql(
        "shop",
        "UPDATE orders SET note = 'held' WHERE id <= 100;
         DELETE FROM orders WHERE id BETWEEN 101 AND 150;
         INSERT INTO items VALUES (1, 1);",
    )
    .unwrap();
    wait_table_chunks(&state.0, 0, 2).await;
    // As if held changes had spilled: the run's spill files go with it.
    let spill = state.0.join("spill");
    std::fs::create_dir_all(&spill).unwrap();
    std::fs::write(spill.join("held-1-0.spill"), b"spilled").unwrap();
    running.stop().await;
    // Replayed from the slot at the next start: left on a full disk they would block it.
    assert!(!spill.exists(), "the stopped run left its spill files");
    let interrupted = StateFile::load(&state.0).unwrap().unwrap().table_snapshots[0].clone();
    assert!(
        !interrupted.is_finished() && interrupted.attempt == 1,
        "{interrupted:?}"
    );

    pg.psql("shop", "UPDATE orders SET v = -v WHERE id % 1000 = 0")
        .unwrap();
    let tables = ["public.orders", "public.items"];
    let mut running = start(&pg, &emulator, &tables, &state, Duration::ZERO, tweak).await;
    running
        .wait_table_done("public.orders", Duration::from_secs(60))
        .await;
    wait_same(&pg, &emulator, "SELECT id, v, note FROM orders ORDER BY id").await;
    wait_same(&pg, &emulator, "SELECT id, qty FROM items ORDER BY id").await;
    let report = running.progress.report();
    let orders = report
        .tables
        .iter()
        .find(|table| table.table == "public.orders")
        .unwrap();
    assert!(
        orders.rows < 19_850,
        "only unfinished chunks were read again: {orders:?}"
    );
    running.stop().await;
    let resumed = StateFile::load(&state.0).unwrap().unwrap().table_snapshots[0].clone();
    assert!(resumed.is_finished(), "{resumed:?}");
    assert_eq!(
        (resumed.epoch, resumed.attempt),
        (interrupted.epoch, 2),
        "the same epoch, a new attempt"
    );
}

/// (e) The `dbmazz` binary killed (SIGKILL) in the middle of a table snapshot requested with
/// `dbmazz snapshot --table --replace`, writers running: the next start reads the unfinished
/// chunks under a new attempt (without emptying the table again: the chunks loaded before the
/// kill stay), the slot replays the held changes, and both tables end identical, without the
/// row only StarRocks had. Loads go over HTTP (labels resolved by their state). About 8 s in
/// release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_table_snapshot_the_binary_resumes_it_and_converges() {
    use crate::support::starrocks::{binary_config, spawn_dbmazz, BinarySink};
    use starrocks_emulator::{FaultKind, FaultRule};

    let pg = new_database(18, ORDERS_AND_ITEMS);
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let dir = TempDir::new("dbmazz-resnapshot-kill");
    let state_dir = dir.0.join("state");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let config = binary_config(
        &pg.url("shop"),
        "kill_slot",
        &["public.orders", "public.items"],
        &state_dir,
        &BinarySink::emulator(&emulator, "shop"),
    )
    .replace("listen = \"\"", &format!("listen = \"{listen}\""))
        + "[snapshot]\nmode = \"never\"\nchunk_pages = 8\nparallelism = 2\n\
           [pipeline]\nspill_threshold = \"64KiB\"\n";
    let config_path = dir.0.join("dbmazz.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.0.join("dbmazz.log");
    let mut child = spawn_dbmazz(&config_path, &log);
    wait_for_streaming(&pg).await;
    let (stop, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let writer = spawn_writer(pg.url("shop"), Arc::clone(&stop), Arc::clone(&rounds));
    // Slow loads of orders: the kill lands while chunks remain.
    emulator.inject(FaultRule {
        count: 100_000,
        table: Some("orders".into()),
        delay_ms: Some(100),
        ..FaultRule::new(FaultKind::Delay)
    });
    let sr_only = "INSERT INTO orders VALUES (999999999, 1, 'sr only')";
    eventually(Duration::from_secs(30), "orders in StarRocks", || async {
        emulator
            .execute_sql(Some("shop"), sr_only)
            .await
            .ok()
            .map(drop)
    })
    .await;
    let args = ["--table", "public.orders", "--url", &listen, "--replace"];
    let output = run_cli_when_streaming(&args).await;
    assert!(output.status.success(), "{output:?}");
    let table_snapshot = || first_table_snapshot(&state_dir);
    wait_table_chunks(&state_dir, 0, 2).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let interrupted = table_snapshot().unwrap();
    assert!(!interrupted.is_finished(), "{interrupted:?}");
    assert!(
        interrupted.replace && interrupted.emptied,
        "{interrupted:?}"
    );
    emulator.clear_faults();

    let log_before_restart = std::fs::read_to_string(&log).unwrap_or_default().len();
    let mut child = spawn_dbmazz(&config_path, &log);
    let started = Instant::now();
    while !table_snapshot().is_some_and(|plan| plan.is_finished()) {
        assert!(child.try_wait().unwrap().is_none(), "dbmazz exited");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "resume too slow"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    wait_same(&pg, &emulator, "SELECT id, v, note FROM orders ORDER BY id").await;
    wait_same(&pg, &emulator, "SELECT id, qty FROM items ORDER BY id").await;
    let resumed = table_snapshot().unwrap();
    assert_eq!((resumed.epoch, resumed.attempt), (interrupted.epoch, 2));
    // Chunk ids the second run loaded: exactly those not recorded as done.
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut reread: Vec<u32> = log_text[log_before_restart..]
        .lines()
        .filter(|line| line.contains("snapshot chunk loaded"))
        .filter_map(|line| {
            let digits = line.split("chunk=").nth(1)?;
            digits
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .collect();
    reread.sort_unstable();
    let unfinished: Vec<u32> = interrupted.tables[0]
        .chunks
        .iter()
        .filter(|chunk| !chunk.done)
        .map(|chunk| chunk.id)
        .collect();
    println!(
        "killed after {}/{} chunks; {} write rounds",
        interrupted.done_count(),
        interrupted.chunk_count(),
        rounds.load(Ordering::Relaxed)
    );
    assert_eq!(reread, unfinished, "only unfinished chunks are read again");
    assert!(
        log_text.contains("table snapshot loaded"),
        "the held changes were released: {log_text}"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
