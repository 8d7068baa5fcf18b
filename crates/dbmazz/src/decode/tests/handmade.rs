//! Hand-built frames: what the captures cannot produce (error paths, replica identity
//! index/nothing, a whole-transaction parallel Stream Abort) and the walsender framing.

use super::encode::{encode, Frame};
use super::*;
use crate::Lsn;

fn decode_one(options: DecoderOptions, frame: Bytes) -> Result<LogicalMessage, DecodeError> {
    PgOutputDecoder::new(options).decode(frame)
}

fn error_of(frame: Bytes) -> DecodeError {
    decode_one(DecoderOptions::default(), frame).unwrap_err()
}

fn in_stream_decoder(options: DecoderOptions) -> PgOutputDecoder {
    let mut decoder = PgOutputDecoder::new(options);
    let start = Frame::new(b'S').u32(7).u8(1).bytes();
    decoder.decode(start).unwrap();
    assert!(decoder.in_stream());
    decoder
}

#[test]
fn replication_frames_fixture() {
    let frames = frames(include_str!("../testdata/replication_frames.hex"));
    let parsed: Vec<_> = frames
        .into_iter()
        .map(|frame| ReplicationMessage::parse(frame).unwrap())
        .collect();
    assert_eq!(
        parsed[0],
        ReplicationMessage::Keepalive {
            wal_end: "0/16A3B28".parse().unwrap(),
            send_time: 848955197471260,
            reply_requested: false
        }
    );
    assert_eq!(
        parsed[1],
        ReplicationMessage::Keepalive {
            wal_end: "16/B374D848".parse().unwrap(),
            send_time: 1,
            reply_requested: true
        }
    );
    let ReplicationMessage::XLogData {
        wal_start,
        wal_end,
        send_time,
        data,
    } = &parsed[2]
    else {
        panic!("{:?}", parsed[2])
    };
    assert_eq!((*wal_start, *wal_end), (Lsn(22290920), Lsn(22290920)));
    assert_eq!(*send_time, 848955197471260);
    assert_eq!(
        decode_one(DecoderOptions::default(), data.clone()).unwrap(),
        LogicalMessage::Begin {
            final_lsn: Lsn(22290920),
            commit_time: 848955197471260,
            xid: 733
        }
    );
    assert_eq!(
        parsed[3],
        ReplicationMessage::XLogData {
            wal_start: Lsn(1),
            wal_end: Lsn(2),
            send_time: 3,
            data: Bytes::new()
        }
    );
    assert_eq!(parsed[3].kind_name(), "XLogData");
}

#[test]
fn xlogdata_payload_is_a_slice_of_the_frame() {
    let frame = Frame::new(b'w')
        .u64(1)
        .u64(2)
        .i64(3)
        .raw(b"payload")
        .bytes();
    let range = frame.as_ptr_range();
    let Ok(ReplicationMessage::XLogData { data, .. }) = ReplicationMessage::parse(frame) else {
        panic!()
    };
    assert_eq!(&data[..], b"payload");
    assert!(range.contains(&data.as_ptr()));
}

#[test]
fn replication_frame_errors() {
    let error = ReplicationMessage::parse(Bytes::new()).unwrap_err();
    assert_eq!(error.reason, DecodeErrorReason::Empty);
    let error = ReplicationMessage::parse(Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(error.reason, DecodeErrorReason::UnknownMessageType(b'x'));
    let error = ReplicationMessage::parse(Frame::new(b'w').u64(1).bytes()).unwrap_err();
    assert_eq!((error.kind, error.offset), ("XLogData", 9));
    let error = ReplicationMessage::parse(Frame::new(b'k').u64(1).i64(2).bytes()).unwrap_err();
    assert_eq!(error.kind, "Keepalive");
    let trailing = Frame::new(b'k').u64(1).i64(2).u8(0).u8(0).bytes();
    let error = ReplicationMessage::parse(trailing).unwrap_err();
    assert_eq!(error.reason, DecodeErrorReason::TrailingBytes(1));
    assert_eq!(
        error.to_string(),
        "cannot decode Keepalive message at byte 18: 1 bytes left over after the message"
    );
}

#[test]
fn whole_transaction_stream_abort_in_parallel_mode() {
    // PostgreSQL 17+ skips already-aborted transactions when decoding after the fact,
    // so the capture has only the savepoint abort; this is the live-streaming case.
    let frame = Frame::new(b'A')
        .u32(900)
        .u32(900)
        .u64(0x1_0000_0010)
        .i64(-5)
        .bytes();
    assert_eq!(
        decode_one(
            DecoderOptions {
                protocol_version: 4,
                streaming_parallel: true
            },
            frame
        )
        .unwrap(),
        LogicalMessage::StreamAbort {
            xid: 900,
            subxid: 900,
            abort_lsn: Some("1/10".parse().unwrap()),
            abort_time: Some(-5)
        }
    );
}

#[test]
fn replica_identities_and_column_flags() {
    for (byte, identity) in [
        (b'd', ReplicaIdentity::Default),
        (b'n', ReplicaIdentity::Nothing),
        (b'f', ReplicaIdentity::Full),
        (b'i', ReplicaIdentity::Index),
    ] {
        let frame = Frame::new(b'R')
            .u32(42)
            .cstr("s")
            .cstr("t")
            .u8(byte)
            .u16(2)
            .u8(1)
            .cstr("a")
            .u32(1043)
            .i32(24)
            .u8(0)
            .cstr("")
            .u32(23)
            .i32(-1)
            .bytes();
        let LogicalMessage::Relation(body) = decode_one(DecoderOptions::default(), frame).unwrap()
        else {
            panic!()
        };
        assert_eq!(body.replica_identity, identity);
        assert_eq!(
            body.columns,
            vec![
                RelationColumn {
                    is_key: true,
                    name: "a".into(),
                    type_oid: 1043,
                    type_modifier: 24
                },
                RelationColumn {
                    is_key: false,
                    name: String::new(),
                    type_oid: 23,
                    type_modifier: -1
                }
            ]
        );
    }
    let bad = Frame::new(b'R')
        .u32(42)
        .cstr("s")
        .cstr("t")
        .u8(b'x')
        .u16(0)
        .bytes();
    let error = error_of(bad);
    assert_eq!((error.kind, error.offset), ("Relation", 9));
    assert!(matches!(
        error.reason,
        DecodeErrorReason::UnexpectedByte { found: b'x', .. }
    ));
}

#[test]
fn every_message_kind_round_trips() {
    let tuple = TupleData(vec![
        TupleValue::Null,
        TupleValue::UnchangedToast,
        TupleValue::Text(Bytes::from_static(b"t")),
        TupleValue::Binary(Bytes::from_static(&[0, 1])),
    ]);
    let lsn = Lsn(0x0102_0304_0506_0708);
    let messages = [
        LogicalMessage::Begin {
            final_lsn: lsn,
            commit_time: -1,
            xid: u32::MAX,
        },
        LogicalMessage::Commit {
            flags: 3,
            commit_lsn: lsn,
            end_lsn: Lsn(9),
            commit_time: 7,
        },
        LogicalMessage::Origin {
            commit_lsn: lsn,
            name: "ö".into(),
        },
        LogicalMessage::Type {
            xid: None,
            oid: 1,
            namespace: "n".into(),
            name: "t".into(),
        },
        LogicalMessage::Insert {
            xid: None,
            relation_oid: 5,
            new: tuple.clone(),
        },
        LogicalMessage::Update {
            xid: None,
            relation_oid: 5,
            old: None,
            new: TupleData::default(),
        },
        LogicalMessage::Delete {
            xid: None,
            relation_oid: 5,
            old: OldTuple::Full(tuple),
        },
        LogicalMessage::Truncate {
            xid: None,
            cascade: false,
            restart_identity: true,
            relation_oids: vec![],
        },
        LogicalMessage::Message {
            xid: None,
            transactional: false,
            lsn,
            prefix: String::new(),
            content: Bytes::new(),
        },
        LogicalMessage::StreamCommit {
            xid: 1,
            flags: 0,
            commit_lsn: lsn,
            end_lsn: lsn,
            commit_time: 2,
        },
        LogicalMessage::StreamAbort {
            xid: 1,
            subxid: 2,
            abort_lsn: None,
            abort_time: None,
        },
        LogicalMessage::BeginPrepare {
            prepare_lsn: lsn,
            end_lsn: Lsn(1),
            prepare_time: 2,
            xid: 3,
            gid: "g".into(),
        },
        LogicalMessage::Prepare {
            flags: 1,
            prepare_lsn: lsn,
            end_lsn: Lsn(1),
            prepare_time: 2,
            xid: 3,
            gid: "g".into(),
        },
        LogicalMessage::CommitPrepared {
            flags: 1,
            commit_lsn: lsn,
            end_lsn: Lsn(1),
            commit_time: 2,
            xid: 3,
            gid: "g".into(),
        },
        LogicalMessage::RollbackPrepared {
            flags: 1,
            prepare_end_lsn: lsn,
            rollback_end_lsn: Lsn(1),
            prepare_time: 2,
            rollback_time: 4,
            xid: 3,
            gid: "g".into(),
        },
        LogicalMessage::StreamPrepare {
            flags: 1,
            prepare_lsn: lsn,
            end_lsn: Lsn(1),
            prepare_time: 2,
            xid: 3,
            gid: "".into(),
        },
    ];
    for message in messages {
        let decoded = decode_one(DecoderOptions::default(), encode(&message));
        assert_eq!(decoded.as_ref(), Ok(&message), "{}", message.kind_name());
    }
}

#[test]
fn stream_state_is_enforced() {
    let options = DecoderOptions {
        protocol_version: 2,
        streaming_parallel: false,
    };
    // Stream Stop outside a stream.
    let error = decode_one(options, Frame::new(b'E').bytes()).unwrap_err();
    assert_eq!(
        (error.kind, error.offset, error.reason),
        ("StreamStop", 0, DecodeErrorReason::OutsideStream)
    );
    // Transaction-level messages and nested Stream Start inside a stream.
    let mut decoder = in_stream_decoder(options);
    for frame in [
        Frame::new(b'S').u32(8).u8(0).bytes(),
        encode(&LogicalMessage::Begin {
            final_lsn: Lsn(1),
            commit_time: 0,
            xid: 1,
        }),
        encode(&LogicalMessage::StreamAbort {
            xid: 1,
            subxid: 1,
            abort_lsn: None,
            abort_time: None,
        }),
    ] {
        let error = decoder.decode(frame).unwrap_err();
        assert_eq!(error.reason, DecodeErrorReason::InsideStream);
    }
    // Errors leave the state alone; data messages carry the xid.
    assert!(decoder.in_stream());
    let insert = Frame::new(b'I').u32(8).u32(5).u8(b'N').u16(0).bytes();
    assert_eq!(
        decoder.decode(insert).unwrap(),
        LogicalMessage::Insert {
            xid: Some(8),
            relation_oid: 5,
            new: TupleData::default()
        }
    );
    let truncated_insert = Frame::new(b'I').u32(8).u32(5).u8(b'N').bytes();
    assert!(decoder.decode(truncated_insert).is_err());
    assert!(decoder.in_stream());
    assert_eq!(
        decoder.decode(Frame::new(b'E').bytes()),
        Ok(LogicalMessage::StreamStop)
    );
    assert!(!decoder.in_stream());
}

#[test]
fn streamed_data_messages_round_trip_with_xid() {
    let body = RelationBody {
        xid: Some(11),
        oid: 3,
        namespace: "public".into(),
        name: "t".into(),
        replica_identity: ReplicaIdentity::Index,
        columns: vec![],
    };
    let messages = [
        LogicalMessage::Relation(body),
        LogicalMessage::Type {
            xid: Some(11),
            oid: 1,
            namespace: "n".into(),
            name: "t".into(),
        },
        LogicalMessage::Update {
            xid: Some(12),
            relation_oid: 3,
            old: Some(OldTuple::Key(TupleData(vec![TupleValue::Null]))),
            new: TupleData(vec![TupleValue::Null]),
        },
        LogicalMessage::Delete {
            xid: Some(12),
            relation_oid: 3,
            old: OldTuple::Key(TupleData(vec![])),
        },
        LogicalMessage::Truncate {
            xid: Some(11),
            cascade: true,
            restart_identity: false,
            relation_oids: vec![1, 2, 3],
        },
        LogicalMessage::Message {
            xid: Some(11),
            transactional: true,
            lsn: Lsn(4),
            prefix: "p".into(),
            content: Bytes::from_static(b"\0\xff"),
        },
    ];
    let mut decoder = in_stream_decoder(DecoderOptions::default());
    for message in messages {
        assert_eq!(decoder.decode(encode(&message)), Ok(message));
    }
}

#[test]
fn malformed_frames_are_typed_errors() {
    use DecodeErrorReason as R;
    let cases: Vec<(Bytes, &str, usize, R)> = vec![
        (Bytes::new(), "unknown", 0, R::Empty),
        (
            Bytes::from_static(b"Z"),
            "unknown",
            0,
            R::UnknownMessageType(b'Z'),
        ),
        (
            Frame::new(b'B').u64(1).bytes(),
            "Begin",
            9,
            R::UnexpectedEnd {
                needed: 8,
                remaining: 0,
            },
        ),
        (
            Frame::new(b'B').u64(1).i64(2).u32(3).u8(0).bytes(),
            "Begin",
            21,
            R::TrailingBytes(1),
        ),
        (
            Frame::new(b'O').u64(1).raw(b"abc").bytes(),
            "Origin",
            9,
            R::UnterminatedString,
        ),
        (
            Frame::new(b'O').u64(1).raw(b"\xff\0").bytes(),
            "Origin",
            9,
            R::InvalidUtf8,
        ),
        (
            Frame::new(b'I').u32(1).u8(b'X').bytes(),
            "Insert",
            5,
            R::UnexpectedByte {
                expected: "'N' (new tuple)",
                found: b'X',
            },
        ),
        (
            Frame::new(b'I').u32(1).u8(b'N').u16(1).u8(b'q').bytes(),
            "Insert",
            8,
            R::UnexpectedByte {
                expected: "a tuple value kind ('n', 'u', 't' or 'b')",
                found: b'q',
            },
        ),
        (
            Frame::new(b'I')
                .u32(1)
                .u8(b'N')
                .u16(1)
                .u8(b't')
                .i32(-1)
                .bytes(),
            "Insert",
            13,
            R::NegativeLength(-1),
        ),
        (
            Frame::new(b'I')
                .u32(1)
                .u8(b'N')
                .u16(1)
                .u8(b't')
                .i32(5)
                .raw(b"ab")
                .bytes(),
            "Insert",
            13,
            R::UnexpectedEnd {
                needed: 5,
                remaining: 2,
            },
        ),
        (
            Frame::new(b'D').u32(1).u8(b'N').u16(0).bytes(),
            "Delete",
            5,
            R::UnexpectedByte {
                expected: "'K' or 'O' (old tuple)",
                found: b'N',
            },
        ),
        (
            Frame::new(b'U').u32(1).u8(b'K').u16(0).bytes(),
            "Update",
            8,
            R::UnexpectedEnd {
                needed: 1,
                remaining: 0,
            },
        ),
        (
            Frame::new(b'M')
                .u8(1)
                .u64(1)
                .cstr("p")
                .i32(i32::MIN)
                .bytes(),
            "Message",
            16,
            R::NegativeLength(i32::MIN),
        ),
    ];
    for (frame, kind, offset, reason) in cases {
        let error = error_of(frame.clone());
        assert_eq!(
            (error.kind, error.offset, &error.reason),
            (kind, offset, &reason),
            "{frame:?}"
        );
    }
}

#[test]
fn wire_counts_do_not_drive_allocation() {
    // 60000 columns announced in a 10-byte frame.
    let frame = Frame::new(b'I')
        .u32(1)
        .u8(b'N')
        .u16(60000)
        .u8(b'n')
        .u8(b'n')
        .bytes();
    assert_eq!(frame.len(), 10);
    let error = error_of(frame);
    assert_eq!(error.offset, 10);
    // 4 billion truncated relations, 65535 relation columns.
    let frame = Frame::new(b'T').u32(u32::MAX).u8(0).u32(1).bytes();
    assert!(error_of(frame).to_string().contains("Truncate"));
    let frame = Frame::new(b'R')
        .u32(1)
        .cstr("s")
        .cstr("t")
        .u8(b'd')
        .u16(u16::MAX)
        .bytes();
    assert!(error_of(frame).to_string().contains("Relation"));
}

#[test]
fn helpers() {
    assert_eq!(
        TupleValue::Text(Bytes::from_static(b"a")).as_bytes(),
        Some(&Bytes::from_static(b"a"))
    );
    assert_eq!(TupleValue::UnchangedToast.as_bytes(), None);
    assert_eq!(TupleValue::Null.as_bytes(), None);
    let tuple = TupleData(vec![TupleValue::Null]);
    assert_eq!((tuple.len(), tuple.is_empty()), (1, false));
    assert_eq!(OldTuple::Key(tuple.clone()).tuple(), &tuple);
    assert_eq!(LogicalMessage::StreamStop.kind_name(), "StreamStop");
    assert_eq!(LogicalMessage::StreamStop.xid(), None);
    let abort = LogicalMessage::StreamAbort {
        xid: 5,
        subxid: 6,
        abort_lsn: None,
        abort_time: None,
    };
    assert_eq!(abort.xid(), Some(5));
    let insert = LogicalMessage::Insert {
        xid: Some(9),
        relation_oid: 1,
        new: tuple,
    };
    assert_eq!(insert.xid(), Some(9));
    let decoder = PgOutputDecoder::new(DecoderOptions {
        protocol_version: 4,
        streaming_parallel: true,
    });
    assert_eq!(decoder.options().protocol_version, 4);
}
