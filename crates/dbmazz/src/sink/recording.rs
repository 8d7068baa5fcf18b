//! A sink that records what it was given, for tests: it can hold acknowledgements back
//! (so a test controls what is "durable") and fail on demand.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{Batch, Sink, SinkError};
use crate::schema::TableSchema;
use crate::Lsn;

/// One operation the sink made durable, in the order it did.
#[derive(Debug, Clone)]
pub enum RecordedOp {
    Batch(Batch),
    Truncate(Arc<TableSchema>),
    SchemaChange {
        old: Option<Arc<TableSchema>>,
        new: Arc<TableSchema>,
    },
}

#[derive(Debug, Default)]
struct State {
    durable: Vec<RecordedOp>,
    highest_durable_commit: Lsn,
    fail_with: Option<String>,
}

/// Records operations; shares its state between clones.
#[derive(Debug, Clone)]
pub struct RecordingSink {
    state: Arc<Mutex<State>>,
    /// While `false`, writes wait (not yet durable).
    open: watch::Sender<bool>,
}

impl Default for RecordingSink {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingSink {
    pub fn new() -> Self {
        RecordingSink {
            state: Arc::default(),
            open: watch::Sender::new(true),
        }
    }

    /// Writes wait until [`RecordingSink::release`] (to hold data "not durable").
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Every later write fails with `message`.
    pub fn fail_with(&self, message: &str) {
        self.lock().fail_with = Some(message.to_string());
    }

    /// What was made durable so far, in order.
    pub fn durable_ops(&self) -> Vec<RecordedOp> {
        self.lock().durable.clone()
    }

    /// All row changes made durable, in order.
    pub fn durable_changes(&self) -> Vec<crate::pipeline::RowChange> {
        self.lock()
            .durable
            .iter()
            .filter_map(|op| match op {
                RecordedOp::Batch(batch) => Some(batch.changes.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The highest commit LSN among durable row changes.
    pub fn highest_durable_commit(&self) -> Lsn {
        self.lock().highest_durable_commit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a test thread panicked; the data is still readable.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    async fn record(&self, table: &TableSchema, op: RecordedOp) -> Result<(), SinkError> {
        let mut open = self.open.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = open.wait_for(|open| *open).await;
        let mut state = self.lock();
        if let Some(message) = &state.fail_with {
            return Err(SinkError {
                sink: "recording",
                table: table.name.to_string(),
                message: message.clone(),
                source: None,
            });
        }
        if let RecordedOp::Batch(batch) = &op {
            state.highest_durable_commit = state.highest_durable_commit.max(batch.last_commit_lsn);
        }
        state.durable.push(op);
        Ok(())
    }
}

impl Sink for RecordingSink {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), SinkError> {
        self.record(&batch.table, RecordedOp::Batch(batch.clone()))
            .await
    }

    async fn truncate(&self, table: &Arc<TableSchema>) -> Result<(), SinkError> {
        self.record(table, RecordedOp::Truncate(Arc::clone(table)))
            .await
    }

    async fn apply_schema_change(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        let op = RecordedOp::SchemaChange {
            old: old.cloned(),
            new: Arc::clone(new),
        };
        self.record(new, op).await
    }
}
