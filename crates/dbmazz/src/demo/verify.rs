//! `dbmazz demo --verify`: every demo table compared row by row, PostgreSQL against StarRocks.
//!
//! Values are read as text on both sides and put in one canonical form (JSON re-serialised,
//! trailing fractional zeros dropped) so that `12.50` equals `12.5` and `{"a": 1}` equals
//! `{"a":1}`, while any real difference still shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::schema::{DemoTable, TABLES};
use crate::sink::starrocks::ddl::quote;
use crate::sink::starrocks::{StarRocksDdl, AUDIT_IS_DELETED};

/// One table's comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: &'static str,
    pub postgres_rows: usize,
    pub starrocks_rows: usize,
    pub soft_deleted: usize,
    pub missing: usize,
    pub extra: usize,
    pub different: usize,
    /// The first difference, for the report.
    pub example: Option<String>,
}

impl TableCheck {
    pub fn identical(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.different == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading {table} from PostgreSQL: {source}")]
    Postgres {
        table: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("reading {table} from StarRocks: {message}")]
    StarRocks {
        table: &'static str,
        message: String,
    },
}

type Rows = BTreeMap<Vec<String>, Vec<Option<String>>>;

/// Compares every demo table once.
pub async fn compare_all(
    pg: &tokio_postgres::Client,
    starrocks: &StarRocksDdl,
    soft_deletes: bool,
) -> Result<Vec<TableCheck>, VerifyError> {
    let mut checks = Vec::new();
    for table in &TABLES {
        let postgres = postgres_rows(pg, table).await?;
        let (starrocks_rows, soft_deleted) = starrocks_rows(starrocks, table, soft_deletes).await?;
        checks.push(compare(table, &postgres, &starrocks_rows, soft_deleted));
    }
    Ok(checks)
}

fn compare(
    table: &DemoTable,
    postgres: &Rows,
    starrocks: &Rows,
    soft_deleted: usize,
) -> TableCheck {
    let mut check = TableCheck {
        table: table.name,
        postgres_rows: postgres.len(),
        starrocks_rows: starrocks.len(),
        soft_deleted,
        missing: 0,
        extra: 0,
        different: 0,
        example: None,
    };
    for (key, row) in postgres {
        match starrocks.get(key) {
            None => {
                check.missing += 1;
                check
                    .example
                    .get_or_insert_with(|| format!("key {key:?} missing in StarRocks"));
            }
            Some(other) if other != row => {
                check.different += 1;
                check.example.get_or_insert_with(|| {
                    let column = row
                        .iter()
                        .zip(other)
                        .position(|(a, b)| a != b)
                        .map_or("?", |index| table.columns[index]);
                    format!("key {key:?} differs in column {column}")
                });
            }
            Some(_) => {}
        }
    }
    for key in starrocks.keys() {
        if !postgres.contains_key(key) {
            check.extra += 1;
            check
                .example
                .get_or_insert_with(|| format!("key {key:?} only in StarRocks"));
        }
    }
    check
}

async fn postgres_rows(
    pg: &tokio_postgres::Client,
    table: &'static DemoTable,
) -> Result<Rows, VerifyError> {
    let select = table
        .columns
        .iter()
        .map(|column| postgres_expression(column))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {select} FROM public.{}", table.name);
    let messages = pg
        .simple_query(&sql)
        .await
        .map_err(|source| VerifyError::Postgres {
            table: table.name,
            source,
        })?;
    let mut rows = Rows::new();
    for message in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            let values: Vec<Option<String>> = (0..table.columns.len())
                .map(|index| row.get(index).map(canonical))
                .collect();
            rows.insert(key_of(table, &values), values);
        }
    }
    Ok(rows)
}

/// Timestamps as StarRocks stores them: UTC, `YYYY-MM-DD HH:MM:SS.ffffff`.
fn postgres_expression(column: &str) -> String {
    if column.ends_with("_at") {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
    } else {
        column.to_string()
    }
}

async fn starrocks_rows(
    starrocks: &StarRocksDdl,
    table: &'static DemoTable,
    soft_deletes: bool,
) -> Result<(Rows, usize), VerifyError> {
    let mut columns: Vec<String> = table.columns.iter().map(|column| quote(column)).collect();
    if soft_deletes {
        columns.push(quote(AUDIT_IS_DELETED));
    }
    let sql = format!(
        "SELECT {} FROM {}.{}",
        columns.join(", "),
        quote(starrocks.database()),
        quote(table.name)
    );
    let result = starrocks
        .query_text(&sql)
        .await
        .map_err(|error| VerifyError::StarRocks {
            table: table.name,
            message: error.to_string(),
        })?;
    let mut rows = Rows::new();
    let mut soft_deleted = 0;
    for mut values in result {
        if soft_deletes {
            let deleted = values.pop().flatten();
            if matches!(deleted.as_deref(), Some("1" | "true")) {
                soft_deleted += 1;
                continue;
            }
        }
        let values: Vec<Option<String>> = values
            .into_iter()
            .map(|value| value.as_deref().map(canonical))
            .collect();
        rows.insert(key_of(table, &values), values);
    }
    Ok((rows, soft_deleted))
}

fn key_of(table: &DemoTable, values: &[Option<String>]) -> Vec<String> {
    table
        .key
        .iter()
        .filter_map(|key| table.columns.iter().position(|column| column == key))
        .map(|index| {
            let value = values.get(index).cloned().flatten().unwrap_or_default();
            // Numeric keys sort numerically.
            format!("{value:0>20}")
        })
        .collect()
}

/// One form for both sides: JSON re-serialised, trailing fractional zeros dropped.
pub fn canonical(value: &str) -> String {
    if value.starts_with('{') || value.starts_with('[') {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(value) {
            return json.to_string();
        }
    }
    if let Some((whole, fraction)) = value.rsplit_once('.') {
        if !fraction.is_empty() && fraction.bytes().all(|byte| byte.is_ascii_digit()) {
            let fraction = fraction.trim_end_matches('0');
            return if fraction.is_empty() {
                whole.to_string()
            } else {
                format!("{whole}.{fraction}")
            };
        }
    }
    value.to_string()
}

/// The pass/fail table.
pub fn render(checks: &[TableCheck]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>10} {:>10} {:>13} {:>8} {:>6} {:>10}  result",
        "table", "postgres", "starrocks", "soft-deleted", "missing", "extra", "different"
    );
    for check in checks {
        let _ = writeln!(
            out,
            "{:<14} {:>10} {:>10} {:>13} {:>8} {:>6} {:>10}  {}",
            check.table,
            check.postgres_rows,
            check.starrocks_rows,
            check.soft_deleted,
            check.missing,
            check.extra,
            check.different,
            if check.identical() {
                "PASS".to_string()
            } else {
                format!("FAIL ({})", check.example.as_deref().unwrap_or(""))
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_match_across_both_sides() {
        assert_eq!(canonical("12.50"), canonical("12.5"));
        assert_eq!(
            canonical("2026-11-26 00:10:04.120000"),
            "2026-11-26 00:10:04.12"
        );
        assert_eq!(
            canonical("2026-11-26 00:10:04.000000"),
            canonical("2026-11-26 00:10:04")
        );
        assert_eq!(
            canonical(r#"{"b": 1, "a": [true]}"#),
            canonical(r#"{"a":[true],"b":1}"#)
        );
        assert_ne!(canonical("12.51"), canonical("12.5"));
        assert_eq!(canonical("customer1@example.com"), "customer1@example.com");
    }

    #[test]
    fn differences_are_counted_and_named() {
        let table = &TABLES[0];
        let row = |id: &str, name: &str| {
            let values: Vec<Option<String>> = [id, name, "e", "c", "t"]
                .iter()
                .map(|value| Some(value.to_string()))
                .collect();
            (key_of(table, &values), values)
        };
        let postgres: Rows = [row("1", "a"), row("2", "b"), row("3", "c")].into();
        let starrocks: Rows = [row("1", "a"), row("2", "x"), row("4", "d")].into();
        let check = compare(table, &postgres, &starrocks, 0);
        assert_eq!((check.missing, check.extra, check.different), (1, 1, 1));
        assert!(!check.identical());
        assert!(render(&[check]).contains("FAIL"));
        let same = compare(table, &postgres, &postgres, 2);
        assert!(same.identical());
        assert!(render(&[same]).contains("PASS"));
    }
}
