//! Polls `pg_replication_slots` for /status and the retained-WAL metric, and warns when
//! PostgreSQL is about to give up on the slot (DESIGN §4, slot safety).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{metrics, rfc3339, Telemetry};
use crate::source::{connect_sql, PgConnectConfig};

const POLL_INTERVAL: Duration = Duration::from_secs(5);

const SLOT_QUERY: &str = "SELECT confirmed_flush_lsn::text, restart_lsn::text, \
     (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END)::text, \
     (pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn))::bigint, \
     wal_status, active \
     FROM pg_replication_slots WHERE slot_name = $1";

/// Runs until dropped (spawn it and abort the handle). Errors are logged and retried: the
/// watch is informative, the stream does not depend on it.
pub async fn watch_slot(connect: PgConnectConfig, slot: String, telemetry: Arc<Telemetry>) {
    let mut last_wal_status: Option<String> = None;
    loop {
        match connect_sql(&connect).await {
            Ok(client) => loop {
                let row = match client.query_opt(SLOT_QUERY, &[&slot]).await {
                    Ok(row) => row,
                    Err(error) => {
                        tracing::debug!(%error, "slot watch: query failed; reconnecting");
                        break;
                    }
                };
                let Some(row) = row else {
                    telemetry.board().slot.active = None;
                    tokio::time::sleep(POLL_INTERVAL).await;
                    continue;
                };
                let wal_status: Option<String> = row.get(4);
                let retained: Option<i64> = row.get(3);
                let active: bool = row.get(5);
                {
                    let mut board = telemetry.board();
                    board.slot.confirmed_flush_lsn = row.get(0);
                    board.slot.restart_lsn = row.get(1);
                    board.slot.server_wal_lsn = row.get(2);
                    board.slot.retained_wal_bytes = retained.map(|bytes| bytes.max(0) as u64);
                    board.slot.wal_status = wal_status.clone();
                    board.slot.active = Some(active);
                    board.slot.checked_at = Some(rfc3339(SystemTime::now()));
                }
                metrics().retained_wal_bytes.set(retained.unwrap_or(0));
                metrics().slot_active.set(i64::from(active));
                if wal_status != last_wal_status {
                    warn_on_wal_status(&slot, wal_status.as_deref(), retained);
                    last_wal_status = wal_status;
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            },
            Err(error) => tracing::debug!(%error, "slot watch: cannot connect; retrying"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn warn_on_wal_status(slot: &str, wal_status: Option<&str>, retained: Option<i64>) {
    match wal_status {
        Some("unreserved") => tracing::warn!(
            slot,
            retained_wal_bytes = retained,
            "the slot's retained WAL passed max_slot_wal_keep_size: PostgreSQL will invalidate \
             it at the next checkpoint unless dbmazz catches up — check the destination and \
             the lag, or raise max_slot_wal_keep_size"
        ),
        Some("lost") => tracing::error!(
            slot,
            "PostgreSQL invalidated the slot (wal_status = lost): changes were lost; a \
             re-snapshot is the only way back (docs/operations.md, recovering from a lost slot)"
        ),
        Some("extended") => tracing::info!(
            slot,
            retained_wal_bytes = retained,
            "the slot retains more WAL than max_wal_size (wal_status = extended)"
        ),
        _ => {}
    }
}
