//! Snapshot progress: per table and overall rows, bytes, rate and ETA.
//!
//! Workers add to atomics; [`SnapshotProgress::report`] turns them into a serializable
//! [`SnapshotReport`] for /status and /metrics, and [`display`] shows them: progress bars when
//! stderr is a terminal, a log line every [`LOG_INTERVAL`] otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::checkpoint::SnapshotState;
use crate::ops::{metrics, TableLabels};

const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotPhase {
    /// No snapshot in this run.
    Idle,
    Reading,
    Finished,
}

/// One table's figures.
#[derive(Debug)]
struct TableProgress {
    table: String,
    chunks_total: u64,
    pages_total: u64,
    chunks_done: AtomicU64,
    pages_done: AtomicU64,
    /// Read and made durable in this run.
    rows: AtomicU64,
    bytes: AtomicU64,
    /// Rows and heap pages of the chunks an earlier run of this plan loaded (a resumed
    /// snapshot): shown apart, and left out of the rates.
    rows_earlier: u64,
    pages_earlier: u64,
    /// Snapshotted while streaming, its stream changes held until the copy is durable.
    holding: std::sync::atomic::AtomicBool,
    /// Operations and bytes of stream changes held meanwhile.
    held_ops: AtomicU64,
    held_bytes: AtomicU64,
}

/// Live snapshot figures, shared (`Arc`) between the workers and whoever reports them.
#[derive(Debug)]
pub struct SnapshotProgress {
    phase: AtomicU8,
    epoch: AtomicU64,
    started: std::sync::Mutex<Option<Instant>>,
    /// When the phase turned `finished`: the rates stop at it instead of decaying with uptime.
    finished_at: std::sync::Mutex<Option<Instant>>,
    tables: std::sync::RwLock<Vec<Arc<TableProgress>>>,
}

impl Default for SnapshotProgress {
    fn default() -> Self {
        SnapshotProgress {
            phase: AtomicU8::new(0),
            epoch: AtomicU64::new(0),
            started: std::sync::Mutex::new(None),
            finished_at: std::sync::Mutex::new(None),
            tables: std::sync::RwLock::new(Vec::new()),
        }
    }
}

/// What /status shows of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotReport {
    pub phase: SnapshotPhase,
    pub epoch: u64,
    pub elapsed_seconds: f64,
    /// Rows and bytes (COPY text) made durable in this run.
    pub rows: u64,
    pub bytes: u64,
    /// Rows an earlier run of the same plan loaded (a resumed snapshot).
    pub rows_earlier: u64,
    pub rows_per_second: f64,
    pub bytes_per_second: f64,
    pub chunks_done: u64,
    pub chunks_total: u64,
    /// Remaining time at the current rate (by heap pages); `None` before the first chunk.
    pub eta_seconds: Option<f64>,
    pub tables: Vec<TableReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    /// Rows an earlier run of the same plan loaded (a resumed snapshot).
    pub rows_earlier: u64,
    pub chunks_done: u64,
    pub chunks_total: u64,
    pub done: bool,
    /// Snapshotted while the stream runs: its stream changes wait until `done`.
    pub holding: bool,
    /// Stream operations (batches, truncates, schema changes) and bytes held meanwhile.
    pub held_ops: u64,
    pub held_bytes: u64,
}

impl TableProgress {
    /// A table of a plan; its chunks already done count as done (and as loaded earlier).
    fn planned(table: &crate::checkpoint::TableSnapshotState, holding: bool) -> Self {
        let done = || table.chunks.iter().filter(|chunk| chunk.done);
        let pages_earlier = done().map(|chunk| chunk.estimated_pages).sum();
        TableProgress {
            table: table.table.clone(),
            chunks_total: table.chunks.len() as u64,
            pages_total: table.chunks.iter().map(|c| c.estimated_pages).sum(),
            chunks_done: AtomicU64::new(done().count() as u64),
            pages_done: AtomicU64::new(pages_earlier),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            rows_earlier: done().map(|chunk| chunk.rows).sum(),
            pages_earlier,
            holding: holding.into(),
            held_ops: AtomicU64::new(0),
            held_bytes: AtomicU64::new(0),
        }
    }
}

impl SnapshotProgress {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts tracking a plan (chunks already done count as done).
    pub(crate) fn begin(&self, plan: &SnapshotState) {
        let tables = plan
            .tables
            .iter()
            .map(|table| Arc::new(TableProgress::planned(table, false)))
            .collect();
        for table in &tables {
            let table: &Arc<TableProgress> = table;
            export_planned(table);
        }
        *self.tables.write().unwrap_or_else(|p| p.into_inner()) = tables;
        *self.started.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        *self.finished_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.epoch.store(plan.epoch, Ordering::Relaxed);
        self.phase.store(1, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self) {
        self.finished_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
        self.phase.store(2, Ordering::Relaxed);
    }

    /// Starts tracking the snapshot of one table taken while streaming (replacing the
    /// figures of an earlier snapshot of it); the phase is `reading` until it is released.
    pub(crate) fn begin_table(&self, plan: &SnapshotState) {
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        if self.phase.load(Ordering::Relaxed) != 1 {
            // Nothing else is being copied: the figures are this snapshot's alone, not summed
            // with (and timed from) copies that finished earlier.
            tables.clear();
        }
        for planned in &plan.tables {
            let progress = Arc::new(TableProgress::planned(planned, true));
            export_planned(&progress);
            tables.retain(|table| table.table != planned.table);
            tables.push(progress);
        }
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        if self.phase.load(Ordering::Relaxed) != 1 || started.is_none() {
            *started = Some(Instant::now());
        }
        *self.finished_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.epoch.store(plan.epoch, Ordering::Relaxed);
        self.phase.store(1, Ordering::Relaxed);
    }

    /// The stream changes held for a table snapshotted while streaming.
    pub(crate) fn set_held(&self, table: &str, ops: u64, bytes: u64) {
        if let Some(progress) = self.table(table) {
            progress.held_ops.store(ops, Ordering::Relaxed);
            progress.held_bytes.store(bytes, Ordering::Relaxed);
        }
        set_gauge(&metrics().snapshot_held_bytes, table, bytes);
    }

    /// A table snapshotted while streaming is loaded and its held changes released; the
    /// phase is `finished` when no other table is still holding.
    pub(crate) fn finish_table(&self, table: &str) {
        if let Some(progress) = self.table(table) {
            progress.holding.store(false, Ordering::Relaxed);
        }
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        if tables
            .iter()
            .all(|table| !table.holding.load(Ordering::Relaxed))
        {
            self.finish();
        }
    }

    fn table(&self, table: &str) -> Option<Arc<TableProgress>> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|progress| progress.table == table)
            .cloned()
    }

    /// A batch of `table` became durable.
    pub(crate) fn add_rows(&self, table: &str, rows: u64, bytes: u64) {
        if let Some(progress) = self.table(table) {
            progress.rows.fetch_add(rows, Ordering::Relaxed);
            progress.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        let labels = table_labels(table);
        metrics().snapshot_rows.get_or_create(&labels).inc_by(rows);
        metrics()
            .snapshot_bytes
            .get_or_create(&labels)
            .inc_by(bytes);
    }

    pub(crate) fn chunk_done(&self, table: &str, pages: u64) {
        if let Some(progress) = self.table(table) {
            let done = progress.chunks_done.fetch_add(1, Ordering::Relaxed) + 1;
            progress.pages_done.fetch_add(pages, Ordering::Relaxed);
            set_gauge(&metrics().snapshot_chunks_done, table, done);
        }
    }

    pub fn report(&self) -> SnapshotReport {
        let phase = match self.phase.load(Ordering::Relaxed) {
            0 => SnapshotPhase::Idle,
            1 => SnapshotPhase::Reading,
            _ => SnapshotPhase::Finished,
        };
        let finished_at = *self.finished_at.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = self
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(0.0, |started| {
                let end = finished_at.unwrap_or_else(Instant::now);
                end.saturating_duration_since(started).as_secs_f64()
            });
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let mut report = SnapshotReport {
            phase,
            epoch: self.epoch.load(Ordering::Relaxed),
            elapsed_seconds: elapsed,
            rows: 0,
            bytes: 0,
            rows_earlier: 0,
            rows_per_second: 0.0,
            bytes_per_second: 0.0,
            chunks_done: 0,
            chunks_total: 0,
            eta_seconds: None,
            tables: Vec::with_capacity(tables.len()),
        };
        let (mut pages_done, mut pages_total, mut pages_earlier) = (0, 0, 0);
        for table in tables.iter() {
            let holding = table.holding.load(Ordering::Relaxed);
            let table_report = TableReport {
                table: table.table.clone(),
                rows: table.rows.load(Ordering::Relaxed),
                bytes: table.bytes.load(Ordering::Relaxed),
                rows_earlier: table.rows_earlier,
                chunks_done: table.chunks_done.load(Ordering::Relaxed),
                chunks_total: table.chunks_total,
                done: !holding && table.chunks_done.load(Ordering::Relaxed) >= table.chunks_total,
                holding,
                held_ops: table.held_ops.load(Ordering::Relaxed),
                held_bytes: table.held_bytes.load(Ordering::Relaxed),
            };
            report.rows += table_report.rows;
            report.bytes += table_report.bytes;
            report.rows_earlier += table_report.rows_earlier;
            report.chunks_done += table_report.chunks_done;
            report.chunks_total += table_report.chunks_total;
            pages_done += table.pages_done.load(Ordering::Relaxed);
            pages_total += table.pages_total;
            pages_earlier += table.pages_earlier;
            report.tables.push(table_report);
        }
        if elapsed > 0.0 {
            report.rows_per_second = report.rows as f64 / elapsed;
            report.bytes_per_second = report.bytes as f64 / elapsed;
        }
        if phase == SnapshotPhase::Finished {
            report.eta_seconds = Some(0.0);
        } else if pages_done > pages_earlier && pages_total > pages_done && elapsed > 0.0 {
            // The rate of this run: chunks an earlier run loaded took none of its time.
            let rate = (pages_done - pages_earlier) as f64 / elapsed;
            report.eta_seconds = Some((pages_total - pages_done) as f64 / rate);
        }
        report
    }
}

fn table_labels(table: &str) -> TableLabels {
    TableLabels {
        table: table.to_string().into(),
    }
}

/// A planned table's chunk gauges, and its row and byte counters from 0 (an empty table has
/// its series too).
fn export_planned(table: &TableProgress) {
    let metrics = metrics();
    set_gauge(
        &metrics.snapshot_chunks_total,
        &table.table,
        table.chunks_total,
    );
    set_gauge(
        &metrics.snapshot_chunks_done,
        &table.table,
        table.chunks_done.load(Ordering::Relaxed),
    );
    let labels = table_labels(&table.table);
    let _ = metrics.snapshot_rows.get_or_create(&labels);
    let _ = metrics.snapshot_bytes.get_or_create(&labels);
}

fn set_gauge(
    family: &prometheus_client::metrics::family::Family<
        TableLabels,
        prometheus_client::metrics::gauge::Gauge<i64, std::sync::atomic::AtomicI64>,
    >,
    table: &str,
    value: u64,
) {
    family
        .get_or_create(&table_labels(table))
        .set(i64::try_from(value).unwrap_or(i64::MAX));
}

/// Shows progress until `stop` resolves: bars on a terminal, log lines otherwise.
pub async fn display(progress: Arc<SnapshotProgress>, stop: tokio::sync::watch::Receiver<bool>) {
    if std::io::stderr().is_terminal() {
        super::bars::show(progress, stop).await;
    } else {
        log_lines(progress, stop).await;
    }
}

async fn log_lines(progress: Arc<SnapshotProgress>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(LOG_INTERVAL);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let report = progress.report();
        for table in report.tables.iter().filter(|table| !table.done) {
            tracing::info!(
                table = %table.table,
                rows = table.rows,
                mib = table.bytes >> 20,
                chunks = format!("{}/{}", table.chunks_done, table.chunks_total),
                "snapshot table progress"
            );
        }
        tracing::info!(
            rows = report.rows,
            mib = report.bytes >> 20,
            rows_per_second = report.rows_per_second as u64,
            chunks = format!("{}/{}", report.chunks_done, report.chunks_total),
            eta_seconds = report.eta_seconds.map(|eta| eta.round() as u64),
            "snapshot progress"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{SnapshotChunk, TableSnapshotState};

    #[test]
    fn an_empty_table_has_its_snapshot_series_at_0() {
        let plan = SnapshotState {
            epoch: 1,
            attempt: 1,
            plan_id: 1,
            replace: false,
            emptied: false,
            tables: vec![TableSnapshotState {
                table: "public.progress_empty_test".into(),
                row_filter: None,
                chunks: Vec::new(),
            }],
        };
        SnapshotProgress::new().begin(&plan);
        let text = metrics().render();
        for name in [
            "snapshot_rows_total",
            "snapshot_bytes_total",
            "snapshot_chunks_total",
        ] {
            let series = format!("dbmazz_{name}{{table=\"public.progress_empty_test\"}} 0");
            assert!(text.contains(&series), "{series} missing in {text}");
        }
    }

    #[test]
    fn the_report_sums_tables_and_counts_chunks_done_earlier() {
        let chunk = |id, done| SnapshotChunk {
            id,
            relation_schema: "public".into(),
            relation_name: "t".into(),
            first_page: 0,
            end_page: None,
            estimated_pages: 10,
            filenode: 0,
            done,
            rows: if done { 40 } else { 0 },
        };
        let plan = SnapshotState {
            epoch: 2,
            attempt: 1,
            plan_id: 1,
            replace: false,
            emptied: false,
            tables: vec![
                TableSnapshotState {
                    table: "public.a".into(),
                    row_filter: None,
                    chunks: vec![chunk(0, true), chunk(1, false)],
                },
                TableSnapshotState {
                    table: "public.b".into(),
                    row_filter: None,
                    chunks: vec![chunk(2, false)],
                },
            ],
        };
        let progress = SnapshotProgress::new();
        assert_eq!(progress.report().phase, SnapshotPhase::Idle);
        progress.begin(&plan);
        assert_eq!(
            progress.report().eta_seconds,
            None,
            "the chunk an earlier run loaded gives no rate"
        );
        progress.add_rows("public.a", 100, 1000);
        progress.chunk_done("public.a", 10);
        let report = progress.report();
        assert_eq!(report.phase, SnapshotPhase::Reading);
        assert_eq!((report.rows, report.bytes), (100, 1000));
        assert_eq!(
            (report.rows_earlier, report.tables[0].rows_earlier),
            (40, 40)
        );
        assert_eq!((report.chunks_done, report.chunks_total), (2, 3));
        assert!(report.tables[0].done && !report.tables[1].done);
        assert!(report.eta_seconds.is_some());
        serde_json::to_string(&report).unwrap();
        progress.finish();
        let finished = progress.report();
        assert_eq!(finished.eta_seconds, Some(0.0));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            progress.report().elapsed_seconds,
            finished.elapsed_seconds,
            "a finished snapshot's time (and rates) stop at its end"
        );
    }

    #[test]
    fn a_table_snapshotted_while_streaming_is_done_only_when_released() {
        let chunk = |id| SnapshotChunk {
            id,
            relation_schema: "public".into(),
            relation_name: "t".into(),
            first_page: 0,
            end_page: None,
            estimated_pages: 1,
            filenode: 0,
            done: false,
            rows: 0,
        };
        let plan = SnapshotState {
            epoch: 5,
            attempt: 1,
            plan_id: 1,
            replace: false,
            emptied: false,
            tables: vec![TableSnapshotState {
                table: "public.t".into(),
                row_filter: None,
                chunks: vec![chunk(0)],
            }],
        };
        let progress = SnapshotProgress::new();
        progress.begin_table(&plan);
        progress.set_held("public.t", 2, 300);
        progress.chunk_done("public.t", 1);
        let report = progress.report();
        assert_eq!((report.phase, report.epoch), (SnapshotPhase::Reading, 5));
        let table = &report.tables[0];
        assert!(table.holding && !table.done, "{table:?}");
        assert_eq!((table.held_ops, table.held_bytes), (2, 300));
        progress.finish_table("public.t");
        let report = progress.report();
        assert_eq!(report.phase, SnapshotPhase::Finished);
        assert!(report.tables[0].done && !report.tables[0].holding);
        // Again: the table's figures start over.
        progress.begin_table(&plan);
        assert_eq!(progress.report().tables.len(), 1);
        assert!(!progress.report().tables[0].done);
        progress.add_rows("public.t", 7, 70);
        progress.finish_table("public.t");
        // Another table later: the figures are its own, not summed with the finished copy.
        let mut other = plan;
        other.epoch = 6;
        other.tables[0].table = "public.u".into();
        progress.begin_table(&other);
        let report = progress.report();
        assert_eq!(report.tables.len(), 1, "{report:?}");
        assert_eq!((report.rows, report.chunks_total), (0, 1));
    }
}
