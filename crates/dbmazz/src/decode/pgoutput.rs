//! pgoutput logical replication messages, protocol versions 1 to 4.
//!
//! Layouts follow PostgreSQL's `src/backend/replication/logical/proto.c`. The decoder
//! keeps the only state the wire requires: whether it is inside a Stream Start ..
//! Stream Stop block (where data messages carry a leading xid).

use bytes::Bytes;

use super::cursor::Cursor;
use super::error::{DecodeError, DecodeErrorReason};
use super::message::{LogicalMessage, RelationBody, RelationColumn, ReplicaIdentity};
use super::tuple::{read_new_tuple, read_old_tuple};
use crate::Lsn;

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
