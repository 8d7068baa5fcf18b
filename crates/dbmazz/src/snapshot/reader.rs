//! One snapshot reader: a `tokio-postgres` connection that reads chunks, one transaction
//! each, and loads their rows through the sink in bounded batches.
//!
//! Each chunk is `COPY (SELECT <columns> FROM ONLY <relation> WHERE ctid >= '(a,0)' AND ctid <
//! '(b,0)') TO STDOUT` inside `REPEATABLE READ, READ ONLY`, on the slot's exported snapshot
//! when there is one. The COPY output is streamed: a reader fills its next batch while the
//! previous one loads (one load in flight per reader), so PostgreSQL and StarRocks work at
//! the same time; at most two batches per reader are in memory, and the server waits
//! (socket backpressure) when both are full.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use super::copy_text::{decode_row_into, LineSplitter};
use super::progress::SnapshotProgress;
use super::SnapshotError;
use crate::checkpoint::SnapshotChunk;
use crate::pipeline::{ChangeKind, RowChange};
use crate::schema::TableSchema;
use crate::sink::{Batch, BatchOrigin, Sink};
use crate::source::{quote_ident, CopyProgress, CopySession};
use crate::Lsn;

/// A chunk to read, with the shape of its table.
#[derive(Debug, Clone)]
pub struct ChunkJob {
    pub schema: Arc<TableSchema>,
    pub chunk: SnapshotChunk,
    /// The publication's row filter for the table (see `TableSnapshotState::row_filter`).
    pub row_filter: Option<String>,
}

/// What every reader shares.
pub struct ReaderContext<S: Sink> {
    pub sink: Arc<S>,
    pub max_rows: usize,
    pub max_bytes: usize,
    pub epoch: u64,
    pub plan_id: u32,
    pub attempt: u64,
    /// The commit LSN given to snapshot rows (the slot's start: the rows are at least that old).
    pub snapshot_lsn: Lsn,
    /// The slot's exported snapshot, while it lives (first attempt only).
    pub exported_snapshot: Option<String>,
    pub progress: Arc<SnapshotProgress>,
    /// Tables announced to the sink (`apply_schema_change(None, …)`), once each, before
    /// their first rows; empty tables are left to the stream's first Relation message.
    pub announced: HashMap<u32, OnceCell<()>>,
}

impl<S: Sink> ReaderContext<S> {
    async fn announce(&self, schema: &Arc<TableSchema>) -> Result<(), SnapshotError> {
        let Some(cell) = self.announced.get(&schema.relation_oid) else {
            return Err(SnapshotError::Internal(format!(
                "table {} was not planned",
                schema.name
            )));
        };
        cell.get_or_try_init(|| async {
            self.sink
                .apply_schema_change(None, schema)
                .await
                .map_err(SnapshotError::Sink)
        })
        .await?;
        Ok(())
    }
}

/// The COPY statement of a chunk.
pub fn copy_statement(
    schema: &TableSchema,
    chunk: &SnapshotChunk,
    row_filter: Option<&str>,
) -> String {
    let columns = schema
        .columns
        .iter()
        .map(|column| quote_ident(&column.name))
        .collect::<Vec<_>>()
        .join(", ");
    let relation = format!(
        "{}.{}",
        quote_ident(&chunk.relation_schema),
        quote_ident(&chunk.relation_name)
    );
    let mut conditions = Vec::new();
    if chunk.first_page > 0 {
        conditions.push(format!("ctid >= '({},0)'::tid", chunk.first_page));
    }
    if let Some(end) = chunk.end_page {
        conditions.push(format!("ctid < '({end},0)'::tid"));
    }
    if let Some(row_filter) = row_filter {
        // As printed by pg_get_expr: column names resolve the same in a leaf partition.
        conditions.push(format!("({row_filter})"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    format!("COPY (SELECT {columns} FROM ONLY {relation}{filter}) TO STDOUT")
}

/// What reading a chunk gave.
#[derive(Debug, Clone, Copy)]
pub struct ChunkRead {
    pub rows: u64,
    /// Read in a fresh transaction (not the slot's exported snapshot): a WAL position past
    /// the commit of every change the transaction saw (see `sink/starrocks/sink/unsent.rs`).
    pub fresh_read_lsn: Option<Lsn>,
}

/// Reads one chunk and makes its rows durable.
pub async fn read_chunk<S: Sink>(
    session: &mut CopySession,
    context: &ReaderContext<S>,
    job: &ChunkJob,
) -> Result<ChunkRead, SnapshotError> {
    session
        .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    if let Some(snapshot) = &context.exported_snapshot {
        let statement = format!(
            "SET TRANSACTION SNAPSHOT '{}'",
            snapshot.replace('\'', "''")
        );
        session.execute(&statement).await?;
    }
    if job.chunk.filenode != 0 {
        check_unchanged(session, job).await?;
    }
    let fresh_read_lsn = match context.exported_snapshot {
        Some(_) => None,
        None => Some(wal_position(session).await?),
    };
    session
        .start_copy_out(&copy_statement(
            &job.schema,
            &job.chunk,
            job.row_filter.as_deref(),
        ))
        .await
        .map_err(|error| changed_table(job, error))?;
    let mut splitter = LineSplitter::default();
    let mut batch = BatchBuilder::new(context, job);
    let columns = job.schema.columns.len();
    // The rows' bytes, in shared chunks (see `decode_row_into`).
    let mut arena = bytes::BytesMut::new();
    loop {
        let mut full = false;
        let progress = session
            .copy_out_data(|data| {
                splitter.push(data, |line| {
                    let image = decode_row_into(line, columns, &mut arena).map_err(|error| {
                        SnapshotError::MalformedRow {
                            relation: job.chunk.relation(),
                            chunk: job.chunk.id,
                            reason: error.to_string(),
                        }
                    })?;
                    batch.push(image, line.len() as u64 + 1);
                    full |= batch.is_full();
                    Ok::<(), SnapshotError>(())
                })
            })
            .await?;
        if full {
            batch.flush().await?;
        }
        if progress == CopyProgress::Done {
            break;
        }
    }
    if splitter.leftover() > 0 {
        return Err(SnapshotError::MalformedRow {
            relation: job.chunk.relation(),
            chunk: job.chunk.id,
            reason: "COPY output ended inside a row".to_string(),
        });
    }
    batch.flush().await?;
    batch.wait_in_flight().await?;
    session.execute("COMMIT").await?;
    Ok(ChunkRead {
        rows: batch.rows_total,
        fresh_read_lsn,
    })
}

/// The WAL position now, read inside the chunk's transaction after its snapshot is taken (the
/// first statement takes it): every commit the snapshot sees lies before it. A standby (PG
/// 16+ decodes on one) reports its replay position.
async fn wal_position(session: &mut CopySession) -> Result<Lsn, SnapshotError> {
    let rows = session
        .query(
            "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
             ELSE pg_current_wal_insert_lsn() END",
        )
        .await?;
    rows.first()
        .and_then(|row| row.first())
        .and_then(|value| value.as_deref())
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| SnapshotError::Internal("PostgreSQL gave no WAL position".to_string()))
}

/// Locks the chunk's relation for the rest of the transaction (a rewrite waits until the chunk
/// is read), then checks that it still has the file the chunk was cut from and the planned
/// columns in their planned types: a type widened without a rewrite (`varchar(8)` →
/// `varchar(60)`) would otherwise bring values the StarRocks column of the planned type cannot
/// take.
async fn check_unchanged(session: &mut CopySession, job: &ChunkJob) -> Result<(), SnapshotError> {
    let relation = format!(
        "{}.{}",
        quote_ident(&job.chunk.relation_schema),
        quote_ident(&job.chunk.relation_name)
    );
    let sql = format!(
        "LOCK TABLE ONLY {relation} IN ACCESS SHARE MODE; \
         SELECT pg_relation_filenode(attrelid), attname, atttypid, atttypmod FROM pg_attribute \
         WHERE attrelid = '{}'::regclass AND attnum > 0 AND NOT attisdropped",
        relation.replace('\'', "''")
    );
    let rows = session
        .query(&sql)
        .await
        .map_err(|error| changed_table(job, error))?;
    let changed = |reason: String| SnapshotError::TableChanged {
        table: job.schema.name.clone(),
        reason: format!("{}: {reason}", job.chunk.relation()),
    };
    let text = |row: &[Option<String>], index: usize| row.get(index).cloned().flatten();
    let filenode = rows.first().and_then(|row| text(row, 0));
    if filenode.as_deref() != Some(job.chunk.filenode.to_string().as_str()) {
        return Err(changed(format!(
            "rewritten (file {} → {})",
            job.chunk.filenode,
            filenode.as_deref().unwrap_or("none")
        )));
    }
    for column in &job.schema.columns {
        let Some(row) = rows
            .iter()
            .find(|row| text(row, 1).as_deref() == Some(column.name.as_str()))
        else {
            return Err(changed(format!("column {} is gone", column.name)));
        };
        let planned = (
            column.type_oid.to_string(),
            column.type_modifier.to_string(),
        );
        if (text(row, 2), text(row, 3)) != (Some(planned.0), Some(planned.1)) {
            return Err(changed(format!("column {} changed type", column.name)));
        }
    }
    Ok(())
}

/// A planned column or relation that no longer exists (dropped, renamed, detached) means the
/// table changed under the plan; other errors stay what they are.
fn changed_table(job: &ChunkJob, error: crate::source::SourceError) -> SnapshotError {
    match error.sqlstate() {
        // undefined_column, undefined_table
        Some(code @ ("42703" | "42P01")) => SnapshotError::TableChanged {
            table: job.schema.name.clone(),
            reason: format!("{error} [{code}]"),
        },
        _ => error.into(),
    }
}

/// Rows of one chunk, cut into batches of at most `max_rows` rows / `max_bytes` bytes.
struct BatchBuilder<'a, S: Sink> {
    context: &'a ReaderContext<S>,
    job: &'a ChunkJob,
    changes: Vec<RowChange>,
    byte_len: usize,
    copy_bytes: u64,
    part: u32,
    rows_total: u64,
    /// The load of the previous batch (aborted if the reader is dropped).
    in_flight: JoinSet<Result<(), SnapshotError>>,
}

impl<'a, S: Sink> BatchBuilder<'a, S> {
    fn new(context: &'a ReaderContext<S>, job: &'a ChunkJob) -> Self {
        BatchBuilder {
            context,
            job,
            changes: Vec::new(),
            byte_len: 0,
            copy_bytes: 0,
            part: 0,
            rows_total: 0,
            in_flight: JoinSet::new(),
        }
    }

    fn push(&mut self, image: crate::pipeline::RowImage, copy_bytes: u64) {
        let change = RowChange {
            kind: ChangeKind::Insert,
            schema: Arc::clone(&self.job.schema),
            new: Some(image),
            old: None,
            commit_lsn: self.context.snapshot_lsn,
            commit_time: 0,
        };
        self.byte_len += change.byte_len();
        self.copy_bytes += copy_bytes;
        self.changes.push(change);
    }

    fn is_full(&self) -> bool {
        self.changes.len() >= self.context.max_rows || self.byte_len >= self.context.max_bytes
    }

    async fn flush(&mut self) -> Result<(), SnapshotError> {
        if self.changes.is_empty() {
            return Ok(());
        }
        self.context.announce(&self.job.schema).await?;
        let rows = self.changes.len() as u64;
        let batch = Batch {
            table: Arc::clone(&self.job.schema),
            changes: std::mem::take(&mut self.changes),
            first_commit_lsn: self.context.snapshot_lsn,
            last_commit_lsn: self.context.snapshot_lsn,
            first_change_index: 0,
            byte_len: self.byte_len,
            origin: BatchOrigin::Snapshot {
                epoch: self.context.epoch,
                plan_id: self.context.plan_id,
                attempt: self.context.attempt,
                chunk: self.job.chunk.id,
                part: self.part,
            },
        };
        // One load in flight: wait for the previous batch before sending this one.
        self.wait_in_flight().await?;
        let sink = Arc::clone(&self.context.sink);
        let progress = Arc::clone(&self.context.progress);
        let (table, copy_bytes) = (self.job.schema.name.to_string(), self.copy_bytes);
        self.in_flight.spawn(async move {
            sink.write_batch(&batch)
                .await
                .map_err(SnapshotError::Sink)?;
            progress.add_rows(&table, rows, copy_bytes);
            Ok(())
        });
        self.part += 1;
        self.rows_total += rows;
        self.byte_len = 0;
        self.copy_bytes = 0;
        Ok(())
    }
}

impl<S: Sink> BatchBuilder<'_, S> {
    /// Waits until the batch in flight (if any) is durable.
    async fn wait_in_flight(&mut self) -> Result<(), SnapshotError> {
        while let Some(joined) = self.in_flight.join_next().await {
            joined.map_err(|error| {
                SnapshotError::Internal(format!("snapshot load task stopped: {error}"))
            })??;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnSchema, TableName};

    #[test]
    fn copy_statements_select_the_columns_of_a_page_range() {
        let schema = TableSchema {
            relation_oid: 1,
            name: TableName::new("public", "Orders"),
            replica_identity: crate::decode::ReplicaIdentity::Default,
            columns: vec![
                ColumnSchema::new("id", 20, -1, true),
                ColumnSchema::new("odd\"name", 25, -1, false),
            ],
            version: 1,
        };
        let mut chunk = SnapshotChunk {
            id: 3,
            relation_schema: "public".into(),
            relation_name: "Orders_p1".into(),
            first_page: 100,
            end_page: Some(200),
            estimated_pages: 100,
            filenode: 0,
            done: false,
            rows: 0,
        };
        assert_eq!(
            copy_statement(&schema, &chunk, None),
            "COPY (SELECT \"id\", \"odd\"\"name\" FROM ONLY \"public\".\"Orders_p1\" \
             WHERE ctid >= '(100,0)'::tid AND ctid < '(200,0)'::tid) TO STDOUT"
        );
        chunk.first_page = 0;
        chunk.end_page = None;
        assert_eq!(
            copy_statement(&schema, &chunk, None),
            "COPY (SELECT \"id\", \"odd\"\"name\" FROM ONLY \"public\".\"Orders_p1\") TO STDOUT"
        );
        assert_eq!(
            copy_statement(&schema, &chunk, Some("(id > 10)")),
            "COPY (SELECT \"id\", \"odd\"\"name\" FROM ONLY \"public\".\"Orders_p1\" \
             WHERE ((id > 10))) TO STDOUT"
        );
    }
}
