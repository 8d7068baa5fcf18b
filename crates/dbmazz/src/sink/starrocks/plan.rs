//! From a batch of row changes to an ordered list of loads (DESIGN §3, "Rows").
//!
//! * INSERT/UPDATE → upsert; DELETE → delete by key; an UPDATE that changes the key → delete of
//!   the old key, then upsert of the new row, in that order.
//! * Unchanged TOAST values (`u`) are filled from the newest full image of the same key in the
//!   batch when there is one; otherwise the row goes into a `partial_update` load that lists
//!   only the columns it carries.
//! * Soft deletes are key-only upserts: they need a key-only partial load.
//!
//! Every row of a load has the load's column set. Loads are sent one after the other in list
//! order; within a load the last row of a key is the one StarRocks keeps (spec §3.4), which is
//! what applying the rows in order gives. Rows of different keys never affect each other, so
//! only the rows of one key must keep their order: a row of key `k` and column set `s` joins
//! the newest load of `s` that is at or after the last load holding a row of `k`, else a new
//! load is appended; a hard delete needs only the key and joins the newest load there,
//! whatever its set. Partial and full rows that alternate (an UPDATE leaving a TOASTed column
//! unchanged, then an INSERT, in each of many transactions) make two loads, not one per row:
//! each load is a new tablet version in StarRocks. Besides:
//! * a key change's upsert goes at or after its delete (keys StarRocks could see as one stay
//!   in order);
//! * a load with a [`Carry`] takes no other row, and the later rows of both its keys go after
//!   it;
//! * a partial update after a hard delete of its key goes into a later load than the delete
//!   (in one load, StarRocks would update the deleted row instead of making a new one).
//!
//! Only a batch that can have more than one column set (unchanged TOAST values, soft deletes)
//! keeps the last load of each key; the others (full rows, hard deletes: one load) compute no
//! key and hash nothing per row.

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
    // and then no key is computed and nothing is kept per row (until a soft delete, which
    // needs a load of its own column set).
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
        open: Vec::new(),
        keys: fills.then(HashMap::new),
        fills,
        slots: ImageSlots::default(),
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
    /// The newest load of each column set that takes more rows (a carried load takes none).
    open: Vec<(ColumnSelection, usize)>,
    /// Per key (see [`key_text`]), once the batch can have more than one column set: from the
    /// start when it has unchanged TOAST values, from its first soft delete otherwise (all
    /// rows before it are in the one load there is then, where any key may go).
    keys: Option<HashMap<Vec<u8>, KeyState>>,
    /// Whether the batch has unchanged TOAST values to fill (full images are kept per key).
    fills: bool,
    /// Reused to read keys of images in place.
    slots: ImageSlots,
    notes: PlanNotes,
}

/// What the planner knows of one key.
#[derive(Debug, Default)]
struct KeyState {
    /// The last load that holds a row of the key (or reads its row, for a [`Carry`]): its next
    /// row goes into this load or a later one.
    last_load: usize,
    /// Whether the key's last row is a hard delete. StarRocks keeps only the last row of a
    /// key in a load (spec §3.4): a partial update after a delete in the same load would
    /// update the deleted row instead of a new one, so it goes into a later load.
    deleted: bool,
    /// The key's newest full image in the batch, when the batch has values to fill.
    image: Option<RowImage>,
}

/// What a placed row tells of its key's newest full image.
enum NewImage {
    Keep,
    Set(RowImage),
    Clear,
}

/// Where a row may go: a load of this column set, or (a hard delete) any load.
enum Wants {
    Selection(ColumnSelection),
    AnyLoad,
}

impl Planner<'_> {
    fn add(&mut self, change: &RowChange) {
        let commit_lsn = change.commit_lsn;
        match change.kind {
            ChangeKind::Insert => {
                if let Some(new) = &change.new {
                    if self.upsert(new, commit_lsn, None, 0) {
                        let unfilled = unchanged_columns(&new.values());
                        self.notes.inserts_without_toast_values.extend(unfilled);
                    }
                }
            }
            ChangeKind::Update => {
                let Some(new) = &change.new else { return };
                let Some(old_image) = change.old.as_ref().map(|old| old.image()) else {
                    self.upsert(new, commit_lsn, None, 0);
                    return;
                };
                // Decoded once: compared here, reused by `key_change`.
                let (old, values) = (old_image.values(), new.values());
                let old_key = self.key_of(&old);
                let new_key = self.key_of(&values);
                if old_key == new_key {
                    self.upsert(new, commit_lsn, Some(new_key), 0);
                } else {
                    let keys = (old_key, new_key);
                    self.key_change(new, values, old_image, old, keys, commit_lsn);
                }
            }
            ChangeKind::Delete => {
                if let Some(old) = &change.old {
                    let image = old.image();
                    self.delete(RowValues::Image(image.clone()), commit_lsn, None);
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
        (old_key, new_key): (Vec<u8>, Vec<u8>),
        commit_lsn: Lsn,
    ) {
        let unchanged = unchanged_columns(&values);
        if !unchanged.is_empty() && !self.fill_unchanged(&mut values, &old_key) {
            // The old row is not in the batch: a load of its own, filled from StarRocks
            // before it is sent.
            self.notes.unfilled_key_changes += 1;
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
                    let key = Some(old_key.clone());
                    self.delete(RowValues::Tuple(old.clone()), commit_lsn, key);
                    vec![upsert]
                }
            };
            // Appended, so after every load holding either key; later rows of both keys go
            // after it (the old row is read before it is sent).
            let carried = self.loads.len();
            self.loads.push(PlannedLoad {
                selection: ColumnSelection::All,
                carry: Some(Carry {
                    row: rows.len() - 1,
                    old_key: old,
                    columns: unchanged,
                }),
                rows,
            });
            if let Some(keys) = self.keys.as_mut() {
                for key in [old_key, new_key] {
                    *keys.entry(key).or_default() = KeyState {
                        last_load: carried,
                        deleted: false,
                        image: None,
                    };
                }
            }
            return;
        }
        let image = RowValues::Image(old_image.clone());
        let deleted = self.delete(image, commit_lsn, Some(old_key));
        // At or after the delete: keys with different texts may be one key in StarRocks.
        if unchanged.is_empty() {
            self.upsert(new, commit_lsn, Some(new_key), deleted);
        } else {
            self.upsert_filled(values, commit_lsn, Some(new_key), deleted);
        }
    }

    fn key_of(&self, values: &impl ValuesView) -> Vec<u8> {
        key_text(self.encoder, self.key_indexes, values)
    }

    /// The key of `image` when the batch keeps keys (`known` when the caller has it).
    fn tracked_key(&mut self, image: &RowImage, known: Option<Vec<u8>>) -> Option<Vec<u8>> {
        self.keys.as_ref()?;
        Some(known.unwrap_or_else(|| {
            key_text(self.encoder, self.key_indexes, &image.view(&mut self.slots))
        }))
    }

    /// Fills unchanged TOAST values from the newest image of `source_key` (the row's own key,
    /// or the old key of a key change).
    fn fill_unchanged(&self, values: &mut TupleData, source_key: &[u8]) -> bool {
        let Some(image) = self
            .keys
            .as_ref()
            .and_then(|keys| keys.get(source_key))
            .and_then(|state| state.image.as_ref())
        else {
            return false;
        };
        let mut scratch = TupleData(Vec::new());
        image.values_into(&mut scratch);
        for (index, value) in values.0.iter_mut().enumerate() {
            if matches!(value, TupleValue::UnchangedToast) {
                match scratch.get(index) {
                    Some(filled) if !matches!(filled, TupleValue::UnchangedToast) => {
                        *value = filled.clone();
                    }
                    _ => return false,
                }
            }
        }
        true
    }

    /// An INSERT or UPDATE image, at or after load `floor`. Unchanged TOAST values are filled
    /// from the batch where possible, else the row goes into a partial update without those
    /// columns (then true).
    fn upsert(
        &mut self,
        image: &RowImage,
        commit_lsn: Lsn,
        known_key: Option<Vec<u8>>,
        floor: usize,
    ) -> bool {
        let row = |image: &RowImage| RowOp::Upsert {
            values: RowValues::Image(image.clone()),
            commit_lsn,
        };
        if image.has_unchanged_toast() {
            // Only in a batch with values to fill, which keeps keys.
            let mut values = image.values();
            let key = known_key.unwrap_or_else(|| self.key_of(&values));
            if self.fill_unchanged(&mut values, &key) {
                self.upsert_filled(values, commit_lsn, Some(key), floor);
                return false;
            }
            let selection = ColumnSelection::present_in(self.encoder, &values);
            let wants = Wants::Selection(selection);
            self.place(Some(key), floor, wants, row(image), NewImage::Keep);
            return true;
        }
        let key = self.tracked_key(image, known_key);
        let remembered = if self.fills {
            NewImage::Set(image.clone())
        } else {
            NewImage::Keep
        };
        let wants = Wants::Selection(ColumnSelection::All);
        self.place(key, floor, wants, row(image), remembered);
        false
    }

    /// A full row whose unchanged TOAST values were filled in, kept as a compact image.
    fn upsert_filled(
        &mut self,
        values: TupleData,
        commit_lsn: Lsn,
        known_key: Option<Vec<u8>>,
        floor: usize,
    ) {
        let image = RowImage::from_tuple(&values);
        let key = known_key.unwrap_or_else(|| self.key_of(&values));
        let row = RowOp::Upsert {
            values: RowValues::Image(image.clone()),
            commit_lsn,
        };
        let wants = Wants::Selection(ColumnSelection::All);
        self.place(Some(key), floor, wants, row, NewImage::Set(image));
    }

    /// A delete (`key` holds the old row's key columns); returns the index of its load.
    fn delete(&mut self, key: RowValues, commit_lsn: Lsn, known_key: Option<Vec<u8>>) -> usize {
        let wants = match self.delete_mode {
            DeleteMode::Soft => {
                if self.keys.is_none() {
                    // The first soft delete: until now every row went into one load.
                    debug_assert!(self.loads.len() <= 1);
                    self.keys = Some(HashMap::new());
                }
                Wants::Selection(ColumnSelection::keys(self.encoder))
            }
            // A hard delete needs only the key: it joins any load.
            DeleteMode::Hard => Wants::AnyLoad,
        };
        let key_text = match (&key, known_key) {
            _ if self.keys.is_none() => None,
            (_, Some(known)) => Some(known),
            (RowValues::Image(image), None) => self.tracked_key(image, None),
            (RowValues::Tuple(values), None) => Some(self.key_of(values)),
        };
        self.place(
            key_text,
            0,
            wants,
            RowOp::Delete { key, commit_lsn },
            NewImage::Clear,
        )
    }

    /// Puts `row` (of key `key` when the batch keeps keys) into the newest load it may join
    /// at or after `floor` and at or after its key's last load, or into a new load; returns
    /// the load's index.
    fn place(
        &mut self,
        key: Option<Vec<u8>>,
        floor: usize,
        wants: Wants,
        row: RowOp,
        image: NewImage,
    ) -> usize {
        let mut state = match (self.keys.as_mut(), key) {
            (Some(keys), Some(key)) => Some(keys.entry(key).or_default()),
            _ => None,
        };
        let floor = state.as_ref().map_or(floor, |state| {
            let partial = matches!(&wants, Wants::Selection(selection) if !selection.is_all());
            let after = usize::from(state.deleted && partial);
            (state.last_load + after).max(floor)
        });
        let hard_delete = matches!(wants, Wants::AnyLoad);
        let joined = match &wants {
            Wants::Selection(selection) => self
                .open
                .iter()
                .find(|(open, _)| open == selection)
                .map(|&(_, index)| index),
            Wants::AnyLoad => self.open.iter().map(|&(_, index)| index).max(),
        }
        .filter(|&index| index >= floor);
        let index = match joined {
            Some(index) => {
                self.loads[index].rows.push(row);
                index
            }
            None => {
                let selection = match wants {
                    Wants::Selection(selection) => selection,
                    Wants::AnyLoad => ColumnSelection::All,
                };
                let index = self.loads.len();
                match self.open.iter_mut().find(|(open, _)| *open == selection) {
                    Some(open) => open.1 = index,
                    None => self.open.push((selection.clone(), index)),
                }
                self.loads.push(PlannedLoad {
                    selection,
                    rows: vec![row],
                    carry: None,
                });
                index
            }
        };
        if let Some(state) = state.as_mut() {
            state.last_load = index;
            state.deleted = hard_delete;
            if self.fills {
                match image {
                    NewImage::Keep => {}
                    NewImage::Set(image) => state.image = Some(image),
                    NewImage::Clear => state.image = None,
                }
            }
        }
        index
    }
}

/// The key of a row as text (length-prefixed key column values), the same for every row
/// StarRocks keys alike: a DECIMAL key ignores trailing fractional zeros (`1.50` is `1.5`,
/// and an unconstrained numeric keeps the scale it was written with). Other key types have
/// one text form per value in PostgreSQL's output.
fn key_text(encoder: &TableEncoder, key_indexes: &[usize], values: &impl ValuesView) -> Vec<u8> {
    let mut key = Vec::new();
    for &index in key_indexes {
        match values.value(index) {
            Some(ValueRef::Text(bytes)) | Some(ValueRef::Binary(bytes)) => {
                let bytes = if encoder.is_decimal(index) {
                    decimal_key(bytes)
                } else {
                    bytes
                };
                key.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                key.extend_from_slice(bytes);
            }
            _ => key.extend_from_slice(&u32::MAX.to_be_bytes()),
        }
    }
    key
}

/// A numeric's text without trailing fractional zeros (nor a bare trailing point).
fn decimal_key(text: &[u8]) -> &[u8] {
    if !text.contains(&b'.') {
        return text;
    }
    let mut end = text.len();
    while end > 0 && text[end - 1] == b'0' {
        end -= 1;
    }
    if end > 0 && text[end - 1] == b'.' {
        end -= 1;
    }
    &text[..end]
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
