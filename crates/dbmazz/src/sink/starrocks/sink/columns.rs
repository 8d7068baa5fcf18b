//! The StarRocks columns a PostgreSQL table needs, and which of them an existing table lacks.

use crate::schema::type_map::{map_pg_type, TypeMapOptions, UnsupportedType};
use crate::schema::TableSchema;
use crate::sink::starrocks::ddl::{ColumnDef, DescribedColumn};
use crate::sink::starrocks::encode::{audit_columns, EncoderOptions};

/// A column whose PostgreSQL type cannot be replicated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {source}")]
pub struct UnsupportedColumn {
    pub column: String,
    #[source]
    pub source: UnsupportedType,
}

/// The StarRocks columns a PostgreSQL table shape needs: the key columns (the shape's replica
/// identity), then the value columns and the audit columns `encoder` adds. Used to create
/// tables and, with [`missing_columns`], to check existing ones (here and by `dbmazz check`).
pub fn required_columns(
    schema: &TableSchema,
    type_options: &TypeMapOptions,
    encoder: &EncoderOptions,
) -> Result<(Vec<ColumnDef>, Vec<ColumnDef>), UnsupportedColumn> {
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for column in &schema.columns {
        let mapping =
            map_pg_type(column.type_oid, column.type_modifier, type_options).map_err(|source| {
                UnsupportedColumn {
                    column: column.name.clone(),
                    source,
                }
            })?;
        let definition = ColumnDef {
            name: column.name.clone(),
            sql_type: mapping.starrocks_type.to_sql(),
            nullable: !column.is_key,
        };
        if column.is_key {
            keys.push(definition);
        } else {
            values.push(definition);
        }
    }
    for (name, sql_type) in audit_columns(encoder) {
        values.push(ColumnDef {
            name: name.to_string(),
            sql_type: sql_type.to_sql(),
            nullable: true,
        });
    }
    Ok((keys, values))
}

/// The wanted columns an existing StarRocks table lacks, as `name TYPE` (names compare
/// case-insensitively, as StarRocks does).
pub fn missing_columns(
    keys: &[ColumnDef],
    values: &[ColumnDef],
    described: &[DescribedColumn],
) -> Vec<String> {
    keys.iter()
        .chain(values.iter())
        .filter(|wanted| {
            !described
                .iter()
                .any(|column| column.name.eq_ignore_ascii_case(&wanted.name))
        })
        .map(|wanted| format!("{} {}", wanted.name, wanted.sql_type))
        .collect()
}
