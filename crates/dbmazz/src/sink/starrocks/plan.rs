//! From a batch of row changes to an ordered list of loads (DESIGN §3, "Rows").
//!
//! * INSERT/UPDATE → upsert; DELETE → delete by key; an UPDATE that changes the key → delete of
//!   the old key, then upsert of the new row, in that order.
//! * Unchanged TOAST values (`u`) are filled from the newest full image of the same key in the
//!   batch when there is one; otherwise the row goes into a `partial_update` load that lists
//!   only the columns it carries. Consecutive rows with the same column set share a load, so
//!   the order of rows is the order of loads.
//! * Soft deletes are key-only upserts: they need a key-only partial load.

use std::collections::HashMap;

use crate::decode::{TupleData, TupleValue};
use crate::pipeline::{ChangeKind, RowChange};
use crate::Lsn;

use super::encode::{ColumnSelection, DeleteMode, TableEncoder};

/// One row operation of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOp {
    Upsert { values: TupleData, commit_lsn: Lsn },
    Delete { key: TupleData, commit_lsn: Lsn },
}

/// Rows sharing one column set, loaded together.
#[derive(Debug, Clone)]
pub struct PlannedLoad {
    pub selection: ColumnSelection,
    pub rows: Vec<RowOp>,
    /// The hard case of DESIGN §3: a key-changing update left TOASTed columns unchanged and the
    /// batch has no image of the old row. Before this load is sent (all earlier loads are
    /// durable by then), read those columns of `old_key` from StarRocks into the upsert.
    pub carry: Option<Carry>,
}

/// Values to carry from the old key's row in StarRocks into a key-changing upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carry {
    /// Index in `rows` of the upsert to fill.
    pub row: usize,
    pub old_key: TupleData,
    /// Columns whose value is `UnchangedToast` in the upsert.
    pub columns: Vec<usize>,
}

/// What planning could not do from the batch alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanNotes {
    /// Key-changing updates whose unchanged TOAST values were not in the batch (carried from
    /// StarRocks, see [`Carry`]).
    pub unfilled_key_changes: usize,
}

/// Plans the loads of one batch.
pub fn plan_loads(
    changes: &[RowChange],
    encoder: &TableEncoder,
    key_indexes: &[usize],
    delete_mode: DeleteMode,
) -> (Vec<PlannedLoad>, PlanNotes) {
    let mut planner = Planner {
        encoder,
        key_indexes,
        delete_mode,
        loads: Vec::new(),
        latest_image: HashMap::new(),
        notes: PlanNotes::default(),
    };
    for change in changes {
        planner.add(change);
    }
    (planner.loads, planner.notes)
}

struct Planner<'a> {
    encoder: &'a TableEncoder,
    key_indexes: &'a [usize],
    delete_mode: DeleteMode,
    loads: Vec<PlannedLoad>,
    /// Newest full image per key (text of the key columns) within the batch.
    latest_image: HashMap<Vec<u8>, TupleData>,
    notes: PlanNotes,
}

impl Planner<'_> {
    fn add(&mut self, change: &RowChange) {
        let commit_lsn = change.commit_lsn;
        let new = change.new.as_ref().map(|image| image.values());
        let old = change.old.as_ref().map(|old| old.image().values());
        match change.kind {
            ChangeKind::Insert => {
                if let Some(new) = new {
                    self.upsert(new, commit_lsn);
                }
            }
            ChangeKind::Update => {
                let Some(mut new) = new else { return };
                let old_key = old.filter(|old| self.key_of(old) != self.key_of(&new));
                match old_key {
                    Some(old) => {
                        let unchanged = unchanged_columns(&new);
                        if !unchanged.is_empty() && !self.fill_unchanged(&mut new, &old) {
                            // The old row is not in the batch: a load of its own, filled from
                            // StarRocks before it is sent.
                            self.notes.unfilled_key_changes += 1;
                            self.latest_image.remove(&self.key_of(&old));
                            self.loads.push(PlannedLoad {
                                selection: ColumnSelection::All,
                                rows: vec![
                                    RowOp::Delete {
                                        key: old.clone(),
                                        commit_lsn,
                                    },
                                    RowOp::Upsert {
                                        values: new,
                                        commit_lsn,
                                    },
                                ],
                                carry: Some(Carry {
                                    row: 1,
                                    old_key: old,
                                    columns: unchanged,
                                }),
                            });
                            return;
                        }
                        self.delete(old.clone(), commit_lsn);
                        self.upsert(new, commit_lsn);
                    }
                    None => self.upsert(new, commit_lsn),
                }
            }
            ChangeKind::Delete => {
                if let Some(old) = old {
                    self.delete(old, commit_lsn);
                }
            }
        }
    }

    fn key_of(&self, values: &TupleData) -> Vec<u8> {
        let mut key = Vec::new();
        for &index in self.key_indexes {
            match values.get(index) {
                Some(TupleValue::Text(bytes)) | Some(TupleValue::Binary(bytes)) => {
                    key.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                    key.extend_from_slice(bytes);
                }
                _ => key.extend_from_slice(&u32::MAX.to_be_bytes()),
            }
        }
        key
    }

    /// Fills unchanged TOAST values from the newest image of `source_key` (the row's own key,
    /// or the old key of a key change).
    fn fill_unchanged(&self, values: &mut TupleData, source: &TupleData) -> bool {
        let Some(image) = self.latest_image.get(&self.key_of(source)) else {
            return false;
        };
        for (index, value) in values.0.iter_mut().enumerate() {
            if matches!(value, TupleValue::UnchangedToast) {
                match image.get(index) {
                    Some(filled) if !matches!(filled, TupleValue::UnchangedToast) => {
                        *value = filled.clone();
                    }
                    _ => return false,
                }
            }
        }
        true
    }

    fn upsert(&mut self, mut values: TupleData, commit_lsn: Lsn) {
        if !unchanged_columns(&values).is_empty() {
            let source = values.clone();
            self.fill_unchanged(&mut values, &source);
        }
        let selection = ColumnSelection::present_in(self.encoder, &values);
        if selection.is_all() {
            self.latest_image
                .insert(self.key_of(&values), values.clone());
        }
        self.push(selection, RowOp::Upsert { values, commit_lsn });
    }

    fn delete(&mut self, key: TupleData, commit_lsn: Lsn) {
        self.latest_image.remove(&self.key_of(&key));
        let selection = match self.delete_mode {
            DeleteMode::Soft => ColumnSelection::keys(self.encoder),
            // A hard delete needs only the key: it joins whatever load is open.
            DeleteMode::Hard => match self.loads.last() {
                Some(load) if load.carry.is_none() => load.selection.clone(),
                _ => ColumnSelection::All,
            },
        };
        self.push(selection, RowOp::Delete { key, commit_lsn });
    }

    fn push(&mut self, selection: ColumnSelection, row: RowOp) {
        if let Some(load) = self.loads.last_mut() {
            if load.selection == selection && load.carry.is_none() {
                load.rows.push(row);
                return;
            }
        }
        self.loads.push(PlannedLoad {
            selection,
            rows: vec![row],
            carry: None,
        });
    }
}

fn unchanged_columns(values: &TupleData) -> Vec<usize> {
    values
        .0
        .iter()
        .enumerate()
        .filter(|(_, value)| matches!(value, TupleValue::UnchangedToast))
        .map(|(index, _)| index)
        .collect()
}
