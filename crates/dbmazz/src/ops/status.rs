//! What `/status` reports: one JSON document (documented in docs/http-api.md), rebuilt from
//! the pipeline's figures a few times a second.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

/// The pipeline's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Connecting, checking the slot and the destination tables.
    Starting,
    /// Copying existing rows (initial snapshot).
    Snapshotting,
    Streaming,
    /// Stopped through `POST /pause`; nothing is read or loaded.
    Paused,
    /// Flushing after SIGINT/SIGTERM.
    Stopping,
    Stopped,
    /// An error stopped the pipeline; see `last_error`.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub state: RunState,
    pub started_at: String,
    pub uptime_seconds: f64,
    pub source: SourceStatus,
    pub sink: &'static str,
    pub lsn: LsnStatus,
    pub lag: LagStatus,
    pub slot: SlotStatus,
    pub pipeline: PipelineStatus,
    pub tables: Vec<TableStatus>,
    pub last_error: Option<ErrorStatus>,
    /// Snapshot progress while one runs or after one ran in this process.
    pub snapshot: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStatus {
    pub database: String,
    pub publication: String,
    pub slot: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LsnStatus {
    /// Last WAL position received from the server.
    pub received: String,
    /// Confirmed to the slot: everything before it is durable in the destination.
    pub durable: String,
    /// Where this run started streaming.
    pub start: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LagStatus {
    /// Age of the oldest committed transaction not yet durable (0 when caught up).
    pub seconds: f64,
    /// WAL bytes between the server's position and the durable position.
    pub bytes: u64,
}

/// From `pg_replication_slots`, polled every few seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SlotStatus {
    pub confirmed_flush_lsn: Option<String>,
    pub restart_lsn: Option<String>,
    pub server_wal_lsn: Option<String>,
    pub retained_wal_bytes: Option<u64>,
    /// reserved, extended, unreserved or lost (PostgreSQL 13+).
    pub wal_status: Option<String>,
    pub active: Option<bool>,
    pub checked_at: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelineStatus {
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// False while the pipeline is full (backpressure) or paused.
    pub reading: bool,
    pub loads_in_flight: u64,
    pub transactions: u64,
    pub changes: u64,
    pub spilled_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub truncates: u64,
    pub loads: u64,
    pub bytes_loaded: u64,
    /// Last commit LSN of this table made durable.
    pub durable_lsn: Option<String>,
    pub last_load_at: Option<String>,
    /// Operations queued or in flight for this table.
    pub pending_ops: u64,
    /// Values StarRocks could not hold exactly, stored per `lossy_policy` (see the log for keys).
    pub lossy_values: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorStatus {
    pub at: String,
    pub message: String,
}

/// Per-table counters the stream core keeps up to date.
#[derive(Debug, Clone, Default)]
pub struct TableCounters {
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub truncates: u64,
    pub loads: u64,
    pub bytes_loaded: u64,
    pub durable_lsn: Option<crate::Lsn>,
    pub last_load_at: Option<SystemTime>,
    pub pending_ops: u64,
    pub relation_oid: Option<u32>,
}

pub type TableCounterMap = BTreeMap<String, TableCounters>;

impl TableStatus {
    pub fn from_counters(table: &str, counters: &TableCounters) -> Self {
        TableStatus {
            table: table.to_string(),
            inserts: counters.inserts,
            updates: counters.updates,
            deletes: counters.deletes,
            truncates: counters.truncates,
            loads: counters.loads,
            bytes_loaded: counters.bytes_loaded,
            durable_lsn: counters.durable_lsn.map(|lsn| lsn.to_string()),
            last_load_at: counters.last_load_at.map(rfc3339),
            pending_ops: counters.pending_ops,
            lossy_values: super::metrics().lossy_count(table),
        }
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
