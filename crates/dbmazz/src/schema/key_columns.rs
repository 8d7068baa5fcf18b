//! Key columns given in the configuration (`source.key_columns`) for tables whose replica
//! identity names none: a table without a primary key under `REPLICA IDENTITY FULL` (pgoutput
//! then flags every column as key, and sends every old column with UPDATE and DELETE), or an
//! insert-only table. A StarRocks Primary Key table needs a key; these columns are it.
//!
//! A table whose replica identity has a key (a primary key, or `USING INDEX`) keeps it: under
//! it PostgreSQL sends old values only for that key, so another key could not be followed
//! through an UPDATE.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ReplicaIdentity, TableName, TableSchema};

/// Configured key columns by table (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct KeyOverrides(Arc<HashMap<TableName, Vec<String>>>);

/// Why configured key columns were not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyOverrideError {
    #[error(
        "source.key_columns names {missing} for {table}, which has no such column: fix the \
         column names"
    )]
    MissingColumns { table: TableName, missing: String },
    #[error(
        "source.key_columns names key columns for {table}, but its replica identity already has \
         a key ({key}), which dbmazz uses: remove {table} from source.key_columns"
    )]
    HasIdentityKey { table: TableName, key: String },
}

impl KeyOverrides {
    pub fn new(keys: HashMap<TableName, Vec<String>>) -> Self {
        KeyOverrides(Arc::new(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `table` has configured key columns.
    pub fn covers(&self, table: &TableName) -> bool {
        self.0.contains_key(table)
    }

    /// Makes the configured columns `schema`'s key when the table is listed. Leaves the
    /// schema as it was on error.
    pub fn apply(&self, schema: &mut TableSchema) -> Result<(), KeyOverrideError> {
        let Some(keys) = self.0.get(&schema.name) else {
            return Ok(());
        };
        let identity_key: Vec<&str> = schema
            .columns
            .iter()
            .filter(|column| column.is_key)
            .map(|column| column.name.as_str())
            .collect();
        let same = identity_key.len() == keys.len()
            && keys.iter().all(|key| identity_key.contains(&key.as_str()));
        if schema.replica_identity != ReplicaIdentity::Full && !identity_key.is_empty() && !same {
            return Err(KeyOverrideError::HasIdentityKey {
                table: schema.name.clone(),
                key: identity_key.join(", "),
            });
        }
        let missing: Vec<&str> = keys
            .iter()
            .filter(|key| !schema.columns.iter().any(|column| &column.name == *key))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(KeyOverrideError::MissingColumns {
                table: schema.name.clone(),
                missing: missing.join(", "),
            });
        }
        for column in &mut schema.columns {
            column.is_key = keys.contains(&column.name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnSchema;

    fn table(identity: ReplicaIdentity, keys: &[bool]) -> TableSchema {
        TableSchema {
            relation_oid: 1,
            name: TableName::new("public", "events"),
            replica_identity: identity,
            columns: ["id", "at", "body"]
                .iter()
                .zip(keys)
                .map(|(name, &is_key)| ColumnSchema::new(*name, 23, -1, is_key))
                .collect(),
            version: 1,
        }
    }

    fn overrides(keys: &[&str]) -> KeyOverrides {
        let keys = keys.iter().map(|key| key.to_string()).collect();
        KeyOverrides::new(HashMap::from([(TableName::new("public", "events"), keys)]))
    }

    fn key_names(schema: &TableSchema) -> Vec<&str> {
        schema
            .key_indexes()
            .map(|index| schema.columns[index].name.as_str())
            .collect()
    }

    #[test]
    fn configured_keys_replace_a_full_identity_or_fill_a_missing_one() {
        let mut full = table(ReplicaIdentity::Full, &[true, true, true]);
        overrides(&["id", "at"]).apply(&mut full).unwrap();
        assert_eq!(key_names(&full), ["id", "at"]);

        let mut keyless = table(ReplicaIdentity::Default, &[false, false, false]);
        overrides(&["id"]).apply(&mut keyless).unwrap();
        assert_eq!(key_names(&keyless), ["id"]);

        let mut unlisted = table(ReplicaIdentity::Default, &[false, false, false]);
        let other = KeyOverrides::new(HashMap::from([(
            TableName::new("public", "other"),
            vec!["id".to_string()],
        )]));
        other.apply(&mut unlisted).unwrap();
        assert!(key_names(&unlisted).is_empty());
    }

    #[test]
    fn an_identity_key_is_kept_and_unknown_columns_are_refused() {
        let mut with_pk = table(ReplicaIdentity::Default, &[true, false, false]);
        overrides(&["id"]).apply(&mut with_pk).unwrap();
        let error = overrides(&["at"]).apply(&mut with_pk).unwrap_err();
        assert!(
            error.to_string().contains("already has a key (id)"),
            "{error}"
        );
        assert_eq!(key_names(&with_pk), ["id"]);

        let mut full = table(ReplicaIdentity::Full, &[true, true, true]);
        let error = overrides(&["id", "nope"]).apply(&mut full).unwrap_err();
        assert!(error.to_string().contains("names nope"), "{error}");
        assert_eq!(key_names(&full), ["id", "at", "body"]);
    }
}
