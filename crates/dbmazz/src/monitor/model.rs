//! The monitor's state, free of I/O: the latest [`MonitorSnapshot`], rates computed from the
//! difference between successive `/status` readings, and the throughput history the
//! sparkline draws. `ui.rs` and `text.rs` only read [`Model::view`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::api::{ApiStatus, ApiTable};
use super::snapshot_view::SnapshotView;
use super::source::{CountsReading, MonitorSnapshot, TableCount};
use crate::Lsn;

/// Throughput samples kept (one per refresh: ~5 minutes at 1 s).
pub const HISTORY_LEN: usize = 300;
/// Two readings closer than this give no meaningful rate.
const MIN_RATE_INTERVAL_SECONDS: f64 = 0.05;

/// One `/status` reading kept to compute rates against the next one.
#[derive(Debug, Clone)]
struct Reading {
    taken_at: Instant,
    uptime_seconds: f64,
    rows_by_table: BTreeMap<String, u64>,
    loads: u64,
}

impl Reading {
    fn new(taken_at: Instant, status: &ApiStatus) -> Self {
        Reading {
            taken_at,
            uptime_seconds: status.uptime_seconds,
            rows_by_table: status
                .tables
                .iter()
                .map(|table| (table.table.clone(), table.rows_replicated()))
                .collect(),
            loads: status.tables.iter().map(|table| table.loads).sum(),
        }
    }

    fn total_rows(&self) -> u64 {
        self.rows_by_table.values().sum()
    }

    /// Seconds between two readings: the server's uptime (when the counters were read) if
    /// it moved forward, else our own clock.
    fn seconds_since(&self, earlier: &Reading) -> f64 {
        let by_uptime = self.uptime_seconds - earlier.uptime_seconds;
        if by_uptime > 0.0 {
            by_uptime
        } else {
            self.taken_at
                .saturating_duration_since(earlier.taken_at)
                .as_secs_f64()
        }
    }
}

/// Rates between the last two readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    pub rows_per_second: f64,
    pub loads_per_second: f64,
    pub by_table: BTreeMap<String, f64>,
}

#[derive(Debug, Default)]
pub struct Model {
    latest: Option<MonitorSnapshot>,
    last_reading: Option<Reading>,
    rates: Option<Rates>,
    /// Rows per second, oldest first.
    throughput: VecDeque<u64>,
    /// What the last key press did ("pause requested", or its error).
    pub notice: Option<String>,
    /// A line from the embedding program (the demo's traffic progress).
    pub extra_line: Option<String>,
    /// First table shown when they do not all fit (the screen clamps it).
    pub scroll: usize,
    /// When a reading first showed the snapshot finished.
    snapshot_finished_at: Option<Instant>,
}

/// How long a finished snapshot's summary stays on the screen and in the text lines.
pub const FINISHED_SNAPSHOT_SHOWN: Duration = Duration::from_secs(60);

impl Model {
    pub fn new() -> Self {
        Model::default()
    }

    /// Takes a new snapshot; rates come from the difference with the previous `/status`.
    pub fn update(&mut self, snapshot: MonitorSnapshot) {
        if let Ok(status) = &snapshot.status {
            let reading = Reading::new(snapshot.taken_at, status);
            self.rates = self
                .last_reading
                .as_ref()
                .and_then(|previous| rates_between(previous, &reading));
            if let Some(rates) = &self.rates {
                if self.throughput.len() == HISTORY_LEN {
                    self.throughput.pop_front();
                }
                self.throughput
                    .push_back(rates.rows_per_second.round() as u64);
            }
            self.last_reading = Some(reading);
            let finished = SnapshotView::from_status(status.snapshot.as_ref())
                .is_some_and(|view| view.phase.as_deref() == Some("finished"));
            self.snapshot_finished_at = match (finished, self.snapshot_finished_at) {
                (true, Some(since)) => Some(since),
                (true, None) => Some(snapshot.taken_at),
                (false, _) => None,
            };
        } else {
            // Unknown while the API is unreachable; a later reading starts afresh.
            self.rates = None;
            self.last_reading = None;
        }
        self.latest = Some(snapshot);
    }

    /// Moves the table list by `lines` (negative: up), within the tables there are.
    pub fn scroll_by(&mut self, lines: isize) {
        let last = self.tables().len().saturating_sub(1);
        self.scroll = self.scroll.saturating_add_signed(lines).min(last);
    }

    pub fn latest(&self) -> Option<&MonitorSnapshot> {
        self.latest.as_ref()
    }

    pub fn status(&self) -> Option<&ApiStatus> {
        self.latest.as_ref()?.status.as_ref().ok()
    }

    /// The snapshot section to show: a running one, or one finished less than
    /// [`FINISHED_SNAPSHOT_SHOWN`] ago (afterwards it is old news on every line).
    pub fn snapshot(&self) -> Option<SnapshotView> {
        let view = SnapshotView::from_status(self.status()?.snapshot.as_ref())?;
        let taken_at = self.latest.as_ref()?.taken_at;
        match self.snapshot_finished_at {
            Some(since) if taken_at.duration_since(since) >= FINISHED_SNAPSHOT_SHOWN => None,
            _ => Some(view),
        }
    }

    pub fn rates(&self) -> Option<&Rates> {
        self.rates.as_ref()
    }

    /// Rows per second, oldest first.
    pub fn throughput(&self) -> impl Iterator<Item = u64> + '_ {
        self.throughput.iter().copied()
    }

    /// One row per table, in name order: the tables counted in either database or named
    /// by /status.
    pub fn tables(&self) -> Vec<TableView> {
        let Some(snapshot) = &self.latest else {
            return Vec::new();
        };
        let status = snapshot.status.as_ref().ok();
        let mut names: Vec<String> = Vec::new();
        let counted = [&snapshot.postgres, &snapshot.starrocks];
        for reading in counted {
            if let CountsReading::Counts(counts) = reading {
                names.extend(counts.keys().cloned());
            }
        }
        if let Some(status) = status {
            names.extend(status.tables.iter().map(|table| table.table.clone()));
        }
        names.sort();
        names.dedup();
        let received = status.and_then(|status| status.lsn.received.parse::<Lsn>().ok());
        names
            .into_iter()
            .map(|name| {
                let replicated =
                    status.and_then(|status| status.tables.iter().find(|t| t.table == name));
                TableView {
                    postgres: count_cell(&snapshot.postgres, &name),
                    starrocks: count_cell(&snapshot.starrocks, &name),
                    replicated: replicated.cloned(),
                    rows_per_second: self
                        .rates
                        .as_ref()
                        .and_then(|rates| rates.by_table.get(&name).copied()),
                    lag_bytes: replicated.map(|table| table_lag_bytes(table, received)),
                    table: name,
                }
            })
            .collect()
    }
}

fn rates_between(previous: &Reading, current: &Reading) -> Option<Rates> {
    let seconds = current.seconds_since(previous);
    // A restarted pipeline (uptime went back, counters shrank) starts a new series.
    let restarted = current.uptime_seconds < previous.uptime_seconds
        || current.total_rows() < previous.total_rows()
        || current.loads < previous.loads;
    if restarted || seconds < MIN_RATE_INTERVAL_SECONDS {
        return None;
    }
    let by_table = current
        .rows_by_table
        .iter()
        .map(|(table, rows)| {
            let before = previous.rows_by_table.get(table).copied().unwrap_or(0);
            (table.clone(), rows.saturating_sub(before) as f64 / seconds)
        })
        .collect();
    Some(Rates {
        rows_per_second: (current.total_rows() - previous.total_rows()) as f64 / seconds,
        loads_per_second: (current.loads - previous.loads) as f64 / seconds,
        by_table,
    })
}

/// WAL between what was received and what this table made durable, while it has work
/// pending; 0 once it has caught up (an idle table is not behind).
fn table_lag_bytes(table: &ApiTable, received: Option<Lsn>) -> u64 {
    if table.pending_ops == 0 {
        return 0;
    }
    let durable = table
        .durable_lsn
        .as_deref()
        .and_then(|lsn| lsn.parse::<Lsn>().ok());
    match (received, durable) {
        (Some(received), Some(durable)) => received.0.saturating_sub(durable.0),
        _ => 0,
    }
}

fn count_cell(reading: &CountsReading, table: &str) -> CountCell {
    match reading {
        CountsReading::NotConfigured => CountCell::NotConfigured,
        CountsReading::Failed(_) => CountCell::Unavailable,
        CountsReading::Counts(_) => match reading.table(table) {
            Some(Ok(count)) => CountCell::Count(*count),
            Some(Err(error)) => CountCell::Error(error.clone()),
            None => CountCell::Unavailable,
        },
    }
}

/// A row count as the screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum CountCell {
    NotConfigured,
    /// The source failed as a whole (its error is shown once, below the table).
    Unavailable,
    Error(String),
    Count(TableCount),
}

impl CountCell {
    pub fn count(&self) -> Option<TableCount> {
        match self {
            CountCell::Count(count) => Some(*count),
            _ => None,
        }
    }
}

/// One table's line.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView {
    /// `schema.table`
    pub table: String,
    pub postgres: CountCell,
    /// Live rows in StarRocks (soft-deleted rows apart, in `soft_deleted`).
    pub starrocks: CountCell,
    /// This run's durable changes from /status.
    pub replicated: Option<ApiTable>,
    pub rows_per_second: Option<f64>,
    pub lag_bytes: Option<u64>,
}

impl TableView {
    /// StarRocks live rows / PostgreSQL rows (1.0 when both are empty); may exceed 1.0 while
    /// deletes are on their way.
    pub fn progress(&self) -> Option<f64> {
        let postgres = self.postgres.count()?.rows;
        let starrocks = self.starrocks.count()?.rows;
        if postgres == 0 {
            return Some(if starrocks == 0 { 1.0 } else { f64::INFINITY });
        }
        Some(starrocks as f64 / postgres as f64)
    }

    /// `synced` as shown: [`Self::progress`] as a percentage; `~` and at most 100% when
    /// PostgreSQL's count is the planner's estimate, which may well be below StarRocks's exact
    /// count without any delete being on its way.
    pub fn synced_text(&self) -> String {
        let progress = self.progress();
        match self.postgres.count() {
            Some(count) if count.estimated => {
                format!(
                    "~{}",
                    super::format::percent(progress.map(|ratio| ratio.min(1.0)))
                )
            }
            _ => super::format::percent(progress),
        }
    }

    /// The name without the `public.` schema most tables have.
    pub fn short_name(&self) -> &str {
        self.table.strip_prefix("public.").unwrap_or(&self.table)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn status(uptime: f64, tables: &[(&str, u64, u64)]) -> ApiStatus {
        ApiStatus {
            state: "streaming".into(),
            uptime_seconds: uptime,
            tables: tables
                .iter()
                .map(|(name, inserts, loads)| ApiTable {
                    table: name.to_string(),
                    inserts: *inserts,
                    loads: *loads,
                    ..ApiTable::default()
                })
                .collect(),
            ..ApiStatus::default()
        }
    }

    fn snapshot(at: Instant, status: Result<ApiStatus, String>) -> MonitorSnapshot {
        MonitorSnapshot {
            taken_at: at,
            status,
            postgres: CountsReading::NotConfigured,
            starrocks: CountsReading::NotConfigured,
        }
    }

    #[test]
    fn rates_come_from_the_difference_between_two_readings() {
        let start = Instant::now();
        let mut model = Model::new();
        model.update(snapshot(start, Ok(status(10.0, &[("public.a", 100, 2)]))));
        assert!(model.rates().is_none(), "one reading has no rate");
        model.update(snapshot(
            start + Duration::from_secs(2),
            Ok(status(12.0, &[("public.a", 700, 6), ("public.b", 50, 1)])),
        ));
        let rates = model.rates().unwrap();
        assert_eq!(rates.rows_per_second, 325.0);
        assert_eq!(rates.loads_per_second, 2.5);
        assert_eq!(rates.by_table["public.a"], 300.0);
        assert_eq!(rates.by_table["public.b"], 25.0);
        assert_eq!(model.throughput().collect::<Vec<_>>(), vec![325]);
    }

    #[test]
    fn the_server_uptime_measures_the_interval_when_it_moves() {
        let start = Instant::now();
        let mut model = Model::new();
        model.update(snapshot(start, Ok(status(10.0, &[("t", 0, 0)]))));
        // Our clock says 3 s (a slow round), the counters were read 1 s apart.
        model.update(snapshot(
            start + Duration::from_secs(3),
            Ok(status(11.0, &[("t", 500, 0)])),
        ));
        assert_eq!(model.rates().unwrap().rows_per_second, 500.0);
    }

    #[test]
    fn a_restart_or_an_unreachable_api_starts_a_new_series() {
        let start = Instant::now();
        let mut model = Model::new();
        model.update(snapshot(start, Ok(status(100.0, &[("t", 1000, 5)]))));
        model.update(snapshot(
            start + Duration::from_secs(1),
            Ok(status(1.0, &[("t", 10, 1)])),
        ));
        assert!(model.rates().is_none(), "counters went back: no rate");
        model.update(snapshot(
            start + Duration::from_secs(2),
            Err("connection refused".into()),
        ));
        assert!(model.rates().is_none());
        assert!(model.status().is_none());
        model.update(snapshot(
            start + Duration::from_secs(3),
            Ok(status(3.0, &[("t", 40, 2)])),
        ));
        assert!(model.rates().is_none(), "first reading after the gap");
        model.update(snapshot(
            start + Duration::from_secs(4),
            Ok(status(4.0, &[("t", 90, 2)])),
        ));
        assert_eq!(model.rates().unwrap().rows_per_second, 50.0);
    }

    #[test]
    fn the_history_keeps_the_newest_samples() {
        let start = Instant::now();
        let mut model = Model::new();
        for second in 0..(HISTORY_LEN as u64 + 10) {
            model.update(snapshot(
                start + Duration::from_secs(second),
                Ok(status(second as f64, &[("t", second * 10, 0)])),
            ));
        }
        let history: Vec<u64> = model.throughput().collect();
        assert_eq!(history.len(), HISTORY_LEN);
        assert!(history.iter().all(|rate| *rate == 10));
    }

    #[test]
    fn tables_join_both_counts_progress_and_lag() {
        let mut status = status(5.0, &[("public.orders", 10, 1)]);
        status.lsn.received = "0/2000".into();
        status.tables[0].pending_ops = 3;
        status.tables[0].durable_lsn = Some("0/1C00".into());
        let count = |rows| {
            Ok(TableCount {
                rows,
                estimated: false,
                soft_deleted: None,
            })
        };
        let mut model = Model::new();
        model.update(MonitorSnapshot {
            taken_at: Instant::now(),
            status: Ok(status),
            postgres: CountsReading::Counts(
                [
                    ("public.orders".to_string(), count(200)),
                    ("public.items".to_string(), count(0)),
                ]
                .into(),
            ),
            starrocks: CountsReading::Counts(
                [
                    ("public.orders".to_string(), count(150)),
                    ("public.items".to_string(), Err("Unknown table".to_string())),
                ]
                .into(),
            ),
        });
        let tables = model.tables();
        assert_eq!(tables.len(), 2);
        let (items, orders) = (&tables[0], &tables[1]);
        assert_eq!(items.short_name(), "items");
        assert_eq!(items.starrocks, CountCell::Error("Unknown table".into()));
        assert_eq!(items.progress(), None);
        assert_eq!(items.replicated, None);
        assert_eq!(orders.progress(), Some(0.75));
        assert_eq!(orders.lag_bytes, Some(0x400));
        assert_eq!(orders.replicated.as_ref().unwrap().inserts, 10);
        assert_eq!(orders.synced_text(), "75.0%");
    }

    #[test]
    fn synced_against_an_estimate_never_reads_above_100() {
        let view = |postgres: u64, estimated: bool, starrocks: u64| TableView {
            table: "public.big".into(),
            postgres: CountCell::Count(TableCount {
                rows: postgres,
                estimated,
                soft_deleted: None,
            }),
            starrocks: CountCell::Count(TableCount {
                rows: starrocks,
                estimated: false,
                soft_deleted: None,
            }),
            replicated: None,
            rows_per_second: None,
            lag_bytes: None,
        };
        assert_eq!(view(2_460_000, true, 2_655_087).synced_text(), "~100%");
        assert_eq!(view(2_000_000, true, 1_000_000).synced_text(), "~50.0%");
        assert_eq!(view(100, false, 120).synced_text(), ">100%");
    }
}
