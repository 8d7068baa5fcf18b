//! Encoder tests. `type_row_*` tests are the rows of docs/type-mapping.md, one per row; the
//! `body_*` tests pin row shapes; `proptests` checks validity and round trips on random input;
//! `plan` checks how `plan_loads` groups rows into loads.

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::decode::{ReplicaIdentity, TupleData, TupleValue};
use crate::schema::type_map::{
    map_pg_type, oid, ColumnMapping, LossyPolicy, TypeMapOptions, UnknownTypes, WideNumeric,
};
use crate::schema::{ColumnSchema, TableName, TableSchema};

mod plan;
mod proptests;

pub(super) fn schema(columns: &[(&str, u32, i32, bool)]) -> TableSchema {
    TableSchema {
        relation_oid: 16_384,
        name: TableName::new("public", "t"),
        replica_identity: ReplicaIdentity::Default,
        columns: columns
            .iter()
            .map(|&(name, type_oid, type_modifier, is_key)| {
                ColumnSchema::new(name, type_oid, type_modifier, is_key)
            })
            .collect(),
        version: 1,
    }
}

pub(super) fn text(value: &str) -> TupleValue {
    TupleValue::Text(Bytes::copy_from_slice(value.as_bytes()))
}

pub(super) fn row(values: &[Option<&str>]) -> TupleData {
    TupleData(
        values
            .iter()
            .map(|value| value.map_or(TupleValue::Null, text))
            .collect(),
    )
}

pub(super) const META: RowMeta<'static> = RowMeta {
    commit_lsn: 0x16_B374_D848,
    synced_at: "2024-03-10 07:30:00.000000",
};

/// The JSON stored for one value of column `v` (type `type_oid`, `typmod`), and the lossy
/// reason recorded, under `options`.
pub(super) fn encode_with(
    type_oid: u32,
    typmod: i32,
    value: &[u8],
    options: &TypeMapOptions,
) -> Result<(Value, Option<LossyReason>), EncodeError> {
    let table = schema(&[("id", oid::INT4, -1, true), ("v", type_oid, typmod, false)]);
    let encoder =
        TableEncoder::from_schema(&table, options, EncoderOptions::default()).expect("mapped type");
    let mut body = JsonBody::new();
    let values = TupleData(vec![
        text("1"),
        TupleValue::Text(Bytes::copy_from_slice(value)),
    ]);
    encoder.push_upsert(&mut body, &values, &ColumnSelection::All, &META)?;
    let (bytes, lossy) = body.finish();
    let parsed: Value = serde_json::from_slice(&bytes).expect("valid JSON body");
    let reason = lossy.first().map(|lossy| lossy.reason);
    Ok((parsed[0]["v"].clone(), reason))
}

/// The raw JSON text written for one value (numbers compared as text: serde_json would
/// round them through f64).
pub(super) fn raw(type_oid: u32, typmod: i32, value: &str, options: &TypeMapOptions) -> String {
    let table = schema(&[("id", oid::INT4, -1, true), ("v", type_oid, typmod, false)]);
    let encoder =
        TableEncoder::from_schema(&table, options, EncoderOptions::default()).expect("mapped type");
    let mut body = JsonBody::new();
    let values = TupleData(vec![text("1"), text(value)]);
    encoder
        .push_upsert(&mut body, &values, &ColumnSelection::All, &META)
        .expect("encoded");
    let (bytes, _) = body.finish();
    let body = String::from_utf8(bytes).expect("UTF-8 body");
    let prefix = r#"[{"__op":0,"id":1,"v":"#;
    assert!(body.starts_with(prefix) && body.ends_with("}]"), "{body}");
    body[prefix.len()..body.len() - 2].to_string()
}

/// An exact number, as text.
fn exact_raw(type_oid: u32, typmod: i32, value: &str) -> String {
    assert_eq!(
        encode(type_oid, typmod, value).1,
        None,
        "{value:?} should be exact"
    );
    raw(type_oid, typmod, value, &TypeMapOptions::default())
}

/// As [`encode_with`] under the default options: (value, lossy reason).
pub(super) fn encode(type_oid: u32, typmod: i32, value: &str) -> (Value, Option<LossyReason>) {
    encode_with(
        type_oid,
        typmod,
        value.as_bytes(),
        &TypeMapOptions::default(),
    )
    .expect("default policy never fails a value column")
}

/// An exact conversion.
fn exact(type_oid: u32, typmod: i32, value: &str) -> Value {
    let (json, reason) = encode(type_oid, typmod, value);
    assert_eq!(reason, None, "{value:?} should be exact");
    json
}

/// A lossy value under the default policy: NULL and the reason.
fn lossy(type_oid: u32, typmod: i32, value: &str) -> LossyReason {
    let (json, reason) = encode(type_oid, typmod, value);
    assert_eq!(json, Value::Null, "{value:?} should be NULLed");
    reason.unwrap_or_else(|| panic!("{value:?} should be reported lossy"))
}

fn numeric_typmod(precision: i32, scale: i32) -> i32 {
    ((precision << 16) | (scale & 0x7ff)) + 4
}

fn policy(lossy_policy: LossyPolicy) -> TypeMapOptions {
    TypeMapOptions {
        lossy_policy,
        ..TypeMapOptions::default()
    }
}

// ---- one test per row of docs/type-mapping.md ----

#[test]
fn type_row_bool() {
    assert_eq!(exact(oid::BOOL, -1, "t"), json!(true));
    assert_eq!(exact(oid::BOOL, -1, "f"), json!(false));
    assert_eq!(lossy(oid::BOOL, -1, "yes"), LossyReason::Invalid);
}

#[test]
fn type_row_int2_int4_int8() {
    assert_eq!(exact(oid::INT2, -1, "-32768"), json!(-32768));
    assert_eq!(exact(oid::INT2, -1, "32767"), json!(32767));
    assert_eq!(exact(oid::INT4, -1, "-2147483648"), json!(-2147483648i64));
    assert_eq!(exact(oid::INT4, -1, "0"), json!(0));
    assert_eq!(exact(oid::INT8, -1, "9223372036854775807"), json!(i64::MAX));
    assert_eq!(
        exact(oid::INT8, -1, "-9223372036854775808"),
        json!(i64::MIN)
    );
    assert_eq!(exact(oid::INT4, -1, "+007"), json!(7));
    assert_eq!(lossy(oid::INT2, -1, "32768"), LossyReason::OutOfRange);
    assert_eq!(lossy(oid::INT8, -1, "1.5"), LossyReason::Invalid);
    assert_eq!(lossy(oid::INT4, -1, ""), LossyReason::Invalid);
}

#[test]
fn type_row_float4_float8() {
    assert_eq!(exact(oid::FLOAT8, -1, "1.5"), json!(1.5));
    assert_eq!(
        exact(oid::FLOAT8, -1, "0.30000000000000004"),
        json!(0.30000000000000004)
    );
    assert_eq!(exact(oid::FLOAT8, -1, "1e+300"), json!(1e300));
    assert_eq!(exact(oid::FLOAT8, -1, "-0"), json!(-0.0));
    assert_eq!(
        exact(oid::FLOAT8, -1, "1.7976931348623157e+308"),
        json!(f64::MAX)
    );
    assert_eq!(exact(oid::FLOAT4, -1, "3.4028235e+38"), json!(3.4028235e38));
    assert_eq!(exact(oid::FLOAT8, -1, "NaN"), json!("NaN"));
    assert_eq!(exact(oid::FLOAT8, -1, "Infinity"), json!("Infinity"));
    assert_eq!(exact(oid::FLOAT4, -1, "-Infinity"), json!("-Infinity"));
    // Not PostgreSQL's form, still a float: normalised to a JSON number.
    assert_eq!(exact(oid::FLOAT8, -1, ".5"), json!(0.5));
    assert_eq!(lossy(oid::FLOAT8, -1, "abc"), LossyReason::Invalid);
}

#[test]
fn type_row_numeric_fitting() {
    let typmod = numeric_typmod(12, 2);
    assert_eq!(
        exact_raw(oid::NUMERIC, typmod, "1234567890.12"),
        "1234567890.12"
    );
    assert_eq!(exact_raw(oid::NUMERIC, typmod, "-0.50"), "-0.50");
    // 38 digits, exact (no f64 anywhere).
    let typmod = numeric_typmod(38, 10);
    let digits = "1234567890123456789012345678.0123456789";
    assert_eq!(exact_raw(oid::NUMERIC, typmod, digits), digits);
    // PG15 negative scale and scale > precision.
    assert_eq!(
        exact_raw(oid::NUMERIC, numeric_typmod(2, -3), "99000"),
        "99000"
    );
    assert_eq!(
        exact_raw(oid::NUMERIC, numeric_typmod(3, 5), "0.00123"),
        "0.00123"
    );
    assert_eq!(lossy(oid::NUMERIC, typmod, "NaN"), LossyReason::NotANumber);
    assert_eq!(
        lossy(oid::NUMERIC, typmod, "Infinity"),
        LossyReason::Infinity
    );
    assert_eq!(
        lossy(oid::NUMERIC, typmod, "-Infinity"),
        LossyReason::Infinity
    );
}

#[test]
fn type_row_numeric_wide() {
    // Unconstrained → DECIMAL(38,9).
    let value = "123456789012345678901234567890";
    assert_eq!(lossy(oid::NUMERIC, -1, value), LossyReason::OutOfRange);
    let value = "12345678901234567890123456789.123456789";
    assert_eq!(exact_raw(oid::NUMERIC, -1, value), value);
    assert_eq!(
        exact_raw(oid::NUMERIC, -1, "1.5000000000000"),
        "1.500000000"
    );
    assert_eq!(
        lossy(oid::NUMERIC, -1, "0.0000000001"),
        LossyReason::Precision
    );
    assert_eq!(exact_raw(oid::NUMERIC, -1, "-0007.25"), "-7.25");
    // Truncate cuts the digits past the scale (toward zero).
    let truncate = policy(LossyPolicy::Truncate);
    let (_, reason) = encode_with(oid::NUMERIC, -1, b"2.1234567899", &truncate).unwrap();
    assert_eq!(reason, Some(LossyReason::Precision));
    assert_eq!(
        raw(oid::NUMERIC, -1, "-2.1234567899", &truncate),
        "-2.123456789"
    );
    assert_eq!(lossy(oid::NUMERIC, -1, "1e5"), LossyReason::Invalid);
}

#[test]
fn type_row_numeric_wide_as_string() {
    let options = TypeMapOptions {
        wide_numeric: WideNumeric::String,
        ..TypeMapOptions::default()
    };
    let value = "123456789012345678901234567890.123456789012345";
    let (json, reason) = encode_with(oid::NUMERIC, -1, value.as_bytes(), &options).unwrap();
    assert_eq!((json, reason), (json!(value), None));
    let (json, _) = encode_with(oid::NUMERIC, -1, b"NaN", &options).unwrap();
    assert_eq!(json, json!("NaN"));
}

#[test]
fn type_row_text() {
    assert_eq!(exact(oid::TEXT, -1, ""), json!(""));
    let tricky = "quote \" backslash \\ tab \t nl \n cr \r bell \u{7} nul-free é 中 😀 \u{2028}";
    assert_eq!(exact(oid::TEXT, -1, tricky), json!(tricky));
    let escaped = raw(
        oid::TEXT,
        -1,
        "\u{7}\u{1f}\"\\\n\u{8}\u{c}\r\t\u{7f}",
        &TypeMapOptions::default(),
    );
    assert_eq!(
        escaped,
        r#""\u0007\u001f\"\\\n\b\f\r\t\u{7f}""#.replace("\\u{7f}", "\u{7f}")
    );
    let long = "x".repeat(1_048_577);
    assert_eq!(lossy(oid::TEXT, -1, &long), LossyReason::TooLong);
}

#[test]
fn type_row_varchar_n_bytes() {
    // varchar(2) → VARCHAR(8): two 4-byte characters fit, and StarRocks counts bytes.
    let typmod = 2 + 4;
    assert_eq!(exact(oid::VARCHAR, typmod, "😀😀"), json!("😀😀"));
    assert_eq!(lossy(oid::VARCHAR, typmod, "😀😀a"), LossyReason::TooLong);
    // Truncate cuts on a character boundary, never inside the emoji.
    let (json, reason) = encode_with(
        oid::VARCHAR,
        typmod,
        "a😀😀".as_bytes(),
        &policy(LossyPolicy::Truncate),
    )
    .unwrap();
    assert_eq!((json, reason), (json!("a😀"), Some(LossyReason::TooLong)));
    let error = encode_with(
        oid::VARCHAR,
        typmod,
        b"123456789",
        &policy(LossyPolicy::Error),
    );
    assert!(matches!(error, Err(EncodeError::Lossy { .. })));
    let invalid = encode_with(oid::VARCHAR, -1, b"\xff\xfe", &TypeMapOptions::default());
    assert_eq!(
        invalid.unwrap(),
        (Value::Null, Some(LossyReason::InvalidUtf8))
    );
}

#[test]
fn type_row_bpchar() {
    // char(3) keeps PostgreSQL's padding.
    assert_eq!(exact(oid::BPCHAR, 3 + 4, "ab "), json!("ab "));
    assert_eq!(exact(oid::BPCHAR, -1, "x"), json!("x"));
}

#[test]
fn type_row_name_and_char() {
    assert_eq!(exact(oid::NAME, -1, "pg_class"), json!("pg_class"));
    assert_eq!(exact(oid::CHAR, -1, "r"), json!("r"));
}

#[test]
fn type_row_date() {
    assert_eq!(exact(oid::DATE, -1, "2024-03-10"), json!("2024-03-10"));
    assert_eq!(exact(oid::DATE, -1, "2024-02-29"), json!("2024-02-29"));
    assert_eq!(exact(oid::DATE, -1, "9999-12-31"), json!("9999-12-31"));
    // 1 BC is astronomical year 0, StarRocks's first year.
    assert_eq!(exact(oid::DATE, -1, "0001-01-01 BC"), json!("0000-01-01"));
    assert_eq!(
        lossy(oid::DATE, -1, "0044-03-15 BC"),
        LossyReason::OutOfRange
    );
    assert_eq!(lossy(oid::DATE, -1, "10000-01-01"), LossyReason::OutOfRange);
    assert_eq!(lossy(oid::DATE, -1, "infinity"), LossyReason::Infinity);
    assert_eq!(lossy(oid::DATE, -1, "-infinity"), LossyReason::Infinity);
    assert_eq!(lossy(oid::DATE, -1, "2023-02-29"), LossyReason::Invalid);
}

#[test]
fn type_row_timestamp() {
    let value = "2024-03-10 07:30:00.123456";
    assert_eq!(exact(oid::TIMESTAMP, -1, value), json!(value));
    assert_eq!(
        exact(oid::TIMESTAMP, -1, "2024-03-10 07:30:00"),
        json!("2024-03-10 07:30:00")
    );
    assert_eq!(
        exact(oid::TIMESTAMP, -1, "0001-12-31 23:59:59.999999 BC"),
        json!("0000-12-31 23:59:59.999999")
    );
    assert_eq!(lossy(oid::TIMESTAMP, -1, "infinity"), LossyReason::Infinity);
    assert_eq!(
        lossy(oid::TIMESTAMP, -1, "0002-01-01 00:00:00 BC"),
        LossyReason::OutOfRange
    );
    assert_eq!(
        lossy(oid::TIMESTAMP, -1, "2024-03-10 07:30:00+00"),
        LossyReason::Invalid
    );
}

#[test]
fn type_row_timestamptz() {
    let tz = oid::TIMESTAMPTZ;
    assert_eq!(
        exact(tz, -1, "2024-03-10 07:30:00.123456+00"),
        json!("2024-03-10 07:30:00.123456")
    );
    // Other offsets are converted to UTC, across days, months and years.
    assert_eq!(
        exact(tz, -1, "2024-03-10 02:00:00+05:30"),
        json!("2024-03-09 20:30:00")
    );
    assert_eq!(
        exact(tz, -1, "2023-12-31 23:00:00.5-02"),
        json!("2024-01-01 01:00:00.5")
    );
    assert_eq!(
        exact(tz, -1, "1900-01-01 00:09:21+00:09:21"),
        json!("1900-01-01 00:00:00")
    );
    // One microsecond around a DST change (UTC has none; the text is already UTC).
    assert_eq!(
        exact(tz, -1, "2024-03-31 00:59:59.999999+00"),
        json!("2024-03-31 00:59:59.999999")
    );
    assert_eq!(
        lossy(tz, -1, "9999-12-31 23:00:00-02"),
        LossyReason::OutOfRange
    );
    assert_eq!(lossy(tz, -1, "-infinity"), LossyReason::Infinity);
    assert_eq!(
        lossy(tz, -1, "2024-03-10 07:30:00+0x"),
        LossyReason::Invalid
    );
}

#[test]
fn type_row_time_timetz_interval() {
    assert_eq!(exact(oid::TIME, -1, "07:30:00.5"), json!("07:30:00.5"));
    assert_eq!(
        exact(oid::TIMETZ, -1, "07:30:00+05:30"),
        json!("07:30:00+05:30")
    );
    assert_eq!(
        exact(oid::INTERVAL, -1, "P1Y2M3DT4H5M6.5S"),
        json!("P1Y2M3DT4H5M6.5S")
    );
}

#[test]
fn type_row_uuid() {
    let value = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    assert_eq!(exact(oid::UUID, -1, value), json!(value));
}

#[test]
fn type_row_json_jsonb() {
    let value = r#"{"a": [1, 2.50, "x\"y"], "b": {"c": null}}"#;
    assert_eq!(
        exact(oid::JSONB, -1, value),
        serde_json::from_str::<Value>(value).unwrap()
    );
    assert_eq!(exact(oid::JSON, -1, "[1, \"two\"]"), json!([1, "two"]));
    // A JSON string stays a string; JSON null becomes SQL NULL in StarRocks (spec §3.3).
    assert_eq!(exact(oid::JSON, -1, "\"text\""), json!("text"));
    assert_eq!(exact(oid::JSONB, -1, "null"), Value::Null);
    // Big jsonb (about 1 MiB) is embedded as is.
    let big = format!("{{\"k\": \"{}\"}}", "v".repeat(1 << 20));
    assert_eq!(
        exact(oid::JSONB, -1, &big)["k"].as_str().map(str::len),
        Some(1 << 20)
    );
    assert_eq!(lossy(oid::JSON, -1, "{\"a\": }"), LossyReason::Invalid);
    // The check is not recursive: deep documents neither fail nor overflow the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(raw(oid::JSON, -1, &deep, &TypeMapOptions::default()), deep);
    let unbalanced = format!("{}{}", "[".repeat(100_000), "]".repeat(99_999));
    assert_eq!(lossy(oid::JSON, -1, &unbalanced), LossyReason::Invalid);
}

#[test]
fn type_row_arrays() {
    assert_eq!(exact(1007, -1, "{1,2,NULL}"), json!([1, 2, null]));
    assert_eq!(exact(1007, -1, "{}"), json!([]));
    assert_eq!(exact(1007, -1, "[0:2]={7,8,9}"), json!([7, 8, 9]));
    assert_eq!(
        exact(1009, -1, r#"{"a b","c\"d","e\\f","{,}",NULL,"NULL",plain}"#),
        json!(["a b", "c\"d", "e\\f", "{,}", null, "NULL", "plain"])
    );
    assert_eq!(exact(1000, -1, "{t,f}"), json!([true, false]));
    assert_eq!(
        exact(1022, -1, "{1.5,NaN,-Infinity}"),
        json!([1.5, "NaN", "-Infinity"])
    );
    assert_eq!(
        exact_raw(1231, numeric_typmod(10, 2), "{1.50,-2.25}"),
        "[1.50,-2.25]"
    );
    assert_eq!(
        exact(1182, -1, "{2024-01-01,NULL}"),
        json!(["2024-01-01", null])
    );
    assert_eq!(
        exact(1185, -1, r#"{"2024-01-01 05:00:00+05"}"#),
        json!(["2024-01-01 00:00:00"])
    );
    assert_eq!(
        exact(3807, -1, r#"{"{\"a\": 1}",NULL}"#),
        json!([{"a": 1}, null])
    );
    assert_eq!(
        exact(1001, -1, r#"{"\\x00ff",NULL}"#),
        json!(["00ff", null])
    );
    assert_eq!(
        exact(1020, -1, "{(1,1),(0,0);(2,2),(1,1)}"),
        json!(["(1,1),(0,0)", "(2,2),(1,1)"])
    );
    // Lossy elements become NULL; the value is reported.
    assert_eq!(
        encode(1182, -1, "{infinity,2024-01-01}"),
        (json!([null, "2024-01-01"]), Some(LossyReason::Infinity))
    );
    // 2-D values in a 1-D ARRAY column, and malformed literals, are lossy as a whole.
    assert_eq!(
        lossy(1007, -1, "{{1,2},{3,4}}"),
        LossyReason::ArrayDimensions
    );
    assert_eq!(lossy(1007, -1, "{1,2"), LossyReason::Invalid);
    assert_eq!(lossy(1007, -1, "1,2"), LossyReason::Invalid);
    // Policy error refuses a value with a lossy element.
    let error = encode_with(1182, -1, b"{infinity}", &policy(LossyPolicy::Error));
    assert!(matches!(
        error,
        Err(EncodeError::Lossy {
            reason: LossyReason::Infinity,
            ..
        })
    ));
}

#[test]
fn type_row_nested_arrays_via_array_of() {
    let inner = map_pg_type(1007, -1, &TypeMapOptions::default()).unwrap();
    let mapping = ColumnMapping::array_of(inner);
    assert_eq!(mapping.starrocks_type.to_sql(), "ARRAY<ARRAY<INT>>");
    let table = schema(&[("id", oid::INT4, -1, true), ("v", 1007, -1, false)]);
    let id = map_pg_type(oid::INT4, -1, &TypeMapOptions::default()).unwrap();
    let encoder = TableEncoder::new(&table, vec![id, mapping], EncoderOptions::default()).unwrap();
    let mut body = JsonBody::new();
    let values = row(&[Some("1"), Some("{{1,2},{3,NULL}}")]);
    encoder
        .push_upsert(&mut body, &values, &ColumnSelection::All, &META)
        .unwrap();
    let (bytes, lossy) = body.finish();
    let parsed: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(parsed[0]["v"], json!([[1, 2], [3, null]]));
    assert!(lossy.is_empty());
}

#[test]
fn type_row_bytea() {
    assert_eq!(exact(oid::BYTEA, -1, "\\x00ff10"), json!("00ff10"));
    assert_eq!(exact(oid::BYTEA, -1, "\\x"), json!(""));
    assert_eq!(exact(oid::BYTEA, -1, "\\x00AB"), json!("00ab"));
    // bytea_output = escape.
    assert_eq!(exact(oid::BYTEA, -1, "a\\000\\\\\\377"), json!("61005cff"));
    assert_eq!(lossy(oid::BYTEA, -1, "\\x0"), LossyReason::Invalid);
    let big = format!("\\x{}", "00".repeat(524_289));
    assert_eq!(lossy(oid::BYTEA, -1, &big), LossyReason::TooLong);
}

#[test]
fn type_row_oid_xid() {
    assert_eq!(exact(oid::OID, -1, "4294967295"), json!(4294967295u32));
    assert_eq!(exact(oid::XID, -1, "42"), json!(42));
}

#[test]
fn type_row_xid8() {
    assert_eq!(
        exact(oid::XID8, -1, "18446744073709551615"),
        json!(u64::MAX)
    );
}

#[test]
fn type_row_network_money_bits_text_search_xml_lsn() {
    for (type_oid, value) in [
        (oid::INET, "2001:db8::1/64"),
        (oid::CIDR, "10.0.0.0/8"),
        (oid::MACADDR, "08:00:2b:01:02:03"),
        (oid::MACADDR8, "08:00:2b:01:02:03:04:05"),
        (oid::MONEY, "$1,234.56"),
        (oid::BIT, "101"),
        (oid::VARBIT, "10110"),
        (oid::TSVECTOR, "'a':1 'fat':2"),
        (oid::XML, "<a>x</a>"),
        (oid::PG_LSN, "16/B374D848"),
    ] {
        assert_eq!(exact(type_oid, -1, value), json!(value), "{type_oid}");
    }
}

#[test]
fn type_row_geometric() {
    for (type_oid, value) in [
        (oid::POINT, "(1,2)"),
        (oid::LINE, "{1,-1,0}"),
        (oid::LSEG, "[(0,0),(1,1)]"),
        (oid::BOX, "(1,1),(0,0)"),
        (oid::PATH, "((0,0),(1,1))"),
        (oid::POLYGON, "((0,0),(1,1),(1,0))"),
        (oid::CIRCLE, "<(0,0),1>"),
    ] {
        assert_eq!(exact(type_oid, -1, value), json!(value), "{type_oid}");
    }
}

#[test]
fn type_row_enum_and_unknown_types() {
    assert_eq!(exact(16_500, -1, "happy"), json!("happy"));
    let reject = TypeMapOptions {
        unknown_types: UnknownTypes::Reject,
        ..TypeMapOptions::default()
    };
    let table = schema(&[("id", oid::INT4, -1, true), ("mood", 16_500, -1, false)]);
    let error = TableEncoder::from_schema(&table, &reject, EncoderOptions::default()).unwrap_err();
    assert!(error.to_string().contains("public.t.mood"), "{error}");
}

#[test]
fn type_row_domains_use_the_base_type() {
    // `CREATE DOMAIN positive AS numeric(10,2)`: pgoutput sends the domain's OID (here
    // 16_600, typmod -1); the options' domain map gives the base type's OID and typmod.
    let options = TypeMapOptions {
        domains: std::sync::Arc::new(
            [(16_600, (oid::NUMERIC, numeric_typmod(10, 2)))]
                .into_iter()
                .collect(),
        ),
        ..TypeMapOptions::default()
    };
    let base = map_pg_type(16_600, -1, &options);
    assert_eq!(base.unwrap().starrocks_type.to_sql(), "DECIMAL(10,2)");
    assert_eq!(
        exact_raw(oid::NUMERIC, numeric_typmod(10, 2), "12.50"),
        "12.50"
    );
    // An unresolved domain OID is an unknown type: its text, in VARCHAR.
    assert_eq!(exact(16_600, -1, "12.50"), json!("12.50"));
}

#[test]
fn type_row_pseudo_types_are_unsupported() {
    let table = schema(&[("id", oid::INT4, -1, true), ("r", 2249, -1, false)]);
    let error = TableEncoder::from_schema(
        &table,
        &TypeMapOptions::default(),
        EncoderOptions::default(),
    );
    assert!(matches!(error, Err(EncoderSetupError::Unsupported { .. })));
}

#[test]
fn type_row_null_and_binary_values() {
    let table = schema(&[("id", oid::INT4, -1, true), ("v", oid::TEXT, -1, false)]);
    let encoder = TableEncoder::from_schema(
        &table,
        &TypeMapOptions::default(),
        EncoderOptions::default(),
    )
    .unwrap();
    let mut body = JsonBody::new();
    encoder
        .push_upsert(
            &mut body,
            &row(&[Some("1"), None]),
            &ColumnSelection::All,
            &META,
        )
        .unwrap();
    let binary = TupleData(vec![
        text("2"),
        TupleValue::Binary(Bytes::from_static(b"\0")),
    ]);
    encoder
        .push_upsert(&mut body, &binary, &ColumnSelection::All, &META)
        .unwrap();
    assert_eq!(body.lossy()[0].reason, LossyReason::BinaryFormat);
    assert_eq!(body.lossy()[0].row, 1);
    let (bytes, _) = body.finish();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"[{"__op":0,"id":1,"v":null},{"__op":0,"id":2,"v":null}]"#
    );
}

mod body;
