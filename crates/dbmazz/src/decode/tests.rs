//! Decoder tests: real frames captured from PostgreSQL 15 and 18
//! (`scripts/capture-pgoutput.sh`), hand-built frames for the rest, and property tests.

mod encode;
mod fixtures;
mod handmade;
mod properties;

use bytes::Bytes;

use super::*;

/// The messages of a fixture file: one hex frame per line, `#` lines are comments.
pub(super) fn frames(text: &str) -> Vec<Bytes> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| Bytes::from(hex(line)))
        .collect()
}

pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("not hex: {text}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd hex length: {text}");
    digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect()
}

pub(super) const PG15_V1: &str = include_str!("testdata/pg15_v1.hex");
pub(super) const PG15_V2: &str = include_str!("testdata/pg15_v2_stream.hex");
pub(super) const PG15_V3: &str = include_str!("testdata/pg15_v3_twophase.hex");
pub(super) const PG18_V4: &str = include_str!("testdata/pg18_v4_parallel.hex");

pub(super) fn options(protocol_version: u32, streaming_parallel: bool) -> DecoderOptions {
    DecoderOptions {
        protocol_version,
        streaming_parallel,
    }
}

/// Decodes every frame of a fixture in order, failing on the first error.
pub(super) fn decode_all(text: &str, options: DecoderOptions) -> Vec<LogicalMessage> {
    let mut decoder = PgOutputDecoder::new(options);
    frames(text)
        .into_iter()
        .enumerate()
        .map(|(line, frame)| {
            decoder
                .decode(frame)
                .unwrap_or_else(|error| panic!("frame {line}: {error}"))
        })
        .collect()
}
