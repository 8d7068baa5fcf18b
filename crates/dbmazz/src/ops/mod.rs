//! Operating dbmazz: the metrics registry, the `/status` document, pause/resume and the HTTP
//! API that serves them (`/healthz`, `/readyz`, `/status`, `/metrics`, `POST /pause`,
//! `POST /resume`). docs/http-api.md documents all of it.
//!
//! The pipeline publishes into a [`Telemetry`] a few times a second; the HTTP server only
//! reads it, so a slow scraper never slows the stream.

mod metrics;
mod server;
mod slot_watch;
mod snapshot_request;
mod status;

pub use metrics::{
    metrics, LoadLabels, LossyLabels, Metrics, ReasonLabels, TableLabels, TableOpLabels,
};
pub use server::{serve, HttpServer, ServeError};
pub use slot_watch::watch_slot;
pub use snapshot_request::{
    parse_snapshot_query, percent_decode, percent_encode, SnapshotAnswer, SnapshotRequest,
};
pub use status::{
    rfc3339, ErrorStatus, LagStatus, LsnStatus, PipelineStatus, RunState, SlotStatus, SourceStatus,
    Status, TableCounterMap, TableCounters, TableStatus,
};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

/// The live view of one pipeline, shared by the replicator (writer) and the HTTP API (reader).
pub struct Telemetry {
    started_at: SystemTime,
    started: Instant,
    board: Mutex<Board>,
    paused: watch::Sender<bool>,
    snapshot: Mutex<Option<SnapshotReporter>>,
    snapshot_requests: Mutex<Option<snapshot_request::RequestSender>>,
}

/// Produces the `snapshot` section of /status.
pub type SnapshotReporter = Box<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The parts of /status the pipeline writes.
#[derive(Debug, Clone)]
pub struct Board {
    pub state: RunState,
    pub sink: &'static str,
    pub source: SourceStatus,
    pub lsn: LsnStatus,
    pub lag: LagStatus,
    pub slot: SlotStatus,
    pub pipeline: PipelineStatus,
    pub tables: TableCounterMap,
    pub last_error: Option<ErrorStatus>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            state: RunState::Starting,
            sink: "",
            source: SourceStatus::default(),
            lsn: LsnStatus::default(),
            lag: LagStatus::default(),
            slot: SlotStatus::default(),
            pipeline: PipelineStatus::default(),
            tables: TableCounterMap::new(),
            last_error: None,
        }
    }
}

impl Telemetry {
    pub fn new() -> Arc<Self> {
        Arc::new(Telemetry {
            started_at: SystemTime::now(),
            started: Instant::now(),
            board: Mutex::new(Board::default()),
            paused: watch::channel(false).0,
            snapshot: Mutex::new(None),
            snapshot_requests: Mutex::new(None),
        })
    }

    /// The board, for the pipeline to write (held briefly, never across an await).
    pub fn board(&self) -> MutexGuard<'_, Board> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_state(&self, state: RunState) {
        self.board().state = state;
    }

    pub fn state(&self) -> RunState {
        self.board().state
    }

    /// Records the error that stopped the pipeline.
    pub fn fail(&self, message: &str) {
        let mut board = self.board();
        board.state = RunState::Failed;
        board.last_error = Some(ErrorStatus {
            at: rfc3339(SystemTime::now()),
            message: message.to_string(),
        });
    }

    pub fn set_snapshot_reporter(&self, reporter: SnapshotReporter) {
        *self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reporter);
    }

    /// Opens the channel of `POST /snapshot` requests (the streaming replicator reads it);
    /// requests are refused while nobody holds the receiver.
    pub fn snapshot_requests(&self) -> tokio::sync::mpsc::UnboundedReceiver<SnapshotRequest> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        *self
            .snapshot_requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sender);
        receiver
    }

    /// Asks the replicator to snapshot `table` while it streams, and waits for its answer.
    pub async fn request_snapshot(&self, table: String, replace: bool) -> SnapshotAnswer {
        let sender = self
            .snapshot_requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .filter(|sender| !sender.is_closed());
        snapshot_request::ask(sender, table, replace).await
    }

    /// Pauses (true) or resumes (false) the pipeline.
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
        metrics().paused.set(i64::from(paused));
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Changes of the pause switch, for the replicator.
    pub fn paused_changes(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }

    /// Ready means streaming (or copying) normally: not starting, failed or stopped.
    pub fn is_ready(&self) -> bool {
        matches!(
            self.state(),
            RunState::Streaming | RunState::Snapshotting | RunState::Paused
        )
    }

    /// The /status document.
    pub fn status(&self) -> Status {
        let board = self.board().clone();
        let snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map(|report| report());
        Status {
            version: env!("CARGO_PKG_VERSION"),
            state: board.state,
            started_at: rfc3339(self.started_at),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            source: board.source,
            sink: board.sink,
            lsn: board.lsn,
            lag: board.lag,
            slot: board.slot,
            pipeline: board.pipeline,
            tables: board
                .tables
                .iter()
                .map(|(name, counters)| TableStatus::from_counters(name, counters))
                .collect(),
            last_error: board.last_error,
            snapshot,
        }
    }
}
