//! Cutting committed changes into per-table operations for the sink (DESIGN §2.5).
//!
//! Each table has at most one open batch, flushed when it reaches `max_rows` or `max_bytes`,
//! `max_wait` after its first row, before anything that must follow it (a schema change, a
//! TRUNCATE) or when the pipeline needs memory back. Order within a table is stream order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::change::RowChange;
use crate::schema::TableSchema;
use crate::sink::Batch;
use crate::Lsn;

/// Limits of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_wait: Duration,
}

/// One unit of work for the sink, applied in order per table.
#[derive(Debug, Clone)]
pub enum TableOp {
    /// First sight of a table (`old = None`) or a changed shape; before rows of the new shape.
    SchemaChange {
        old: Option<Arc<TableSchema>>,
        new: Arc<TableSchema>,
        commit_lsn: Lsn,
    },
    Rows(Batch),
    Truncate {
        table: Arc<TableSchema>,
        commit_lsn: Lsn,
    },
}

impl TableOp {
    pub fn relation_oid(&self) -> u32 {
        match self {
            TableOp::SchemaChange { new, .. } => new.relation_oid,
            TableOp::Rows(batch) => batch.table.relation_oid,
            TableOp::Truncate { table, .. } => table.relation_oid,
        }
    }

    /// The oldest commit LSN whose changes this operation carries.
    pub fn min_commit_lsn(&self) -> Lsn {
        match self {
            TableOp::SchemaChange { commit_lsn, .. } | TableOp::Truncate { commit_lsn, .. } => {
                *commit_lsn
            }
            TableOp::Rows(batch) => batch.first_commit_lsn,
        }
    }

    pub fn byte_len(&self) -> usize {
        match self {
            TableOp::Rows(batch) => batch.byte_len,
            _ => 256,
        }
    }
}

#[derive(Debug)]
struct OpenBatch {
    batch: Batch,
    /// When it is due by time: opened + max_wait × the table's slow-down factor.
    due_at: Instant,
}

/// A table told to slow down waits up to this many times `max_wait` per batch.
const MAX_SLOW_DOWN: u32 = 16;

#[derive(Debug)]
pub struct Batcher {
    limits: BatchLimits,
    open: HashMap<u32, OpenBatch>,
    /// The shape last announced to the sink, per relation OID.
    announced: HashMap<u32, Arc<TableSchema>>,
    ready: VecDeque<TableOp>,
    /// Bytes in open batches and in `ready`.
    held_bytes: usize,
    /// Index of the next change within the current transaction.
    change_index: u64,
    /// Tables the sink asked to load less often: factor on `max_wait` (absent = 1).
    slow_down: HashMap<u32, u32>,
}

impl Batcher {
    pub fn new(limits: BatchLimits) -> Self {
        Batcher {
            limits,
            open: HashMap::new(),
            announced: HashMap::new(),
            ready: VecDeque::new(),
            held_bytes: 0,
            change_index: 0,
            slow_down: HashMap::new(),
        }
    }

    /// The sink was overwhelmed by this table's loads ("too many versions"): double the time
    /// its batches may wait (up to 16 × max_wait), so each load carries more rows.
    pub fn slow_down(&mut self, relation_oid: u32) {
        let factor = self.slow_down.entry(relation_oid).or_insert(1);
        *factor = (*factor * 2).min(MAX_SLOW_DOWN);
        tracing::warn!(
            relation_oid,
            wait = ?self.limits.max_wait * *factor,
            "the destination asks for fewer loads of this table; batching it longer"
        );
    }

    /// A load went through without complaint: halve the slow-down again.
    pub fn speed_up(&mut self, relation_oid: u32) {
        if let Some(factor) = self.slow_down.get_mut(&relation_oid) {
            *factor /= 2;
            if *factor <= 1 {
                self.slow_down.remove(&relation_oid);
            }
        }
    }

    /// How long a batch of this table may wait.
    pub fn max_wait(&self, relation_oid: u32) -> Duration {
        self.limits.max_wait * self.slow_down.get(&relation_oid).copied().unwrap_or(1)
    }

    pub fn begin_transaction(&mut self) {
        self.change_index = 0;
    }

    /// Bytes held in open batches and operations not yet taken.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The oldest commit LSN whose rows sit in an open batch (not yet handed to the sink).
    pub fn oldest_open_commit_lsn(&self) -> Option<Lsn> {
        self.open
            .values()
            .map(|open| open.batch.first_commit_lsn)
            .min()
    }

    pub fn has_open_batches(&self) -> bool {
        !self.open.is_empty()
    }

    /// Operations ready for the sink, in order.
    pub fn take_ready(&mut self) -> Option<TableOp> {
        let op = self.ready.pop_front()?;
        self.held_bytes -= op.byte_len();
        Some(op)
    }

    pub fn push_change(&mut self, change: RowChange, now: Instant) {
        let oid = change.schema.relation_oid;
        let index = self.change_index;
        self.change_index += 1;
        self.announce(&change.schema, change.commit_lsn);
        let bytes = change.byte_len();
        let (max_wait, slow_down) = (self.limits.max_wait, &self.slow_down);
        let open = self.open.entry(oid).or_insert_with(|| OpenBatch {
            batch: Batch {
                table: Arc::clone(&change.schema),
                changes: Vec::new(),
                first_commit_lsn: change.commit_lsn,
                last_commit_lsn: change.commit_lsn,
                first_change_index: index,
                byte_len: 0,
                origin: crate::sink::BatchOrigin::Stream,
            },
            due_at: now + max_wait * slow_down.get(&oid).copied().unwrap_or(1),
        });
        open.batch.last_commit_lsn = change.commit_lsn;
        open.batch.byte_len += bytes;
        open.batch.changes.push(change);
        self.held_bytes += bytes;
        let full = open.batch.changes.len() >= self.limits.max_rows
            || open.batch.byte_len >= self.limits.max_bytes;
        if full {
            self.flush_table(oid);
        }
    }

    pub fn push_truncate(&mut self, tables: &[Arc<TableSchema>], commit_lsn: Lsn) {
        for table in tables {
            self.announce(table, commit_lsn);
            self.flush_table(table.relation_oid);
            self.push_ready(TableOp::Truncate {
                table: Arc::clone(table),
                commit_lsn,
            });
        }
    }

    /// When the oldest open batch is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|open| open.due_at).min()
    }

    /// Flushes the batches that waited `max_wait`.
    pub fn flush_due(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .open
            .iter()
            .filter(|(_, open)| open.due_at <= now)
            .map(|(oid, _)| *oid)
            .collect();
        for oid in due {
            self.flush_table(oid);
        }
    }

    /// Flushes every open batch (memory pressure, shutdown).
    pub fn flush_all(&mut self) {
        let mut oids: Vec<(Lsn, u32)> = self
            .open
            .iter()
            .map(|(oid, open)| (open.batch.first_commit_lsn, *oid))
            .collect();
        oids.sort();
        for (_, oid) in oids {
            self.flush_table(oid);
        }
    }

    /// Flushes the `count` largest open batches (memory pressure: the most rows per load).
    pub fn flush_largest(&mut self, count: usize) {
        let mut oids: Vec<(usize, u32)> = self
            .open
            .iter()
            .map(|(oid, open)| (open.batch.byte_len, *oid))
            .collect();
        oids.sort_unstable_by(|a, b| b.cmp(a));
        for (_, oid) in oids.into_iter().take(count) {
            self.flush_table(oid);
        }
    }

    /// Forgets what was announced (after a reconnect the sink is told about tables again).
    pub fn reset_announcements(&mut self) {
        self.announced.clear();
    }

    fn announce(&mut self, schema: &Arc<TableSchema>, commit_lsn: Lsn) {
        let oid = schema.relation_oid;
        let previous = self.announced.get(&oid);
        if previous.is_some_and(|previous| previous.version == schema.version) {
            return;
        }
        if previous.is_some_and(|previous| previous.same_shape(schema)) {
            self.announced.insert(oid, Arc::clone(schema));
            return;
        }
        // Rows of the old shape go first.
        self.flush_table(oid);
        let old = self.announced.insert(oid, Arc::clone(schema));
        self.push_ready(TableOp::SchemaChange {
            old,
            new: Arc::clone(schema),
            commit_lsn,
        });
    }

    fn push_ready(&mut self, op: TableOp) {
        self.held_bytes += op.byte_len();
        self.ready.push_back(op);
    }

    fn flush_table(&mut self, oid: u32) {
        // Its bytes stay counted in `held_bytes` while it waits in `ready`.
        if let Some(open) = self.open.remove(&oid) {
            self.ready.push_back(TableOp::Rows(open.batch));
        }
    }
}
