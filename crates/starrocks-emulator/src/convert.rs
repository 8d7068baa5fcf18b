//! Value conversion from JSON and text into column types (spec §4.2–§4.6, §9.4, §9.5, §10.6).
//!
//! Every conversion answers `Ok(value)` or a [`ConvError`]. The caller decides what a failure
//! means: [`ConvError::Failed`] is NULL in non-strict mode and a filtered row in strict mode;
//! [`ConvError::Filter`] filters the row in any mode (declared DECIMAL precision overflow, a bare
//! lowercase `nan`).

use crate::json::Json;
use crate::types::{ColumnType, Date, DateTime, Value};

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvError {
    /// A conversion failure: NULL in non-strict mode, filtered row in strict mode.
    Failed(String),
    /// The row is filtered whatever the strict mode.
    Filter(String),
}

impl ConvError {
    /// The message written to the error log.
    pub fn message(&self) -> &str {
        match self {
            ConvError::Failed(m) | ConvError::Filter(m) => m,
        }
    }
}

/// Largest JSON value StarRocks stores (16 MiB).
const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;

/// Convert a JSON value read from a Stream Load body into `ty`.
#[inline]
pub fn from_json(value: &Json<'_>, ty: &ColumnType, column: &str) -> Result<Value, ConvError> {
    if let Json::Null = value {
        return Ok(Value::Null);
    }
    if let Json::Bad(token) = value {
        return Err(bad_token(token, column));
    }
    match ty {
        ColumnType::TinyInt
        | ColumnType::SmallInt
        | ColumnType::Int
        | ColumnType::BigInt
        | ColumnType::LargeInt => json_to_int(value, ty, column),
        ColumnType::Float | ColumnType::Double => json_to_float(value, ty, column),
        ColumnType::Boolean => json_to_bool(value, column),
        ColumnType::Char(_) | ColumnType::Varchar(_) => {
            let text = json_as_text(value);
            check_string_len(text, ty, column)
        }
        ColumnType::Json => {
            let text = value.to_display_text();
            if text.len() > MAX_JSON_BYTES {
                return Err(ConvError::Failed(
                    "JSON string exceed maximum length 16MB".into(),
                ));
            }
            Ok(Value::Json(text))
        }
        ColumnType::Array(inner) => match value {
            Json::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|item| from_json(item, inner, column).unwrap_or(Value::Null))
                    .collect(),
            )),
            _ => Err(ConvError::Failed(format!(
                "Failed to parse value as array, column={column}"
            ))),
        },
        // DATE, DATETIME, DECIMAL, VARBINARY are read as VARCHAR and cast (spec §10.6).
        ColumnType::Decimal { .. }
        | ColumnType::Date
        | ColumnType::DateTime
        | ColumnType::Varbinary => {
            let text = json_as_text(value);
            from_text(&text, ty, column)
        }
    }
}

/// The text a JSON value becomes in a string column: strings as-is, numbers as their token,
/// booleans as `1`/`0`, objects and arrays as minified JSON (spec §4.5).
pub fn json_as_text<'b>(value: &'b Json<'_>) -> std::borrow::Cow<'b, str> {
    use std::borrow::Cow;
    match value {
        Json::Str(s) => Cow::Borrowed(s.as_ref()),
        Json::Number(n) => Cow::Borrowed(n),
        Json::Bool(b) => Cow::Borrowed(if *b { "1" } else { "0" }),
        Json::Null => Cow::Borrowed(""),
        Json::Bad(t) => Cow::Borrowed(t),
        Json::Array(_) | Json::Object(_) => Cow::Owned(value.to_json_text()),
    }
}

fn bad_token(token: &str, column: &str) -> ConvError {
    if token.starts_with('n') {
        ConvError::Filter(format!(
            "Failed to parse value, column={column}, error=INCORRECT_TYPE: The JSON element does not have the requested type."
        ))
    } else if token.starts_with('-') {
        ConvError::Failed(format!(
            "Failed to parse value as number, column={column}, error=NUMBER_ERROR: Problem while parsing a number"
        ))
    } else {
        ConvError::Failed(format!(
            "Failed to parse value as number, column={column}, error=TAPE_ERROR: The JSON document has an improper structure: missing or superfluous commas, braces, missing keys, etc."
        ))
    }
}

pub(crate) fn int_range(ty: &ColumnType) -> (i128, i128) {
    match ty {
        ColumnType::TinyInt => (i128::from(i8::MIN), i128::from(i8::MAX)),
        ColumnType::SmallInt => (i128::from(i16::MIN), i128::from(i16::MAX)),
        ColumnType::Int => (i128::from(i32::MIN), i128::from(i32::MAX)),
        ColumnType::BigInt => (i128::from(i64::MIN), i128::from(i64::MAX)),
        _ => (i128::MIN, i128::MAX),
    }
}

/// A plain decimal integer of at most 18 digits (the common case), in i64 arithmetic: `i128`
/// parsing is several times slower and this runs for every integer cell of a load.
#[inline]
fn parse_short_int(text: &str) -> Option<i128> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(i128::from(if negative { -value } else { value }))
}

#[inline]
fn parse_int_text(text: &str) -> Option<i128> {
    if let Some(i) = parse_short_int(text) {
        return Some(i);
    }
    if let Ok(i) = text.parse::<i128>() {
        return Some(i);
    }
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() || text.to_ascii_lowercase().contains("inf") {
        return None;
    }
    let t = f.trunc();
    if t.abs() >= 1.7e38 {
        return None;
    }
    Some(t as i128)
}

#[inline]
fn json_to_int(value: &Json<'_>, ty: &ColumnType, column: &str) -> Result<Value, ConvError> {
    let text = match value {
        Json::Number(n) => *n,
        Json::Str(s) => s.as_ref(),
        _ => {
            return Err(ConvError::Failed(
                "Unsupported value type. Numeric type is required.".into(),
            ))
        }
    };
    let overflow =
        || ConvError::Failed(format!("Value is overflow. column={column}, value={text}"));
    let Some(i) = parse_int_text(text) else {
        if matches!(value, Json::Number(_)) {
            return Err(overflow());
        }
        return Err(ConvError::Failed(format!(
            "Failed to parse value as number, column={column}, value={text}"
        )));
    };
    let (min, max) = int_range(ty);
    if i < min || i > max {
        return Err(overflow());
    }
    Ok(Value::Int(i))
}

/// `StringParser::string_to_float`: sign, blanks, and prefix matches for `inf` / `nan`.
fn string_to_float(text: &str) -> Option<f64> {
    let trimmed = text.trim_start();
    let (negative, rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let lower = rest.get(..3).map(|p| p.to_ascii_lowercase());
    match lower.as_deref() {
        Some("inf") => {
            return Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        Some("nan") => return Some(f64::NAN),
        _ => {}
    }
    let f: f64 = text.trim().parse().ok()?;
    Some(f)
}

#[inline]
fn json_to_float(value: &Json<'_>, ty: &ColumnType, column: &str) -> Result<Value, ConvError> {
    let parsed = match value {
        Json::Number(n) => n.parse::<f64>().ok(),
        Json::Str(s) => string_to_float(s),
        _ => {
            return Err(ConvError::Failed(
                "Unsupported value type. Numeric type is required.".into(),
            ))
        }
    };
    let Some(f) = parsed else {
        return Err(ConvError::Failed(format!(
            "Failed to parse value as number, column={column}"
        )));
    };
    Ok(float_value(f, ty))
}

/// A FLOAT column stores an f32, a DOUBLE an f64.
fn float_value(f: f64, ty: &ColumnType) -> Value {
    if *ty == ColumnType::Float {
        Value::Float32(f as f32)
    } else {
        Value::Float(f)
    }
}

#[inline]
fn json_to_bool(value: &Json<'_>, column: &str) -> Result<Value, ConvError> {
    match value {
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => match n.parse::<f64>() {
            Ok(f) => Ok(Value::Bool(f != 0.0)),
            Err(_) => Err(ConvError::Failed(format!(
                "Failed to parse value as bool, column={column}"
            ))),
        },
        Json::Str(s) => text_to_bool(s, column),
        _ => Err(ConvError::Failed(format!(
            "Unsupported value type. Bool type is required. column={column}"
        ))),
    }
}

fn text_to_bool(text: &str, column: &str) -> Result<Value, ConvError> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::Bool(i != 0));
    }
    if text.eq_ignore_ascii_case("true") {
        return Ok(Value::Bool(true));
    }
    if text.eq_ignore_ascii_case("false") {
        return Ok(Value::Bool(false));
    }
    Err(ConvError::Failed(format!(
        "Failed to parse value as bool, column={column}, value={text}"
    )))
}

#[inline]
fn check_string_len(
    text: impl Into<String>,
    ty: &ColumnType,
    column: &str,
) -> Result<Value, ConvError> {
    let text = text.into();
    let capacity = match ty {
        ColumnType::Char(n) | ColumnType::Varchar(n) => *n as usize,
        _ => usize::MAX,
    };
    if text.len() > capacity {
        return Err(ConvError::Failed(format!(
            "Value length is beyond the capacity. column={column}, capacity={capacity}"
        )));
    }
    Ok(Value::Str(text))
}

/// Convert text (a CSV field, a DEFAULT, or a JSON value read as VARCHAR) into `ty`.
#[inline]
pub fn from_text(text: &str, ty: &ColumnType, column: &str) -> Result<Value, ConvError> {
    let failed = || {
        ConvError::Failed(format!(
            "Value '{}' is out of range. The type of '{column}' is {ty}",
            text
        ))
    };
    match ty {
        ColumnType::TinyInt
        | ColumnType::SmallInt
        | ColumnType::Int
        | ColumnType::BigInt
        | ColumnType::LargeInt => {
            let trimmed = text.trim();
            let i: i128 = match parse_short_int(trimmed) {
                Some(i) => i,
                None => trimmed.parse().map_err(|_| failed())?,
            };
            let (min, max) = int_range(ty);
            if i < min || i > max {
                return Err(failed());
            }
            Ok(Value::Int(i))
        }
        ColumnType::Float | ColumnType::Double => string_to_float(text)
            .map(|f| float_value(f, ty))
            .ok_or_else(failed),
        ColumnType::Boolean => text_to_bool(text.trim(), column),
        ColumnType::Decimal { precision, scale } => {
            parse_decimal(text, *precision, *scale, column, ty)
        }
        ColumnType::Date => parse_datetime(text)
            .map(|dt| Value::Date(dt.date))
            .ok_or_else(failed),
        ColumnType::DateTime => parse_datetime(text).map(Value::DateTime).ok_or_else(failed),
        ColumnType::Char(_) | ColumnType::Varchar(_) => check_string_len(text, ty, column),
        ColumnType::Varbinary => Ok(Value::Binary(text.as_bytes().to_vec())),
        ColumnType::Json => {
            let first = text.trim_start().chars().next();
            if matches!(first, Some('{' | '[' | '"')) {
                let parsed = crate::json::parse_value(text)
                    .map_err(|_| ConvError::Failed(format!("Failed to parse json: {text}")))?;
                Ok(Value::Json(parsed.to_display_text()))
            } else {
                Ok(Value::Json(
                    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()),
                ))
            }
        }
        ColumnType::Array(_) => {
            let parsed = crate::json::parse_value(text).map_err(|_| {
                ConvError::Failed(format!("Failed to parse value as array, column={column}"))
            })?;
            from_json(&parsed, ty, column)
        }
    }
}

/// Parse decimal text and round half away from zero to `scale` (spec §9.4). No allocation.
fn parse_decimal(
    text: &str,
    precision: u8,
    scale: u8,
    column: &str,
    ty: &ColumnType,
) -> Result<Value, ConvError> {
    let cast_failed = || {
        ConvError::Failed(format!(
            "Value '{text}' is out of range. The type of '{column}' is {ty}"
        ))
    };
    let checked_declared = |unscaled: i128| {
        if unscaled.abs() >= 10i128.pow(u32::from(precision)) {
            return Err(ConvError::Filter(format!(
                "Decimal '{}' is out of range. The type of '{column}' is {ty}'",
                crate::types::format_decimal(unscaled, scale)
            )));
        }
        Ok(Value::Decimal { unscaled, scale })
    };
    let trimmed = text.trim();
    let (negative, body) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let storage_limit: i64 = if precision <= 9 {
        9
    } else if precision <= 18 {
        18
    } else {
        38
    };
    if let Some((magnitude, significant_int)) = plain_decimal(body, scale) {
        if significant_int > storage_limit - i64::from(scale) {
            return Err(cast_failed());
        }
        return checked_declared(if negative { -magnitude } else { magnitude });
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (
            &body[..i],
            body[i + 1..].parse::<i64>().map_err(|_| cast_failed())?,
        ),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let (int_bytes, frac_bytes) = (int_part.as_bytes(), frac_part.as_bytes());
    if (int_bytes.is_empty() && frac_bytes.is_empty())
        || !int_bytes.iter().all(u8::is_ascii_digit)
        || !frac_bytes.iter().all(u8::is_ascii_digit)
        || exponent.abs() > 1000
    {
        return Err(cast_failed());
    }
    let len = (int_bytes.len() + frac_bytes.len()) as i64;
    // Digit `i` of the concatenated digits (zeros outside).
    let digit = |i: i64| -> i128 {
        if i < 0 || i >= len {
            return 0;
        }
        let i = i as usize;
        let b = if i < int_bytes.len() {
            int_bytes[i]
        } else {
            frac_bytes[i - int_bytes.len()]
        };
        i128::from(b - b'0')
    };
    let point = int_bytes.len() as i64 + exponent;
    let first_nonzero = (0..len.min(point)).find(|i| digit(*i) != 0);
    let significant_int = first_nonzero.map_or(0, |f| point - f);
    if significant_int > storage_limit - i64::from(scale) {
        return Err(cast_failed());
    }
    let keep = point + i64::from(scale);
    let mut unscaled: i128 = 0;
    let start = first_nonzero.unwrap_or(0).min(keep.max(0));
    for i in start..keep.max(0) {
        unscaled = unscaled * 10 + digit(i);
    }
    if keep >= 0 && digit(keep) >= 5 {
        unscaled += 1;
    }
    if negative {
        unscaled = -unscaled;
    }
    checked_declared(unscaled)
}

/// `digits[.digits]` with at most 18 integer digits and no more fractional digits than `scale`
/// (no rounding needed): the unscaled magnitude and the count of significant integer digits.
fn plain_decimal(body: &str, scale: u8) -> Option<(i128, i64)> {
    let bytes = body.as_bytes();
    let (int_part, frac_part) = match bytes.iter().position(|b| *b == b'.') {
        Some(dot) => (&bytes[..dot], &bytes[dot + 1..]),
        None => (bytes, &bytes[bytes.len()..]),
    };
    if int_part.is_empty()
        || int_part.len() > 18
        || frac_part.len() > usize::from(scale)
        || !int_part.iter().chain(frac_part).all(u8::is_ascii_digit)
    {
        return None;
    }
    let fold = |digits: &[u8]| {
        digits
            .iter()
            .fold(0i128, |acc, d| acc * 10 + i128::from(d - b'0'))
    };
    let shift = 10i128.checked_pow(u32::from(scale) - frac_part.len() as u32)?;
    let magnitude = fold(int_part)
        .checked_mul(10i128.checked_pow(u32::from(scale))?)?
        .checked_add(fold(frac_part).checked_mul(shift)?)?;
    let significant = int_part.iter().skip_while(|d| **d == b'0').count() as i64;
    Some((magnitude, significant))
}

/// Parse a DATE or DATETIME text the way StarRocks does (spec §4.4): `YYYY-MM-DD`,
/// `YYYY-MM-DD[ T]HH:MM:SS[.ffffff…][Z|±HH:MM]` (offset ignored), compact `YYYYMMDD[HHMMSS]`.
pub fn parse_datetime(text: &str) -> Option<DateTime> {
    if let Some(fast) = parse_datetime_fast(text.as_bytes()) {
        return Some(fast);
    }
    let s = text.trim();
    let bytes = s.as_bytes();
    if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_digit()) {
        return parse_compact(s);
    }
    let (date_part, time_part) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut fields = date_part.split('-');
    let year_text = fields.next()?;
    let month_text = fields.next()?;
    let day_text = fields.next()?;
    if fields.next().is_some() || year_text.is_empty() || year_text.len() > 4 {
        return None;
    }
    let mut year: u32 = parse_digits(year_text)?;
    if year_text.len() == 2 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let date = Date::new(year, parse_digits(month_text)?, parse_digits(day_text)?)?;
    let micros_of_day = match time_part {
        None => 0,
        Some(t) => parse_time(t)?,
    };
    Some(DateTime {
        date,
        micros_of_day,
    })
}

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` exactly (the common case), by byte position.
fn parse_datetime_fast(b: &[u8]) -> Option<DateTime> {
    if b.len() != 10 && b.len() != 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = Date::new(num(0..4)?, num(5..7)?, num(8..10)?)?;
    if b.len() == 10 {
        return Some(DateTime {
            date,
            micros_of_day: 0,
        });
    }
    if !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    Some(DateTime {
        date,
        micros_of_day: u64::from((h * 60 + m) * 60 + s) * 1_000_000,
    })
}

fn parse_digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_time(text: &str) -> Option<u64> {
    // Drop a trailing Z or an offset: StarRocks ignores it (no conversion).
    let mut t = text.trim_end_matches('Z');
    if let Some(i) = t.rfind(['+', '-']) {
        t = &t[..i];
    }
    let (hms, frac) = match t.find('.') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, ""),
    };
    let mut parts = hms.split(':');
    let hour = parse_digits(parts.next()?)?;
    let minute = parts.next().map(parse_digits).unwrap_or(Some(0))?;
    let second = parts.next().map(parse_digits).unwrap_or(Some(0))?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros: u64 = 0;
    for i in 0..6 {
        let digit = frac
            .as_bytes()
            .get(i)
            .map(|b| u64::from(b - b'0'))
            .unwrap_or(0);
        micros = micros * 10 + digit;
    }
    Some(((u64::from(hour) * 60 + u64::from(minute)) * 60 + u64::from(second)) * 1_000_000 + micros)
}

fn parse_compact(s: &str) -> Option<DateTime> {
    let num = |range: std::ops::Range<usize>| -> Option<u32> { s.get(range)?.parse().ok() };
    match s.len() {
        8 | 14 => {
            let date = Date::new(num(0..4)?, num(4..6)?, num(6..8)?)?;
            let micros_of_day = if s.len() == 14 {
                let (h, m, sec) = (num(8..10)?, num(10..12)?, num(12..14)?);
                if h > 23 || m > 59 || sec > 59 {
                    return None;
                }
                u64::from((h * 60 + m) * 60 + sec) * 1_000_000
            } else {
                0
            };
            Some(DateTime {
                date,
                micros_of_day,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_value;

    fn json(text: &str) -> Json<'_> {
        parse_value(text).unwrap()
    }

    #[test]
    fn short_int_fast_path_agrees_with_the_full_parser() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "007",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "+5",
            "",
            "-",
            "1.5",
            "1e3",
            "12a",
        ] {
            assert_eq!(
                parse_int_text(text),
                text.parse::<i128>().ok().or_else(|| {
                    let f: f64 = text.parse().ok()?;
                    Some(f.trunc() as i128)
                }),
                "{text}"
            );
        }
        assert_eq!(
            from_text(" 42 ", &ColumnType::Int, "c").unwrap(),
            Value::Int(42)
        );
        assert!(from_text("2147483648", &ColumnType::Int, "c").is_err());
    }

    #[test]
    fn plain_decimal_fast_path_keeps_range_checks() {
        let ty = |precision, scale| ColumnType::Decimal { precision, scale };
        let value = |unscaled, scale| Value::Decimal { unscaled, scale };
        assert_eq!(
            from_text("123.1250", &ty(18, 4), "d").unwrap(),
            value(1_231_250, 4)
        );
        assert_eq!(from_text("-0.5", &ty(5, 2), "d").unwrap(), value(-50, 2));
        assert_eq!(from_text("007.", &ty(5, 2), "d").unwrap(), value(700, 2));
        assert_eq!(from_text("+3", &ty(5, 0), "d").unwrap(), value(3, 0));
        // Declared precision overflow filters the row; storage overflow is a cast failure.
        assert!(matches!(
            from_text("1234.5", &ty(5, 2), "d"),
            Err(ConvError::Filter(_))
        ));
        assert!(matches!(
            from_text("12345678.1", &ty(9, 2), "d"),
            Err(ConvError::Failed(_))
        ));
        // More fractional digits than the scale: the general path rounds.
        assert_eq!(from_text("1.255", &ty(5, 2), "d").unwrap(), value(126, 2));
    }

    #[test]
    fn decimal_rounds_half_away_from_zero() {
        let ty = ColumnType::Decimal {
            precision: 10,
            scale: 2,
        };
        for (input, expected) in [
            ("1.245", 125),
            ("-1.245", -125),
            ("1.2449", 124),
            ("\"1.2451\"", 125),
        ] {
            let v = from_json(&json(input), &ty, "d").unwrap();
            assert_eq!(
                v,
                Value::Decimal {
                    unscaled: expected,
                    scale: 2
                },
                "{input}"
            );
        }
    }

    #[test]
    fn decimal_over_declared_precision_is_filtered_always() {
        let ty = ColumnType::Decimal {
            precision: 10,
            scale: 2,
        };
        let err = from_json(&json("123456789.5"), &ty, "d").unwrap_err();
        assert!(matches!(err, ConvError::Filter(_)), "{err:?}");
        let err = from_json(&json("\"1e30\""), &ty, "d").unwrap_err();
        assert!(matches!(err, ConvError::Failed(_)), "{err:?}");
    }

    #[test]
    fn integers_truncate_floats_and_check_range() {
        assert_eq!(
            from_json(&json("42.9"), &ColumnType::Int, "i"),
            Ok(Value::Int(42))
        );
        assert_eq!(
            from_json(&json("\"42.0\""), &ColumnType::Int, "i"),
            Ok(Value::Int(42))
        );
        assert!(from_json(&json("128"), &ColumnType::TinyInt, "i").is_err());
        assert!(from_json(&json("true"), &ColumnType::Int, "i").is_err());
    }

    #[test]
    fn nan_and_infinity_strings_load_exactly() {
        let v = from_json(&json("\"NaN\""), &ColumnType::Double, "f").unwrap();
        assert!(matches!(v, Value::Float(f) if f.is_nan()));
        assert_eq!(
            from_json(&json("\"-Infinity\""), &ColumnType::Double, "f"),
            Ok(Value::Float(f64::NEG_INFINITY))
        );
        assert_eq!(
            from_json(&json("\"information\""), &ColumnType::Double, "f"),
            Ok(Value::Float(f64::INFINITY))
        );
    }

    #[test]
    fn datetime_ignores_offsets_and_truncates_fraction() {
        let dt = parse_datetime("2024-01-01 10:00:00+02:00").unwrap();
        assert_eq!(dt.to_string(), "2024-01-01 10:00:00");
        let dt = parse_datetime("2024-01-01T10:00:00.1234567Z").unwrap();
        assert_eq!(dt.to_string(), "2024-01-01 10:00:00.123456");
        assert!(parse_datetime("2024-13-01").is_none());
        assert!(parse_datetime("2024-02-30").is_none());
        assert!(parse_datetime("2024-01-01 24:00:00").is_none());
        assert_eq!(
            parse_datetime("20240101").unwrap().to_string(),
            "2024-01-01 00:00:00"
        );
    }

    #[test]
    fn strings_count_bytes_and_booleans_become_digits() {
        let ty = ColumnType::Varchar(4);
        assert_eq!(
            from_json(&json("true"), &ty, "s"),
            Ok(Value::Str("1".into()))
        );
        assert_eq!(
            from_json(&json("1.50"), &ty, "s"),
            Ok(Value::Str("1.50".into()))
        );
        assert!(from_json(&json("\"ééé\""), &ty, "s").is_err());
    }

    #[test]
    fn json_string_stays_a_string() {
        let v = from_json(&json(r#""{\"a\":1}""#), &ColumnType::Json, "j").unwrap();
        assert_eq!(v, Value::Json(r#""{\"a\":1}""#.into()));
        let v = from_text("123", &ColumnType::Json, "j").unwrap();
        assert_eq!(v, Value::Json("\"123\"".into()));
        let v = from_text("{\"a\":1}", &ColumnType::Json, "j").unwrap();
        assert_eq!(v, Value::Json("{\"a\": 1}".into()));
    }

    #[test]
    fn array_elements_fail_to_null() {
        let ty = ColumnType::Array(Box::new(ColumnType::Int));
        let v = from_json(&json(r#"["a", "12", null]"#), &ty, "a").unwrap();
        assert_eq!(
            v,
            Value::Array(vec![Value::Null, Value::Int(12), Value::Null])
        );
        assert!(from_json(&json("\"[1,2]\""), &ty, "a").is_err());
    }
}
