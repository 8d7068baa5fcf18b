//! Partitions attached to (or detached from) a published partitioned table after it was
//! copied.
//!
//! Published via its root, a partitioned table streams the changes of every leaf, but
//! `ATTACH PARTITION` writes no row to the WAL: the rows a partition holds when it is attached
//! would never reach StarRocks. So the leaves are compared now and then with the ones a
//! snapshot already read (recorded in the state file); a new leaf gets a snapshot of its own.
//! A leaf gone (detached or dropped) is only reported: its rows stay in StarRocks, as with any
//! CDC tool, until the table is re-snapshotted with `replace`. A leaf with a new file
//! (`relfilenode`) was truncated or rewritten: pgoutput does not send the TRUNCATE of one
//! partition of a table published via its root, so that is reported too.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::SnapshotError;
use crate::checkpoint::LeafPartitions;
use crate::schema::TableName;
use crate::source::{quote_ident, SourceError};

/// The leaf partitions of the published partitioned tables, and the file each leaf has now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartitionCatalog {
    pub leaves: LeafPartitions,
    /// Leaf (`schema.table`) → its `pg_class.relfilenode`.
    pub files: BTreeMap<String, u32>,
}

/// The leaf partitions (plain tables; foreign ones cannot be read) of each partitioned table
/// of `publication`, `schema.table` each; a partitioned table without leaves maps to none.
pub async fn partition_leaves(
    client: &Client,
    publication: &str,
) -> Result<PartitionCatalog, SnapshotError> {
    let rows = client
        .query(
            "SELECT rn.nspname::text, rc.relname::text, leaf.nsp, leaf.rel, leaf.file \
             FROM pg_publication_tables pt \
             JOIN pg_namespace rn ON rn.nspname = pt.schemaname \
             JOIN pg_class rc ON rc.relnamespace = rn.oid AND rc.relname = pt.tablename \
                             AND rc.relkind = 'p' \
             LEFT JOIN LATERAL ( \
                 SELECT ln.nspname::text AS nsp, lc.relname::text AS rel, \
                        lc.relfilenode AS file \
                 FROM pg_partition_tree(rc.oid) p \
                 JOIN pg_class lc ON lc.oid = p.relid AND lc.relkind = 'r' \
                 JOIN pg_namespace ln ON ln.oid = lc.relnamespace \
                 WHERE p.isleaf) leaf ON true \
             WHERE pt.pubname = $1",
            &[&publication],
        )
        .await
        .map_err(SourceError::from)?;
    let mut catalog = PartitionCatalog::default();
    for row in &rows {
        let root = TableName::new(row.get::<_, String>(0), row.get::<_, String>(1));
        let entry = catalog.leaves.entry(root.to_string()).or_default();
        if let (Some(schema), Some(name)) = (
            row.get::<_, Option<String>>(2),
            row.get::<_, Option<String>>(3),
        ) {
            let leaf = TableName::new(schema, name).to_string();
            if let Some(file) = row.get::<_, Option<u32>>(4) {
                catalog.files.insert(leaf.clone(), file);
            }
            entry.insert(leaf);
        }
    }
    Ok(catalog)
}

/// Which of `relations` (`(schema, name)`) hold a row now. A partition attached (or created)
/// empty needs no copy: it is already in the tree, so every row it gets is in the WAL under
/// the published table (and an `ATTACH` waits for writers of the partition to finish).
pub async fn relations_with_rows(
    client: &Client,
    relations: &BTreeSet<(String, String)>,
) -> Result<BTreeSet<String>, SnapshotError> {
    let mut with_rows = BTreeSet::new();
    for (schema, name) in relations {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM ONLY {}.{})",
            quote_ident(schema),
            quote_ident(name)
        );
        let row = client
            .query_one(&sql, &[])
            .await
            .map_err(SourceError::from)?;
        if row.get::<_, Option<bool>>(0).unwrap_or(true) {
            with_rows.insert(TableName::new(schema.clone(), name.clone()).to_string());
        }
    }
    Ok(with_rows)
}

/// What changed between the recorded leaves and the catalog's, per partitioned table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeafChanges {
    /// Leaves not read by any snapshot yet.
    pub attached: LeafPartitions,
    /// Recorded leaves no longer in the table.
    pub detached: LeafPartitions,
}

/// Compares only the tables `current` lists (a table dropped altogether is the stream's
/// business, not a detach).
pub fn compare(recorded: &LeafPartitions, current: &LeafPartitions) -> LeafChanges {
    let none = BTreeSet::new();
    let mut changes = LeafChanges::default();
    for (table, leaves) in current {
        let known = recorded.get(table).unwrap_or(&none);
        let attached: BTreeSet<String> = leaves.difference(known).cloned().collect();
        let detached: BTreeSet<String> = known.difference(leaves).cloned().collect();
        if !attached.is_empty() {
            changes.attached.insert(table.clone(), attached);
        }
        if !detached.is_empty() {
            changes.detached.insert(table.clone(), detached);
        }
    }
    changes
}

/// The leaves of `leaves`' tables whose file (`files`, from the catalog) is not the one
/// recorded for them (truncated or rewritten since); leaves without a recorded file are not
/// compared.
pub fn rewritten(
    recorded_files: &BTreeMap<String, u32>,
    leaves: &LeafPartitions,
    files: &BTreeMap<String, u32>,
) -> LeafPartitions {
    let mut found = LeafPartitions::new();
    for (table, table_leaves) in leaves {
        for leaf in table_leaves {
            let (was, now) = (recorded_files.get(leaf), files.get(leaf));
            if was.is_some() && now.is_some() && was != now {
                found.entry(table.clone()).or_default().insert(leaf.clone());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(entries: &[(&str, &[&str])]) -> LeafPartitions {
        entries
            .iter()
            .map(|(table, leaves)| {
                let set = leaves.iter().map(|leaf| leaf.to_string()).collect();
                (table.to_string(), set)
            })
            .collect()
    }

    #[test]
    fn new_leaves_are_attached_and_missing_ones_detached() {
        let recorded = leaves(&[
            ("public.m", &["public.m_1", "public.m_2"]),
            ("public.gone", &["public.gone_1"]),
        ]);
        let current = leaves(&[
            ("public.m", &["public.m_2", "public.m_3"]),
            ("public.fresh", &["public.fresh_1"]),
            ("public.empty", &[]),
        ]);
        let changes = compare(&recorded, &current);
        assert_eq!(
            changes.attached,
            leaves(&[
                ("public.fresh", &["public.fresh_1"]),
                ("public.m", &["public.m_3"]),
            ])
        );
        assert_eq!(changes.detached, leaves(&[("public.m", &["public.m_1"])]));
    }

    #[test]
    fn a_leaf_with_a_new_file_is_rewritten_and_one_never_recorded_is_not() {
        let current = PartitionCatalog {
            leaves: leaves(&[("public.m", &["public.m_1", "public.m_2", "public.m_3"])]),
            files: [("public.m_1", 10), ("public.m_2", 21), ("public.m_3", 30)]
                .into_iter()
                .map(|(leaf, file)| (leaf.to_string(), file))
                .collect(),
        };
        let recorded: BTreeMap<String, u32> = [("public.m_1", 10), ("public.m_2", 20)]
            .into_iter()
            .map(|(leaf, file)| (leaf.to_string(), file))
            .collect();
        assert_eq!(
            rewritten(&recorded, &current.leaves, &current.files),
            leaves(&[("public.m", &["public.m_2"])])
        );
        assert!(rewritten(&current.files, &current.leaves, &current.files).is_empty());
    }

    #[test]
    fn the_same_leaves_change_nothing() {
        let recorded = leaves(&[("public.m", &["public.m_1"])]);
        assert_eq!(compare(&recorded, &recorded), LeafChanges::default());
    }
}
