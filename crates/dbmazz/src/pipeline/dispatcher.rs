//! Hands table operations to the sink: at most one in flight per table (order), a bounded
//! number across tables (parallelism), completions reported back on a channel.
//!
//! A table can be *held* while it is snapshotted during streaming (DESIGN §5, the ordering
//! rule): the operations queued before the hold still run, later ones wait in the queue —
//! counted in the memory budget, their work outstanding in the durability tracker, so the
//! slot cannot pass them — until the hold is released. Past `spill_threshold` bytes held for
//! one table, further held batches go to a spill file ([`HeldSpill`]) and come back, in order,
//! when they are due to run.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::batcher::TableOp;
use super::change::ChangeKind;
use super::held_spill::HeldSpill;
use super::spill::SpillError;
use crate::checkpoint::WorkId;
use crate::schema::TableSchema;
use crate::sink::{Batch, Sink, SinkError};

/// A finished sink operation.
#[derive(Debug)]
pub struct Completion {
    pub relation_oid: u32,
    pub work: WorkId,
    pub bytes: usize,
    pub result: Result<(), SinkError>,
    /// What the operation carried, for metrics and /status.
    pub summary: OpSummary,
}

/// What one sink operation carried.
#[derive(Debug, Clone)]
pub struct OpSummary {
    pub table: Arc<TableSchema>,
    pub kind: OpKind,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    /// Newest commit LSN in the operation.
    pub last_commit_lsn: crate::Lsn,
    pub elapsed: std::time::Duration,
    /// The sink asked this table to load less often.
    pub slow_down: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Rows,
    Truncate,
    SchemaChange,
    /// Completed without the sink: the table is not replicated ([`Dispatcher::skip`]).
    Skipped,
}

impl OpSummary {
    fn of(op: &TableOp) -> Self {
        let (table, kind, last_commit_lsn) = match op {
            TableOp::Rows(batch) => (&batch.table, OpKind::Rows, batch.last_commit_lsn),
            TableOp::Truncate { table, commit_lsn } => (table, OpKind::Truncate, *commit_lsn),
            TableOp::SchemaChange {
                new, commit_lsn, ..
            } => (new, OpKind::SchemaChange, *commit_lsn),
        };
        let mut summary = OpSummary {
            table: Arc::clone(table),
            kind,
            inserts: 0,
            updates: 0,
            deletes: 0,
            last_commit_lsn,
            elapsed: std::time::Duration::ZERO,
            slow_down: false,
        };
        if let TableOp::Rows(batch) = op {
            summary.count(batch);
        }
        summary
    }

    fn count(&mut self, batch: &Batch) {
        for change in &batch.changes {
            match change.kind {
                ChangeKind::Insert => self.inserts += 1,
                ChangeKind::Update => self.updates += 1,
                ChangeKind::Delete => self.deletes += 1,
            }
        }
    }
}

/// A queued operation, in memory or in the table's spill files.
#[derive(Debug)]
enum Queued {
    Op(TableOp),
    /// The next unread batch of the oldest spill file; `bytes` as held in memory.
    Spilled {
        bytes: usize,
        table: Arc<TableSchema>,
    },
}

impl Queued {
    fn byte_len(&self) -> usize {
        match self {
            Queued::Op(op) => op.byte_len(),
            Queued::Spilled { bytes, .. } => *bytes,
        }
    }
}

#[derive(Debug, Default)]
struct TableQueue {
    pending: VecDeque<(WorkId, Queued)>,
    in_flight: bool,
    /// Held: how many operations at the front of `pending` may still start.
    hold: Option<usize>,
    /// Bytes held in memory behind the current hold.
    held_in_memory: usize,
    /// Spill files, oldest first; the last one takes writes while `spill_open`.
    spills: VecDeque<HeldSpill>,
    spill_open: bool,
    /// Spilling failed during this hold: the rest stays in memory.
    spill_failed: bool,
}

pub struct Dispatcher<S: Sink> {
    sink: Arc<S>,
    queues: HashMap<u32, TableQueue>,
    /// Tables with pending work and nothing in flight, oldest first.
    runnable: VecDeque<u32>,
    in_flight: usize,
    max_in_flight: usize,
    /// Bytes queued or in flight.
    held_bytes: usize,
    completions: mpsc::UnboundedSender<Completion>,
    paused: bool,
    /// Where held batches spill, and past how many bytes held per table.
    spill_dir: std::path::PathBuf,
    spill_threshold: usize,
    spill_files: u64,
    /// Tables whose operations complete without reaching the sink (see [`Dispatcher::skip`]).
    skipped: HashSet<u32>,
}

impl<S: Sink> Dispatcher<S> {
    pub fn new(sink: Arc<S>, max_in_flight: usize) -> (Self, mpsc::UnboundedReceiver<Completion>) {
        Self::with_spill(sink, max_in_flight, std::env::temp_dir(), usize::MAX)
    }

    /// Held batches of a table past `spill_threshold` bytes go to files in `spill_dir`.
    pub fn with_spill(
        sink: Arc<S>,
        max_in_flight: usize,
        spill_dir: std::path::PathBuf,
        spill_threshold: usize,
    ) -> (Self, mpsc::UnboundedReceiver<Completion>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher {
            sink,
            queues: HashMap::new(),
            runnable: VecDeque::new(),
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
            held_bytes: 0,
            completions: sender,
            paused: false,
            spill_dir,
            spill_threshold,
            spill_files: 0,
            skipped: HashSet::new(),
        };
        (dispatcher, receiver)
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight == 0 && self.queues.values().all(|queue| queue.pending.is_empty())
    }

    /// While paused, queued operations wait; those in flight finish.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.start_runnable();
    }

    /// Operations queued or in flight for one table.
    pub fn pending_ops(&self, relation_oid: u32) -> usize {
        self.queues.get(&relation_oid).map_or(0, |queue| {
            queue.pending.len() + usize::from(queue.in_flight)
        })
    }

    /// Holds a table: what is queued now still runs, what comes later waits for
    /// [`Dispatcher::release`]. Holding a held table changes nothing.
    pub fn hold(&mut self, relation_oid: u32) {
        self.skipped.remove(&relation_oid);
        let queue = self.queues.entry(relation_oid).or_default();
        if queue.hold.is_none() {
            queue.hold = Some(queue.pending.len());
            queue.held_in_memory = 0;
            queue.spill_open = false;
            queue.spill_failed = false;
        }
    }

    /// Whether a held table's earlier operations are all finished (nothing in flight, nothing
    /// left that may start).
    pub fn is_quiet(&self, relation_oid: u32) -> bool {
        self.queues
            .get(&relation_oid)
            .is_none_or(|queue| !queue.in_flight && queue.hold.is_none_or(|left| left == 0))
    }

    /// Operations waiting behind a hold, and their bytes.
    pub fn held(&self, relation_oid: u32) -> (usize, usize) {
        self.queues
            .get(&relation_oid)
            .filter(|queue| queue.hold.is_some())
            .map_or((0, 0), |queue| {
                let waiting = queue.pending.iter().skip(queue.hold.unwrap_or(0));
                waiting.fold((0, 0), |(ops, bytes), (_, op)| {
                    (ops + 1, bytes + op.byte_len())
                })
            })
    }

    /// Lifts a hold: the waiting operations run in order.
    pub fn release(&mut self, relation_oid: u32) {
        if let Some(queue) = self.queues.get_mut(&relation_oid) {
            queue.hold = None;
            queue.held_in_memory = 0;
            queue.spill_open = false;
            if !queue.pending.is_empty() && !queue.in_flight {
                self.runnable.push_back(relation_oid);
            }
        }
        self.start_runnable();
    }

    /// Lifts a hold and lets the table's operations, waiting and later, complete without
    /// reaching the sink — for a table that is not replicated (met in the stream, no longer
    /// published when it was to be copied). Their work is finished like a load's, so the
    /// durable position passes them. A later [`Dispatcher::hold`] ends it.
    pub fn skip(&mut self, relation_oid: u32) {
        self.skipped.insert(relation_oid);
        self.release(relation_oid);
    }

    /// Drops the operations waiting behind holds (shutdown): their work stays outstanding, so
    /// the durable position stays before them and the slot replays them at the next start.
    pub fn discard_held(&mut self) {
        for queue in self.queues.values_mut() {
            if let Some(left) = queue.hold {
                while queue.pending.len() > left {
                    if let Some((_, Queued::Op(op))) = queue.pending.pop_back() {
                        self.held_bytes -= op.byte_len();
                    }
                }
                queue.held_in_memory = 0;
                queue.spill_open = false;
                // The files of this hold hold only discarded batches: drop them.
                let referenced = queue
                    .pending
                    .iter()
                    .filter(|(_, queued)| matches!(queued, Queued::Spilled { .. }))
                    .count() as u64;
                while queue.spills.iter().map(HeldSpill::unread).sum::<u64>() > referenced {
                    queue.spills.pop_back();
                }
            }
        }
    }

    pub fn enqueue(&mut self, work: WorkId, op: TableOp) {
        let oid = op.relation_oid();
        let queue = self.queues.entry(oid).or_default();
        let was_idle = queue.pending.is_empty() && !queue.in_flight;
        let queued = match op {
            TableOp::Rows(batch)
                if queue.hold.is_some()
                    && !queue.spill_failed
                    && queue.held_in_memory >= self.spill_threshold =>
            {
                match spill(queue, &self.spill_dir, oid, &mut self.spill_files, &batch) {
                    Ok(()) => Queued::Spilled {
                        bytes: batch.byte_len,
                        table: Arc::clone(&batch.table),
                    },
                    Err(error) => {
                        // Keep the rest in memory: backpressure still bounds what is held.
                        tracing::warn!(%error, "could not spill held changes; keeping them in memory");
                        queue.spill_failed = true;
                        queue.spill_open = false;
                        Queued::Op(TableOp::Rows(batch))
                    }
                }
            }
            op => Queued::Op(op),
        };
        if let Queued::Op(op) = &queued {
            self.held_bytes += op.byte_len();
            if queue.hold.is_some() {
                queue.held_in_memory += op.byte_len();
            }
        }
        queue.pending.push_back((work, queued));
        if was_idle {
            self.runnable.push_back(oid);
        }
        self.start_runnable();
    }

    /// Books a completion; returns it for the caller to act on (errors, tracker).
    pub fn complete(&mut self, completion: &Completion) {
        self.in_flight -= 1;
        self.held_bytes -= completion.bytes;
        if let Some(queue) = self.queues.get_mut(&completion.relation_oid) {
            queue.in_flight = false;
            if !queue.pending.is_empty() {
                self.runnable.push_back(completion.relation_oid);
            }
        }
        self.start_runnable();
    }

    fn start_runnable(&mut self) {
        while !self.paused && self.in_flight < self.max_in_flight {
            let Some(oid) = self.runnable.pop_front() else {
                return;
            };
            let Some(queue) = self.queues.get_mut(&oid) else {
                continue;
            };
            // Held with nothing left to start: `release` makes it runnable again.
            if queue.in_flight || queue.hold == Some(0) {
                continue;
            }
            let Some((work, queued)) = queue.pending.pop_front() else {
                continue;
            };
            if let Some(left) = queue.hold.as_mut() {
                *left -= 1;
            }
            let op = match queued {
                Queued::Op(op) => op,
                Queued::Spilled { table, .. } => match unspill(queue) {
                    Ok(op) => {
                        // Back in memory until its completion.
                        self.held_bytes += op.byte_len();
                        op
                    }
                    Err(error) => {
                        // Nothing to send: reported like a failed load, which stops the
                        // pipeline without acknowledging anything after it.
                        queue.in_flight = true;
                        self.in_flight += 1;
                        let _ = self.completions.send(Completion {
                            relation_oid: oid,
                            work,
                            bytes: 0,
                            result: Err(SinkError {
                                sink: "spill",
                                table: table.name.to_string(),
                                message: format!(
                                    "{error} (held changes could not be read back; restart \
                                     dbmazz: they are replayed from the slot)"
                                ),
                                source: None,
                            }),
                            summary: OpSummary {
                                table,
                                kind: OpKind::Rows,
                                inserts: 0,
                                updates: 0,
                                deletes: 0,
                                last_commit_lsn: crate::Lsn::ZERO,
                                elapsed: std::time::Duration::ZERO,
                                slow_down: false,
                            },
                        });
                        continue;
                    }
                },
            };
            queue.in_flight = true;
            self.in_flight += 1;
            if self.skipped.contains(&oid) {
                let mut summary = OpSummary::of(&op);
                summary.kind = OpKind::Skipped;
                let _ = self.completions.send(Completion {
                    relation_oid: oid,
                    work,
                    bytes: op.byte_len(),
                    result: Ok(()),
                    summary,
                });
                continue;
            }
            let sink = Arc::clone(&self.sink);
            let completions = self.completions.clone();
            tokio::spawn(async move {
                let bytes = op.byte_len();
                let started = std::time::Instant::now();
                let result = match &op {
                    TableOp::Rows(batch) => sink.write_batch(batch).await,
                    TableOp::Truncate { table, .. } => sink.truncate(table).await,
                    TableOp::SchemaChange { old, new, .. } => {
                        sink.apply_schema_change(old.as_ref(), new).await
                    }
                };
                let mut summary = OpSummary::of(&op);
                summary.elapsed = started.elapsed();
                summary.slow_down = sink.take_slow_down(oid);
                // The receiver is gone only when the pipeline stopped; nothing to report to.
                let _ = completions.send(Completion {
                    relation_oid: oid,
                    work,
                    bytes,
                    result,
                    summary,
                });
            });
        }
    }
}

/// Writes a held batch to the table's newest spill file (a new one per hold).
fn spill(
    queue: &mut TableQueue,
    dir: &std::path::Path,
    relation_oid: u32,
    files: &mut u64,
    batch: &Batch,
) -> Result<(), SpillError> {
    if !queue.spill_open {
        *files += 1;
        queue
            .spills
            .push_back(HeldSpill::create(dir, relation_oid, *files)?);
        queue.spill_open = true;
    }
    let Some(file) = queue.spills.back_mut() else {
        return Err(SpillError::Corrupt {
            path: dir.to_path_buf(),
            record: 0,
        });
    };
    let written = file.write(batch)?;
    crate::ops::metrics().spilled_bytes.inc_by(written);
    Ok(())
}

/// Reads the next spilled batch back (files in the order they were written).
fn unspill(queue: &mut TableQueue) -> Result<TableOp, SpillError> {
    let Some(file) = queue.spills.front_mut() else {
        return Err(SpillError::Corrupt {
            path: std::path::PathBuf::from("held spill"),
            record: 0,
        });
    };
    let batch = file.read_next()?;
    if file.unread() == 0 {
        if queue.spills.len() == 1 {
            queue.spill_open = false;
        }
        queue.spills.pop_front();
    }
    Ok(TableOp::Rows(batch))
}
