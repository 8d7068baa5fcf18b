//! The walsender's CopyData payloads in `START_REPLICATION` mode (server to client).
//!
//! Only `'w'` XLogData (which wraps one pgoutput message) and `'k'` primary keepalive
//! exist in that direction; the payload of XLogData stays a slice of the frame.

use bytes::Bytes;

use super::cursor::Cursor;
use super::error::{DecodeError, DecodeErrorReason};
use crate::Lsn;

/// One CopyData frame from the walsender. Times are microseconds since 2000-01-01 UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationMessage {
    /// `'w'`: WAL data; `data` is one pgoutput message.
    XLogData {
        wal_start: Lsn,
        wal_end: Lsn,
        send_time: i64,
        data: Bytes,
    },
    /// `'k'`: the server's position; reply with a status update if `reply_requested`.
    Keepalive {
        wal_end: Lsn,
        send_time: i64,
        reply_requested: bool,
    },
}

impl ReplicationMessage {
    /// Parses one CopyData payload. Trailing bytes after a keepalive are an error.
    pub fn parse(frame: Bytes) -> Result<Self, DecodeError> {
        let mut cursor = Cursor::new(frame, "unknown");
        let Some(tag) = cursor.peek_u8() else {
            return Err(cursor.error(DecodeErrorReason::Empty));
        };
        match tag {
            b'w' => {
                cursor.kind = "XLogData";
                cursor.u8()?;
                Ok(ReplicationMessage::XLogData {
                    wal_start: Lsn(cursor.u64()?),
                    wal_end: Lsn(cursor.u64()?),
                    send_time: cursor.i64()?,
                    data: cursor.rest(),
                })
            }
            b'k' => {
                cursor.kind = "Keepalive";
                cursor.u8()?;
                let message = ReplicationMessage::Keepalive {
                    wal_end: Lsn(cursor.u64()?),
                    send_time: cursor.i64()?,
                    reply_requested: cursor.u8()? != 0,
                };
                cursor.finish()?;
                Ok(message)
            }
            other => Err(cursor.error(DecodeErrorReason::UnknownMessageType(other))),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            ReplicationMessage::XLogData { .. } => "XLogData",
            ReplicationMessage::Keepalive { .. } => "Keepalive",
        }
    }
}
