//! `dbmazz monitor`: a terminal view of a running pipeline, and `dbmazz status`.
//!
//! The monitor is a client of the daemon (it shares no state with the pipeline): every
//! second it reads `/status` from the HTTP API and counts each table's rows in PostgreSQL and
//! StarRocks, then redraws. Stages, each in its own file:
//!
//! ```text
//! source.rs  Gatherer::gather ── MonitorSnapshot ──▶ model.rs  Model::update (rates, history)
//!   gathering.rs (/status and the counts on tasks of their own)
//!   api.rs   (GET /status)                                │
//!                                       ┌─────────────────┴──────────────┐
//!                                       ▼                                ▼
//!                      ui.rs  draw (ratatui, a terminal)   text.rs  format_line (not a terminal)
//! keys (terminal.rs): q / Esc / Ctrl-C quit, p POST /pause, r POST /resume, up/down scroll
//! ```
//!
//! [`run`] is also the entry point `dbmazz demo` uses in-process (with its traffic line in
//! [`MonitorOptions::extra_line`]).

mod api;
mod format;
mod gathering;
mod model;
mod report;
mod snapshot_view;
mod snapshot_wait;
mod source;
mod terminal;
mod text;
mod ui;

#[cfg(test)]
mod tests;

pub use api::{ApiError, ApiStatus, ApiTable, ApiUrl};
pub use model::{CountCell, Model, Rates, TableView};
pub use report::format_status;
pub use snapshot_wait::{wait_for_table_snapshot, SnapshotWaitError};
pub use source::{
    CountsReading, Gatherer, MonitorSnapshot, StarRocksTarget, TableCount, EXACT_COUNT_LIMIT,
};
pub use text::format_line;
pub use ui::draw;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::{Config, ConfigError, SinkKind};
use crate::schema::TableName;
use crate::sink::starrocks::DeleteMode;
use crate::source::PgConnectConfig;
use terminal::{KeyAction, KeyReader, TerminalGuard};

/// How often the monitor reads everything.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(1);

/// What to watch.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// The pipeline's HTTP API.
    pub api: ApiUrl,
    /// PostgreSQL, for row counts (`None`: no PostgreSQL column).
    pub postgres: Option<PgConnectConfig>,
    /// StarRocks, for row counts (`None`: no StarRocks column).
    pub starrocks: Option<StarRocksTarget>,
    /// Tables to count; empty = the publication's (learnt from /status and PostgreSQL).
    pub tables: Vec<TableName>,
    /// Count rows with `dbmazz_is_deleted = true` apart (`delete_mode = "soft"`).
    pub soft_delete: bool,
    /// A line shown under the tables, updated by the embedding program (the demo's traffic
    /// progress: `ops | ops/s | last op`).
    pub extra_line: Option<watch::Receiver<String>>,
    pub refresh: Duration,
}

impl MonitorOptions {
    /// Only the HTTP API (no row counts).
    pub fn new(api: ApiUrl) -> Self {
        MonitorOptions {
            api,
            postgres: None,
            starrocks: None,
            tables: Vec::new(),
            soft_delete: false,
            extra_line: None,
            refresh: DEFAULT_REFRESH,
        }
    }

    /// Everything from the config `dbmazz run` uses: `http.listen` (unless `api` overrides
    /// it), `source.url`, `source.tables` and `[sink.starrocks]`.
    pub fn from_config(config: &Config, api: Option<ApiUrl>) -> Result<Self, ConfigError> {
        let api = match api {
            Some(api) => api,
            None => api_from_config(config)?,
        };
        let mut postgres = config.source_connect()?;
        // So the monitor's connection is told apart from the pipeline's in pg_stat_activity.
        postgres.application_name = "dbmazz monitor".into();
        let starrocks = config
            .sink
            .starrocks
            .as_ref()
            .filter(|_| config.sink.kind == SinkKind::Starrocks);
        Ok(MonitorOptions {
            api,
            postgres: Some(postgres),
            soft_delete: starrocks.is_some_and(|sink| sink.delete_mode == DeleteMode::Soft),
            starrocks: starrocks.map(|sink| StarRocksTarget {
                mysql: sink.mysql.clone(),
                user: sink.user.clone(),
                password: sink.password.clone(),
                database: sink.database.clone(),
            }),
            tables: config.tables(),
            extra_line: None,
            refresh: DEFAULT_REFRESH,
        })
    }
}

/// The API address a config's `http.listen` serves on.
pub fn api_from_config(config: &Config) -> Result<ApiUrl, ConfigError> {
    let problem = |problem: String| ConfigError {
        key: "http.listen".into(),
        problem,
        fix: "set http.listen to the address `dbmazz run` serves on, or pass --url".into(),
    };
    if config.http.listen.is_empty() {
        return Err(problem("empty: the HTTP API is off in this config".into()));
    }
    ApiUrl::parse(&config.http.listen).map_err(|error| problem(error.to_string()))
}

/// How to show the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// The interactive screen when stdout is a terminal, else text lines.
    Auto,
    /// One line per refresh on stdout.
    Text,
    /// One text line, then return (an error if the API could not be read).
    Once,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot use the terminal: {0} — use --text (or redirect stdout) for the text mode")]
    Terminal(#[source] std::io::Error),
    #[error("cannot write the monitor's output: {0}")]
    Output(#[source] std::io::Error),
    #[error("{0}")]
    ApiDown(String),
}

/// Runs the monitor until `q`/Ctrl-C (screen), `shutdown` turning true, or (text) the
/// output closing.
pub async fn run(
    options: MonitorOptions,
    display: Display,
    shutdown: watch::Receiver<bool>,
) -> Result<(), MonitorError> {
    let display = match display {
        Display::Auto if std::io::stdout().is_terminal() => {
            return run_screen(options, shutdown).await
        }
        Display::Auto => Display::Text,
        other => other,
    };
    run_text(
        options,
        display == Display::Once,
        std::io::stdout(),
        shutdown,
    )
    .await
}

/// The text mode, writing to `out` (stdout, or a buffer in tests).
pub async fn run_text<W: Write>(
    options: MonitorOptions,
    once: bool,
    mut out: W,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MonitorError> {
    let mut model = Model::new();
    if once {
        let mut gatherer = gatherer(&options);
        model.update(gatherer.gather().await);
        gatherer.close().await;
        model.extra_line = options
            .extra_line
            .as_ref()
            .map(|line| line.borrow().clone());
        write_line(&mut out, &model)?;
        return match model.latest().map(|snapshot| &snapshot.status) {
            Some(Err(error)) => Err(MonitorError::ApiDown(error.clone())),
            _ => Ok(()),
        };
    }
    let (mut snapshots, gathering) = spawn_gathering(&options);
    let result = loop {
        tokio::select! {
            snapshot = snapshots.recv() => {
                let Some(snapshot) = snapshot else { break Ok(()) };
                model.update(snapshot);
                model.extra_line = options.extra_line.as_ref().map(|line| line.borrow().clone());
                if let Err(error) = write_line(&mut out, &model) {
                    // A closed pipe (`| head`) is the reader being done, not a failure.
                    break match error {
                        MonitorError::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                        other => Err(other),
                    };
                }
            }
            _ = stopped(&mut shutdown) => break Ok(()),
        }
    };
    gathering.abort();
    result
}

fn write_line<W: Write>(out: &mut W, model: &Model) -> Result<(), MonitorError> {
    writeln!(out, "{}", format_line(model, &text::clock_now()))
        .and_then(|()| out.flush())
        .map_err(MonitorError::Output)
}

/// The interactive screen.
async fn run_screen(
    options: MonitorOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MonitorError> {
    let api_text = options.api.to_string();
    let api = options.api.clone();
    let mut extra_line = options.extra_line.clone();
    let (mut snapshots, gathering) = spawn_gathering(&options);
    let result = async {
        let mut screen = TerminalGuard::enter().map_err(MonitorError::Terminal)?;
        let mut keys = KeyReader::spawn();
        let mut model = Model::new();
        loop {
            if let Some(line) = &extra_line {
                model.extra_line = Some(line.borrow().clone());
            }
            screen
                .terminal
                .draw(|frame| ui::draw(frame, &model, &api_text))
                .map_err(MonitorError::Terminal)?;
            tokio::select! {
                snapshot = snapshots.recv() => match snapshot {
                    Some(snapshot) => model.update(snapshot),
                    None => return Ok(()),
                },
                action = keys.actions.recv() => match action {
                    None | Some(KeyAction::Quit) => return Ok(()),
                    Some(KeyAction::Pause) => model.notice = Some(pause(&api, true).await),
                    Some(KeyAction::Resume) => model.notice = Some(pause(&api, false).await),
                    Some(KeyAction::Scroll(lines)) => model.scroll_by(lines),
                    Some(KeyAction::Redraw) => {}
                },
                _ = stopped(&mut shutdown) => return Ok(()),
                _ = line_changed(&mut extra_line) => {}
            }
        }
    }
    .await;
    gathering.abort();
    result
}

/// `POST /pause` or `/resume`; the outcome as a notice for the screen.
async fn pause(api: &ApiUrl, paused: bool) -> String {
    let (verb, done) = if paused {
        (
            "pause",
            "paused: nothing is read or loaded; the slot retains WAL (r resumes)",
        )
    } else {
        ("resume", "resumed")
    };
    match api.set_paused(paused).await {
        Ok(()) => format!("{} {done}", text::clock_now()),
        Err(error) => format!("{} {verb} failed: {error}", text::clock_now()),
    }
}

fn gatherer(options: &MonitorOptions) -> Gatherer {
    Gatherer::new(
        options.api.clone(),
        options.postgres.clone(),
        options.starrocks.clone(),
        options.tables.clone(),
        options.soft_delete,
    )
}

/// Gathers every `refresh` on tasks of their own, so a slow database never freezes the keys
/// nor holds back `/status`.
fn spawn_gathering(
    options: &MonitorOptions,
) -> (mpsc::Receiver<MonitorSnapshot>, tokio::task::JoinHandle<()>) {
    gathering::spawn(gatherer(options), options.refresh)
}

/// Resolves when `shutdown` turns true (never, if its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn line_changed(line: &mut Option<watch::Receiver<String>>) {
    match line {
        Some(receiver) => {
            if receiver.changed().await.is_err() {
                // The embedding program is done with its line; keep the last one shown.
                *line = None;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
