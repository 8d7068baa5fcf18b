//! Which `MODIFY COLUMN` changes StarRocks allows (spec §6.3): `Column.checkSchemaChangeAllowed`
//! with the type matrix of `ColumnType.java` (fe/fe-core/.../catalog/). Anything else is refused
//! at once with 1064 and the DdlException's text; nothing is converted to NULL.

use crate::catalog::{Column, SqlError};
use crate::types::ColumnType;

/// `PrimitiveType` of a column type, as the matrix indexes it (DECIMAL by storage width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Primitive {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    LargeInt,
    Float,
    Double,
    Date,
    DateTime,
    Char,
    Varchar,
    Decimal,
    Json,
    Varbinary,
    /// ARRAY and other complex types: `Type.getPrimitiveType()` is INVALID_TYPE, never allowed.
    Invalid,
}

fn primitive(ty: &ColumnType) -> Primitive {
    match ty {
        ColumnType::Boolean => Primitive::Boolean,
        ColumnType::TinyInt => Primitive::TinyInt,
        ColumnType::SmallInt => Primitive::SmallInt,
        ColumnType::Int => Primitive::Int,
        ColumnType::BigInt => Primitive::BigInt,
        ColumnType::LargeInt => Primitive::LargeInt,
        ColumnType::Float => Primitive::Float,
        ColumnType::Double => Primitive::Double,
        ColumnType::Date => Primitive::Date,
        ColumnType::DateTime => Primitive::DateTime,
        ColumnType::Char(_) => Primitive::Char,
        ColumnType::Varchar(_) => Primitive::Varchar,
        ColumnType::Decimal { .. } => Primitive::Decimal,
        ColumnType::Json => Primitive::Json,
        ColumnType::Varbinary => Primitive::Varbinary,
        ColumnType::Array(_) => Primitive::Invalid,
    }
}

/// `ColumnType.schemaChangeMatrix` for non-DECIMAL types.
fn matrix(from: Primitive, to: Primitive) -> bool {
    use Primitive::*;
    if from == Invalid || to == Invalid {
        return false;
    }
    if from == to {
        return true;
    }
    matches!(
        (from, to),
        (
            TinyInt,
            SmallInt | Int | BigInt | LargeInt | Double | Varchar
        ) | (SmallInt, Int | BigInt | LargeInt | Double | Varchar)
            | (Int, BigInt | LargeInt | Double | Date | Varchar)
            | (BigInt, LargeInt | Double | Varchar)
            | (LargeInt, Varchar)
            | (Float, Double | Varchar)
            | (Double, Varchar)
            | (Char, Varchar)
            | (Json, Varchar)
            | (Varchar, Json)
            | (
                Varchar,
                TinyInt | SmallInt | Int | BigInt | LargeInt | Float | Double | Date
            )
            | (DateTime, Date)
            | (Date, DateTime)
    )
}

/// `Type.getMysqlResultSetFieldLength` of a DECIMAL: precision, +1 for the point, +3.
fn decimal_field_length(precision: u8, scale: u8) -> u32 {
    u32::from(precision) + u32::from(scale > 0) + 3
}

/// `ColumnType.isSchemaChangeAllowed`.
fn type_change_allowed(from: &ColumnType, to: &ColumnType) -> bool {
    match (from, to) {
        // isSchemaChangeAllowedInvolvingDecimalV3: the new type must hold every old value.
        (
            ColumnType::Decimal {
                precision: p1,
                scale: s1,
            },
            ColumnType::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 <= s2 && p1 - s1 <= p2 - s2,
        (ColumnType::Decimal { precision, scale }, ColumnType::Varchar(len)) => {
            decimal_field_length(*precision, *scale) <= *len
        }
        (ColumnType::Decimal { .. }, _) => false,
        (ColumnType::Varchar(_), ColumnType::Decimal { .. }) => true,
        (_, ColumnType::Decimal { .. }) => false,
        _ => matrix(primitive(from), primitive(to)),
    }
}

/// `ScalarType.toString()` / `ArrayType.toString()`: the names in "Can not change X to Y".
pub(crate) fn type_to_string(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Decimal { precision, scale } => {
            let storage = if *precision <= 9 {
                32
            } else if *precision <= 18 {
                64
            } else {
                128
            };
            format!("DECIMAL{storage}({precision},{scale})")
        }
        ColumnType::Char(n) => format!("CHAR({n})"),
        ColumnType::Varchar(n) => format!("VARCHAR({n})"),
        ColumnType::Array(inner) => format!("ARRAY<{}>", type_to_string(inner)),
        other => other.desc_name().to_uppercase(),
    }
}

/// `Column.isSameDefaultValue`: no default and `DEFAULT NULL` are the same; constants compare
/// as text; `CURRENT_TIMESTAMP` (an expression) compares case-insensitively.
fn same_default(a: &Option<String>, b: &Option<String>) -> bool {
    const NOW: &str = "CURRENT_TIMESTAMP";
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) if x.eq_ignore_ascii_case(NOW) || y.eq_ignore_ascii_case(NOW) => {
            x.eq_ignore_ascii_case(y)
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `Column.checkSchemaChangeAllowed(other)`, in the source's order. Only called when the new
/// definition differs from the old one (`SchemaChangeHandler`, "2. check compatible").
pub(crate) fn check_schema_change_allowed(old: &Column, new: &Column) -> Result<(), SqlError> {
    if !type_change_allowed(&old.ty, &new.ty) {
        return Err(SqlError::new(format!(
            "Can not change {} to {}",
            type_to_string(&old.ty),
            type_to_string(&new.ty)
        )));
    }
    if old.nullable && !new.nullable {
        return Err(SqlError::new(
            "Can not change from nullable to non-nullable",
        ));
    }
    if !same_default(&old.default, &new.default) {
        return Err(SqlError::new("Can not change default value"));
    }
    let shorter = match (&old.ty, &new.ty) {
        (ColumnType::Varchar(from), ColumnType::Varchar(to))
        | (ColumnType::Char(from), ColumnType::Varchar(to))
        | (ColumnType::Char(from), ColumnType::Char(to)) => to < from,
        _ => false,
    };
    if shorter {
        return Err(SqlError::new("Cannot shorten string length"));
    }
    // JSON's PrimitiveType.getTypeSize() is 16.
    if let (ColumnType::Json, ColumnType::Varchar(n) | ColumnType::Char(n)) = (&old.ty, &new.ty) {
        if *n <= 16 {
            return Err(SqlError::new("JSON needs minimum length of 16"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: ColumnType, nullable: bool, default: Option<&str>) -> Column {
        Column {
            name: "v".into(),
            column_id: "v".into(),
            ty,
            nullable,
            default: default.map(String::from),
            comment: String::new(),
        }
    }

    fn check(from: ColumnType, to: ColumnType) -> Result<(), String> {
        check_schema_change_allowed(&col(from, true, None), &col(to, true, None))
            .map_err(|e| e.message)
    }

    #[test]
    fn narrowing_and_incompatible_types_are_refused() {
        use ColumnType::*;
        assert_eq!(
            check(BigInt, Int).unwrap_err(),
            "Can not change BIGINT to INT"
        );
        assert_eq!(
            check(Double, Int).unwrap_err(),
            "Can not change DOUBLE to INT"
        );
        assert_eq!(check(Date, Int).unwrap_err(), "Can not change DATE to INT");
        assert_eq!(
            check(Int, Float).unwrap_err(),
            "Can not change INT to FLOAT"
        );
        assert_eq!(
            check(Boolean, Int).unwrap_err(),
            "Can not change BOOLEAN to INT"
        );
        assert_eq!(
            check(Varchar(10), Char(20)).unwrap_err(),
            "Can not change VARCHAR(10) to CHAR(20)"
        );
        let d = |precision, scale| Decimal { precision, scale };
        assert_eq!(
            check(d(10, 2), d(10, 3)).unwrap_err(),
            "Can not change DECIMAL64(10,2) to DECIMAL64(10,3)"
        );
        assert_eq!(
            check(Int, d(18, 0)).unwrap_err(),
            "Can not change INT to DECIMAL64(18,0)"
        );
        assert!(check(d(10, 2), Varchar(13)).is_err());
        assert!(check(Array(Box::new(Int)), Array(Box::new(BigInt))).is_err());
    }

    #[test]
    fn widening_is_allowed() {
        use ColumnType::*;
        for (from, to) in [
            (TinyInt, SmallInt),
            (Int, BigInt),
            (Int, LargeInt),
            (Int, Double),
            (Int, Date),
            (BigInt, Varchar(20)),
            (Float, Double),
            (Varchar(10), Varchar(20)),
            (Char(5), Varchar(5)),
            (Varchar(10), Int),
            (Varchar(10), Json),
            (Json, Varchar(17)),
            (Date, DateTime),
            (DateTime, Date),
            (
                Decimal {
                    precision: 10,
                    scale: 2,
                },
                Decimal {
                    precision: 12,
                    scale: 3,
                },
            ),
            (
                Decimal {
                    precision: 10,
                    scale: 2,
                },
                Varchar(14),
            ),
            (
                Varchar(10),
                Decimal {
                    precision: 5,
                    scale: 1,
                },
            ),
        ] {
            assert_eq!(
                check(from.clone(), to.clone()),
                Ok(()),
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn nullability_default_and_lengths() {
        let int = ColumnType::Int;
        let err = |old: Column, new: Column| check_schema_change_allowed(&old, &new).unwrap_err();
        assert_eq!(
            err(col(int.clone(), true, None), col(int.clone(), false, None)).message,
            "Can not change from nullable to non-nullable"
        );
        assert_eq!(
            err(
                col(int.clone(), true, Some("0")),
                col(int.clone(), true, None)
            )
            .message,
            "Can not change default value"
        );
        assert_eq!(
            err(
                col(int.clone(), true, None),
                col(int.clone(), true, Some("1"))
            )
            .message,
            "Can not change default value"
        );
        assert!(check_schema_change_allowed(
            &col(int, true, Some("7")),
            &col(ColumnType::BigInt, true, Some("7"))
        )
        .is_ok());
        assert_eq!(
            check(ColumnType::Varchar(10), ColumnType::Varchar(5)).unwrap_err(),
            "Cannot shorten string length"
        );
        assert_eq!(
            check(ColumnType::Json, ColumnType::Varchar(16)).unwrap_err(),
            "JSON needs minimum length of 16"
        );
    }
}
