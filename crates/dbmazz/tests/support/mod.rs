//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dbmazz::config::Config;
use dbmazz::local_pg::{LocalPg, LocalPgOptions, PgBinaries};

pub mod starrocks;

/// The major versions every integration test runs against.
pub const PG_VERSIONS: [u32; 2] = [15, 18];

/// Starts a throwaway cluster of `major`, panicking with the reason when it cannot
/// (missing binaries are a setup error, not a skipped test).
pub fn start_pg(major: u32, options: LocalPgOptions) -> LocalPg {
    let binaries = PgBinaries::find(major).unwrap_or_else(|error| panic!("{error}"));
    LocalPg::start(&binaries, options).unwrap_or_else(|error| panic!("{error}"))
}

/// A throwaway cluster of `major` with a database `shop` holding `schema`.
pub fn new_database(major: u32, schema: &str) -> LocalPg {
    let pg = start_pg(major, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql("shop", schema).unwrap();
    pg
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A failing test keeps its state and logs for the post-mortem.
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config streaming `tables` of `database` into the no-op sink, with small batches.
pub fn stream_config(pg: &LocalPg, database: &str, tables: &[&str], state_dir: &TempDir) -> Config {
    let tables = tables
        .iter()
        .map(|table| format!("\"{table}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let toml = format!(
        r#"
state_dir = "{state}"
[source]
url = "{url}"
publication = "test_pub"
slot = "test_slot"
tables = [{tables}]
status_interval = "1s"
[sink]
type = "noop"
[batch]
max_rows = 5000
max_bytes = "4MiB"
max_wait = "100ms"
[pipeline]
max_memory = "16MiB"
spill_threshold = "4MiB"
[http]
listen = ""
"#,
        state = state_dir.0.display(),
        url = pg.url(database),
    );
    Config::from_toml(&toml).unwrap_or_else(|error| panic!("{error}"))
}

/// Polls `check` until it returns Some, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until one replication slot of `pg` is active (the replicator created it and streams),
/// so that what a test writes next is captured.
pub async fn wait_for_streaming(pg: &LocalPg) {
    eventually(
        Duration::from_secs(30),
        "an active replication slot",
        || async {
            let active = pg
                .psql(
                    "postgres",
                    "SELECT count(*) FROM pg_replication_slots WHERE active",
                )
                .ok()?;
            (active == "1").then_some(())
        },
    )
    .await;
}
