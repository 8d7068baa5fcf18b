//! The `DEFAULT` of a column added by a schema change: how rows that existed before
//! `ADD COLUMN` get PostgreSQL's value in StarRocks.
//!
//! StarRocks gives existing rows an added column's DEFAULT (the schema change fills them, or
//! fast schema evolution reads the default for segments written before it), so
//! `ADD COLUMN c INT NULL DEFAULT "7"` makes StarRocks agree with PostgreSQL's missing value
//! (see [`ExistingRows`]). The value goes through the column's type map, like a streamed value,
//! and then must pass StarRocks's own check of a DEFAULT (`ColumnDef.validateDefaultValue`,
//! docs/starrocks-spec.md §6.3):
//! * integers, LARGEINT, DECIMAL (within precision and scale), DATE, DATETIME, VARCHAR/CHAR
//!   (within the length), BOOLEAN (`true`/`false`/`1`/`0`) take a string default;
//! * FLOAT takes one only when the value is a FLOAT (no precision lost), FLOAT and DOUBLE never
//!   NaN or ±Infinity;
//! * JSON, VARBINARY and the complex types (ARRAY, MAP, STRUCT) take none.
//!
//! When the value cannot be given, the column is added without DEFAULT and the caller warns:
//! those rows stay NULL in StarRocks until they change or the table is re-snapshotted.

use crate::schema::type_map::{ColumnMapping, LossyPolicy, StarRocksType, ValueEncoding};
use crate::schema::ExistingRows;

use super::values::{encode_value, Encoded};

/// Why existing rows of an added column cannot get their PostgreSQL value in StarRocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfilled {
    /// The metric label: `unknown_value`, `default_not_supported`, `not_representable`.
    pub reason: &'static str,
    pub detail: String,
}

/// The SQL `DEFAULT …` literal to add the column with (`None`: no default, existing rows are
/// NULL in PostgreSQL too), or why there is none to give.
pub fn added_column_default(
    existing_rows: Option<&ExistingRows>,
    mapping: &ColumnMapping,
) -> Result<Option<String>, Unfilled> {
    let text = match existing_rows {
        None | Some(ExistingRows::Null) => return Ok(None),
        Some(ExistingRows::Unknown(why)) => {
            return Err(Unfilled {
                reason: "unknown_value",
                detail: why.clone(),
            })
        }
        Some(ExistingRows::Value(text)) => text,
    };
    if !takes_default(&mapping.starrocks_type) {
        return Err(Unfilled {
            reason: "default_not_supported",
            detail: format!(
                "StarRocks takes no DEFAULT for a {} column",
                mapping.starrocks_type.to_sql()
            ),
        });
    }
    let not_representable = |why: String| Unfilled {
        reason: "not_representable",
        detail: why,
    };
    let mut json = Vec::new();
    match encode_value(
        &mapping.encoding,
        text.as_bytes(),
        LossyPolicy::Error,
        &mut json,
    ) {
        Ok(Encoded::Exact) => {}
        Ok(Encoded::Altered(reason)) | Err(reason) => {
            return Err(not_representable(format!(
                "the default {text:?} cannot be stored exactly ({reason})"
            )))
        }
    }
    let value = default_text(&json).ok_or_else(|| {
        not_representable(format!("the default {text:?} has no StarRocks literal"))
    })?;
    let value = match mapping.encoding {
        ValueEncoding::Float => {
            check_float_default(&value, &mapping.starrocks_type).map_err(not_representable)?;
            value
        }
        ValueEncoding::Decimal { scale, .. } => trim_decimal_zeros(value, scale),
        _ => value,
    };
    Ok(Some(sql_string(&value)))
}

/// StarRocks's rule: scalar types but JSON and VARBINARY.
fn takes_default(starrocks_type: &StarRocksType) -> bool {
    !matches!(
        starrocks_type,
        StarRocksType::Json | StarRocksType::Array(_)
    )
}

/// The encoder's JSON token as the text of a StarRocks literal: a string's content, a number
/// or `true`/`false` as written.
fn default_text(json: &[u8]) -> Option<String> {
    if json.first() == Some(&b'"') {
        return serde_json::from_slice::<String>(json).ok();
    }
    let token = std::str::from_utf8(json).ok()?;
    (!token.is_empty() && !token.starts_with(['[', '{'])).then(|| token.to_string())
}

/// NaN and ±Infinity never; a FLOAT default must be a FLOAT value (StarRocks's FloatLiteral
/// types a value as FLOAT only when its shortest float and double forms agree).
fn check_float_default(value: &str, starrocks_type: &StarRocksType) -> Result<(), String> {
    let parsed: f64 = value
        .parse()
        .map_err(|_| format!("the default {value:?} is not a number"))?;
    if !parsed.is_finite() {
        return Err(format!(
            "StarRocks takes no {value} as a DEFAULT (NaN and infinities are refused)"
        ));
    }
    if *starrocks_type == StarRocksType::Float
        && format!("{}", parsed as f32) != format!("{parsed}")
    {
        return Err(format!(
            "StarRocks refuses the FLOAT default {value}: it would lose precision"
        ));
    }
    Ok(())
}

/// StarRocks counts trailing zeros in a DECIMAL default's scale (`1.500` does not fit
/// DECIMAL(38,2)); the encoder already checked the digits it drops are zeros.
fn trim_decimal_zeros(mut value: String, scale: u8) -> String {
    if let Some(point) = value.find('.') {
        while value.len() - point - 1 > usize::from(scale) && value.ends_with('0') {
            value.pop();
        }
        if value.ends_with('.') {
            value.pop();
        }
    }
    value
}

/// A StarRocks single-quoted string literal (backslash escapes, as in MySQL).
fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::type_map::{map_pg_type, TypeMapOptions};

    fn default_of(
        type_oid: u32,
        type_modifier: i32,
        value: &str,
    ) -> Result<Option<String>, Unfilled> {
        let mapping = map_pg_type(type_oid, type_modifier, &TypeMapOptions::default()).unwrap();
        added_column_default(Some(&ExistingRows::Value(value.into())), &mapping)
    }

    #[test]
    fn defaults_go_through_the_type_map() {
        // int4, numeric(10,2), bool, text, timestamptz, date, varchar(5), float8
        assert_eq!(default_of(23, -1, "7"), Ok(Some("'7'".into())));
        assert_eq!(
            default_of(1700, (10 << 16) + 2 + 4, "12.50"),
            Ok(Some("'12.50'".into()))
        );
        assert_eq!(default_of(16, -1, "t"), Ok(Some("'true'".into())));
        assert_eq!(
            default_of(25, -1, "it's a \\ \"x\""),
            Ok(Some("'it\\'s a \\\\ \"x\"'".into()))
        );
        assert_eq!(
            default_of(1184, -1, "2024-03-01 10:00:00+02"),
            Ok(Some("'2024-03-01 08:00:00'".into()))
        );
        assert_eq!(
            default_of(1082, -1, "2024-03-01"),
            Ok(Some("'2024-03-01'".into()))
        );
        assert_eq!(default_of(1043, 5 + 4, "héllo"), Ok(Some("'héllo'".into())));
        assert_eq!(default_of(701, -1, "0.1"), Ok(Some("'0.1'".into())));
    }

    #[test]
    fn no_default_and_null_defaults_add_a_plain_column() {
        let mapping = map_pg_type(23, -1, &TypeMapOptions::default()).unwrap();
        assert_eq!(added_column_default(None, &mapping), Ok(None));
        assert_eq!(
            added_column_default(Some(&ExistingRows::Null), &mapping),
            Ok(None)
        );
    }

    #[test]
    fn what_starrocks_cannot_take_is_reported_not_guessed() {
        let reason = |result: Result<Option<String>, Unfilled>| result.unwrap_err().reason;
        // jsonb and int[]: StarRocks takes no DEFAULT for JSON and ARRAY columns.
        assert_eq!(
            reason(default_of(3802, -1, "{\"a\": 1}")),
            "default_not_supported"
        );
        assert_eq!(
            reason(default_of(1007, -1, "{1,2}")),
            "default_not_supported"
        );
        // float8 NaN, a date StarRocks cannot hold, a numeric beyond its scale.
        assert_eq!(reason(default_of(701, -1, "NaN")), "not_representable");
        assert_eq!(
            reason(default_of(1082, -1, "infinity")),
            "not_representable"
        );
        assert_eq!(
            reason(default_of(1700, (5 << 16) + 1 + 4, "1.25")),
            "not_representable"
        );
        let mapping = map_pg_type(23, -1, &TypeMapOptions::default()).unwrap();
        let unknown = ExistingRows::Unknown("volatile".into());
        assert_eq!(
            reason(added_column_default(Some(&unknown), &mapping)),
            "unknown_value"
        );
    }

    #[test]
    fn decimal_defaults_lose_only_zeros_past_the_scale() {
        assert_eq!(trim_decimal_zeros("1.50000".into(), 2), "1.50");
        assert_eq!(trim_decimal_zeros("1.000".into(), 0), "1");
        assert_eq!(trim_decimal_zeros("100".into(), 0), "100");
        // Unconstrained numeric maps to DECIMAL(38,9).
        assert_eq!(
            default_of(1700, -1, "2.500000000000"),
            Ok(Some("'2.500000000'".into()))
        );
    }

    #[test]
    fn float_defaults_must_be_floats() {
        assert_eq!(check_float_default("0.1", &StarRocksType::Float), Ok(()));
        assert_eq!(check_float_default("1.5", &StarRocksType::Float), Ok(()));
        assert!(check_float_default("0.1000000001", &StarRocksType::Float).is_err());
        assert_eq!(
            check_float_default("0.1000000001", &StarRocksType::Double),
            Ok(())
        );
        assert!(check_float_default("Infinity", &StarRocksType::Double).is_err());
    }
}
