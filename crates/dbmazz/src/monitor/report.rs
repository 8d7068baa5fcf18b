//! `dbmazz status`: the `/status` document as a readable table.

use std::fmt::Write as _;

use unicode_width::UnicodeWidthStr;

use super::api::ApiStatus;
use super::format;
use super::snapshot_view::SnapshotView;

/// Renders `status` for a terminal (80 columns is enough for the summary; the table widens
/// with long table names).
pub fn format_status(status: &ApiStatus) -> String {
    let mut out = String::new();
    let none = || "-".to_string();
    let line = |out: &mut String, label: &str, text: String| {
        let _ = writeln!(out, "{label:<10} {text}");
    };
    line(
        &mut out,
        "state",
        format!(
            "{} (dbmazz {}, up {}, since {})",
            status.state,
            status.version,
            format::duration(status.uptime_seconds),
            status.started_at
        ),
    );
    line(
        &mut out,
        "source",
        format!(
            "database {}, publication {}, slot {} -> sink {}",
            status.source.database, status.source.publication, status.source.slot, status.sink
        ),
    );
    line(
        &mut out,
        "lsn",
        format!(
            "received {}, durable {}, start {}",
            status.lsn.received, status.lsn.durable, status.lsn.start
        ),
    );
    line(
        &mut out,
        "lag",
        format!(
            "{}, {} of WAL",
            format::duration(status.lag.seconds),
            format::bytes(status.lag.bytes)
        ),
    );
    let slot = &status.slot;
    line(
        &mut out,
        "slot",
        format!(
            "{}, wal_status {}, confirmed {}, restart {}, server {}, retained {}",
            match slot.active {
                Some(true) => "active",
                Some(false) => "inactive",
                None => "not checked yet",
            },
            slot.wal_status.clone().unwrap_or_else(none),
            slot.confirmed_flush_lsn.clone().unwrap_or_else(none),
            slot.restart_lsn.clone().unwrap_or_else(none),
            slot.server_wal_lsn.clone().unwrap_or_else(none),
            slot.retained_wal_bytes
                .map(format::bytes)
                .unwrap_or_else(none),
        ),
    );
    let pipeline = &status.pipeline;
    line(
        &mut out,
        "pipeline",
        format!(
            "memory {} of {}, {}, {} loads in flight, {} transactions, {} changes, {} spilled",
            format::bytes(pipeline.memory_bytes),
            format::bytes(pipeline.memory_limit_bytes),
            if pipeline.reading {
                "reading"
            } else {
                "not reading"
            },
            pipeline.loads_in_flight,
            format::count(pipeline.transactions),
            format::count(pipeline.changes),
            format::bytes(pipeline.spilled_bytes),
        ),
    );
    let last_error = match &status.last_error {
        Some(error) => format!("{} at {}", error.message, error.at),
        None => "none".into(),
    };
    line(&mut out, "last error", last_error);
    if let Some(snapshot) = SnapshotView::from_status(status.snapshot.as_ref()) {
        line(&mut out, "snapshot", snapshot.summary());
        for table in &snapshot.tables {
            let chunks = match (table.chunks_done, table.chunks_total) {
                (Some(done), Some(total)) => format!("{done}/{total} chunks"),
                _ => String::new(),
            };
            line(
                &mut out,
                "",
                format!(
                    "{} {} {chunks} {}",
                    table.table,
                    super::snapshot_view::rows_text(table.rows, table.rows_earlier),
                    if table.done == Some(true) { "done" } else { "" }
                )
                .trim_end()
                .to_string(),
            );
        }
    }
    out.push('\n');
    out.push_str(&tables(status));
    out
}

fn tables(status: &ApiStatus) -> String {
    if status.tables.is_empty() {
        return "no table has had a change in this run yet\n".into();
    }
    let headers = [
        "table",
        "inserts",
        "updates",
        "deletes",
        "truncates",
        "loads",
        "loaded",
        "pending",
        "durable lsn",
        "last load",
    ];
    let rows: Vec<[String; 10]> = status
        .tables
        .iter()
        .map(|table| {
            [
                table.table.clone(),
                format::count(table.inserts),
                format::count(table.updates),
                format::count(table.deletes),
                format::count(table.truncates),
                format::count(table.loads),
                format::bytes(table.bytes_loaded),
                format::count(table.pending_ops),
                table.durable_lsn.clone().unwrap_or_else(|| "-".into()),
                table.last_load_at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[String]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            // Names and LSNs/times left-aligned, figures right-aligned; padded by display
            // width (a CJK character takes two columns).
            let padding = " ".repeat(width.saturating_sub(cell.width()));
            if index == 0 || index >= 8 {
                let _ = write!(text, "{cell}{padding}  ");
            } else {
                let _ = write!(text, "{padding}{cell}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    push_row(&headers.map(str::to_string));
    for row in &rows {
        push_row(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documented_example() -> ApiStatus {
        let text = include_str!("../../../../docs/http-api.md");
        let start = text.find("```json\n").unwrap() + "```json\n".len();
        let end = start + text[start..].find("```").unwrap();
        serde_json::from_str(&text[start..end]).unwrap()
    }

    #[test]
    fn the_status_table_shows_state_lsns_lag_slot_pipeline_and_tables() {
        let report = format_status(&documented_example());
        for expected in [
            "state      streaming (dbmazz 0.1.0, up 13s, since 2026-11-26T00:41:07.123Z)",
            "source     database shop, publication dbmazz_pub, slot dbmazz_slot -> sink starrocks",
            "lsn        received 0/1A2B3C8, durable 0/1A2B3C8, start 0/1A00000",
            "lag        0.0s, 0 B of WAL",
            "slot       active, wal_status reserved, confirmed 0/1A2B3C8, restart 0/1A2B000, server 0/1A2B3C8, retained 968 B",
            "pipeline   memory 0 B of 32.0 MiB, reading, 0 loads in flight, 120 transactions, 4,810 changes, 0 B spilled",
            "last error none",
            "table          inserts  updates  deletes  truncates  loads     loaded  pending  durable lsn  last load",
            "public.orders    4,000      700      110          0     12  892.0 KiB        0  0/1A2B300    2026-11-26T00:41:16.870Z",
        ] {
            assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
        }
    }

    #[test]
    fn wide_characters_keep_the_columns_aligned() {
        let mut status = documented_example();
        let mut wide = status.tables[0].clone();
        wide.table = "public.表".into();
        status.tables.push(wide);
        let report = format_status(&status);
        let column = |line: &str| line.find("4,000").map(|at| line[..at].width());
        let lines: Vec<&str> = report
            .lines()
            .filter(|line| line.starts_with("public."))
            .collect();
        assert_eq!(lines.len(), 2, "{report}");
        assert_eq!(column(lines[0]), column(lines[1]), "{report}");
    }

    #[test]
    fn an_idle_pipeline_and_a_snapshot_are_said_so() {
        let mut status = documented_example();
        status.tables.clear();
        status.snapshot = Some(serde_json::json!({
            "phase": "reading", "rows": 5, "chunks_done": 1, "chunks_total": 2,
            "tables": [{"table": "public.orders", "rows": 5, "chunks_done": 1, "chunks_total": 2, "done": false}]
        }));
        let report = format_status(&status);
        assert!(
            report.contains("snapshot   reading 1/2 chunks 50.0% 5 rows\n"),
            "{report}"
        );
        assert!(
            report.contains("           public.orders 5 rows 1/2 chunks\n"),
            "{report}"
        );
        assert!(
            report.ends_with("no table has had a change in this run yet\n"),
            "{report}"
        );
    }
}
