//! What rows older than an added column hold in it, read from PostgreSQL's catalog.
//!
//! `ALTER TABLE t ADD COLUMN c int DEFAULT 7` gives every existing row 7 without writing a byte
//! of WAL: PostgreSQL stores the value once, as the column's "missing value"
//! (`pg_attribute.atthasmissing` / `attmissingval`, PostgreSQL 11+), and the Relation message
//! that announces the new shape carries no defaults. So when a changed Relation adds columns,
//! [`CatalogFacts`](super::CatalogFacts) reads each new column's missing value and hands it to the sink on
//! [`ColumnSchema::existing_rows`](crate::schema::ColumnSchema::existing_rows); the sink itself never talks to PostgreSQL. A table's first
//! Relation of a run gets the same for all its value columns (one query per table and run):
//! after a stop between the ALTER in PostgreSQL and the one in StarRocks, the sink adds the
//! missing columns when it prepares the table.
//!
//! `attmissingval` is the exact value: the default evaluated once, at ADD COLUMN time, in
//! PostgreSQL's text output form under our session settings (the form the stream carries).
//! `pg_get_expr(adbin)` is not: it is the *current* default expression (`now()` would be
//! evaluated again, and `SET DEFAULT` may have changed it since).
//!
//! What the catalog cannot tell: a column with a default but no missing value. Either the
//! default was volatile (`random()`, `clock_timestamp()`: PostgreSQL rewrote the table with a
//! value per row, and rewrites are not decoded), or the table was rewritten after the column
//! was added (a rewrite materializes missing values and clears them), or the default was set
//! after the column was added (existing rows are NULL). The catalog is read when the schema
//! change is applied, not as of its LSN, so the last two happen when dbmazz is behind (or
//! replays after a restart). Those columns are [`ExistingRows::Unknown`]: the sink warns and
//! counts them, and a re-snapshot of the table repairs them.

use std::collections::HashMap;

use crate::schema::ExistingRows;
use crate::source::SourceError;

/// One `pg_attribute` row of an added column.
struct AddedColumnRow {
    name: String,
    has_missing: bool,
    /// The missing value as text, when the type's array delimiter is `,` (read in one go).
    missing_text: Option<String>,
    /// `format_type(atttypid, NULL)`, to read the value of a `;`-delimited type (`box`).
    type_name: String,
    /// A default expression, an identity or a stored generated column: all give existing rows
    /// values (identity and generated columns by rewriting the table).
    has_default: bool,
}

/// Reads what existing rows hold in `columns` of relation `relation_oid`.
///
/// `attmissingval` is an `anyarray` holding one element of the column's type. Its text form is
/// that element in array-literal syntax (`{7}`, `{"a \"b\""}`, `{"{1,2}"}` for an int[]
/// column), which PostgreSQL itself parses back when cast to `text[]`: the element comes out
/// in the column type's own output form. Types whose array delimiter is not `,` (only `box`
/// among built-ins) are cast to their own array type instead.
pub async fn read_existing_rows(
    client: &tokio_postgres::Client,
    relation_oid: u32,
    columns: &[String],
) -> Result<HashMap<String, ExistingRows>, SourceError> {
    const QUERY: &str = "SELECT a.attname::text, a.atthasmissing, \
           CASE WHEN a.atthasmissing AND t.typdelim = ',' \
                THEN (a.attmissingval::text::text[])[1] END, \
           format_type(a.atttypid, NULL), \
           d.adbin IS NOT NULL OR a.attidentity <> '' OR a.attgenerated <> '' \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
           AND a.attname::text = ANY($2)";
    let rows = client
        .query(QUERY, &[&relation_oid, &columns])
        .await
        .map_err(SourceError::from)?;
    let mut found = HashMap::new();
    for row in rows {
        let column = AddedColumnRow {
            name: row.try_get(0)?,
            has_missing: row.try_get(1)?,
            missing_text: row.try_get(2)?,
            type_name: row.try_get(3)?,
            has_default: row.try_get(4)?,
        };
        let existing = match (column.has_missing, column.missing_text) {
            (true, Some(text)) => ExistingRows::Value(text),
            (true, None) => {
                let statement = format!(
                    "SELECT (attmissingval::text::{}[])[1]::text FROM pg_catalog.pg_attribute \
                     WHERE attrelid = $1 AND attname::text = $2",
                    column.type_name
                );
                let value: Option<String> = client
                    .query_one(&statement, &[&relation_oid, &column.name])
                    .await?
                    .try_get(0)?;
                value.map_or(ExistingRows::Null, ExistingRows::Value)
            }
            (false, _) if column.has_default => ExistingRows::Unknown(
                "the column has a default but PostgreSQL recorded no value for existing rows: \
                 a volatile default, identity or generated column (PostgreSQL rewrote the table \
                 with a value per row), a table rewrite since the column was added, or a \
                 default set afterwards"
                    .into(),
            ),
            (false, _) => ExistingRows::Null,
        };
        found.insert(column.name, existing);
    }
    Ok(found)
}
