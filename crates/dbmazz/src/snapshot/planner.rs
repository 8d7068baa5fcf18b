//! Deciding what to read: a new plan (every published table cut into chunks), or the
//! unfinished chunks of the plan in the state file.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::Client;

use super::catalog::{heap_relations, plan_chunks, published_part, table_schema};
use super::SnapshotError;
use crate::checkpoint::SnapshotState;
use crate::config::SnapshotMode;
use crate::decode::ReplicaIdentity;
use crate::schema::{KeyOverrides, TableName, TableSchema};

/// What to do about the snapshot at this start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDecision {
    /// Nothing to read: stream.
    Skip,
    /// Plan and read a new snapshot with this epoch.
    New { epoch: u64 },
    /// Read the unfinished chunks of the recorded plan.
    Resume,
}

/// `initial`: a new snapshot when dbmazz has just created the slot — or found it without a
/// state file (`state_found` false: lost, or a crash before the first one was written), so
/// nothing says the tables were copied — the rest of an interrupted one otherwise. `always`:
/// the same, but a finished earlier snapshot is followed by a new epoch. `never`: stream only.
pub fn decide(
    mode: SnapshotMode,
    slot_created: bool,
    state_found: bool,
    previous: Option<&SnapshotState>,
) -> SnapshotDecision {
    let unfinished = previous.is_some_and(|state| !state.is_finished());
    let next_epoch = previous.map_or(1, |state| state.epoch + 1);
    match mode {
        SnapshotMode::Never => SnapshotDecision::Skip,
        _ if unfinished && !slot_created => SnapshotDecision::Resume,
        SnapshotMode::Initial if slot_created || !state_found => {
            SnapshotDecision::New { epoch: next_epoch }
        }
        SnapshotMode::Initial => SnapshotDecision::Skip,
        SnapshotMode::Always => SnapshotDecision::New { epoch: next_epoch },
    }
}

/// A new plan over `tables`, with `publication`'s row filter of each.
pub async fn plan_new(
    client: &Client,
    tables: &[TableName],
    publication: &str,
    chunk_pages: u32,
    epoch: u64,
) -> Result<SnapshotState, SnapshotError> {
    let mut next_id = 0;
    let mut planned = Vec::with_capacity(tables.len());
    for table in tables {
        let relations = heap_relations(client, table).await?;
        let mut chunks = plan_chunks(table, &relations, chunk_pages, &mut next_id);
        chunks.row_filter = published_part(client, table, publication).await?.row_filter;
        planned.push(chunks);
    }
    Ok(SnapshotState {
        epoch,
        attempt: 0,
        plan_id: fastrand::u32(1..),
        replace: false,
        emptied: false,
        tables: planned,
    })
}

/// The current shape of every table of a plan as `publication` publishes it, keyed by
/// `schema.table`.
pub async fn load_schemas(
    client: &Client,
    plan: &SnapshotState,
    publication: &str,
    keys: &KeyOverrides,
) -> Result<HashMap<String, Arc<TableSchema>>, SnapshotError> {
    let mut schemas = HashMap::new();
    for table in &plan.tables {
        let name = TableName::parse(&table.table).ok_or_else(|| {
            SnapshotError::Internal(format!("bad table name {:?} in the plan", table.table))
        })?;
        let mut schema = table_schema(client, &name, publication).await?;
        // pgoutput flags every column of a FULL table as key; the stream keys it by what
        // source.key_columns says (a primary key read at start lands there too).
        if schema.replica_identity == ReplicaIdentity::Full && !keys.covers(&name) {
            return Err(SnapshotError::FullIdentityKeyUnknown { table: name });
        }
        keys.apply(&mut schema)?;
        if schema.key_indexes().next().is_none() {
            return Err(SnapshotError::NoKey { table: name });
        }
        schemas.insert(table.table.clone(), Arc::new(schema));
    }
    Ok(schemas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{SnapshotChunk, TableSnapshotState};

    fn state(done: bool) -> SnapshotState {
        SnapshotState {
            epoch: 3,
            attempt: 1,
            plan_id: 7,
            replace: false,
            emptied: false,
            tables: vec![TableSnapshotState {
                table: "public.t".into(),
                row_filter: None,
                chunks: vec![SnapshotChunk {
                    id: 0,
                    relation_schema: "public".into(),
                    relation_name: "t".into(),
                    first_page: 0,
                    end_page: None,
                    estimated_pages: 1,
                    filenode: 0,
                    done,
                    rows: 0,
                }],
            }],
        }
    }

    #[test]
    fn each_mode_snapshots_when_it_should() {
        use SnapshotDecision::*;
        use SnapshotMode::*;
        let (finished, unfinished) = (state(true), state(false));
        assert_eq!(decide(Initial, true, false, None), New { epoch: 1 });
        assert_eq!(decide(Initial, false, true, None), Skip);
        assert_eq!(
            decide(Initial, false, false, None),
            New { epoch: 1 },
            "a slot without a state file: nothing says the tables were copied"
        );
        assert_eq!(decide(Initial, false, true, Some(&finished)), Skip);
        assert_eq!(decide(Initial, false, true, Some(&unfinished)), Resume);
        assert_eq!(
            decide(Always, false, true, Some(&finished)),
            New { epoch: 4 }
        );
        assert_eq!(decide(Always, false, true, Some(&unfinished)), Resume);
        assert_eq!(decide(Always, false, false, None), New { epoch: 1 });
        assert_eq!(decide(Never, true, false, None), Skip);
        assert_eq!(decide(Never, false, false, None), Skip);
        assert_eq!(decide(Never, false, true, Some(&unfinished)), Skip);
    }
}
