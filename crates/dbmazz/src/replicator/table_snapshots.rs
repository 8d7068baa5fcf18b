//! Snapshots of single tables while the stream runs: a re-snapshot asked for through
//! `POST /snapshot?table=` (`dbmazz snapshot --table`), a table added to the publication later
//! (met in the stream, or found at start), or one of those interrupted by a stop or crash.
//!
//! The ordering rule (DESIGN §5): the table is held in the dispatcher — its operations queued
//! before the hold still run, later ones wait (in the memory budget, their work outstanding, so
//! the durable position and the slot stay before them); once the earlier ones are durable the
//! table is read in fresh REPEATABLE READ transactions, chunk by chunk, each chunk recorded in
//! the state file; when every chunk is durable the held changes are applied in commit order.
//! Held changes older than the read converge: per-key upserts and deletes in commit order.
//!
//! ```text
//!  request ─► plan (catalog) ─► hold + state file ─► earlier loads durable? ─► read chunks
//!                                                                              │ each: state file
//!                                            release: held changes applied ◄───┘
//! ```

mod catalog_watch;
mod rewrite_reports;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use super::prepare::RunError;
use super::table_plans::{plan_table, PlanError, TableJob};
use crate::checkpoint::{SnapshotState, StateFile};
use crate::config::Config;
use crate::ops::{SnapshotAnswer, SnapshotRequest, Telemetry};
use crate::pipeline::StreamCore;
use crate::schema::{TableName, TableSchema};
use crate::sink::Sink;
use crate::snapshot::{
    empty_destination, read_plan, ChunkFinished, SnapshotError, SnapshotOutcome, SnapshotProgress,
};
use crate::Lsn;

/// What the background tasks report to the stream task.
#[derive(Debug)]
pub(super) enum Event {
    Planned {
        table: String,
        result: Result<TableJob, PlanError>,
    },
    /// The StarRocks table of a `replace` snapshot was emptied; no chunk is loaded yet.
    Emptied {
        table: String,
    },
    ChunkDone {
        table: String,
        done: ChunkFinished,
    },
    Finished {
        table: String,
        result: Result<SnapshotOutcome, SnapshotError>,
    },
    /// The publication's tables and partitions, from the catalog.
    Catalog {
        result: Result<catalog_watch::CatalogCheck, SnapshotError>,
    },
}

enum Phase {
    Planning,
    /// Held; waiting for the operations queued before the hold to be durable.
    Waiting,
    Reading {
        _reader: super::AbortOnDrop,
    },
}

struct Active {
    phase: Phase,
    job: Option<TableJob>,
    /// The API caller waiting for the plan (none for tables met in the stream).
    reply: Option<oneshot::Sender<SnapshotAnswer>>,
    /// A table met in the stream is held before it is planned.
    held_early: Option<u32>,
    /// Empty the StarRocks table before loading (asked with `replace`).
    replace: bool,
    /// Only these leaf partitions (attached after the table was copied).
    leaves: Option<BTreeSet<String>>,
    /// Found by a catalog check (published later, or again): a plan that fails for a reason
    /// that may pass is tried again at the next check.
    by_check: bool,
}

/// The table snapshots of one stream; lives in the stream task.
pub(super) struct TableSnapshots<S: Sink> {
    config: Arc<Config>,
    sink: Arc<S>,
    progress: Arc<SnapshotProgress>,
    telemetry: Arc<Telemetry>,
    shutdown: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<Event>,
    active: HashMap<String, Active>,
    /// Reads the publication's tables and partitions now and then (`catalog_watch.rs`).
    catalog_watch: Option<super::AbortOnDrop>,
    /// Tables that left the publication during this run: copied anew if published again.
    unpublished: BTreeSet<String>,
    /// Leaves found with a new file, waiting for the stream to tell whether it was a
    /// replicated TRUNCATE.
    rewrites: rewrite_reports::RewriteReports,
}

impl<S: Sink> TableSnapshots<S> {
    pub(super) fn new(
        config: &Config,
        sink: Arc<S>,
        progress: Arc<SnapshotProgress>,
        telemetry: Arc<Telemetry>,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let snapshots = TableSnapshots {
            config: Arc::new(config.clone()),
            sink,
            progress,
            telemetry,
            shutdown,
            events,
            active: HashMap::new(),
            catalog_watch: None,
            unpublished: BTreeSet::new(),
            rewrites: Default::default(),
        };
        (snapshots, receiver)
    }

    /// Tables held or being read.
    pub(super) fn running(&self) -> usize {
        self.active.len()
    }

    /// Snapshots recorded before this start: hold at once (nothing is queued yet).
    pub(super) fn resume(&mut self, jobs: Vec<TableJob>, core: &mut StreamCore<S>) {
        for job in jobs {
            let table = job.schema.name.to_string();
            tracing::info!(table = %table, epoch = job.plan.epoch, attempt = job.plan.attempt, "table snapshot: holding its stream changes until it is loaded");
            core.hold_table(job.schema.relation_oid);
            core.add_known_table(&table);
            self.show(&job.plan);
            let replace = job.plan.replace;
            self.active.insert(
                table,
                Active {
                    phase: Phase::Waiting,
                    job: Some(job),
                    reply: None,
                    held_early: None,
                    replace,
                    leaves: None,
                    by_check: false,
                },
            );
        }
    }

    /// `POST /snapshot?table=`.
    pub(super) fn on_request(&mut self, request: SnapshotRequest) {
        let Some(name) = TableName::parse(&request.table) else {
            let _ = request.reply.send(SnapshotAnswer::NotPublished {
                table: request.table,
                publication: self.config.source.publication.clone(),
            });
            return;
        };
        let table = name.to_string();
        if self.active.contains_key(&table) {
            let _ = request.reply.send(SnapshotAnswer::AlreadyRunning { table });
            return;
        }
        self.plan(
            table,
            Some(request.reply),
            None,
            request.replace,
            None,
            false,
        );
    }

    /// Tables the stream met that the state did not know (already held by the core).
    pub(super) fn on_unknown_tables(&mut self, tables: Vec<Arc<TableSchema>>) {
        for schema in tables {
            let table = schema.name.to_string();
            if let Some(active) = self.active.get_mut(&table) {
                // Being planned (asked for, or found by a catalog check): the core holds it
                // now, so a plan that fails must let its changes go or stop the pipeline.
                if matches!(active.phase, Phase::Planning) {
                    active.held_early.get_or_insert(schema.relation_oid);
                }
                continue;
            }
            tracing::info!(table = %table, "table added to the publication: snapshotting it, its stream changes held meanwhile");
            let replace = self.config.snapshot.replace;
            self.plan(table, None, Some(schema.relation_oid), replace, None, false);
        }
    }

    fn plan(
        &mut self,
        table: String,
        reply: Option<oneshot::Sender<SnapshotAnswer>>,
        held_early: Option<u32>,
        replace: bool,
        leaves: Option<BTreeSet<String>>,
        by_check: bool,
    ) {
        self.active.insert(
            table.clone(),
            Active {
                phase: Phase::Planning,
                job: None,
                reply,
                held_early,
                replace,
                leaves: leaves.clone(),
                by_check,
            },
        );
        let (config, events) = (Arc::clone(&self.config), self.events.clone());
        tokio::spawn(async move {
            let result = plan_table(&config, &table, leaves.as_ref()).await;
            let _ = events.send(Event::Planned { table, result });
        });
    }

    pub(super) fn on_event(
        &mut self,
        event: Event,
        core: &mut StreamCore<S>,
        state: &mut StateFile,
    ) -> Result<(), RunError> {
        match event {
            Event::Planned { table, result } => self.on_planned(table, result, core, state),
            Event::Emptied { table } => {
                let Some(plan) = state.table_snapshot_mut(&table) else {
                    return Err(SnapshotError::Internal(format!(
                        "the emptied table {table} has no snapshot in the state file"
                    ))
                    .into());
                };
                plan.emptied = true;
                state.store(&self.config.state_dir)?;
                tracing::info!(table = %table, "table snapshot: StarRocks table emptied before the copy (replace)");
                Ok(())
            }
            Event::ChunkDone { table, done } => {
                let marked = state
                    .table_snapshot_mut(&table)
                    .is_some_and(|plan| plan.mark_done(done.chunk_id, done.rows));
                if !marked {
                    return Err(SnapshotError::Internal(format!(
                        "chunk {} of {table} is not in the state file",
                        done.chunk_id
                    ))
                    .into());
                }
                state.widen_fill_window(&done.table, done.fresh_read_lsn);
                state.store(&self.config.state_dir)?;
                Ok(())
            }
            Event::Finished { table, result } => {
                let outcome = match result {
                    Err(SnapshotError::TableChanged { table, reason }) => {
                        return self.plan_again(table.to_string(), &reason, core);
                    }
                    other => other?,
                };
                let Some(active) = self.active.remove(&table) else {
                    return Ok(());
                };
                if outcome == SnapshotOutcome::Interrupted {
                    return Ok(());
                }
                if let Some(job) = active.job {
                    let (ops, bytes) = core.held_for(job.schema.relation_oid);
                    core.release_table(job.schema.relation_oid, Instant::now())?;
                    self.progress.set_held(&table, 0, 0);
                    tracing::info!(table = %table, epoch = job.plan.epoch, held_ops = ops, held_bytes = bytes, "table snapshot loaded; its held stream changes are applied");
                }
                self.progress.finish_table(&table);
                Ok(())
            }
            Event::Catalog { result } => self.on_catalog(result, state, core),
        }
    }

    /// The table was rewritten or lost a planned column while it was read: its held changes
    /// (the `ALTER` among them) are applied, then it is planned, held and read again from
    /// scratch — every chunk read after that is newer than every change applied.
    fn plan_again(
        &mut self,
        table: String,
        reason: &str,
        core: &mut StreamCore<S>,
    ) -> Result<(), RunError> {
        let Some(active) = self.active.remove(&table) else {
            return Ok(());
        };
        let Some(job) = active.job else {
            return Ok(());
        };
        tracing::warn!(table = %table, reason, "table changed during its snapshot: applying its held changes, then copying it again");
        let oid = job.schema.relation_oid;
        core.release_table(oid, Instant::now())?;
        self.progress.set_held(&table, 0, 0);
        // Planned like a table met in the stream: one dropped meanwhile is let go, not fatal.
        self.plan(
            table,
            None,
            Some(oid),
            job.plan.replace,
            active.leaves,
            active.by_check,
        );
        Ok(())
    }

    fn on_planned(
        &mut self,
        table: String,
        result: Result<TableJob, PlanError>,
        core: &mut StreamCore<S>,
        state: &mut StateFile,
    ) -> Result<(), RunError> {
        let Some(replace) = self.active.get(&table).map(|active| active.replace) else {
            return Ok(());
        };
        let mut job = match result {
            Ok(job) => job,
            Err(error) => return self.on_plan_failed(table, error, core),
        };
        if let Some(leaves) = self
            .active
            .get(&table)
            .and_then(|active| active.leaves.clone())
        {
            // Every attached leaf counts as copied once planned: those without rows need no
            // copy, and the plan reads the others.
            let recorded = state.partitions.get_or_insert_with(Default::default);
            recorded.entry(table.clone()).or_default().extend(leaves);
            if job.plan.chunk_count() == 0 {
                state.store(&self.config.state_dir)?;
                self.active.remove(&table);
                tracing::info!(table = %table, "partitions attached without rows: nothing to copy");
                return Ok(());
            }
        }
        job.plan.epoch = state.last_epoch() + 1;
        job.plan.attempt = 1;
        job.plan.replace = replace;
        core.hold_table(job.schema.relation_oid);
        core.add_known_table(&table);
        state.begin_table_snapshot(job.plan.clone());
        state.store(&self.config.state_dir)?;
        self.show(&job.plan);
        tracing::info!(table = %table, epoch = job.plan.epoch, chunks = job.plan.chunk_count(), "table snapshot planned: its stream changes are held until it is loaded");
        let Some(active) = self.active.get_mut(&table) else {
            return Ok(());
        };
        if let Some(reply) = active.reply.take() {
            let _ = reply.send(SnapshotAnswer::Accepted {
                table: table.clone(),
                epoch: job.plan.epoch,
                chunks: job.plan.chunk_count() as u64,
                replace,
            });
        }
        active.job = Some(job);
        active.phase = Phase::Waiting;
        self.start_ready(core);
        Ok(())
    }

    /// A plan that failed. A table the stream holds is copied or let go: one no longer
    /// published has its changes acknowledged without the sink, any other failure stops the
    /// pipeline rather than diverge. Otherwise the API caller gets the answer, and a table
    /// found by a catalog check is tried again at the next check when the failure may pass.
    fn on_plan_failed(
        &mut self,
        table: String,
        error: PlanError,
        core: &mut StreamCore<S>,
    ) -> Result<(), RunError> {
        let Some(active) = self.active.remove(&table) else {
            return Ok(());
        };
        let not_published = matches!(error, PlanError::NotPublished { .. });
        if let Some(oid) = active.held_early {
            if !not_published {
                if let Some(reply) = active.reply {
                    let message = error.to_string();
                    let _ = reply.send(SnapshotAnswer::Failed { message });
                }
                return Err(error.into());
            }
            // Dropped, or removed from the publication: not replicated, so its changes (held,
            // and those still in the replay) are acknowledged without the sink — a table
            // without a key could not take them anyway.
            tracing::warn!(table = %table, "a table to copy is no longer published (dropped, or removed from the publication): not copied, its stream changes skipped");
            self.progress.finish_table(&table);
            core.skip_table(oid, Instant::now())?;
        }
        if let Some(reply) = active.reply {
            let answer = match error {
                PlanError::NotPublished { table, publication } => {
                    SnapshotAnswer::NotPublished { table, publication }
                }
                other => SnapshotAnswer::Failed {
                    message: other.to_string(),
                },
            };
            let _ = reply.send(answer);
            return Ok(());
        }
        if active.held_early.is_some() {
            return Ok(());
        }
        if active.leaves.is_some() {
            // Nothing held yet, the leaves still unrecorded: the next check retries.
            tracing::warn!(table = %table, %error, "could not plan the snapshot of attached partitions; trying again at the next check");
            return Ok(());
        }
        if active.by_check {
            match error {
                PlanError::NotPublished { .. } => {
                    tracing::info!(table = %table, "a table found in the publication is gone from it again: not copied");
                }
                PlanError::Setup(_) | PlanError::Snapshot(SnapshotError::Source(_)) => {
                    tracing::warn!(table = %table, %error, "could not plan the snapshot of a table added to the publication; trying again at the next check");
                }
                other => return Err(other.into()),
            }
            return Ok(());
        }
        // A table met in the stream must be copied: stop rather than diverge.
        Err(error.into())
    }

    /// Publishes what each held table holds (/status, /metrics).
    pub(super) fn publish(&self, core: &StreamCore<S>) {
        for (table, active) in &self.active {
            if let Some(job) = &active.job {
                let (ops, bytes) = core.held_for(job.schema.relation_oid);
                self.progress.set_held(table, ops as u64, bytes as u64);
            }
        }
    }

    /// Starts reading the held tables whose earlier loads are durable.
    pub(super) fn start_ready(&mut self, core: &StreamCore<S>) {
        let snapshot_lsn = core.stats().last_received.max(core.durable());
        for (table, active) in &mut self.active {
            let Some(job) = active.job.as_ref() else {
                continue;
            };
            if !matches!(active.phase, Phase::Waiting)
                || !core.is_table_quiet(job.schema.relation_oid)
            {
                continue;
            }
            tracing::info!(table = %table, chunks = job.plan.chunk_count(), remaining = job.plan.chunk_count().saturating_sub(job.plan.done_count()), "table snapshot: earlier loads durable, reading");
            active.phase = Phase::Reading {
                _reader: super::AbortOnDrop(tokio::spawn(read_table(
                    Arc::clone(&self.config),
                    Arc::clone(&self.sink),
                    job.clone(),
                    snapshot_lsn,
                    self.shutdown.clone(),
                    self.telemetry.paused_changes(),
                    Arc::clone(&self.progress),
                    self.events.clone(),
                ))),
            };
        }
    }

    fn show(&self, plan: &SnapshotState) {
        self.progress.begin_table(plan);
        let progress = Arc::clone(&self.progress);
        self.telemetry.set_snapshot_reporter(Box::new(move || {
            serde_json::to_value(progress.report()).unwrap_or_default()
        }));
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_table<S: Sink>(
    config: Arc<Config>,
    sink: Arc<S>,
    job: TableJob,
    snapshot_lsn: Lsn,
    mut shutdown: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    progress: Arc<SnapshotProgress>,
    events: mpsc::UnboundedSender<Event>,
) {
    let table = job.schema.name.to_string();
    if job.plan.replace && !job.plan.emptied {
        // The table is held and its earlier loads are durable: nothing else writes it now.
        if let Err(error) = empty_destination(sink.as_ref(), &job.schema).await {
            let result = Err(SnapshotError::Sink(error));
            let _ = events.send(Event::Finished { table, result });
            return;
        }
        let _ = events.send(Event::Emptied {
            table: table.clone(),
        });
    }
    let schemas = HashMap::from([(table.clone(), Arc::clone(&job.schema))]);
    let result = read_plan(
        &config,
        &sink,
        &job.plan,
        schemas,
        snapshot_lsn,
        &mut shutdown,
        paused,
        &progress,
        |done| {
            let _ = events.send(Event::ChunkDone {
                table: table.clone(),
                done: done.clone(),
            });
            Ok(())
        },
    )
    .await;
    let _ = events.send(Event::Finished { table, result });
}
