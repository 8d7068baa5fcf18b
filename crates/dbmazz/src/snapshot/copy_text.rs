//! COPY text format → the text values pgoutput sends, so a snapshot row becomes the same
//! [`RowImage`] a stream INSERT of that row would (one code path to the sink).
//!
//! Both come from the type's output function under the same session settings; COPY only adds
//! its escaping: a row per line, columns split by tab, `\N` for NULL and backslash escapes
//! (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`, octal `\d{1,3}`, hex `\xh{1,2}`, any other
//! escaped byte stands for itself). See the COPY page of the PostgreSQL documentation,
//! "Text Format".

use bytes::{BufMut, BytesMut};

use crate::pipeline::RowImage;

/// A line that is not a row of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("COPY row has {found} columns, expected {expected}")]
pub struct CopyRowError {
    pub expected: usize,
    pub found: usize,
}

/// Decodes one row (without its trailing newline) of `columns` columns.
pub fn decode_row(line: &[u8], columns: usize) -> Result<RowImage, CopyRowError> {
    decode_row_into(line, columns, &mut BytesMut::new())
}

/// [`decode_row`] writing the row into `arena` (see [`RowImage::writer`]): the snapshot's hot
/// path, one pass over the line and no allocation per row.
pub fn decode_row_into(
    line: &[u8],
    columns: usize,
    arena: &mut BytesMut,
) -> Result<RowImage, CopyRowError> {
    // Room for the row: its text plus a tag and a length per column, at most.
    let needed = 2 + line.len() + 5 * columns;
    if arena.capacity() < needed {
        arena.reserve(needed.max(ARENA_CHUNK));
    }
    let mut row = RowImage::writer(arena);
    let mut start = 0;
    // One pass: the next tab ends the field, a backslash before it means escapes.
    let mut escaped = false;
    let mut specials = memchr::memchr2_iter(b'\t', b'\\', line);
    loop {
        let end = loop {
            match specials.next() {
                Some(at) if line[at] == b'\\' => escaped = true,
                Some(at) => break at,
                None => break line.len(),
            }
        };
        let field = &line[start..end];
        if field == b"\\N" {
            row.push_null();
        } else if escaped {
            row.push_text_with(|out| unescape_into(field, out));
        } else {
            row.push_text(field);
        }
        if end == line.len() {
            break;
        }
        start = end + 1;
        escaped = false;
    }
    if row.columns() != columns {
        return Err(CopyRowError {
            expected: columns,
            found: row.columns(),
        });
    }
    Ok(row.finish())
}

/// Arena chunks: the rows of a batch share them.
const ARENA_CHUNK: usize = 64 * 1024;

fn unescape_into(field: &[u8], out: &mut BytesMut) {
    let mut index = 0;
    while index < field.len() {
        let byte = field[index];
        index += 1;
        if byte != b'\\' || index == field.len() {
            out.put_u8(byte);
            continue;
        }
        let escaped = field[index];
        index += 1;
        let decoded = match escaped {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match field.get(index) {
                        Some(&digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            index += 1;
                        }
                        _ => break,
                    }
                }
                // Like PostgreSQL, keep the low byte of an out-of-range value.
                (value & 0xff) as u8
            }
            b'x' if field.get(index).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match field.get(index).and_then(|&digit| hex_value(digit)) {
                        Some(digit) => {
                            value = value * 16 + digit;
                            index += 1;
                        }
                        None => break,
                    }
                }
                value
            }
            other => other,
        };
        out.put_u8(decoded);
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Splits COPY output into rows. The server sends one row per CopyData message, but nothing
/// here relies on it: a message may hold several rows or part of one.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: BytesMut,
}

impl LineSplitter {
    /// Feeds one message; calls `row` for each complete line (without its newline). Lines are
    /// lent, not cut off as `Bytes`: the decoder copies them anyway, and a reference count
    /// per row was a measurable part of the snapshot's CPU.
    pub fn push<E>(
        &mut self,
        data: &[u8],
        mut row: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = data;
        if !self.partial.is_empty() {
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                self.partial.extend_from_slice(rest);
                return Ok(());
            };
            self.partial.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let line = std::mem::take(&mut self.partial);
            row(&line)?;
        }
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            row(&rest[..newline])?;
            rest = &rest[newline + 1..];
        }
        if !rest.is_empty() {
            self.partial.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Bytes of an unfinished last line (the server always ends rows with a newline).
    pub fn leftover(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TupleValue;
    use bytes::Bytes;
    use proptest::prelude::*;

    /// COPY text escaping of one value (what the server writes).
    fn escape(value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &byte in value {
            match byte {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                other => out.push(other),
            }
        }
        out
    }

    proptest! {
        /// Rows decoded one after another through one arena come out exactly as written,
        /// whatever their bytes, NULLs and escapes.
        #[test]
        fn rows_through_one_arena_decode_to_their_values(
            rows in prop::collection::vec(
                prop::collection::vec(
                    prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                    1..6,
                ),
                1..30,
            )
        ) {
            let mut arena = BytesMut::new();
            let mut decoded = Vec::new();
            for row in &rows {
                let line: Vec<u8> = row
                    .iter()
                    .map(|value| value.as_deref().map_or_else(|| b"\\N".to_vec(), escape))
                    .collect::<Vec<_>>()
                    .join(&b'\t');
                decoded.push(decode_row_into(&line, row.len(), &mut arena).unwrap());
            }
            for (row, image) in rows.iter().zip(&decoded) {
                prop_assert_eq!(&texts(image), row);
            }
        }
    }

    fn texts(image: &RowImage) -> Vec<Option<Vec<u8>>> {
        image
            .values()
            .0
            .into_iter()
            .map(|value| match value {
                TupleValue::Text(bytes) => Some(bytes.to_vec()),
                TupleValue::Null => None,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_escape_of_the_text_format_decodes_to_the_raw_value() {
        let line = Bytes::from_static(
            b"1\t\\N\t\tback\\\\slash\ttab\\there\tnl\\nCR\\r\tbs\\bff\\fvt\\v\toct\\101\\0601\thex\\x41\\x4g\\xZ\t\\\\x00ff\t\\N\\N",
        );
        let image = decode_row(&line, 11).unwrap();
        let expected: Vec<Option<&[u8]>> = vec![
            Some(b"1"),
            None,
            Some(b""),
            Some(b"back\\slash"),
            Some(b"tab\there"),
            Some(b"nl\nCR\r"),
            Some(b"bs\x08ff\x0cvt\x0b"),
            Some(b"octA01"),
            Some(b"hexA\x04gxZ"),
            Some(b"\\x00ff"),
            // Only a field that is exactly `\N` is NULL.
            Some(b"NN"),
        ];
        let expected: Vec<Option<Vec<u8>>> = expected
            .into_iter()
            .map(|value| value.map(<[u8]>::to_vec))
            .collect();
        assert_eq!(texts(&image), expected);
    }

    #[test]
    fn wrong_column_counts_are_errors() {
        let line = Bytes::from_static(b"1\t2");
        assert_eq!(
            decode_row(&line, 3).unwrap_err(),
            CopyRowError {
                expected: 3,
                found: 2
            }
        );
    }

    #[test]
    fn lines_split_across_and_within_messages() {
        let mut splitter = LineSplitter::default();
        let mut rows = Vec::new();
        for message in [&b"a\tb\nc\t"[..], b"d", b"\ne\tf\n"] {
            splitter
                .push::<()>(message, |row| {
                    rows.push(row.to_vec());
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(
            rows,
            vec![b"a\tb".to_vec(), b"c\td".to_vec(), b"e\tf".to_vec()]
        );
        assert_eq!(splitter.leftover(), 0);
    }
}
