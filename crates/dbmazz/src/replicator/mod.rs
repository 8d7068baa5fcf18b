//! `dbmazz run`: wires source → decode → pipeline → sink → checkpoint and drives them.
//!
//! One task owns the stream: it reads CopyData frames while the pipeline has room
//! ([`StreamCore::can_read`]), feeds sink completions back, flushes batches on time and sends
//! Standby Status Updates whose flush position is the durable position — never more.

mod added_columns;
mod catalog_facts;
mod column_lineage;
mod feedback;
mod prepare;
mod publish;
mod table_plans;
mod table_snapshots;

pub use added_columns::read_existing_rows;
pub use catalog_facts::CatalogFacts;
pub use prepare::{prepare, Prepared, RunError};
pub use table_plans::TableJob;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::{sleep_until, Instant as TokioInstant};

use crate::config::Config;
use crate::decode::{DecoderOptions, ReplicationMessage};
use crate::ops::{metrics, ReasonLabels, RunState, Telemetry};
use crate::pipeline::{CoreStats, StreamCore};
use crate::sink::Sink;
use crate::snapshot::{run_snapshot, SnapshotError, SnapshotOutcome, SnapshotProgress};
use crate::source::{ReplicationReader, ReplicationWriter, SourceError};
use crate::Lsn;
use feedback::Feedback;
use publish::Publisher;
use table_plans::{recopy_lost_tables, split_off_changed_table};
use table_snapshots::TableSnapshots;

/// How long a graceful shutdown waits for in-flight loads before giving up (the slot keeps
/// the durable position, so giving up loses nothing).
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What a run did, printed at exit.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub start: Lsn,
    pub durable: Lsn,
    pub stats: CoreStats,
    pub elapsed: Duration,
}

/// Live figures a caller (tests, /status) can watch.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub durable: Lsn,
    pub stats: CoreStats,
    pub held_bytes: usize,
    pub reading: bool,
}

/// What a run is given besides the config and the sink.
pub struct RunContext {
    /// Turns true to stop gracefully.
    pub shutdown: watch::Receiver<bool>,
    /// Live figures for tests.
    pub progress: Option<watch::Sender<Progress>>,
    /// /status, /metrics and the pause switch.
    pub telemetry: Arc<Telemetry>,
    /// The snapshot's figures (also shown in /status through `telemetry`).
    pub snapshot_progress: Arc<SnapshotProgress>,
}

impl RunContext {
    pub fn new(shutdown: watch::Receiver<bool>) -> Self {
        RunContext {
            shutdown,
            progress: None,
            telemetry: Telemetry::new(),
            snapshot_progress: SnapshotProgress::new(),
        }
    }

    pub fn with_snapshot_progress(mut self, progress: Arc<SnapshotProgress>) -> Self {
        self.snapshot_progress = progress;
        self
    }

    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    pub fn with_progress(mut self, progress: watch::Sender<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// Runs until `shutdown` turns true or an error stops the stream.
pub async fn run<S: Sink>(
    config: &Config,
    sink: Arc<S>,
    context: RunContext,
) -> Result<RunSummary, RunError> {
    let telemetry = Arc::clone(&context.telemetry);
    {
        let mut board = telemetry.board();
        board.state = RunState::Starting;
        board.sink = sink.name();
        board.source.publication = config.source.publication.clone();
        board.source.slot = config.source.slot.clone();
        board.source.database = config
            .source_connect()
            .map(|connect| connect.dbname)
            .unwrap_or_default();
    }
    for reason in RunError::KINDS {
        // At 0 from the start, so an alert on the increase sees the first error.
        let _ = metrics().errors.get_or_create(&ReasonLabels { reason });
    }
    let result = prepare_then_run(config, sink, context).await;
    match &result {
        Ok(_) => telemetry.set_state(RunState::Stopped),
        Err(error) => {
            telemetry.fail(&error.to_string());
            metrics()
                .errors
                .get_or_create(&ReasonLabels {
                    reason: error.kind(),
                })
                .inc();
        }
    }
    result
}

async fn prepare_then_run<S: Sink>(
    config: &Config,
    sink: Arc<S>,
    context: RunContext,
) -> Result<RunSummary, RunError> {
    let augmented = prepare::with_full_identity_keys(config).await?;
    let config = augmented.as_ref().unwrap_or(config);
    // Schema changes, by snapshot or stream: the sink is told what rows older than an added
    // column hold, and which column is which across a rename.
    let sink = Arc::new(CatalogFacts::new(
        sink,
        config.source_connect().ok(),
        Some(&config.state_dir),
    ));
    let mut prepared = prepare(config).await?;
    for (table, before) in prepared.state.fill_windows() {
        if let Some(table) = crate::schema::TableName::parse(&table) {
            sink.fill_unsent_before(&table, before);
        }
    }
    let result = match recopy_lost_tables(config, &mut prepared, sink.as_ref()).await {
        Ok(()) => snapshot_then_stream(config, prepared, sink, context).await,
        Err(error) => Err(error),
    };
    // The slot is this run's: its spill files hold nothing a later start needs (that replays
    // from the slot), and left on a full disk they would keep the next start from writing.
    if let Err(error) = crate::pipeline::clear_spill_dir(&config.spill_dir()) {
        tracing::warn!(%error, "could not remove the spill files of this run");
    }
    result
}

/// Copies the existing rows when the plan says so (the replication connection stays idle
/// meanwhile), then streams from the slot's start.
async fn snapshot_then_stream<S: Sink>(
    config: &Config,
    mut prepared: Prepared,
    sink: Arc<S>,
    context: RunContext,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    // From the start, snapshot included: the slot holds WAL while the copy runs.
    let _slot_watch = config.source_connect().ok().map(|connect| {
        AbortOnDrop(tokio::spawn(crate::ops::watch_slot(
            connect,
            config.source.slot.clone(),
            Arc::clone(&context.telemetry),
        )))
    });
    {
        let mut board = context.telemetry.board();
        board.lsn.start = prepared.start.to_string();
        board.lsn.durable = prepared.start.to_string();
        board.pipeline.memory_limit_bytes = config.pipeline_limits().max_memory as u64;
    }
    if let Some(mut job) = prepared.snapshot.take() {
        let progress = Arc::clone(&context.snapshot_progress);
        context.telemetry.set_snapshot_reporter(Box::new(move || {
            serde_json::to_value(progress.report()).unwrap_or_default()
        }));
        context.telemetry.set_state(RunState::Snapshotting);
        let outcome = loop {
            let result = run_snapshot(
                config,
                &sink,
                &job,
                &mut prepared.state,
                context.shutdown.clone(),
                context.telemetry.paused_changes(),
                Arc::clone(&context.snapshot_progress),
            )
            .await;
            match result {
                Err(SnapshotError::TableChanged { table, reason }) => {
                    let moved =
                        split_off_changed_table(config, &mut prepared, job, &table, &reason);
                    job = moved.await?;
                }
                other => break other?,
            }
        };
        if outcome == SnapshotOutcome::Interrupted {
            // The slot has not moved: the next start reads the unfinished chunks.
            return Ok(RunSummary {
                start: prepared.start,
                durable: prepared.start,
                stats: CoreStats::default(),
                elapsed: started.elapsed(),
            });
        }
    }
    stream(config, prepared, sink, context).await
}

/// Streams from a prepared slot.
async fn stream<S: Sink>(
    config: &Config,
    prepared: Prepared,
    sink: Arc<S>,
    context: RunContext,
) -> Result<RunSummary, RunError> {
    let RunContext {
        mut shutdown,
        progress,
        telemetry,
        snapshot_progress,
    } = context;
    let started = Instant::now();
    let Prepared {
        client,
        start,
        protocol,
        state,
        snapshot: _,
        table_jobs,
        first_start: _,
    } = prepared;
    let decoder_options = DecoderOptions {
        protocol_version: protocol.version,
        streaming_parallel: protocol.streaming == Some("parallel"),
    };
    let stream = client
        .start_replication(&config.source.slot, start, &config.source.publication)
        .await?;
    tracing::info!(
        slot = %config.source.slot,
        start = %start,
        protocol = protocol.version,
        streaming = protocol.streaming.unwrap_or("off"),
        "streaming"
    );
    let (mut reader, mut writer) = stream.split();
    let sink_for_snapshots = Arc::clone(&sink);
    let (mut core, mut completions) = StreamCore::new(
        sink,
        decoder_options,
        config.pipeline_limits(),
        config.spill_dir(),
        start,
    );
    core.set_key_overrides(config.key_overrides());
    if config.snapshot.mode != crate::config::SnapshotMode::Never {
        core.watch_unknown_tables(state.known_tables.clone().unwrap_or_default());
    }
    let (mut table_snapshots, mut table_events) = TableSnapshots::new(
        config,
        Arc::clone(&sink_for_snapshots),
        snapshot_progress,
        Arc::clone(&telemetry),
        shutdown.clone(),
    );
    table_snapshots.resume(table_jobs, &mut core);
    table_snapshots.watch_catalog();
    let mut snapshot_requests = telemetry.snapshot_requests();
    let mut feedback = Feedback::new(config, state, start);
    let mut publisher = Publisher::new(start, config.pipeline_limits().max_memory);
    let mut paused = telemetry.paused_changes();
    core.set_paused(*paused.borrow_and_update());
    telemetry.set_state(RunState::Streaming);
    let pacing = config.source.read_pacing.0;
    let low_water = config.source.read_low_water.as_usize();
    if low_water > 0 && !pacing.is_zero() {
        if let Err(error) = reader.set_low_water(low_water) {
            tracing::debug!(%error, "no receive low-water mark: pacing after small reads instead");
        }
    }
    let mut read_paused_until: Option<TokioInstant> = None;
    // With a low-water mark: when the current wait for it ends (then any queued data is read).
    // Armed whenever the mark is (re)raised — from the start, or the first small message
    // would wait for data that may never come.
    let mut low_water_wait_ends: Option<TokioInstant> =
        reader.has_low_water().then(|| TokioInstant::now() + pacing);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let result: Result<(), RunError> = loop {
        let deadline = core.next_deadline();
        let mut read_a_frame = false;
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break Ok(());
                }
            }
            changed = paused.changed() => {
                if changed.is_ok() {
                    let pause = *paused.borrow_and_update();
                    core.set_paused(pause);
                    if let Err(error) = core.pump(Instant::now()) {
                        break Err(error.into());
                    }
                    publisher.publish(&core, &telemetry);
                }
            }
            Some(completion) = completions.recv() => {
                if let Err(error) = core.on_completion(completion, Instant::now()) {
                    break Err(error.into());
                }
                if table_snapshots.running() > 0 {
                    table_snapshots.start_ready(&core);
                }
            }
            Some(request) = snapshot_requests.recv() => {
                table_snapshots.on_request(request);
            }
            Some(event) = table_events.recv() => {
                if let Err(error) = table_snapshots.on_event(event, &mut core, feedback.state_mut()) {
                    break Err(error);
                }
            }
            _ = sleep_until(low_water_wait_ends.unwrap_or_else(TokioInstant::now)), if low_water_wait_ends.is_some() => {
                low_water_wait_ends = None;
                if let Err(error) = reader.lower_low_water() {
                    break Err(SourceError::Io(error).into());
                }
            }
            _ = sleep_until(read_paused_until.unwrap_or_else(TokioInstant::now)), if read_paused_until.is_some() => {
                read_paused_until = None;
            }
            frame = reader.next_copy_data(), if core.can_read() && read_paused_until.is_none() => {
                match handle_frame(frame, &mut core, &mut writer, &mut feedback).await {
                    Ok(()) => read_a_frame = true,
                    Err(error) => break Err(error),
                }
            }
            _ = sleep_until(to_tokio(deadline)), if deadline.is_some() => {
                if let Err(error) = core.on_timer(Instant::now()) {
                    break Err(error.into());
                }
            }
            _ = tick.tick() => {
                if let Err(error) = core.pump(Instant::now()) {
                    break Err(error.into());
                }
                if table_snapshots.running() > 0 {
                    table_snapshots.start_ready(&core);
                    table_snapshots.publish(&core);
                }
                table_snapshots.judge_rewrites(&core);
                if let Err(error) = feedback.maybe_send(&mut writer, &core, false).await {
                    break Err(error);
                }
                publisher.publish(&core, &telemetry);
                if let Some(progress) = &progress {
                    progress.send_replace(Progress {
                        durable: core.durable(),
                        stats: core.stats(),
                        held_bytes: core.held_bytes(),
                        reading: core.can_read(),
                    });
                }
            }
        }
        // Handle the rest of that socket read without a select! round (and its wake-ups) per
        // message; bounded so completions, timers and shutdown are not starved.
        if read_a_frame {
            if let Err(error) =
                drain_buffered(&mut reader, &mut core, &mut writer, &mut feedback).await
            {
                break Err(error);
            }
            let unknown = core.take_unknown_tables();
            if !unknown.is_empty() {
                table_snapshots.on_unknown_tables(unknown);
            }
            if reader.has_low_water() {
                // The next read waits for a full chunk again, for at most `pacing`.
                if let Err(error) = reader.raise_low_water() {
                    break Err(SourceError::Io(error).into());
                }
                low_water_wait_ends = Some(TokioInstant::now() + pacing);
            } else if !pacing.is_zero()
                && reader.last_read_len() < SMALL_READ
                && reader.buffered_len() < SMALL_READ
            {
                // A small read: let the walsender fill the socket before the next one.
                read_paused_until = Some(TokioInstant::now() + pacing);
            }
        }
    };
    if let Err(error) = result {
        // Report what is durable so far; nothing after the failure is acknowledged.
        let _ = feedback.maybe_send(&mut writer, &core, true).await;
        publisher.publish(&core, &telemetry);
        return Err(error);
    }
    telemetry.set_state(RunState::Stopping);
    // Unfinished table snapshots stop here; they are resumed at the next start.
    drop(table_snapshots);
    // A paused pipeline still flushes what it holds on shutdown.
    core.set_paused(false);
    drain(&mut core, &mut completions, |core| {
        publisher.publish(core, &telemetry)
    })
    .await?;
    publisher.publish(&core, &telemetry);
    feedback.maybe_send(&mut writer, &core, true).await?;
    let _ = writer.send_copy_done().await;
    drop(reader);
    let summary = RunSummary {
        start,
        durable: core.durable(),
        stats: core.stats(),
        elapsed: started.elapsed(),
    };
    tracing::info!(
        durable = %summary.durable,
        transactions = summary.stats.transactions,
        changes = summary.stats.changes,
        "stopped"
    );
    Ok(summary)
}

async fn handle_frame<S: Sink>(
    frame: Result<Option<bytes::Bytes>, SourceError>,
    core: &mut StreamCore<S>,
    writer: &mut ReplicationWriter,
    feedback: &mut Feedback,
) -> Result<(), RunError> {
    let Some(frame) = frame? else {
        return Err(RunError::StreamEnded);
    };
    match ReplicationMessage::parse(frame).map_err(crate::pipeline::CoreError::from)? {
        ReplicationMessage::XLogData { wal_end, data, .. } => {
            core.on_xlog_data(wal_end, data, Instant::now())?;
        }
        ReplicationMessage::Keepalive {
            wal_end,
            reply_requested,
            ..
        } => {
            core.on_keepalive(wal_end);
            if reply_requested {
                feedback.maybe_send(writer, core, true).await?;
            }
        }
    }
    Ok(())
}

/// A socket read below this is "small" for `source.read_pacing`.
const SMALL_READ: usize = 64 * 1024;

/// Frames handled per wake-up at most before the select! loop runs again.
const MAX_FRAMES_PER_WAKEUP: usize = 4096;

async fn drain_buffered<S: Sink>(
    reader: &mut ReplicationReader,
    core: &mut StreamCore<S>,
    writer: &mut ReplicationWriter,
    feedback: &mut Feedback,
) -> Result<(), RunError> {
    for _ in 0..MAX_FRAMES_PER_WAKEUP {
        if !core.can_read() {
            break;
        }
        match reader.try_next_buffered()? {
            Some(frame) => handle_frame(Ok(Some(frame)), core, writer, feedback).await?,
            None => break,
        }
    }
    Ok(())
}

/// Shutdown: flush what is open and wait for the sink to finish it; `publish` shows the
/// progress in /status meanwhile.
async fn drain<S: Sink>(
    core: &mut StreamCore<S>,
    completions: &mut tokio::sync::mpsc::UnboundedReceiver<crate::pipeline::Completion>,
    mut publish: impl FnMut(&StreamCore<S>),
) -> Result<(), RunError> {
    core.flush_all(Instant::now())?;
    // Changes held for an unfinished table snapshot are not sent: they stay unacknowledged.
    core.discard_held();
    let deadline = TokioInstant::now() + SHUTDOWN_DRAIN_TIMEOUT;
    if !core.is_settled() {
        tracing::info!(
            "stopping: finishing the loads and schema changes under way (up to {}s; what is left is replayed from the slot at the next start)",
            SHUTDOWN_DRAIN_TIMEOUT.as_secs()
        );
    }
    while !core.is_settled() {
        let Ok(Some(completion)) = tokio::time::timeout_at(deadline, completions.recv()).await
        else {
            tracing::warn!("shutdown: gave up waiting for in-flight loads; they will be replayed");
            return Ok(());
        };
        core.on_completion(completion, Instant::now())?;
        // Streamed transactions already committed are released too.
        core.pump(Instant::now())?;
        core.flush_all(Instant::now())?;
        core.discard_held();
        publish(core);
    }
    Ok(())
}

/// Aborts a background task when its owner goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn to_tokio(deadline: Option<Instant>) -> TokioInstant {
    match deadline {
        Some(deadline) => TokioInstant::from_std(deadline),
        None => TokioInstant::now() + Duration::from_secs(3600),
    }
}
