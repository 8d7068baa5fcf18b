//! What the snapshot needs from the catalog: each published table's shape — the same
//! [`TableSchema`] its Relation message will carry — and the heap relations to read.
//!
//! pgoutput describes a table with its columns in `attnum` order minus dropped and generated
//! ones, the raw `atttypid`/`atttypmod`, and flags a column as key when it is in the replica
//! identity: the primary key (`d`), the chosen index (`i`), every column (`f`) or none (`n`).
//! A partitioned table published via its root is read leaf by leaf (ctid is per relation)
//! and described by the root.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::Client;

use super::SnapshotError;
use crate::checkpoint::{SnapshotChunk, TableSnapshotState};
use crate::decode::ReplicaIdentity;
use crate::schema::{ColumnSchema, TableName, TableSchema};
use crate::source::SourceError;

/// Schema versions of catalog-built shapes: far from the relation cache's small counters,
/// so a version never names two shapes (versions are compared only for equality).
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1 << 48);

/// What a publication publishes of one table (PostgreSQL 15+; older servers publish every
/// column and row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedPart {
    /// The column list (`FOR TABLE t (a, b)`); `None` = every column.
    pub columns: Option<Vec<String>>,
    /// The row filter (`FOR TABLE t WHERE (…)`), as `pg_get_expr` prints it.
    pub row_filter: Option<String>,
}

/// `publication`'s column list and row filter for `table`. pgoutput's Relation messages and
/// changes leave out the rest, so the snapshot must too (`to_jsonb` keeps the query valid on
/// servers before 15, whose view has neither column).
pub async fn published_part(
    client: &Client,
    table: &TableName,
    publication: &str,
) -> Result<PublishedPart, SnapshotError> {
    let row = client
        .query_opt(
            "SELECT to_jsonb(pt) ? 'attnames' AND to_jsonb(pt) -> 'attnames' <> 'null', \
                    ARRAY(SELECT jsonb_array_elements_text( \
                        coalesce(nullif(to_jsonb(pt) -> 'attnames', 'null'), '[]'))), \
                    to_jsonb(pt) ->> 'rowfilter' \
             FROM pg_publication_tables pt \
             WHERE pt.pubname = $1 AND pt.schemaname = $2 AND pt.tablename = $3",
            &[&publication, &table.schema, &table.name],
        )
        .await
        .map_err(SourceError::from)?;
    Ok(
        row.map_or_else(PublishedPart::default, |row| PublishedPart {
            columns: row
                .get::<_, Option<bool>>(0)
                .unwrap_or(false)
                .then(|| row.get(1)),
            row_filter: row.get(2),
        }),
    )
}

/// The shape pgoutput will announce for `table` as `publication` publishes it.
pub async fn table_schema(
    client: &Client,
    table: &TableName,
    publication: &str,
) -> Result<TableSchema, SnapshotError> {
    let published = published_part(client, table, publication).await?;
    let row = client
        .query_opt(
            "SELECT c.oid, c.relreplident::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(SourceError::from)?
        .ok_or_else(|| SnapshotError::TableMissing {
            table: table.clone(),
        })?;
    let oid: u32 = row.get(0);
    let replica_identity = match row.get::<_, String>(1).as_str() {
        "n" => ReplicaIdentity::Nothing,
        "f" => ReplicaIdentity::Full,
        "i" => ReplicaIdentity::Index,
        _ => ReplicaIdentity::Default,
    };
    let key_attnums: Vec<i16> = match replica_identity {
        ReplicaIdentity::Nothing | ReplicaIdentity::Full => Vec::new(),
        ReplicaIdentity::Default | ReplicaIdentity::Index => {
            let condition = if replica_identity == ReplicaIdentity::Default {
                "i.indisprimary"
            } else {
                "i.indisreplident"
            };
            client
                .query(
                    &format!(
                        "SELECT k FROM pg_index i, unnest(i.indkey::int2[]) k \
                         WHERE i.indrelid = $1 AND {condition}"
                    ),
                    &[&oid],
                )
                .await
                .map_err(SourceError::from)?
                .iter()
                .map(|row| row.get(0))
                .collect()
        }
    };
    let columns = client
        .query(
            "SELECT attname::text, atttypid, atttypmod, attnum, attgenerated <> '', \
                    current_setting('server_version_num')::int >= 180000 \
             FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(SourceError::from)?
        .iter()
        .filter(|row| {
            let name: &str = row.get(0);
            let (generated, publishes_generated): (bool, bool) = (row.get(4), row.get(5));
            // A generated column is published only by PostgreSQL 18+, and only when the
            // publication's columns name it (a column list, or publish_generated_columns =
            // stored); before 18 `attnames` lists generated columns pgoutput never sends.
            let listed = published
                .columns
                .as_ref()
                .is_none_or(|listed| listed.iter().any(|column| column == name));
            listed && (!generated || (publishes_generated && published.columns.is_some()))
        })
        .map(|row| {
            let attnum: i16 = row.get(3);
            ColumnSchema::new(
                row.get::<_, String>(0),
                row.get(1),
                row.get(2),
                replica_identity == ReplicaIdentity::Full || key_attnums.contains(&attnum),
            )
        })
        .collect();
    Ok(TableSchema {
        relation_oid: oid,
        name: table.clone(),
        replica_identity,
        columns,
        version: NEXT_VERSION.fetch_add(1, Ordering::Relaxed),
    })
}

/// A heap relation and its size in pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapRelation {
    pub name: TableName,
    pub pages: u64,
    /// `pg_relation_filenode` (see `SnapshotChunk::filenode`).
    pub filenode: u32,
}

/// The heap relations holding `table`'s rows: itself, or its leaf partitions.
pub async fn heap_relations(
    client: &Client,
    table: &TableName,
) -> Result<Vec<HeapRelation>, SnapshotError> {
    let rows = client
        .query(
            // pg_partition_tree lists nothing for a table outside any partition tree.
            "WITH t AS (SELECT c.oid, c.relkind FROM pg_class c \
                        JOIN pg_namespace n ON n.oid = c.relnamespace \
                        WHERE n.nspname = $1 AND c.relname = $2), \
                  leaves AS (SELECT p.relid AS oid FROM t, pg_partition_tree(t.oid) p \
                             WHERE t.relkind = 'p' AND p.isleaf \
                             UNION ALL SELECT t.oid FROM t WHERE t.relkind = 'r') \
             SELECT n.nspname::text, c.relname::text, \
                    pg_relation_size(c.oid) / current_setting('block_size')::bigint, \
                    coalesce(pg_relation_filenode(c.oid), 0) \
             FROM leaves JOIN pg_class c ON c.oid = leaves.oid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' \
             ORDER BY 1, 2",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(SourceError::from)?;
    Ok(rows
        .iter()
        .map(|row| HeapRelation {
            name: TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)),
            pages: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
            filenode: row.get::<_, u32>(3),
        })
        .collect())
}

/// Cuts each relation into ranges of `chunk_pages` pages; a relation's last chunk is
/// open-ended. Chunk ids continue from `next_id`.
pub fn plan_chunks(
    table: &TableName,
    relations: &[HeapRelation],
    chunk_pages: u32,
    next_id: &mut u32,
) -> TableSnapshotState {
    let step = u64::from(chunk_pages.max(1));
    let mut chunks = Vec::new();
    for relation in relations {
        let count = relation.pages.div_ceil(step).max(1);
        for index in 0..count {
            let first = index * step;
            let last = index + 1 == count;
            let end = (!last).then(|| first + step);
            chunks.push(SnapshotChunk {
                id: *next_id,
                relation_schema: relation.name.schema.clone(),
                relation_name: relation.name.name.clone(),
                first_page: u32::try_from(first).unwrap_or(u32::MAX),
                end_page: end.map(|end| u32::try_from(end).unwrap_or(u32::MAX)),
                estimated_pages: relation.pages.saturating_sub(first).min(step).max(1),
                filenode: relation.filenode,
                done: false,
                rows: 0,
            });
            *next_id += 1;
        }
    }
    TableSnapshotState {
        table: table.to_string(),
        row_filter: None,
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_are_cut_into_page_ranges_with_an_open_last_chunk() {
        let table = TableName::new("public", "orders");
        let relations = [
            HeapRelation {
                name: TableName::new("public", "orders_a"),
                pages: 25,
                filenode: 16_384,
            },
            HeapRelation {
                name: TableName::new("public", "orders_b"),
                pages: 0,
                filenode: 16_390,
            },
        ];
        let mut next_id = 7;
        let plan = plan_chunks(&table, &relations, 10, &mut next_id);
        let ranges: Vec<_> = plan
            .chunks
            .iter()
            .map(|c| (c.id, c.relation_name.as_str(), c.first_page, c.end_page))
            .collect();
        assert_eq!(
            ranges,
            vec![
                (7, "orders_a", 0, Some(10)),
                (8, "orders_a", 10, Some(20)),
                (9, "orders_a", 20, None),
                (10, "orders_b", 0, None),
            ]
        );
        assert_eq!(next_id, 11);
        assert_eq!(plan.chunks[2].filenode, 16_384);
        assert_eq!(plan.chunks[3].filenode, 16_390);
        assert_eq!(plan.table, "public.orders");
    }
}
