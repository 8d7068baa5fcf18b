//! Tuple data (`TupleData`, `'K'`/`'O'` old tuples): the hot path of decoding.
//!
//! One `Vec` allocation per tuple; column values are slices of the frame.

use bytes::Bytes;

use super::cursor::Cursor;
use super::error::{DecodeError, DecodeErrorReason};

/// One column of a tuple, as pgoutput sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    /// `'n'`: SQL NULL.
    Null,
    /// `'u'`: an out-of-line TOASTed value that the change left untouched; not sent.
    UnchangedToast,
    /// `'t'`: the value in its text output format.
    Text(Bytes),
    /// `'b'`: the value in its binary send format (option `binary`).
    Binary(Bytes),
}

impl TupleValue {
    /// The raw value, for `Text` and `Binary`.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            TupleValue::Text(bytes) | TupleValue::Binary(bytes) => Some(bytes),
            TupleValue::Null | TupleValue::UnchangedToast => None,
        }
    }
}

/// A column value borrowed from wherever the row lives (see [`ValuesView`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Null,
    UnchangedToast,
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

impl TupleValue {
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            TupleValue::Null => ValueRef::Null,
            TupleValue::UnchangedToast => ValueRef::UnchangedToast,
            TupleValue::Text(bytes) => ValueRef::Text(bytes),
            TupleValue::Binary(bytes) => ValueRef::Binary(bytes),
        }
    }
}

/// Read access to a row's values by column: an owned [`TupleData`] or a view of a row image
/// (which the encoder reads without a reference count per value).
pub trait ValuesView {
    /// Number of columns.
    fn width(&self) -> usize;
    fn value(&self, column: usize) -> Option<ValueRef<'_>>;
}

impl ValuesView for TupleData {
    fn width(&self) -> usize {
        self.0.len()
    }

    fn value(&self, column: usize) -> Option<ValueRef<'_>> {
        self.0.get(column).map(TupleValue::as_value_ref)
    }
}

/// The columns of one row, in the relation's column order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleData(pub Vec<TupleValue>);

impl TupleData {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, column: usize) -> Option<&TupleValue> {
        self.0.get(column)
    }
}

/// The old row of an Update or Delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// `'K'`: only the replica identity key columns are set; the others are `Null`.
    Key(TupleData),
    /// `'O'`: the whole old row (`REPLICA IDENTITY FULL`).
    Full(TupleData),
}

impl OldTuple {
    pub fn tuple(&self) -> &TupleData {
        match self {
            OldTuple::Key(tuple) | OldTuple::Full(tuple) => tuple,
        }
    }
}

/// Reads `Int16 ncolumns` then each column.
pub(crate) fn read_tuple(cursor: &mut Cursor) -> Result<TupleData, DecodeError> {
    let ncolumns = usize::from(cursor.u16()?);
    // Every column takes at least one byte: never trust the count beyond that.
    let mut values = Vec::with_capacity(ncolumns.min(cursor.remaining()));
    for _ in 0..ncolumns {
        let value = match cursor.u8()? {
            b'n' => TupleValue::Null,
            b'u' => TupleValue::UnchangedToast,
            b't' => TupleValue::Text(cursor.len_prefixed()?),
            b'b' => TupleValue::Binary(cursor.len_prefixed()?),
            found => {
                return Err(cursor.error_previous(DecodeErrorReason::UnexpectedByte {
                    expected: "a tuple value kind ('n', 'u', 't' or 'b')",
                    found,
                }))
            }
        };
        values.push(value);
    }
    Ok(TupleData(values))
}

/// Reads the `'K'`/`'O'` marker and tuple, if the next byte is one.
pub(crate) fn read_old_tuple(cursor: &mut Cursor) -> Result<Option<OldTuple>, DecodeError> {
    match cursor.peek_u8() {
        Some(b'K') => {
            cursor.u8()?;
            Ok(Some(OldTuple::Key(read_tuple(cursor)?)))
        }
        Some(b'O') => {
            cursor.u8()?;
            Ok(Some(OldTuple::Full(read_tuple(cursor)?)))
        }
        _ => Ok(None),
    }
}

/// Reads the `'N'` marker and the new tuple.
pub(crate) fn read_new_tuple(cursor: &mut Cursor) -> Result<TupleData, DecodeError> {
    expect(cursor, b'N', "'N' (new tuple)")?;
    read_tuple(cursor)
}

pub(crate) fn expect(
    cursor: &mut Cursor,
    byte: u8,
    expected: &'static str,
) -> Result<(), DecodeError> {
    let found = cursor.u8()?;
    if found == byte {
        Ok(())
    } else {
        Err(cursor.error_previous(DecodeErrorReason::UnexpectedByte { expected, found }))
    }
}
