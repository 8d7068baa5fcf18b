//! The initial snapshot against real PostgreSQL and the emulator: consistency under
//! concurrent writes, resume after SIGKILL, same values as the stream, edge cases.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbmazz::checkpoint::StateFile;
use dbmazz::config::Config;
use dbmazz::local_pg::LocalPg;
use dbmazz::replicator::{self, RunContext, RunError};
use dbmazz::schema::type_map::TypeMapOptions;
use dbmazz::schema::{TableName, TableSchema};
use dbmazz::sink::starrocks::{DeleteMode, StarRocksDdl, StarRocksSink, StarRocksSinkOptions};
use dbmazz::sink::{RecordedOp, RecordingSink};
use dbmazz::snapshot::{SnapshotPhase, SnapshotProgress};
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle, FaultKind, FaultRule};
use tokio::sync::watch;

use crate::starrocks_e2e::wait_identical;
use crate::support::starrocks::{sr_rows, EmulatorLoader};
use crate::support::{
    eventually, new_database, stream_config, wait_for_streaming, TempDir, PG_VERSIONS,
};

struct Running {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<replicator::RunSummary, RunError>>,
    progress: Arc<SnapshotProgress>,
    state: TempDir,
}

impl Running {
    async fn stop(self) {
        self.shutdown.send_replace(true);
        self.task
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("{error}"));
    }

    async fn wait_snapshot_finished(&mut self, timeout: Duration) {
        eventually(timeout, "the snapshot to finish", || async {
            (self.task.is_finished() || self.progress.report().phase == SnapshotPhase::Finished)
                .then_some(())
        })
        .await;
        if self.task.is_finished() {
            let outcome = (&mut self.task).await.unwrap();
            panic!("the replicator stopped: {outcome:?}");
        }
    }
}

/// The key columns of a StarRocks table, as DESC shows them.
async fn starrocks_key(emulator: &Arc<EmulatorHandle>, table: &str) -> Vec<String> {
    let mysql = emulator.mysql_addr().unwrap().to_string();
    let ddl = StarRocksDdl::connect(&mysql, "root", "", "shop")
        .await
        .unwrap();
    let described = ddl.describe(table).await.unwrap().unwrap();
    described
        .into_iter()
        .filter(|column| column.is_key)
        .map(|column| column.name)
        .collect()
}

async fn emulator_sink(emulator: &Arc<EmulatorHandle>) -> StarRocksSink<EmulatorLoader> {
    let mysql = emulator.mysql_addr().unwrap().to_string();
    let ddl = StarRocksDdl::connect(&mysql, "root", "", "shop")
        .await
        .unwrap();
    let loader = EmulatorLoader {
        emulator: Arc::clone(emulator),
        database: "shop".into(),
    };
    StarRocksSink::new(
        ddl,
        loader,
        StarRocksSinkOptions {
            label_prefix: "test_slot".into(),
            create_tables: true,
            delete_mode: DeleteMode::Hard,
            audit_columns: false,
            type_options: TypeMapOptions::default(),
            table_properties: vec![("replication_num".into(), "1".into())],
            alter_timeout: Duration::from_secs(30),
        },
    )
}

async fn start(
    pg: &LocalPg,
    emulator: &Arc<EmulatorHandle>,
    tables: &[&str],
    tweak: impl FnOnce(&mut Config),
) -> Running {
    let state = TempDir::new("dbmazz-snapshot-test");
    start_in(pg, emulator, tables, state, tweak).await
}

/// As `start`, with a state directory of an earlier run.
async fn start_in(
    pg: &LocalPg,
    emulator: &Arc<EmulatorHandle>,
    tables: &[&str],
    state: TempDir,
    tweak: impl FnOnce(&mut Config),
) -> Running {
    let mut config = stream_config(pg, "shop", tables, &state);
    config.snapshot.parallelism = 2;
    tweak(&mut config);
    let sink = emulator_sink(emulator).await;
    let progress = SnapshotProgress::new();
    let (shutdown, receiver) = watch::channel(false);
    let task_progress = Arc::clone(&progress);
    let task = tokio::spawn(async move {
        replicator::run(
            &config,
            Arc::new(sink),
            RunContext::new(receiver).with_snapshot_progress(task_progress),
        )
        .await
    });
    Running {
        shutdown,
        task,
        progress,
        state,
    }
}

/// Rows of the 1M-row test (override with SNAPSHOT_TEST_ROWS for quick debug runs).
fn snapshot_rows() -> u64 {
    std::env::var("SNAPSHOT_TEST_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(1_000_000)
}

/// (a) 1M rows in two tables, read in parallel chunks while a writer keeps changing them;
/// after the stream catches up, StarRocks equals PostgreSQL row by row. About 20 s in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_snapshotted_under_concurrent_writes_end_identical() {
    let rows = snapshot_rows();
    let (rows_a, rows_b) = (rows * 6 / 10, rows * 4 / 10);
    let pg = new_database(
        18,
        &format!(
            "CREATE TABLE big_a (id bigint PRIMARY KEY, v int NOT NULL, s text);
             CREATE TABLE big_b (id int PRIMARY KEY, n numeric(12,2), t text);
             INSERT INTO big_a SELECT g, g % 1000, 'a' || g FROM generate_series(1, {rows_a}) g;
             INSERT INTO big_b SELECT g, g / 7.0, CASE WHEN g % 10 = 0 THEN NULL ELSE 'b' END
               FROM generate_series(1, {rows_b}) g;"
        ),
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    // The writer runs from before the slot exists until after the snapshot.
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, writes) = (Arc::clone(&stop_writer), Arc::clone(&writes));
        let connect = dbmazz::source::PgConnectConfig::from_url(&pg.url("shop")).unwrap();
        let client = dbmazz::source::connect_sql(&connect).await.unwrap();
        tokio::spawn(async move {
            let mut round: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let id = (round * 7919) % rows_a + 1;
                let script = format!(
                    "UPDATE big_a SET v = v + 1, s = 'w{round}' WHERE id BETWEEN {id} AND {id} + 50;
                     DELETE FROM big_b WHERE id = {b};
                     INSERT INTO big_a VALUES ({new}, -1, 'new') ON CONFLICT (id) DO NOTHING;
                     UPDATE big_b SET n = n + 1 WHERE id BETWEEN {b} + 1 AND {b} + 20;
                     UPDATE big_a SET id = -id WHERE id = {moved};",
                    b = (round * 104_729) % rows_b + 1,
                    new = rows_a + round,
                    moved = (round * 15_485_863) % rows_a + 1,
                );
                client.batch_execute(&script).await.unwrap();
                writes.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let mut running = start(
        &pg,
        &emulator,
        &["public.big_a", "public.big_b"],
        |config| {
            config.snapshot.chunk_pages = u32::try_from(rows / 4000).unwrap_or(256).max(16);
            config.batch.max_rows = 50_000;
            config.batch.max_bytes = dbmazz::config::ByteSize::mib(8);
        },
    )
    .await;
    running
        .wait_snapshot_finished(Duration::from_secs(600))
        .await;
    let snapshot_seconds = started.elapsed().as_secs_f64();
    let writes_during = writes.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_writer.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let report = running.progress.report();
    println!(
        "snapshot of {rows} rows: {snapshot_seconds:.1}s, {} chunks, {writes_during} write rounds during it",
        report.chunks_total
    );
    assert!(report.chunks_total >= 4, "several chunks: {report:?}");
    assert!(writes_during > 0, "the writer overlapped the snapshot");
    wait_identical(
        &pg,
        &emulator,
        "SELECT id, v, s FROM big_a ORDER BY id",
        "SELECT id, v, s FROM big_a ORDER BY id",
    )
    .await;
    wait_identical(
        &pg,
        &emulator,
        "SELECT id, n, t FROM big_b ORDER BY id",
        "SELECT id, n, t FROM big_b ORDER BY id",
    )
    .await;
    let state = StateFile::load(&running.state.0).unwrap().unwrap();
    assert!(state.snapshot.unwrap().is_finished());
    running.stop().await;
}

fn spawn_dbmazz(config: &std::path::Path, log: &std::path::Path) -> Child {
    let log_file = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_dbmazz"))
        .args(["run", "--config"])
        .arg(config)
        .env("DBMAZZ_LOG", "info,dbmazz::snapshot=debug")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap()
}

fn done_chunks(state_dir: &std::path::Path) -> BTreeSet<u32> {
    StateFile::load(state_dir)
        .ok()
        .flatten()
        .and_then(|state| state.snapshot)
        .map(|snapshot| {
            snapshot
                .tables
                .iter()
                .flat_map(|table| &table.chunks)
                .filter(|chunk| chunk.done)
                .map(|chunk| chunk.id)
                .collect()
        })
        .unwrap_or_default()
}

/// Chunk ids a run's log says it started reading.
fn chunks_started(log: &std::path::Path) -> BTreeSet<u32> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("snapshot chunk started"))
        .filter_map(|line| {
            let rest = line.split("chunk=").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// (b) SIGKILL the binary mid-snapshot at random points, writing between runs: each restart
/// reads only the chunks not recorded as done, and the copy converges. About 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_snapshot_it_reads_only_unfinished_chunks_and_converges() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    println!("seed {seed}");
    let mut random = fastrand::Rng::with_seed(seed);
    let pg = new_database(
        18,
        "CREATE TABLE kill_t (id bigint PRIMARY KEY, v int, s text);
         INSERT INTO kill_t SELECT g, g % 100, md5(g::text) FROM generate_series(1, 150000) g;",
    );
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    // Slow loads down so that a kill lands mid-snapshot even in release builds: 44 chunks of
    // two loads, 40 ms each, two readers — at most ~9 chunks per run (one more chunk plus up
    // to 300 ms), so the first four kills always land mid-snapshot.
    emulator.inject(
        FaultRule::new(FaultKind::Delay)
            .delay_ms(40)
            .times(100_000)
            .table("kill_t"),
    );
    let dir = TempDir::new("dbmazz-snapshot-kill");
    let state_dir = dir.0.join("state");
    let config_path = dir.0.join("dbmazz.toml");
    std::fs::write(
        &config_path,
        format!(
            "state_dir = \"{state}\"\n[source]\nurl = \"{url}\"\npublication = \"kill_pub\"\n\
             slot = \"kill_slot\"\ntables = [\"public.kill_t\"]\nstatus_interval = \"200ms\"\n\
             [sink.starrocks]\nfe_http = \"http://{fe}\"\nmysql = \"{mysql}\"\nuser = \"root\"\n\
             password = \"\"\ndatabase = \"shop\"\ntable_properties = {{ replication_num = \"1\" }}\n\
             [batch]\nmax_rows = 2000\nmax_wait = \"50ms\"\n[snapshot]\nparallelism = 2\n\
             chunk_pages = 32\n[http]\nlisten = \"\"\n",
            state = state_dir.display(),
            url = pg.url("shop"),
            fe = emulator.fe_http_addr(),
            mysql = emulator.mysql_addr().unwrap(),
        ),
    )
    .unwrap();
    let (mut kills, mut mid_snapshot_kills) = (0, 0);
    for run in 0..6 {
        let done_before = done_chunks(&state_dir);
        let log = dir.0.join(format!("run{run}.log"));
        // Every path kills and waits for it: mid-run below, or after the checks of the last run.
        #[allow(clippy::zombie_processes)]
        let mut child = spawn_dbmazz(&config_path, &log);
        let last_run = run == 5;
        // Change rows while dbmazz is down (and, in the last run, while it runs).
        let write_rows = || {
            pg.psql(
                "shop",
                &format!(
                    "UPDATE kill_t SET v = v + 1000, s = 'run{run}' WHERE id % 97 = {run};
                     DELETE FROM kill_t WHERE id % 101 = {run};
                     INSERT INTO kill_t SELECT g, -1, 'late' FROM generate_series(200000 + {run} * 10, 200000 + {run} * 10 + 9) g;"
                ),
            )
            .unwrap();
        };
        if last_run {
            write_rows();
            emulator.clear_faults();
            let started = Instant::now();
            let state = loop {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "dbmazz exited; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                let snapshot = StateFile::load(&state_dir)
                    .ok()
                    .flatten()
                    .and_then(|state| state.snapshot);
                if let Some(snapshot) = snapshot.filter(|snapshot| snapshot.is_finished()) {
                    break snapshot;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "the snapshot did not finish"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(state.attempt >= 2, "the snapshot was resumed: {state:?}");
            wait_identical(
                &pg,
                &emulator,
                "SELECT id, v, s FROM kill_t ORDER BY id",
                "SELECT id, v, s FROM kill_t ORDER BY id",
            )
            .await;
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            // Kill once this run has finished at least one more chunk (or the whole snapshot,
            // then it streams), plus a random delay.
            let started = Instant::now();
            loop {
                let done = done_chunks(&state_dir);
                let finished = StateFile::load(&state_dir)
                    .ok()
                    .flatten()
                    .and_then(|state| state.snapshot)
                    .is_some_and(|snapshot| snapshot.is_finished());
                if done.len() > done_before.len() || finished || child.try_wait().unwrap().is_some()
                {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "run {run} made no progress; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(random.u64(0..300))).await;
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            let unfinished = StateFile::load(&state_dir)
                .unwrap()
                .and_then(|state| state.snapshot)
                .is_some_and(|snapshot| !snapshot.is_finished());
            if unfinished {
                mid_snapshot_kills += 1;
            }
            write_rows();
        }
        let reread: Vec<u32> = chunks_started(&log)
            .intersection(&done_before)
            .copied()
            .collect();
        assert!(
            reread.is_empty(),
            "run {run} re-read finished chunks {reread:?}"
        );
        let done_after = done_chunks(&state_dir);
        assert!(
            done_after.is_superset(&done_before),
            "done chunks only grow"
        );
    }
    assert_eq!(kills, 5);
    assert!(
        mid_snapshot_kills >= 3,
        "only {mid_snapshot_kills} kills landed mid-snapshot"
    );
}

const EDGE_TABLE: &str = "(
    id int PRIMARY KEY, b bool, i2 smallint, i8 bigint, f4 real, f8 double precision,
    n numeric(20,5), t text, vc varchar(20), c char(3), d date, ts timestamp, tstz timestamptz,
    tm time, iv interval, j jsonb, arr int[], tarr text[], by bytea, u uuid)";

const EDGE_ROWS: &str = "
    (1, true, -32768, -9223372036854775808, 'NaN', 'Infinity', -123456789012345.12345,
     E'tab\\there\\nnew line \\\\ back\\\\slash ''quote'' \"dq\" é ✓ \\u0001', 'short', 'ab',
     '0001-01-01', '1999-12-31 23:59:59.999999', '2024-02-29 12:00:00+05:30', '24:00:00',
     '1 year 2 mons -3 days 04:05:06.789', '{\"k\": [1, \"v\\\\\\\"x\", null], \"u\": \"\\u00e9\"}',
     '{1,NULL,3}', '{\"a,b\",\"c\\\\\\\\d\",NULL,\"\"}', '\\x00ff5c0a', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
    (2, false, 32767, 9223372036854775807, '-Infinity', -0.0, 0, '', '', '   ', '9999-12-31',
     '2000-01-01 00:00:00', '1970-01-01 00:00:00+00', '00:00:00', '0 seconds', '[]', '{}', '{}', '', NULL),
    (3, NULL, NULL, NULL, 3.4028235e38, 2.2250738585072014e-308, 99999999999999.99999, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, 'null', NULL, NULL, NULL, NULL)";

/// (c) The same edge values, one table loaded by the snapshot and one by the stream, are
/// stored identically. About 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_values_loaded_by_snapshot_equal_the_same_values_streamed() {
    let pg = new_database(
        18,
        &format!(
            "CREATE TABLE edge_snap {EDGE_TABLE}; CREATE TABLE edge_stream {EDGE_TABLE};
             INSERT INTO edge_snap VALUES {EDGE_ROWS};"
        ),
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let mut running = start(
        &pg,
        &emulator,
        &["public.edge_snap", "public.edge_stream"],
        |_| {},
    )
    .await;
    running
        .wait_snapshot_finished(Duration::from_secs(60))
        .await;
    wait_for_streaming(&pg).await;
    pg.psql("shop", "INSERT INTO edge_stream SELECT * FROM edge_snap")
        .unwrap();
    let snapshot_rows = eventually(Duration::from_secs(60), "both tables loaded", || async {
        let snap = emulator.table_rows("shop", "edge_snap").ok()?;
        let streamed = emulator.table_rows("shop", "edge_stream").ok()?;
        (snap.len() == 3 && streamed.len() == 3).then_some((snap, streamed))
    })
    .await;
    // Compared as text: NaN is not equal to itself.
    assert_eq!(
        format!("{:?}", snapshot_rows.0),
        format!("{:?}", snapshot_rows.1),
        "snapshot and stream stored different values"
    );
    running.stop().await;
}

/// (d) An empty table, a partitioned table (read leaf by leaf, published via its root) and
/// a plain one snapshot and then stream; the catalog shapes equal the Relation messages'.
/// About 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_partitioned_tables_snapshot_then_stream() {
    let pg = new_database(
        18,
        "CREATE TABLE empty_t (id int PRIMARY KEY, v text);
         CREATE TABLE parted (id int, region text, amount numeric(10,2), PRIMARY KEY (id, region))
           PARTITION BY LIST (region);
         CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
         CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
         INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g * 1.25
           FROM generate_series(1, 5000) g;
         CREATE TABLE wide (id int PRIMARY KEY, big text);
         ALTER TABLE wide ALTER COLUMN big SET STORAGE EXTERNAL;
         INSERT INTO wide SELECT g, repeat(md5(g::text), 3000) FROM generate_series(1, 20) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let mut running = start(
        &pg,
        &emulator,
        &["public.empty_t", "public.parted", "public.wide"],
        |config| config.snapshot.chunk_pages = 4,
    )
    .await;
    running
        .wait_snapshot_finished(Duration::from_secs(60))
        .await;
    let report = running.progress.report();
    let chunks_of = |name: &str| {
        report
            .tables
            .iter()
            .find(|table| table.table == name)
            .map(|table| (table.chunks_total, table.rows))
            .unwrap()
    };
    assert_eq!(chunks_of("public.empty_t"), (1, 0));
    assert!(chunks_of("public.parted").0 >= 2, "{report:?}");
    assert_eq!(chunks_of("public.parted").1, 5000);
    assert_eq!(chunks_of("public.wide").1, 20);
    wait_identical(
        &pg,
        &emulator,
        "SELECT id, region, amount FROM parted ORDER BY id, region",
        "SELECT id, region, amount FROM parted ORDER BY id, region",
    )
    .await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "INSERT INTO empty_t VALUES (1, 'first');
         UPDATE parted SET amount = 0 WHERE id <= 10;
         INSERT INTO parted VALUES (9001, 'eu', 1);
         UPDATE wide SET big = big || 'x' WHERE id = 3;",
    )
    .unwrap();
    for (pg_sql, sr_sql) in [
        (
            "SELECT id, v FROM empty_t ORDER BY id",
            "SELECT id, v FROM empty_t ORDER BY id",
        ),
        (
            "SELECT id, region, amount FROM parted ORDER BY id, region",
            "SELECT id, region, amount FROM parted ORDER BY id, region",
        ),
        (
            "SELECT id, big FROM wide ORDER BY id",
            "SELECT id, big FROM wide ORDER BY id",
        ),
    ] {
        wait_identical(&pg, &emulator, pg_sql, sr_sql).await;
    }
    running.stop().await;
}

/// A publication made by the user with a column list and a row filter (PostgreSQL 15+): the
/// snapshot copies what pgoutput publishes — the listed columns, the rows the filter lets
/// through — so StarRocks has neither the unlisted column nor the filtered-out rows, before and
/// after updates move rows in and out of the filter. About 3 s per version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_column_list_and_row_filter_hold_for_the_snapshot() {
    for major in PG_VERSIONS {
        let pg = new_database(
            major,
            "CREATE TABLE people (id int, region text, name text, secret text,
               PRIMARY KEY (id, region));
             INSERT INTO people SELECT g, CASE WHEN g % 3 = 0 THEN 'hidden' ELSE 'eu' END,
               'n' || g, 'pw' || g FROM generate_series(1, 3000) g;
             CREATE PUBLICATION test_pub FOR TABLE people (id, region, name)
               WHERE (region <> 'hidden');",
        );
        let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
        let mut running = start(&pg, &emulator, &["public.people"], |config| {
            config.snapshot.chunk_pages = 4
        })
        .await;
        running
            .wait_snapshot_finished(Duration::from_secs(60))
            .await;
        let (published, stored) = (
            "SELECT id, region, name FROM people WHERE region <> 'hidden' ORDER BY id, region",
            "SELECT id, region, name FROM people ORDER BY id, region",
        );
        wait_identical(&pg, &emulator, published, stored).await;
        wait_for_streaming(&pg).await;
        pg.psql(
            "shop",
            "UPDATE people SET region = 'eu' WHERE id IN (3, 6);
             UPDATE people SET region = 'hidden' WHERE id IN (1, 2);
             UPDATE people SET name = 'renamed', secret = 'changed' WHERE id = 4;
             INSERT INTO people VALUES (9001, 'eu', 'new', 's'), (9002, 'hidden', 'no', 's');",
        )
        .unwrap();
        wait_identical(&pg, &emulator, published, stored).await;
        let row = crate::support::starrocks::sr_rows(
            &emulator,
            "shop",
            "SELECT * FROM people WHERE id = 4",
        )
        .await;
        assert_eq!(row, ["4|eu|renamed"], "PG {major}: only the listed columns");
        running.stop().await;
    }
}

/// A table without a primary key is refused, naming the table and the fix. About 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_primary_key_is_refused() {
    let pg = new_database(
        18,
        "CREATE TABLE keyless (v text); INSERT INTO keyless VALUES ('x');",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let running = start(&pg, &emulator, &["public.keyless"], |_| {}).await;
    let error = running.task.await.unwrap().unwrap_err().to_string();
    assert!(
        error.contains("public.keyless") && error.contains("PRIMARY KEY"),
        "{error}"
    );
}

/// A table without a primary key, under REPLICA IDENTITY FULL, with its key named in
/// `source.key_columns`: snapshotted, then UPDATEs (one changing the key, one leaving a
/// TOASTed value unchanged) and DELETEs streamed; StarRocks ends identical, keyed on the named
/// columns. A name that is no column is refused at start. About 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_primary_key_replicates_on_configured_key_columns() {
    let pg = new_database(
        18,
        "CREATE TABLE events (tenant int NOT NULL, id int NOT NULL, v text, big text);
         ALTER TABLE events REPLICA IDENTITY FULL;
         INSERT INTO events SELECT g % 3, g, 'v' || g, NULL FROM generate_series(1, 5000) g;
         UPDATE events SET big = repeat(md5(id::text), 200) WHERE id <= 10;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let keyed = |config: &mut Config| {
        config.source.key_columns = [(
            "public.events".to_string(),
            vec!["tenant".into(), "id".into()],
        )]
        .into();
    };
    let mut running = start(&pg, &emulator, &["public.events"], keyed).await;
    running
        .wait_snapshot_finished(Duration::from_secs(30))
        .await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "UPDATE events SET v = 'changed' WHERE id BETWEEN 1 AND 20;
         UPDATE events SET id = id + 100000 WHERE id IN (2, 30);
         DELETE FROM events WHERE id BETWEEN 40 AND 60;
         INSERT INTO events VALUES (0, 7, 'same id, other tenant', NULL);",
    )
    .unwrap();
    let sql = "SELECT tenant, id, v, big FROM events ORDER BY tenant, id";
    wait_identical(&pg, &emulator, sql, sql).await;
    let columns = emulator.table_columns("shop", "events").unwrap();
    assert_eq!(columns[..2], ["tenant".to_string(), "id".to_string()]);
    running.stop().await;

    let misnamed = |config: &mut Config| {
        config.source.key_columns = [("public.events".to_string(), vec!["nope".into()])].into();
    };
    let running = start(&pg, &emulator, &["public.events"], misnamed).await;
    let error = running.task.await.unwrap().unwrap_err().to_string();
    assert!(
        error.contains("source.key_columns names nope for public.events"),
        "{error}"
    );
}

/// REPLICA IDENTITY FULL on a table with a primary key, no `source.key_columns`: the StarRocks
/// table is keyed by the primary key (a jsonb column could not be a key) for snapshot and
/// stream alike. A FULL table published while dbmazz runs stops it with "restart"; after the
/// restart it is keyed, copied and streamed. About 4 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_identity_table_is_keyed_by_its_primary_key() {
    let pg = new_database(
        15,
        "CREATE TABLE fullpk (id int PRIMARY KEY, doc jsonb, v text);
         ALTER TABLE fullpk REPLICA IDENTITY FULL;
         INSERT INTO fullpk SELECT g, jsonb_build_object('g', g), 'v' || g
           FROM generate_series(1, 2000) g;
         CREATE TABLE fulllate (id int PRIMARY KEY, doc jsonb);
         ALTER TABLE fulllate REPLICA IDENTITY FULL;
         INSERT INTO fulllate VALUES (1, '{}'), (2, '[1]');",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let mut running = start(&pg, &emulator, &["public.fullpk"], |_| {}).await;
    running
        .wait_snapshot_finished(Duration::from_secs(30))
        .await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "UPDATE fullpk SET v = 'changed' WHERE id <= 20;
         UPDATE fullpk SET id = id + 100000 WHERE id IN (2, 30);
         DELETE FROM fullpk WHERE id BETWEEN 40 AND 60;",
    )
    .unwrap();
    let sql = "SELECT id, v FROM fullpk ORDER BY id";
    wait_identical(&pg, &emulator, sql, sql).await;
    let columns = emulator.table_columns("shop", "fullpk").unwrap();
    assert_eq!(columns[0], "id");
    assert_eq!(starrocks_key(&emulator, "fullpk").await, ["id"]);

    pg.psql(
        "shop",
        "ALTER PUBLICATION test_pub ADD TABLE fulllate; INSERT INTO fulllate VALUES (3, '{}');",
    )
    .unwrap();
    let error = tokio::time::timeout(Duration::from_secs(30), running.task)
        .await
        .expect("the run stops")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("public.fulllate") && error.contains("restart dbmazz"),
        "{error}"
    );
    let restarted = start_in(&pg, &emulator, &["public.fullpk"], running.state, |_| {}).await;
    let sql = "SELECT id FROM fulllate ORDER BY id";
    wait_identical(&pg, &emulator, sql, sql).await;
    assert_eq!(starrocks_key(&emulator, "fulllate").await, ["id"]);
    restarted.stop().await;
}

/// PostgreSQL 18 publishes stored generated columns when the publication asks
/// (`publish_generated_columns = stored`): the snapshot copies them too, so snapshot rows and
/// streamed rows have the same columns (the snapshot used to leave them out, and the first
/// streamed change added the column with NULL for every copied row). About 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_generated_columns_are_copied_by_the_snapshot() {
    let pg = new_database(
        18,
        "CREATE TABLE gen_t (id int PRIMARY KEY, a int, g int GENERATED ALWAYS AS (a * 2) STORED, b text);
         INSERT INTO gen_t (id, a, b) SELECT x, x, 'b' || x FROM generate_series(1, 500) x;
         CREATE PUBLICATION test_pub FOR TABLE gen_t WITH (publish_generated_columns = stored);",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let mut running = start(&pg, &emulator, &["public.gen_t"], |_| {}).await;
    running
        .wait_snapshot_finished(Duration::from_secs(30))
        .await;
    let sql = "SELECT id, a, g, b FROM gen_t ORDER BY id";
    wait_identical(&pg, &emulator, sql, sql).await;
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "UPDATE gen_t SET a = -a WHERE id <= 10; INSERT INTO gen_t (id, a, b) VALUES (1000, 7, 'new');",
    )
    .unwrap();
    wait_identical(&pg, &emulator, sql, sql).await;
    running.stop().await;
}

/// The shape built from the catalog equals the one the Relation message carries, for the
/// cases that differ: typmods, domains, arrays, dropped and generated columns, replica
/// identity FULL and USING INDEX, a partitioned root. About 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_shapes_equal_the_relation_messages() {
    let pg = new_database(
        18,
        "CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE TABLE shapes (a int, id bigint PRIMARY KEY, vc varchar(12), n numeric(9,3),
           ts timestamptz(3), p positive, arr text[], dropped int,
           g int GENERATED ALWAYS AS (a * 2) STORED);
         ALTER TABLE shapes DROP COLUMN dropped;
         CREATE TABLE full_t (id int PRIMARY KEY, v text);
         ALTER TABLE full_t REPLICA IDENTITY FULL;
         CREATE TABLE by_index (id int NOT NULL, code text NOT NULL, v text);
         CREATE UNIQUE INDEX by_index_key ON by_index (code, id);
         ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_key;
         CREATE TABLE parted (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');",
    );
    let tables = [
        "public.shapes",
        "public.full_t",
        "public.by_index",
        "public.parted",
    ];
    let state = TempDir::new("dbmazz-snapshot-shapes");
    let mut config = stream_config(&pg, "shop", &tables, &state);
    config.snapshot.mode = dbmazz::config::SnapshotMode::Never;
    let sink = RecordingSink::new();
    let (shutdown, receiver) = watch::channel(false);
    let task_sink = Arc::new(sink.clone());
    let task_config = config.clone();
    let task = tokio::spawn(async move {
        replicator::run(&task_config, task_sink, RunContext::new(receiver))
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    });
    wait_for_streaming(&pg).await;
    pg.psql(
        "shop",
        "INSERT INTO shapes (a, id) VALUES (1, 1); INSERT INTO full_t VALUES (1, 'x');
         INSERT INTO by_index VALUES (1, 'c', 'v'); INSERT INTO parted VALUES (1, 'eu');",
    )
    .unwrap();
    let streamed: Vec<Arc<TableSchema>> = eventually(
        Duration::from_secs(30),
        "four Relation messages",
        || async {
            let shapes: Vec<Arc<TableSchema>> = sink
                .durable_ops()
                .into_iter()
                .filter_map(|op| match op {
                    RecordedOp::SchemaChange { new, .. } => Some(new),
                    _ => None,
                })
                .collect();
            (shapes.len() >= 4).then_some(shapes)
        },
    )
    .await;
    let connect = config.source_connect().unwrap();
    let client = dbmazz::source::connect_sql(&connect).await.unwrap();
    for table in tables {
        let name = TableName::parse(table).unwrap();
        let mut from_catalog = dbmazz::snapshot::table_schema(&client, &name, "test_pub")
            .await
            .unwrap();
        // Under FULL the stream keys by the primary key, read at start (pgoutput flags all).
        dbmazz::schema::KeyOverrides::new(
            [(TableName::new("public", "full_t"), vec!["id".to_string()])].into(),
        )
        .apply(&mut from_catalog)
        .unwrap();
        let from_stream = streamed
            .iter()
            .find(|schema| schema.name == name)
            .unwrap_or_else(|| panic!("no Relation message for {table}"));
        assert!(
            from_catalog.same_shape(from_stream)
                && from_catalog.relation_oid == from_stream.relation_oid,
            "{table}:\ncatalog {from_catalog:?}\nstream  {from_stream:?}"
        );
    }
    shutdown.send_replace(true);
    task.await.unwrap();
}

/// What `dbmazz cleanup --state` leaves — no slot, no state file — makes the next start plan a
/// snapshot at epoch 1, attempt 1 again, while StarRocks still remembers the first snapshot's
/// labels (for days). The new snapshot must load anyway, here into a table emptied by hand.
/// Then the slot kept but the state file lost: nothing says the tables were copied, so they
/// are copied again (not streamed from the slot only).
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_made_after_the_state_was_removed_loads_again() {
    let pg = new_database(
        15,
        "CREATE TABLE again_t (id int PRIMARY KEY, v text);
         INSERT INTO again_t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let sql = "SELECT id, v FROM again_t ORDER BY id";
    for round in 0..3 {
        if round == 1 {
            pg.psql("shop", "SELECT pg_drop_replication_slot('test_slot')")
                .unwrap();
        }
        if round > 0 {
            emulator
                .execute_sql(Some("shop"), "TRUNCATE TABLE again_t")
                .await
                .unwrap();
        }
        // Each start has a state directory of its own: each begins without a state file.
        let mut running = start(&pg, &emulator, &["public.again_t"], |_| {}).await;
        running
            .wait_snapshot_finished(Duration::from_secs(60))
            .await;
        wait_identical(&pg, &emulator, sql, sql).await;
        running.stop().await;
    }
}

/// `snapshot.replace`: the slot is lost and rows are deleted in PostgreSQL meanwhile (no
/// stream will ever carry those deletes). A new snapshot without `replace` upserts over the
/// StarRocks table and leaves the deleted rows there; with `replace` the table is emptied first
/// (recorded as `emptied` in the plan) and ends identical. About 4 s in release.
///
/// One thread, so that every task logs to this test's subscriber: the start without `replace`
/// must warn that the table already holds rows.
#[tokio::test(flavor = "current_thread")]
async fn snapshot_replace_empties_tables_before_a_new_snapshot() {
    let (log, _guard) = CapturedLog::install();
    let pg = new_database(
        18,
        "CREATE TABLE lost_t (id int PRIMARY KEY, v text);
         INSERT INTO lost_t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let sql = "SELECT id, v FROM lost_t ORDER BY id";
    let count = || async { sr_rows(&emulator, "shop", "SELECT COUNT(*) FROM lost_t").await };
    for replace in [None, Some(false), Some(true)] {
        if replace.is_some() {
            pg.psql(
                "shop",
                "SELECT pg_drop_replication_slot('test_slot');
                 DELETE FROM lost_t WHERE id % 30 = 0;",
            )
            .unwrap();
        }
        // Each start has a state directory of its own: a new plan every time.
        let tweak = |config: &mut Config| config.snapshot.replace = replace == Some(true);
        let mut running = start(&pg, &emulator, &["public.lost_t"], tweak).await;
        running
            .wait_snapshot_finished(Duration::from_secs(60))
            .await;
        let plan = StateFile::load(&running.state.0)
            .unwrap()
            .and_then(|file| file.snapshot)
            .unwrap();
        assert_eq!(plan.emptied, replace == Some(true), "{plan:?}");
        let warned = log
            .take()
            .contains("the destination table already holds rows");
        assert_eq!(warned, replace == Some(false), "{replace:?}");
        match replace {
            Some(false) => assert_eq!(count().await, ["3000"], "the deleted rows stay"),
            _ => wait_identical(&pg, &emulator, sql, sql).await,
        }
        running.stop().await;
    }
}

/// A log written to memory, for tests that expect a warning.
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Captures this thread's log (a current-thread runtime: its tasks too) until the guard
    /// drops.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let log = CapturedLog::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged since the last call.
    fn take(&self) -> String {
        let mut bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&std::mem::take(&mut *bytes)).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// `snapshot.mode = "never"` on a first start (no state file, a new slot) copied nothing
/// before, so a StarRocks table that does not exist yet is not reported as lost. Under 1 s.
#[tokio::test(flavor = "current_thread")]
async fn a_first_start_without_a_snapshot_reports_no_lost_tables() {
    let (log, _guard) = CapturedLog::install();
    let pg = new_database(
        15,
        "CREATE TABLE quiet (id int PRIMARY KEY, v text);
         INSERT INTO quiet VALUES (1, 'x');",
    );
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let never = |config: &mut Config| config.snapshot.mode = dbmazz::config::SnapshotMode::Never;
    let running = start(&pg, &emulator, &["public.quiet"], never).await;
    wait_for_streaming(&pg).await;
    running.stop().await;
    let logged = log.take();
    assert!(logged.contains("slot"), "nothing captured: {logged}");
    assert!(!logged.contains("destination table is gone"), "{logged}");
}

/// A transaction left open keeps CREATE_REPLICATION_SLOT waiting: the wait is logged every
/// 10 s with the transaction's pid, and the start goes on once it ends. About 11 s.
#[tokio::test(flavor = "current_thread")]
async fn a_slot_creation_held_up_by_an_open_transaction_names_it() {
    let (log, _guard) = CapturedLog::install();
    let pg = new_database(15, "CREATE TABLE held (id int PRIMARY KEY);");
    let (open, connection) = tokio_postgres::connect(&pg.url("shop"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    open.batch_execute("BEGIN; INSERT INTO held VALUES (1);")
        .await
        .unwrap();
    let pid: i32 = open
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let running = start(&pg, &emulator, &["public.held"], |_| {}).await;
    eventually(Duration::from_secs(20), "the wait logged", || async {
        let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
        logged
            .contains("creating the replication slot waits")
            .then_some(logged)
    })
    .await;
    let logged = log.take();
    assert!(logged.contains(&format!("pid {pid} ")), "{logged}");
    open.batch_execute("COMMIT").await.unwrap();
    wait_for_streaming(&pg).await;
    running.stop().await;
}
