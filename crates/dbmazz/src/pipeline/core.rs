//! The stream core: decoded messages in, sink operations out, durable position tracked.
//!
//! ```text
//!  XLogData ──decode──▶ TransactionAssembler ──Assembled──▶ Batcher ──TableOp──▶ Dispatcher ──▶ Sink
//!                              │ (spill files)                                     │
//!                              └──────────── DurabilityTracker ◀── completions ────┘
//! ```
//!
//! It has no I/O of its own besides spill files and spawning sink calls: the runner feeds it
//! frames and completions and asks [`StreamCore::can_read`] before reading the socket again —
//! that is the backpressure: when the bytes held in the pipeline reach `max_memory`, the
//! reader stops and PostgreSQL keeps the WAL.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::assembler::{Assembled, AssemblerStats, TransactionAssembler};
use super::batcher::{BatchLimits, Batcher};
use super::dispatcher::{Completion, Dispatcher, OpKind};
use super::error::PipelineError;
use crate::checkpoint::DurabilityTracker;
use crate::decode::{DecodeError, DecoderOptions, LogicalMessage, PgOutputDecoder};
use crate::ops::{metrics, LoadLabels, TableCounterMap, TableLabels, TableOpLabels};
use crate::sink::Sink;
use crate::Lsn;

/// Memory and concurrency limits of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineLimits {
    pub batch: BatchLimits,
    /// Bytes of row data held in batches (open, queued, in flight) before reading stops.
    pub max_memory: usize,
    /// Bytes of streamed in-progress transactions kept in memory before spilling to disk.
    pub spill_threshold: usize,
    /// Sink operations in flight across tables.
    pub max_in_flight: usize,
}

/// Counters for /status, metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CoreStats {
    pub messages: u64,
    pub transactions: u64,
    pub changes: u64,
    pub truncates: u64,
    pub bytes_received: u64,
    pub last_received: Lsn,
    pub last_commit_time: i64,
    pub assembler: AssemblerStats,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

pub struct StreamCore<S: Sink> {
    decoder: PgOutputDecoder,
    assembler: TransactionAssembler,
    batcher: Batcher,
    dispatcher: Dispatcher<S>,
    tracker: DurabilityTracker,
    assembled: VecDeque<Assembled>,
    limits: PipelineLimits,
    stats: CoreStats,
    paused: bool,
    /// Committed transactions not yet durable: (end LSN, commit time), oldest first (lag).
    undelivered: VecDeque<(Lsn, i64)>,
    tables: TableCounterMap,
    /// Tables whose existing rows are accounted for; a change of any other table holds it
    /// and asks for its snapshot ([`StreamCore::take_unknown_tables`]). `None`: no such check.
    known_tables: Option<std::collections::HashSet<String>>,
    /// Relations already checked against `known_tables` (the check runs once per table, not
    /// once per change).
    checked_relations: std::collections::HashSet<u32>,
    unknown_seen: Vec<Arc<crate::schema::TableSchema>>,
    /// Each table's latest replicated TRUNCATE (`schema.table` → its commit LSN), so a
    /// partitioned table's new leaf files can be told apart from a partition-only TRUNCATE.
    truncated: std::collections::HashMap<String, Lsn>,
    /// Every transaction committed before this position has been applied (decoded,
    /// assembled and handed to the batcher).
    applied_through: Lsn,
}

impl<S: Sink> StreamCore<S> {
    /// `start` is the slot's confirmed position; `spill_dir` holds spill files.
    pub fn new(
        sink: Arc<S>,
        decoder_options: DecoderOptions,
        limits: PipelineLimits,
        spill_dir: std::path::PathBuf,
        start: Lsn,
    ) -> (Self, mpsc::UnboundedReceiver<Completion>) {
        let (dispatcher, completions) = Dispatcher::with_spill(
            sink,
            limits.max_in_flight,
            spill_dir.clone(),
            limits.spill_threshold,
        );
        let core = StreamCore {
            decoder: PgOutputDecoder::new(decoder_options),
            assembler: TransactionAssembler::new(spill_dir, limits.spill_threshold),
            batcher: Batcher::new(limits.batch),
            dispatcher,
            tracker: DurabilityTracker::new(start),
            assembled: VecDeque::new(),
            limits,
            stats: CoreStats {
                last_received: start,
                ..CoreStats::default()
            },
            paused: false,
            undelivered: VecDeque::new(),
            tables: TableCounterMap::new(),
            known_tables: None,
            checked_relations: std::collections::HashSet::new(),
            unknown_seen: Vec::new(),
            truncated: std::collections::HashMap::new(),
            applied_through: start,
        };
        (core, completions)
    }

    /// Key columns from the configuration for tables whose replica identity has none.
    pub fn set_key_overrides(&mut self, keys: crate::schema::KeyOverrides) {
        self.assembler.set_key_overrides(keys);
    }

    /// Watch for changes of tables outside `known` (`schema.table`): each is held at its first
    /// change and reported once by [`StreamCore::take_unknown_tables`].
    pub fn watch_unknown_tables(&mut self, known: impl IntoIterator<Item = String>) {
        self.known_tables = Some(known.into_iter().collect());
    }

    /// Counts a table as known (its snapshot is under way).
    pub fn add_known_table(&mut self, table: &str) {
        if let Some(known) = self.known_tables.as_mut() {
            known.insert(table.to_string());
        }
    }

    /// Tables met in the stream that were not known, each already held.
    pub fn take_unknown_tables(&mut self) -> Vec<Arc<crate::schema::TableSchema>> {
        std::mem::take(&mut self.unknown_seen)
    }

    /// The commit LSN of the latest TRUNCATE of `table` (`schema.table`) this stream applied.
    pub fn last_truncate(&self, table: &str) -> Option<Lsn> {
        self.truncated.get(table).copied()
    }

    /// Every transaction that committed before this position has been applied: commits are
    /// counted as they are applied, keepalives only while nothing is open or being replayed.
    pub fn applied_through(&self) -> Lsn {
        self.applied_through
    }

    /// Holds a table's stream changes for a snapshot of it (see [`Dispatcher::hold`]).
    pub fn hold_table(&mut self, relation_oid: u32) {
        self.dispatcher.hold(relation_oid);
    }

    /// Whether a held table's operations from before the hold are all durable.
    pub fn is_table_quiet(&self, relation_oid: u32) -> bool {
        self.dispatcher.is_quiet(relation_oid)
    }

    /// Operations and bytes waiting behind a table's hold.
    pub fn held_for(&self, relation_oid: u32) -> (usize, usize) {
        self.dispatcher.held(relation_oid)
    }

    /// Applies a held table's waiting changes, in order.
    pub fn release_table(&mut self, relation_oid: u32, now: Instant) -> Result<(), CoreError> {
        self.dispatcher.release(relation_oid);
        self.pump(now)
    }

    /// A held table that is not replicated after all: its waiting and later changes are
    /// acknowledged without reaching the sink (see [`Dispatcher::skip`]).
    pub fn skip_table(&mut self, relation_oid: u32, now: Instant) -> Result<(), CoreError> {
        self.dispatcher.skip(relation_oid);
        self.pump(now)
    }

    /// Shutdown: drops what waits behind holds (it stays unacknowledged, so it is replayed).
    pub fn discard_held(&mut self) {
        self.dispatcher.discard_held();
    }

    pub fn stats(&self) -> CoreStats {
        CoreStats {
            assembler: self.assembler.stats(),
            ..self.stats
        }
    }

    /// The position the slot may be confirmed at.
    pub fn durable(&self) -> Lsn {
        self.tracker.durable()
    }

    /// Bytes of row data held in batches.
    pub fn held_bytes(&self) -> usize {
        self.batcher.held_bytes() + self.dispatcher.held_bytes()
    }

    /// Whether the runner may read more from the socket.
    pub fn can_read(&self) -> bool {
        !self.paused && !self.assembler.is_replaying() && self.held_bytes() < self.limits.max_memory
    }

    /// Paused: nothing is read and queued operations wait (those in flight finish). Safe at
    /// any point: the durable position only follows finished work.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.dispatcher.set_paused(paused);
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn loads_in_flight(&self) -> usize {
        self.dispatcher.in_flight()
    }

    /// Commit time (µs since 2000-01-01) of the oldest committed transaction not yet durable.
    pub fn oldest_undelivered_commit_time(&self) -> Option<i64> {
        self.undelivered.front().map(|(_, time)| *time)
    }

    /// Per-table counters for /status, with each table's pending operations filled in.
    pub fn table_counters(&self) -> TableCounterMap {
        let mut tables = self.tables.clone();
        for counters in tables.values_mut() {
            counters.pending_ops = counters
                .relation_oid
                .map_or(0, |oid| self.dispatcher.pending_ops(oid) as u64);
        }
        tables
    }

    /// Nothing open, buffered, queued or in flight.
    pub fn is_drained(&self) -> bool {
        self.assembler.is_idle() && !self.batcher.has_open_batches() && self.dispatcher.is_empty()
    }

    /// Nothing left that can finish without reading more: no open batch, nothing queued or in
    /// flight, no committed streamed transaction still being released. What a shutdown waits
    /// for — a transaction whose commit has not arrived cannot finish, and the slot replays it.
    pub fn is_settled(&self) -> bool {
        !self.assembler.is_replaying()
            && !self.batcher.has_open_batches()
            && self.dispatcher.is_empty()
    }

    /// When the next batch is due by `max_wait`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.batcher.next_deadline()
    }

    /// One XLogData payload (a pgoutput message).
    pub fn on_xlog_data(
        &mut self,
        wal_end: Lsn,
        data: Bytes,
        now: Instant,
    ) -> Result<(), CoreError> {
        self.stats.messages += 1;
        self.stats.bytes_received += data.len() as u64;
        self.stats.last_received = self.stats.last_received.max(wal_end);
        let message = self.decoder.decode(data)?;
        self.on_message(message, now)
    }

    /// One decoded message (tests feed these directly).
    pub fn on_message(&mut self, message: LogicalMessage, now: Instant) -> Result<(), CoreError> {
        self.assembler.process(message, &mut self.assembled)?;
        while let Some(item) = self.assembled.pop_front() {
            self.apply(item, now);
        }
        self.pump(now)
    }

    /// A keepalive: with nothing pending anywhere, the slot may follow the server's WAL end.
    pub fn on_keepalive(&mut self, wal_end: Lsn) {
        self.stats.last_received = self.stats.last_received.max(wal_end);
        if self.assembler.is_idle() && self.assembled.is_empty() {
            self.applied_through = self.applied_through.max(wal_end);
        }
        if self.is_drained() {
            self.tracker.advance_idle(wal_end);
        }
    }

    /// A sink operation finished. An error stops the pipeline.
    pub fn on_completion(&mut self, completion: Completion, now: Instant) -> Result<(), CoreError> {
        self.dispatcher.complete(&completion);
        self.record(&completion);
        if completion.summary.kind == OpKind::Rows && completion.result.is_ok() {
            if completion.summary.slow_down {
                self.batcher.slow_down(completion.relation_oid);
            } else {
                self.batcher.speed_up(completion.relation_oid);
            }
        }
        completion.result.map_err(PipelineError::from)?;
        self.tracker.finish_work(completion.work);
        self.advance();
        self.pump(now)?;
        // A keepalive that came while loads were in flight: once they are done the slot may
        // follow it now, not at the next keepalive (lag_bytes showed WAL of other tables).
        if self.is_drained() {
            self.tracker.advance_idle(self.applied_through);
        }
        Ok(())
    }

    /// Flushes batches that waited long enough.
    pub fn on_timer(&mut self, now: Instant) -> Result<(), CoreError> {
        self.batcher.flush_due(now);
        self.pump(now)
    }

    /// Flushes everything open (shutdown).
    pub fn flush_all(&mut self, now: Instant) -> Result<(), CoreError> {
        self.batcher.flush_all();
        self.pump(now)
    }

    /// Releases replayed streamed transactions and hands ready operations to the sink, as far
    /// as the memory budget allows.
    pub fn pump(&mut self, now: Instant) -> Result<(), CoreError> {
        loop {
            self.dispatch_ready();
            if self.held_bytes() >= self.limits.max_memory {
                // Full. Loads in flight free memory as they finish: wait for them instead of
                // cutting every open batch (with many tables each read would then refill
                // hundreds of one-row batches, and every load would carry one row). With
                // nothing in flight, the largest open batches go out, one per sink slot.
                if self.dispatcher.in_flight() == 0 && self.batcher.has_open_batches() {
                    self.batcher.flush_largest(self.limits.max_in_flight.max(1));
                    continue;
                }
                break;
            }
            if !self.assembler.is_replaying() {
                break;
            }
            // Bounded slices so completions and feedback are not starved.
            for _ in 0..1024 {
                match self.assembler.next_replayed()? {
                    Some(item) => self.apply(item, now),
                    None => break,
                }
                if self.held_bytes() >= self.limits.max_memory {
                    break;
                }
            }
        }
        self.advance();
        Ok(())
    }

    fn apply(&mut self, item: Assembled, now: Instant) {
        match item {
            Assembled::Begin {
                commit_lsn,
                commit_time,
            } => {
                self.tracker.begin_transaction(commit_lsn);
                self.batcher.begin_transaction();
                self.stats.last_commit_time = commit_time;
            }
            Assembled::Change(change) => {
                self.stats.changes += 1;
                self.check_known(&change.schema);
                self.batcher.push_change(change, now);
            }
            Assembled::Truncate { tables, commit_lsn } => {
                self.stats.truncates += 1;
                // A table may show itself first by a TRUNCATE: it is held from there (every
                // row it has now was inserted after it, so the replay converges).
                for table in &tables {
                    self.check_known(table);
                    self.truncated.insert(table.name.to_string(), commit_lsn);
                }
                self.batcher.push_truncate(&tables, commit_lsn);
            }
            Assembled::Commit {
                commit_lsn,
                end_lsn,
                ..
            } => {
                self.stats.transactions += 1;
                self.applied_through = self.applied_through.max(end_lsn);
                self.dispatch_ready();
                self.tracker.commit_transaction(commit_lsn, end_lsn);
                self.undelivered
                    .push_back((end_lsn, self.stats.last_commit_time));
            }
        }
    }

    fn check_known(&mut self, schema: &Arc<crate::schema::TableSchema>) {
        let Some(known) = self.known_tables.as_mut() else {
            return;
        };
        if !self.checked_relations.insert(schema.relation_oid) {
            return;
        }
        let name = schema.name.to_string();
        if !known.contains(&name) {
            known.insert(name);
            // Before its first change reaches the dispatcher: all of them wait for the copy.
            self.dispatcher.hold(schema.relation_oid);
            self.unknown_seen.push(Arc::clone(schema));
        }
    }

    fn dispatch_ready(&mut self) {
        while let Some(op) = self.batcher.take_ready() {
            let work = self.tracker.start_work(op.min_commit_lsn());
            self.dispatcher.enqueue(work, op);
        }
    }

    fn advance(&mut self) {
        let open = self.batcher.oldest_open_commit_lsn();
        self.tracker.advance(open);
        let durable = self.tracker.durable();
        while self
            .undelivered
            .front()
            .is_some_and(|(end_lsn, _)| *end_lsn <= durable)
        {
            self.undelivered.pop_front();
        }
    }

    /// Books a finished operation into the per-table counters and the metrics.
    fn record(&mut self, completion: &Completion) {
        let summary = &completion.summary;
        if summary.kind == OpKind::Skipped {
            return;
        }
        let table = summary.table.name.to_string();
        let metrics = metrics();
        let outcome = if completion.result.is_ok() {
            "ok"
        } else {
            "failed"
        };
        // Both outcomes' series exist from a table's first operation on (an alert on the
        // increase of the failed one then sees the first failure).
        for each in ["ok", "failed"] {
            let counter = metrics.loads.get_or_create(&LoadLabels {
                table: table.clone().into(),
                outcome: each,
            });
            if each == outcome {
                counter.inc();
            }
        }
        if completion.result.is_err() {
            return;
        }
        let counters = self.tables.entry(table.clone()).or_default();
        counters.relation_oid = Some(summary.table.relation_oid);
        counters.loads += 1;
        counters.last_load_at = Some(std::time::SystemTime::now());
        counters.durable_lsn = Some(summary.last_commit_lsn);
        match summary.kind {
            OpKind::Rows => {
                counters.inserts += summary.inserts;
                counters.updates += summary.updates;
                counters.deletes += summary.deletes;
                counters.bytes_loaded += completion.bytes as u64;
                for (op, count) in [
                    ("insert", summary.inserts),
                    ("update", summary.updates),
                    ("delete", summary.deletes),
                ] {
                    if count > 0 {
                        metrics
                            .rows
                            .get_or_create(&TableOpLabels {
                                table: table.clone().into(),
                                op,
                            })
                            .inc_by(count);
                    }
                }
                let labels = TableLabels {
                    table: table.into(),
                };
                metrics
                    .bytes
                    .get_or_create(&labels)
                    .inc_by(completion.bytes as u64);
                metrics
                    .load_duration
                    .get_or_create(&labels)
                    .observe(summary.elapsed.as_secs_f64());
            }
            OpKind::Truncate => {
                counters.truncates += 1;
                metrics
                    .rows
                    .get_or_create(&TableOpLabels {
                        table: table.into(),
                        op: "truncate",
                    })
                    .inc();
            }
            OpKind::SchemaChange | OpKind::Skipped => {}
        }
    }
}
