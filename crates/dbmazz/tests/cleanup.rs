//! `dbmazz cleanup` (the built binary) against a real PostgreSQL: it refuses while a connection
//! streams from the slot (naming its server process) and without confirmation; with `--yes` the slot and
//! the publication are gone, and `--state` also removes state.json.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::check::{run_checks, CheckStatus};
use dbmazz::local_pg::{LocalPg, LocalPgOptions};
use dbmazz::replicator::{self, RunContext};
use dbmazz::sink::NoopSink;
use tokio::sync::watch;

use crate::check::{dbmazz, load, write_config};
use crate::support::{eventually, start_pg, wait_for_streaming, TempDir};

fn count(pg: &LocalPg, sql: &str) -> String {
    pg.psql("shop", sql).unwrap()
}

/// ~4 s: one PostgreSQL 15 cluster, a short in-process stream, five runs of the binary.
#[tokio::test(flavor = "multi_thread")]
async fn cleanup_refuses_an_active_slot_then_drops_slot_and_publication() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text)",
    )
    .unwrap();
    let dir = TempDir::new("dbmazz-cleanup");
    let path = write_config(
        &dir,
        &pg.url("shop"),
        &["public.orders"],
        "[sink]\ntype = \"noop\"",
    );
    let config = path.to_str().unwrap();

    let run_config = load(&path);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        replicator::run(&run_config, Arc::new(NoopSink), RunContext::new(stopped)).await
    });
    wait_for_streaming(&pg).await;
    // The slot is also active while the connection that creates it runs
    // CREATE_REPLICATION_SLOT; wait for the walsender that streams (START_REPLICATION).
    let pid = eventually(Duration::from_secs(30), "a streaming walsender", || async {
        let pid = count(
            &pg,
            "SELECT s.active_pid FROM pg_replication_slots s \
             JOIN pg_stat_replication r ON r.pid = s.active_pid \
             WHERE s.slot_name = 'dbmazz_slot' AND r.state = 'streaming'",
        );
        (!pid.is_empty()).then_some(pid)
    })
    .await;

    let refused = dbmazz(&["cleanup", "--config", config, "--yes"]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("in use (server process {pid};")),
        "{stderr}"
    );
    // check names the holder: a running dbmazz is a warning, not a failure.
    let report = run_checks(&load(&path)).await;
    let slot = report.about("replication slot dbmazz_slot").next().unwrap();
    assert_eq!(slot.status, CheckStatus::Warn);
    assert!(
        slot.message.contains(&format!("PID {pid}")) && slot.message.contains("running dbmazz"),
        "{}",
        slot.message
    );

    stop.send_replace(true);
    task.await
        .unwrap()
        .unwrap_or_else(|error| panic!("{error}"));
    // The walsender exits a moment after dbmazz hangs up.
    eventually(
        Duration::from_secs(30),
        "the slot to be inactive",
        || async {
            let active = count(
                &pg,
                "SELECT count(*) FROM pg_replication_slots WHERE active",
            );
            (active == "0").then_some(())
        },
    )
    .await;

    // Without a terminal and without --yes nothing is dropped.
    let unconfirmed = dbmazz(&["cleanup", "--config", config]).await;
    let stderr = String::from_utf8_lossy(&unconfirmed.stderr);
    assert_eq!(unconfirmed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a terminal"), "{stderr}");
    assert_eq!(count(&pg, "SELECT count(*) FROM pg_replication_slots"), "1");

    // Another pgoutput slot of the database may stream through the publication: kept.
    count(
        &pg,
        "SELECT 1 FROM pg_create_logical_replication_slot('other_slot', 'pgoutput')",
    );
    let dropped = dbmazz(&["cleanup", "--config", config, "--yes"]).await;
    let stderr = String::from_utf8_lossy(&dropped.stderr);
    assert_eq!(dropped.status.code(), Some(0), "{stderr}");
    assert_eq!(count(&pg, "SELECT count(*) FROM pg_replication_slots"), "1");
    assert_eq!(count(&pg, "SELECT count(*) FROM pg_publication"), "1");
    assert!(stderr.contains("other_slot"), "{stderr}");
    count(&pg, "SELECT 1 FROM pg_drop_replication_slot('other_slot')");
    let dropped = dbmazz(&["cleanup", "--config", config, "--yes"]).await;
    let stderr = String::from_utf8_lossy(&dropped.stderr);
    assert_eq!(dropped.status.code(), Some(0), "{stderr}");
    assert_eq!(count(&pg, "SELECT count(*) FROM pg_replication_slots"), "0");
    assert_eq!(count(&pg, "SELECT count(*) FROM pg_publication"), "0");

    // The state file still names the dropped slot: check says a re-snapshot is due.
    let state = dir.0.join("state").join("state.json");
    assert!(state.exists());
    let report = run_checks(&load(&path)).await;
    let line = report.about("state file").next().unwrap();
    assert_eq!(line.status, CheckStatus::Fail);
    assert!(
        line.message.contains("the slot is gone"),
        "{}",
        line.message
    );

    let with_state = dbmazz(&["cleanup", "--config", config, "--yes", "--state"]).await;
    let stderr = String::from_utf8_lossy(&with_state.stderr);
    assert_eq!(with_state.status.code(), Some(0), "{stderr}");
    assert!(!state.exists(), "{stderr}");

    let nothing = dbmazz(&["cleanup", "--config", config, "--yes"]).await;
    let stderr = String::from_utf8_lossy(&nothing.stderr);
    assert_eq!(nothing.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("nothing to clean up"), "{stderr}");
}

/// `cleanup --help` shows only the flags cleanup uses (it shares `run`'s, but serves no HTTP
/// API and writes to no sink).
#[test]
fn cleanup_help_lists_only_what_cleanup_uses() {
    let help = |command: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_dbmazz"))
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let cleanup = help("cleanup");
    assert!(cleanup.contains("--slot"), "{cleanup}");
    assert!(!cleanup.contains("--sink"), "{cleanup}");
    assert!(!cleanup.contains("--http-listen"), "{cleanup}");
    let run = help("run");
    assert!(
        run.contains("--sink") && run.contains("--http-listen"),
        "{run}"
    );
}
