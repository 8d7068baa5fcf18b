//! PostgreSQL column types → StarRocks column types, and how each value is converted.
//!
//! One function, [`map_pg_type`], decides for a column (type OID + `atttypmod`) both the
//! StarRocks type used by `CREATE TABLE`/compatibility checks and the [`ValueEncoding`] the
//! Stream Load encoder applies to every text value of that column. Keeping both in one
//! [`ColumnMapping`] means the table we create and the JSON we send can never disagree.
//!
//! Rules (DESIGN §3, the table in docs/type-mapping.md):
//! * Sizes are **bytes** in StarRocks and characters in PostgreSQL: `varchar(n)` becomes
//!   `VARCHAR(min(4n, 1048576))` (a UTF-8 character is at most 4 bytes).
//! * Unbounded text (`text`, `varchar`, `bpchar` without length, and every type stored as its text
//!   form without a known bound) becomes `VARCHAR(1048576)`, the largest StarRocks string, rather
//!   than `STRING` (which is only `VARCHAR(65533)`): no value under 1 MiB is ever lossy.
//! * `numeric(p,s)` that fits (p ≤ 38 after normalising PG15's negative / larger-than-p scales)
//!   is `DECIMAL` exactly; wider or unconstrained numeric is `DECIMAL(38,9)` with loss detection
//!   by default ([`WideNumeric::Decimal`]), or `VARCHAR` holding the exact text.
//! * Domains: pgoutput and the catalog give the domain's own OID; [`TypeMapOptions::domains`]
//!   (read from `pg_type` at start) maps it to the base type and typmod, which decide.
//! * User types (enums, composites, ranges of user types, extension types like citext): their
//!   OIDs are not known here; [`UnknownTypes::Text`] (default) stores their text form in
//!   `VARCHAR(1048576)`, [`UnknownTypes::Reject`] reports them as unsupported. A caller that knows
//!   more (an enum, an array of a user type) can use [`ColumnMapping::enum_label`] and
//!   [`ColumnMapping::array_of`].
//! * Pseudo-types (`record`, `any…`, `void`, OID 0) cannot be stored and are unsupported.

use serde::{Deserialize, Serialize};
use std::fmt;

/// StarRocks's largest VARCHAR, in bytes.
pub const MAX_VARCHAR_BYTES: u32 = 1_048_576;
/// `STRING` in StarRocks is `VARCHAR(65533)`.
pub const STRING_BYTES: u32 = 65_533;
/// StarRocks's largest DECIMAL precision.
pub const MAX_DECIMAL_PRECISION: u8 = 38;
/// The DECIMAL used for numeric that does not fit a declared DECIMAL (DESIGN §3).
pub const WIDE_DECIMAL: (u8, u8) = (38, 9);
/// StarRocks refuses JSON values larger than this (`JSON string exceed maximum length 16MB`).
pub const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;

/// A StarRocks column type, as far as dbmazz creates and checks them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StarRocksType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    /// 128-bit signed integer.
    LargeInt,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    DateTime,
    /// Length in bytes, 1..=1048576.
    Varchar {
        bytes: u32,
    },
    /// `VARCHAR(65533)`.
    String,
    Json,
    Array(Box<StarRocksType>),
}

impl StarRocksType {
    /// The type as written in StarRocks DDL: `DECIMAL(12,2)`, `VARCHAR(400)`, `ARRAY<INT>`.
    pub fn to_sql(&self) -> String {
        match self {
            StarRocksType::Boolean => "BOOLEAN".into(),
            StarRocksType::TinyInt => "TINYINT".into(),
            StarRocksType::SmallInt => "SMALLINT".into(),
            StarRocksType::Int => "INT".into(),
            StarRocksType::BigInt => "BIGINT".into(),
            StarRocksType::LargeInt => "LARGEINT".into(),
            StarRocksType::Float => "FLOAT".into(),
            StarRocksType::Double => "DOUBLE".into(),
            StarRocksType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            StarRocksType::Date => "DATE".into(),
            StarRocksType::DateTime => "DATETIME".into(),
            StarRocksType::Varchar { bytes } => format!("VARCHAR({bytes})"),
            StarRocksType::String => "STRING".into(),
            StarRocksType::Json => "JSON".into(),
            StarRocksType::Array(element) => format!("ARRAY<{}>", element.to_sql()),
        }
    }
}

impl StarRocksType {
    /// Reads a scalar type as [`StarRocksType::to_sql`] writes it or StarRocks's `DESC` shows
    /// it (`DECIMAL(12,2)`, `decimal(12,2)`, `decimal64(12, 2)`, `varchar(64)`, `bigint`):
    /// the types a column can be widened between. `STRING` reads as `VARCHAR(65533)`, which
    /// it is. `None` for every other type.
    pub fn parse_scalar(sql: &str) -> Option<StarRocksType> {
        use StarRocksType as T;
        let text = sql.replace(' ', "").to_ascii_lowercase();
        let (name, args) = match text.split_once('(') {
            Some((name, rest)) => (name, Some(rest.strip_suffix(')')?)),
            None => (text.as_str(), None),
        };
        Some(match (name, args) {
            ("tinyint", None) => T::TinyInt,
            ("smallint", None) => T::SmallInt,
            ("int" | "integer", None) => T::Int,
            ("bigint", None) => T::BigInt,
            ("largeint", None) => T::LargeInt,
            ("float", None) => T::Float,
            ("double", None) => T::Double,
            ("string", None) => T::Varchar { bytes: 65533 },
            ("varchar", Some(bytes)) => T::Varchar {
                bytes: bytes.parse().ok()?,
            },
            ("decimal" | "decimal32" | "decimal64" | "decimal128", Some(args)) => {
                let (precision, scale) = args.split_once(',')?;
                T::Decimal {
                    precision: precision.parse().ok()?,
                    scale: scale.parse().ok()?,
                }
            }
            _ => return None,
        })
    }
}

impl fmt::Display for StarRocksType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sql())
    }
}

/// What to do with a value StarRocks cannot store exactly (`sink.starrocks.lossy_policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossyPolicy {
    /// Store NULL, count it and log the key (default: one odd value never halts replication).
    #[default]
    Null,
    /// Stop with an error naming table, column, reason and key.
    Error,
    /// Strings: cut to the column's byte size on a character boundary. Other types: as `Null`.
    Truncate,
}

/// Where numeric without a fitting precision goes (`sink.starrocks.wide_numeric`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WideNumeric {
    /// `DECIMAL(38,9)` (or `DECIMAL(38,s)` for a declared scale s < 9); values that do not fit
    /// (more than 29 integer digits, nonzero digits past the scale, NaN, ±Infinity) are lossy.
    #[default]
    Decimal,
    /// `VARCHAR(1048576)` with the exact text (including `NaN` / `Infinity`).
    String,
}

/// What to do with a type OID this module does not know (user-defined types).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownTypes {
    /// Store the text output form in `VARCHAR(1048576)`.
    #[default]
    Text,
    /// Report the column as unsupported.
    Reject,
}

/// Options of the type map (from `[sink.starrocks]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeMapOptions {
    pub lossy_policy: LossyPolicy,
    pub wide_numeric: WideNumeric,
    pub unknown_types: UnknownTypes,
    /// The source database's domains: domain OID → base type OID and typmod (pgoutput and
    /// the catalog give a column's domain OID; its values are the base type's).
    pub domains: Domains,
}

/// Domain OID → (base type OID, base typmod), read from `pg_type` (domains over domains
/// resolved to the final base type).
pub type Domains = std::sync::Arc<std::collections::BTreeMap<u32, (u32, i32)>>;

/// How the encoder turns one PostgreSQL text value into a JSON value. Carries the limits of
/// the StarRocks type, so the encoder needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValueEncoding {
    /// `t`/`f` → `true`/`false`.
    Bool,
    /// Decimal integer text in `[min, max]` → a JSON number (copied, not re-formatted).
    Integer { min: i128, max: i128 },
    /// float4/float8 text → a JSON number; `NaN`/`Infinity`/`-Infinity` → those JSON strings.
    Float,
    /// numeric text → an exact JSON number that fits `DECIMAL(precision, scale)`.
    Decimal { precision: u8, scale: u8 },
    /// `YYYY-MM-DD[ BC]` → `"YYYY-MM-DD"` within 0000-01-01..9999-12-31.
    Date,
    /// `timestamp` text → `"YYYY-MM-DD HH:MM:SS[.ffffff]"`.
    Timestamp,
    /// `timestamptz` text (any offset) → the UTC wall time, as for `Timestamp`.
    TimestampTz,
    /// Any text → a JSON string of at most `max_bytes` UTF-8 bytes.
    Text { max_bytes: u32 },
    /// bytea text (hex `\x…` or escape format) → a lowercase hex JSON string (no `\x`).
    ByteaHex { max_bytes: u32 },
    /// json/jsonb text → embedded as JSON (checked, at most 16 MiB).
    Json,
    /// PG array literal → a JSON array of elements encoded by `element`. `delimiter` is the
    /// element type's `typdelim` (`,` for all but `box`).
    Array {
        element: Box<ValueEncoding>,
        delimiter: u8,
    },
}

/// A column's StarRocks type, value conversion and lossy policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnMapping {
    pub starrocks_type: StarRocksType,
    pub encoding: ValueEncoding,
    pub lossy_policy: LossyPolicy,
}

impl ColumnMapping {
    fn new(starrocks_type: StarRocksType, encoding: ValueEncoding, policy: LossyPolicy) -> Self {
        ColumnMapping {
            starrocks_type,
            encoding,
            lossy_policy: policy,
        }
    }

    /// A string column of `bytes` bytes (clamped to 1..=1048576) holding the text form.
    pub fn text(bytes: u32, policy: LossyPolicy) -> Self {
        let bytes = bytes.clamp(1, MAX_VARCHAR_BYTES);
        ColumnMapping::new(
            StarRocksType::Varchar { bytes },
            ValueEncoding::Text { max_bytes: bytes },
            policy,
        )
    }

    /// An enum column (labels are at most 63 bytes): `VARCHAR(256)`.
    pub fn enum_label(policy: LossyPolicy) -> Self {
        ColumnMapping::text(256, policy)
    }

    /// A one-dimensional array of `element` (for arrays of user types whose element the caller
    /// resolved). Arrays of arrays are not built here: PostgreSQL does not record dimensions in
    /// the type, so values with more dimensions than the mapping are lossy.
    pub fn array_of(element: ColumnMapping) -> Self {
        ColumnMapping::new(
            StarRocksType::Array(Box::new(element.starrocks_type)),
            ValueEncoding::Array {
                element: Box::new(element.encoding),
                delimiter: b',',
            },
            element.lossy_policy,
        )
    }
}

/// [`UnsupportedType::reason`] of a type refused by `unknown_types = "reject"`.
pub const UNKNOWN_TYPE_REJECTED: &str = "a type dbmazz does not know (user-defined: enum, \
     composite, extension type) with sink.starrocks.unknown_types = \"reject\"";

/// A type dbmazz will not replicate, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PostgreSQL type OID {type_oid} is not supported: {reason}")]
pub struct UnsupportedType {
    pub type_oid: u32,
    pub reason: &'static str,
}

/// Well-known type OIDs (`pg_type.dat`), stable across PostgreSQL versions.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const REGPROC: u32 = 24;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const TID: u32 = 27;
    pub const XID: u32 = 28;
    pub const CID: u32 = 29;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const POINT: u32 = 600;
    pub const LSEG: u32 = 601;
    pub const PATH: u32 = 602;
    pub const BOX: u32 = 603;
    pub const POLYGON: u32 = 604;
    pub const LINE: u32 = 628;
    pub const CIDR: u32 = 650;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const CIRCLE: u32 = 718;
    pub const MACADDR8: u32 = 774;
    pub const MONEY: u32 = 790;
    pub const MACADDR: u32 = 829;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const BIT: u32 = 1560;
    pub const VARBIT: u32 = 1562;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const PG_LSN: u32 = 3220;
    pub const TSVECTOR: u32 = 3614;
    pub const TSQUERY: u32 = 3615;
    pub const JSONB: u32 = 3802;
    pub const JSONPATH: u32 = 4072;
    pub const XID8: u32 = 5069;
}

/// The element type OID of a built-in array type, or `None`.
pub fn array_element_oid(array_oid: u32) -> Option<u32> {
    Some(match array_oid {
        1000 => oid::BOOL,
        1001 => oid::BYTEA,
        1002 => oid::CHAR,
        1003 => oid::NAME,
        1005 => oid::INT2,
        1007 => oid::INT4,
        1009 => oid::TEXT,
        1014 => oid::BPCHAR,
        1015 => oid::VARCHAR,
        1016 => oid::INT8,
        1017 => oid::POINT,
        1018 => oid::LSEG,
        1019 => oid::PATH,
        1020 => oid::BOX,
        1021 => oid::FLOAT4,
        1022 => oid::FLOAT8,
        1027 => oid::POLYGON,
        1028 => oid::OID,
        629 => oid::LINE,
        719 => oid::CIRCLE,
        651 => oid::CIDR,
        775 => oid::MACADDR8,
        791 => oid::MONEY,
        1040 => oid::MACADDR,
        1041 => oid::INET,
        1115 => oid::TIMESTAMP,
        1182 => oid::DATE,
        1183 => oid::TIME,
        1185 => oid::TIMESTAMPTZ,
        1187 => oid::INTERVAL,
        1231 => oid::NUMERIC,
        1270 => oid::TIMETZ,
        1561 => oid::BIT,
        1563 => oid::VARBIT,
        143 => oid::XML,
        199 => oid::JSON,
        2951 => oid::UUID,
        3221 => oid::PG_LSN,
        3643 => oid::TSVECTOR,
        3645 => oid::TSQUERY,
        3807 => oid::JSONB,
        4073 => oid::JSONPATH,
        271 => oid::XID8,
        1011 => oid::XID,
        1012 => oid::CID,
        _ => return None,
    })
}

/// Pseudo-types and OIDs that cannot be a stored column's type.
fn pseudo_type(type_oid: u32) -> bool {
    matches!(
        type_oid,
        0 | 705 | 2249 | 2275..=2283 | 2776 | 3115 | 3310 | 3500 | 3831 | 4537 | 4538 | 5077..=5080
    )
}

const VARHDRSZ: i32 = 4;

/// `varchar(n)`, `char(n)`: the declared length, or `None` when unbounded.
fn declared_length(type_modifier: i32) -> Option<u32> {
    (type_modifier >= VARHDRSZ).then(|| (type_modifier - VARHDRSZ) as u32)
}

/// `bit(n)`, `varbit(n)`: the declared number of bits. Unlike the character types their
/// `atttypmod` is `n` itself, without the varlena header (`anybit_typmodin`).
fn declared_bits(type_modifier: i32) -> Option<u32> {
    (type_modifier > 0).then_some(type_modifier as u32)
}

/// `numeric(p,s)` from `atttypmod`; the scale is 11-bit signed since PostgreSQL 15.
pub fn numeric_precision_scale(type_modifier: i32) -> Option<(i32, i32)> {
    if type_modifier < VARHDRSZ {
        return None;
    }
    let packed = type_modifier - VARHDRSZ;
    let precision = (packed >> 16) & 0xffff;
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    Some((precision, scale))
}

/// The StarRocks DECIMAL holding every value of `numeric(p,s)`, if one exists.
fn exact_decimal(precision: i32, scale: i32) -> Option<(u8, u8)> {
    // Digits left of the point: p - s (may be ≤ 0 with PG15's s > p); right of it: max(s, 0).
    let integer_digits = (precision - scale).max(0);
    let fraction_digits = scale.max(0);
    let total = integer_digits + fraction_digits;
    if (1..=i32::from(MAX_DECIMAL_PRECISION)).contains(&total) {
        Some((total as u8, fraction_digits as u8))
    } else {
        None
    }
}

/// Maps one column. `type_modifier` is `atttypmod` (-1 when none); for arrays it is the
/// element's typmod, as PostgreSQL stores it.
pub fn map_pg_type(
    type_oid: u32,
    type_modifier: i32,
    options: &TypeMapOptions,
) -> Result<ColumnMapping, UnsupportedType> {
    let (type_oid, type_modifier) = match options.domains.get(&type_oid) {
        // A domain column's own typmod is -1; the domain's carries it (`numeric(10,2)`).
        Some(&(base, base_modifier)) if type_modifier == -1 => (base, base_modifier),
        Some(&(base, _)) => (base, type_modifier),
        None => (type_oid, type_modifier),
    };
    if let Some(element_oid) = array_element_oid(type_oid) {
        let element = map_scalar(element_oid, type_modifier, options)?;
        let delimiter = if element_oid == oid::BOX { b';' } else { b',' };
        return Ok(ColumnMapping::new(
            StarRocksType::Array(Box::new(element.starrocks_type)),
            ValueEncoding::Array {
                element: Box::new(element.encoding),
                delimiter,
            },
            options.lossy_policy,
        ));
    }
    map_scalar(type_oid, type_modifier, options)
}

fn map_scalar(
    type_oid: u32,
    type_modifier: i32,
    options: &TypeMapOptions,
) -> Result<ColumnMapping, UnsupportedType> {
    let policy = options.lossy_policy;
    let integer = |starrocks_type, min: i128, max: i128| {
        ColumnMapping::new(starrocks_type, ValueEncoding::Integer { min, max }, policy)
    };
    let text = |bytes: u32| ColumnMapping::text(bytes, policy);
    let mapping = match type_oid {
        oid::BOOL => ColumnMapping::new(StarRocksType::Boolean, ValueEncoding::Bool, policy),
        oid::INT2 => integer(StarRocksType::SmallInt, i16::MIN.into(), i16::MAX.into()),
        oid::INT4 => integer(StarRocksType::Int, i32::MIN.into(), i32::MAX.into()),
        oid::INT8 => integer(StarRocksType::BigInt, i64::MIN.into(), i64::MAX.into()),
        oid::OID | oid::XID | oid::CID => integer(StarRocksType::BigInt, 0, u32::MAX.into()),
        oid::XID8 => integer(StarRocksType::LargeInt, 0, u64::MAX.into()),
        oid::FLOAT4 => ColumnMapping::new(StarRocksType::Float, ValueEncoding::Float, policy),
        oid::FLOAT8 => ColumnMapping::new(StarRocksType::Double, ValueEncoding::Float, policy),
        oid::NUMERIC => map_numeric(type_modifier, options),
        oid::TEXT => text(MAX_VARCHAR_BYTES),
        oid::VARCHAR | oid::BPCHAR => match declared_length(type_modifier) {
            Some(chars) => text(chars.saturating_mul(4)),
            None => text(MAX_VARCHAR_BYTES),
        },
        // "char" is one byte; name is at most NAMEDATALEN - 1 = 63 bytes.
        oid::CHAR => text(4),
        oid::NAME => text(64),
        oid::DATE => ColumnMapping::new(StarRocksType::Date, ValueEncoding::Date, policy),
        oid::TIMESTAMP => {
            ColumnMapping::new(StarRocksType::DateTime, ValueEncoding::Timestamp, policy)
        }
        oid::TIMESTAMPTZ => {
            ColumnMapping::new(StarRocksType::DateTime, ValueEncoding::TimestampTz, policy)
        }
        // 15 bytes (`HH:MM:SS.ffffff`), + offset up to `+HH:MM:SS` for timetz.
        oid::TIME | oid::TIMETZ => text(32),
        // ISO 8601 intervals stay under 64 bytes even at the type's limits.
        oid::INTERVAL => text(64),
        oid::UUID => text(36),
        oid::JSON | oid::JSONB => {
            ColumnMapping::new(StarRocksType::Json, ValueEncoding::Json, policy)
        }
        oid::BYTEA => ColumnMapping::new(
            StarRocksType::Varchar {
                bytes: MAX_VARCHAR_BYTES,
            },
            ValueEncoding::ByteaHex {
                max_bytes: MAX_VARCHAR_BYTES,
            },
            policy,
        ),
        oid::INET | oid::CIDR => text(64),
        oid::MACADDR | oid::MACADDR8 => text(32),
        oid::PG_LSN => text(32),
        oid::MONEY => text(64),
        oid::BIT | oid::VARBIT => match declared_bits(type_modifier) {
            Some(bits) => text(bits),
            None => text(MAX_VARCHAR_BYTES),
        },
        oid::TSVECTOR
        | oid::TSQUERY
        | oid::XML
        | oid::JSONPATH
        | oid::POINT
        | oid::LSEG
        | oid::PATH
        | oid::BOX
        | oid::POLYGON
        | oid::LINE
        | oid::CIRCLE
        | oid::REGPROC
        | oid::TID => text(MAX_VARCHAR_BYTES),
        other if pseudo_type(other) => {
            return Err(UnsupportedType {
                type_oid: other,
                reason: "a pseudo-type cannot be stored in a table column",
            })
        }
        // Built-in types we do not list (reg* types, ranges, multiranges...) and user types
        // (enums, composites, domains not resolved, extension types) all have a text form.
        other => match options.unknown_types {
            UnknownTypes::Text => text(MAX_VARCHAR_BYTES),
            UnknownTypes::Reject => {
                return Err(UnsupportedType {
                    type_oid: other,
                    reason: UNKNOWN_TYPE_REJECTED,
                })
            }
        },
    };
    Ok(mapping)
}

fn map_numeric(type_modifier: i32, options: &TypeMapOptions) -> ColumnMapping {
    let policy = options.lossy_policy;
    let declared = numeric_precision_scale(type_modifier);
    if let Some((precision, scale)) = declared.and_then(|(p, s)| exact_decimal(p, s)) {
        return ColumnMapping::new(
            StarRocksType::Decimal { precision, scale },
            ValueEncoding::Decimal { precision, scale },
            policy,
        );
    }
    match options.wide_numeric {
        WideNumeric::Decimal => {
            let (precision, default_scale) = WIDE_DECIMAL;
            // A declared scale below 9 keeps more integer digits (numeric(40,0) → DECIMAL(38,0)).
            let scale = match declared {
                Some((_, declared_scale)) => {
                    declared_scale.clamp(0, i32::from(default_scale)) as u8
                }
                None => default_scale,
            };
            ColumnMapping::new(
                StarRocksType::Decimal { precision, scale },
                ValueEncoding::Decimal { precision, scale },
                policy,
            )
        }
        WideNumeric::String => ColumnMapping::text(MAX_VARCHAR_BYTES, policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_types_read_back_from_ddl_and_desc() {
        use StarRocksType as T;
        for sql in ["DECIMAL(28,2)", "decimal(28,2)", "decimal128(28, 2)"] {
            assert_eq!(
                StarRocksType::parse_scalar(sql),
                Some(T::Decimal {
                    precision: 28,
                    scale: 2
                }),
                "{sql}"
            );
        }
        assert_eq!(
            StarRocksType::parse_scalar("varchar(64)"),
            Some(T::Varchar { bytes: 64 })
        );
        assert_eq!(
            StarRocksType::parse_scalar("STRING"),
            Some(T::Varchar { bytes: 65533 })
        );
        assert_eq!(StarRocksType::parse_scalar("bigint"), Some(T::BigInt));
        for other in ["json", "datetime", "array<int>", "varchar(x)", "decimal(3)"] {
            assert_eq!(StarRocksType::parse_scalar(other), None, "{other}");
        }
        for scalar in [T::LargeInt, T::Double, T::Varchar { bytes: 9 }] {
            assert_eq!(StarRocksType::parse_scalar(&scalar.to_sql()), Some(scalar));
        }
    }

    fn map(type_oid: u32, type_modifier: i32) -> ColumnMapping {
        map_pg_type(type_oid, type_modifier, &TypeMapOptions::default()).unwrap()
    }

    fn sql(type_oid: u32, type_modifier: i32) -> String {
        map(type_oid, type_modifier).starrocks_type.to_sql()
    }

    /// `numeric(p,s)` typmod as PostgreSQL packs it.
    fn numeric_typmod(precision: i32, scale: i32) -> i32 {
        ((precision << 16) | (scale & 0x7ff)) + 4
    }

    #[test]
    fn type_map_scalars_follow_the_design() {
        assert_eq!(sql(oid::BOOL, -1), "BOOLEAN");
        assert_eq!(sql(oid::INT2, -1), "SMALLINT");
        assert_eq!(sql(oid::INT4, -1), "INT");
        assert_eq!(sql(oid::INT8, -1), "BIGINT");
        assert_eq!(sql(oid::FLOAT4, -1), "FLOAT");
        assert_eq!(sql(oid::FLOAT8, -1), "DOUBLE");
        assert_eq!(sql(oid::DATE, -1), "DATE");
        assert_eq!(sql(oid::TIMESTAMP, -1), "DATETIME");
        assert_eq!(sql(oid::TIMESTAMPTZ, -1), "DATETIME");
        assert_eq!(sql(oid::JSON, -1), "JSON");
        assert_eq!(sql(oid::JSONB, -1), "JSON");
        assert_eq!(sql(oid::UUID, -1), "VARCHAR(36)");
        assert_eq!(sql(oid::TIME, -1), "VARCHAR(32)");
        assert_eq!(sql(oid::TIMETZ, -1), "VARCHAR(32)");
        assert_eq!(sql(oid::INTERVAL, -1), "VARCHAR(64)");
        assert_eq!(sql(oid::BYTEA, -1), "VARCHAR(1048576)");
        assert_eq!(sql(oid::OID, -1), "BIGINT");
        assert_eq!(sql(oid::XID8, -1), "LARGEINT");
        assert_eq!(
            map(oid::TIMESTAMPTZ, -1).encoding,
            ValueEncoding::TimestampTz
        );
    }

    #[test]
    fn type_map_strings_are_sized_in_bytes() {
        assert_eq!(sql(oid::VARCHAR, 100 + 4), "VARCHAR(400)");
        assert_eq!(sql(oid::BPCHAR, 1 + 4), "VARCHAR(4)");
        assert_eq!(sql(oid::VARCHAR, 10_000_000 + 4), "VARCHAR(1048576)");
        assert_eq!(sql(oid::VARCHAR, -1), "VARCHAR(1048576)");
        assert_eq!(sql(oid::TEXT, -1), "VARCHAR(1048576)");
        assert_eq!(sql(oid::BPCHAR, -1), "VARCHAR(1048576)");
        assert_eq!(sql(oid::NAME, -1), "VARCHAR(64)");
        assert_eq!(sql(oid::CHAR, -1), "VARCHAR(4)");
        // A bit's typmod is its length (no varlena header): bit(8) → 8, bit(1) → 1.
        assert_eq!(sql(oid::BIT, 8), "VARCHAR(8)");
        assert_eq!(sql(oid::BIT, 1), "VARCHAR(1)");
        assert_eq!(sql(oid::VARBIT, 10), "VARCHAR(10)");
        assert_eq!(sql(oid::VARBIT, -1), "VARCHAR(1048576)");
        assert_eq!(
            map(oid::VARCHAR, 3 + 4).encoding,
            ValueEncoding::Text { max_bytes: 12 }
        );
    }

    #[test]
    fn type_map_numeric_fits_or_goes_wide() {
        assert_eq!(sql(oid::NUMERIC, numeric_typmod(12, 2)), "DECIMAL(12,2)");
        assert_eq!(sql(oid::NUMERIC, numeric_typmod(38, 38)), "DECIMAL(38,38)");
        assert_eq!(sql(oid::NUMERIC, numeric_typmod(5, 0)), "DECIMAL(5,0)");
        // PG15: negative scale (multiples of 1000) and scale > precision.
        assert_eq!(sql(oid::NUMERIC, numeric_typmod(2, -3)), "DECIMAL(5,0)");
        assert_eq!(sql(oid::NUMERIC, numeric_typmod(3, 5)), "DECIMAL(5,5)");
        assert_eq!(sql(oid::NUMERIC, -1), "DECIMAL(38,9)");
        assert_eq!(sql(oid::NUMERIC, numeric_typmod(50, 20)), "DECIMAL(38,9)");
        assert_eq!(sql(oid::NUMERIC, numeric_typmod(40, 0)), "DECIMAL(38,0)");
        let as_string = TypeMapOptions {
            wide_numeric: WideNumeric::String,
            ..TypeMapOptions::default()
        };
        let mapping = map_pg_type(oid::NUMERIC, -1, &as_string).unwrap();
        assert_eq!(mapping.starrocks_type.to_sql(), "VARCHAR(1048576)");
        // A fitting numeric stays DECIMAL whatever the option.
        let mapping = map_pg_type(oid::NUMERIC, numeric_typmod(10, 3), &as_string).unwrap();
        assert_eq!(mapping.starrocks_type.to_sql(), "DECIMAL(10,3)");
    }

    #[test]
    fn type_map_arrays_map_their_elements() {
        assert_eq!(sql(1007, -1), "ARRAY<INT>");
        assert_eq!(sql(1016, -1), "ARRAY<BIGINT>");
        assert_eq!(sql(1009, -1), "ARRAY<VARCHAR(1048576)>");
        assert_eq!(sql(1015, 20 + 4), "ARRAY<VARCHAR(80)>");
        assert_eq!(sql(1231, numeric_typmod(10, 2)), "ARRAY<DECIMAL(10,2)>");
        assert_eq!(sql(1000, -1), "ARRAY<BOOLEAN>");
        assert_eq!(sql(1022, -1), "ARRAY<DOUBLE>");
        assert_eq!(sql(1182, -1), "ARRAY<DATE>");
        assert_eq!(sql(1185, -1), "ARRAY<DATETIME>");
        assert_eq!(sql(3807, -1), "ARRAY<JSON>");
        assert_eq!(sql(2951, -1), "ARRAY<VARCHAR(36)>");
        match map(1020, -1).encoding {
            ValueEncoding::Array { delimiter, .. } => assert_eq!(delimiter, b';'),
            other => panic!("box[] is an array, got {other:?}"),
        }
        let enum_array = ColumnMapping::array_of(ColumnMapping::enum_label(LossyPolicy::Null));
        assert_eq!(enum_array.starrocks_type.to_sql(), "ARRAY<VARCHAR(256)>");
    }

    #[test]
    fn type_map_text_forms_for_the_rest() {
        for type_oid in [
            oid::INET,
            oid::CIDR,
            oid::MACADDR,
            oid::MONEY,
            oid::TSVECTOR,
            oid::XML,
            oid::POINT,
            oid::LINE,
            oid::LSEG,
            oid::BOX,
            oid::PATH,
            oid::POLYGON,
            oid::CIRCLE,
            oid::PG_LSN,
        ] {
            assert!(
                matches!(map(type_oid, -1).encoding, ValueEncoding::Text { .. }),
                "{type_oid}"
            );
        }
    }

    #[test]
    fn type_map_unknown_and_pseudo_types() {
        // An enum or other user type: text by default, rejected on request.
        assert_eq!(sql(16_500, -1), "VARCHAR(1048576)");
        let reject = TypeMapOptions {
            unknown_types: UnknownTypes::Reject,
            ..TypeMapOptions::default()
        };
        let error = map_pg_type(16_500, -1, &reject).unwrap_err();
        assert_eq!(error.type_oid, 16_500);
        assert!(error.to_string().contains("16500"));
        assert!(map_pg_type(2249, -1, &TypeMapOptions::default()).is_err());
        assert!(map_pg_type(0, -1, &TypeMapOptions::default()).is_err());
        assert_eq!(
            ColumnMapping::enum_label(LossyPolicy::Error)
                .starrocks_type
                .to_sql(),
            "VARCHAR(256)"
        );
    }

    #[test]
    fn type_map_carries_the_lossy_policy() {
        let options = TypeMapOptions {
            lossy_policy: LossyPolicy::Truncate,
            ..TypeMapOptions::default()
        };
        let mapping = map_pg_type(oid::TEXT, -1, &options).unwrap();
        assert_eq!(mapping.lossy_policy, LossyPolicy::Truncate);
        assert_eq!(LossyPolicy::default(), LossyPolicy::Null);
        let policy: LossyPolicy = serde_json::from_str("\"error\"").unwrap();
        assert_eq!(policy, LossyPolicy::Error);
    }
}
