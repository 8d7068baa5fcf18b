//! The Prometheus metrics of the process (`/metrics`), one registry for the whole binary.
//!
//! One dbmazz process runs one pipeline, so the registry is process-wide (like Vector's
//! recorder): the sink's retry loop and the stream core record into it without a handle
//! threaded through every constructor. Series are labelled by table, so tests that share a
//! process read their own tables' series.
//!
//! The names are the public interface (dashboards, alerts): docs/http-api.md lists them and
//! deploy/grafana/dbmazz.json uses them; a test checks both against what is exported.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A label value escaped as the exposition format requires (`\\`, `\"`, `\n`):
/// prometheus-client writes label values as they are, and one table named `we"ird` would
/// make the whole scrape unreadable.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelText(pub String);

impl EncodeLabelValue for LabelText {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        let mut rest = self.0.as_str();
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            encoder.write_str(&rest[..at])?;
            encoder.write_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[at + 1..];
        }
        encoder.write_str(rest)
    }
}

impl From<String> for LabelText {
    fn from(text: String) -> Self {
        LabelText(text)
    }
}

impl From<&str> for LabelText {
    fn from(text: &str) -> Self {
        LabelText(text.to_string())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: LabelText,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableOpLabels {
    pub table: LabelText,
    /// insert, update, delete, truncate.
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoadLabels {
    pub table: LabelText,
    /// ok or failed.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LossyLabels {
    pub table: LabelText,
    pub column: LabelText,
    /// Why the value could not be stored exactly (nan, infinity, out_of_range, ...).
    pub reason: &'static str,
}

/// Every metric dbmazz exports. Field names follow the exported names without `dbmazz_`.
pub struct Metrics {
    registry: Registry,
    pub rows: Family<TableOpLabels, Counter>,
    pub bytes: Family<TableLabels, Counter>,
    pub loads: Family<LoadLabels, Counter>,
    pub load_duration: Family<TableLabels, Histogram>,
    pub load_retries: Family<ReasonLabels, Counter>,
    pub filtered_rows: Family<TableLabels, Counter>,
    pub lossy_values: Family<LossyLabels, Counter>,
    pub added_columns_unfilled: Family<LossyLabels, Counter>,
    pub partitions_rewritten: Family<TableLabels, Counter>,
    pub transactions: Counter,
    pub changes: Counter,
    pub wal_received_bytes: Counter,
    pub lag_seconds: Gauge<f64, AtomicU64>,
    pub lag_bytes: Gauge<i64, AtomicI64>,
    pub retained_wal_bytes: Gauge<i64, AtomicI64>,
    pub slot_active: Gauge<i64, AtomicI64>,
    pub pipeline_memory_bytes: Gauge<i64, AtomicI64>,
    pub pipeline_memory_limit_bytes: Gauge<i64, AtomicI64>,
    pub spilled_bytes: Counter,
    pub paused: Gauge<i64, AtomicI64>,
    pub received_lsn: Gauge<i64, AtomicI64>,
    pub durable_lsn: Gauge<i64, AtomicI64>,
    pub snapshot_rows: Family<TableLabels, Counter>,
    pub snapshot_bytes: Family<TableLabels, Counter>,
    pub snapshot_chunks_done: Family<TableLabels, Gauge<i64, AtomicI64>>,
    pub snapshot_chunks_total: Family<TableLabels, Gauge<i64, AtomicI64>>,
    pub snapshot_held_bytes: Family<TableLabels, Gauge<i64, AtomicI64>>,
    pub errors: Family<ReasonLabels, Counter>,
    /// Lossy values per table, for /status (the family above cannot be read back).
    lossy_by_table: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn load_duration_histogram() -> Histogram {
    // 5 ms … ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("dbmazz");
        let metrics = Metrics {
            rows: Family::default(),
            bytes: Family::default(),
            loads: Family::default(),
            load_duration: Family::new_with_constructor(load_duration_histogram),
            load_retries: Family::default(),
            filtered_rows: Family::default(),
            lossy_values: Family::default(),
            added_columns_unfilled: Family::default(),
            partitions_rewritten: Family::default(),
            transactions: Counter::default(),
            changes: Counter::default(),
            wal_received_bytes: Counter::default(),
            lag_seconds: Gauge::default(),
            lag_bytes: Gauge::default(),
            retained_wal_bytes: Gauge::default(),
            slot_active: Gauge::default(),
            pipeline_memory_bytes: Gauge::default(),
            pipeline_memory_limit_bytes: Gauge::default(),
            spilled_bytes: Counter::default(),
            paused: Gauge::default(),
            received_lsn: Gauge::default(),
            durable_lsn: Gauge::default(),
            snapshot_rows: Family::default(),
            snapshot_bytes: Family::default(),
            snapshot_chunks_done: Family::default(),
            snapshot_chunks_total: Family::default(),
            snapshot_held_bytes: Family::default(),
            errors: Family::default(),
            lossy_by_table: Default::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "rows",
            "Row changes made durable in the destination, by table and operation",
            metrics.rows.clone(),
        );
        r.register(
            "load_bytes",
            "Bytes of row data made durable in the destination, by table",
            metrics.bytes.clone(),
        );
        r.register(
            "loads",
            "Destination loads (Stream Load, TRUNCATE, schema change) by table and outcome",
            metrics.loads.clone(),
        );
        r.register(
            "load_duration_seconds",
            "Time to make one batch durable, retries included",
            metrics.load_duration.clone(),
        );
        r.register(
            "load_retries",
            "Load attempts retried, by reason",
            metrics.load_retries.clone(),
        );
        r.register(
            "filtered_rows",
            "Rows StarRocks filtered out of loads (only with a max_filter_ratio above 0)",
            metrics.filtered_rows.clone(),
        );
        r.register(
            "lossy_values",
            "Values StarRocks cannot hold exactly, stored per lossy_policy, by table, column and reason",
            metrics.lossy_values.clone(),
        );
        r.register(
            "added_columns_unfilled",
            "Columns added in PostgreSQL whose existing rows StarRocks cannot be given their value \
             (left NULL until a re-snapshot), by table, column and reason",
            metrics.added_columns_unfilled.clone(),
        );
        r.register(
            "partitions_rewritten",
            "Leaf partitions found with a new file (truncated or rewritten; a TRUNCATE of one \
             partition is not replicated), by partitioned table",
            metrics.partitions_rewritten.clone(),
        );
        r.register(
            "transactions",
            "Committed transactions received",
            metrics.transactions.clone(),
        );
        r.register("changes", "Row changes received", metrics.changes.clone());
        r.register(
            "wal_received_bytes",
            "Bytes of pgoutput messages received",
            metrics.wal_received_bytes.clone(),
        );
        r.register(
            "lag_seconds",
            "Age of the oldest committed transaction not yet durable in the destination (0 when caught up)",
            metrics.lag_seconds.clone(),
        );
        r.register(
            "lag_bytes",
            "WAL bytes received but not yet durable in the destination (received - durable \
             position; what the server holds beyond that is in dbmazz_retained_wal_bytes)",
            metrics.lag_bytes.clone(),
        );
        r.register(
            "retained_wal_bytes",
            "WAL the replication slot keeps on the server (current WAL - restart_lsn)",
            metrics.retained_wal_bytes.clone(),
        );
        r.register(
            "slot_active",
            "1 when the replication slot is active",
            metrics.slot_active.clone(),
        );
        r.register(
            "pipeline_memory_bytes",
            "Bytes of row data held in the pipeline (batches queued or in flight)",
            metrics.pipeline_memory_bytes.clone(),
        );
        r.register(
            "pipeline_memory_limit_bytes",
            "pipeline.max_memory: reading stops when the pipeline holds this much",
            metrics.pipeline_memory_limit_bytes.clone(),
        );
        r.register(
            "spilled_bytes",
            "Bytes of large in-progress transactions written to spill files",
            metrics.spilled_bytes.clone(),
        );
        r.register(
            "paused",
            "1 while paused through POST /pause",
            metrics.paused.clone(),
        );
        r.register(
            "received_lsn",
            "Last WAL position received (as a number)",
            metrics.received_lsn.clone(),
        );
        r.register(
            "durable_lsn",
            "Position confirmed to the slot: everything before it is durable (as a number)",
            metrics.durable_lsn.clone(),
        );
        r.register(
            "snapshot_rows",
            "Rows copied by the snapshot, by table",
            metrics.snapshot_rows.clone(),
        );
        r.register(
            "snapshot_bytes",
            "Bytes copied by the snapshot, by table",
            metrics.snapshot_bytes.clone(),
        );
        r.register(
            "snapshot_chunks_done",
            "Snapshot chunks loaded, by table",
            metrics.snapshot_chunks_done.clone(),
        );
        r.register(
            "snapshot_chunks_total",
            "Snapshot chunks planned, by table",
            metrics.snapshot_chunks_total.clone(),
        );
        r.register(
            "snapshot_held_bytes",
            "Stream changes held while a table is snapshotted during streaming, by table",
            metrics.snapshot_held_bytes.clone(),
        );
        r.register(
            "errors",
            "Errors that stopped the pipeline, by kind",
            metrics.errors.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Counts a value stored per `lossy_policy` instead of exactly.
    pub fn count_lossy(&self, table: &str, column: &str, reason: &'static str) {
        self.lossy_values
            .get_or_create(&LossyLabels {
                table: table.to_string().into(),
                column: column.to_string().into(),
                reason,
            })
            .inc();
        if let Ok(mut tables) = self.lossy_by_table.lock() {
            *tables.entry(table.to_string()).or_default() += 1;
        }
    }

    /// Counts an added column whose pre-existing rows stay NULL in the destination.
    pub fn count_unfilled_added_column(&self, table: &str, column: &str, reason: &'static str) {
        self.added_columns_unfilled
            .get_or_create(&LossyLabels {
                table: table.to_string().into(),
                column: column.to_string().into(),
                reason,
            })
            .inc();
    }

    /// Counts leaf partitions of `table` found with a new file.
    pub fn count_partitions_rewritten(&self, table: &str, partitions: u64) {
        self.partitions_rewritten
            .get_or_create(&TableLabels {
                table: table.to_string().into(),
            })
            .inc_by(partitions);
    }

    /// Lossy values counted for `table` since the process started.
    pub fn lossy_count(&self, table: &str) -> u64 {
        self.lossy_by_table
            .lock()
            .map(|tables| tables.get(table).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn table(table: &impl ToString) -> TableLabels {
        TableLabels {
            table: table.to_string().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_names_with_labels() {
        let metrics = metrics();
        metrics
            .rows
            .get_or_create(&TableOpLabels {
                table: "public.metrics_test".into(),
                op: "insert",
            })
            .inc_by(3);
        let text = metrics.render();
        assert!(
            text.contains(r#"dbmazz_rows_total{table="public.metrics_test",op="insert"} 3"#),
            "{text}"
        );
        assert!(text.contains("# TYPE dbmazz_lag_seconds gauge"), "{text}");
        assert!(text.contains("# EOF"), "{text}");
    }

    #[test]
    fn label_values_are_escaped_so_any_table_name_keeps_the_scrape_readable() {
        let metrics = metrics();
        metrics
            .rows
            .get_or_create(&TableOpLabels {
                table: "public.we\"ird \\slash\nline".into(),
                op: "insert",
            })
            .inc();
        metrics.count_lossy("public.lossy\"quote", "co\nl", "nan");
        let text = metrics.render();
        assert!(
            text.contains(
                r#"dbmazz_rows_total{table="public.we\"ird \\slash\nline",op="insert"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"{table="public.lossy\"quote",column="co\nl",reason="nan"} 1"#),
            "{text}"
        );
        // Every sample line still has its value after the labels.
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let value = line.rsplit_once(' ').map(|(_, value)| value);
            assert!(
                value.is_some_and(|value| value.parse::<f64>().is_ok() || value == "+Inf"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn lossy_values_are_counted_per_column_and_per_table() {
        let metrics = metrics();
        metrics.count_lossy("public.lossy_test", "ratio", "nan");
        metrics.count_lossy("public.lossy_test", "ratio", "nan");
        metrics.count_lossy("public.lossy_test", "when", "out_of_range");
        assert_eq!(metrics.lossy_count("public.lossy_test"), 3);
        assert_eq!(metrics.lossy_count("public.other"), 0);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"dbmazz_lossy_values_total{table="public.lossy_test",column="ratio",reason="nan"} 2"#
            ),
            "{text}"
        );
    }
}
