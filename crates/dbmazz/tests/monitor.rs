//! `dbmazz monitor` and `dbmazz status` against a running pipeline: PostgreSQL 15 → dbmazz
//! (in-process, HTTP API on port 0) → the emulator over HTTP/MySQL with soft deletes.
//! About 5 s of wall time (one cluster, one emulator, three short child processes).

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbmazz::config::Config;
use dbmazz::local_pg::{LocalPg, LocalPgOptions};
use dbmazz::monitor::{self, ApiUrl, CountsReading, Gatherer, MonitorOptions, TableCount};
use dbmazz::ops::{self, Telemetry};
use dbmazz::replicator::{self, RunContext};
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use tokio::sync::watch;

use crate::support::{eventually, start_pg, wait_for_streaming, TempDir};

fn config_toml(pg: &LocalPg, emulator: &EmulatorHandle, state: &TempDir, listen: &str) -> String {
    format!(
        r#"
state_dir = "{state}"
[source]
url = "{url}"
publication = "mon_pub"
slot = "mon_slot"
tables = ["public.orders", "public.customers"]
status_interval = "1s"
[sink]
type = "starrocks"
[sink.starrocks]
fe_http = "http://{fe}"
mysql = "{mysql}"
user = "root"
password = ""
database = "mon"
delete_mode = "soft"
table_properties = {{ replication_num = "1" }}
[batch]
max_wait = "100ms"
[http]
listen = "{listen}"
"#,
        state = state.0.display(),
        url = pg.url("mon"),
        fe = emulator.fe_http_addr(),
        mysql = emulator.mysql_addr().unwrap(),
    )
}

fn dbmazz(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dbmazz"))
        .args(args)
        .output()
        .unwrap()
}

/// The monitor's options for `config`, refreshing every 200 ms.
fn fast_options(config: &dbmazz::config::Config) -> MonitorOptions {
    let mut options = MonitorOptions::from_config(config, None).unwrap();
    options.refresh = Duration::from_millis(200);
    options
}

/// The text loop in-process, writing to `output`; send `true` to stop it.
fn spawn_text_monitor(
    options: MonitorOptions,
    output: &SharedOutput,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), monitor::MonitorError>>,
) {
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(monitor::run_text(options, false, output.clone(), shutdown));
    (stop, task)
}

/// A `Write` the test can read while the monitor owns it.
#[derive(Clone, Default)]
struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl Write for SharedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedOutput {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_and_status_read_a_running_pipeline() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("mon").unwrap();
    pg.psql(
        "mon",
        "CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL);
         CREATE TABLE customers (id bigint PRIMARY KEY, name text);",
    )
    .unwrap();
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let state = TempDir::new("dbmazz-monitor-test");
    let telemetry = Telemetry::new();
    let server = ops::serve("127.0.0.1:0", Arc::clone(&telemetry))
        .await
        .unwrap();
    let listen = server.local_addr().to_string();
    let toml = config_toml(&pg, &emulator, &state, &listen);
    let config_path = state.0.join("dbmazz.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let config = Config::from_toml(&toml).unwrap();

    let sink = dbmazz::sink::starrocks::connect_sink(&config)
        .await
        .unwrap();
    let (shutdown, receiver) = watch::channel(false);
    let context = RunContext::new(receiver).with_telemetry(Arc::clone(&telemetry));
    let run_config = config.clone();
    let task =
        tokio::spawn(async move { replicator::run(&run_config, Arc::new(sink), context).await });
    wait_for_streaming(&pg).await;
    pg.psql(
        "mon",
        "INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 100) g;
         INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 7) g;
         UPDATE orders SET status = 'paid' WHERE id <= 10;
         DELETE FROM orders WHERE id > 97;",
    )
    .unwrap();
    let api = ApiUrl::parse(&listen).unwrap();
    eventually(Duration::from_secs(30), "every change durable", || async {
        let status = api.status().await.ok()?;
        let orders = status.tables.iter().find(|t| t.table == "public.orders")?;
        (orders.rows_replicated() == 113 && status.tables.len() == 2).then_some(())
    })
    .await;

    // --once: one line from a process whose stdout is not a terminal.
    let config_arg = config_path.to_str().unwrap();
    let once = dbmazz(&["monitor", "--config", config_arg, "--once"]);
    let stdout = String::from_utf8_lossy(&once.stdout);
    let stderr = String::from_utf8_lossy(&once.stderr);
    println!("dbmazz monitor --once:\n{stdout}");
    assert!(once.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    for expected in [
        " streaming | lag ",
        // StarRocks live rows / PostgreSQL rows, and the soft-deleted rows apart.
        "| customers 7/7 100% del 0 |",
        "| orders 97/97 100% del 3",
    ] {
        assert!(stdout.contains(expected), "{expected:?} not in {stdout}");
    }

    // The text loop in-process (the demo's entry point): a line per refresh.
    let output = SharedOutput::default();
    let mut options = fast_options(&config);
    let (extra, extra_line) = watch::channel("traffic: 3 ops".to_string());
    options.extra_line = Some(extra_line);
    let (stop_monitor, monitor_task) = spawn_text_monitor(options, &output);
    eventually(Duration::from_secs(20), "three text lines", || async {
        (output.lines().len() >= 3).then_some(())
    })
    .await;
    extra.send_replace("traffic: 4 ops".into());
    pg.psql("mon", "INSERT INTO orders VALUES (500, 'late');")
        .unwrap();
    eventually(Duration::from_secs(20), "the new row counted", || async {
        let lines = output.lines();
        let last = lines.last()?;
        (last.contains("| orders 98/98 100% del 3 |") && last.ends_with("| traffic: 4 ops"))
            .then_some(())
    })
    .await;
    stop_monitor.send_replace(true);
    monitor_task.await.unwrap().unwrap();
    let lines = output.lines();
    println!("text mode:\n{}", lines.join("\n"));
    assert!(
        lines.iter().skip(1).any(|line| line.contains(" rows/s ")),
        "{lines:#?}"
    );

    // A StarRocks that accepts connections and never answers holds back only its counts: the
    // lines keep coming at the refresh rate with fresh /status figures (each line waited out
    // the 5 s count timeout before).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_address = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let output = SharedOutput::default();
    let mut options = fast_options(&config);
    if let Some(starrocks) = options.starrocks.as_mut() {
        starrocks.mysql = silent_address;
    }
    let (stop_monitor, monitor_task) = spawn_text_monitor(options, &output);
    eventually(Duration::from_secs(20), "a first line", || async {
        (!output.lines().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_monitor.send_replace(true);
    monitor_task.await.unwrap().unwrap();
    let lines = output.lines();
    assert!(
        lines.len() >= 6,
        "a stalled StarRocks held the monitor back: {lines:#?}"
    );

    // dbmazz status: the table, and the JSON as served.
    let url = format!("http://{listen}");
    let status = dbmazz(&["status", "--url", &url]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    println!("dbmazz status:\n{stdout}");
    assert!(status.status.success(), "{stdout}");
    for expected in [
        "state      streaming",
        "source     database mon, publication mon_pub, slot mon_slot -> sink starrocks",
        "public.orders",
        "public.customers",
    ] {
        assert!(stdout.contains(expected), "{expected:?} not in {stdout}");
    }
    let json = dbmazz(&["status", "--config", config_arg, "--json"]);
    assert!(json.status.success());
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["state"], "streaming");
    assert_eq!(document["source"]["slot"], "mon_slot");

    // The screen's p and r keys: POST /pause and /resume through the same client.
    api.set_paused(true).await.unwrap();
    eventually(Duration::from_secs(10), "state paused", || async {
        (api.status().await.ok()?.state == "paused").then_some(())
    })
    .await;
    api.set_paused(false).await.unwrap();
    eventually(Duration::from_secs(10), "state streaming", || async {
        (api.status().await.ok()?.state == "streaming").then_some(())
    })
    .await;

    shutdown.send_replace(true);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn postgres_counts_are_exact_for_small_tables_and_estimated_for_big_ones() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("counts").unwrap();
    // A big table without the rows: the planner's estimate is what a big table would have.
    pg.psql(
        "counts",
        "CREATE TABLE small (id int PRIMARY KEY);
         INSERT INTO small SELECT generate_series(1, 42);
         CREATE TABLE big (id int PRIMARY KEY);
         INSERT INTO big SELECT generate_series(1, 10);
         UPDATE pg_class SET reltuples = 2500000 WHERE relname = 'big';",
    )
    .unwrap();
    let dead_api = ApiUrl::parse("127.0.0.1:9").unwrap();
    let postgres = dbmazz::source::PgConnectConfig::from_url(&pg.url("counts")).unwrap();
    let tables = ["public.small", "public.big", "public.missing"]
        .iter()
        .map(|name| dbmazz::schema::TableName::parse(name).unwrap())
        .collect();
    let mut gatherer = Gatherer::new(dead_api, Some(postgres), None, tables, false);
    let snapshot = gatherer.gather().await;
    assert!(
        snapshot.status.is_err(),
        "the API is down, the counts go on"
    );
    assert_eq!(snapshot.starrocks, CountsReading::NotConfigured);
    let count = |table: &str| snapshot.postgres.table(table).cloned().unwrap();
    assert_eq!(
        count("public.small"),
        Ok(TableCount {
            rows: 42,
            estimated: false,
            soft_deleted: None
        })
    );
    assert_eq!(
        count("public.big"),
        Ok(TableCount {
            rows: 2_500_000,
            estimated: true,
            soft_deleted: None
        })
    );
    assert_eq!(count("public.missing"), Err("no such table".to_string()));
    gatherer.close().await;

    // Out of budget: one table per round, in turn, the others keep their last count.
    let postgres = dbmazz::source::PgConnectConfig::from_url(&pg.url("counts")).unwrap();
    let tables = ["public.small", "public.big"]
        .iter()
        .map(|name| dbmazz::schema::TableName::parse(name).unwrap())
        .collect();
    let mut gatherer = Gatherer::new(
        ApiUrl::parse("127.0.0.1:9").unwrap(),
        Some(postgres),
        None,
        tables,
        false,
    )
    .with_postgres_count_budget(Duration::ZERO);
    let counted = |reading: &CountsReading| match reading {
        CountsReading::Counts(counts) => counts.keys().cloned().collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(counted(&gatherer.gather().await.postgres), ["public.small"]);
    pg.psql("counts", "INSERT INTO small VALUES (100);")
        .unwrap();
    let second = gatherer.gather().await.postgres;
    assert_eq!(counted(&second), ["public.big", "public.small"]);
    assert_eq!(
        second.table("public.small").unwrap().as_ref().unwrap().rows,
        42
    );
    let third = gatherer.gather().await.postgres;
    assert_eq!(
        third.table("public.small").unwrap().as_ref().unwrap().rows,
        43
    );
    gatherer.close().await;

    // PostgreSQL down: the whole source fails with the connection error, and says where.
    drop(pg);
    let mut gatherer = Gatherer::new(
        ApiUrl::parse("127.0.0.1:9").unwrap(),
        Some(dbmazz::source::PgConnectConfig::from_url("postgres://u@127.0.0.1:9/x").unwrap()),
        None,
        vec![dbmazz::schema::TableName::parse("public.small").unwrap()],
        false,
    );
    match gatherer.gather().await.postgres {
        CountsReading::Failed(error) => assert!(error.contains("127.0.0.1"), "{error}"),
        other => panic!("expected a failed source, got {other:?}"),
    }
}

#[test]
fn status_and_monitor_against_a_dead_port_exit_1_with_a_clear_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["status", "--url", &url],
        vec!["status", "--url", &url, "--json"],
        vec!["monitor", "--url", &url, "--once"],
    ] {
        let output = dbmazz(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot reach the dbmazz HTTP API at {url}/status")),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("is `dbmazz run` running? is http.listen (127.0.0.1:"),
            "{args:?}: {stderr}"
        );
    }
}
