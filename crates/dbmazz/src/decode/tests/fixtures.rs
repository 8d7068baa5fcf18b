//! Frames captured from real servers. The exact values (xids, LSNs, OIDs) are those of
//! the committed fixtures; regenerating them means updating these expectations.

use super::*;
use crate::Lsn;

fn text(value: &str) -> TupleValue {
    TupleValue::Text(Bytes::copy_from_slice(value.as_bytes()))
}

fn binary(value: &[u8]) -> TupleValue {
    TupleValue::Binary(Bytes::copy_from_slice(value))
}

fn column(is_key: bool, name: &str, type_oid: u32) -> RelationColumn {
    RelationColumn {
        is_key,
        name: name.into(),
        type_oid,
        type_modifier: -1,
    }
}

fn kinds(messages: &[LogicalMessage]) -> String {
    messages
        .iter()
        .map(|message| format!("{} ", message.kind_name()))
        .collect()
}

#[test]
fn every_captured_frame_decodes() {
    let v1 = decode_all(PG15_V1, options(1, false));
    let v2 = decode_all(PG15_V2, options(2, false));
    let v3 = decode_all(PG15_V3, options(3, false));
    let v4 = decode_all(PG18_V4, options(4, true));
    assert_eq!(
        (v1.len(), v2.len(), v3.len(), v4.len()),
        (72, 107, 113, 104)
    );
    // Protocol 1 has no streaming or two-phase messages at all.
    assert!(!kinds(&v1).contains("Stream") && !kinds(&v1).contains("Prepare"));
    for kind in ["StreamStart", "StreamStop", "StreamCommit", "StreamAbort"] {
        assert!(kinds(&v2).contains(kind), "v2 lacks {kind}");
    }
    for all in [&v1, &v2, &v3, &v4] {
        for kind in ["Begin", "Commit", "Origin", "Relation", "Type", "Insert"] {
            assert!(kinds(all).contains(kind), "lacks {kind}");
        }
        for kind in ["Update", "Delete", "Truncate", "Message"] {
            assert!(kinds(all).contains(kind), "lacks {kind}");
        }
    }
    for all in [&v3, &v4] {
        for kind in [
            "BeginPrepare",
            "Prepare",
            "CommitPrepared",
            "RollbackPrepared",
        ] {
            assert!(kinds(all).contains(kind), "lacks {kind}");
        }
        assert!(kinds(all).contains("StreamPrepare"));
    }
}

#[test]
fn pg15_transaction_envelope() {
    let v1 = decode_all(PG15_V1, options(1, false));
    assert_eq!(
        v1[0],
        LogicalMessage::Begin {
            final_lsn: Lsn(22290920),
            commit_time: 848955197471260,
            xid: 733
        }
    );
    assert_eq!(
        v1[4],
        LogicalMessage::Commit {
            flags: 0,
            commit_lsn: Lsn(22290920),
            end_lsn: Lsn(22290968),
            commit_time: 848955197471260
        }
    );
    assert_eq!(
        v1[47],
        LogicalMessage::Origin {
            commit_lsn: "0/ABCDEF".parse().unwrap(),
            name: "dbmazz_origin".into()
        }
    );
}

#[test]
fn pg15_schema_messages() {
    let v1 = decode_all(PG15_V1, options(1, false));
    assert_eq!(
        v1[1],
        LogicalMessage::Type {
            xid: None,
            oid: 16385,
            namespace: "public".into(),
            name: "mood".into()
        }
    );
    let t1_columns = vec![
        column(true, "id", 23),
        column(false, "name", 25),
        column(false, "note", 25),
        column(false, "big", 25),
        column(false, "m", 16385),
    ];
    assert_eq!(
        v1[2],
        LogicalMessage::Relation(RelationBody {
            xid: None,
            oid: 16391,
            namespace: "public".into(),
            name: "t1".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: t1_columns.clone(),
        })
    );
    // REPLICA IDENTITY FULL marks every column as key.
    let LogicalMessage::Relation(t2) = &v1[18] else {
        panic!("{:?}", v1[18])
    };
    assert_eq!(t2.replica_identity, ReplicaIdentity::Full);
    assert!(t2.columns.iter().all(|column| column.is_key));
    // After ALTER TABLE ADD COLUMN, a new Relation with the extra column.
    let LogicalMessage::Relation(altered) = &v1[69] else {
        panic!("{:?}", v1[69])
    };
    let mut expected = t1_columns;
    expected.push(column(false, "extra", 23));
    assert_eq!(altered.columns, expected);
}

#[test]
fn pg15_rows_nulls_toast_and_old_tuples() {
    let v1 = decode_all(PG15_V1, options(1, false));
    assert_eq!(
        v1[3],
        LogicalMessage::Insert {
            xid: None,
            relation_oid: 16391,
            new: TupleData(vec![
                text("1"),
                text("alice"),
                TupleValue::Null,
                text(&"x".repeat(3000)),
                text("happy")
            ]),
        }
    );
    // The TOASTed column left unchanged by the update is not sent.
    assert_eq!(
        v1[9],
        LogicalMessage::Update {
            xid: None,
            relation_oid: 16391,
            old: None,
            new: TupleData(vec![
                text("1"),
                text("alice2"),
                TupleValue::Null,
                TupleValue::UnchangedToast,
                text("happy")
            ]),
        }
    );
    // Primary key change: the old key, other columns null.
    assert_eq!(
        v1[12],
        LogicalMessage::Update {
            xid: None,
            relation_oid: 16391,
            old: Some(OldTuple::Key(TupleData(vec![
                text("2"),
                TupleValue::Null,
                TupleValue::Null,
                TupleValue::Null,
                TupleValue::Null
            ]))),
            new: TupleData(vec![
                text("10"),
                text("bob"),
                text("note"),
                text("small"),
                TupleValue::Null
            ]),
        }
    );
    assert_eq!(
        v1[15],
        LogicalMessage::Delete {
            xid: None,
            relation_oid: 16391,
            old: OldTuple::Key(TupleData(vec![
                text("10"),
                TupleValue::Null,
                TupleValue::Null,
                TupleValue::Null,
                TupleValue::Null
            ])),
        }
    );
    // REPLICA IDENTITY FULL: the whole old row.
    assert_eq!(
        v1[23],
        LogicalMessage::Update {
            xid: None,
            relation_oid: 16399,
            old: Some(OldTuple::Full(TupleData(vec![
                text("1"),
                text("a"),
                text("1.5")
            ]))),
            new: TupleData(vec![text("1"), text("b"), text("1.5")]),
        }
    );
    assert_eq!(
        v1[26],
        LogicalMessage::Delete {
            xid: None,
            relation_oid: 16399,
            old: OldTuple::Full(TupleData(vec![
                text("2"),
                TupleValue::Null,
                TupleValue::Null
            ])),
        }
    );
}

#[test]
fn pg15_truncate_and_logical_messages() {
    let v1 = decode_all(PG15_V1, options(1, false));
    assert_eq!(
        v1[40],
        LogicalMessage::Truncate {
            xid: None,
            cascade: true,
            restart_identity: true,
            relation_oids: vec![16408, 16399]
        }
    );
    assert_eq!(
        v1[44],
        LogicalMessage::Truncate {
            xid: None,
            cascade: false,
            restart_identity: false,
            relation_oids: vec![16408]
        }
    );
    assert_eq!(
        v1[29],
        LogicalMessage::Message {
            xid: None,
            transactional: true,
            lsn: Lsn(22292552),
            prefix: "dbmazz".into(),
            content: Bytes::from_static(b"hello txn")
        }
    );
    assert_eq!(
        v1[31],
        LogicalMessage::Message {
            xid: None,
            transactional: false,
            lsn: Lsn(22292672),
            prefix: "dbmazz".into(),
            content: Bytes::from_static(b"hello nontxn")
        }
    );
}

#[test]
fn pg15_streamed_transactions() {
    let mut decoder = PgOutputDecoder::new(options(2, false));
    let frames = frames(PG15_V2);
    let mut v2 = Vec::new();
    for frame in frames {
        let message = decoder.decode(frame).unwrap();
        // The decoder is in stream mode exactly between Stream Start and Stream Stop.
        let expect_in_stream = match &message {
            LogicalMessage::StreamStart { .. } => true,
            LogicalMessage::StreamStop => false,
            LogicalMessage::Insert { xid, .. } | LogicalMessage::Message { xid, .. } => {
                xid.is_some()
            }
            _ => decoder.in_stream(),
        };
        assert_eq!(decoder.in_stream(), expect_in_stream, "{message:?}");
        v2.push(message);
    }
    assert_eq!(
        v2[51],
        LogicalMessage::StreamStart {
            xid: 746,
            first_segment: true
        }
    );
    assert_eq!(
        v2[53],
        LogicalMessage::Insert {
            xid: Some(746),
            relation_oid: 16399,
            new: TupleData(vec![text("1"), text("stream-1"), text("1")]),
        }
    );
    assert_eq!(
        v2[55],
        LogicalMessage::StreamStart {
            xid: 746,
            first_segment: false
        }
    );
    assert_eq!(
        v2[61],
        LogicalMessage::Message {
            xid: Some(746),
            transactional: true,
            lsn: Lsn(22462640),
            prefix: "dbmazz".into(),
            content: Bytes::from_static(b"streamed")
        }
    );
    assert_eq!(v2[62], LogicalMessage::StreamStop);
    assert_eq!(
        v2[63],
        LogicalMessage::StreamCommit {
            xid: 746,
            flags: 0,
            commit_lsn: Lsn(22462640),
            end_lsn: Lsn(22462688),
            commit_time: 848955197482602
        }
    );
    // A whole streamed transaction rolled back: subxid == xid.
    assert_eq!(
        v2[72],
        LogicalMessage::StreamAbort {
            xid: 747,
            subxid: 747,
            abort_lsn: None,
            abort_time: None
        }
    );
    // ROLLBACK TO SAVEPOINT inside a streamed transaction: only the subtransaction.
    assert_eq!(
        v2[76],
        LogicalMessage::Insert {
            xid: Some(749),
            relation_oid: 16399,
            new: TupleData(vec![text("5"), text("sub"), text("5")]),
        }
    );
    assert_eq!(
        v2[82],
        LogicalMessage::StreamAbort {
            xid: 748,
            subxid: 749,
            abort_lsn: None,
            abort_time: None
        }
    );
    let LogicalMessage::Relation(relation) = &v2[84] else {
        panic!("{:?}", v2[84])
    };
    assert_eq!((relation.xid, relation.oid), (Some(750), 16399));
}

#[test]
fn pg15_two_phase() {
    let v3 = decode_all(PG15_V3, options(3, false));
    assert_eq!(
        v3[88],
        LogicalMessage::BeginPrepare {
            prepare_lsn: Lsn(22784456),
            end_lsn: Lsn(22784744),
            prepare_time: 848955197489438,
            xid: 751,
            gid: "gid-commit".into()
        }
    );
    assert_eq!(
        v3[90],
        LogicalMessage::Prepare {
            flags: 0,
            prepare_lsn: Lsn(22784456),
            end_lsn: Lsn(22784744),
            prepare_time: 848955197489438,
            xid: 751,
            gid: "gid-commit".into()
        }
    );
    assert_eq!(
        v3[91],
        LogicalMessage::CommitPrepared {
            flags: 0,
            commit_lsn: Lsn(22784744),
            end_lsn: Lsn(22784808),
            commit_time: 848955197489604,
            xid: 751,
            gid: "gid-commit".into()
        }
    );
    assert_eq!(
        v3[95],
        LogicalMessage::RollbackPrepared {
            flags: 0,
            prepare_end_lsn: Lsn(22785224),
            rollback_end_lsn: Lsn(22785288),
            prepare_time: 848955197489894,
            rollback_time: 848955197489996,
            xid: 752,
            gid: "gid-rollback".into()
        }
    );
    assert_eq!(
        v3[106],
        LogicalMessage::StreamPrepare {
            flags: 0,
            prepare_lsn: Lsn(22945920),
            end_lsn: Lsn(22946304),
            prepare_time: 848955197492233,
            xid: 753,
            gid: "gid-stream".into()
        }
    );
}

#[test]
fn pg18_binary_values_and_parallel_stream_abort() {
    let v4 = decode_all(PG18_V4, options(4, true));
    assert_eq!(
        v4[12],
        LogicalMessage::Update {
            xid: None,
            relation_oid: 16391,
            old: Some(OldTuple::Key(TupleData(vec![
                binary(&2i32.to_be_bytes()),
                TupleValue::Null,
                TupleValue::Null,
                TupleValue::Null,
                TupleValue::Null
            ]))),
            new: TupleData(vec![
                binary(&10i32.to_be_bytes()),
                binary(b"bob"),
                binary(b"note"),
                binary(b"small"),
                TupleValue::Null
            ]),
        }
    );
    let LogicalMessage::Update { new, .. } = &v4[9] else {
        panic!("{:?}", v4[9])
    };
    assert_eq!(new.get(3), Some(&TupleValue::UnchangedToast));
    // streaming = parallel: the abort carries its LSN and time.
    assert_eq!(
        v4[73],
        LogicalMessage::StreamAbort {
            xid: 776,
            subxid: 777,
            abort_lsn: Some(Lsn(24926792)),
            abort_time: Some(848955198978774)
        }
    );
}

#[test]
fn mismatched_streaming_option_is_an_error_not_a_misparse() {
    // Parallel abort info decoded without the option: 16 bytes left over.
    let mut decoder = PgOutputDecoder::new(options(4, false));
    let frames = frames(PG18_V4);
    let error = frames
        .into_iter()
        .find_map(|frame| decoder.decode(frame).err())
        .unwrap();
    assert_eq!(error.kind, "StreamAbort");
    assert_eq!(error.reason, DecodeErrorReason::TrailingBytes(16));
    assert_eq!(error.offset, 9);

    // And the other way round: the abort info is missing.
    let mut decoder = PgOutputDecoder::new(options(4, true));
    let error = super::frames(PG15_V2)
        .into_iter()
        .find_map(|frame| decoder.decode(frame).err())
        .unwrap();
    assert_eq!(error.kind, "StreamAbort");
    assert!(matches!(
        error.reason,
        DecodeErrorReason::UnexpectedEnd {
            needed: 8,
            remaining: 0
        }
    ));
}

#[test]
fn values_are_slices_of_the_frame() {
    let frame = frames(PG15_V1).swap_remove(3);
    let range = frame.as_ptr_range();
    let message = PgOutputDecoder::new(options(1, false))
        .decode(frame)
        .unwrap();
    let LogicalMessage::Insert { new, .. } = message else {
        panic!("{message:?}")
    };
    let big = new.get(3).and_then(TupleValue::as_bytes).unwrap();
    assert_eq!(big.len(), 3000);
    assert!(range.contains(&big.as_ptr()));
}
