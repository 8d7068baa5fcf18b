//! Decode cost of the hot path: one Insert of 10 text columns and one Update with an old
//! key, as a walsender would send them (wrapped in XLogData, then the pgoutput message).
//!
//! `cargo bench -p dbmazz --bench decode`

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dbmazz::decode::{DecoderOptions, LogicalMessage, PgOutputDecoder, ReplicationMessage};

fn tuple(frame: &mut BytesMut, values: &[&[u8]]) {
    frame.put_u16(values.len() as u16);
    for value in values {
        frame.put_u8(b't');
        frame.put_i32(value.len() as i32);
        frame.put_slice(value);
    }
}

const ROW: [&[u8]; 10] = [
    b"123456",
    b"alice@example.com",
    b"Alice Example",
    b"2024-05-01 12:34:56.789+00",
    b"42.50",
    b"t",
    b"some free text note of moderate length",
    b"FR",
    b"987654321",
    b"{\"a\":1,\"b\":[1,2,3]}",
];

fn xlogdata(message: BytesMut) -> Bytes {
    let mut frame = BytesMut::new();
    frame.put_u8(b'w');
    frame.put_u64(0x16_B374_D848);
    frame.put_u64(0x16_B374_D900);
    frame.put_i64(848_955_197_471_260);
    frame.put_slice(&message);
    frame.freeze()
}

fn insert_frame() -> Bytes {
    let mut message = BytesMut::new();
    message.put_u8(b'I');
    message.put_u32(16391);
    message.put_u8(b'N');
    tuple(&mut message, &ROW);
    xlogdata(message)
}

fn update_frame() -> Bytes {
    let mut message = BytesMut::new();
    message.put_u8(b'U');
    message.put_u32(16391);
    message.put_u8(b'K');
    message.put_u16(10);
    message.put_u8(b't');
    message.put_i32(6);
    message.put_slice(b"123455");
    for _ in 1..10 {
        message.put_u8(b'n');
    }
    message.put_u8(b'N');
    tuple(&mut message, &ROW);
    xlogdata(message)
}

fn decode(decoder: &mut PgOutputDecoder, frame: &Bytes) -> LogicalMessage {
    let Ok(ReplicationMessage::XLogData { data, .. }) = ReplicationMessage::parse(frame.clone())
    else {
        panic!("not XLogData")
    };
    decoder.decode(data).expect("valid frame")
}

fn bench(c: &mut Criterion) {
    let mut decoder = PgOutputDecoder::new(DecoderOptions {
        protocol_version: 4,
        streaming_parallel: true,
    });
    for (name, frame) in [
        ("insert_10_text", insert_frame()),
        ("update_key_10_text", update_frame()),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("messages", |b| {
            b.iter(|| decode(&mut decoder, black_box(&frame)))
        });
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function("bytes", |b| {
            b.iter(|| decode(&mut decoder, black_box(&frame)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
