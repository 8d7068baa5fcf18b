//! A stored row packed into one allocation.
//!
//! A table keeps every row for its whole life, so bytes per row decide how much fresh memory a
//! large load touches — and first-touch page faults were over half of the emulator's CPU in the
//! snapshot benchmark (docs/benchmarks.md, session 9). A `Vec<Value>` costs 32 bytes per value
//! plus one allocation per string; a packed row is a tag byte and a compact payload per value
//! (varint integers, length-prefixed bytes) in a single boxed slice. Rows are unpacked to
//! `Vec<Value>` where they are read (queries, ALTER, partial updates), which is rare next to
//! loading.

use crate::types::{Date, DateTime, Value};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const DECIMAL: u8 = 5;
const DATE: u8 = 6;
const DATETIME: u8 = 7;
const STR: u8 = 8;
const JSON: u8 = 9;
const ARRAY: u8 = 10;
const BINARY: u8 = 11;

/// One stored row: every column in schema order, packed.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedRow(Box<[u8]>);

impl PackedRow {
    /// Pack a row's values.
    pub fn pack(values: &[Value]) -> PackedRow {
        let mut out = Vec::with_capacity(values.iter().map(packed_len_hint).sum::<usize>() + 2);
        put_varint(&mut out, values.len() as u128);
        for value in values {
            put_value(&mut out, value);
        }
        PackedRow(out.into_boxed_slice())
    }

    /// The row's values, in schema order.
    pub fn unpack(&self) -> Vec<Value> {
        let mut reader = Reader { bytes: &self.0 };
        let count = reader.varint() as usize;
        let mut values = Vec::with_capacity(count.min(self.0.len()));
        for _ in 0..count {
            if reader.bytes.is_empty() {
                break;
            }
            values.push(reader.value());
        }
        values
    }

    /// Rewrite the row through its unpacked values (ALTER, partial updates).
    pub fn update(&mut self, change: impl FnOnce(&mut Vec<Value>)) {
        let mut values = self.unpack();
        change(&mut values);
        *self = PackedRow::pack(&values);
    }

    /// Bytes the packed row takes (without the allocation's own overhead).
    pub fn packed_len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for PackedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.unpack()).finish()
    }
}

fn packed_len_hint(value: &Value) -> usize {
    match value {
        Value::Str(s) | Value::Json(s) => s.len() + 3,
        Value::Binary(b) => b.len() + 3,
        Value::Array(items) => items.iter().map(packed_len_hint).sum::<usize>() + 3,
        _ => 6,
    }
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            put_varint(out, zigzag(*i));
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Decimal { unscaled, scale } => {
            out.push(DECIMAL);
            out.push(*scale);
            put_varint(out, zigzag(*unscaled));
        }
        Value::Date(date) => {
            out.push(DATE);
            put_date(out, date);
        }
        Value::DateTime(datetime) => {
            out.push(DATETIME);
            put_date(out, &datetime.date);
            put_varint(out, u128::from(datetime.micros_of_day));
        }
        Value::Str(s) => put_bytes(out, STR, s.as_bytes()),
        Value::Json(s) => put_bytes(out, JSON, s.as_bytes()),
        Value::Binary(b) => put_bytes(out, BINARY, b),
        Value::Array(items) => {
            out.push(ARRAY);
            put_varint(out, items.len() as u128);
            for item in items {
                put_value(out, item);
            }
        }
    }
}

fn put_date(out: &mut Vec<u8>, date: &Date) {
    out.extend_from_slice(&date.year.to_le_bytes());
    out.push(date.month);
    out.push(date.day);
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u128);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut n: u128) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn zigzag(i: i128) -> u128 {
    ((i << 1) ^ (i >> 127)) as u128
}

fn unzigzag(n: u128) -> i128 {
    ((n >> 1) as i128) ^ -((n & 1) as i128)
}

/// Reads what `pack` wrote. Rows are only ever packed here, so the bytes are well formed; a
/// truncated slice still reads as NULLs and zeros rather than panicking.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }

    fn varint(&mut self) -> u128 {
        let mut n: u128 = 0;
        let mut shift = 0;
        while shift < 128 {
            let byte = self.byte();
            n |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        n
    }

    fn date(&mut self) -> Date {
        let year = u16::from_le_bytes([self.byte(), self.byte()]);
        Date {
            year,
            month: self.byte(),
            day: self.byte(),
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = self.varint() as usize;
        self.take(len).to_vec()
    }

    fn string(&mut self) -> String {
        String::from_utf8(self.bytes())
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
    }

    fn value(&mut self) -> Value {
        match self.byte() {
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(unzigzag(self.varint())),
            FLOAT => {
                let mut bits = [0u8; 8];
                for byte in &mut bits {
                    *byte = self.byte();
                }
                Value::Float(f64::from_bits(u64::from_le_bytes(bits)))
            }
            DECIMAL => {
                let scale = self.byte();
                Value::Decimal {
                    unscaled: unzigzag(self.varint()),
                    scale,
                }
            }
            DATE => Value::Date(self.date()),
            DATETIME => {
                let date = self.date();
                let micros_of_day = u64::try_from(self.varint()).unwrap_or(u64::MAX);
                Value::DateTime(DateTime {
                    date,
                    micros_of_day,
                })
            }
            STR => Value::Str(self.string()),
            JSON => Value::Json(self.string()),
            BINARY => Value::Binary(self.bytes()),
            ARRAY => {
                let count = self.varint() as usize;
                let mut items = Vec::with_capacity(count.min(self.bytes.len()));
                for _ in 0..count {
                    if self.bytes.is_empty() {
                        break;
                    }
                    items.push(self.value());
                }
                Value::Array(items)
            }
            _ => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i128>().prop_map(Value::Int),
            any::<u64>().prop_map(|bits| Value::Float(f64::from_bits(bits))),
            (any::<i128>(), any::<u8>())
                .prop_map(|(unscaled, scale)| Value::Decimal { unscaled, scale }),
            (0u16..=9999, 1u8..=12, 1u8..=31).prop_map(|(year, month, day)| Value::Date(Date {
                year,
                month,
                day
            })),
            (0u16..=9999, 1u8..=12, 1u8..=31, any::<u64>()).prop_map(
                |(year, month, day, micros_of_day)| Value::DateTime(DateTime {
                    date: Date { year, month, day },
                    micros_of_day,
                })
            ),
            ".{0,40}".prop_map(Value::Str),
            ".{0,40}".prop_map(Value::Json),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(2, 16, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    /// Same value, bit for bit (NaN payloads and -0.0 included).
    fn identical(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            (Value::Array(xs), Value::Array(ys)) => {
                xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| identical(x, y))
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn a_row_unpacks_to_what_was_packed(row in proptest::collection::vec(value(), 0..12)) {
            let unpacked = PackedRow::pack(&row).unpack();
            prop_assert_eq!(unpacked.len(), row.len());
            for (got, want) in unpacked.iter().zip(&row) {
                prop_assert!(identical(got, want), "{:?} != {:?}", got, want);
            }
        }

        #[test]
        fn truncated_bytes_never_panic(row in proptest::collection::vec(value(), 1..6), cut in 0usize..64) {
            let packed = PackedRow::pack(&row);
            let len = packed.0.len().saturating_sub(cut);
            let _ = PackedRow(packed.0[..len].to_vec().into_boxed_slice()).unpack();
        }
    }

    #[test]
    fn extremes_round_trip() {
        let row = vec![
            Value::Int(i128::MIN),
            Value::Int(i128::MAX),
            Value::Int(-1),
            Value::Decimal {
                unscaled: i128::MIN,
                scale: 38,
            },
            Value::Float(-0.0),
            Value::Str("ü€😀".into()),
        ];
        let unpacked = PackedRow::pack(&row).unpack();
        assert!(row.iter().zip(&unpacked).all(|(a, b)| identical(a, b)));
    }

    #[test]
    fn a_typical_row_is_far_smaller_than_its_values() {
        let row = vec![
            Value::Int(1_234_567),
            Value::Int(42),
            Value::Int(9_876_543_210),
            Value::Str("x".repeat(128)),
            Value::Str("y".repeat(32)),
            Value::Decimal {
                unscaled: 12_345,
                scale: 2,
            },
        ];
        let packed = PackedRow::pack(&row);
        // 6 × 32-byte values + 160 bytes of strings in two more allocations, against one slice.
        assert!(packed.packed_len() < 190, "{}", packed.packed_len());
    }
}
