//! The plain-text mode: one line per refresh, for logs, pipes and `--once` (used whenever
//! stdout is not a terminal). Fields are separated by ` | ` so the line greps and cuts well:
//!
//! ```text
//! 00:41:17 streaming | lag 0.3s 1.2 KiB | 350 rows/s 2 loads/s | mem 1.2 MiB/32.0 MiB | retained 968 B | orders 1,998/2,000 99.9% del 12 | items 5,000/5,000 100%
//! ```
//!
//! A table reads `name starrocks/postgres percent` (`~` marks an estimated PostgreSQL count,
//! `?` a source that is down, `err` a table that could not be counted).

use super::format;
use super::model::{CountCell, Model};
use super::source::CountsReading;

/// One line (no newline) describing `model`, starting with `clock` (e.g. `00:41:17`).
pub fn format_line(model: &Model, clock: &str) -> String {
    let mut parts = Vec::new();
    let Some(snapshot) = model.latest() else {
        return format!("{clock} waiting for the first reading");
    };
    match &snapshot.status {
        Ok(status) => {
            parts.push(format!("{clock} {}", status.state));
            parts.push(format!(
                "lag {} {}",
                format::duration(status.lag.seconds),
                format::bytes(status.lag.bytes)
            ));
            match model.rates() {
                Some(rates) => parts.push(format!(
                    "{} rows/s {} loads/s",
                    format::rate(rates.rows_per_second),
                    format::rate(rates.loads_per_second)
                )),
                None => parts.push("- rows/s".to_string()),
            }
            parts.push(format!(
                "mem {}/{}{}",
                format::bytes(status.pipeline.memory_bytes),
                format::bytes(status.pipeline.memory_limit_bytes),
                // Backpressure or a pause: PostgreSQL keeps the WAL meanwhile.
                if status.pipeline.reading {
                    ""
                } else {
                    " not reading"
                }
            ));
            if let Some(retained) = status.slot.retained_wal_bytes {
                parts.push(format!("retained {}", format::bytes(retained)));
            }
            if let Some(snapshot) = model.snapshot() {
                parts.push(format!("snapshot {}", snapshot.summary()));
            }
        }
        Err(error) => parts.push(format!("{clock} api down: {error}")),
    }
    for table in model.tables() {
        let mut text = format!(
            "{} {}/{} {}",
            table.short_name(),
            format::count_cell(&table.starrocks),
            format::count_cell(&table.postgres),
            table.synced_text()
        );
        if let CountCell::Count(count) = &table.starrocks {
            if let Some(deleted) = count.soft_deleted {
                text.push_str(&format!(" del {}", format::count(deleted)));
            }
        }
        parts.push(text);
    }
    for (side, reading) in [
        ("postgres", &snapshot.postgres),
        ("starrocks", &snapshot.starrocks),
    ] {
        if let CountsReading::Failed(error) = reading {
            parts.push(format!("{side}: {error}"));
        }
    }
    if let Some(error) = model.status().and_then(|status| status.last_error.as_ref()) {
        parts.push(format!("last error: {}", error.message));
    }
    if let Some(extra) = model.extra_line.as_deref().filter(|line| !line.is_empty()) {
        parts.push(extra.to_string());
    }
    parts.join(" | ")
}

/// `HH:MM:SS` (UTC) of now.
pub fn clock_now() -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    stamp.get(11..19).unwrap_or(&stamp).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::monitor::api::{ApiLastError, ApiStatus, ApiTable};
    use crate::monitor::source::{MonitorSnapshot, TableCount};

    fn count(rows: u64, soft_deleted: Option<u64>) -> Result<TableCount, String> {
        Ok(TableCount {
            rows,
            estimated: false,
            soft_deleted,
        })
    }

    fn status(uptime: f64, inserts: u64) -> ApiStatus {
        let mut status = ApiStatus {
            state: "streaming".into(),
            uptime_seconds: uptime,
            tables: vec![ApiTable {
                table: "public.orders".into(),
                inserts,
                loads: uptime as u64,
                ..ApiTable::default()
            }],
            ..ApiStatus::default()
        };
        status.lag.seconds = 0.3;
        status.lag.bytes = 1229;
        status.pipeline.memory_bytes = 1_258_291;
        status.pipeline.memory_limit_bytes = 33_554_432;
        status.pipeline.reading = true;
        status.slot.retained_wal_bytes = Some(968);
        status
    }

    #[test]
    fn a_line_has_state_lag_rates_memory_and_every_table() {
        let start = Instant::now();
        let mut model = Model::new();
        let snapshot = |at, status| MonitorSnapshot {
            taken_at: at,
            status: Ok(status),
            postgres: CountsReading::Counts(
                [
                    ("public.orders".to_string(), count(2000, None)),
                    ("public.items".to_string(), count(5000, None)),
                ]
                .into(),
            ),
            starrocks: CountsReading::Counts(
                [
                    ("public.orders".to_string(), count(1998, Some(12))),
                    ("public.items".to_string(), count(5000, Some(0))),
                ]
                .into(),
            ),
        };
        model.update(snapshot(start, status(10.0, 1000)));
        model.update(snapshot(start + Duration::from_secs(1), status(12.0, 1700)));
        model.extra_line = Some("traffic 120 ops | 10 ops/s".into());
        assert_eq!(
            format_line(&model, "00:41:17"),
            "00:41:17 streaming | lag 0.3s 1.2 KiB | 350 rows/s 1 loads/s | \
             mem 1.2 MiB/32.0 MiB | retained 968 B | items 5,000/5,000 100% del 0 | \
             orders 1,998/2,000 99.9% del 12 | traffic 120 ops | 10 ops/s"
        );
    }

    #[test]
    fn a_line_says_which_source_is_down() {
        let mut model = Model::new();
        model.update(MonitorSnapshot {
            taken_at: Instant::now(),
            status: Err("cannot reach the dbmazz HTTP API".into()),
            postgres: CountsReading::Counts([("public.orders".to_string(), count(7, None))].into()),
            starrocks: CountsReading::Failed("cannot reach StarRocks".into()),
        });
        assert_eq!(
            format_line(&model, "12:00:00"),
            "12:00:00 api down: cannot reach the dbmazz HTTP API | orders ?/7 - | \
             starrocks: cannot reach StarRocks"
        );
    }

    #[test]
    fn a_line_shows_the_last_error_and_the_snapshot() {
        let mut status = status(1.0, 0);
        status.state = "failed".into();
        status.pipeline.reading = false;
        status.last_error = Some(ApiLastError {
            at: "2026-11-26T00:41:17.000Z".into(),
            message: "StarRocks refused the load".into(),
        });
        status.snapshot = Some(serde_json::json!({"phase": "reading", "rows": 10}));
        let mut model = Model::new();
        model.update(MonitorSnapshot {
            taken_at: Instant::now(),
            status: Ok(status),
            postgres: CountsReading::NotConfigured,
            starrocks: CountsReading::NotConfigured,
        });
        let line = format_line(&model, "t");
        assert!(line.starts_with("t failed | "), "{line}");
        assert!(line.contains(" not reading | "), "{line}");
        assert!(line.contains("| snapshot reading 10 rows |"), "{line}");
        assert!(line.contains("| orders -/- - |"), "{line}");
        assert!(
            line.ends_with("| last error: StarRocks refused the load"),
            "{line}"
        );
    }

    #[test]
    fn a_finished_snapshot_is_shown_for_a_minute() {
        let start = Instant::now();
        let mut model = Model::new();
        let mut update = |seconds: u64, phase: &str| {
            let mut status = status(seconds as f64, 0);
            status.snapshot = Some(serde_json::json!({"phase": phase, "rows": 10}));
            model.update(MonitorSnapshot {
                taken_at: start + Duration::from_secs(seconds),
                status: Ok(status),
                postgres: CountsReading::NotConfigured,
                starrocks: CountsReading::NotConfigured,
            });
            format_line(&model, "t")
        };
        assert!(update(0, "reading").contains("| snapshot reading 10 rows |"));
        assert!(update(100, "reading").contains("| snapshot reading 10 rows |"));
        assert!(update(101, "finished").contains("| snapshot finished 10 rows |"));
        assert!(update(160, "finished").contains("| snapshot finished 10 rows |"));
        let line = update(161, "finished");
        assert!(!line.contains("snapshot"), "{line}");
        // Another snapshot (`dbmazz snapshot --table`) is shown again, and its end too.
        assert!(update(200, "reading").contains("| snapshot reading 10 rows |"));
        assert!(update(201, "finished").contains("| snapshot finished 10 rows |"));
    }

    #[test]
    fn the_clock_is_a_time_of_day() {
        let clock = clock_now();
        assert_eq!(clock.len(), 8, "{clock}");
        assert_eq!(clock.as_bytes()[2], b':');
    }
}
