//! What we know about each published table: the Relation messages, cached by relation OID.
//!
//! Every decoded change holds an `Arc<TableSchema>` of the shape it was decoded under, so a
//! schema change is visible downstream as a change of that `Arc` (compare `version`), in stream
//! order, even for changes buffered or spilled long before they are applied.

mod key_columns;
mod relation_cache;
pub mod type_map;

pub use key_columns::{KeyOverrideError, KeyOverrides};
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
    /// For a column added by a schema change: what the rows that existed before it hold in
    /// it, read from PostgreSQL's catalog (pgoutput does not say). `None` for every other
    /// column, and when nobody looked. Not part of the shape.
    pub existing_rows: Option<ExistingRows>,
    /// Which column of the previous shape this one is, when PostgreSQL's attribute numbers
    /// say more than its name does (a rename, or a column dropped and added back under the
    /// same name). `None`: the same name is the same column, or nobody could tell. Not part
    /// of the shape.
    pub origin: Option<ColumnOrigin>,
}

/// What a column of a changed shape is to the previous shape, by attribute number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnOrigin {
    /// The previous shape's column of this name, renamed (`RENAME COLUMN`): same values.
    RenamedFrom(String),
    /// A new column under a name the previous shape had (dropped and added back): the rows
    /// that existed before hold what [`ColumnSchema::existing_rows`] says, not the old values.
    Recreated,
}

impl ColumnSchema {
    /// A column as a Relation message or the catalog describes it (nothing known of older
    /// rows or of earlier names).
    pub fn new(name: impl Into<String>, type_oid: u32, type_modifier: i32, is_key: bool) -> Self {
        ColumnSchema {
            name: name.into(),
            type_oid,
            type_modifier,
            is_key,
            existing_rows: None,
            origin: None,
        }
    }

    /// Same name, type and key flag ([`ColumnSchema::existing_rows`] is not shape).
    pub fn same_shape(&self, other: &ColumnSchema) -> bool {
        self.name == other.name
            && self.type_oid == other.type_oid
            && self.type_modifier == other.type_modifier
            && self.is_key == other.is_key
    }
}

/// What rows older than an added column hold in it.
///
/// `ALTER TABLE … ADD COLUMN c … DEFAULT <non-volatile>` gives every existing row the default
/// without writing it to the table or the WAL (PostgreSQL keeps it in
/// `pg_attribute.attmissingval`), so the stream never carries those values: the destination
/// has to be told. A volatile default (`random()`, `clock_timestamp()`) makes PostgreSQL
/// rewrite the table instead, again without decodable WAL, with a value per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExistingRows {
    /// No default: existing rows read NULL (what a plain ADD COLUMN gives in StarRocks too).
    Null,
    /// Every existing row reads this value, in PostgreSQL's text output form (the form the
    /// stream carries, so it goes through the same type map).
    Value(String),
    /// The values cannot be known from here; the reason says why (a volatile default, or a
    /// default whose origin the catalog no longer shows).
    Unknown(String),
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
                .map(|column| {
                    ColumnSchema::new(
                        column.name.clone(),
                        column.type_oid,
                        column.type_modifier,
                        column.is_key,
                    )
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

    /// Same columns, types and keys (ignores `version` and what is known of existing rows).
    pub fn same_shape(&self, other: &TableSchema) -> bool {
        self.name == other.name
            && self.replica_identity == other.replica_identity
            && self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(mine, theirs)| mine.same_shape(theirs))
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
