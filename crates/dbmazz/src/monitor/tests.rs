//! Screen tests: the monitor drawn on ratatui's `TestBackend` from a realistic model (the
//! demo's e-commerce tables, soft deletes on orders), at 80×24 and wider.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::api::{ApiLastError, ApiStatus, ApiTable};
use super::model::Model;
use super::source::{CountsReading, MonitorSnapshot, TableCount};
use super::ui::draw;

const API: &str = "http://127.0.0.1:9808";

fn table(name: &str, inserts: u64, updates: u64, deletes: u64, loads: u64) -> ApiTable {
    ApiTable {
        table: name.into(),
        inserts,
        updates,
        deletes,
        loads,
        bytes_loaded: inserts * 200,
        durable_lsn: Some("0/1A2B300".into()),
        last_load_at: Some("2026-11-26T00:41:16.870Z".into()),
        pending_ops: 0,
        ..ApiTable::default()
    }
}

fn status(uptime: f64, scale: u64) -> ApiStatus {
    let mut status = ApiStatus {
        version: "0.1.0".into(),
        state: "streaming".into(),
        started_at: "2026-11-26T00:36:07.123Z".into(),
        uptime_seconds: uptime,
        sink: "starrocks".into(),
        tables: vec![
            table("public.customers", 500 + scale, 40, 0, 10 + scale / 100),
            table("public.products", 200, 10 + scale, 0, 8),
            table("public.orders", 2000 + scale * 3, 700, 110, 12 + scale / 50),
            table(
                "public.order_items",
                5000 + scale * 5,
                0,
                300,
                20 + scale / 20,
            ),
        ],
        ..ApiStatus::default()
    };
    status.source.database = "demo_db".into();
    status.source.publication = "dbmazz_pub".into();
    status.source.slot = "dbmazz_demo_slot".into();
    status.lsn.received = "0/1A2B3C8".into();
    status.lsn.durable = "0/1A2B300".into();
    status.lsn.start = "0/1A00000".into();
    status.lag.seconds = 0.4;
    status.lag.bytes = 200;
    status.slot.restart_lsn = Some("0/1A2B000".into());
    status.slot.retained_wal_bytes = Some(968);
    status.slot.wal_status = Some("reserved".into());
    status.slot.active = Some(true);
    status.pipeline.memory_bytes = 1_258_291;
    status.pipeline.memory_limit_bytes = 33_554_432;
    status.pipeline.reading = true;
    status.tables[2].pending_ops = 4;
    status
}

fn counts(starrocks: bool) -> CountsReading {
    let rows = [
        ("public.customers", 540, None),
        ("public.order_items", 5_030, None),
        ("public.orders", 1_998, Some(110)),
        ("public.products", 200, None),
    ];
    CountsReading::Counts(
        rows.into_iter()
            .map(|(name, count, deleted)| {
                let count = if starrocks {
                    TableCount {
                        rows: count,
                        estimated: false,
                        soft_deleted: deleted.or(Some(0)),
                    }
                } else {
                    TableCount {
                        rows: if name == "public.orders" {
                            2_000
                        } else {
                            count
                        },
                        estimated: false,
                        soft_deleted: None,
                    }
                };
                (name.to_string(), Ok(count))
            })
            .collect(),
    )
}

/// Two readings one second apart, so rates and the sparkline have values.
fn realistic_model() -> Model {
    let start = Instant::now();
    let mut model = Model::new();
    for second in 0..5u64 {
        model.update(MonitorSnapshot {
            taken_at: start + Duration::from_secs(second),
            status: Ok(status(300.0 + second as f64, second * 10)),
            postgres: counts(false),
            starrocks: counts(true),
        });
    }
    model.extra_line = Some("traffic: 1,204 ops | 10.0 ops/s | last op: update orders".into());
    model
}

/// The screen as text, one string per row.
fn render(model: &Model, width: u16, height: u16) -> Vec<String> {
    let screen = render_inner(model, width, height);
    println!("{}", screen.join("\n"));
    screen
}
fn render_inner(model: &Model, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, model, API)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer.cell((x, y)).map(|cell| cell.symbol()).unwrap_or(" "))
                .collect::<String>()
        })
        .collect()
}

/// The line of `table` in the tables section.
fn table_line<'a>(screen: &'a [String], table: &str) -> &'a String {
    screen
        .iter()
        .rev()
        .find(|line| line.starts_with(&format!("{table} ")))
        .unwrap_or_else(|| panic!("no line for {table}:\n{}", screen.join("\n")))
}

fn assert_shows(screen: &[String], expected: &str) {
    assert!(
        screen.iter().any(|line| line.contains(expected)),
        "{expected:?} not on screen:\n{}",
        screen.join("\n")
    );
}

#[test]
fn the_80x24_screen_shows_every_table_with_counts_progress_and_rates() {
    let screen = render(&realistic_model(), 80, 24);
    for expected in [
        "dbmazz  demo_db: dbmazz_pub -> starrocks",
        "streaming",
        "up 5m04s",
        "lag 0.4s 200 B",
        // Per second status() adds 10 + 10 + 30 + 50 rows to the four tables.
        "| 100 rows/s 1 loads/s | mem 1.2 MiB/32.0 MiB | reading",
        "lsn 0/1A2B3C8 durable 0/1A2B300",
        "slot active restart 0/1A2B000 retained 968 B",
        "throughput rows/s: now 100",
        "table",
        "postgres",
        "starrocks",
        "deleted",
        "synced",
        "customers",
        "order_items",
        "products",
        "orders",
        "2,000",
        "1,998",
        "99.9%",
        "100%",
        "q quit  p pause  r resume",
        "traffic: 1,204 ops",
    ] {
        assert_shows(&screen, expected);
    }
    let orders = table_line(&screen, "orders");
    // postgres, starrocks, deleted, the bar, changes (2120+700+110), rate (30/s), lag (0xC8 B).
    for expected in [
        "2,000", "1,998", "110", "#####.", "99.9%", "2,930", "30", "200 B",
    ] {
        assert!(orders.contains(expected), "{expected:?} not in {orders:?}");
    }
    assert!(screen.iter().all(|line| line.chars().count() == 80));
}

#[test]
fn a_wide_screen_splits_the_changes_by_operation() {
    let screen = render(&realistic_model(), 140, 40);
    for expected in [
        "inserts",
        "updates",
        "deletes",
        "pending",
        "api http://127.0.0.1:9808",
    ] {
        assert_shows(&screen, expected);
    }
    let orders = table_line(&screen, "orders");
    for expected in ["2,120", "700", "110", " 4 "] {
        assert!(orders.contains(expected), "{expected:?} not in {orders:?}");
    }
}

#[test]
fn paused_failed_and_snapshotting_pipelines_say_so() {
    let mut model = realistic_model();
    let mut paused = status(310.0, 50);
    paused.state = "paused".into();
    paused.pipeline.reading = false;
    paused.last_error = Some(ApiLastError {
        at: "2026-11-26T00:41:17.000Z".into(),
        message: "StarRocks refused the load: too many versions".into(),
    });
    paused.snapshot = Some(serde_json::json!({
        "phase": "reading", "rows": 120000, "chunks_done": 12, "chunks_total": 40,
        "tables": [
            {"table": "public.orders", "rows": 100000, "chunks_done": 10, "chunks_total": 10, "done": true},
            {"table": "public.order_items", "rows": 20000, "chunks_done": 2, "chunks_total": 30, "done": false}
        ]
    }));
    model.update(MonitorSnapshot {
        taken_at: Instant::now() + Duration::from_secs(10),
        status: Ok(paused),
        postgres: counts(false),
        starrocks: CountsReading::Failed("cannot reach StarRocks at 127.0.0.1:9030".into()),
    });
    model.notice = Some("00:41:20 paused: nothing is read or loaded".into());
    let screen = render(&model, 80, 24);
    for expected in [
        "paused",
        "not reading",
        "r resume  (paused: the slot retains WAL)",
        "snapshot reading 12/40 chunks 30.0% 120,000 rows",
        "...... 6.6%",
        "2/30 chunks",
        "last error (2026-11-26T00:41:17.000Z): StarRocks refused the load",
        "starrocks: cannot reach StarRocks at 127.0.0.1:9030",
        "00:41:20 paused",
    ] {
        assert_shows(&screen, expected);
    }
    // StarRocks counts unknown: `?`, and no progress.
    let orders = table_line(&screen, "orders");
    assert!(orders.contains('?'), "{orders:?}");
}

#[test]
fn busy_figures_keep_the_80_column_summary_whole() {
    let mut model = realistic_model();
    let mut busy = status(4000.0, 60_000);
    busy.lsn.received = "3A/7F21A0B8".into();
    busy.lsn.durable = "3A/7F1C0000".into();
    busy.lag.seconds = 12.5;
    busy.lag.bytes = 250 * 1024 * 1024;
    busy.slot.restart_lsn = Some("3A/7E000028".into());
    busy.slot.retained_wal_bytes = Some(1_500 * 1024 * 1024);
    busy.slot.wal_status = Some("extended".into());
    busy.pipeline.memory_bytes = 31 * 1024 * 1024;
    busy.pipeline.reading = false;
    model.update(MonitorSnapshot {
        taken_at: Instant::now() + Duration::from_secs(10),
        status: Ok(busy),
        postgres: counts(false),
        starrocks: counts(true),
    });
    let screen = render(&model, 80, 24);
    // The least useful parts (memory limit, restart position) go; nothing is cut mid-word.
    assert!(!screen[1].trim_end().ends_with('~'), "{:?}", screen[1]);
    assert!(!screen[2].trim_end().ends_with('~'), "{:?}", screen[2]);
    for expected in [
        "lag 13s 250.0 MiB |",
        "rows/s",
        "| mem 31.0 MiB | not reading",
        "lsn 3A/7F21A0B8 durable 3A/7F1C0000 | slot active retained 1.5 GiB extended",
    ] {
        assert_shows(&screen, expected);
    }
    // A wide terminal still shows everything.
    let screen = render(&model, 140, 40);
    assert_shows(&screen, "| mem 31.0 MiB/32.0 MiB | not reading");
    assert_shows(&screen, "restart 3A/7E000028 retained 1.5 GiB extended");
}

#[test]
fn an_unreachable_api_is_shown_not_fatal() {
    let mut model = Model::new();
    model.update(MonitorSnapshot {
        taken_at: Instant::now(),
        status: Err(
            "cannot reach the dbmazz HTTP API at http://127.0.0.1:9808/status: \
                     Connection refused (os error 111) — is `dbmazz run` running?"
                .into(),
        ),
        postgres: counts(false),
        starrocks: CountsReading::NotConfigured,
    });
    let screen = render(&model, 80, 24);
    assert_shows(&screen, "api down");
    assert_shows(&screen, "cannot reach the dbmazz HTTP API");
    assert_shows(&screen, "customers");
    // Before the first reading: a title, no panic on an empty model, even tiny.
    let screen = render(&Model::new(), 40, 8);
    assert_shows(&screen, "connecting");
}

#[test]
fn long_table_names_are_cut_visibly_and_hard_deletes_have_no_deleted_column() {
    let long = "public.customer_loyalty_points_ledger_2026";
    let mut status = status(10.0, 0);
    status.tables = vec![table(long, 3, 0, 0, 1)];
    let count = TableCount {
        rows: 3,
        estimated: false,
        soft_deleted: None,
    };
    let mut model = Model::new();
    model.update(MonitorSnapshot {
        taken_at: Instant::now(),
        status: Ok(status),
        postgres: CountsReading::Counts([(long.to_string(), Ok(count))].into()),
        starrocks: CountsReading::Counts([(long.to_string(), Ok(count))].into()),
    });
    let screen = render(&model, 80, 24);
    // 80 columns leave 20 for the name without the deleted column.
    let line = table_line(&screen, "customer_loyalty_po~");
    assert!(line.contains("3 ######  100%"), "{line:?}");
    assert!(!screen.iter().any(|line| line.contains("deleted")));
}

#[test]
fn many_tables_scroll() {
    let names: Vec<String> = (0..30).map(|n| format!("public.t{n:02}")).collect();
    let mut status = status(10.0, 0);
    status.tables = names.iter().map(|name| table(name, 1, 0, 0, 1)).collect();
    let mut model = Model::new();
    model.update(MonitorSnapshot {
        taken_at: Instant::now(),
        status: Ok(status),
        postgres: CountsReading::NotConfigured,
        starrocks: CountsReading::NotConfigured,
    });
    let screen = render(&model, 80, 24);
    assert_shows(&screen, "tables 1-15 of 30 (up/down to scroll)");
    table_line(&screen, "t00");
    model.scroll_by(10);
    let screen = render(&model, 80, 24);
    assert_shows(&screen, "tables 11-25 of 30");
    table_line(&screen, "t10");
    // Past the end: the last page stays full.
    model.scroll_by(1000);
    assert_eq!(model.scroll, 29);
    let screen = render(&model, 80, 24);
    assert_shows(&screen, "tables 16-30 of 30");
    model.scroll_by(isize::MIN);
    assert_eq!(model.scroll, 0);
}

#[test]
fn the_monitor_can_be_spawned_on_a_runtime() {
    // `dbmazz demo` runs the monitor beside the pipeline: its future must be Send.
    fn assert_send<T: Send>(_: &T) {}
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let options = super::MonitorOptions::new(super::ApiUrl::parse("127.0.0.1:9").unwrap());
    let future = super::run(options, super::Display::Auto, shutdown);
    assert_send(&future);
}
