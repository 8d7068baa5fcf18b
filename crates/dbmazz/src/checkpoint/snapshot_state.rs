//! The snapshot section of the state file: each table's chunk plan and which chunks are loaded.
//!
//! A chunk is marked done only after every batch of it is durable in the sink, and the file
//! is rewritten atomically after each one, so after a crash exactly the chunks not marked done
//! are read again (DESIGN §5).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One snapshot (an epoch) of the published tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// 1 for the first snapshot; +1 for each later complete snapshot (`mode = "always"`).
    pub epoch: u64,
    /// Starts of dbmazz that read this epoch (1 = the first, with the slot's exported
    /// snapshot); part of every load label, since a re-read chunk may hold other rows.
    pub attempt: u64,
    /// Random, drawn when the plan is made; part of every load label. StarRocks remembers
    /// labels for days, and epoch and attempt start again at 1 once the state file is gone
    /// (`dbmazz cleanup --state`): without it a new snapshot's loads would be taken for loads
    /// already done and skipped. 0 in state files written before it existed.
    #[serde(default)]
    pub plan_id: u32,
    pub tables: Vec<TableSnapshotState>,
    /// A one-table snapshot asked with `replace`: the StarRocks table is emptied before the
    /// first chunk loads.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
    /// The table was emptied (recorded before any chunk is marked done, so that a restart
    /// never empties it again under chunks already loaded).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emptied: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSnapshotState {
    /// The published table (`schema.table`), as the stream names it.
    pub table: String,
    /// The publication's row filter for the table (PostgreSQL 15+), applied to every chunk:
    /// pgoutput sends only the rows it lets through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    pub chunks: Vec<SnapshotChunk>,
}

/// A ctid page range of one heap relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// Unique within the epoch.
    pub id: u32,
    /// The relation read: the table itself or, for a partitioned table, one leaf partition
    /// (`schema.table`).
    pub relation_schema: String,
    pub relation_name: String,
    /// First heap page read.
    pub first_page: u32,
    /// First page not read; `None` for a relation's last chunk, which stays open-ended so
    /// that rows in pages added after planning are not missed.
    pub end_page: Option<u32>,
    /// Pages the plan expected in this chunk (for progress and ETA only).
    pub estimated_pages: u64,
    /// The relation's file when planned (`pg_relation_filenode`): a rewrite (`VACUUM FULL`,
    /// `CLUSTER`, `ALTER TABLE … TYPE`) gives it a new file whose page ranges hold other rows,
    /// so a chunk is read only from the file it was cut from. 0 = not recorded (not checked).
    #[serde(default)]
    pub filenode: u32,
    #[serde(default)]
    pub done: bool,
    /// Rows loaded from this chunk (when done).
    #[serde(default)]
    pub rows: u64,
}

impl SnapshotChunk {
    /// The relation read, `schema.table`.
    pub fn relation(&self) -> String {
        format!("{}.{}", self.relation_schema, self.relation_name)
    }
}

impl SnapshotState {
    pub fn is_finished(&self) -> bool {
        self.tables
            .iter()
            .all(|table| table.chunks.iter().all(|chunk| chunk.done))
    }

    /// Marks a chunk done; false when no chunk has that id.
    pub fn mark_done(&mut self, chunk_id: u32, rows: u64) -> bool {
        for table in &mut self.tables {
            if let Some(chunk) = table.chunks.iter_mut().find(|chunk| chunk.id == chunk_id) {
                chunk.done = true;
                chunk.rows = rows;
                return true;
            }
        }
        false
    }

    /// The leaf partitions each partitioned table of the plan reads (`schema.table`); a
    /// plain table, which reads itself, is left out.
    pub fn leaf_partitions(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut leaves: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for table in &self.tables {
            for chunk in &table.chunks {
                let relation = chunk.relation();
                if relation != table.table {
                    leaves
                        .entry(table.table.clone())
                        .or_default()
                        .insert(relation);
                }
            }
        }
        leaves
    }

    /// Keeps only the chunks of these relations (`schema.table`): the snapshot of partitions
    /// attached after the table was copied.
    pub fn retain_relations(&mut self, relations: &BTreeSet<String>) {
        for table in &mut self.tables {
            table
                .chunks
                .retain(|chunk| relations.contains(&chunk.relation()));
        }
    }

    pub fn chunk_count(&self) -> usize {
        self.tables.iter().map(|table| table.chunks.len()).sum()
    }

    pub fn done_count(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|table| &table.chunks)
            .filter(|chunk| chunk.done)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: u32, end_page: Option<u32>) -> SnapshotChunk {
        SnapshotChunk {
            id,
            relation_schema: "public".into(),
            relation_name: "orders".into(),
            first_page: id * 10,
            end_page,
            estimated_pages: 10,
            filenode: 0,
            done: false,
            rows: 0,
        }
    }

    #[test]
    fn a_plan_written_before_plan_ids_reads_as_plan_zero() {
        let plan: SnapshotState =
            serde_json::from_str(r#"{"epoch": 2, "attempt": 3, "tables": []}"#).unwrap();
        assert_eq!((plan.epoch, plan.attempt, plan.plan_id), (2, 3, 0));
        assert!(!plan.replace && !plan.emptied);
    }

    #[test]
    fn a_snapshot_is_finished_when_every_chunk_is_done() {
        let mut state = SnapshotState {
            epoch: 1,
            attempt: 1,
            plan_id: 1,
            tables: vec![TableSnapshotState {
                table: "public.orders".into(),
                row_filter: None,
                chunks: vec![chunk(0, Some(10)), chunk(1, None)],
            }],
            replace: false,
            emptied: false,
        };
        assert!(!state.is_finished());
        assert!(state.mark_done(1, 5));
        assert!(!state.mark_done(7, 5));
        assert_eq!((state.done_count(), state.chunk_count()), (1, 2));
        assert!(state.mark_done(0, 3));
        assert!(state.is_finished());
    }

    #[test]
    fn leaf_partitions_name_the_leaves_of_partitioned_tables_only() {
        let leaf = |id: u32, name: &str| SnapshotChunk {
            relation_name: name.into(),
            ..chunk(id, None)
        };
        let mut state = SnapshotState {
            epoch: 1,
            attempt: 1,
            plan_id: 1,
            tables: vec![
                TableSnapshotState {
                    table: "public.orders".into(),
                    row_filter: None,
                    chunks: vec![chunk(0, Some(10)), chunk(1, None)],
                },
                TableSnapshotState {
                    table: "public.parted".into(),
                    row_filter: None,
                    chunks: vec![
                        leaf(2, "parted_eu"),
                        leaf(3, "parted_us"),
                        leaf(4, "parted_us"),
                    ],
                },
            ],
            replace: false,
            emptied: false,
        };
        let leaves = state.leaf_partitions();
        assert_eq!(leaves.len(), 1, "{leaves:?}");
        assert_eq!(
            leaves["public.parted"],
            BTreeSet::from([
                "public.parted_eu".to_string(),
                "public.parted_us".to_string()
            ])
        );
        state.retain_relations(&BTreeSet::from(["public.parted_us".to_string()]));
        let ids: Vec<u32> = state
            .tables
            .iter()
            .flat_map(|table| table.chunks.iter().map(|chunk| chunk.id))
            .collect();
        assert_eq!(ids, [3, 4]);
    }
}
