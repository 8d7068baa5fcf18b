//! The decoded form of pgoutput messages, one variant per message of "Logical
//! Replication Message Formats". Owned except for row values and message content,
//! which are `Bytes` slices of the received frame.

use bytes::Bytes;

use super::tuple::{OldTuple, TupleData};
use crate::Lsn;

/// `REPLICA IDENTITY` of a relation: which old columns Update/Delete carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// `'d'`: the primary key.
    Default,
    /// `'n'`: nothing.
    Nothing,
    /// `'f'`: all columns.
    Full,
    /// `'i'`: the columns of a chosen unique index.
    Index,
}

/// One column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity key.
    pub is_key: bool,
    pub name: String,
    pub type_oid: u32,
    /// `atttypmod`; -1 when the type has none.
    pub type_modifier: i32,
}

/// A Relation message: the schema of a table, sent before its first change in a
/// session and again after each schema change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationBody {
    /// Set inside a streamed transaction block.
    pub xid: Option<u32>,
    pub oid: u32,
    pub namespace: String,
    pub name: String,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<RelationColumn>,
}

/// One pgoutput message. Timestamps are PostgreSQL's: microseconds since
/// 2000-01-01 UTC. `xid: Option<u32>` fields are `Some` inside a streamed block, and
/// hold the xid of the (sub)transaction that made the change: a change made after a
/// `SAVEPOINT` carries the subtransaction's xid, not the Stream Start's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicalMessage {
    Begin {
        final_lsn: Lsn,
        commit_time: i64,
        xid: u32,
    },
    Commit {
        /// Unused by PostgreSQL so far (always 0).
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
    Origin {
        commit_lsn: Lsn,
        name: String,
    },
    Relation(RelationBody),
    Type {
        xid: Option<u32>,
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        xid: Option<u32>,
        relation_oid: u32,
        new: TupleData,
    },
    Update {
        xid: Option<u32>,
        relation_oid: u32,
        /// `Key` when the replica identity key changed, `Full` under
        /// `REPLICA IDENTITY FULL`, `None` otherwise.
        old: Option<OldTuple>,
        new: TupleData,
    },
    Delete {
        xid: Option<u32>,
        relation_oid: u32,
        old: OldTuple,
    },
    Truncate {
        xid: Option<u32>,
        cascade: bool,
        restart_identity: bool,
        relation_oids: Vec<u32>,
    },
    Message {
        xid: Option<u32>,
        transactional: bool,
        lsn: Lsn,
        prefix: String,
        content: Bytes,
    },
    StreamStart {
        xid: u32,
        first_segment: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
    /// `subxid == xid` aborts the whole transaction, otherwise one subtransaction.
    StreamAbort {
        xid: u32,
        subxid: u32,
        /// Sent only with `streaming = parallel` (protocol v4).
        abort_lsn: Option<Lsn>,
        abort_time: Option<i64>,
    },
    BeginPrepare {
        prepare_lsn: Lsn,
        end_lsn: Lsn,
        prepare_time: i64,
        xid: u32,
        gid: String,
    },
    Prepare {
        flags: u8,
        prepare_lsn: Lsn,
        end_lsn: Lsn,
        prepare_time: i64,
        xid: u32,
        gid: String,
    },
    CommitPrepared {
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
        xid: u32,
        gid: String,
    },
    RollbackPrepared {
        flags: u8,
        prepare_end_lsn: Lsn,
        rollback_end_lsn: Lsn,
        prepare_time: i64,
        rollback_time: i64,
        xid: u32,
        gid: String,
    },
    StreamPrepare {
        flags: u8,
        prepare_lsn: Lsn,
        end_lsn: Lsn,
        prepare_time: i64,
        xid: u32,
        gid: String,
    },
}

impl LogicalMessage {
    /// The transaction id the message carries, if any (streamed data messages carry
    /// their (sub)transaction's; Stream Abort gives the top-level one).
    pub fn xid(&self) -> Option<u32> {
        use LogicalMessage as M;
        match self {
            M::Begin { xid, .. }
            | M::StreamStart { xid, .. }
            | M::StreamCommit { xid, .. }
            | M::StreamAbort { xid, .. }
            | M::BeginPrepare { xid, .. }
            | M::Prepare { xid, .. }
            | M::CommitPrepared { xid, .. }
            | M::RollbackPrepared { xid, .. }
            | M::StreamPrepare { xid, .. } => Some(*xid),
            M::Relation(RelationBody { xid, .. })
            | M::Type { xid, .. }
            | M::Insert { xid, .. }
            | M::Update { xid, .. }
            | M::Delete { xid, .. }
            | M::Truncate { xid, .. }
            | M::Message { xid, .. } => *xid,
            M::Commit { .. } | M::Origin { .. } | M::StreamStop => None,
        }
    }

    /// The message's name as in PostgreSQL's documentation (`"Stream Abort"` is `"StreamAbort"`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            LogicalMessage::Begin { .. } => "Begin",
            LogicalMessage::Commit { .. } => "Commit",
            LogicalMessage::Origin { .. } => "Origin",
            LogicalMessage::Relation(_) => "Relation",
            LogicalMessage::Type { .. } => "Type",
            LogicalMessage::Insert { .. } => "Insert",
            LogicalMessage::Update { .. } => "Update",
            LogicalMessage::Delete { .. } => "Delete",
            LogicalMessage::Truncate { .. } => "Truncate",
            LogicalMessage::Message { .. } => "Message",
            LogicalMessage::StreamStart { .. } => "StreamStart",
            LogicalMessage::StreamStop => "StreamStop",
            LogicalMessage::StreamCommit { .. } => "StreamCommit",
            LogicalMessage::StreamAbort { .. } => "StreamAbort",
            LogicalMessage::BeginPrepare { .. } => "BeginPrepare",
            LogicalMessage::Prepare { .. } => "Prepare",
            LogicalMessage::CommitPrepared { .. } => "CommitPrepared",
            LogicalMessage::RollbackPrepared { .. } => "RollbackPrepared",
            LogicalMessage::StreamPrepare { .. } => "StreamPrepare",
        }
    }
}
