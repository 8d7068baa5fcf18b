//! What we know about each published table: the Relation messages, cached by relation OID.
//!
//! Every decoded change holds an `Arc<TableSchema>` of the shape it was decoded under, so a
//! schema change is visible downstream as a change of that `Arc` (compare `version`), in stream
//! order, even for changes buffered or spilled long before they are applied.

mod relation_cache;
pub mod type_map;

pub use relation_cache::{RelationCache, RelationUpdate};
pub use type_map::{map_pg_type, ColumnMapping, LossyPolicy, StarRocksType, TypeMapOptions};

use crate::decode::{RelationBody, ReplicaIdentity};
use std::fmt;

/// A table's identity as PostgreSQL names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parses `schema.table` (or `table`, meaning `public.table`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (schema, name),
            None => ("public", text),
        };
        if schema.is_empty() || name.is_empty() || name.contains('.') {
            return None;
        }
        Some(TableName::new(schema, name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// One column as the Relation message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    pub name: String,
    pub type_oid: u32,
    /// `atttypmod`; -1 when none (varchar length + 4, numeric precision/scale packed, ...).
    pub type_modifier: i32,
    /// Part of the replica identity (the primary key under REPLICA IDENTITY DEFAULT).
    pub is_key: bool,
}

/// A table's shape at one point of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub relation_oid: u32,
    pub name: TableName,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<ColumnSchema>,
    /// Unique per shape within the process; changes when the Relation changes.
    pub version: u64,
}

impl TableSchema {
    pub fn from_relation(relation: &RelationBody, version: u64) -> Self {
        // pgoutput sends an empty namespace for pg_catalog.
        let schema = if relation.namespace.is_empty() {
            "pg_catalog".to_string()
        } else {
            relation.namespace.clone()
        };
        TableSchema {
            relation_oid: relation.oid,
            name: TableName::new(schema, relation.name.clone()),
            replica_identity: relation.replica_identity,
            columns: relation
                .columns
                .iter()
                .map(|column| ColumnSchema {
                    name: column.name.clone(),
                    type_oid: column.type_oid,
                    type_modifier: column.type_modifier,
                    is_key: column.is_key,
                })
                .collect(),
            version,
        }
    }

    /// Indexes of the key columns, in column order.
    pub fn key_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, column)| column.is_key)
            .map(|(index, _)| index)
    }

    /// Same columns, types and keys (ignores `version`).
    pub fn same_shape(&self, other: &TableSchema) -> bool {
        self.name == other.name
            && self.replica_identity == other.replica_identity
            && self.columns == other.columns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_parse_with_default_schema() {
        assert_eq!(
            TableName::parse("public.orders"),
            Some(TableName::new("public", "orders"))
        );
        assert_eq!(
            TableName::parse("orders"),
            Some(TableName::new("public", "orders"))
        );
        assert_eq!(TableName::parse("a.b.c"), None);
        assert_eq!(TableName::parse(".x"), None);
        assert_eq!(TableName::new("s", "t").to_string(), "s.t");
    }
}
