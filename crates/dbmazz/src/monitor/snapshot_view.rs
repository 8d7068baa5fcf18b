//! The `snapshot` section of /status, read generically: the snapshot module owns its shape
//! and may add fields, so everything here is optional and unknown fields are ignored. What
//! the monitor looks for: `phase`, `rows`, `chunks_done`, `chunks_total`, `eta_seconds`,
//! `rows_per_second`, `rows_earlier`, and `tables[]` with `table`, `rows`, `rows_earlier`,
//! `chunks_done`, `chunks_total`, `done`.

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotView {
    pub phase: Option<String>,
    pub rows: Option<u64>,
    /// Loaded by an earlier run of a resumed snapshot.
    pub rows_earlier: Option<u64>,
    pub chunks_done: Option<u64>,
    pub chunks_total: Option<u64>,
    pub rows_per_second: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub tables: Vec<SnapshotTableView>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotTableView {
    pub table: String,
    pub rows: Option<u64>,
    pub rows_earlier: Option<u64>,
    pub chunks_done: Option<u64>,
    pub chunks_total: Option<u64>,
    pub done: Option<bool>,
}

impl SnapshotView {
    /// `None` for a missing/null section or one saying no snapshot ran (`phase: idle`).
    pub fn from_status(section: Option<&Value>) -> Option<Self> {
        let section = section.filter(|value| value.is_object())?;
        let view = SnapshotView {
            phase: section
                .get("phase")
                .and_then(Value::as_str)
                .map(str::to_string),
            rows: section.get("rows").and_then(Value::as_u64),
            rows_earlier: section.get("rows_earlier").and_then(Value::as_u64),
            chunks_done: section.get("chunks_done").and_then(Value::as_u64),
            chunks_total: section.get("chunks_total").and_then(Value::as_u64),
            rows_per_second: section.get("rows_per_second").and_then(Value::as_f64),
            eta_seconds: section.get("eta_seconds").and_then(Value::as_f64),
            tables: section
                .get("tables")
                .and_then(Value::as_array)
                .map(|tables| tables.iter().filter_map(table_view).collect())
                .unwrap_or_default(),
        };
        (view.phase.as_deref() != Some("idle")).then_some(view)
    }

    /// Chunks done / planned, when both are known.
    pub fn progress(&self) -> Option<f64> {
        chunk_progress(self.chunks_done, self.chunks_total)
    }

    /// A one-line summary: `reading 12/40 chunks 30.0% 120,000 rows 5200 rows/s eta 42s`.
    pub fn summary(&self) -> String {
        use super::format;
        let mut parts = vec![self.phase.clone().unwrap_or_else(|| "running".into())];
        if let (Some(done), Some(total)) = (self.chunks_done, self.chunks_total) {
            parts.push(format!(
                "{done}/{total} chunks {}",
                format::percent(self.progress())
            ));
        }
        if self.rows.is_some() {
            parts.push(rows_text(self.rows, self.rows_earlier));
        }
        if let Some(rate) = self.rows_per_second.filter(|rate| *rate > 0.0) {
            parts.push(format!("{} rows/s", format::rate(rate)));
        }
        if let Some(eta) = self.eta_seconds {
            parts.push(format!("eta {}", format::duration(eta)));
        }
        parts.join(" ")
    }
}

impl SnapshotTableView {
    pub fn progress(&self) -> Option<f64> {
        if self.done == Some(true) {
            return Some(1.0);
        }
        chunk_progress(self.chunks_done, self.chunks_total)
    }
}

/// `120,000 rows`, or `50 rows (+1,100 earlier)` for a resumed snapshot; `-` when unknown.
pub fn rows_text(rows: Option<u64>, earlier: Option<u64>) -> String {
    use super::format;
    let Some(rows) = rows else {
        return "- rows".into();
    };
    match earlier.filter(|earlier| *earlier > 0) {
        Some(earlier) => format!(
            "{} rows (+{} earlier)",
            format::count(rows),
            format::count(earlier)
        ),
        None => format!("{} rows", format::count(rows)),
    }
}

fn chunk_progress(done: Option<u64>, total: Option<u64>) -> Option<f64> {
    match (done, total) {
        (Some(_), Some(0)) => Some(1.0),
        (Some(done), Some(total)) => Some(done as f64 / total as f64),
        _ => None,
    }
}

fn table_view(value: &Value) -> Option<SnapshotTableView> {
    Some(SnapshotTableView {
        table: value.get("table")?.as_str()?.to_string(),
        rows: value.get("rows").and_then(Value::as_u64),
        rows_earlier: value.get("rows_earlier").and_then(Value::as_u64),
        chunks_done: value.get("chunks_done").and_then(Value::as_u64),
        chunks_total: value.get("chunks_total").and_then(Value::as_u64),
        done: value.get("done").and_then(Value::as_bool),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_running_snapshot_section_is_read_field_by_field() {
        let section = json!({
            "phase": "reading", "epoch": 1, "rows": 120000, "chunks_done": 12,
            "chunks_total": 40, "rows_per_second": 5200.0, "eta_seconds": 42.0,
            "tables": [
                {"table": "public.orders", "rows": 100000, "chunks_done": 10, "chunks_total": 10, "done": true},
                {"table": "public.items", "rows": 20000, "chunks_done": 2, "chunks_total": 30, "done": false, "new_field": 1}
            ]
        });
        let view = SnapshotView::from_status(Some(&section)).unwrap();
        assert_eq!(view.progress(), Some(0.3));
        assert_eq!(view.tables.len(), 2);
        assert_eq!(view.tables[0].progress(), Some(1.0));
        assert_eq!(
            view.summary(),
            "reading 12/40 chunks 30.0% 120,000 rows 5200 rows/s eta 42s"
        );
    }

    #[test]
    fn a_resumed_snapshot_shows_the_rows_an_earlier_run_loaded() {
        let section = json!({
            "phase": "finished", "rows": 50, "rows_earlier": 1100, "chunks_done": 2,
            "chunks_total": 2,
            "tables": [{"table": "public.m", "rows": 0, "rows_earlier": 700, "chunks_done": 1, "chunks_total": 1, "done": true}]
        });
        let view = SnapshotView::from_status(Some(&section)).unwrap();
        assert_eq!(
            view.summary(),
            "finished 2/2 chunks 100% 50 rows (+1,100 earlier)"
        );
        let table = &view.tables[0];
        assert_eq!(
            rows_text(table.rows, table.rows_earlier),
            "0 rows (+700 earlier)"
        );
        assert_eq!(rows_text(Some(5), Some(0)), "5 rows");
    }

    #[test]
    fn no_section_an_idle_one_or_an_odd_one() {
        assert_eq!(SnapshotView::from_status(None), None);
        assert_eq!(SnapshotView::from_status(Some(&Value::Null)), None);
        assert_eq!(
            SnapshotView::from_status(Some(&json!({"phase": "idle"}))),
            None
        );
        let odd = SnapshotView::from_status(Some(&json!({"tables": [1, {"rows": 3}]}))).unwrap();
        assert!(odd.tables.is_empty());
        assert_eq!(odd.summary(), "running");
    }
}
