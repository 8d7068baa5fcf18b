//! A test-only pgoutput encoder, the mirror of `proto.c`'s `logicalrep_write_*`, for
//! hand-built frames and encode/decode round trips.

use bytes::Bytes;

use super::super::*;

/// Big-endian frame builder.
#[derive(Default)]
pub(crate) struct Frame(pub(crate) Vec<u8>);

impl Frame {
    pub(crate) fn new(tag: u8) -> Self {
        Frame(vec![tag])
    }
    pub(crate) fn u8(mut self, value: u8) -> Self {
        self.0.push(value);
        self
    }
    pub(crate) fn u16(mut self, value: u16) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    pub(crate) fn u32(mut self, value: u32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    pub(crate) fn i32(mut self, value: i32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    pub(crate) fn u64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    pub(crate) fn i64(mut self, value: i64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    pub(crate) fn raw(mut self, value: &[u8]) -> Self {
        self.0.extend_from_slice(value);
        self
    }
    pub(crate) fn cstr(self, value: &str) -> Self {
        self.raw(value.as_bytes()).u8(0)
    }
    pub(crate) fn opt_u32(self, value: Option<u32>) -> Self {
        match value {
            Some(value) => self.u32(value),
            None => self,
        }
    }
    pub(crate) fn tuple(self, tuple: &TupleData) -> Self {
        let mut frame = self.u16(tuple.0.len() as u16);
        for value in &tuple.0 {
            frame = match value {
                TupleValue::Null => frame.u8(b'n'),
                TupleValue::UnchangedToast => frame.u8(b'u'),
                TupleValue::Text(bytes) => frame.u8(b't').i32(bytes.len() as i32).raw(bytes),
                TupleValue::Binary(bytes) => frame.u8(b'b').i32(bytes.len() as i32).raw(bytes),
            };
        }
        frame
    }
    pub(crate) fn old(self, old: &OldTuple) -> Self {
        match old {
            OldTuple::Key(tuple) => self.u8(b'K').tuple(tuple),
            OldTuple::Full(tuple) => self.u8(b'O').tuple(tuple),
        }
    }
    pub(crate) fn bytes(self) -> Bytes {
        Bytes::from(self.0)
    }
}

/// Encodes a message as pgoutput would. Data messages carry `xid` when it is `Some`.
pub(crate) fn encode(message: &LogicalMessage) -> Bytes {
    use LogicalMessage as M;
    let frame = match message {
        M::Begin {
            final_lsn,
            commit_time,
            xid,
        } => Frame::new(b'B')
            .u64(final_lsn.0)
            .i64(*commit_time)
            .u32(*xid),
        M::Commit {
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
        } => Frame::new(b'C')
            .u8(*flags)
            .u64(commit_lsn.0)
            .u64(end_lsn.0)
            .i64(*commit_time),
        M::Origin { commit_lsn, name } => Frame::new(b'O').u64(commit_lsn.0).cstr(name),
        M::Relation(body) => {
            let mut frame = Frame::new(b'R')
                .opt_u32(body.xid)
                .u32(body.oid)
                .cstr(&body.namespace)
                .cstr(&body.name)
                .u8(match body.replica_identity {
                    ReplicaIdentity::Default => b'd',
                    ReplicaIdentity::Nothing => b'n',
                    ReplicaIdentity::Full => b'f',
                    ReplicaIdentity::Index => b'i',
                })
                .u16(body.columns.len() as u16);
            for column in &body.columns {
                frame = frame
                    .u8(u8::from(column.is_key))
                    .cstr(&column.name)
                    .u32(column.type_oid)
                    .i32(column.type_modifier);
            }
            frame
        }
        M::Type {
            xid,
            oid,
            namespace,
            name,
        } => Frame::new(b'Y')
            .opt_u32(*xid)
            .u32(*oid)
            .cstr(namespace)
            .cstr(name),
        M::Insert {
            xid,
            relation_oid,
            new,
        } => Frame::new(b'I')
            .opt_u32(*xid)
            .u32(*relation_oid)
            .u8(b'N')
            .tuple(new),
        M::Update {
            xid,
            relation_oid,
            old,
            new,
        } => {
            let frame = Frame::new(b'U').opt_u32(*xid).u32(*relation_oid);
            let frame = match old {
                Some(old) => frame.old(old),
                None => frame,
            };
            frame.u8(b'N').tuple(new)
        }
        M::Delete {
            xid,
            relation_oid,
            old,
        } => Frame::new(b'D').opt_u32(*xid).u32(*relation_oid).old(old),
        M::Truncate {
            xid,
            cascade,
            restart_identity,
            relation_oids,
        } => {
            let flags = u8::from(*cascade) | u8::from(*restart_identity) << 1;
            let mut frame = Frame::new(b'T')
                .opt_u32(*xid)
                .u32(relation_oids.len() as u32)
                .u8(flags);
            for oid in relation_oids {
                frame = frame.u32(*oid);
            }
            frame
        }
        M::Message {
            xid,
            transactional,
            lsn,
            prefix,
            content,
        } => Frame::new(b'M')
            .opt_u32(*xid)
            .u8(u8::from(*transactional))
            .u64(lsn.0)
            .cstr(prefix)
            .i32(content.len() as i32)
            .raw(content),
        M::StreamStart { xid, first_segment } => {
            Frame::new(b'S').u32(*xid).u8(u8::from(*first_segment))
        }
        M::StreamStop => Frame::new(b'E'),
        M::StreamCommit {
            xid,
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
        } => Frame::new(b'c')
            .u32(*xid)
            .u8(*flags)
            .u64(commit_lsn.0)
            .u64(end_lsn.0)
            .i64(*commit_time),
        M::StreamAbort {
            xid,
            subxid,
            abort_lsn,
            abort_time,
        } => {
            let frame = Frame::new(b'A').u32(*xid).u32(*subxid);
            match (abort_lsn, abort_time) {
                (Some(lsn), Some(time)) => frame.u64(lsn.0).i64(*time),
                _ => frame,
            }
        }
        M::BeginPrepare {
            prepare_lsn,
            end_lsn,
            prepare_time,
            xid,
            gid,
        } => Frame::new(b'b')
            .u64(prepare_lsn.0)
            .u64(end_lsn.0)
            .i64(*prepare_time)
            .u32(*xid)
            .cstr(gid),
        M::Prepare {
            flags,
            prepare_lsn,
            end_lsn,
            prepare_time,
            xid,
            gid,
        } => prepare_like(b'P', *flags, prepare_lsn, end_lsn, *prepare_time, *xid, gid),
        M::CommitPrepared {
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
            xid,
            gid,
        } => prepare_like(b'K', *flags, commit_lsn, end_lsn, *commit_time, *xid, gid),
        M::RollbackPrepared {
            flags,
            prepare_end_lsn,
            rollback_end_lsn,
            prepare_time,
            rollback_time,
            xid,
            gid,
        } => Frame::new(b'r')
            .u8(*flags)
            .u64(prepare_end_lsn.0)
            .u64(rollback_end_lsn.0)
            .i64(*prepare_time)
            .i64(*rollback_time)
            .u32(*xid)
            .cstr(gid),
        M::StreamPrepare {
            flags,
            prepare_lsn,
            end_lsn,
            prepare_time,
            xid,
            gid,
        } => prepare_like(b'p', *flags, prepare_lsn, end_lsn, *prepare_time, *xid, gid),
    };
    frame.bytes()
}

fn prepare_like(
    tag: u8,
    flags: u8,
    lsn: &crate::Lsn,
    end_lsn: &crate::Lsn,
    time: i64,
    xid: u32,
    gid: &str,
) -> Frame {
    Frame::new(tag)
        .u8(flags)
        .u64(lsn.0)
        .u64(end_lsn.0)
        .i64(time)
        .u32(xid)
        .cstr(gid)
}
