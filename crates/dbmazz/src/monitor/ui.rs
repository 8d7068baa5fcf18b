//! The terminal screen, drawn from the [`Model`] alone (no I/O here, so `TestBackend` tests
//! render exactly what a user sees).
//!
//! ```text
//!  dbmazz  shop: dbmazz_pub -> starrocks                       streaming  up 5m02s
//!  lag 0.3s 1.2 KiB | 350 rows/s | 2 loads/s | mem 1.2 MiB/32.0 MiB 3% | reading
//!  lsn 0/1A2B3C8 durable 0/1A2B3C8 | slot active restart 0/1A2B000 retained 968 B
//! ─throughput rows/s: now 350, max 1,200────────────────────────────────────────────
//!  ▂▃▅▇█▇▅▃▂▁▂▃▅▇
//! ─tables: starrocks vs postgres───────────────────────────────────────────────────
//!  table        postgres  starrocks deleted  synced         changes rows/s    lag
//!  orders          2,000      1,998      12  #####. 99.9%     4,810    350  1.2 KiB
//!  ...
//!  last error / source problems / notices / the demo's line
//!  q quit  p pause  r resume                              api http://127.0.0.1:9808
//! ```
//!
//! Only ASCII plus the block characters ratatui's borders and sparkline use: it must read
//! well over SSH in 80×24. Wider terminals get per-operation columns.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::format;
use super::model::{CountCell, Model, TableView};
use super::snapshot_view::SnapshotView;
use super::source::CountsReading;

/// From this width on, inserts/updates/deletes and pending get their own columns.
const WIDE: u16 = 110;
/// Progress bar cells in the `synced` column.
const BAR_WIDTH: usize = 6;

/// Draws the whole screen. `api` is shown in the key line so the user knows what is read.
pub fn draw(frame: &mut Frame, model: &Model, api: &str) {
    let area = frame.area();
    let messages = messages(model);
    let snapshot = model.snapshot();
    // A finished snapshot keeps its one-line summary; a running one lists its tables.
    let snapshot_height = match &snapshot {
        None => 0,
        Some(view) if view.phase.as_deref() == Some("finished") => 1,
        Some(view) => 1 + view.tables.len().min(if area.height > 30 { 8 } else { 3 }) as u16,
    };
    let sparkline_height = if area.height >= 18 { 3 } else { 0 };
    let message_height = messages.len().min(3) as u16;
    let [title, summary, throughput, snapshot_area, tables, message_area, keys] =
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(2),
            Constraint::Length(sparkline_height),
            Constraint::Length(snapshot_height),
            Constraint::Min(3),
            Constraint::Length(message_height),
            Constraint::Length(1),
        ])
        .areas(area);
    draw_title(frame, model, title);
    draw_summary(frame, model, summary);
    if sparkline_height > 0 {
        draw_throughput(frame, model, throughput);
    }
    if let Some(view) = &snapshot {
        draw_snapshot(frame, view, snapshot_area);
    }
    draw_tables(frame, model, tables);
    let lines: Vec<Line> = messages
        .into_iter()
        .take(message_height as usize)
        .map(|(text, style)| Line::styled(format::fit(&text, area.width as usize), style))
        .collect();
    frame.render_widget(Paragraph::new(lines), message_area);
    draw_keys(frame, model, api, keys);
}

fn state_style(state: &str) -> Style {
    let color = match state {
        "streaming" => Color::Green,
        "snapshotting" | "starting" => Color::Cyan,
        "paused" | "stopping" => Color::Yellow,
        _ => Color::Red,
    };
    Style::new().fg(color).add_modifier(Modifier::BOLD)
}

fn draw_title(frame: &mut Frame, model: &Model, area: Rect) {
    let (left, state, right) = match model.status() {
        Some(status) => (
            format!(
                " dbmazz  {}: {} -> {}",
                status.source.database, status.source.publication, status.sink
            ),
            status.state.clone(),
            format!("  up {} ", format::duration(status.uptime_seconds)),
        ),
        None if model.latest().is_none() => (" dbmazz".into(), "connecting".into(), " ".into()),
        None => (" dbmazz".into(), "api down".into(), " ".into()),
    };
    let width = area.width as usize;
    let room = width.saturating_sub(state.len() + right.len());
    let left = format::fit(&left, room);
    let padding = " ".repeat(room.saturating_sub(left.chars().count()));
    let bar = Style::new().add_modifier(Modifier::REVERSED);
    let line = Line::from(vec![
        Span::styled(left, bar),
        Span::styled(padding, bar),
        Span::styled(state.clone(), bar.patch(state_style(&state))),
        Span::styled(right, bar),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_summary(frame: &mut Frame, model: &Model, area: Rect) {
    let width = area.width as usize;
    let Some(status) = model.status() else {
        let text = match model.latest().map(|snapshot| &snapshot.status) {
            Some(Err(error)) => format!(" {error}"),
            _ => " reading /status ...".into(),
        };
        let paragraph = Paragraph::new(Line::styled(text, Style::new().fg(Color::Red)))
            .wrap(ratatui::widgets::Wrap { trim: true });
        frame.render_widget(paragraph, area);
        return;
    };
    let pipeline = &status.pipeline;
    let (rows, loads) = model
        .rates()
        .map(|rates| {
            (
                format::rate(rates.rows_per_second),
                format::rate(rates.loads_per_second),
            )
        })
        .unwrap_or_else(|| ("-".into(), "-".into()));
    let lag = format!(
        " lag {} {}",
        format::duration(status.lag.seconds),
        format::bytes(status.lag.bytes)
    );
    let memory = format::bytes(pipeline.memory_bytes);
    let reading = if pipeline.reading {
        "reading"
    } else {
        "not reading"
    };
    // Realistic figures overflow 80 columns: drop the least useful parts before cutting.
    let first = format::first_fitting(
        &[
            format!(
                "{lag} | {rows} rows/s {loads} loads/s | mem {memory}/{} | {reading}",
                format::bytes(pipeline.memory_limit_bytes)
            ),
            format!("{lag} | {rows} rows/s {loads} loads/s | mem {memory} | {reading}"),
            format!("{lag} | {rows} rows/s | mem {memory} | {reading}"),
        ],
        width,
    );
    let slot = &status.slot;
    let dash = || "-".to_string();
    let slot_state = match slot.active {
        Some(true) => "active",
        Some(false) => "INACTIVE",
        None => "?",
    };
    let retained = format!(
        "retained {}{}",
        slot.retained_wal_bytes
            .map(format::bytes)
            .unwrap_or_else(dash),
        slot.wal_status
            .as_deref()
            .filter(|status| *status != "reserved")
            .map(|status| format!(" {status}"))
            .unwrap_or_default(),
    );
    let (received, durable) = (&status.lsn.received, &status.lsn.durable);
    let second = format::first_fitting(
        &[
            format!(
                " lsn {received} durable {durable} | slot {slot_state} restart {} {retained}",
                slot.restart_lsn.clone().unwrap_or_else(dash),
            ),
            format!(" lsn {received} durable {durable} | slot {slot_state} {retained}"),
            format!(" durable {durable} | slot {slot_state} {retained}"),
        ],
        width,
    );
    let lag_style = if status.lag.seconds >= 60.0 {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    };
    let lines = vec![Line::styled(first, lag_style), Line::raw(second)];
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_throughput(frame: &mut Frame, model: &Model, area: Rect) {
    let samples: Vec<u64> = model.throughput().collect();
    let shown = &samples[samples.len().saturating_sub(area.width as usize)..];
    let now = model
        .rates()
        .map(|rates| format::rate(rates.rows_per_second))
        .unwrap_or_else(|| "-".into());
    let max = shown.iter().copied().max().unwrap_or(0);
    let title = format!("throughput rows/s: now {now}, max {}", format::count(max));
    let sparkline = Sparkline::default()
        .block(Block::new().borders(Borders::TOP).title(title))
        .data(shown)
        .style(Style::new().fg(Color::Cyan));
    frame.render_widget(sparkline, area);
}

fn draw_snapshot(frame: &mut Frame, view: &SnapshotView, area: Rect) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(format!("snapshot {}", view.summary()));
    let rows: Vec<Row> = view
        .tables
        .iter()
        .map(|table| {
            let chunks = match (table.chunks_done, table.chunks_total) {
                (Some(done), Some(total)) => format!("{done}/{total} chunks"),
                _ => String::new(),
            };
            Row::new(vec![
                Cell::from(
                    table
                        .table
                        .strip_prefix("public.")
                        .unwrap_or(&table.table)
                        .to_string(),
                ),
                Cell::from(format!(
                    "{} {}",
                    format::bar(table.progress(), BAR_WIDTH),
                    format::percent(table.progress())
                )),
                Cell::from(chunks),
                Cell::from(format!(
                    "{} rows",
                    table.rows.map(format::count).unwrap_or_else(|| "-".into())
                )),
            ])
        })
        .collect();
    let widths = [
        Constraint::Min(12),
        Constraint::Length(13),
        Constraint::Length(16),
        Constraint::Length(18),
    ];
    frame.render_widget(Table::new(rows, widths).block(block), area);
}

fn draw_tables(frame: &mut Frame, model: &Model, area: Rect) {
    let tables = model.tables();
    let wide = area.width >= WIDE;
    let soft_delete = tables.iter().any(|table| {
        table
            .starrocks
            .count()
            .is_some_and(|c| c.soft_deleted.is_some())
    });
    let mut headers = vec!["table", "postgres", "starrocks"];
    // At 80 columns: 11 (name) + 9 + 9 + 7 + 12 + 9 + 6 + 9 + 8 spaces = 80.
    let mut widths = vec![
        Constraint::Min(5),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    if soft_delete {
        headers.push("deleted");
        widths.push(Constraint::Length(7));
    }
    headers.push("synced");
    widths.push(Constraint::Length((BAR_WIDTH + 6) as u16));
    if wide {
        headers.extend(["inserts", "updates", "deletes", "pending"]);
        widths.extend([Constraint::Length(10); 3]);
        widths.push(Constraint::Length(8));
    } else {
        headers.push("changes");
        widths.push(Constraint::Length(9));
    }
    headers.extend(["rows/s", "lag"]);
    widths.extend([Constraint::Length(6), Constraint::Length(9)]);
    // The name column takes what the figures leave, up to the longest name (wide screens
    // keep the figures next to the names instead of pushing them to the right edge).
    let figures: u16 = widths[1..]
        .iter()
        .map(|width| match width {
            Constraint::Length(length) => length + 1,
            _ => 1,
        })
        .sum();
    let longest = tables
        .iter()
        .map(|table| table.short_name().chars().count())
        .max()
        .unwrap_or(0)
        .max("table".len()) as u16;
    widths[0] = Constraint::Length(longest.min(area.width.saturating_sub(figures)).max(5));
    let header = Row::new(headers.iter().enumerate().map(|(index, name)| {
        aligned(
            name.to_string(),
            widths[index],
            index > 0 && *name != "synced",
        )
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    // Border and header take two lines; the rest shows tables from the scroll position.
    let visible = area.height.saturating_sub(2) as usize;
    let first = model.scroll.min(tables.len().saturating_sub(visible));
    let rows: Vec<Row> = tables
        .iter()
        .skip(first)
        .take(visible)
        .map(|table| table_row(table, soft_delete, wide, &widths))
        .collect();
    let title = if tables.is_empty() {
        "tables: none yet (no table configured, none in /status)".to_string()
    } else if tables.len() > visible {
        format!(
            "tables {}-{} of {} (up/down to scroll): starrocks vs postgres rows",
            first + 1,
            (first + visible).min(tables.len()),
            tables.len()
        )
    } else {
        "tables: starrocks rows vs postgres rows; changes replicated in this run".to_string()
    };
    let block = Block::new().borders(Borders::TOP).title(title);
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

fn table_row<'a>(
    table: &TableView,
    soft_delete: bool,
    wide: bool,
    widths: &[Constraint],
) -> Row<'a> {
    let count_style = |cell: &CountCell| match cell {
        CountCell::Error(_) | CountCell::Unavailable => Style::new().fg(Color::Red),
        _ => Style::new(),
    };
    let progress = table.progress();
    let synced_style = match progress {
        Some(ratio) if (ratio - 1.0).abs() < f64::EPSILON => Style::new().fg(Color::Green),
        Some(_) => Style::new().fg(Color::Yellow),
        None => Style::new(),
    };
    let name_width = match widths.first() {
        Some(Constraint::Length(width)) => *width as usize,
        _ => usize::MAX,
    };
    let mut cells: Vec<(String, Style)> = vec![
        (format::fit(table.short_name(), name_width), Style::new()),
        (
            format::count_cell(&table.postgres),
            count_style(&table.postgres),
        ),
        (
            format::count_cell(&table.starrocks),
            count_style(&table.starrocks),
        ),
    ];
    if soft_delete {
        let deleted = table
            .starrocks
            .count()
            .and_then(|count| count.soft_deleted)
            .map(format::count)
            .unwrap_or_else(|| "-".into());
        cells.push((deleted, Style::new()));
    }
    let synced_index = cells.len();
    cells.push((
        format!(
            "{} {:>5}",
            format::bar(progress, BAR_WIDTH),
            table.synced_text()
        ),
        synced_style,
    ));
    let replicated = table.replicated.as_ref();
    let figure = |value: Option<u64>| value.map(format::count).unwrap_or_else(|| "-".into());
    if wide {
        cells.push((figure(replicated.map(|t| t.inserts)), Style::new()));
        cells.push((figure(replicated.map(|t| t.updates)), Style::new()));
        cells.push((figure(replicated.map(|t| t.deletes)), Style::new()));
        cells.push((figure(replicated.map(|t| t.pending_ops)), Style::new()));
    } else {
        cells.push((
            figure(replicated.map(|t| t.rows_replicated())),
            Style::new(),
        ));
    }
    cells.push((
        table
            .rows_per_second
            .map(format::rate)
            .unwrap_or_else(|| "-".into()),
        Style::new(),
    ));
    cells.push((
        table
            .lag_bytes
            .map(format::bytes)
            .unwrap_or_else(|| "-".into()),
        Style::new(),
    ));
    // Figures right-aligned; the name and the synced bar read left to right.
    Row::new(cells.into_iter().enumerate().map(|(index, (text, style))| {
        let right = index > 0 && index != synced_index;
        aligned(text, widths[index], right).style(style)
    }))
}

/// A cell padded to its column's fixed width (right-aligned figures line up).
fn aligned<'a>(text: String, width: Constraint, right: bool) -> Cell<'a> {
    match (width, right) {
        (Constraint::Length(width), true) => {
            Cell::from(format!("{text:>width$}", width = width as usize))
        }
        _ => Cell::from(text),
    }
}

/// Lines under the table: the pipeline's last error, sources that are down, tables that
/// could not be counted, the last key's outcome, the embedding program's line.
fn messages(model: &Model) -> Vec<(String, Style)> {
    let red = Style::new().fg(Color::Red);
    let mut lines = Vec::new();
    if let Some(error) = model.status().and_then(|status| status.last_error.as_ref()) {
        lines.push((
            format!(" last error ({}): {}", error.at, error.message),
            red,
        ));
    }
    if let Some(snapshot) = model.latest() {
        for (side, reading) in [
            ("postgres", &snapshot.postgres),
            ("starrocks", &snapshot.starrocks),
        ] {
            if let CountsReading::Failed(error) = reading {
                lines.push((format!(" {side}: {error}"), red));
            }
        }
    }
    let table_errors: Vec<String> = model
        .tables()
        .iter()
        .flat_map(|table| {
            [
                ("postgres", &table.postgres),
                ("starrocks", &table.starrocks),
            ]
            .into_iter()
            .filter_map(|(side, cell)| match cell {
                CountCell::Error(error) => {
                    Some(format!("{} in {side}: {error}", table.short_name()))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
        })
        .collect();
    if !table_errors.is_empty() {
        lines.push((
            format!(" {}", table_errors.join("; ")),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(notice) = &model.notice {
        lines.push((format!(" {notice}"), Style::new().fg(Color::Cyan)));
    }
    if let Some(extra) = model.extra_line.as_deref().filter(|line| !line.is_empty()) {
        lines.push((format!(" {extra}"), Style::new()));
    }
    lines
}

fn draw_keys(frame: &mut Frame, model: &Model, api: &str, area: Rect) {
    let paused = model
        .status()
        .is_some_and(|status| status.state == "paused");
    let keys = if paused {
        " q quit  r resume  (paused: the slot retains WAL)"
    } else {
        " q quit  p pause  r resume"
    };
    let right = format!("api {api} ");
    let width = area.width as usize;
    let padding = width.saturating_sub(keys.len() + right.len());
    let text = if padding == 0 {
        format::fit(keys, width)
    } else {
        format!("{keys}{}{right}", " ".repeat(padding))
    };
    frame.render_widget(
        Paragraph::new(Line::styled(
            text,
            Style::new().add_modifier(Modifier::REVERSED),
        )),
        area,
    );
}
