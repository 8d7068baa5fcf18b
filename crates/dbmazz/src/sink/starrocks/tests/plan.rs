//! `plan_loads`: how rows are grouped into loads. Loads applied in order to a model of a
//! StarRocks Primary Key table must give what the changes applied one by one give, and the
//! rows of one key keep their order; rows of different keys share loads.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

use super::{schema, text, META};
use crate::decode::{TupleData, TupleValue, ValuesView};
use crate::pipeline::{ChangeKind, ImageSlots, OldImage, RowChange, RowImage};
use crate::schema::type_map::{oid, TypeMapOptions};
use crate::schema::TableSchema;
use crate::sink::starrocks::plan::{Carry, PlannedLoad};
use crate::sink::starrocks::*;
use crate::Lsn;

/// `id int PRIMARY KEY, a text NOT NULL, b text` (`b` is the TOASTed one).
fn table(id_type: u32) -> Arc<TableSchema> {
    Arc::new(schema(&[
        ("id", id_type, -1, true),
        ("a", oid::TEXT, -1, false),
        ("b", oid::TEXT, -1, false),
    ]))
}

fn encoder(table: &TableSchema, delete_mode: DeleteMode) -> TableEncoder {
    let options = EncoderOptions {
        delete_mode,
        not_null_columns: vec![1],
        ..EncoderOptions::default()
    };
    TableEncoder::from_schema(table, &TypeMapOptions::default(), options).unwrap()
}

/// `b`: `Some(text)`, or `None` for an unchanged TOAST value.
fn image(id: &str, a: &str, b: Option<&str>) -> RowImage {
    let b = b.map_or(TupleValue::UnchangedToast, text);
    RowImage::from_tuple(&TupleData(vec![text(id), text(a), b]))
}

fn key_image(id: &str) -> OldImage {
    OldImage::Key(RowImage::from_tuple(&TupleData(vec![
        text(id),
        TupleValue::Null,
        TupleValue::Null,
    ])))
}

fn change(
    table: &Arc<TableSchema>,
    kind: ChangeKind,
    new: Option<RowImage>,
    old: Option<OldImage>,
    lsn: u64,
) -> RowChange {
    RowChange {
        kind,
        schema: Arc::clone(table),
        new,
        old,
        commit_lsn: Lsn(lsn),
        commit_time: 0,
    }
}

fn plan(
    table: &Arc<TableSchema>,
    changes: &[RowChange],
    delete_mode: DeleteMode,
) -> (TableEncoder, Vec<PlannedLoad>, PlanNotes) {
    let encoder = encoder(table, delete_mode);
    let keys: Vec<usize> = table.key_indexes().collect();
    let (loads, notes) = plan_loads(changes, &encoder, &keys, delete_mode);
    (encoder, loads, notes)
}

/// The id of a planned row, its op (`'U'`/`'D'`) and commit LSN.
type RowId = (String, char, u64);

fn row_id(row: &RowOp) -> RowId {
    let (values, op, lsn) = match row {
        RowOp::Upsert { values, commit_lsn } => (values, 'U', commit_lsn.0),
        RowOp::Delete { key, commit_lsn } => (key, 'D', commit_lsn.0),
    };
    let mut slots = ImageSlots::default();
    let view = values.view(&mut slots);
    let id = match view.value(0) {
        Some(crate::decode::ValueRef::Text(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("row without an id: {other:?}"),
    };
    (id, op, lsn)
}

/// Every row of the loads, in the order StarRocks applies them.
fn flattened(loads: &[PlannedLoad]) -> Vec<RowId> {
    loads
        .iter()
        .flat_map(|load| load.rows.iter().map(row_id))
        .collect()
}

/// Per id, its row ops in the order the loads apply them.
fn per_key(rows: &[RowId]) -> BTreeMap<String, Vec<(char, u64)>> {
    let mut keys: BTreeMap<String, Vec<(char, u64)>> = BTreeMap::new();
    for (id, op, lsn) in rows {
        keys.entry(id.clone()).or_default().push((*op, *lsn));
    }
    keys
}

/// Per load: whether it is carried, and its rows.
fn shapes(loads: &[PlannedLoad]) -> Vec<(bool, Vec<RowId>)> {
    loads
        .iter()
        .map(|load| (load.carry.is_some(), load.rows.iter().map(row_id).collect()))
        .collect()
}

/// A row of the model table: column name → JSON value.
type ModelRow = BTreeMap<String, Value>;
/// The model of a StarRocks Primary Key table, by key (the id's JSON text).
type Model = BTreeMap<String, ModelRow>;

/// Applies the loads in order the way StarRocks does (spec §3.4, §3.5): of the rows of one
/// key in a load only the last counts; it sets the columns of the load's `columns` header (a
/// missing one is NULL) on the row of its key, which is created with NULLs when missing, or
/// (`__op` 1) removes the row. A carried load reads its values from the model first, as
/// `carried_from_starrocks` does.
fn apply_loads(encoder: &TableEncoder, loads: &[PlannedLoad], model: &mut Model) {
    let mut slots = ImageSlots::default();
    for load in loads {
        let mut load = load.clone();
        if let Some(carry) = load.carry.take() {
            carry_from_model(encoder, &mut load, &carry, model);
        }
        let mut body = JsonBody::new();
        for row in &load.rows {
            let result = match row {
                RowOp::Upsert { values, .. } => {
                    encoder.push_upsert(&mut body, &values.view(&mut slots), &load.selection, &META)
                }
                RowOp::Delete { key, .. } => {
                    encoder.push_delete(&mut body, &key.view(&mut slots), &load.selection, &META)
                }
            };
            result.unwrap_or_else(|error| panic!("{row:?} in {:?}: {error}", load.selection));
        }
        let columns = header_names(&encoder.columns_header(&load.selection));
        let (bytes, _) = body.finish();
        let rows: Value = serde_json::from_slice(&bytes).unwrap();
        let mut last_per_key = BTreeMap::new();
        for object in rows.as_array().unwrap() {
            last_per_key.insert(object["id"].to_string(), object);
        }
        for (key, object) in last_per_key {
            if object["__op"] == 1 {
                model.remove(&key);
                continue;
            }
            let row = model.entry(key).or_insert_with(|| {
                columns_of(encoder)
                    .into_iter()
                    .map(|name| (name, Value::Null))
                    .collect()
            });
            for column in &columns {
                let value = object.get(column).cloned().unwrap_or(Value::Null);
                row.insert(column.clone(), value);
            }
        }
    }
}

/// Every column of the StarRocks table (the header of a full load, without `__op`).
fn columns_of(encoder: &TableEncoder) -> Vec<String> {
    header_names(&encoder.columns_header(&ColumnSelection::All))
}

/// The names of a `columns` header without `__op` (this table's names need no unquoting
/// beyond the backquotes).
fn header_names(header: &str) -> Vec<String> {
    header
        .split(',')
        .filter(|name| *name != "__op")
        .map(|name| name.trim_matches('`').to_string())
        .collect()
}

fn carry_from_model(encoder: &TableEncoder, load: &mut PlannedLoad, carry: &Carry, model: &Model) {
    let Some(RowOp::Upsert {
        values: RowValues::Tuple(values),
        ..
    }) = load.rows.get_mut(carry.row)
    else {
        panic!("a carried load without its upsert: {load:?}");
    };
    let old_key = match carry.old_key.get(0) {
        Some(TupleValue::Text(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("old key {other:?}"),
    };
    if let Some(row) = model.get(&old_key) {
        for &index in &carry.columns {
            let name = ["id", "a", "b"][index];
            values.0[index] = match &row[name] {
                Value::String(text) => super::text(text),
                _ => TupleValue::Null,
            };
        }
    }
    load.selection = ColumnSelection::present_in(encoder, &*values);
}

/// What the model holds for a row as full upsert (soft mode adds the audit columns).
fn model_row(id: u8, a: &str, b: Option<&str>, soft: bool, deleted: bool) -> ModelRow {
    let mut row = ModelRow::new();
    row.insert("id".into(), Value::from(id));
    row.insert("a".into(), Value::from(a));
    row.insert("b".into(), b.map_or(Value::Null, Value::from));
    if soft {
        row.insert(AUDIT_OP_TYPE.into(), Value::from(u8::from(deleted)));
        row.insert(AUDIT_IS_DELETED.into(), Value::from(deleted));
    }
    row
}

#[test]
fn alternating_partial_and_full_rows_share_two_loads() {
    // 500 transactions: an UPDATE leaving `b` unchanged (no image of its row in the batch),
    // then an INSERT of a new key. One load per row before; each is a tablet version.
    let t = table(oid::INT4);
    let mut changes = Vec::new();
    for i in 0..500u64 {
        let id = i.to_string();
        let new = image(&id, "updated", None);
        changes.push(change(&t, ChangeKind::Update, Some(new), None, i + 1));
        let id = (1000 + i).to_string();
        let new = image(&id, "new", Some("long"));
        changes.push(change(&t, ChangeKind::Insert, Some(new), None, i + 1));
    }
    let (_, loads, notes) = plan(&t, &changes, DeleteMode::Hard);
    assert_eq!(loads.len(), 2, "{:?}", loads.iter().map(|l| l.rows.len()));
    assert!(!loads[0].selection.is_all() && loads[1].selection.is_all());
    assert_eq!((loads[0].rows.len(), loads[1].rows.len()), (500, 500));
    assert_eq!(notes, PlanNotes::default());
    // Each load keeps the batch's order.
    for load in &loads {
        let lsns: Vec<u64> = load.rows.iter().map(|row| row_id(row).2).collect();
        assert!(lsns.windows(2).all(|pair| pair[0] < pair[1]));
    }

    // Soft deletes (key-only loads) interleaved with upserts, and hard deletes joining
    // whatever load is newest: two loads as well.
    let mut changes = Vec::new();
    for i in 0..500u64 {
        let old = key_image(&i.to_string());
        changes.push(change(&t, ChangeKind::Delete, None, Some(old), i + 1));
        let new = image(&(1000 + i).to_string(), "new", Some("x"));
        changes.push(change(&t, ChangeKind::Insert, Some(new), None, i + 1));
    }
    let (encoder, loads, _) = plan(&t, &changes, DeleteMode::Soft);
    assert_eq!(loads.len(), 2);
    assert_eq!(loads[0].selection, ColumnSelection::keys(&encoder));
    assert_eq!((loads[0].rows.len(), loads[1].rows.len()), (500, 500));
    let mut changes = Vec::new();
    for i in 0..300u64 {
        let new = image(&i.to_string(), "updated", None);
        changes.push(change(&t, ChangeKind::Update, Some(new), None, i + 1));
        let old = key_image(&(1000 + i).to_string());
        changes.push(change(&t, ChangeKind::Delete, None, Some(old), i + 1));
        let new = image(&(2000 + i).to_string(), "new", Some("x"));
        changes.push(change(&t, ChangeKind::Insert, Some(new), None, i + 1));
    }
    let (_, loads, _) = plan(&t, &changes, DeleteMode::Hard);
    assert_eq!(loads.len(), 2);
    assert_eq!(loads.iter().map(|load| load.rows.len()).sum::<usize>(), 900);
}

#[test]
fn full_rows_and_hard_deletes_make_one_load_in_batch_order() {
    let t = table(oid::INT4);
    let mut changes = Vec::new();
    for i in 0..50u64 {
        let id = (i % 7).to_string();
        let (kind, new, old) = match i % 3 {
            0 => (ChangeKind::Insert, Some(image(&id, "a", Some("b"))), None),
            1 => (ChangeKind::Update, Some(image(&id, "c", Some("d"))), None),
            _ => (ChangeKind::Delete, None, Some(key_image(&id))),
        };
        changes.push(change(&t, kind, new, old, i + 1));
    }
    let (_, loads, _) = plan(&t, &changes, DeleteMode::Hard);
    assert_eq!(loads.len(), 1);
    assert!(loads[0].selection.is_all() && loads[0].carry.is_none());
    let lsns: Vec<u64> = loads[0].rows.iter().map(|row| row_id(row).2).collect();
    assert_eq!(lsns, (1..=50).collect::<Vec<_>>());
}

#[test]
fn rows_of_one_key_never_go_before_its_earlier_rows() {
    // Key 1 alternates upserts and soft deletes: each row needs a load after its last one.
    // The rows of keys 2 and 3 join the newest load of their column set.
    let t = table(oid::INT4);
    let upsert = |id: &str, lsn| {
        let new = image(id, "a", Some("b"));
        change(&t, ChangeKind::Insert, Some(new), None, lsn)
    };
    let delete = |id: &str, lsn| change(&t, ChangeKind::Delete, None, Some(key_image(id)), lsn);
    let changes = [
        upsert("1", 1),
        delete("1", 2),
        upsert("2", 3),
        upsert("1", 4),
        delete("2", 5),
        delete("1", 6),
        upsert("3", 7),
    ];
    let (_, loads, _) = plan(&t, &changes, DeleteMode::Soft);
    let shape: Vec<Vec<RowId>> = loads
        .iter()
        .map(|load| load.rows.iter().map(row_id).collect())
        .collect();
    let row = |id: &str, op, lsn| (id.to_string(), op, lsn);
    assert_eq!(
        shape,
        [
            vec![row("1", 'U', 1), row("2", 'U', 3)],
            vec![row("1", 'D', 2), row("2", 'D', 5)],
            vec![row("1", 'U', 4), row("3", 'U', 7)],
            vec![row("1", 'D', 6)],
        ]
    );
}

#[test]
fn a_partial_update_never_shares_a_load_with_a_hard_delete_before_it() {
    // StarRocks keeps only the last row of a key in a load (spec §3.4): DELETE 2 then an
    // INSERT of 2 without its TOASTed value (a row filter) in one partial load would update
    // the old row 2 instead of making a new one.
    let t = table(oid::INT4);
    let changes = [
        change(
            &t,
            ChangeKind::Insert,
            Some(image("2", "a", Some("b"))),
            None,
            1,
        ),
        change(&t, ChangeKind::Update, Some(image("7", "x", None)), None, 2),
        change(&t, ChangeKind::Delete, None, Some(key_image("2")), 3),
        change(&t, ChangeKind::Insert, Some(image("2", "y", None)), None, 4),
        change(&t, ChangeKind::Update, Some(image("8", "z", None)), None, 5),
    ];
    let (_, loads, notes) = plan(&t, &changes, DeleteMode::Hard);
    assert_eq!(notes.inserts_without_toast_values, [2]);
    let row = |id: &str, op, lsn| (id.to_string(), op, lsn);
    assert_eq!(
        shapes(&loads),
        [
            (false, vec![row("2", 'U', 1)]),
            (false, vec![row("7", 'U', 2), row("2", 'D', 3)]),
            (false, vec![row("2", 'U', 4), row("8", 'U', 5)]),
        ]
    );
    assert_eq!(loads[1].selection, loads[2].selection);
}

#[test]
fn carried_key_changes_keep_their_loads_to_themselves() {
    // UPDATE id 1 → 2 leaving `b` unchanged, with no image of row 1 in the batch: the carried
    // load reads row 1 from StarRocks. Rows of other keys may go before it; later rows of
    // either key go after it.
    let t = table(oid::INT4);
    let changes = [
        change(&t, ChangeKind::Update, Some(image("5", "x", None)), None, 1),
        change(
            &t,
            ChangeKind::Update,
            Some(image("2", "moved", None)),
            Some(key_image("1")),
            2,
        ),
        change(&t, ChangeKind::Update, Some(image("6", "y", None)), None, 3),
        change(
            &t,
            ChangeKind::Insert,
            Some(image("1", "again", Some("n"))),
            None,
            4,
        ),
        change(&t, ChangeKind::Update, Some(image("2", "z", None)), None, 5),
    ];
    let (_, loads, notes) = plan(&t, &changes, DeleteMode::Hard);
    assert_eq!(notes.unfilled_key_changes, 1);
    let shape = shapes(&loads);
    let row = |id: &str, op, lsn| (id.to_string(), op, lsn);
    assert_eq!(
        shape,
        [
            (false, vec![row("5", 'U', 1), row("6", 'U', 3)]),
            (true, vec![row("1", 'D', 2), row("2", 'U', 2)]),
            (false, vec![row("1", 'U', 4)]),
            // The batch has no image of key 2 (the carried values are read when the load
            // is sent): a partial update, after the carried load.
            (false, vec![row("2", 'U', 5)]),
        ]
    );
    assert_eq!(loads[1].carry.as_ref().map(|carry| carry.row), Some(1));

    // Soft deletes: the delete of the old key is a key-only load before the carried load.
    let (encoder, loads, _) = plan(&t, &changes, DeleteMode::Soft);
    let shape = shapes(&loads);
    assert_eq!(
        shape,
        [
            (false, vec![row("5", 'U', 1), row("6", 'U', 3)]),
            (false, vec![row("1", 'D', 2)]),
            (true, vec![row("2", 'U', 2)]),
            (false, vec![row("1", 'U', 4)]),
            (false, vec![row("2", 'U', 5)]),
        ]
    );
    assert_eq!(loads[1].selection, ColumnSelection::keys(&encoder));
    assert_eq!(loads[2].carry.as_ref().map(|carry| carry.row), Some(0));
}

#[test]
fn decimal_keys_written_differently_are_one_key() {
    // An unconstrained numeric key keeps the scale it was written with: `1.5` and `1.50`
    // are different texts, one DECIMAL(38,9) key in StarRocks. The INSERT of 1.50 must not
    // go before the DELETE of 1.5.
    let t = table(oid::NUMERIC);
    let changes = [
        change(
            &t,
            ChangeKind::Insert,
            Some(image("2", "a", Some("b"))),
            None,
            1,
        ),
        change(&t, ChangeKind::Update, Some(image("3", "a", None)), None, 2),
        change(&t, ChangeKind::Delete, None, Some(key_image("1.5")), 3),
        change(
            &t,
            ChangeKind::Insert,
            Some(image("1.50", "c", Some("d"))),
            None,
            4,
        ),
    ];
    let (_, loads, _) = plan(&t, &changes, DeleteMode::Hard);
    let rows = flattened(&loads);
    let at = |id: &str| rows.iter().position(|row| row.0 == id).unwrap();
    assert!(at("1.5") < at("1.50"), "{rows:?}");
    // An UPDATE from 1.5 to 1.50 changes no StarRocks key: one upsert.
    let changes = [change(
        &t,
        ChangeKind::Update,
        Some(image("1.50", "c", Some("d"))),
        Some(key_image("1.5")),
        1,
    )];
    let (_, loads, _) = plan(&t, &changes, DeleteMode::Hard);
    assert_eq!(flattened(&loads), [("1.50".to_string(), 'U', 1)]);
}

/// One step of a random history over ids 0..5: `(kind, id, other id, value, toast)`.
type Step = (u8, u8, u8, u8, bool);

/// A random history turned into valid pgoutput changes (the rows PostgreSQL holds decide
/// what each step can be), the per-id ops they mean, and the table the changes applied one
/// by one give (starting from `initial`, which StarRocks holds too).
struct History {
    changes: Vec<RowChange>,
    ops: BTreeMap<String, Vec<(char, u64)>>,
    /// (old id, new id, LSN) of each key change.
    key_changes: Vec<(String, String, u64)>,
    expected: Model,
}

fn history(
    t: &Arc<TableSchema>,
    initial: &BTreeMap<u8, (String, Option<String>)>,
    steps: &[Step],
    soft: bool,
    full_identity: bool,
) -> History {
    let mut pg = initial.clone();
    let mut expected: Model = initial
        .iter()
        .map(|(id, (a, b))| (id.to_string(), model_row(*id, a, b.as_deref(), soft, false)))
        .collect();
    let mut history = History {
        changes: Vec::new(),
        ops: BTreeMap::new(),
        key_changes: Vec::new(),
        expected: Model::new(),
    };
    let old_image = |id: u8, pg: &BTreeMap<u8, (String, Option<String>)>| {
        if full_identity {
            let (a, b) = &pg[&id];
            let b = b.as_ref().map_or(TupleValue::Null, |b| text(b));
            OldImage::Full(RowImage::from_tuple(&TupleData(vec![
                text(&id.to_string()),
                text(a),
                b,
            ])))
        } else {
            key_image(&id.to_string())
        }
    };
    for (index, &(kind, id, other, value, toast)) in steps.iter().enumerate() {
        let lsn = index as u64 + 1;
        let a = format!("a{value}");
        let b = format!("b{lsn}");
        let name = id.to_string();
        let mut op = |id: &str, op| {
            let ops = history.ops.entry(id.to_string()).or_default();
            ops.push((op, lsn));
        };
        let exists = pg.contains_key(&id);
        let kind = match kind % 5 {
            // DELETE, key change: only of a row that exists; else an INSERT.
            2 | 3 if !exists => 0,
            1 if !exists => 0,
            3 if id == other || pg.contains_key(&other) => 1,
            // INSERT of an existing row: an UPDATE.
            0 | 4 if exists => 1,
            kind => kind,
        };
        match kind {
            0 => {
                let new = image(&name, &a, Some(&b));
                history
                    .changes
                    .push(change(t, ChangeKind::Insert, Some(new), None, lsn));
                pg.insert(id, (a.clone(), Some(b.clone())));
                expected.insert(name.clone(), model_row(id, &a, Some(&b), soft, false));
                op(&name, 'U');
            }
            // An INSERT without its TOASTed value (an UPDATE moved the row into a row
            // filter): the column keeps what StarRocks has there.
            4 => {
                let new = image(&name, &a, None);
                history
                    .changes
                    .push(change(t, ChangeKind::Insert, Some(new), None, lsn));
                let kept = expected
                    .get(&name)
                    .and_then(|row| row["b"].as_str().map(str::to_string));
                pg.insert(id, (a.clone(), kept.clone()));
                expected.insert(
                    name.clone(),
                    model_row(id, &a, kept.as_deref(), soft, false),
                );
                op(&name, 'U');
            }
            1 => {
                let old = full_identity.then(|| old_image(id, &pg));
                let new = image(&name, &a, (!toast).then_some(b.as_str()));
                history
                    .changes
                    .push(change(t, ChangeKind::Update, Some(new), old, lsn));
                let row = pg.get_mut(&id).unwrap();
                row.0 = a.clone();
                if !toast {
                    row.1 = Some(b.clone());
                }
                let (a, b) = row.clone();
                expected.insert(name.clone(), model_row(id, &a, b.as_deref(), soft, false));
                op(&name, 'U');
            }
            2 => {
                let old = old_image(id, &pg);
                history
                    .changes
                    .push(change(t, ChangeKind::Delete, None, Some(old), lsn));
                let (a, b) = pg.remove(&id).unwrap();
                if soft {
                    expected.insert(name.clone(), model_row(id, &a, b.as_deref(), soft, true));
                } else {
                    expected.remove(&name);
                }
                op(&name, 'D');
            }
            _ => {
                let old = old_image(id, &pg);
                let new_name = other.to_string();
                let new = image(&new_name, &a, (!toast).then_some(b.as_str()));
                history
                    .changes
                    .push(change(t, ChangeKind::Update, Some(new), Some(old), lsn));
                let (old_a, old_b) = pg.remove(&id).unwrap();
                let new_b = if toast {
                    old_b.clone()
                } else {
                    Some(b.clone())
                };
                if soft {
                    let row = model_row(id, &old_a, old_b.as_deref(), soft, true);
                    expected.insert(name.clone(), row);
                } else {
                    expected.remove(&name);
                }
                expected.insert(
                    new_name.clone(),
                    model_row(other, &a, new_b.as_deref(), soft, false),
                );
                pg.insert(other, (a, new_b));
                op(&name, 'D');
                op(&new_name, 'U');
                history.key_changes.push((name, new_name, lsn));
            }
        }
    }
    history.expected = expected;
    history
}

fn step() -> impl Strategy<Value = Step> {
    (0u8..5, 0u8..5, 0u8..5, 0u8..4, any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn planned_loads_give_the_table_the_changes_give(
        initial in proptest::collection::btree_map(0u8..5, (0u8..3, 0u8..3), 0..5),
        steps in vec(step(), 0..40),
        soft in any::<bool>(),
        full_identity in any::<bool>(),
    ) {
        let t = table(oid::INT4);
        let initial: BTreeMap<u8, (String, Option<String>)> = initial
            .into_iter()
            .map(|(id, (a, b))| (id, (format!("i{a}"), Some(format!("old{b}")))))
            .collect();
        let history = history(&t, &initial, &steps, soft, full_identity);
        let mode = if soft { DeleteMode::Soft } else { DeleteMode::Hard };
        let (encoder, loads, _) = plan(&t, &history.changes, mode);

        // The rows of each key, in the order the loads apply them, are its ops in order.
        let rows = flattened(&loads);
        prop_assert_eq!(&per_key(&rows), &history.ops);
        // A key change's delete goes before its upsert.
        for (old, new, lsn) in &history.key_changes {
            let at = |id: &str, op| rows.iter().position(|row| row == &(id.to_string(), op, *lsn));
            prop_assert!(at(old, 'D') < at(new, 'U'), "{:?}", rows);
        }
        // Loads of one column set are next to each other only when a partial update
        // follows a hard delete of its key (StarRocks keeps one row per key in a load), and
        // carried loads take no other rows.
        for pair in loads.windows(2) {
            if pair[0].selection != pair[1].selection || pair[0].carry.is_some() || pair[1].carry.is_some() {
                continue;
            }
            let (id, op, _) = row_id(&pair[1].rows[0]);
            let deleted = pair[0].rows.iter().map(row_id).any(|row| row.0 == id && row.1 == 'D');
            prop_assert!(op == 'U' && !pair[1].selection.is_all() && deleted, "{:?}", loads);
        }

        // StarRocks ends with what the changes applied one by one give.
        let mut model: Model = initial
            .iter()
            .map(|(id, (a, b))| (id.to_string(), model_row(*id, a, b.as_deref(), soft, false)))
            .collect();
        apply_loads(&encoder, &loads, &mut model);
        prop_assert_eq!(model, history.expected);
    }
}

/// Keys that each alternate column sets, many times: as many loads as one key's
/// alternations need (the fewest possible), not one per row.
#[test]
fn keys_alternating_column_sets_need_only_their_own_alternations() {
    let t = table(oid::INT4);
    let mut changes = Vec::new();
    let mut lsn = 0;
    for _round in 0..10 {
        for id in 0..50 {
            let id = id.to_string();
            lsn += 1;
            let old = key_image(&id);
            changes.push(change(&t, ChangeKind::Delete, None, Some(old), lsn));
            let new = image(&id, "again", Some("x"));
            changes.push(change(&t, ChangeKind::Insert, Some(new), None, lsn));
        }
    }
    let (_, loads, _) = plan(&t, &changes, DeleteMode::Soft);
    assert_eq!(loads.len(), 20);
    assert!(loads.iter().all(|load| load.rows.len() == 50));
    let rows = flattened(&loads);
    for (id, ops) in per_key(&rows) {
        let lsns: Vec<u64> = ops.iter().map(|op| op.1).collect();
        assert!(
            lsns.windows(2).all(|pair| pair[0] <= pair[1]),
            "{id}: {ops:?}"
        );
    }
}
