//! pgoutput logical replication messages, protocol versions 1 to 4.
//!
//! Layouts follow PostgreSQL's `src/backend/replication/logical/proto.c`. The decoder
//! keeps the only state the wire requires: whether it is inside a Stream Start ..
//! Stream Stop block (where data messages carry a leading xid).

use bytes::Bytes;

use super::cursor::Cursor;
use super::error::{DecodeError, DecodeErrorReason};
use super::tuple::{read_new_tuple, read_old_tuple, OldTuple, TupleData};
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

/// What was negotiated in `START_REPLICATION ... (proto_version ..., streaming ...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderOptions {
    /// 1 to 4. Informative: layouts do not depend on it beyond `streaming_parallel`.
    pub protocol_version: u32,
    /// `streaming = parallel` (v4): Stream Abort then carries abort LSN and time.
    pub streaming_parallel: bool,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions {
            protocol_version: 1,
            streaming_parallel: false,
        }
    }
}

/// Decodes pgoutput messages one frame at a time.
///
/// Strictness: a frame must hold exactly one message (PostgreSQL sends nothing after
/// one), so left-over bytes are an error — they mean the options do not match the
/// server's (e.g. `streaming_parallel` unset while the server sends abort info). Inside
/// Stream Start .. Stream Stop only data messages and Stream Stop are accepted. A
/// failed decode leaves the state unchanged.
#[derive(Debug, Clone)]
pub struct PgOutputDecoder {
    options: DecoderOptions,
    in_stream: bool,
}

impl PgOutputDecoder {
    pub fn new(options: DecoderOptions) -> Self {
        PgOutputDecoder {
            options,
            in_stream: false,
        }
    }

    pub fn options(&self) -> DecoderOptions {
        self.options
    }

    /// Between a Stream Start and its Stream Stop.
    pub fn in_stream(&self) -> bool {
        self.in_stream
    }

    /// Decodes one message; `Text`/`Binary` values and `Message` content share `data`.
    pub fn decode(&mut self, data: Bytes) -> Result<LogicalMessage, DecodeError> {
        let mut cursor = Cursor::new(data, "unknown");
        let Some(tag) = cursor.peek_u8() else {
            return Err(cursor.error(DecodeErrorReason::Empty));
        };
        cursor.kind = kind_of(tag);
        cursor.u8()?;
        let in_stream = self.in_stream;
        let stream_xid = |cursor: &mut Cursor| -> Result<Option<u32>, DecodeError> {
            if in_stream {
                cursor.u32().map(Some)
            } else {
                Ok(None)
            }
        };
        let data_message = matches!(tag, b'R' | b'Y' | b'I' | b'U' | b'D' | b'T' | b'M' | b'E');
        if in_stream && !data_message && cursor.kind != "unknown" {
            return Err(cursor.error_previous(DecodeErrorReason::InsideStream));
        }
        let message = match tag {
            b'B' => LogicalMessage::Begin {
                final_lsn: lsn(&mut cursor)?,
                commit_time: cursor.i64()?,
                xid: cursor.u32()?,
            },
            b'C' => LogicalMessage::Commit {
                flags: cursor.u8()?,
                commit_lsn: lsn(&mut cursor)?,
                end_lsn: lsn(&mut cursor)?,
                commit_time: cursor.i64()?,
            },
            b'O' => LogicalMessage::Origin {
                commit_lsn: lsn(&mut cursor)?,
                name: cursor.cstring()?,
            },
            b'R' => {
                let xid = stream_xid(&mut cursor)?;
                LogicalMessage::Relation(relation(&mut cursor, xid)?)
            }
            b'Y' => LogicalMessage::Type {
                xid: stream_xid(&mut cursor)?,
                oid: cursor.u32()?,
                namespace: cursor.cstring()?,
                name: cursor.cstring()?,
            },
            b'I' => LogicalMessage::Insert {
                xid: stream_xid(&mut cursor)?,
                relation_oid: cursor.u32()?,
                new: read_new_tuple(&mut cursor)?,
            },
            b'U' => LogicalMessage::Update {
                xid: stream_xid(&mut cursor)?,
                relation_oid: cursor.u32()?,
                old: read_old_tuple(&mut cursor)?,
                new: read_new_tuple(&mut cursor)?,
            },
            b'D' => {
                let xid = stream_xid(&mut cursor)?;
                let relation_oid = cursor.u32()?;
                let Some(old) = read_old_tuple(&mut cursor)? else {
                    let found = cursor.u8()?;
                    return Err(cursor.error_previous(DecodeErrorReason::UnexpectedByte {
                        expected: "'K' or 'O' (old tuple)",
                        found,
                    }));
                };
                LogicalMessage::Delete {
                    xid,
                    relation_oid,
                    old,
                }
            }
            b'T' => {
                let xid = stream_xid(&mut cursor)?;
                truncate(&mut cursor, xid)?
            }
            b'M' => {
                let xid = stream_xid(&mut cursor)?;
                let flags = cursor.u8()?;
                LogicalMessage::Message {
                    xid,
                    transactional: flags & 1 != 0,
                    lsn: lsn(&mut cursor)?,
                    prefix: cursor.cstring()?,
                    content: cursor.len_prefixed()?,
                }
            }
            b'S' => LogicalMessage::StreamStart {
                xid: cursor.u32()?,
                first_segment: cursor.u8()? != 0,
            },
            b'E' => {
                if !in_stream {
                    return Err(cursor.error_previous(DecodeErrorReason::OutsideStream));
                }
                LogicalMessage::StreamStop
            }
            b'c' => LogicalMessage::StreamCommit {
                xid: cursor.u32()?,
                flags: cursor.u8()?,
                commit_lsn: lsn(&mut cursor)?,
                end_lsn: lsn(&mut cursor)?,
                commit_time: cursor.i64()?,
            },
            b'A' => {
                let xid = cursor.u32()?;
                let subxid = cursor.u32()?;
                let (abort_lsn, abort_time) = if self.options.streaming_parallel {
                    (Some(lsn(&mut cursor)?), Some(cursor.i64()?))
                } else {
                    (None, None)
                };
                LogicalMessage::StreamAbort {
                    xid,
                    subxid,
                    abort_lsn,
                    abort_time,
                }
            }
            b'b' => LogicalMessage::BeginPrepare {
                prepare_lsn: lsn(&mut cursor)?,
                end_lsn: lsn(&mut cursor)?,
                prepare_time: cursor.i64()?,
                xid: cursor.u32()?,
                gid: cursor.cstring()?,
            },
            b'P' => LogicalMessage::Prepare {
                flags: cursor.u8()?,
                prepare_lsn: lsn(&mut cursor)?,
                end_lsn: lsn(&mut cursor)?,
                prepare_time: cursor.i64()?,
                xid: cursor.u32()?,
                gid: cursor.cstring()?,
            },
            b'K' => LogicalMessage::CommitPrepared {
                flags: cursor.u8()?,
                commit_lsn: lsn(&mut cursor)?,
                end_lsn: lsn(&mut cursor)?,
                commit_time: cursor.i64()?,
                xid: cursor.u32()?,
                gid: cursor.cstring()?,
            },
            b'r' => LogicalMessage::RollbackPrepared {
                flags: cursor.u8()?,
                prepare_end_lsn: lsn(&mut cursor)?,
                rollback_end_lsn: lsn(&mut cursor)?,
                prepare_time: cursor.i64()?,
                rollback_time: cursor.i64()?,
                xid: cursor.u32()?,
                gid: cursor.cstring()?,
            },
            b'p' => LogicalMessage::StreamPrepare {
                flags: cursor.u8()?,
                prepare_lsn: lsn(&mut cursor)?,
                end_lsn: lsn(&mut cursor)?,
                prepare_time: cursor.i64()?,
                xid: cursor.u32()?,
                gid: cursor.cstring()?,
            },
            other => {
                return Err(cursor.error_previous(DecodeErrorReason::UnknownMessageType(other)))
            }
        };
        cursor.finish()?;
        match message {
            LogicalMessage::StreamStart { .. } => self.in_stream = true,
            LogicalMessage::StreamStop => self.in_stream = false,
            _ => {}
        }
        Ok(message)
    }
}

/// The message kind of a type byte, for errors.
fn kind_of(tag: u8) -> &'static str {
    match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'O' => "Origin",
        b'R' => "Relation",
        b'Y' => "Type",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'M' => "Message",
        b'S' => "StreamStart",
        b'E' => "StreamStop",
        b'c' => "StreamCommit",
        b'A' => "StreamAbort",
        b'b' => "BeginPrepare",
        b'P' => "Prepare",
        b'K' => "CommitPrepared",
        b'r' => "RollbackPrepared",
        b'p' => "StreamPrepare",
        _ => "unknown",
    }
}

fn lsn(cursor: &mut Cursor) -> Result<Lsn, DecodeError> {
    cursor.u64().map(Lsn)
}

fn relation(cursor: &mut Cursor, xid: Option<u32>) -> Result<RelationBody, DecodeError> {
    let oid = cursor.u32()?;
    let namespace = cursor.cstring()?;
    let name = cursor.cstring()?;
    let replica_identity = match cursor.u8()? {
        b'd' => ReplicaIdentity::Default,
        b'n' => ReplicaIdentity::Nothing,
        b'f' => ReplicaIdentity::Full,
        b'i' => ReplicaIdentity::Index,
        found => {
            return Err(cursor.error_previous(DecodeErrorReason::UnexpectedByte {
                expected: "a replica identity ('d', 'n', 'f' or 'i')",
                found,
            }))
        }
    };
    let ncolumns = usize::from(cursor.u16()?);
    // A column takes at least 10 bytes (flags, empty name, oid, typmod).
    let mut columns = Vec::with_capacity(ncolumns.min(cursor.remaining() / 10));
    for _ in 0..ncolumns {
        columns.push(RelationColumn {
            is_key: cursor.u8()? & 1 != 0,
            name: cursor.cstring()?,
            type_oid: cursor.u32()?,
            type_modifier: cursor.i32()?,
        });
    }
    Ok(RelationBody {
        xid,
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn truncate(cursor: &mut Cursor, xid: Option<u32>) -> Result<LogicalMessage, DecodeError> {
    let count = cursor.u32()?;
    let flags = cursor.u8()?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut relation_oids = Vec::with_capacity(count.min(cursor.remaining() / 4));
    for _ in 0..count {
        relation_oids.push(cursor.u32()?);
    }
    Ok(LogicalMessage::Truncate {
        xid,
        cascade: flags & 1 != 0,
        restart_identity: flags & 2 != 0,
        relation_oids,
    })
}
