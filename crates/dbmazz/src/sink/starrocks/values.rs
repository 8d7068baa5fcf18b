//! One PostgreSQL text value → one JSON value, written straight into the body buffer.
//!
//! Every converter validates its input and either writes a JSON value StarRocks will store
//! exactly, writes an altered value (truncated under [`LossyPolicy::Truncate`], or an array with
//! NULLed elements) and says why, or writes nothing and returns the [`LossyReason`]; the caller
//! then applies the column's policy. Nothing here goes through `f64` or `serde_json::Value`:
//! integers and decimals are copied as number tokens (StarRocks parses the raw token text, spec
//! §4.3/§9.4), so they stay exact. No input, however malformed, panics.

use std::fmt;
use std::io::Write as _;

use crate::schema::type_map::{LossyPolicy, ValueEncoding, MAX_JSON_BYTES};

use super::{array, datetime};

/// Why a value cannot be stored exactly (the `reason` label of
/// `dbmazz_lossy_values_total{table,column,reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossyReason {
    /// More UTF-8 bytes than the VARCHAR holds (or a JSON value over 16 MiB).
    TooLong,
    /// Outside the StarRocks type's range (integer digits of a DECIMAL, dates outside
    /// 0000-01-01..9999-12-31, integers out of range).
    OutOfRange,
    /// Nonzero digits past the DECIMAL's scale (StarRocks would round them).
    Precision,
    /// numeric `NaN` (DECIMAL has no NaN).
    NotANumber,
    /// numeric `±Infinity`, date/timestamp `±infinity`.
    Infinity,
    /// The text is not a valid value of the column's type (a stale schema, a bug upstream).
    Invalid,
    /// Not UTF-8 (JSON cannot carry it).
    InvalidUtf8,
    /// An array with a different number of dimensions than the column's ARRAY type.
    ArrayDimensions,
    /// A value in pgoutput's binary format: dbmazz only reads the text format.
    BinaryFormat,
}

impl LossyReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LossyReason::TooLong => "too_long",
            LossyReason::OutOfRange => "out_of_range",
            LossyReason::Precision => "precision",
            LossyReason::NotANumber => "nan",
            LossyReason::Infinity => "infinity",
            LossyReason::Invalid => "invalid",
            LossyReason::InvalidUtf8 => "invalid_utf8",
            LossyReason::ArrayDimensions => "array_dimensions",
            LossyReason::BinaryFormat => "binary_format",
        }
    }
}

impl fmt::Display for LossyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value was written: exactly, or altered for the given reason (truncated string, array
/// with NULLed elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoded {
    Exact,
    Altered(LossyReason),
}

/// `Err`: nothing was written (the buffer is as before the call).
pub(crate) type EncodeResult = Result<Encoded, LossyReason>;

/// Writes `text` converted per `encoding`. On `Err` the buffer is left unchanged.
pub(crate) fn encode_value(
    encoding: &ValueEncoding,
    text: &[u8],
    policy: LossyPolicy,
    out: &mut Vec<u8>,
) -> EncodeResult {
    let mark = out.len();
    let result = encode_unchecked(encoding, text, policy, out);
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

fn encode_unchecked(
    encoding: &ValueEncoding,
    text: &[u8],
    policy: LossyPolicy,
    out: &mut Vec<u8>,
) -> EncodeResult {
    match encoding {
        ValueEncoding::Bool => encode_bool(text, out),
        ValueEncoding::Integer { min, max } => encode_integer(text, *min, *max, out),
        ValueEncoding::Float => encode_float(text, out),
        ValueEncoding::Decimal { precision, scale } => {
            encode_decimal(text, *precision, *scale, policy, out)
        }
        ValueEncoding::Date => datetime::encode_date(text, out),
        ValueEncoding::Timestamp => datetime::encode_timestamp(text, false, out),
        ValueEncoding::TimestampTz => datetime::encode_timestamp(text, true, out),
        ValueEncoding::Text { max_bytes } => encode_text(text, *max_bytes, policy, out),
        ValueEncoding::ByteaHex { max_bytes } => encode_bytea(text, *max_bytes, out),
        ValueEncoding::Json => encode_json(text, out),
        ValueEncoding::Array { element, delimiter } => {
            array::encode_array(text, element, *delimiter, policy, out)
        }
    }
}

fn encode_bool(text: &[u8], out: &mut Vec<u8>) -> EncodeResult {
    match text {
        b"t" => out.extend_from_slice(b"true"),
        b"f" => out.extend_from_slice(b"false"),
        _ => return Err(LossyReason::Invalid),
    }
    Ok(Encoded::Exact)
}

/// `-?(0|[1-9][0-9]*)`: the integer part of a JSON number.
fn is_json_integer(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    match digits {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        _ => digits.iter().all(u8::is_ascii_digit),
    }
}

fn encode_integer(text: &[u8], min: i128, max: i128, out: &mut Vec<u8>) -> EncodeResult {
    // Fast path, PostgreSQL's own form: `-?[1-9][0-9]{0,17}` fits an i64 without overflow.
    if text.len() <= 18 && is_json_integer(text) {
        let (negative, digits) = match text.strip_prefix(b"-") {
            Some(digits) => (true, digits),
            None => (false, text),
        };
        let magnitude = digits
            .iter()
            .fold(0i64, |value, &digit| value * 10 + i64::from(digit - b'0'));
        let value = i128::from(if negative { -magnitude } else { magnitude });
        if value < min || value > max {
            return Err(LossyReason::OutOfRange);
        }
        out.extend_from_slice(text);
        return Ok(Encoded::Exact);
    }
    let value: i128 = std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(LossyReason::Invalid)?;
    if value < min || value > max {
        return Err(LossyReason::OutOfRange);
    }
    if is_json_integer(text) {
        out.extend_from_slice(text);
    } else {
        // `+5`, `007`: valid for Rust's parser, not JSON numbers.
        let _ = write!(out, "{value}");
    }
    Ok(Encoded::Exact)
}

/// The JSON number grammar (RFC 8259 §6).
pub(crate) fn is_json_number(text: &[u8]) -> bool {
    let mut index = usize::from(text.first() == Some(&b'-'));
    let start = index;
    while text.get(index).is_some_and(u8::is_ascii_digit) {
        index += 1;
    }
    if !is_json_integer(&text[..index]) || index == start {
        return false;
    }
    if text.get(index) == Some(&b'.') {
        index += 1;
        let fraction_start = index;
        while text.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if index == fraction_start {
            return false;
        }
    }
    if matches!(text.get(index), Some(b'e' | b'E')) {
        index += 1;
        if matches!(text.get(index), Some(b'+' | b'-')) {
            index += 1;
        }
        let exponent_start = index;
        while text.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if index == exponent_start {
            return false;
        }
    }
    index == text.len()
}

fn encode_float(text: &[u8], out: &mut Vec<u8>) -> EncodeResult {
    // StarRocks stores these strings as NaN/±∞ in FLOAT/DOUBLE (spec §9.5).
    match text {
        b"NaN" => out.extend_from_slice(b"\"NaN\""),
        b"Infinity" => out.extend_from_slice(b"\"Infinity\""),
        b"-Infinity" => out.extend_from_slice(b"\"-Infinity\""),
        _ if is_json_number(text) => out.extend_from_slice(text),
        _ => {
            // Not PostgreSQL's own output form; accept what parses, in a JSON form.
            let value: f64 = std::str::from_utf8(text)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or(LossyReason::Invalid)?;
            if value.is_nan() {
                out.extend_from_slice(b"\"NaN\"");
            } else if value.is_infinite() {
                let text: &[u8] = if value > 0.0 {
                    b"\"Infinity\""
                } else {
                    b"\"-Infinity\""
                };
                out.extend_from_slice(text);
            } else {
                // `{:?}` is the shortest round-trip form, always a valid JSON number.
                let _ = write!(out, "{value:?}");
            }
        }
    }
    Ok(Encoded::Exact)
}

fn encode_decimal(
    text: &[u8],
    precision: u8,
    scale: u8,
    policy: LossyPolicy,
    out: &mut Vec<u8>,
) -> EncodeResult {
    match text {
        b"NaN" => return Err(LossyReason::NotANumber),
        b"Infinity" | b"-Infinity" => return Err(LossyReason::Infinity),
        _ => {}
    }
    let (negative, unsigned) = match text.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer, fraction) = match unsigned.iter().position(|&byte| byte == b'.') {
        Some(point) => (&unsigned[..point], &unsigned[point + 1..]),
        None => (unsigned, &[][..]),
    };
    let digits_only = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    let has_point = integer.len() < unsigned.len();
    if integer.is_empty() || !digits_only(integer) || !digits_only(fraction) {
        return Err(LossyReason::Invalid);
    }
    if has_point && fraction.is_empty() {
        return Err(LossyReason::Invalid);
    }
    let first_significant = integer.iter().position(|&byte| byte != b'0');
    let integer = match first_significant {
        Some(start) => &integer[start..],
        None => b"0",
    };
    let integer_digits = if integer == b"0" { 0 } else { integer.len() };
    let scale = usize::from(scale);
    if integer_digits > usize::from(precision).saturating_sub(scale) {
        return Err(LossyReason::OutOfRange);
    }
    let mut outcome = Encoded::Exact;
    let mut kept_fraction = fraction;
    if fraction.len() > scale {
        let (kept, dropped) = fraction.split_at(scale);
        if dropped.iter().any(|&byte| byte != b'0') {
            if policy != LossyPolicy::Truncate {
                return Err(LossyReason::Precision);
            }
            outcome = Encoded::Altered(LossyReason::Precision);
        }
        kept_fraction = kept;
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(integer);
    if !kept_fraction.is_empty() {
        out.push(b'.');
        out.extend_from_slice(kept_fraction);
    }
    Ok(outcome)
}

fn encode_text(
    text: &[u8],
    max_bytes: u32,
    policy: LossyPolicy,
    out: &mut Vec<u8>,
) -> EncodeResult {
    let text = std::str::from_utf8(text).map_err(|_| LossyReason::InvalidUtf8)?;
    let max_bytes = max_bytes as usize;
    if text.len() <= max_bytes {
        write_json_string(text, out);
        return Ok(Encoded::Exact);
    }
    if policy != LossyPolicy::Truncate {
        return Err(LossyReason::TooLong);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    write_json_string(&text[..end], out);
    Ok(Encoded::Altered(LossyReason::TooLong))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn encode_bytea(text: &[u8], max_bytes: u32, out: &mut Vec<u8>) -> EncodeResult {
    out.push(b'"');
    let start = out.len();
    if let Some(hex) = text.strip_prefix(b"\\x") {
        // bytea_output = hex (the default): already hex, maybe uppercase if someone fed it.
        if hex.len() % 2 != 0 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(LossyReason::Invalid);
        }
        if hex.len() > max_bytes as usize {
            return Err(LossyReason::TooLong);
        }
        out.extend(hex.iter().map(u8::to_ascii_lowercase));
    } else {
        // bytea_output = escape: `\\` is a backslash, `\ooo` an octal byte, the rest literal.
        let mut index = 0;
        while let Some(&byte) = text.get(index) {
            let decoded = if byte != b'\\' {
                index += 1;
                byte
            } else if text.get(index + 1) == Some(&b'\\') {
                index += 2;
                b'\\'
            } else {
                let octal = text.get(index + 1..index + 4).ok_or(LossyReason::Invalid)?;
                if !octal.iter().all(|digit| (b'0'..=b'7').contains(digit)) || octal[0] > b'3' {
                    return Err(LossyReason::Invalid);
                }
                index += 4;
                (octal[0] - b'0') * 64 + (octal[1] - b'0') * 8 + (octal[2] - b'0')
            };
            out.push(HEX[usize::from(decoded >> 4)]);
            out.push(HEX[usize::from(decoded & 0xf)]);
            if out.len() - start > max_bytes as usize {
                return Err(LossyReason::TooLong);
            }
        }
    }
    out.push(b'"');
    Ok(Encoded::Exact)
}

fn encode_json(text: &[u8], out: &mut Vec<u8>) -> EncodeResult {
    if text.len() > MAX_JSON_BYTES {
        return Err(LossyReason::TooLong);
    }
    if std::str::from_utf8(text).is_err() {
        return Err(LossyReason::InvalidUtf8);
    }
    // PostgreSQL checked it on input, but one malformed value would fail the whole load, so
    // check again (cheap next to the network).
    if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_err() {
        return Err(LossyReason::Invalid);
    }
    out.extend_from_slice(text);
    Ok(Encoded::Exact)
}

/// Bytes that must be escaped in a JSON string: `"`, `\` and the controls U+0000..U+001F.
const fn needs_escape_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
}

static NEEDS_ESCAPE: [bool; 256] = needs_escape_table();

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether any of 8 bytes needs escaping (the "has a byte less than n" / "has a zero byte"
/// word tricks; exact as a yes/no answer).
fn word_needs_escape(word: u64) -> bool {
    let has_zero_byte = |value: u64| value.wrapping_sub(ONES) & !value & HIGH_BITS != 0;
    let has_control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS != 0;
    has_control
        || has_zero_byte(word ^ (ONES * u64::from(b'"')))
        || has_zero_byte(word ^ (ONES * u64::from(b'\\')))
}

/// Writes `text` as a JSON string, copying runs of plain bytes at once (8 bytes are checked
/// at a time).
pub(crate) fn write_json_string(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    let mut index = 0;
    while index < bytes.len() {
        if let Some(word) = bytes.get(index..index + 8) {
            let mut chunk = [0u8; 8];
            chunk.copy_from_slice(word);
            if !word_needs_escape(u64::from_le_bytes(chunk)) {
                index += 8;
                continue;
            }
        }
        let end = (index + 8).min(bytes.len());
        for (offset, &byte) in bytes[index..end].iter().enumerate() {
            if NEEDS_ESCAPE[usize::from(byte)] {
                let at = index + offset;
                out.extend_from_slice(&bytes[run_start..at]);
                run_start = at + 1;
                push_escape(byte, out);
            }
        }
        index = end;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

fn push_escape(byte: u8, out: &mut Vec<u8>) {
    match byte {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        control => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(control >> 4)]);
            out.push(HEX[usize::from(control & 0xf)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_escape_check_agrees_with_the_byte_table() {
        for byte in 0..=255u8 {
            for position in 0..8 {
                let mut chunk = *b"abcdefgh";
                chunk[position] = byte;
                assert_eq!(
                    word_needs_escape(u64::from_le_bytes(chunk)),
                    NEEDS_ESCAPE[usize::from(byte)],
                    "byte {byte:#x} at {position}"
                );
            }
        }
    }

    #[test]
    fn json_numbers_follow_the_grammar() {
        for good in ["0", "-0", "1.5", "1e+20", "1E-5", "-12.0e3", "123"] {
            assert!(is_json_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "+1", "NaN", "1e+", "0x1", "1 ",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }
}
