//! Property test: random sequences of upsert / delete / partial-update loads give the same table
//! as a simple reference model of Primary Key semantics (spec §3.4, §3.5).

use std::collections::BTreeMap;

use proptest::prelude::*;
use starrocks_emulator::{Emulator, EmulatorConfig, Value};

#[derive(Debug, Clone)]
enum Op {
    /// Full row (id, a, b).
    Upsert(i64, Option<i64>, Option<String>),
    /// Delete by key.
    Delete(i64),
}

#[derive(Debug, Clone)]
struct Load {
    /// Partial update listing `id,a,__op` only.
    partial: bool,
    ops: Vec<Op>,
}

type Row = (Option<i64>, Option<String>);

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0i64..8, proptest::option::of(-5i64..5), proptest::option::of("[a-c]{0,3}"))
            .prop_map(|(k, a, b)| Op::Upsert(k, a, b)),
        1 => (0i64..8).prop_map(Op::Delete),
    ]
}

fn load_strategy() -> impl Strategy<Value = Load> {
    (
        any::<bool>(),
        proptest::collection::vec(op_strategy(), 1..12),
    )
        .prop_map(|(partial, ops)| Load { partial, ops })
}

fn body(load: &Load) -> String {
    let rows: Vec<String> = load
        .ops
        .iter()
        .map(|op| match op {
            Op::Upsert(k, a, b) => {
                let a = a.map_or("null".to_string(), |v| v.to_string());
                if load.partial {
                    format!(r#"{{"id":{k},"a":{a},"__op":0}}"#)
                } else {
                    let b = b
                        .as_ref()
                        .map_or("null".to_string(), |v| format!("\"{v}\""));
                    format!(r#"{{"id":{k},"a":{a},"b":{b},"__op":0}}"#)
                }
            }
            Op::Delete(k) => format!(r#"{{"id":{k},"__op":1}}"#),
        })
        .collect();
    format!("[{}]", rows.join(","))
}

fn apply_model(model: &mut BTreeMap<i64, Row>, load: &Load) {
    let mut last: BTreeMap<i64, &Op> = BTreeMap::new();
    for op in &load.ops {
        let key = match op {
            Op::Upsert(k, ..) | Op::Delete(k) => *k,
        };
        last.insert(key, op);
    }
    for (key, op) in last {
        match op {
            Op::Delete(_) => {
                model.remove(&key);
            }
            Op::Upsert(_, a, b) => {
                if load.partial {
                    let entry = model.entry(key).or_insert((None, None));
                    entry.0 = *a;
                } else {
                    model.insert(key, (*a, b.clone()));
                }
            }
        }
    }
}

fn run(loads: Vec<Load>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config = EmulatorConfig::ephemeral();
        config.mysql_addr = None;
        let emu = Emulator::start(config).await.unwrap();
        emu.execute_sql(None, "CREATE DATABASE d").await.unwrap();
        emu.execute_sql(
            Some("d"),
            "CREATE TABLE t (id BIGINT NOT NULL, a BIGINT NULL, b VARCHAR(8) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
        )
        .await
        .unwrap();
        let mut model: BTreeMap<i64, Row> = BTreeMap::new();
        for load in &loads {
            let text = body(load);
            let mut headers = vec![("format", "json"), ("strip_outer_array", "true")];
            if load.partial {
                headers.push(("partial_update", "true"));
                headers.push(("columns", "id,a,__op"));
            }
            let result = emu.stream_load("d", "t", &headers, text.as_bytes()).await;
            prop_assert_eq!(result.status.text(), "Success", "{}: {}", text, result.message);
            prop_assert_eq!(result.loaded_rows, load.ops.len() as u64);
            apply_model(&mut model, load);
        }
        let rows = emu.table_rows("d", "t").unwrap();
        let actual: BTreeMap<i64, Row> = rows
            .into_iter()
            .map(|r| {
                let id = match &r[0] {
                    Value::Int(i) => *i as i64,
                    other => panic!("{other:?}"),
                };
                let a = match &r[1] {
                    Value::Int(i) => Some(*i as i64),
                    _ => None,
                };
                let b = match &r[2] {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                };
                (id, (a, b))
            })
            .collect();
        prop_assert_eq!(actual, model);
        emu.shutdown().await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_loads_match_the_reference_model(loads in proptest::collection::vec(load_strategy(), 1..8)) {
        run(loads)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Malformed JSON bodies, SQL text and headers give errors, never a panic.
    #[test]
    fn parsers_never_panic(text in "\\PC{0,64}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = starrocks_emulator::json::parse_rows(&text, false);
        let _ = starrocks_emulator::json::parse_rows(&text, true);
        let _ = starrocks_emulator::json::parse_value(&text);
        let _ = starrocks_emulator::sql::parse(&text);
        let _ = starrocks_emulator::convert::parse_datetime(&text);
        let _ = starrocks_emulator::load::params::parse_columns(&text);
        for ty in [
            starrocks_emulator::ColumnType::Decimal { precision: 10, scale: 2 },
            starrocks_emulator::ColumnType::Int,
            starrocks_emulator::ColumnType::Json,
            starrocks_emulator::ColumnType::Array(Box::new(starrocks_emulator::ColumnType::Int)),
            starrocks_emulator::ColumnType::DateTime,
        ] {
            let _ = starrocks_emulator::convert::from_text(&text, &ty, "c");
        }
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = starrocks_emulator::json::parse_rows(s, true);
        }
    }
}
