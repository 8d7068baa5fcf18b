//! Zero-copy decoding of what PostgreSQL sends during logical replication.
//!
//! Two layers, both pure functions of their input bytes (no I/O, no allocation per
//! column value: values are `Bytes::slice`s of the received frame):
//!
//! * [`ReplicationMessage::parse`]: the walsender's CopyData frames, `'w'` XLogData and
//!   `'k'` keepalive ("Streaming Replication Protocol").
//! * [`PgOutputDecoder::decode`]: the pgoutput message inside an XLogData, protocol
//!   versions 1–4 ("Logical Replication Message Formats").
//!
//! | byte | message            | since | notes                                        |
//! |------|--------------------|-------|----------------------------------------------|
//! | `B`  | Begin              | v1    |                                              |
//! | `C`  | Commit             | v1    | flags byte, unused (0)                       |
//! | `O`  | Origin             | v1    | transaction replayed from another origin     |
//! | `R`  | Relation           | v1    | xid inside a stream block                    |
//! | `Y`  | Type               | v1    | xid inside a stream block                    |
//! | `I`  | Insert             | v1    | xid inside a stream block; `N` tuple         |
//! | `U`  | Update             | v1    | xid inside a stream block; opt. `K`/`O`, `N` |
//! | `D`  | Delete             | v1    | xid inside a stream block; `K` or `O`        |
//! | `T`  | Truncate           | v1    | xid inside a stream block; flags 1/2         |
//! | `M`  | Message            | v1    | xid inside a stream block; option `messages` |
//! | `S`  | Stream Start       | v2    | enters the stream block                      |
//! | `E`  | Stream Stop        | v2    | leaves the stream block                      |
//! | `c`  | Stream Commit      | v2    |                                              |
//! | `A`  | Stream Abort       | v2    | + abort LSN and time with `streaming=parallel` (v4) |
//! | `b`  | Begin Prepare      | v3    | two-phase                                    |
//! | `P`  | Prepare            | v3    |                                              |
//! | `K`  | Commit Prepared    | v3    |                                              |
//! | `r`  | Rollback Prepared  | v3    |                                              |
//! | `p`  | Stream Prepare     | v3    |                                              |
//!
//! Tuple values: `n` NULL, `u` unchanged TOAST (not sent), `t` text, `b` binary.
//!
//! Every read is bounds-checked and counts from the wire are only trusted as far as the
//! remaining bytes allow, so any input yields a value or a [`DecodeError`], never a
//! panic nor a huge allocation (property tests and a fuzz target check this). A frame
//! with bytes left after its message is an error: PostgreSQL never sends any, and
//! leftovers mean the decoder options do not match the server's.

mod cursor;
mod error;
mod message;
mod pgoutput;
mod replication;
mod tuple;

#[cfg(test)]
mod tests;

pub use error::{DecodeError, DecodeErrorReason};
pub use message::{LogicalMessage, RelationBody, RelationColumn, ReplicaIdentity};
pub use pgoutput::{DecoderOptions, PgOutputDecoder};
pub use replication::ReplicationMessage;
pub use tuple::{OldTuple, TupleData, TupleValue, ValueRef, ValuesView};
