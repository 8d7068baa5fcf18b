//! Column types and stored values (spec §4, §6.2).
//!
//! A [`Value`] is what a table cell holds after conversion. Keys are compared with a total order
//! ([`Value::cmp_total`]) so rows live in a `BTreeMap` sorted by primary key, as StarRocks sorts
//! a Primary Key table.

use std::cmp::Ordering;
use std::fmt;

/// A StarRocks column type, as far as the emulator models it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// BOOLEAN (stored 0/1).
    Boolean,
    /// TINYINT (i8).
    TinyInt,
    /// SMALLINT (i16).
    SmallInt,
    /// INT (i32).
    Int,
    /// BIGINT (i64).
    BigInt,
    /// LARGEINT (i128).
    LargeInt,
    /// FLOAT (f32).
    Float,
    /// DOUBLE (f64).
    Double,
    /// DECIMAL(precision, scale).
    Decimal {
        /// Total digits, 1..=38.
        precision: u8,
        /// Fractional digits, 0..=precision.
        scale: u8,
    },
    /// DATE.
    Date,
    /// DATETIME (microsecond precision).
    DateTime,
    /// CHAR(n): n bytes.
    Char(u32),
    /// VARCHAR(n): n bytes. STRING is VARCHAR(65533).
    Varchar(u32),
    /// JSON.
    Json,
    /// ARRAY<T>.
    Array(Box<ColumnType>),
    /// VARBINARY / BINARY.
    Varbinary,
}

impl ColumnType {
    /// The canonical lower-case name used by `DESC` (`bigint`, `varchar(64)`, `decimal(10,2)`).
    pub fn desc_name(&self) -> String {
        match self {
            ColumnType::Boolean => "boolean".into(),
            ColumnType::TinyInt => "tinyint".into(),
            ColumnType::SmallInt => "smallint".into(),
            ColumnType::Int => "int".into(),
            ColumnType::BigInt => "bigint".into(),
            ColumnType::LargeInt => "largeint".into(),
            ColumnType::Float => "float".into(),
            ColumnType::Double => "double".into(),
            ColumnType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            ColumnType::Date => "date".into(),
            ColumnType::DateTime => "datetime".into(),
            ColumnType::Char(n) => format!("char({n})"),
            ColumnType::Varchar(n) => format!("varchar({n})"),
            ColumnType::Json => "json".into(),
            ColumnType::Array(inner) => format!("array<{}>", inner.desc_name()),
            ColumnType::Varbinary => "varbinary".into(),
        }
    }

    /// The upper-case SQL name used in `SHOW CREATE TABLE` and error messages.
    pub fn sql_name(&self) -> String {
        match self {
            ColumnType::Decimal { precision, scale } => {
                let storage = if *precision <= 9 {
                    32
                } else if *precision <= 18 {
                    64
                } else {
                    128
                };
                format!("DECIMAL{storage}({precision}, {scale})")
            }
            ColumnType::Array(inner) => format!("ARRAY<{}>", inner.sql_name()),
            other => other.desc_name().to_uppercase(),
        }
    }

    /// `DATA_TYPE` in information_schema.columns.
    pub fn info_schema_data_type(&self) -> String {
        match self {
            ColumnType::Boolean => "tinyint".into(),
            ColumnType::LargeInt => "bigint unsigned".into(),
            ColumnType::Decimal { .. } => "decimal".into(),
            ColumnType::Char(_) => "char".into(),
            ColumnType::Varchar(_) => "varchar".into(),
            ColumnType::Array(_) => "array".into(),
            other => other.desc_name(),
        }
    }

    /// `COLUMN_TYPE` in information_schema.columns.
    pub fn info_schema_column_type(&self) -> String {
        match self {
            ColumnType::Boolean => "tinyint(1)".into(),
            ColumnType::TinyInt => "tinyint(4)".into(),
            ColumnType::SmallInt => "smallint(6)".into(),
            ColumnType::Int => "int(11)".into(),
            ColumnType::BigInt => "bigint(20)".into(),
            ColumnType::LargeInt => "bigint(20) unsigned".into(),
            other => other.desc_name(),
        }
    }

    /// Whether StarRocks allows this type in a Primary Key (spec §6.2).
    pub fn allowed_in_primary_key(&self) -> bool {
        matches!(
            self,
            ColumnType::Boolean
                | ColumnType::TinyInt
                | ColumnType::SmallInt
                | ColumnType::Int
                | ColumnType::BigInt
                | ColumnType::LargeInt
                | ColumnType::Varchar(_)
                | ColumnType::Date
                | ColumnType::DateTime
        )
    }

    /// Fixed storage width used by the primary-key size rule (spec §9.9); `None` for strings.
    pub fn fixed_key_width(&self) -> Option<usize> {
        match self {
            ColumnType::Boolean | ColumnType::TinyInt => Some(1),
            ColumnType::SmallInt => Some(2),
            ColumnType::Int | ColumnType::Date => Some(4),
            ColumnType::BigInt | ColumnType::DateTime => Some(8),
            ColumnType::LargeInt => Some(16),
            _ => None,
        }
    }

    /// The type's "zero" value, used for NOT NULL columns without a default in partial updates.
    pub fn zero_value(&self) -> Value {
        match self {
            ColumnType::Boolean => Value::Bool(false),
            ColumnType::TinyInt
            | ColumnType::SmallInt
            | ColumnType::Int
            | ColumnType::BigInt
            | ColumnType::LargeInt => Value::Int(0),
            ColumnType::Float => Value::Float32(0.0),
            ColumnType::Double => Value::Float(0.0),
            ColumnType::Decimal { scale, .. } => Value::Decimal {
                unscaled: 0,
                scale: *scale,
            },
            ColumnType::Date => Value::Date(Date {
                year: 1970,
                month: 1,
                day: 1,
            }),
            ColumnType::DateTime => Value::DateTime(DateTime {
                date: Date {
                    year: 1970,
                    month: 1,
                    day: 1,
                },
                micros_of_day: 0,
            }),
            ColumnType::Char(_) | ColumnType::Varchar(_) => Value::Str(String::new()),
            ColumnType::Json => Value::Json("null".into()),
            ColumnType::Array(_) => Value::Array(Vec::new()),
            ColumnType::Varbinary => Value::Binary(Vec::new()),
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql_name())
    }
}

/// A calendar date (proleptic Gregorian), year 0..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, 0..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day, 1..=31.
    pub day: u8,
}

impl Date {
    /// Build a date, checking the calendar.
    pub fn new(year: u32, month: u32, day: u32) -> Option<Date> {
        if year > 9999 || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            year: year as u16,
            month: month as u8,
            day: day as u8,
        })
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap {
                29
            } else {
                28
            }
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A DATETIME value with microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// The date part.
    pub date: Date,
    /// Microseconds since midnight.
    pub micros_of_day: u64,
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.micros_of_day / 1_000_000;
        let micros = self.micros_of_day % 1_000_000;
        write!(
            f,
            "{} {:02}:{:02}:{:02}",
            self.date,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

/// A stored cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// Any integer type (TINYINT..LARGEINT).
    Int(i128),
    /// DOUBLE (and untyped floating-point results of expressions).
    Float(f64),
    /// FLOAT, stored as f32 as StarRocks does.
    Float32(f32),
    /// DECIMAL as an unscaled integer and its scale.
    Decimal {
        /// The value times 10^scale.
        unscaled: i128,
        /// Digits after the point.
        scale: u8,
    },
    /// DATE.
    Date(Date),
    /// DATETIME.
    DateTime(DateTime),
    /// CHAR / VARCHAR / STRING.
    Str(String),
    /// JSON, kept as minified JSON text.
    Json(String),
    /// ARRAY.
    Array(Vec<Value>),
    /// VARBINARY.
    Binary(Vec<u8>),
}

impl Value {
    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) | Value::Float32(_) => 3,
            Value::Decimal { .. } => 4,
            Value::Date(_) => 5,
            Value::DateTime(_) => 6,
            Value::Str(_) => 7,
            Value::Json(_) => 8,
            Value::Array(_) => 9,
            Value::Binary(_) => 10,
        }
    }

    /// A total order: NULL first, then by value. Numbers of different kinds compare numerically.
    pub fn cmp_total(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::DateTime(a), Value::DateTime(b)) => a.cmp(b),
            (Value::Date(a), Value::DateTime(b)) => DateTime {
                date: *a,
                micros_of_day: 0,
            }
            .cmp(b),
            (Value::DateTime(a), Value::Date(b)) => a.cmp(&DateTime {
                date: *b,
                micros_of_day: 0,
            }),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Json(a), Value::Json(b)) => a.cmp(b),
            (Value::Binary(a), Value::Binary(b)) => a.cmp(b),
            (Value::Array(a), Value::Array(b)) => {
                for (x, y) in a.iter().zip(b.iter()) {
                    let ord = x.cmp_total(y);
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value::Decimal { unscaled, scale }, Value::Decimal { .. })
            | (Value::Decimal { unscaled, scale }, Value::Int(_))
            | (Value::Int(_), Value::Decimal { unscaled, scale }) => {
                let _ = (unscaled, scale);
                self.as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&other.as_f64().unwrap_or(0.0))
            }
            _ => match (self.as_f64(), other.as_f64()) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                _ => self.rank().cmp(&other.rank()),
            },
        }
    }

    /// The numeric value as f64, if the value is a number or a boolean.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Float32(f) => Some(f64::from(*f)),
            Value::Decimal { unscaled, scale } => {
                Some(*unscaled as f64 / 10f64.powi(i32::from(*scale)))
            }
            _ => None,
        }
    }

    /// The value as StarRocks prints it in a result set (`None` for NULL).
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => crate::float_text::format_f64(*f),
            Value::Float32(f) => crate::float_text::format_f32(*f),
            Value::Decimal { unscaled, scale } => format_decimal(*unscaled, *scale),
            Value::Date(d) => d.to_string(),
            Value::DateTime(d) => d.to_string(),
            Value::Str(s) => s.clone(),
            Value::Json(j) => j.clone(),
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        Value::Null => "null".to_string(),
                        Value::Str(s) | Value::Json(s) => {
                            serde_json::to_string(s).unwrap_or_default()
                        }
                        Value::Date(_) | Value::DateTime(_) => {
                            format!("\"{}\"", v.to_text().unwrap_or_default())
                        }
                        other => other.to_text().unwrap_or_default(),
                    })
                    .collect();
                format!("[{}]", parts.join(","))
            }
            Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        })
    }
}

/// Format an unscaled decimal with exactly `scale` fractional digits.
pub fn format_decimal(unscaled: i128, scale: u8) -> String {
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let text = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

/// A primary key: the key column values in key order, ordered with [`Value::cmp_total`].
/// A one-column key is stored inline (no allocation per row).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// A single-column key.
    One(Value),
    /// A composite key.
    Many(Vec<Value>),
}

impl Key {
    /// Build a key from the key columns' values.
    pub fn new(values: &[Value]) -> Key {
        match values {
            [single] => Key::One(single.clone()),
            many => Key::Many(many.to_vec()),
        }
    }

    /// The key columns' values.
    pub fn values(&self) -> &[Value] {
        match self {
            Key::One(v) => std::slice::from_ref(v),
            Key::Many(vs) => vs,
        }
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        if let (Key::One(Value::Int(a)), Key::One(Value::Int(b))) = (self, other) {
            return a.cmp(b);
        }
        let (a, b) = (self.values(), other.values());
        for (x, y) in a.iter().zip(b.iter()) {
            let ord = x.cmp_total(y);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.len().cmp(&b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_formats_with_scale() {
        assert_eq!(format_decimal(125, 2), "1.25");
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(3, 0), "3");
    }

    #[test]
    fn datetime_prints_micros_only_when_present() {
        let date = Date::new(2024, 1, 1).unwrap();
        let plain = DateTime {
            date,
            micros_of_day: 36_000_000_000,
        };
        assert_eq!(plain.to_string(), "2024-01-01 10:00:00");
        let fractional = DateTime {
            date,
            micros_of_day: 36_000_000_001,
        };
        assert_eq!(fractional.to_string(), "2024-01-01 10:00:00.000001");
    }

    #[test]
    fn calendar_rejects_feb_30() {
        assert!(Date::new(2024, 2, 30).is_none());
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(2023, 2, 29).is_none());
    }
}
