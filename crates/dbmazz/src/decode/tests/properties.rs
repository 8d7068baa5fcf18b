//! Property tests: no input panics the decoders, mutated real frames included, and
//! generated row messages survive an encode/decode round trip.

use proptest::collection::vec;
use proptest::prelude::*;

use super::encode::{encode, Frame};
use super::*;

const TAGS: &[u8] = b"BCORYIUDTMSEcAbPKrp";

fn all_real_frames() -> Vec<Bytes> {
    [PG15_V1, PG15_V2, PG15_V3, PG18_V4]
        .into_iter()
        .flat_map(frames)
        .collect()
}

/// Decodes with every option combination, in and out of stream mode; must not panic.
fn decode_everywhere(frame: &Bytes) {
    for protocol_version in 1..=4 {
        for streaming_parallel in [false, true] {
            let options = DecoderOptions {
                protocol_version,
                streaming_parallel,
            };
            let _ = PgOutputDecoder::new(options).decode(frame.clone());
            let mut decoder = PgOutputDecoder::new(options);
            let start = Frame::new(b'S').u32(1).u8(1).bytes();
            if decoder.decode(start).is_ok() {
                let _ = decoder.decode(frame.clone());
            }
        }
    }
    let _ = ReplicationMessage::parse(frame.clone());
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn mutate(frame: &Bytes, mutations: &[Mutation]) -> Bytes {
    let mut bytes = frame.to_vec();
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Truncate(at) => bytes.truncate(at % len),
            Mutation::Set(at, value) if !bytes.is_empty() => bytes[at % len] = value,
            Mutation::Insert(at, value) => bytes.insert(at % (bytes.len() + 1), value),
            Mutation::Remove(at) if !bytes.is_empty() => {
                bytes.remove(at % len);
            }
            _ => {}
        }
    }
    Bytes::from(bytes)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Mutation::Set(at, v)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Mutation::Insert(at, v)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn tuple_value() -> impl Strategy<Value = TupleValue> {
    prop_oneof![
        Just(TupleValue::Null),
        Just(TupleValue::UnchangedToast),
        vec(any::<u8>(), 0..16).prop_map(|v| TupleValue::Text(Bytes::from(v))),
        vec(any::<u8>(), 0..16).prop_map(|v| TupleValue::Binary(Bytes::from(v))),
    ]
}

fn tuple() -> impl Strategy<Value = TupleData> {
    vec(tuple_value(), 0..12).prop_map(TupleData)
}

fn old_tuple() -> impl Strategy<Value = OldTuple> {
    prop_oneof![
        tuple().prop_map(OldTuple::Key),
        tuple().prop_map(OldTuple::Full)
    ]
}

fn row_message(xid: Option<u32>) -> impl Strategy<Value = LogicalMessage> {
    prop_oneof![
        (any::<u32>(), tuple()).prop_map(move |(relation_oid, new)| LogicalMessage::Insert {
            xid,
            relation_oid,
            new
        }),
        (any::<u32>(), proptest::option::of(old_tuple()), tuple()).prop_map(
            move |(relation_oid, old, new)| LogicalMessage::Update {
                xid,
                relation_oid,
                old,
                new
            }
        ),
        (any::<u32>(), old_tuple()).prop_map(move |(relation_oid, old)| LogicalMessage::Delete {
            xid,
            relation_oid,
            old
        }),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..64)) {
        decode_everywhere(&Bytes::from(bytes));
    }

    #[test]
    fn random_bodies_behind_every_tag_never_panic(
        tag in proptest::sample::select(TAGS),
        body in vec(any::<u8>(), 0..96),
    ) {
        let frame = Frame::new(tag).raw(&body).bytes();
        decode_everywhere(&frame);
        for framing in [b'w', b'k'] {
            let _ = ReplicationMessage::parse(Frame::new(framing).raw(&body).bytes());
        }
    }

    #[test]
    fn mutated_real_frames_never_panic(
        index in any::<prop::sample::Index>(),
        mutations in vec(mutation(), 1..4),
    ) {
        let frames = all_real_frames();
        let frame = mutate(index.get(&frames), &mutations);
        decode_everywhere(&frame);
        let wrapped = Frame::new(b'w').u64(1).u64(2).i64(3).raw(&frame).bytes();
        if let Ok(ReplicationMessage::XLogData { data, .. }) = ReplicationMessage::parse(wrapped) {
            prop_assert_eq!(data, frame);
        }
    }

    #[test]
    fn row_messages_round_trip(message in row_message(None)) {
        let decoded = PgOutputDecoder::new(DecoderOptions::default()).decode(encode(&message));
        prop_assert_eq!(decoded, Ok(message));
    }

    #[test]
    fn streamed_row_messages_round_trip(
        message in any::<u32>().prop_flat_map(|xid| row_message(Some(xid))),
    ) {
        let mut decoder = PgOutputDecoder::new(DecoderOptions::default());
        decoder.decode(Frame::new(b'S').u32(1).u8(1).bytes()).unwrap();
        prop_assert_eq!(decoder.decode(encode(&message)), Ok(message));
    }
}

/// Exhaustive: every strict prefix of every captured frame is an error, not a panic
/// and not a shorter message.
#[test]
fn every_prefix_of_a_real_frame_is_an_error() {
    for (text, options) in [
        (PG15_V1, DecoderOptions::default()),
        (PG15_V2, DecoderOptions::default()),
        (PG15_V3, DecoderOptions::default()),
        (
            PG18_V4,
            DecoderOptions {
                protocol_version: 4,
                streaming_parallel: true,
            },
        ),
    ] {
        let mut decoder = PgOutputDecoder::new(options);
        for frame in frames(text) {
            for len in 0..frame.len() {
                let mut probe = decoder.clone();
                let result = probe.decode(frame.slice(..len));
                assert!(result.is_err(), "{len} bytes of {frame:?}: {result:?}");
            }
            decoder.decode(frame).unwrap();
        }
    }
}
