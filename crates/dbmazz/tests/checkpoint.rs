//! Checkpoints against real PostgreSQL: the slot never passes what the sink made durable,
//! an idle publication does not pin WAL, and a killed process resumes without loss.

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbmazz::local_pg::{LocalPg, LocalPgOptions};
use dbmazz::replicator::{self, RunContext};
use dbmazz::sink::RecordingSink;
use dbmazz::Lsn;
use tokio::sync::watch;

use crate::support::{eventually, start_pg, stream_config, TempDir, PG_VERSIONS};

fn confirmed_flush(pg: &LocalPg, slot: &str) -> Option<Lsn> {
    let text = pg
        .psql(
            "shop",
            &format!(
                "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
            ),
        )
        .ok()?;
    text.parse().ok()
}

fn current_wal(pg: &LocalPg) -> Lsn {
    pg.psql("shop", "SELECT pg_current_wal_insert_lsn()")
        .unwrap()
        .parse()
        .unwrap()
}

fn prepare(major: u32) -> LocalPg {
    let pg = start_pg(major, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text);
         CREATE TABLE items (id bigint PRIMARY KEY, note text);
         CREATE TABLE unpublished (id bigint PRIMARY KEY, note text);",
    )
    .unwrap();
    pg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slot_never_passes_what_the_sink_made_durable() {
    for major in PG_VERSIONS {
        let pg = prepare(major);
        let state = TempDir::new("dbmazz-checkpoint-test");
        let config = stream_config(&pg, "shop", &["public.orders"], &state);
        let sink = RecordingSink::new();
        sink.hold();
        let (shutdown, receiver) = watch::channel(false);
        let task_sink = Arc::new(sink.clone());
        let task = tokio::spawn(async move {
            replicator::run(&config, task_sink, RunContext::new(receiver)).await
        });
        let start = eventually(Duration::from_secs(30), "slot", || async {
            confirmed_flush(&pg, "test_slot")
        })
        .await;
        pg.psql(
            "shop",
            "INSERT INTO orders SELECT g, 'a' FROM generate_series(1, 1000) g;
             INSERT INTO orders VALUES (5000, 'b');",
        )
        .unwrap();
        let written = current_wal(&pg);
        // Several status intervals (1 s) pass while the sink holds everything.
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let confirmed = confirmed_flush(&pg, "test_slot").unwrap();
            assert_eq!(
                confirmed, start,
                "PG{major}: slot moved to {confirmed} while nothing was durable"
            );
        }
        sink.release();
        let confirmed = eventually(Duration::from_secs(30), "slot to advance", || async {
            confirmed_flush(&pg, "test_slot").filter(|lsn| *lsn >= written)
        })
        .await;
        assert!(
            sink.highest_durable_commit() < confirmed,
            "PG{major}: durable commit {} vs confirmed {confirmed}, written {written}, batches {:?}",
            sink.highest_durable_commit(),
            sink.durable_ops().iter().filter_map(|op| match op { dbmazz::sink::RecordedOp::Batch(b) => Some((b.first_commit_lsn, b.last_commit_lsn, b.changes.len())), _ => None }).collect::<Vec<_>>()
        );
        assert_eq!(sink.durable_changes().len(), 1001);
        shutdown.send_replace(true);
        task.await.unwrap().unwrap();
    }
}

/// A stop while a large transaction is still open (PostgreSQL already streams its changes)
/// does not wait for a commit that cannot arrive — it used to wait out the whole 30 s
/// shutdown timeout. Nothing of the transaction is confirmed, and the next run receives all of
/// it once it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_inside_an_open_streamed_transaction_does_not_wait_for_its_commit() {
    for major in PG_VERSIONS {
        let pg = prepare(major);
        let state = TempDir::new("dbmazz-checkpoint-open-txn");
        let config = stream_config(&pg, "shop", &["public.orders"], &state);
        let sink = RecordingSink::new();
        let (shutdown, receiver) = watch::channel(false);
        let (progress, mut watching) = watch::channel(replicator::Progress::default());
        let mut context = RunContext::new(receiver);
        context.progress = Some(progress);
        let (task_config, task_sink) = (config.clone(), Arc::new(sink.clone()));
        let task =
            tokio::spawn(async move { replicator::run(&task_config, task_sink, context).await });
        crate::support::wait_for_streaming(&pg).await;
        let (open, connection) = tokio_postgres::connect(&pg.url("shop"), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        open.batch_execute(
            "BEGIN; INSERT INTO orders SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;",
        )
        .await
        .unwrap();
        tokio::time::timeout(
            Duration::from_secs(30),
            watching.wait_for(|p| p.stats.assembler.streamed_open > 0),
        )
        .await
        .unwrap_or_else(|_| panic!("PG{major}: the open transaction was never streamed"))
        .unwrap();
        let confirmed_before = confirmed_flush(&pg, "test_slot").unwrap();
        let asked = Instant::now();
        shutdown.send_replace(true);
        task.await.unwrap().unwrap();
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "PG{major}: the stop waited {:?} for a transaction that had not committed",
            asked.elapsed()
        );
        assert!(
            sink.durable_changes().is_empty(),
            "PG{major}: uncommitted rows left"
        );
        assert_eq!(confirmed_flush(&pg, "test_slot"), Some(confirmed_before));

        open.batch_execute("COMMIT").await.unwrap();
        let (shutdown, receiver) = watch::channel(false);
        let task_sink = Arc::new(sink.clone());
        let task = tokio::spawn(async move {
            replicator::run(&config, task_sink, RunContext::new(receiver)).await
        });
        eventually(
            Duration::from_secs(60),
            "the committed transaction",
            || async { (sink.durable_changes().len() >= 20000).then_some(()) },
        )
        .await;
        assert_eq!(sink.durable_changes().len(), 20000, "PG{major}");
        shutdown.send_replace(true);
        task.await.unwrap().unwrap();
    }
}

/// A PostgreSQL restart (fast shutdown) ends the stream with a message that names it; the next
/// start resumes from the slot. About 2 s per version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_is_named_and_the_next_start_resumes() {
    for major in PG_VERSIONS {
        let mut pg = prepare(major);
        let state = TempDir::new("dbmazz-pg-restart");
        let config = stream_config(&pg, "shop", &["public.orders"], &state);
        let sink = RecordingSink::new();
        let (_shutdown, receiver) = watch::channel(false);
        let (task_sink, task_config) = (Arc::new(sink.clone()), config.clone());
        let task = tokio::spawn(async move {
            replicator::run(&task_config, task_sink, RunContext::new(receiver)).await
        });
        eventually(Duration::from_secs(30), "slot", || async {
            confirmed_flush(&pg, "test_slot")
        })
        .await;
        pg.psql("shop", "INSERT INTO orders VALUES (1, 'before')")
            .unwrap();
        eventually(Duration::from_secs(30), "the first change", || async {
            (sink.durable_changes().len() == 1).then_some(())
        })
        .await;
        pg.restart_fast().unwrap();
        let error = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the run stops")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("PostgreSQL ended the replication stream")
                && error.contains("start dbmazz again"),
            "PG{major}: {error}"
        );
        pg.psql("shop", "INSERT INTO orders VALUES (2, 'after')")
            .unwrap();
        let (shutdown, receiver) = watch::channel(false);
        let task_sink = Arc::new(sink.clone());
        let task = tokio::spawn(async move {
            replicator::run(&config, task_sink, RunContext::new(receiver)).await
        });
        eventually(
            Duration::from_secs(30),
            "the change made while stopped",
            || async { (sink.durable_changes().len() >= 2).then_some(()) },
        )
        .await;
        shutdown.send_replace(true);
        task.await.unwrap().unwrap();
    }
}

/// A StarRocks FE that accepts connections and never answers (a hung server): SIGTERM stops a
/// run that is still starting at once, with exit code 0 (nothing was acknowledged). Before,
/// the start waited on the FE forever and the signal only logged. About 4 s.
#[test]
fn a_signal_stops_a_run_waiting_on_a_silent_starrocks() {
    let pg = prepare(15);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let state = TempDir::new("dbmazz-silent-starrocks");
    let config_path = state.0.join("dbmazz.toml");
    std::fs::write(
        &config_path,
        format!(
            "state_dir = {state:?}\n[source]\nurl = {url:?}\npublication = \"p\"\nslot = \"s\"\n\
             tables = [\"public.orders\"]\n[sink.starrocks]\nfe_http = \"http://{address}\"\n\
             mysql = \"{address}\"\nuser = \"root\"\npassword = \"\"\ndatabase = \"shop\"\n\
             [http]\nlisten = \"\"\n",
            state = state.0.join("state").display().to_string(),
            url = pg.url("shop"),
        ),
    )
    .unwrap();
    let log = state.0.join("dbmazz.log");
    let mut child = spawn_dbmazz(&config_path, &log);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "dbmazz did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("stopped while starting"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_publication_does_not_pin_wal() {
    for major in PG_VERSIONS {
        let pg = prepare(major);
        let state = TempDir::new("dbmazz-checkpoint-test");
        let mut config = stream_config(&pg, "shop", &["public.orders"], &state);
        config.source.status_interval.0 = Duration::from_millis(500);
        let (shutdown, receiver) = watch::channel(false);
        let sink = Arc::new(RecordingSink::new());
        let task =
            tokio::spawn(
                async move { replicator::run(&config, sink, RunContext::new(receiver)).await },
            );
        eventually(Duration::from_secs(30), "slot", || async {
            confirmed_flush(&pg, "test_slot")
        })
        .await;
        pg.psql(
            "shop",
            "INSERT INTO unpublished SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;",
        )
        .unwrap();
        let written = current_wal(&pg);
        // Keepalives come at least every wal_sender_timeout/2; ask for one sooner with a
        // non-transactional message, which is not published either.
        eventually(
            Duration::from_secs(60),
            "slot to follow the WAL",
            || async {
                let _ = pg.psql("shop", "SELECT pg_logical_emit_message(false, 'tick', '')");
                confirmed_flush(&pg, "test_slot").filter(|lsn| *lsn >= written)
            },
        )
        .await;
        shutdown.send_replace(true);
        task.await.unwrap().unwrap();
    }
}

/// A small deterministic generator (no extra dependency for one test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn spawn_dbmazz(config_path: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_dbmazz"))
        .args(["run", "--config"])
        .arg(config_path)
        .env("DBMAZZ_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("dbmazz binary starts")
}

/// Every line of the file sink's output: (table, op, commit LSN, first value).
fn read_changes(path: &std::path::Path) -> Vec<(String, String, Lsn, Option<String>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|value| value["commit_lsn"].is_string())
        .map(|value| {
            (
                value["table"].as_str().unwrap_or_default().to_string(),
                value["op"].as_str().unwrap_or_default().to_string(),
                value["commit_lsn"].as_str().unwrap().parse().unwrap(),
                value["new"][0].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Ids inserted into `orders` by transactions that committed before `upto`, per an audit
/// slot (test_decoding) created before the workload.
fn committed_ids_before(pg: &LocalPg, upto: Lsn) -> BTreeSet<String> {
    let rows = pg
        .psql(
            "shop",
            &format!("SELECT data FROM pg_logical_slot_peek_changes('audit', '{upto}', NULL)"),
        )
        .unwrap();
    rows.lines()
        .filter(|line| line.starts_with("table public.orders: INSERT:"))
        .filter_map(|line| {
            let rest = line.split("id[bigint]:").nth(1)?;
            Some(rest.split_whitespace().next()?.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_committed_change_arrives_in_order() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut random = Lcg(seed);
    for major in PG_VERSIONS {
        let pg = prepare(major);
        pg.psql(
            "shop",
            "SELECT pg_create_logical_replication_slot('audit', 'test_decoding')",
        )
        .unwrap();
        let dir = TempDir::new("dbmazz-kill-test");
        let changes_path = dir.0.join("changes.jsonl");
        let config_path = dir.0.join("dbmazz.toml");
        std::fs::write(
            &config_path,
            format!(
                "state_dir = \"{state}\"\n[source]\nurl = \"{url}\"\npublication = \"kill_pub\"\n\
                 slot = \"kill_slot\"\ntables = [\"public.orders\", \"public.items\"]\n\
                 status_interval = \"200ms\"\n[sink]\ntype = \"file\"\n[sink.file]\npath = \"{changes}\"\n\
                 [batch]\nmax_wait = \"50ms\"\n[http]\nlisten = \"\"\n",
                state = dir.0.join("state").display(),
                url = pg.url("shop"),
                changes = changes_path.display(),
            ),
        )
        .unwrap();
        let writer_pg_url = pg.url("shop");
        let _ = writer_pg_url;
        let total_batches = 12;
        let mut next_id = 1;
        let mut restarts: Vec<(usize, Lsn)> = Vec::new();
        for round in 0..4 {
            // Where this run starts, read before it can write anything: the previous process
            // is dead, so the file and the slot are still. (Slot position 0 before the
            // first run: the slot does not exist yet.)
            restarts.push((
                read_changes(&changes_path).len(),
                confirmed_flush(&pg, "kill_slot").unwrap_or(Lsn::ZERO),
            ));
            let log_path = dir.0.join("dbmazz.log");
            let mut child = spawn_dbmazz(&config_path, &log_path);
            let started = Instant::now();
            loop {
                let active = pg
                    .psql("shop", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'kill_slot' AND active")
                    .unwrap_or_default();
                if active == "1" {
                    break;
                }
                if started.elapsed() > Duration::from_secs(30)
                    || child.try_wait().unwrap().is_some()
                {
                    let _ = child.kill();
                    panic!(
                        "PG{major}: dbmazz did not start streaming; its log:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Write while it streams, then kill it at a random moment.
            let batches = if round == 3 { total_batches } else { 3 };
            for _ in 0..batches {
                let mut script = String::new();
                for _ in 0..50 {
                    script.push_str(&format!(
                        "INSERT INTO orders VALUES ({next_id}, 'r{round}'); INSERT INTO items VALUES ({next_id}, 'x');\n"
                    ));
                    next_id += 1;
                }
                script.push_str(
                    "BEGIN; UPDATE orders SET note = 'updated' WHERE id % 7 = 0; COMMIT;\n",
                );
                pg.psql("shop", &script).unwrap();
                tokio::time::sleep(Duration::from_millis(random.next(150))).await;
            }
            if round < 3 {
                tokio::time::sleep(Duration::from_millis(random.next(400))).await;
                child.kill().unwrap();
                child.wait().unwrap();
                // The slot never passed what the file sink made durable.
                let confirmed = confirmed_flush(&pg, "kill_slot").unwrap();
                let committed = committed_ids_before(&pg, confirmed);
                let delivered: BTreeSet<String> = read_changes(&changes_path)
                    .into_iter()
                    .filter(|change| change.0 == "public.orders" && change.1 == "insert")
                    .filter_map(|change| change.3)
                    .collect();
                let missing: Vec<_> = committed.difference(&delivered).take(5).collect();
                assert!(
                    missing.is_empty(),
                    "PG{major} round {round}: slot at {confirmed} passed undelivered ids {missing:?}"
                );
            } else {
                // Let it catch up, then stop it gracefully.
                let expected_ids = next_id - 1;
                eventually(Duration::from_secs(60), "catch-up", || async {
                    let delivered: BTreeSet<String> = read_changes(&changes_path)
                        .into_iter()
                        .filter(|change| change.0 == "public.orders" && change.1 == "insert")
                        .filter_map(|change| change.3)
                        .collect();
                    (delivered.len() as u64 == expected_ids).then_some(())
                })
                .await;
                let pid = child.id().to_string();
                Command::new("kill").args(["-TERM", &pid]).status().unwrap();
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if let Some(status) = child.try_wait().unwrap() {
                        assert!(
                            status.success(),
                            "PG{major}: graceful stop exits 0: {status}"
                        );
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "PG{major}: SIGTERM did not stop dbmazz"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        // Order: within each run, each table's changes arrive in commit order; a run replays
        // from the slot position it started at, never from before it.
        let changes = read_changes(&changes_path);
        for (index, (start_line, slot_position)) in restarts.iter().enumerate() {
            let end_line = restarts.get(index + 1).map_or(changes.len(), |next| next.0);
            let mut last: HashMap<&str, Lsn> = HashMap::new();
            for change in &changes[*start_line..end_line.max(*start_line)] {
                assert!(
                    change.2 >= *slot_position,
                    "PG{major}: run {index} replayed {} from before the slot position {slot_position}",
                    change.2
                );
                let previous = last.insert(change.0.as_str(), change.2);
                assert!(
                    previous.is_none_or(|previous| previous <= change.2),
                    "PG{major}: run {index}: {} out of commit order",
                    change.0
                );
            }
        }
        let orders_updates = changes
            .iter()
            .filter(|change| change.0 == "public.orders" && change.1 == "update")
            .count();
        assert!(orders_updates > 0);
    }
}
