//! Row shapes, headers, audit columns, delete modes and row-level errors.

use serde_json::{json, Value};

use super::{row, schema, text, META};
use crate::decode::{TupleData, TupleValue};
use crate::schema::type_map::{oid, LossyPolicy, TypeMapOptions};
use crate::sink::starrocks::*;

fn orders(options: EncoderOptions) -> TableEncoder {
    let table = schema(&[
        ("id", oid::INT8, -1, true),
        ("region", oid::VARCHAR, 8 + 4, true),
        ("note", oid::TEXT, -1, false),
        ("amount", oid::NUMERIC, ((10 << 16) | 2) + 4, false),
        ("tags", 1009, -1, false),
    ]);
    TableEncoder::from_schema(&table, &TypeMapOptions::default(), options).unwrap()
}

fn body_text(body: JsonBody) -> String {
    let (bytes, _) = body.finish();
    serde_json::from_slice::<Value>(&bytes).expect("valid JSON");
    String::from_utf8(bytes).unwrap()
}

#[test]
fn body_full_upserts_and_hard_deletes() {
    let encoder = orders(EncoderOptions::default());
    let mut body = JsonBody::new();
    assert!(body.is_empty());
    let values = row(&[
        Some("1"),
        Some("eu"),
        Some("a\"b"),
        Some("9.50"),
        Some("{x,NULL}"),
    ]);
    encoder
        .push_upsert(&mut body, &values, &ColumnSelection::All, &META)
        .unwrap();
    let key = row(&[Some("2"), Some("us"), None, None, None]);
    encoder
        .push_delete(&mut body, &key, &ColumnSelection::All, &META)
        .unwrap();
    assert_eq!(body.rows(), 2);
    let len = body.byte_len();
    let text = body_text(body);
    assert_eq!(len, text.len());
    assert_eq!(
        text,
        concat!(
            r#"[{"__op":0,"id":1,"region":"eu","note":"a\"b","amount":9.50,"tags":["x",null]},"#,
            r#"{"__op":1,"id":2,"region":"us"}]"#
        )
    );
    assert_eq!(
        encoder.columns_header(&ColumnSelection::All),
        "`id`,`region`,`note`,`amount`,`tags`,__op"
    );
}

#[test]
fn body_hard_delete_carries_placeholders_for_not_null_columns() {
    let options = EncoderOptions {
        not_null_columns: vec![2, 3, 4],
        ..EncoderOptions::default()
    };
    let encoder = orders(options);
    let mut body = JsonBody::new();
    let key = row(&[Some("2"), Some("us"), None, None, None]);
    encoder
        .push_delete(&mut body, &key, &ColumnSelection::All, &META)
        .unwrap();
    assert_eq!(
        body_text(body),
        r#"[{"__op":1,"id":2,"region":"us","note":"","amount":0,"tags":[]}]"#
    );
}

#[test]
fn body_soft_delete_and_audit_columns() {
    let options = EncoderOptions {
        delete_mode: DeleteMode::Soft,
        audit_columns: true,
        ..EncoderOptions::default()
    };
    let encoder = orders(options.clone());
    let mut body = JsonBody::new();
    let values = row(&[Some("1"), Some("eu"), None, None, None]);
    encoder
        .push_upsert(&mut body, &values, &ColumnSelection::All, &META)
        .unwrap();
    let keys = ColumnSelection::keys(&encoder);
    encoder
        .push_delete(&mut body, &values, &keys, &META)
        .unwrap();
    let text = body_text(body);
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        parsed[0],
        json!({"__op": 0, "id": 1, "region": "eu", "note": null, "amount": null, "tags": null,
               "dbmazz_op_type": 0, "dbmazz_lsn": 0x16_B374_D848u64,
               "dbmazz_synced_at": "2024-03-10 07:30:00.000000", "dbmazz_is_deleted": false})
    );
    assert_eq!(
        parsed[1],
        json!({"__op": 0, "id": 1, "region": "eu", "dbmazz_op_type": 1,
               "dbmazz_lsn": 0x16_B374_D848u64,
               "dbmazz_synced_at": "2024-03-10 07:30:00.000000", "dbmazz_is_deleted": true})
    );
    assert_eq!(
        encoder.columns_header(&keys),
        "`id`,`region`,dbmazz_op_type,dbmazz_lsn,dbmazz_synced_at,dbmazz_is_deleted,__op"
    );
    let names: Vec<&str> = audit_columns(&options)
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        names,
        [AUDIT_OP_TYPE, AUDIT_LSN, AUDIT_SYNCED_AT, AUDIT_IS_DELETED]
    );
    assert!(audit_columns(&EncoderOptions::default()).is_empty());
}

#[test]
fn body_partial_rows_skip_unchanged_toast_columns() {
    let encoder = orders(EncoderOptions::default());
    let mut values = row(&[Some("1"), Some("eu"), None, Some("1.00"), None]);
    values.0[2] = TupleValue::UnchangedToast;
    let selection = ColumnSelection::present_in(&encoder, &values);
    assert!(!selection.is_all());
    assert_eq!(
        encoder.columns_header(&selection),
        "`id`,`region`,`amount`,`tags`,__op"
    );
    let mut body = JsonBody::new();
    encoder
        .push_upsert(&mut body, &values, &selection, &META)
        .unwrap();
    assert_eq!(
        body_text(body),
        r#"[{"__op":0,"id":1,"region":"eu","amount":1.00,"tags":null}]"#
    );
    // Keys are sent even when a selection leaves them out.
    let note_only = ColumnSelection::Subset(vec![false, false, true, false, false].into());
    assert_eq!(
        encoder.columns_header(&note_only),
        "`id`,`region`,`note`,__op"
    );
    // The same row in a full-row load is refused, and leaves nothing in the body.
    let mut body = JsonBody::new();
    let error = encoder
        .push_upsert(&mut body, &values, &ColumnSelection::All, &META)
        .unwrap_err();
    assert!(matches!(error, EncodeError::UnchangedToast { .. }));
    assert!(error.to_string().contains("public.t.note"), "{error}");
    assert!(error.to_string().contains("id=1, region=eu"), "{error}");
    assert!(body.is_empty());
    assert_eq!(body_text(body), "[]");
}

#[test]
fn body_lossy_values_are_recorded_with_their_key() {
    let encoder = orders(EncoderOptions::default());
    let mut body = JsonBody::new();
    let values = row(&[Some("7"), Some("eu"), None, Some("123456789.00"), None]);
    encoder
        .push_upsert(&mut body, &values, &ColumnSelection::All, &META)
        .unwrap();
    let lossy = body.lossy()[0].clone();
    assert_eq!(lossy.reason, LossyReason::OutOfRange);
    assert_eq!(&*lossy.column, "amount");
    assert_eq!(lossy.key, "id=7, region=eu");
    assert_eq!(lossy.reason.as_str(), "out_of_range");
    assert!(!lossy.altered, "stored as NULL");
    assert!(body_text(body).contains(r#""amount":null"#));
}

#[test]
fn body_truncated_values_are_recorded_as_altered() {
    let table = schema(&[
        ("id", oid::INT4, -1, true),
        ("s", oid::VARCHAR, 3 + 4, false),
    ]);
    let truncate = TypeMapOptions {
        lossy_policy: LossyPolicy::Truncate,
        ..TypeMapOptions::default()
    };
    let encoder = TableEncoder::from_schema(&table, &truncate, EncoderOptions::default()).unwrap();
    let mut body = JsonBody::new();
    encoder
        .push_upsert(
            &mut body,
            &row(&[Some("1"), Some(&"abcdefghij".repeat(10))]),
            &ColumnSelection::All,
            &META,
        )
        .unwrap();
    let lossy = body.lossy()[0].clone();
    assert_eq!(lossy.reason, LossyReason::TooLong);
    assert!(lossy.altered, "stored cut, not NULL");
    let text = body_text(body);
    assert!(!text.contains(r#""s":null"#), "{text}");
}

#[test]
fn body_errors_leave_the_body_unchanged() {
    let table = schema(&[("id", oid::INT4, -1, true), ("d", oid::DATE, -1, false)]);
    let options = TypeMapOptions {
        lossy_policy: LossyPolicy::Error,
        ..TypeMapOptions::default()
    };
    let encoder = TableEncoder::from_schema(&table, &options, EncoderOptions::default()).unwrap();
    let mut body = JsonBody::new();
    encoder
        .push_upsert(
            &mut body,
            &row(&[Some("1"), Some("2024-01-01")]),
            &ColumnSelection::All,
            &META,
        )
        .unwrap();
    let error = encoder
        .push_upsert(
            &mut body,
            &row(&[Some("2"), Some("infinity")]),
            &ColumnSelection::All,
            &META,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "public.t.d: value cannot be stored exactly (infinity) at key (id=2) and lossy_policy is \
         \"error\"; set sink.starrocks.lossy_policy = \"null\" to store NULL and count it instead"
    );
    let short = encoder.push_upsert(&mut body, &row(&[Some("3")]), &ColumnSelection::All, &META);
    assert!(matches!(
        short,
        Err(EncodeError::ColumnCount {
            expected: 2,
            actual: 1,
            ..
        })
    ));
    assert_eq!(body.rows(), 1);
    assert_eq!(body_text(body), r#"[{"__op":0,"id":1,"d":"2024-01-01"}]"#);
}

#[test]
fn body_key_and_not_null_columns_are_never_nulled() {
    let table = schema(&[
        ("k", oid::VARCHAR, 1 + 4, true),
        ("d", oid::DATE, -1, false),
    ]);
    let options = EncoderOptions {
        not_null_columns: vec![1],
        ..EncoderOptions::default()
    };
    let truncate = TypeMapOptions {
        lossy_policy: LossyPolicy::Truncate,
        ..TypeMapOptions::default()
    };
    let encoder = TableEncoder::from_schema(&table, &truncate, options).unwrap();
    let mut body = JsonBody::new();
    let error = encoder
        .push_upsert(
            &mut body,
            &row(&[Some("toolong"), None]),
            &ColumnSelection::All,
            &META,
        )
        .unwrap_err();
    assert!(matches!(
        error,
        EncodeError::LossyKey {
            reason: LossyReason::TooLong,
            ..
        }
    ));
    let error = encoder
        .push_upsert(
            &mut body,
            &row(&[Some("a"), Some("infinity")]),
            &ColumnSelection::All,
            &META,
        )
        .unwrap_err();
    assert!(matches!(error, EncodeError::LossyNotNull { .. }));
    assert!(body.is_empty());
}

#[test]
fn body_header_quotes_unusual_column_names() {
    let table = schema(&[
        ("id", oid::INT4, -1, true),
        ("Mixed Case", oid::TEXT, -1, false),
        ("we`ird\"", oid::TEXT, -1, false),
    ]);
    let encoder = TableEncoder::from_schema(
        &table,
        &TypeMapOptions::default(),
        EncoderOptions::default(),
    )
    .unwrap();
    assert_eq!(
        encoder.columns_header(&ColumnSelection::All),
        "`id`,`Mixed Case`,`we``ird\"`,__op"
    );
    let mut body = JsonBody::new();
    let values = TupleData(vec![text("1"), text("x"), text("y")]);
    encoder
        .push_upsert(&mut body, &values, &ColumnSelection::All, &META)
        .unwrap();
    assert_eq!(
        body_text(body),
        r#"[{"__op":0,"id":1,"Mixed Case":"x","we`ird\"":"y"}]"#
    );
}

#[test]
fn body_key_columns_can_be_overridden() {
    let table = schema(&[("id", oid::INT4, -1, true), ("v", oid::TEXT, -1, true)]);
    let options = EncoderOptions {
        key_columns: Some(vec![0]),
        ..EncoderOptions::default()
    };
    let encoder = TableEncoder::from_schema(&table, &TypeMapOptions::default(), options).unwrap();
    let mut body = JsonBody::new();
    encoder
        .push_delete(
            &mut body,
            &row(&[Some("1"), Some("x")]),
            &ColumnSelection::All,
            &META,
        )
        .unwrap();
    assert_eq!(body_text(body), r#"[{"__op":1,"id":1}]"#);
    let bad = EncoderOptions {
        key_columns: Some(vec![5]),
        ..EncoderOptions::default()
    };
    assert!(TableEncoder::from_schema(&table, &TypeMapOptions::default(), bad).is_err());
}
