//! The initial snapshot (DESIGN §5): copy the rows a table already has, then stream.
//!
//! ```text
//!  replication conn: CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT ──(idle)──────► START_REPLICATION
//!                                    │ snapshot id                               (from the slot's start)
//!  planner: tables → ctid page chunks (state file)
//!  readers ×parallelism: BEGIN REPEATABLE READ; SET TRANSACTION SNAPSHOT;
//!                        COPY (SELECT … WHERE ctid range) TO STDOUT ─► RowChange inserts
//!                        ─► Sink::write_batch (same encoder and type map as the stream)
//!  runner: chunk durable ─► marked done in the state file (atomic write)
//! ```
//!
//! The exported snapshot lives until the next command on the replication connection, so that
//! connection stays idle until every chunk is loaded, and the slot cannot advance meanwhile.
//! After a crash the snapshot is gone: the unfinished chunks are read in fresh REPEATABLE READ
//! transactions (later than the slot's start) and the stream, replaying from the slot's start,
//! makes the copy converge — the same argument as a replay after a crash (DESIGN §4).
//!
//! Snapshot rows go to the sink as INSERTs with the slot's start as their commit LSN, under
//! labels of their own ([`crate::sink::BatchOrigin::Snapshot`]). Chunks of one table are
//! loaded concurrently: within one snapshot they hold disjoint rows, and every load is an
//! upsert by key.

mod bars;
mod catalog;
mod copy_text;
mod partitions;
mod planner;
mod progress;
mod reader;
mod runner;

pub use catalog::{heap_relations, plan_chunks, table_schema, HeapRelation};
pub use copy_text::{decode_row, CopyRowError};
pub use partitions::{
    compare as compare_leaves, partition_leaves, relations_with_rows,
    rewritten as rewritten_leaves, LeafChanges, PartitionCatalog,
};
pub use planner::{decide, load_schemas, plan_new, SnapshotDecision};
pub use progress::{SnapshotPhase, SnapshotProgress, SnapshotReport, TableReport};
pub use reader::copy_statement;
pub use runner::{
    empty_destination, read_plan, run_snapshot, ChunkFinished, SnapshotJob, SnapshotOutcome,
};

use crate::checkpoint::StateFileError;
use crate::config::ConfigError;
use crate::schema::TableName;
use crate::sink::SinkError;
use crate::source::SourceError;

/// Why a snapshot stopped, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot: {0}")]
    Source(#[from] SourceError),
    #[error("snapshot: {0}")]
    Sink(#[source] SinkError),
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "snapshot: table {table} does not exist (was it dropped?): remove it from the publication"
    )]
    TableMissing { table: TableName },
    #[error(
        "snapshot: table {table} has no key columns in its replica identity: add a primary key \
         (ALTER TABLE {} ADD PRIMARY KEY (...)) or REPLICA IDENTITY USING INDEX on a \
         unique NOT NULL index; or, for a table that cannot have one, name its key columns in \
         source.key_columns (with REPLICA IDENTITY FULL for its UPDATEs and DELETEs)",
        crate::source::quote_table(.table)
    )]
    NoKey { table: TableName },
    #[error(
        "snapshot: table {table} has REPLICA IDENTITY FULL and dbmazz did not read its key at \
         start (it was published, or switched to FULL, while dbmazz ran): restart dbmazz, which \
         keys a FULL table by its primary key; or name its key columns in source.key_columns"
    )]
    FullIdentityKeyUnknown { table: TableName },
    #[error("snapshot: {0}")]
    KeyColumns(#[from] crate::schema::KeyOverrideError),
    #[error("snapshot: chunk {chunk} of {relation}: {reason}")]
    MalformedRow {
        relation: String,
        chunk: u32,
        reason: String,
    },
    /// The table was rewritten, or a planned column dropped or renamed, since the plan was
    /// made: its page ranges or column list no longer fit. The caller plans it again.
    #[error("snapshot: table {table} changed while it was being copied ({reason})")]
    TableChanged { table: TableName, reason: String },
    #[error("snapshot: internal error: {0} (please report it)")]
    Internal(String),
}
