//! Properties: every body is valid JSON, PG array literals round-trip, no input panics.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

use super::{encode_with, raw, schema, META};
use crate::decode::{TupleData, TupleValue};
use crate::schema::type_map::{map_pg_type, oid, ColumnMapping, LossyPolicy, TypeMapOptions};
use crate::sink::starrocks::*;

/// Quotes an element the way PostgreSQL's `array_out` does.
fn pg_array_element(element: &str) -> String {
    let needs_quotes = element.is_empty()
        || element.eq_ignore_ascii_case("NULL")
        || element.bytes().any(|b| {
            matches!(
                b,
                b'"' | b'\\' | b'{' | b'}' | b',' | b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c
            )
        });
    if !needs_quotes {
        return element.to_string();
    }
    let mut quoted = String::from("\"");
    for c in element.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn pg_array(elements: &[Option<String>]) -> String {
    let items: Vec<String> = elements
        .iter()
        .map(|element| match element {
            Some(text) => pg_array_element(text),
            None => "NULL".to_string(),
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

/// Strings with the characters that matter most, plus any Unicode.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[\"\\\\{},NUL \t\r\n\u{0}\u{1}\u{1f}\u{7f}aé😀]{0,12}",
        any::<String>(),
    ]
}

/// Every encoding the type map produces, to throw bytes at.
fn all_mappings() -> Vec<u32> {
    vec![
        oid::BOOL,
        oid::INT2,
        oid::INT4,
        oid::INT8,
        oid::FLOAT4,
        oid::FLOAT8,
        oid::NUMERIC,
        oid::TEXT,
        oid::DATE,
        oid::TIMESTAMP,
        oid::TIMESTAMPTZ,
        oid::JSONB,
        oid::BYTEA,
        oid::UUID,
        oid::XID8,
        1007,
        1009,
        1182,
        1185,
        3807,
        1001,
        1231,
        1020,
    ]
}

proptest! {
    #[test]
    fn text_values_always_make_valid_json_and_round_trip(value in tricky_string()) {
        let (json, reason) = encode_with(oid::TEXT, -1, value.as_bytes(), &TypeMapOptions::default()).unwrap();
        prop_assert_eq!(reason, None);
        prop_assert_eq!(json, Value::String(value));
    }

    #[test]
    fn text_arrays_round_trip_through_pg_literals(elements in vec(proptest::option::of(tricky_string()), 0..8)) {
        let literal = pg_array(&elements);
        let (json, reason) = encode_with(1009, -1, literal.as_bytes(), &TypeMapOptions::default()).unwrap();
        prop_assert_eq!(reason, None, "{}", literal);
        let expected: Vec<Value> = elements.iter().map(|e| e.clone().map_or(Value::Null, Value::String)).collect();
        prop_assert_eq!(json, Value::Array(expected), "{}", literal);
    }

    #[test]
    fn integer_arrays_round_trip_in_one_and_two_dimensions(
        elements in vec(proptest::option::of(any::<i32>()), 0..8),
        rows in vec(vec(any::<i32>(), 3), 1..4),
        lower_bound in -3i32..3,
    ) {
        let literal = pg_array(&elements.iter().map(|e| e.map(|v| v.to_string())).collect::<Vec<_>>());
        let literal = format!("[{lower_bound}:{}]={literal}", lower_bound + elements.len() as i32 - 1);
        let (json, _) = encode_with(1007, -1, literal.as_bytes(), &TypeMapOptions::default()).unwrap();
        let expected: Vec<Value> = elements.iter().map(|e| e.map_or(Value::Null, Value::from)).collect();
        prop_assert_eq!(json, Value::Array(expected));

        let inner = map_pg_type(1007, -1, &TypeMapOptions::default()).unwrap();
        let id = map_pg_type(oid::INT4, -1, &TypeMapOptions::default()).unwrap();
        let table = schema(&[("id", oid::INT4, -1, true), ("v", 1007, -1, false)]);
        let encoder = TableEncoder::new(&table, vec![id, ColumnMapping::array_of(inner)], EncoderOptions::default()).unwrap();
        let literal = format!("{{{}}}", rows.iter().map(|r| format!("{{{}}}", r.iter().map(i32::to_string).collect::<Vec<_>>().join(","))).collect::<Vec<_>>().join(","));
        let mut body = JsonBody::new();
        let values = TupleData(vec![TupleValue::Text(Bytes::from_static(b"1")), TupleValue::Text(Bytes::from(literal))]);
        encoder.push_upsert(&mut body, &values, &ColumnSelection::All, &META).unwrap();
        let (bytes, _) = body.finish();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(&parsed[0]["v"], &serde_json::json!(rows));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_bodies_stay_valid(
        value in vec(any::<u8>(), 0..48),
        policy in prop_oneof![Just(LossyPolicy::Null), Just(LossyPolicy::Error), Just(LossyPolicy::Truncate)],
    ) {
        let options = TypeMapOptions { lossy_policy: policy, ..TypeMapOptions::default() };
        for type_oid in all_mappings() {
            // `encode_with` parses the body: Ok means valid JSON.
            let _ = encode_with(type_oid, 3 + 4, &value, &options);
        }
    }

    #[test]
    fn random_rows_keep_the_body_valid_whatever_fails(
        rows in vec(vec((0u8..4, vec(any::<u8>(), 0..12)), 6), 1..12),
        policy in prop_oneof![Just(LossyPolicy::Null), Just(LossyPolicy::Error), Just(LossyPolicy::Truncate)],
        soft in any::<bool>(),
    ) {
        let table = schema(&[
            ("id", oid::INT4, -1, true),
            ("name", oid::VARCHAR, 2 + 4, false),
            ("day", oid::DATE, -1, false),
            ("tags", 1009, -1, false),
            ("doc", oid::JSONB, -1, false),
            ("amount", oid::NUMERIC, ((6 << 16) | 2) + 4, false),
        ]);
        let options = TypeMapOptions { lossy_policy: policy, ..TypeMapOptions::default() };
        let encoder_options = EncoderOptions {
            delete_mode: if soft { DeleteMode::Soft } else { DeleteMode::Hard },
            audit_columns: soft,
            not_null_columns: vec![2],
            ..EncoderOptions::default()
        };
        let encoder = TableEncoder::from_schema(&table, &options, encoder_options).unwrap();
        let mut body = JsonBody::new();
        let mut accepted = 0;
        for (index, row) in rows.iter().enumerate() {
            let values = TupleData(row.iter().map(|(kind, bytes)| match kind {
                0 => TupleValue::Null,
                1 => TupleValue::UnchangedToast,
                2 => TupleValue::Binary(Bytes::from(bytes.clone())),
                _ => TupleValue::Text(Bytes::from(bytes.clone())),
            }).collect());
            let selection = ColumnSelection::present_in(&encoder, &values);
            let result = if index % 3 == 2 {
                encoder.push_delete(&mut body, &values, &selection, &META)
            } else {
                encoder.push_upsert(&mut body, &values, &selection, &META)
            };
            accepted += usize::from(result.is_ok());
        }
        prop_assert_eq!(body.rows(), accepted);
        let (bytes, lossy) = body.finish();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(parsed.as_array().map(Vec::len), Some(accepted));
        prop_assert!(lossy.iter().all(|value| value.row < accepted));
    }

    #[test]
    fn array_like_bytes_never_panic(value in "[\\[\\]0-9:={}\",\\\\ NUL;a-]{0,32}") {
        for type_oid in [1007, 1009, 1182, 1020, 3807] {
            let _ = encode_with(type_oid, -1, value.as_bytes(), &TypeMapOptions::default());
        }
    }

    #[test]
    fn floats_keep_their_value(value in any::<f64>()) {
        let text = if value.is_nan() { "NaN".to_string() } else if value.is_infinite() {
            if value > 0.0 { "Infinity".into() } else { "-Infinity".into() }
        } else { format!("{value:e}") };
        let written = raw(oid::FLOAT8, -1, &text, &TypeMapOptions::default());
        if value.is_finite() {
            prop_assert_eq!(written.parse::<f64>().ok(), Some(value));
        } else {
            prop_assert_eq!(written, format!("\"{text}\""));
        }
    }

    #[test]
    fn timestamptz_offsets_convert_to_the_same_utc_instant(
        seconds in -62_135_596_800i64..253_402_300_799,
        offset_minutes in -15 * 60i64..15 * 60,
    ) {
        // Local wall time for UTC `seconds` at `offset`; the encoder must get `seconds` back.
        let local = seconds + offset_minutes * 60;
        let local_text = datetime::format_utc_micros(local * 1_000_000);
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let offset = offset_minutes.abs();
        let text = format!("{}{sign}{:02}:{:02}", &local_text[..19], offset / 60, offset % 60);
        let (json, reason) = encode_with(oid::TIMESTAMPTZ, -1, text.as_bytes(), &TypeMapOptions::default()).unwrap();
        let utc = datetime::format_utc_micros(seconds * 1_000_000);
        if reason.is_none() {
            prop_assert_eq!(json, Value::String(utc[..19].to_string()), "{}", text);
        } else {
            prop_assert!(!(-62_135_596_800..253_402_300_800).contains(&local), "{}", text);
        }
    }
}
