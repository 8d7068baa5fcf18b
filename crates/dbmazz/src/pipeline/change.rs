//! Row changes as they travel from the decoder to the sink.
//!
//! A decoded tuple is a set of slices into the frame it came in, and a frame is a slice of a
//! large socket read buffer: keeping it alive would pin the whole read chunk. So a change
//! that enters the pipeline is copied once into a [`RowImage`], one owned buffer in pgoutput's
//! own TupleData layout, which is also what the spill file stores.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::decode::{TupleData, TupleValue, ValueRef, ValuesView};
use crate::schema::TableSchema;
use crate::Lsn;

/// One row in a compact owned form: `u16 ncolumns` then per column `n`, `u`, or `t|b` + `u32
/// len` + bytes — pgoutput's TupleData layout.
#[derive(Clone, PartialEq, Eq)]
pub struct RowImage(Bytes);

impl RowImage {
    pub fn from_tuple(tuple: &TupleData) -> Self {
        let payload: usize = tuple
            .0
            .iter()
            .map(|value| 1 + value.as_bytes().map_or(0, |bytes| 4 + bytes.len()))
            .sum();
        let mut buffer = BytesMut::with_capacity(2 + payload);
        buffer.put_u16(tuple.0.len() as u16);
        for value in &tuple.0 {
            match value {
                TupleValue::Null => buffer.put_u8(b'n'),
                TupleValue::UnchangedToast => buffer.put_u8(b'u'),
                TupleValue::Text(bytes) | TupleValue::Binary(bytes) => {
                    let tag = if matches!(value, TupleValue::Text(_)) {
                        b't'
                    } else {
                        b'b'
                    };
                    buffer.put_u8(tag);
                    buffer.put_u32(bytes.len() as u32);
                    buffer.put_slice(bytes);
                }
            }
        }
        RowImage(buffer.freeze())
    }

    /// Starts a row written value by value into `arena` (emptied first; see
    /// [`RowImageWriter`]). Reserve room in the arena beforehand: rows split off earlier keep
    /// their chunk, so growing it means a new chunk.
    pub fn writer(arena: &mut BytesMut) -> RowImageWriter<'_> {
        arena.clear();
        arena.put_u16(0);
        RowImageWriter { arena, columns: 0 }
    }

    /// Builds a row from text values (`None` = NULL); for tests and snapshots.
    pub fn from_text<S: AsRef<str>>(values: &[Option<S>]) -> Self {
        let tuple = TupleData(
            values
                .iter()
                .map(|value| match value {
                    Some(text) => {
                        TupleValue::Text(Bytes::copy_from_slice(text.as_ref().as_bytes()))
                    }
                    None => TupleValue::Null,
                })
                .collect(),
        );
        Self::from_tuple(&tuple)
    }

    /// Rebuilds a row from bytes written by [`RowImage::as_bytes`] (spill files), checking them.
    pub fn from_bytes(bytes: Bytes) -> Option<Self> {
        let image = RowImage(bytes);
        image.check().then_some(image)
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Bytes held in memory.
    pub fn byte_len(&self) -> usize {
        self.0.len()
    }

    /// The values, as zero-copy slices of this image.
    pub fn values(&self) -> TupleData {
        let mut values = Vec::new();
        self.walk(|value| values.push(value));
        TupleData(values)
    }

    /// The values into `out` (cleared first), reusing its allocation: the hot path decodes
    /// every row of a batch this way instead of allocating a tuple per row.
    pub fn values_into(&self, out: &mut TupleData) {
        out.0.clear();
        self.walk(|value| out.0.push(value));
    }

    /// Whether any value is an unchanged TOAST placeholder (`u`).
    pub fn has_unchanged_toast(&self) -> bool {
        let mut found = false;
        self.walk_ref(|value, _| found |= matches!(value, ValueRef::UnchangedToast));
        found
    }

    /// Number of columns.
    pub fn column_count(&self) -> usize {
        if self.0.len() < 2 {
            return 0;
        }
        usize::from(u16::from_be_bytes([self.0[0], self.0[1]]))
    }

    fn check(&self) -> bool {
        let expected = self.column_count();
        let mut count = 0;
        let complete = self.walk(|_| count += 1);
        complete && count == expected
    }

    /// Calls `visit` per column; false when the buffer is malformed (never panics).
    fn walk(&self, mut visit: impl FnMut(TupleValue)) -> bool {
        self.walk_ref(|value, range| {
            visit(match value {
                ValueRef::Null => TupleValue::Null,
                ValueRef::UnchangedToast => TupleValue::UnchangedToast,
                ValueRef::Text(_) => TupleValue::Text(self.0.slice(range)),
                ValueRef::Binary(_) => TupleValue::Binary(self.0.slice(range)),
            })
        })
    }

    /// Calls `visit` per column with the value borrowed and its byte range in the image (no
    /// reference counting); false when the buffer is malformed (never panics).
    fn walk_ref<'a>(&'a self, mut visit: impl FnMut(ValueRef<'a>, Range<usize>)) -> bool {
        let bytes: &'a [u8] = &self.0;
        let &[high, low, ..] = bytes else {
            return false;
        };
        let mut at = 2;
        for _ in 0..u16::from_be_bytes([high, low]) {
            let Some(&tag) = bytes.get(at) else {
                return false;
            };
            at += 1;
            match tag {
                b'n' => visit(ValueRef::Null, at..at),
                b'u' => visit(ValueRef::UnchangedToast, at..at),
                b't' | b'b' => {
                    let Some(len) = bytes.get(at..at + 4) else {
                        return false;
                    };
                    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                    at += 4;
                    let Some(value) = bytes.get(at..at + len) else {
                        return false;
                    };
                    let range = at..at + len;
                    at += len;
                    if tag == b't' {
                        visit(ValueRef::Text(value), range);
                    } else {
                        visit(ValueRef::Binary(value), range);
                    }
                }
                _ => return false,
            }
        }
        at == bytes.len()
    }

    /// The values as a [`ValuesView`] borrowing the image: located once into `slots` (reused
    /// across rows), read without copies or reference counts — the encoder's hot path.
    pub fn view<'a>(&'a self, slots: &'a mut ImageSlots) -> ImageValues<'a> {
        slots.0.clear();
        self.walk_ref(|value, range| {
            let tag = match value {
                ValueRef::Null => b'n',
                ValueRef::UnchangedToast => b'u',
                ValueRef::Text(_) => b't',
                ValueRef::Binary(_) => b'b',
            };
            slots.0.push((tag, range));
        });
        ImageValues {
            bytes: &self.0,
            slots: &slots.0,
        }
    }
}

/// Where each value of a [`RowImage`] lies (see [`RowImage::view`]).
#[derive(Debug, Default)]
pub struct ImageSlots(Vec<(u8, Range<usize>)>);

/// A row image read through [`ValuesView`].
#[derive(Debug, Clone, Copy)]
pub struct ImageValues<'a> {
    bytes: &'a [u8],
    slots: &'a [(u8, Range<usize>)],
}

impl ValuesView for ImageValues<'_> {
    fn width(&self) -> usize {
        self.slots.len()
    }

    fn value(&self, column: usize) -> Option<ValueRef<'_>> {
        let (tag, range) = self.slots.get(column)?;
        let bytes = self.bytes.get(range.clone())?;
        Some(match tag {
            b'n' => ValueRef::Null,
            b'u' => ValueRef::UnchangedToast,
            b't' => ValueRef::Text(bytes),
            _ => ValueRef::Binary(bytes),
        })
    }
}

/// Writes one [`RowImage`] straight into a shared arena — no tuple in between, no allocation
/// per row: [`RowImageWriter::finish`] splits the row off the arena, so the rows of a batch
/// share its chunks (the snapshot path, one row per COPY line).
pub struct RowImageWriter<'a> {
    arena: &'a mut BytesMut,
    columns: u16,
}

impl RowImageWriter<'_> {
    pub fn push_null(&mut self) {
        self.arena.put_u8(b'n');
        self.columns += 1;
    }

    pub fn push_text(&mut self, text: &[u8]) {
        self.arena.put_u8(b't');
        self.arena.put_u32(text.len() as u32);
        self.arena.put_slice(text);
        self.columns += 1;
    }

    /// A text value that `write` appends to the arena (e.g. while unescaping it).
    pub fn push_text_with(&mut self, write: impl FnOnce(&mut BytesMut)) {
        self.arena.put_u8(b't');
        let length_at = self.arena.len();
        self.arena.put_u32(0);
        write(self.arena);
        let length = (self.arena.len() - length_at - 4) as u32;
        self.arena[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        self.columns += 1;
    }

    pub fn columns(&self) -> usize {
        usize::from(self.columns)
    }

    /// The row, split off the arena.
    pub fn finish(self) -> RowImage {
        self.arena[..2].copy_from_slice(&self.columns.to_be_bytes());
        let row = self.arena.split_to(self.arena.len());
        RowImage(row.freeze())
    }
}

impl fmt::Debug for RowImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values().0).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

/// The old row of an Update/Delete: only the key columns (`'K'`) or all of them (`'O'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldImage {
    Key(RowImage),
    Full(RowImage),
}

impl OldImage {
    pub fn image(&self) -> &RowImage {
        match self {
            OldImage::Key(image) | OldImage::Full(image) => image,
        }
    }
}

/// One INSERT, UPDATE or DELETE of a committed transaction.
#[derive(Debug, Clone)]
pub struct RowChange {
    pub kind: ChangeKind,
    /// The table's shape this row was decoded under.
    pub schema: Arc<TableSchema>,
    /// Insert and Update: the new row (Update may hold `UnchangedToast` values).
    pub new: Option<RowImage>,
    /// Delete: always; Update: when the key changed (`Key`) or under REPLICA IDENTITY FULL.
    pub old: Option<OldImage>,
    /// Commit LSN of the transaction (the start of its commit record).
    pub commit_lsn: Lsn,
    /// Commit time, µs since 2000-01-01 UTC (for lag).
    pub commit_time: i64,
}

impl RowChange {
    /// Bytes this change holds in memory (row data plus a fixed overhead).
    pub fn byte_len(&self) -> usize {
        // The change itself plus its slot's share of a growing batch vector: measured, the
        // vectors weigh more than narrow rows' data (docs/benchmarks.md).
        const OVERHEAD: usize = std::mem::size_of::<RowChange>() + 32;
        OVERHEAD
            + self.new.as_ref().map_or(0, RowImage::byte_len)
            + self.old.as_ref().map_or(0, |old| old.image().byte_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_images_round_trip_every_value_kind() {
        let tuple = TupleData(vec![
            TupleValue::Text(Bytes::from_static(b"42")),
            TupleValue::Null,
            TupleValue::UnchangedToast,
            TupleValue::Binary(Bytes::from_static(&[0, 1, 2])),
            TupleValue::Text(Bytes::new()),
        ]);
        let image = RowImage::from_tuple(&tuple);
        assert_eq!(image.values(), tuple);
        assert_eq!(image.column_count(), 5);
        let again = RowImage::from_bytes(image.as_bytes().clone()).unwrap();
        assert_eq!(again, image);
        // The borrowed view reads the same values, and its slots are reusable.
        let mut slots = ImageSlots::default();
        for _ in 0..2 {
            let view = image.view(&mut slots);
            assert_eq!(view.width(), tuple.width());
            for column in 0..=tuple.width() {
                assert_eq!(view.value(column), tuple.value(column), "column {column}");
            }
        }
        assert!(image.has_unchanged_toast());
        assert!(!RowImage::from_text(&[Some("1"), None]).has_unchanged_toast());
    }

    #[test]
    fn malformed_images_are_refused_not_panicked_on() {
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x01",
            b"\x00\x01t\x00\x00\x00\x05ab",
            b"\x00\x01x",
        ] {
            assert!(RowImage::from_bytes(Bytes::copy_from_slice(bad)).is_none());
            // Unchecked (as spill bytes would be before `from_bytes`): views stop short.
            let unchecked = RowImage(Bytes::copy_from_slice(bad));
            let mut slots = ImageSlots::default();
            assert!(unchecked.view(&mut slots).width() <= 1);
        }
        assert!(RowImage::from_bytes(Bytes::from_static(b"\x00\x01n")).is_some());
    }
}
