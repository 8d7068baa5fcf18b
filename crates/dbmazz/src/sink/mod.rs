//! The destination boundary: what the pipeline hands over, and what "durable" means.
//!
//! # Contract
//! * The pipeline calls a sink with **one operation per table at a time**, in stream order
//!   for that table; operations on different tables may run concurrently (bounded).
//! * A future that resolves `Ok(())` means the operation is **durable** in the destination: it
//!   survives a crash of dbmazz and of the destination. Only then may the replication slot
//!   advance past it. A sink must retry what is worth retrying itself; an `Err` stops the
//!   pipeline (nothing after it is acknowledged).
//! * Delivery is at least once: after a crash the stream is replayed from the slot's position,
//!   so a sink sees again operations it already made durable. Applying a suffix again must
//!   converge to the same state (upsert/delete by key, truncate).
//! * `apply_schema_change` with `old = None` announces a table seen for the first time in this
//!   session (also after every restart): check or create it.

mod file;
mod recording;
pub mod starrocks;

pub use file::FileSink;
pub use recording::{RecordedOp, RecordingSink};

use std::future::Future;
use std::sync::Arc;

use crate::pipeline::RowChange;
use crate::schema::{TableName, TableSchema};
use crate::Lsn;

/// Consecutive row changes of one table, in stream order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub table: Arc<TableSchema>,
    pub changes: Vec<RowChange>,
    /// Commit LSN of the first and last change's transaction.
    pub first_commit_lsn: Lsn,
    pub last_commit_lsn: Lsn,
    /// Position of the first change within its transaction, so that batches cut from the
    /// same transaction have distinct, deterministic identities (labels).
    pub first_change_index: u64,
    /// Bytes held (accounting for the pipeline's memory budget).
    pub byte_len: usize,
    /// Where the rows come from: the stream, or a snapshot chunk (labels differ).
    pub origin: BatchOrigin,
}

/// Where a batch's rows were read. Load labels are built from it, so that a snapshot load
/// never shares a label with a stream load, with another chunk, or with an earlier attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchOrigin {
    /// Changes decoded from the replication stream (identified by their LSNs).
    #[default]
    Stream,
    /// Rows of one snapshot chunk.
    Snapshot {
        /// Which snapshot of the table (a new epoch per complete re-snapshot).
        epoch: u64,
        /// The plan's random identity (see `SnapshotState::plan_id`).
        plan_id: u32,
        /// How many times dbmazz started reading this epoch (a chunk re-read after a crash
        /// may hold other rows than the first read, so its loads need new labels).
        attempt: u64,
        /// The chunk within the epoch's plan.
        chunk: u32,
        /// The batch within the chunk.
        part: u32,
    },
}

/// A sink failed in a way it could not retry away.
#[derive(Debug, thiserror::Error)]
#[error("{sink} sink failed{}: {message}", on_table(.table))]
pub struct SinkError {
    pub sink: &'static str,
    pub table: String,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// ` on <table>`, or nothing for errors of no table (connecting, setup).
fn on_table(table: &str) -> String {
    if table.is_empty() {
        String::new()
    } else {
        format!(" on {table}")
    }
}

/// A destination for the stream. See the module documentation for the contract.
pub trait Sink: Send + Sync + 'static {
    /// Short name for logs and errors (`"starrocks"`).
    fn name(&self) -> &'static str;

    /// Makes a batch durable.
    fn write_batch(&self, batch: &Batch) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Empties a table (a PostgreSQL TRUNCATE), after all its earlier batches.
    fn truncate(
        &self,
        table: &Arc<TableSchema>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// A table's shape changed (or, with `old = None`, was seen for the first time).
    fn apply_schema_change(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Whether the destination asked this table to load less often since the last call
    /// (StarRocks's "too many versions"): the pipeline then lets its batches grow longer.
    fn take_slow_down(&self, _relation_oid: u32) -> bool {
        false
    }

    /// Whether the destination table already holds rows (`None`: unknown, or no such table
    /// yet). Asked before a snapshot that does not empty its tables, to warn that rows only the
    /// destination has will stay.
    fn holds_rows(&self, _table: &Arc<TableSchema>) -> impl Future<Output = Option<bool>> + Send {
        async { None }
    }

    /// Whether the destination table of `table` exists (`None`: unknown, or no tables of
    /// its own). Asked at start for the tables copied before: one that is gone (dropped, or
    /// the destination lost it) is copied again rather than recreated empty.
    fn has_table(&self, _table: &TableName) -> impl Future<Output = Option<bool>> + Send {
        async { None }
    }

    /// `table` was copied in fresh transactions, the last read at `before`: its stream
    /// changes committed before that may update rows the copy missed, so values PostgreSQL
    /// did not send with them (unchanged TOAST) must come from the source, not be left out.
    fn fill_unsent_before(&self, _table: &TableName, _before: Lsn) {}

    /// `table` left the publication (removed, or dropped) during the run: forget what was
    /// learned of it, so a table published later may take its destination's name.
    fn forget_table(&self, _table: &TableName) {}
}

/// Accepts everything at once: for benchmarks of the stream path alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopSink;

impl Sink for NoopSink {
    fn name(&self) -> &'static str {
        "noop"
    }

    async fn write_batch(&self, _batch: &Batch) -> Result<(), SinkError> {
        Ok(())
    }

    async fn truncate(&self, _table: &Arc<TableSchema>) -> Result<(), SinkError> {
        Ok(())
    }

    async fn apply_schema_change(
        &self,
        _old: Option<&Arc<TableSchema>>,
        _new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod sink_error_tests {
    use super::SinkError;

    #[test]
    fn sink_error_names_the_table_only_when_there_is_one() {
        let error = |table: &str| SinkError {
            sink: "starrocks",
            table: table.into(),
            message: "boom".into(),
            source: None,
        };
        assert_eq!(
            error("public.t").to_string(),
            "starrocks sink failed on public.t: boom"
        );
        assert_eq!(error("").to_string(), "starrocks sink failed: boom");
    }
}
