//! Terminal progress bars (indicatif): one per unfinished table, one overall.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::progress::{SnapshotPhase, SnapshotProgress, SnapshotReport};

const REDRAW: Duration = Duration::from_millis(250);

pub async fn show(progress: Arc<SnapshotProgress>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} chunks {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let overall = bars.add(ProgressBar::new(0).with_style(style.clone()));
    overall.set_prefix("snapshot");
    let mut per_table: HashMap<String, ProgressBar> = HashMap::new();
    let mut tick = tokio::time::interval(REDRAW);
    loop {
        let stopping = tokio::select! {
            _ = stop.changed() => true,
            _ = tick.tick() => false,
        };
        let report = progress.report();
        for table in &report.tables {
            let bar = per_table.entry(table.table.clone()).or_insert_with(|| {
                let bar = bars.insert_before(&overall, ProgressBar::new(table.chunks_total));
                bar.set_style(style.clone());
                bar.set_prefix(table.table.clone());
                bar
            });
            bar.set_position(table.chunks_done);
            bar.set_message(format!("{} rows, {} MiB", table.rows, table.bytes >> 20));
            if table.done && !bar.is_finished() {
                bar.finish();
            }
        }
        overall.set_length(report.chunks_total);
        overall.set_position(report.chunks_done);
        overall.set_message(format!(
            "{} rows, {:.0} rows/s, {:.1} MiB/s, ETA {}",
            report.rows,
            report.rows_per_second,
            report.bytes_per_second / (1024.0 * 1024.0),
            report
                .eta_seconds
                .map_or_else(|| "?".to_string(), |eta| format!("{eta:.0}s"))
        ));
        if stopping {
            // `finish` would draw a full bar: only a finished snapshot gets one; a stopped one
            // stays where it is, said so.
            match stopped_message(&report) {
                None => overall.finish(),
                Some(message) => {
                    for bar in per_table.values().filter(|bar| !bar.is_finished()) {
                        bar.abandon();
                    }
                    overall.abandon_with_message(message);
                }
            }
            return;
        }
    }
}

/// What the overall bar says when the display stops before the snapshot finished (`None`:
/// it finished, the bar is drawn full).
fn stopped_message(report: &SnapshotReport) -> Option<String> {
    (report.phase != SnapshotPhase::Finished).then(|| {
        format!(
            "stopped: {} of {} chunks loaded (the rest is read at the next start)",
            report.chunks_done, report.chunks_total
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_snapshot_is_not_drawn_finished() {
        let progress = SnapshotProgress::new();
        let mut report = progress.report();
        report.phase = SnapshotPhase::Reading;
        (report.chunks_done, report.chunks_total) = (162, 371);
        let message = stopped_message(&report).unwrap();
        assert!(message.contains("162 of 371"), "{message}");
        report.phase = SnapshotPhase::Finished;
        assert_eq!(stopped_message(&report), None);
    }
}
