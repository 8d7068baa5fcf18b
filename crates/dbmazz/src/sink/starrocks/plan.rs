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

use crate::decode::{TupleData, TupleValue, ValueRef, ValuesView};
use crate::pipeline::{ChangeKind, ImageSlots, ImageValues, RowChange, RowImage};
use crate::Lsn;

use super::encode::{ColumnSelection, DeleteMode, TableEncoder};

/// The values of a planned row: the change's own image (no copy, decoded only when encoded),
/// or a re-packed image when its unchanged TOAST values were filled from the batch; only a
/// key change whose values are carried from StarRocks ([`Carry`]) keeps an owned tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowValues {
    Image(RowImage),
    Tuple(TupleData),
}

/// A row of a load read in place (see [`RowValues::view`]).
pub enum RowView<'a> {
    Tuple(&'a TupleData),
    Image(ImageValues<'a>),
}

impl ValuesView for RowView<'_> {
    fn width(&self) -> usize {
        match self {
            RowView::Tuple(values) => values.width(),
            RowView::Image(values) => values.width(),
        }
    }

    fn value(&self, column: usize) -> Option<ValueRef<'_>> {
        match self {
            RowView::Tuple(values) => values.value(column),
            RowView::Image(values) => values.value(column),
        }
    }
}

impl RowValues {
    /// The values without decoding them into a tuple (what the body encoder reads).
    pub fn view<'a>(&'a self, slots: &'a mut ImageSlots) -> RowView<'a> {
        match self {
            RowValues::Tuple(values) => RowView::Tuple(values),
            RowValues::Image(image) => RowView::Image(image.view(slots)),
        }
    }

    /// The values, decoded into `scratch` when they are an image (one allocation reused for
    /// a whole load instead of a tuple per row).
    pub fn decode<'a>(&'a self, scratch: &'a mut TupleData) -> &'a TupleData {
        match self {
            RowValues::Tuple(values) => values,
            RowValues::Image(image) => {
                image.values_into(scratch);
                scratch
            }
        }
    }
}

/// One row operation of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOp {
    Upsert { values: RowValues, commit_lsn: Lsn },
    Delete { key: RowValues, commit_lsn: Lsn },
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
    /// Index in `rows` of the upsert to fill (its values are a [`RowValues::Tuple`]).
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
    /// Column indexes of INSERTs that came with unchanged TOAST values no image in the batch
    /// could fill, one entry per value: pgoutput turns an UPDATE that moves a row into a row
    /// filter into an INSERT and keeps the marker, and the value exists only in PostgreSQL.
    pub inserts_without_toast_values: Vec<usize>,
}

/// Plans the loads of one batch.
pub fn plan_loads(
    changes: &[RowChange],
    encoder: &TableEncoder,
    key_indexes: &[usize],
    delete_mode: DeleteMode,
) -> (Vec<PlannedLoad>, PlanNotes) {
    // Images per key are only needed to fill unchanged TOAST values; most batches have none,
    // and then no key is computed and nothing is kept per row.
    let fills = changes.iter().any(|change| {
        change
            .new
            .as_ref()
            .is_some_and(RowImage::has_unchanged_toast)
    });
    let mut planner = Planner {
        encoder,
        key_indexes,
        delete_mode,
        loads: Vec::new(),
        latest_image: fills.then(HashMap::new),
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
    /// Newest full image per key (text of the key columns) within the batch, when the batch
    /// has unchanged TOAST values to fill.
    latest_image: Option<HashMap<Vec<u8>, RowValues>>,
    notes: PlanNotes,
}

impl Planner<'_> {
    fn add(&mut self, change: &RowChange) {
        let commit_lsn = change.commit_lsn;
        match change.kind {
            ChangeKind::Insert => {
                if let Some(new) = &change.new {
                    if self.upsert(new, commit_lsn) {
                        let unfilled = unchanged_columns(&new.values());
                        self.notes.inserts_without_toast_values.extend(unfilled);
                    }
                }
            }
            ChangeKind::Update => {
                let Some(new) = &change.new else { return };
                let Some(old_image) = change.old.as_ref().map(|old| old.image()) else {
                    self.upsert(new, commit_lsn);
                    return;
                };
                // Decoded once: compared here, reused by `key_change`.
                let (old, values) = (old_image.values(), new.values());
                let old_key = self.key_of(&old);
                if old_key == self.key_of(&values) {
                    self.upsert(new, commit_lsn);
                } else {
                    self.key_change(new, values, old_image, old, old_key, commit_lsn);
                }
            }
            ChangeKind::Delete => {
                if let Some(old) = &change.old {
                    self.delete(RowValues::Image(old.image().clone()), commit_lsn);
                }
            }
        }
    }

    /// An UPDATE that changed the key: delete of the old key, then upsert of the new row.
    fn key_change(
        &mut self,
        new: &RowImage,
        mut values: TupleData,
        old_image: &RowImage,
        old: TupleData,
        old_key: Vec<u8>,
        commit_lsn: Lsn,
    ) {
        let unchanged = unchanged_columns(&values);
        if !unchanged.is_empty() && !self.fill_unchanged(&mut values, &old_key) {
            // The old row is not in the batch: a load of its own, filled from StarRocks
            // before it is sent.
            self.notes.unfilled_key_changes += 1;
            if let Some(images) = self.latest_image.as_mut() {
                images.remove(&old_key);
            }
            let upsert = RowOp::Upsert {
                values: RowValues::Tuple(values),
                commit_lsn,
            };
            let rows = match self.delete_mode {
                // A hard delete rides in the carried load: the old row is read before it.
                DeleteMode::Hard => vec![
                    RowOp::Delete {
                        key: RowValues::Tuple(old.clone()),
                        commit_lsn,
                    },
                    upsert,
                ],
                // A soft delete is a key-only partial load of its own (the old row keeps its
                // values, and is still there to be read for the carried ones).
                DeleteMode::Soft => {
                    self.delete(RowValues::Tuple(old.clone()), commit_lsn);
                    vec![upsert]
                }
            };
            self.loads.push(PlannedLoad {
                selection: ColumnSelection::All,
                carry: Some(Carry {
                    row: rows.len() - 1,
                    old_key: old,
                    columns: unchanged,
                }),
                rows,
            });
            return;
        }
        self.delete(RowValues::Image(old_image.clone()), commit_lsn);
        if unchanged.is_empty() {
            self.upsert(new, commit_lsn);
        } else {
            self.upsert_filled(values, commit_lsn);
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
    fn fill_unchanged(&self, values: &mut TupleData, source_key: &[u8]) -> bool {
        let Some(image) = self
            .latest_image
            .as_ref()
            .and_then(|images| images.get(source_key))
        else {
            return false;
        };
        let mut scratch = TupleData(Vec::new());
        let image = image.decode(&mut scratch);
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

    /// An INSERT or UPDATE image. Unchanged TOAST values are filled from the batch where
    /// possible, else the row goes into a partial update without those columns (then true).
    fn upsert(&mut self, image: &RowImage, commit_lsn: Lsn) -> bool {
        if image.has_unchanged_toast() {
            let mut values = image.values();
            let key = self.key_of(&values);
            if self.fill_unchanged(&mut values, &key) {
                self.upsert_filled(values, commit_lsn);
                return false;
            }
            let selection = ColumnSelection::present_in(self.encoder, &values);
            self.push(
                selection,
                RowOp::Upsert {
                    values: RowValues::Image(image.clone()),
                    commit_lsn,
                },
            );
            return true;
        }
        self.remember(image);
        self.push(
            ColumnSelection::All,
            RowOp::Upsert {
                values: RowValues::Image(image.clone()),
                commit_lsn,
            },
        );
        false
    }

    /// A full row whose unchanged TOAST values were filled in, kept as a compact image.
    fn upsert_filled(&mut self, values: TupleData, commit_lsn: Lsn) {
        let image = RowImage::from_tuple(&values);
        self.remember(&image);
        self.push(
            ColumnSelection::All,
            RowOp::Upsert {
                values: RowValues::Image(image),
                commit_lsn,
            },
        );
    }

    /// Keeps a full image as its key's newest, when the batch has values to fill.
    fn remember(&mut self, image: &RowImage) {
        if self.latest_image.is_some() {
            let key = self.key_of(&image.values());
            if let Some(images) = self.latest_image.as_mut() {
                images.insert(key, RowValues::Image(image.clone()));
            }
        }
    }

    fn delete(&mut self, key: RowValues, commit_lsn: Lsn) {
        if self.latest_image.is_some() {
            let mut scratch = TupleData(Vec::new());
            let key_text = self.key_of(key.decode(&mut scratch));
            if let Some(images) = self.latest_image.as_mut() {
                images.remove(&key_text);
            }
        }
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
