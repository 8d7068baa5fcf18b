//! `dbmazz run` with the StarRocks sink (the emulator in this process) is killed with SIGKILL
//! at random moments while a writer keeps committing; after every kill the slot has not passed
//! anything the emulator lacks, and at the end the tables equal PostgreSQL.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbmazz::local_pg::{LocalPg, LocalPgOptions};
use dbmazz::Lsn;
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Value};

use crate::support::starrocks::{
    binary_config, confirmed_flush, pg_rows, slot_active, spawn_dbmazz, sr_rows, wait_identical_in,
    BinarySink,
};
use crate::support::{start_pg, TempDir};

const SLOT: &str = "kill_slot";
const ROUNDS: usize = 20;

/// Ledger ids (insert-only table) committed before `upto`, per the test_decoding audit slot
/// created before any write.
fn ledger_ids_committed_before(pg: &LocalPg, upto: Lsn) -> BTreeSet<i64> {
    let rows = pg
        .psql(
            "shop",
            &format!("SELECT data FROM pg_logical_slot_peek_changes('audit', '{upto}', NULL)"),
        )
        .unwrap();
    rows.lines()
        .filter(|line| line.starts_with("table public.ledger: INSERT:"))
        .filter_map(|line| {
            let rest = line.split("id[bigint]:").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

fn ledger_ids_in_emulator(emulator: &EmulatorHandle) -> BTreeSet<i64> {
    emulator
        .table_rows("shop", "ledger")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|row| match row.first() {
            Some(Value::Int(id)) => i64::try_from(*id).ok(),
            _ => None,
        })
        .collect()
}

/// Commits small random transactions until `stop`: one ledger insert each, plus an insert,
/// update, delete or key change of `orders`; one in ten is rolled back.
async fn writer(url: String, stop: Arc<AtomicBool>, committed: Arc<AtomicU64>, seed: u64) {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut next = 0i64;
    let mut live: Vec<i64> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        next += 1;
        let ledger = next;
        let mut sql = format!("BEGIN; INSERT INTO ledger VALUES ({ledger}, 'w');");
        let mut after = live.clone();
        match rng.u8(0..4) {
            _ if after.len() < 20 => {
                next += 1;
                sql.push_str(&format!(
                    "INSERT INTO orders VALUES ({next}, 'new', {}, repeat('n', {}));",
                    rng.i32(..),
                    rng.usize(0..3000)
                ));
                after.push(next);
            }
            0 => {
                next += 1;
                sql.push_str(&format!(
                    "INSERT INTO orders VALUES ({next}, 'new', 1, 'x');"
                ));
                after.push(next);
            }
            1 => {
                let id = after[rng.usize(..after.len())];
                sql.push_str(&format!(
                    "UPDATE orders SET status = 's{}', amount = amount / 2 WHERE id = {id};",
                    rng.u8(..)
                ));
            }
            2 => {
                let id = after.swap_remove(rng.usize(..after.len()));
                sql.push_str(&format!("DELETE FROM orders WHERE id = {id};"));
            }
            _ => {
                let index = rng.usize(..after.len());
                next += 1;
                sql.push_str(&format!(
                    "UPDATE orders SET id = {next} WHERE id = {};",
                    after[index]
                ));
                after[index] = next;
            }
        }
        if rng.u8(0..10) == 0 {
            sql.push_str("ROLLBACK;");
            client.batch_execute(&sql).await.unwrap();
        } else {
            sql.push_str("COMMIT;");
            client.batch_execute(&sql).await.unwrap();
            live = after;
            committed.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(1..8))).await;
    }
}

async fn wait_until(what: &str, log: &std::path::Path, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}; dbmazz log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_loses_or_skips_data() {
    let seed = std::env::var("DBMAZZ_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (DBMAZZ_TEST_SEED={seed} replays the kill moments)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let pg = start_pg(18, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders (id bigint PRIMARY KEY, status text, amount int, note text);
         ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL;
         CREATE TABLE ledger (id bigint PRIMARY KEY, source text);
         SELECT pg_create_logical_replication_slot('audit', 'test_decoding');",
    )
    .unwrap();
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let dir = TempDir::new("dbmazz-sr-kill-test");
    let config_path = dir.0.join("dbmazz.toml");
    let log_path = dir.0.join("dbmazz.log");
    std::fs::write(
        &config_path,
        binary_config(
            &pg.url("shop"),
            SLOT,
            &["public.orders", "public.ledger"],
            &dir.0.join("state"),
            &BinarySink::emulator(&emulator, "shop"),
        ),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let mut writer_task = None;
    let mut checked_ids = 0;
    for round in 0..ROUNDS {
        // A killed walsender takes a moment to release the slot.
        wait_until("the slot to be released", &log_path, || {
            !slot_active(&pg, SLOT)
        })
        .await;
        let mut child = spawn_dbmazz(&config_path, &log_path);
        wait_until("dbmazz to stream", &log_path, || {
            slot_active(&pg, SLOT) || child.try_wait().unwrap().is_some()
        })
        .await;
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "round {round}: dbmazz exited with {status}; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if writer_task.is_none() {
            writer_task = Some(tokio::spawn(writer(
                pg.url("shop"),
                Arc::clone(&stop),
                Arc::clone(&committed),
                seed,
            )));
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..1200))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        // The process is dead: the emulator and the slot are still (for this check).
        let emulator_ids = ledger_ids_in_emulator(&emulator);
        let Some(confirmed) = confirmed_flush(&pg, "shop", SLOT) else {
            continue;
        };
        let committed_ids = ledger_ids_committed_before(&pg, confirmed);
        let missing: Vec<_> = committed_ids.difference(&emulator_ids).take(5).collect();
        assert!(
            missing.is_empty(),
            "round {round}: the slot confirmed {confirmed} but the emulator lacks ledger ids {missing:?}"
        );
        checked_ids = committed_ids.len();
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(task) = writer_task {
        task.await.unwrap();
    }
    // A last run catches up; then both tables equal PostgreSQL, and SIGTERM exits 0.
    wait_until("the slot to be released", &log_path, || {
        !slot_active(&pg, SLOT)
    })
    .await;
    let mut child = spawn_dbmazz(&config_path, &log_path);
    for sql in [
        "SELECT id, status, amount, note FROM orders ORDER BY id",
        "SELECT id, source FROM ledger ORDER BY id",
    ] {
        wait_identical_in(&pg, &emulator, "shop", sql, sql, Duration::from_secs(60)).await;
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0: {status}");
    let stats = emulator.table_stats("shop", "ledger").unwrap();
    println!(
        "{ROUNDS} kills, {} transactions committed, {checked_ids} ledger ids checked at the last kill, \
         {} loads; {:.1}s",
        committed.load(Ordering::Relaxed),
        stats.loads,
        started.elapsed().as_secs_f64()
    );
}

/// A restart replays from the slot while StarRocks holds newer rows (another table's load kept
/// the slot back). The replay cuts the table's changes differently (here: insert and update in
/// one batch) and so loads an older image of a row again; a later batch that the first run
/// had loaded under the same label must then be loaded again too — skipping it as "already
/// loaded" left the deleted row in StarRocks (chaos walkthrough: deletes and updates lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_loads_again_what_an_earlier_run_loaded_after_an_older_image() {
    use starrocks_emulator::{FaultKind, FaultRule};
    const SLOT: &str = "rewind_slot";
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE pin (id int PRIMARY KEY, v int);
         CREATE TABLE rows_t (id int PRIMARY KEY, v int);",
    )
    .unwrap();
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let dir = TempDir::new("dbmazz-sr-rewind-test");
    let config_path = dir.0.join("dbmazz.toml");
    let log_path = dir.0.join("dbmazz.log");
    let mut sink = BinarySink::emulator(&emulator, "shop");
    sink.extra = "retry_max_elapsed = \"10m\"\n".into();
    let config = binary_config(
        &pg.url("shop"),
        SLOT,
        &["public.pin", "public.rows_t"],
        &dir.0.join("state"),
        &sink,
    )
    .replace("max_wait = \"100ms\"", "max_wait = \"1s\"\nmax_rows = 3");
    std::fs::write(&config_path, config).unwrap();

    let mut child = spawn_dbmazz(&config_path, &log_path);
    wait_until("dbmazz to stream", &log_path, || slot_active(&pg, SLOT)).await;
    // Loads of `pin` keep failing (retried): the slot cannot pass its change.
    emulator.inject(
        FaultRule::new(FaultKind::TooManyVersions)
            .times(1_000_000)
            .table("pin"),
    );
    pg.psql("shop", "INSERT INTO pin VALUES (1, 1)").unwrap();
    let pinned_at: Lsn = pg
        .psql("shop", "SELECT pg_current_wal_insert_lsn()")
        .unwrap()
        .parse()
        .unwrap();
    // One batch each in this run (more than max_wait apart).
    let rows =
        |emulator: &EmulatorHandle| emulator.table_rows("shop", "rows_t").unwrap_or_default();
    pg.psql("shop", "INSERT INTO rows_t VALUES (1, 1), (2, 1)")
        .unwrap();
    wait_until("the insert", &log_path, || rows(&emulator).len() == 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.psql("shop", "UPDATE rows_t SET v = 2 WHERE id = 1")
        .unwrap();
    wait_until("the update", &log_path, || {
        rows(&emulator).contains(&vec![Value::Int(1), Value::Int(2)])
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.psql("shop", "DELETE FROM rows_t WHERE id = 1").unwrap();
    wait_until("the delete", &log_path, || rows(&emulator).len() == 1).await;
    let confirmed = confirmed_flush(&pg, "shop", SLOT).unwrap();
    assert!(
        confirmed < pinned_at,
        "the slot passed the pinned change: {confirmed} >= {pinned_at}"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // The replay: pin's change loads now, rows_t's insert and update form one batch (two
    // rows and the update: three, a full batch), the delete is the batch the first run loaded under the same label.
    emulator.clear_faults();
    wait_until("the slot to be released", &log_path, || {
        !slot_active(&pg, SLOT)
    })
    .await;
    let mut child = spawn_dbmazz(&config_path, &log_path);
    wait_identical_in(
        &pg,
        &emulator,
        "shop",
        "SELECT id, v FROM pin ORDER BY id",
        "SELECT id, v FROM pin ORDER BY id",
        Duration::from_secs(30),
    )
    .await;
    // Once the slot passed the delete, the replay is over: StarRocks must equal PostgreSQL.
    let end: Lsn = pg
        .psql("shop", "SELECT pg_current_wal_insert_lsn()")
        .unwrap()
        .parse()
        .unwrap();
    wait_until("the replay to pass the delete", &log_path, || {
        confirmed_flush(&pg, "shop", SLOT).is_some_and(|confirmed| confirmed >= end)
    })
    .await;
    let sql = "SELECT id, v FROM rows_t ORDER BY id";
    assert_eq!(
        sr_rows(&emulator, "shop", sql).await,
        pg_rows(&pg, "shop", sql),
        "rows_t after the replay; dbmazz log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
