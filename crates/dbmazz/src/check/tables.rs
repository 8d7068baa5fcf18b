//! One table: exists, may be read, has a key StarRocks can use (from its replica identity, as
//! pgoutput will flag key columns), and every column maps to a StarRocks type through
//! `schema::type_map` (unsupported = fail, possibly lossy = warn naming `lossy_policy`).

use crate::config::Config;
use crate::decode::ReplicaIdentity;
use crate::schema::type_map::{map_pg_type, numeric_precision_scale, oid, WideNumeric};
use crate::schema::{LossyPolicy, TableName, TableSchema, TypeMapOptions};
use crate::source::{quote_ident, quote_table, SourceError};

use super::postgres::Role;
use super::{CheckLine, CheckReport};

/// One table: exists, SELECT, key and replica identity, column types. Returns its shape.
pub(super) async fn check_table(
    config: &Config,
    client: &tokio_postgres::Client,
    role: &Role,
    table: &TableName,
    version_num: u32,
    type_options: &TypeMapOptions,
    report: &mut CheckReport,
) -> Result<Option<TableSchema>, SourceError> {
    let subject = format!("table {table}");
    let row = client
        .query_opt(
            "SELECT c.oid, c.relreplident::text, has_table_privilege(c.oid, 'SELECT') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&table.schema, &table.name],
        )
        .await?;
    let Some(row) = row else {
        report.push(CheckLine::fail(
            &subject,
            "does not exist (or is not a table)",
            "create it, or remove it from source.tables",
        ));
        return Ok(None);
    };
    let relation_oid: u32 = row.get(0);
    let replica_identity = match row.get::<_, String>(1).as_str() {
        "n" => ReplicaIdentity::Nothing,
        "f" => ReplicaIdentity::Full,
        "i" => ReplicaIdentity::Index,
        _ => ReplicaIdentity::Default,
    };
    if !row.get::<_, bool>(2) {
        report.push(CheckLine::fail(
            format!("SELECT on {table}"),
            format!(
                "{:?} may not read {table}: the initial snapshot cannot copy it",
                role.name
            ),
            format!(
                "GRANT SELECT ON {} TO {};",
                quote_table(table),
                quote_ident(&role.name)
            ),
        ));
    }
    let columns = read_columns(client, relation_oid, version_num).await?;
    // The shape the StarRocks checks compare with: the snapshot's, which is tested to equal
    // the Relation message pgoutput sends.
    let mut shape = crate::snapshot::table_schema(client, table, &config.source.publication)
        .await
        .map_err(|error| match error {
            crate::snapshot::SnapshotError::Source(source) => source,
            other => SourceError::Protocol(other.to_string()),
        })?;
    let keys = config.key_overrides();
    if !keys.covers(table) {
        report.push(key_line(table, replica_identity, &columns));
        // pgoutput flags every column under REPLICA IDENTITY FULL; `run` keys such a table by
        // its primary key (read at start), so the StarRocks checks compare with that key.
        if replica_identity == ReplicaIdentity::Full {
            let primary = crate::source::full_identity_primary_keys(client)
                .await?
                .into_iter()
                .find(|(found, _)| found == table);
            if let Some((found, key)) = primary {
                let _ = crate::schema::KeyOverrides::new([(found, key)].into()).apply(&mut shape);
            }
        }
    } else {
        match keys.apply(&mut shape) {
            Ok(()) => report.push(configured_key_line(table, replica_identity, &shape)),
            Err(error) => report.push(CheckLine::fail(
                format!("key of {table}"),
                error.to_string(),
                "fix source.key_columns",
            )),
        }
    }
    if let Some(line) = key_size_line(table, &shape) {
        report.push(line);
    }
    type_lines(table, &columns, type_options, report);
    if let Some(line) = super::row_filter::row_filter_line(
        client,
        &config.source.publication,
        table,
        relation_oid,
        version_num,
    )
    .await?
    {
        report.push(line);
    }
    Ok(Some(shape))
}

/// StarRocks refuses a row whose encoded primary key is over 128 bytes (the whole load
/// fails, and dbmazz stops on it): a warning for key columns whose values may be that long.
fn key_size_line(table: &TableName, shape: &TableSchema) -> Option<CheckLine> {
    let unbounded: Vec<&str> = shape
        .columns
        .iter()
        .filter(|column| column.is_key)
        .filter(|column| match column.type_oid {
            oid::TEXT | oid::BYTEA => true,
            // atttypmod = characters + 4; -1 without a length.
            oid::VARCHAR | oid::BPCHAR => {
                column.type_modifier < 0 || column.type_modifier - 4 > 128
            }
            _ => false,
        })
        .map(|column| column.name.as_str())
        .collect();
    if unbounded.is_empty() {
        return None;
    }
    Some(CheckLine::warn(
        format!("key size of {table}"),
        format!(
            "key column(s) {} may hold values over 128 bytes; StarRocks refuses a row whose \
             primary key is longer, and dbmazz stops on it (fine if the values stay short)",
            unbounded.join(", ")
        ),
        format!(
            "bound them, e.g. ALTER TABLE {} ADD CHECK (octet_length({}) <= 128)",
            quote_table(table),
            quote_ident(unbounded[0])
        ),
    ))
}

/// A key named in `source.key_columns`: fine under REPLICA IDENTITY FULL; otherwise only
/// INSERTs can be published.
fn configured_key_line(
    table: &TableName,
    identity: ReplicaIdentity,
    shape: &TableSchema,
) -> CheckLine {
    let subject = format!("key of {table}");
    let key = shape
        .key_indexes()
        .map(|index| shape.columns[index].name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if identity == ReplicaIdentity::Full {
        return CheckLine::ok(subject, format!("({key}) from source.key_columns"));
    }
    CheckLine::warn(
        subject,
        format!(
            "({key}) from source.key_columns, but without REPLICA IDENTITY FULL PostgreSQL refuses \
             UPDATE and DELETE on the published table (fine for an insert-only table)"
        ),
        format!("ALTER TABLE {} REPLICA IDENTITY FULL;", quote_table(table)),
    )
}

/// A column as the catalog describes it.
struct CatalogColumn {
    name: String,
    type_oid: u32,
    type_modifier: i32,
    type_text: String,
    dimensions: i32,
    in_primary_key: bool,
    in_identity_index: bool,
}

/// The published columns (pgoutput leaves out generated columns).
async fn read_columns(
    client: &tokio_postgres::Client,
    relation_oid: u32,
    version_num: u32,
) -> Result<Vec<CatalogColumn>, SourceError> {
    let not_generated = if version_num >= 120_000 {
        "AND a.attgenerated = ''"
    } else {
        ""
    };
    let sql = format!(
        "SELECT a.attname::text, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), \
                a.attndims::int4, \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                        AND i.indisprimary AND a.attnum = ANY (i.indkey)), \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                        AND i.indisreplident AND a.attnum = ANY (i.indkey)) \
         FROM pg_attribute a \
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped {not_generated} \
         ORDER BY a.attnum"
    );
    let rows = client.query(&sql, &[&relation_oid]).await?;
    Ok(rows
        .iter()
        .map(|row| CatalogColumn {
            name: row.get(0),
            type_oid: row.get(1),
            type_modifier: row.get(2),
            type_text: row.get(3),
            dimensions: row.get(4),
            in_primary_key: row.get(5),
            in_identity_index: row.get(6),
        })
        .collect())
}

/// The key StarRocks will use, from the replica identity (as pgoutput flags key columns).
fn key_line(table: &TableName, identity: ReplicaIdentity, columns: &[CatalogColumn]) -> CheckLine {
    let subject = format!("key of {table}");
    let names = |pick: fn(&CatalogColumn) -> bool| {
        columns
            .iter()
            .filter(|column| pick(column))
            .map(|column| column.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let primary_key = names(|column| column.in_primary_key);
    let identity_index = names(|column| column.in_identity_index);
    let add_key = format!(
        "ALTER TABLE {} ADD PRIMARY KEY (...); (or REPLICA IDENTITY USING INDEX on a unique NOT NULL \
         index; or, with REPLICA IDENTITY FULL, name its key columns in source.key_columns)",
        quote_table(table)
    );
    if primary_key.is_empty() && identity_index.is_empty() {
        let why = if identity == ReplicaIdentity::Full {
            "no primary key (REPLICA IDENTITY FULL is not enough: a StarRocks Primary Key table needs a key)"
        } else {
            "no primary key: StarRocks Primary Key tables need one, and PostgreSQL cannot publish \
             its UPDATEs and DELETEs"
        };
        return CheckLine::fail(subject, why, add_key);
    }
    match identity {
        ReplicaIdentity::Default if primary_key.is_empty() => CheckLine::fail(
            subject,
            "REPLICA IDENTITY DEFAULT but no primary key",
            add_key,
        ),
        ReplicaIdentity::Default => CheckLine::ok(subject, format!("primary key ({primary_key})")),
        ReplicaIdentity::Index => CheckLine::ok(
            subject,
            format!("({identity_index}) from REPLICA IDENTITY USING INDEX"),
        ),
        ReplicaIdentity::Nothing => CheckLine::fail(
            subject,
            "REPLICA IDENTITY NOTHING: PostgreSQL refuses UPDATE and DELETE on a published table \
             without a replica identity",
            format!(
                "ALTER TABLE {} REPLICA IDENTITY DEFAULT;",
                quote_table(table)
            ),
        ),
        ReplicaIdentity::Full => CheckLine::ok(
            subject,
            format!(
                "primary key ({primary_key}); REPLICA IDENTITY FULL (pgoutput flags all {} \
                 columns as key, dbmazz keys the StarRocks table by the primary key)",
                columns.len()
            ),
        ),
    }
}

/// One ok line per table, plus a line per column that is unsupported or lossy.
fn type_lines(
    table: &TableName,
    columns: &[CatalogColumn],
    options: &TypeMapOptions,
    report: &mut CheckReport,
) {
    let mut trouble = false;
    for column in columns {
        let subject = format!("column {table}.{}", column.name);
        match map_pg_type(column.type_oid, column.type_modifier, options) {
            Err(error) => {
                trouble = true;
                report.push(CheckLine::fail(
                    subject,
                    format!(
                        "type {} cannot be replicated: {}",
                        column.type_text, error.reason
                    ),
                    "set sink.starrocks.unknown_types = \"text\" to store its text form, change \
                     the column's type, or leave the table out of the publication",
                ));
            }
            Ok(mapping) => {
                if let Some(loss) = lossy_note(column, options) {
                    trouble = true;
                    report.push(CheckLine::warn(
                        subject,
                        format!(
                            "{} → {}: {loss}; lossy_policy = {}",
                            column.type_text,
                            mapping.starrocks_type.to_sql(),
                            policy_effect(options.lossy_policy)
                        ),
                        lossy_fix(column),
                    ));
                }
            }
        }
    }
    if !trouble {
        report.push(CheckLine::ok(
            format!("columns of {table}"),
            format!("all {} map to StarRocks types exactly", columns.len()),
        ));
    }
}

/// Why some values of this column may not reach StarRocks exactly, if they may not.
fn lossy_note(column: &CatalogColumn, options: &TypeMapOptions) -> Option<String> {
    let is_numeric = column.type_oid == oid::NUMERIC || column.type_oid == 1231;
    if is_numeric && options.wide_numeric == WideNumeric::Decimal {
        let fits = numeric_precision_scale(column.type_modifier).is_some_and(|(p, s)| {
            let digits = (p - s).max(0) + s.max(0);
            (1..=38).contains(&digits)
        });
        if !fits {
            return Some(
                "numeric without a precision that fits DECIMAL(38): values with more than 29 \
                 integer digits or more than 9 decimals, NaN and ±Infinity are lossy"
                    .to_string(),
            );
        }
    }
    if column.dimensions > 1 {
        return Some(format!(
            "a {}-dimensional array becomes a one-dimensional StarRocks ARRAY",
            column.dimensions
        ));
    }
    None
}

fn lossy_fix(column: &CatalogColumn) -> &'static str {
    if column.dimensions > 1 {
        "store it as a one-dimensional array or as json in PostgreSQL"
    } else {
        "declare numeric(p,s) with p <= 38, or set sink.starrocks.wide_numeric = \"string\" \
         (exact text in VARCHAR)"
    }
}

fn policy_effect(policy: LossyPolicy) -> &'static str {
    match policy {
        LossyPolicy::Null => "\"null\" (such values are stored as NULL, counted and logged)",
        LossyPolicy::Error => "\"error\" (dbmazz stops at the first such value)",
        LossyPolicy::Truncate => {
            "\"truncate\" (strings are cut to fit and decimals rounded toward zero as documented; \
             other values are stored as NULL; all counted and logged)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnSchema;

    fn shape(keys: &[(&str, u32, i32)]) -> TableSchema {
        TableSchema {
            relation_oid: 1,
            name: TableName::new("public", "t"),
            replica_identity: ReplicaIdentity::Default,
            columns: keys
                .iter()
                .map(|(name, type_oid, type_modifier)| ColumnSchema {
                    name: name.to_string(),
                    type_oid: *type_oid,
                    type_modifier: *type_modifier,
                    is_key: true,
                    existing_rows: None,
                    origin: None,
                })
                .collect(),
            version: 1,
        }
    }

    #[test]
    fn key_columns_that_may_pass_128_bytes_are_warned_about() {
        let table = TableName::new("public", "t");
        assert!(key_size_line(&table, &shape(&[("id", oid::INT8, -1)])).is_none());
        assert!(key_size_line(&table, &shape(&[("code", oid::VARCHAR, 32 + 4)])).is_none());
        let line = key_size_line(
            &table,
            &shape(&[
                ("id", oid::INT8, -1),
                ("k", oid::TEXT, -1),
                ("v", oid::VARCHAR, 200 + 4),
            ]),
        )
        .unwrap();
        assert_eq!(line.status, super::super::CheckStatus::Warn);
        assert!(
            line.message.starts_with("key column(s) k, v may hold"),
            "{}",
            line.message
        );
    }
}
