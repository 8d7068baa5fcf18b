//! Which column DEFAULTs StarRocks accepts, checked when a column is defined (CREATE TABLE,
//! ALTER TABLE ADD/MODIFY COLUMN), as the FE's `ColumnDef.validateDefaultValue` does (spec §6.3).
//!
//! * Complex types (ARRAY): `Default value for complex type '<T>' not supported`.
//! * JSON, VARBINARY: `Cannot add default value for type '<T>'`.
//! * Integers: parsed as a number of the type's range; LARGEINT likewise.
//! * FLOAT: a finite value that a FLOAT holds without loss (`FloatLiteral` types it FLOAT only
//!   when its shortest float and double forms agree); DOUBLE: finite.
//! * DECIMAL: the literal's own precision and scale must fit (trailing zeros count).
//! * DATE/DATETIME: a parseable date or date-time.
//! * CHAR/VARCHAR: at most the declared length in UTF-16 code units (Java `String.length()`,
//!   not bytes).
//! * BOOLEAN: `true`/`false` (any case) or `1`/`0`.
//! * `CURRENT_TIMESTAMP` (the function `now()`): DATETIME only.
//!
//! Existing rows read an added column's DEFAULT (`catalog::apply_alter`).

use crate::catalog::Column;
use crate::types::ColumnType;

/// `Ok` when StarRocks accepts the column's DEFAULT; `Err` is the analyzer's detail text,
/// `Invalid default value for '<c>': <why>`.
pub fn validate_default(column: &Column) -> Result<(), String> {
    let Some(value) = &column.default else {
        return Ok(());
    };
    check(value, &column.ty)
        .map_err(|why| format!("Invalid default value for '{}': {why}", column.name))
}

fn check(value: &str, ty: &ColumnType) -> Result<(), String> {
    if value.eq_ignore_ascii_case("CURRENT_TIMESTAMP") {
        return match ty {
            ColumnType::DateTime => Ok(()),
            other => Err(format!(
                "Default function now() for type {other} is not supported"
            )),
        };
    }
    match ty {
        ColumnType::Array(_) => Err(format!(
            "Default value for complex type '{ty}' not supported"
        )),
        ColumnType::Json | ColumnType::Varbinary => {
            Err(format!("Cannot add default value for type '{ty}'"))
        }
        ColumnType::TinyInt
        | ColumnType::SmallInt
        | ColumnType::Int
        | ColumnType::BigInt
        | ColumnType::LargeInt => {
            let number: i128 = value
                .parse()
                .map_err(|_| format!("Invalid number format: {value}"))?;
            let (min, max) = crate::convert::int_range(ty);
            if number < min || number > max {
                return Err(format!("Number out of range[{value}]. type: {ty}"));
            }
            Ok(())
        }
        ColumnType::Float | ColumnType::Double => check_float(value, ty),
        ColumnType::Decimal { precision, scale } => check_decimal(value, *precision, *scale, ty),
        ColumnType::Date | ColumnType::DateTime => crate::convert::parse_datetime(value)
            .map(|_| ())
            .ok_or_else(|| format!("date literal [{value}] is invalid")),
        ColumnType::Char(length) | ColumnType::Varchar(length) => {
            if value.encode_utf16().count() > *length as usize {
                return Err(format!("Default value is too long: {value}"));
            }
            Ok(())
        }
        ColumnType::Boolean => {
            let trimmed = value.trim();
            if trimmed.eq_ignore_ascii_case("true")
                || trimmed.eq_ignore_ascii_case("false")
                || trimmed == "1"
                || trimmed == "0"
            {
                Ok(())
            } else {
                Err(format!("Invalid BOOLEAN literal: {value}"))
            }
        }
    }
}

fn check_float(value: &str, ty: &ColumnType) -> Result<(), String> {
    // Java's `new Double(s)` takes what Rust's parser takes, plus the same NaN/Infinity words.
    let parsed: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("Invalid floating-point literal: {value}"))?;
    if !parsed.is_finite() {
        let java = if parsed.is_nan() {
            "NaN"
        } else if parsed > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        return Err(format!("Invalid literal:{java}"));
    }
    if *ty == ColumnType::Float && format!("{}", parsed as f32) != format!("{parsed}") {
        return Err(format!("Default value will loose precision: {value}"));
    }
    Ok(())
}

/// `DecimalLiteral.checkPrecisionAndScale`: the literal's scale (digits after the point,
/// trailing zeros included) and precision must not exceed the column's.
fn check_decimal(value: &str, precision: u8, scale: u8, ty: &ColumnType) -> Result<(), String> {
    let digits = value.trim().trim_start_matches(['-', '+']);
    let (integer, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let well_formed = !(integer.is_empty() && fraction.is_empty())
        && integer.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(format!("Invalid decimal literal: {value}"));
    }
    let real_scale = fraction.len();
    let integer_digits = integer.trim_start_matches('0').len();
    let real_precision = (integer_digits + real_scale).max(1);
    if real_precision > usize::from(precision) || real_scale > usize::from(scale) {
        return Err(format!(
            "Type {ty} is too narrow to hold the DecimalLiteral '{value}' (precision={real_precision}, scale={real_scale})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(ty: ColumnType, default: &str) -> Column {
        Column {
            name: "c".into(),
            column_id: "c".into(),
            ty,
            nullable: true,
            default: Some(default.into()),
            comment: String::new(),
        }
    }

    #[test]
    fn scalar_defaults_are_checked_like_the_fe() {
        assert_eq!(validate_default(&column(ColumnType::Int, "7")), Ok(()));
        assert!(validate_default(&column(ColumnType::TinyInt, "300"))
            .unwrap_err()
            .contains("Number out of range[300]"));
        assert_eq!(
            validate_default(&column(ColumnType::Boolean, "TRUE")),
            Ok(())
        );
        assert!(validate_default(&column(ColumnType::Boolean, "t")).is_err());
        assert_eq!(validate_default(&column(ColumnType::Float, "0.1")), Ok(()));
        assert_eq!(
            validate_default(&column(ColumnType::Float, "0.1000000001")),
            Err(
                "Invalid default value for 'c': Default value will loose precision: 0.1000000001"
                    .into()
            )
        );
        assert!(validate_default(&column(ColumnType::Double, "NaN")).is_err());
        let decimal = ColumnType::Decimal {
            precision: 5,
            scale: 2,
        };
        assert_eq!(validate_default(&column(decimal.clone(), "123.45")), Ok(()));
        assert!(validate_default(&column(decimal.clone(), "1.250")).is_err());
        assert!(validate_default(&column(decimal, "12345.6")).is_err());
        assert_eq!(
            validate_default(&column(ColumnType::DateTime, "2024-03-01 08:00:00.5")),
            Ok(())
        );
        assert!(validate_default(&column(ColumnType::Date, "soon")).is_err());
        // Length in UTF-16 units: 3 characters fit a VARCHAR(3) whatever their bytes.
        assert_eq!(
            validate_default(&column(ColumnType::Varchar(3), "héé")),
            Ok(())
        );
        assert!(validate_default(&column(ColumnType::Varchar(3), "abcd")).is_err());
    }

    #[test]
    fn json_binary_and_complex_types_take_no_default() {
        assert_eq!(
            validate_default(&column(ColumnType::Json, "{}")),
            Err("Invalid default value for 'c': Cannot add default value for type 'JSON'".into())
        );
        assert!(validate_default(&column(ColumnType::Varbinary, "ab")).is_err());
        assert_eq!(
            validate_default(&column(ColumnType::Array(Box::new(ColumnType::Int)), "[]")),
            Err("Invalid default value for 'c': Default value for complex type 'ARRAY<INT>' not supported".into())
        );
        assert!(validate_default(&column(ColumnType::Date, "CURRENT_TIMESTAMP")).is_err());
        assert_eq!(
            validate_default(&column(ColumnType::DateTime, "CURRENT_TIMESTAMP")),
            Ok(())
        );
    }
}
