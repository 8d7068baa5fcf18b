//! Copies the stream core's figures into the telemetry (/status, /metrics), on every tick.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ops::{metrics, RunState, Telemetry};
use crate::pipeline::{CoreStats, StreamCore};
use crate::sink::Sink;
use crate::Lsn;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_UNIX_SECONDS: u64 = 946_684_800;

/// Publishes counters as deltas since the previous call.
pub(super) struct Publisher {
    last: CoreStats,
    start: Lsn,
    memory_limit: usize,
}

impl Publisher {
    pub fn new(start: Lsn, memory_limit: usize) -> Self {
        metrics()
            .pipeline_memory_limit_bytes
            .set(memory_limit as i64);
        Publisher {
            last: CoreStats::default(),
            start,
            memory_limit,
        }
    }

    pub fn publish<S: Sink>(&mut self, core: &StreamCore<S>, telemetry: &Telemetry) {
        let stats = core.stats();
        let durable = core.durable();
        let metrics = metrics();
        metrics
            .transactions
            .inc_by(stats.transactions.saturating_sub(self.last.transactions));
        metrics
            .changes
            .inc_by(stats.changes.saturating_sub(self.last.changes));
        metrics.wal_received_bytes.inc_by(
            stats
                .bytes_received
                .saturating_sub(self.last.bytes_received),
        );
        metrics.spilled_bytes.inc_by(
            stats
                .assembler
                .spilled_bytes
                .saturating_sub(self.last.assembler.spilled_bytes),
        );
        self.last = stats;

        let lag_seconds = core
            .oldest_undelivered_commit_time()
            .map_or(0.0, seconds_since_pg_time);
        let lag_bytes = stats.last_received.0.saturating_sub(durable.0);
        metrics.lag_seconds.set(lag_seconds);
        metrics.lag_bytes.set(lag_bytes as i64);
        metrics.pipeline_memory_bytes.set(core.held_bytes() as i64);
        metrics.received_lsn.set(stats.last_received.0 as i64);
        metrics.durable_lsn.set(durable.0 as i64);

        let mut board = telemetry.board();
        if matches!(board.state, RunState::Streaming | RunState::Paused) {
            board.state = if core.is_paused() {
                RunState::Paused
            } else {
                RunState::Streaming
            };
        }
        board.lsn.received = stats.last_received.to_string();
        board.lsn.durable = durable.to_string();
        board.lsn.start = self.start.to_string();
        board.lag.seconds = lag_seconds;
        board.lag.bytes = lag_bytes;
        board.pipeline.memory_bytes = core.held_bytes() as u64;
        board.pipeline.memory_limit_bytes = self.memory_limit as u64;
        board.pipeline.reading = core.can_read();
        board.pipeline.loads_in_flight = core.loads_in_flight() as u64;
        board.pipeline.transactions = stats.transactions;
        board.pipeline.changes = stats.changes;
        board.pipeline.spilled_bytes = stats.assembler.spilled_bytes;
        board.tables = core.table_counters();
    }
}

/// Seconds from a PostgreSQL timestamp (µs since 2000-01-01 UTC) to now; 0 if in the future.
fn seconds_since_pg_time(pg_micros: i64) -> f64 {
    let Ok(micros) = u64::try_from(pg_micros) else {
        return 0.0;
    };
    let Some(commit) = UNIX_EPOCH
        .checked_add(Duration::from_secs(PG_EPOCH_UNIX_SECONDS))
        .and_then(|epoch| epoch.checked_add(Duration::from_micros(micros)))
    else {
        return 0.0;
    };
    SystemTime::now()
        .duration_since(commit)
        .map_or(0.0, |age| age.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_measured_from_the_postgres_epoch() {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64;
        let two_seconds_ago = now_unix - (PG_EPOCH_UNIX_SECONDS as i64) * 1_000_000 - 2_000_000;
        let lag = seconds_since_pg_time(two_seconds_ago);
        assert!((1.9..3.0).contains(&lag), "{lag}");
        assert_eq!(seconds_since_pg_time(i64::MAX / 2), 0.0);
    }
}
