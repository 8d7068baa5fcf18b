//! Memory stays bounded whatever the transaction size: a 1,000,000-row transaction streamed
//! by PostgreSQL (and spilled by dbmazz) goes through the real binary within its budget.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::Lsn;

use crate::support::{start_pg, TempDir};

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_transaction_streams_within_the_memory_budget() {
    let pg = start_pg(18, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders (id bigint PRIMARY KEY, status text, note text);",
    )
    .unwrap();
    let dir = TempDir::new("dbmazz-memory-test");
    let config = dir.0.join("dbmazz.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[source]\nurl = \"{}\"\ntables = [\"public.orders\"]\n\
             status_interval = \"500ms\"\n[sink]\ntype = \"noop\"\n[http]\nlisten = \"\"\n",
            dir.0.join("state").display(),
            pg.url("shop")
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.0.join("dbmazz.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbmazz"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let slot_query = "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'dbmazz_slot' AND active";
    let started = Instant::now();
    while pg.psql("shop", slot_query).unwrap_or_default().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dbmazz did not start"
        );
        assert!(child.try_wait().unwrap().is_none(), "dbmazz exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg.psql(
        "shop",
        "INSERT INTO orders SELECT g, 'new', repeat('n', 40) FROM generate_series(1, 1000000) g;",
    )
    .unwrap();
    let written: Lsn = pg
        .psql("shop", "SELECT pg_current_wal_insert_lsn()")
        .unwrap()
        .parse()
        .unwrap();
    let started = Instant::now();
    loop {
        let confirmed: Option<Lsn> = pg
            .psql("shop", slot_query)
            .ok()
            .and_then(|text| text.parse().ok());
        if confirmed.is_some_and(|lsn| lsn >= written) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the slot did not reach {written}: {confirmed:?}; log: {}",
            std::fs::read_to_string(dir.0.join("dbmazz.log")).unwrap_or_default()
        );
        assert!(child.try_wait().unwrap().is_none(), "dbmazz exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = peak_rss_kib(child.id()).unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop: {status}");
    let log = std::fs::read_to_string(dir.0.join("dbmazz.log")).unwrap_or_default();
    assert!(
        log.contains("1000000 row changes"),
        "summary line missing: {log}"
    );
    println!(
        "peak RSS {} MiB for a 1,000,000-row transaction",
        peak / 1024
    );
    // Budget: 32 MiB of batches + 16 MiB of buffered streamed transaction + runtime.
    assert!(peak < 96 * 1024, "peak RSS {} MiB", peak / 1024);
}
