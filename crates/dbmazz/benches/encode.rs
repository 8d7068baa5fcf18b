//! Encode cost of the StarRocks sink: 100k rows of 10 mixed columns (bigint, text, varchar,
//! timestamptz, numeric(12,2), bool, int, jsonb) into one Stream Load JSON body, with the
//! hand-written encoder and with a naive `serde_json::Value`-per-row encoder doing the same
//! conversions, to show what the hot path saves.
//!
//! `cargo bench -p dbmazz --bench encode`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dbmazz::decode::{ReplicaIdentity, TupleData, TupleValue};
use dbmazz::schema::type_map::{oid, TypeMapOptions};
use dbmazz::schema::{ColumnSchema, TableName, TableSchema};
use dbmazz::sink::starrocks::{ColumnSelection, EncoderOptions, JsonBody, RowMeta, TableEncoder};
use serde_json::{Map, Value};

const ROWS: usize = 100_000;

const COLUMNS: [(&str, u32, i32); 10] = [
    ("id", oid::INT8, -1),
    ("email", oid::TEXT, -1),
    ("name", oid::VARCHAR, 100 + 4),
    ("created_at", oid::TIMESTAMPTZ, -1),
    ("amount", oid::NUMERIC, ((12 << 16) | 2) + 4),
    ("active", oid::BOOL, -1),
    ("note", oid::TEXT, -1),
    ("country", oid::BPCHAR, 2 + 4),
    ("counter", oid::INT4, -1),
    ("payload", oid::JSONB, -1),
];

fn table() -> TableSchema {
    TableSchema {
        relation_oid: 16_391,
        name: TableName::new("public", "bench"),
        replica_identity: ReplicaIdentity::Default,
        columns: COLUMNS
            .iter()
            .enumerate()
            .map(|(index, &(name, type_oid, type_modifier))| {
                ColumnSchema::new(name, type_oid, type_modifier, index == 0)
            })
            .collect(),
        version: 1,
    }
}

fn rows() -> Vec<TupleData> {
    (0..ROWS)
        .map(|index| {
            let values = [
                format!("{}", 1_000_000 + index),
                format!("user{index}@example.com"),
                format!("User \"{index}\" Example"),
                format!(
                    "2024-05-01 12:{:02}:{:02}.{:06}+00",
                    index / 60 % 60,
                    index % 60,
                    index
                ),
                format!("{}.{:02}", index * 7, index % 100),
                if index % 3 == 0 { "t" } else { "f" }.to_string(),
                "some free text note of moderate length\twith a tab".to_string(),
                "FR".to_string(),
                format!("{}", index as i32 - 50_000),
                format!("{{\"a\": {index}, \"b\": [1, 2, 3], \"c\": \"x\"}}"),
            ];
            TupleData(
                values
                    .into_iter()
                    .map(|value| TupleValue::Text(Bytes::from(value)))
                    .collect(),
            )
        })
        .collect()
}

const META: RowMeta<'static> = RowMeta {
    commit_lsn: 0x16_B374_D848,
    synced_at: "2024-05-01 12:00:00.000000",
};

fn encode_hand_written(encoder: &TableEncoder, rows: &[TupleData]) -> Vec<u8> {
    let mut body = JsonBody::with_capacity(24 << 20);
    for row in rows {
        encoder
            .push_upsert(&mut body, row, &ColumnSelection::All, &META)
            .expect("bench rows encode");
    }
    body.finish().0
}

/// The same conversions through a `serde_json::Value` per row.
fn encode_naive(rows: &[TupleData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 << 20);
    out.push(b'[');
    for (index, row) in rows.iter().enumerate() {
        let mut object = Map::new();
        object.insert("__op".into(), Value::from(0));
        for ((name, type_oid, _), value) in COLUMNS.iter().zip(&row.0) {
            let TupleValue::Text(bytes) = value else {
                object.insert((*name).into(), Value::Null);
                continue;
            };
            let text = std::str::from_utf8(bytes).expect("UTF-8");
            let json = match *type_oid {
                oid::INT8 | oid::INT4 => Value::from(text.parse::<i64>().expect("int")),
                oid::BOOL => Value::Bool(text == "t"),
                // Exactness needs the text; a naive encoder would send a string.
                oid::NUMERIC => Value::String(text.to_string()),
                oid::TIMESTAMPTZ => Value::String(text.trim_end_matches("+00").to_string()),
                oid::JSONB => serde_json::from_str(text).expect("json"),
                _ => Value::String(text.to_string()),
            };
            object.insert((*name).into(), json);
        }
        if index > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &Value::Object(object)).expect("write");
    }
    out.push(b']');
    out
}

fn bench(c: &mut Criterion) {
    let schema = table();
    let encoder = TableEncoder::from_schema(
        &schema,
        &TypeMapOptions::default(),
        EncoderOptions::default(),
    )
    .expect("encoder");
    let rows = rows();
    let body_len = encode_hand_written(&encoder, &rows).len();
    println!(
        "body: {ROWS} rows, {:.1} MiB (hand-written), {:.1} MiB (serde_json::Value)",
        body_len as f64 / (1 << 20) as f64,
        encode_naive(&rows).len() as f64 / (1 << 20) as f64
    );

    let mut group = c.benchmark_group("encode_100k_rows");
    group.sample_size(20);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("hand_written", |b| {
        b.iter(|| black_box(encode_hand_written(&encoder, black_box(&rows))))
    });
    group.bench_function("serde_json_value_per_row", |b| {
        b.iter(|| black_box(encode_naive(black_box(&rows))))
    });
    group.finish();

    let mut group = c.benchmark_group("encode_100k_rows_bytes");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(body_len as u64));
    group.bench_function("hand_written", |b| {
        b.iter(|| black_box(encode_hand_written(&encoder, black_box(&rows))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
