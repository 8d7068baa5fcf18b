//! Runs a snapshot plan: `parallelism` readers take chunks from one queue; this task records
//! each finished chunk in the state file (atomically, after its last batch is durable) and
//! keeps the progress figures.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, OnceCell};
use tokio::task::JoinSet;

use super::progress::{display, SnapshotProgress};
use super::reader::{read_chunk, ChunkJob, ReaderContext};
use super::SnapshotError;
use crate::checkpoint::{SnapshotState, StateFile};
use crate::config::Config;
use crate::schema::{TableName, TableSchema};
use crate::sink::Sink;
use crate::source::CopySession;
use crate::Lsn;

/// Snapshot batches are capped lower than stream batches: every reader holds two (one
/// loading, one filling), and the copy runs at full speed for minutes.
const SNAPSHOT_BATCH_BYTES: usize = 8 << 20;

/// A snapshot ready to read (planned, recorded in the state file).
#[derive(Debug)]
pub struct SnapshotJob {
    pub plan: SnapshotState,
    /// Each planned table's shape, keyed by `schema.table`.
    pub schemas: HashMap<String, Arc<TableSchema>>,
    /// The slot's exported snapshot (new slot only).
    pub exported_snapshot: Option<String>,
    /// The slot's start: the stream replays everything after it.
    pub snapshot_lsn: Lsn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    Finished,
    /// Shutdown was asked for; the finished chunks are recorded.
    Interrupted,
}

/// A chunk whose rows are all durable.
#[derive(Debug, Clone)]
pub struct ChunkFinished {
    pub chunk_id: u32,
    pub table: String,
    pub pages: u64,
    pub rows: u64,
    /// See `reader::ChunkRead::fresh_read_lsn`.
    pub fresh_read_lsn: Option<Lsn>,
}

/// Reads every unfinished chunk of `job.plan`, recording progress in `state`.
pub async fn run_snapshot<S: Sink>(
    config: &Config,
    sink: &Arc<S>,
    job: &SnapshotJob,
    state: &mut StateFile,
    mut shutdown: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    progress: Arc<SnapshotProgress>,
) -> Result<SnapshotOutcome, SnapshotError> {
    let plan = &job.plan;
    let pending = pending_chunks(plan, &job.schemas)?;
    progress.begin(plan);
    tracing::info!(
        epoch = plan.epoch,
        attempt = plan.attempt,
        tables = plan.tables.len(),
        chunks = plan.chunk_count(),
        remaining = pending.len(),
        exported_snapshot = job.exported_snapshot.is_some(),
        "snapshot started"
    );
    prepare_destination(config, sink, job, state).await?;
    let started = std::time::Instant::now();
    let (stop_display, stop_receiver) = watch::channel(false);
    let display_task = tokio::spawn(display(Arc::clone(&progress), stop_receiver));
    let result = read_all(
        config,
        sink,
        plan,
        ReadSource {
            schemas: job.schemas.clone(),
            exported_snapshot: job.exported_snapshot.clone(),
            snapshot_lsn: job.snapshot_lsn,
        },
        pending,
        &mut shutdown,
        paused,
        &progress,
        |done| record_chunk(state, &config.state_dir, done),
    )
    .await;
    stop_display.send_replace(true);
    let _ = display_task.await;
    if let Ok(SnapshotOutcome::Finished) = result {
        progress.finish();
        let report = progress.report();
        tracing::info!(
            epoch = plan.epoch,
            rows = report.rows,
            mib = report.bytes >> 20,
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            rows_per_second = report.rows_per_second as u64,
            "snapshot finished"
        );
    }
    result
}

/// Before the first chunk of a plan. With `replace` (`snapshot.replace`), every table is
/// announced to the sink and emptied, and that is recorded before any chunk is marked done, so
/// a resumed plan never empties tables whose chunks are loaded. Without it, a plan made with a
/// new slot warns about tables that already hold rows: the copy upserts over them, and rows
/// only StarRocks has stay (with an older slot, as in mode `always`, the rows there came from
/// this stream, deletes included).
async fn prepare_destination<S: Sink>(
    config: &Config,
    sink: &Arc<S>,
    job: &SnapshotJob,
    state: &mut StateFile,
) -> Result<(), SnapshotError> {
    let plan = &job.plan;
    let schemas = plan.tables.iter().filter_map(|t| job.schemas.get(&t.table));
    if plan.replace && !plan.emptied {
        for schema in schemas {
            empty_destination(sink.as_ref(), schema)
                .await
                .map_err(SnapshotError::Sink)?;
            tracing::info!(table = %schema.name, "snapshot: destination table emptied before the copy (snapshot.replace)");
        }
        let Some(recorded) = state.snapshot.as_mut() else {
            return Err(SnapshotError::Internal(
                "the state has no snapshot section".to_string(),
            ));
        };
        recorded.emptied = true;
        state.store(&config.state_dir)?;
    } else if !plan.replace && job.exported_snapshot.is_some() && plan.done_count() == 0 {
        for schema in schemas {
            if sink.holds_rows(schema).await == Some(true) {
                tracing::warn!(
                    table = %schema.name,
                    "the destination table already holds rows: the snapshot upserts over them, \
                     and rows that PostgreSQL no longer has stay; set snapshot.replace = true \
                     to empty it first"
                );
            }
        }
    }
    Ok(())
}

/// Empties `schema`'s destination table before a `replace` snapshot. Announced first: a table
/// new to the publication may have no destination table yet.
pub async fn empty_destination<S: Sink>(
    sink: &S,
    schema: &Arc<TableSchema>,
) -> Result<(), crate::sink::SinkError> {
    sink.apply_schema_change(None, schema).await?;
    sink.truncate(schema).await
}

/// Reads the unfinished chunks of `plan` (every table must be in `schemas`) outside the
/// initial snapshot — one table snapshotted while the stream runs; `record` is called for each
/// finished chunk, in this task.
#[allow(clippy::too_many_arguments)]
pub async fn read_plan<S: Sink>(
    config: &Config,
    sink: &Arc<S>,
    plan: &SnapshotState,
    schemas: HashMap<String, Arc<TableSchema>>,
    snapshot_lsn: Lsn,
    shutdown: &mut watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    progress: &Arc<SnapshotProgress>,
    record: impl FnMut(&ChunkFinished) -> Result<(), SnapshotError>,
) -> Result<SnapshotOutcome, SnapshotError> {
    let pending = pending_chunks(plan, &schemas)?;
    let source = ReadSource {
        schemas,
        exported_snapshot: None,
        snapshot_lsn,
    };
    read_all(
        config, sink, plan, source, pending, shutdown, paused, progress, record,
    )
    .await
}

/// The chunks of `plan` not done yet, with their tables' shapes.
fn pending_chunks(
    plan: &SnapshotState,
    schemas: &HashMap<String, Arc<TableSchema>>,
) -> Result<VecDeque<ChunkJob>, SnapshotError> {
    let mut pending = VecDeque::new();
    for table in &plan.tables {
        let schema = schemas.get(&table.table).ok_or_else(|| {
            SnapshotError::Internal(format!("no schema for planned table {}", table.table))
        })?;
        for chunk in table.chunks.iter().filter(|chunk| !chunk.done) {
            pending.push_back(ChunkJob {
                schema: Arc::clone(schema),
                chunk: chunk.clone(),
                row_filter: table.row_filter.clone(),
            });
        }
    }
    Ok(pending)
}

/// Where the rows come from: the tables' shapes, the snapshot to read in (if any) and the
/// commit LSN snapshot rows carry.
struct ReadSource {
    schemas: HashMap<String, Arc<TableSchema>>,
    exported_snapshot: Option<String>,
    snapshot_lsn: Lsn,
}

#[allow(clippy::too_many_arguments)]
async fn read_all<S: Sink>(
    config: &Config,
    sink: &Arc<S>,
    plan: &SnapshotState,
    source: ReadSource,
    pending: VecDeque<ChunkJob>,
    shutdown: &mut watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    progress: &Arc<SnapshotProgress>,
    mut record: impl FnMut(&ChunkFinished) -> Result<(), SnapshotError>,
) -> Result<SnapshotOutcome, SnapshotError> {
    let ReadSource {
        schemas,
        exported_snapshot,
        snapshot_lsn,
    } = source;
    let remaining_at_start = pending.len();
    if remaining_at_start == 0 {
        return Ok(SnapshotOutcome::Finished);
    }
    let context = Arc::new(ReaderContext {
        sink: Arc::clone(sink),
        max_rows: config.batch.max_rows,
        max_bytes: config.batch.max_bytes.as_usize().min(SNAPSHOT_BATCH_BYTES),
        epoch: plan.epoch,
        plan_id: plan.plan_id,
        attempt: plan.attempt,
        snapshot_lsn,
        exported_snapshot,
        progress: Arc::clone(progress),
        announced: schemas
            .values()
            .map(|schema| (schema.relation_oid, OnceCell::new()))
            .collect(),
    });
    let connect = config.source_connect()?;
    let queue = Arc::new(Mutex::new(pending));
    let (finished_sender, mut finished) = mpsc::unbounded_channel();
    let mut readers = JoinSet::new();
    for _ in 0..config.snapshot.parallelism.min(remaining_at_start) {
        let (context, queue, finished_sender, connect, mut paused) = (
            Arc::clone(&context),
            Arc::clone(&queue),
            finished_sender.clone(),
            connect.clone(),
            paused.clone(),
        );
        readers.spawn(async move {
            let mut session = CopySession::connect(&connect).await?;
            loop {
                // Paused (`POST /pause`): the chunk being read finishes, no next one starts.
                if *paused.borrow_and_update() {
                    tracing::info!("snapshot paused: no further chunk is read until resumed");
                    while *paused.borrow_and_update() {
                        if paused.changed().await.is_err() {
                            break;
                        }
                    }
                }
                let next = queue
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .pop_front();
                let Some(job) = next else {
                    return Ok::<(), SnapshotError>(());
                };
                tracing::debug!(chunk = job.chunk.id, table = %job.schema.name, relation = %job.chunk.relation_name, first_page = job.chunk.first_page, "snapshot chunk started");
                let read = read_chunk(&mut session, &context, &job).await?;
                let _ = finished_sender.send(ChunkFinished {
                    chunk_id: job.chunk.id,
                    table: job.schema.name.to_string(),
                    pages: job.chunk.estimated_pages,
                    rows: read.rows,
                    fresh_read_lsn: read.fresh_read_lsn,
                });
            }
        });
    }
    drop(finished_sender);
    // A line per chunk would print over the progress bars (`display`): they show it instead.
    let bars_shown = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut remaining = remaining_at_start;
    while remaining > 0 {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    readers.abort_all();
                    tracing::info!(remaining, "snapshot interrupted; finished chunks are recorded");
                    return Ok(SnapshotOutcome::Interrupted);
                }
            }
            Some(done) = finished.recv() => {
                remaining -= 1;
                if let (Some(lsn), Some(table)) = (done.fresh_read_lsn, TableName::parse(&done.table)) {
                    // Before the stream (or the held changes) can reach the sink.
                    sink.fill_unsent_before(&table, lsn);
                }
                record(&done)?;
                progress.chunk_done(&done.table, done.pages);
                if bars_shown {
                    tracing::debug!(chunk = done.chunk_id, table = %done.table, rows = done.rows, remaining, "snapshot chunk loaded");
                } else {
                    tracing::info!(chunk = done.chunk_id, table = %done.table, rows = done.rows, remaining, "snapshot chunk loaded");
                }
            }
            Some(joined) = readers.join_next() => {
                match joined {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(error),
                    Err(join_error) => {
                        return Err(SnapshotError::Internal(format!("snapshot reader stopped: {join_error}")))
                    }
                }
            }
            else => {
                return Err(SnapshotError::Internal(format!(
                    "every snapshot reader stopped with {remaining} chunks unread"
                )))
            }
        }
    }
    Ok(SnapshotOutcome::Finished)
}

fn record_chunk(
    state: &mut StateFile,
    state_dir: &std::path::Path,
    done: &ChunkFinished,
) -> Result<(), SnapshotError> {
    let Some(snapshot) = state.snapshot.as_mut() else {
        return Err(SnapshotError::Internal(
            "the state has no snapshot section".to_string(),
        ));
    };
    if !snapshot.mark_done(done.chunk_id, done.rows) {
        return Err(SnapshotError::Internal(format!(
            "chunk {} is not in the plan",
            done.chunk_id
        )));
    }
    state.widen_fill_window(&done.table, done.fresh_read_lsn);
    state.store(state_dir)?;
    Ok(())
}
