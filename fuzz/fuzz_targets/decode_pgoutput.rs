//! Any bytes into the replication decoders: must return, never panic or over-allocate.
//!
//! The first byte picks the decoder state (protocol version, `streaming_parallel`,
//! inside a stream block or not); the rest is the frame, tried both as a pgoutput
//! message and as a walsender CopyData frame.
#![no_main]

use bytes::Bytes;
use dbmazz::decode::{DecoderOptions, PgOutputDecoder, ReplicationMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, frame)) = input.split_first() else {
        return;
    };
    let mut decoder = PgOutputDecoder::new(DecoderOptions {
        protocol_version: u32::from(selector & 3) + 1,
        streaming_parallel: selector & 4 != 0,
    });
    if selector & 8 != 0 {
        let start = Bytes::from_static(&[b'S', 0, 0, 0, 1, 1]);
        assert!(decoder.decode(start).is_ok());
    }
    let frame = Bytes::copy_from_slice(frame);
    let _ = decoder.decode(frame.clone());
    if let Ok(ReplicationMessage::XLogData { data, .. }) = ReplicationMessage::parse(frame) {
        let _ = decoder.decode(data);
    }
});
