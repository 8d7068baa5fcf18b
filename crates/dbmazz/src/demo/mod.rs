//! `dbmazz demo`: the whole product on one machine — a throwaway PostgreSQL, an in-process
//! StarRocks emulator, an e-commerce database, the pipeline, a traffic generator and a live
//! view — or the same against servers the user names (`--pg-url`, `--starrocks`).

mod schema;
mod servers;
mod traffic;
mod verify;

pub use schema::{DemoTable, TABLES};
pub use servers::{PostgresTarget, StarRocksServer, StarRocksTarget};
pub use traffic::{progress_line, TrafficStats};
pub use verify::{canonical, render as render_checks, TableCheck};

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::monitor;
use crate::ops::{self, RunState, Telemetry};
use crate::replicator::{self, RunContext, RunError};
use crate::sink::starrocks::{connect_sink, DdlError, StarRocksDdl};
use crate::sink::SinkError;
use crate::source::{connect_sql, SourceError};

pub const DATABASE: &str = "demo_db";
pub const PUBLICATION: &str = "dbmazz_pub";
pub const SLOT: &str = "dbmazz_demo_slot";
/// Orders in the seed (about 2.5 items each).
pub const SEED_ORDERS: u32 = 2000;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Traffic operations per second.
    pub rate: f64,
    /// Stop after this long (`None`: until Ctrl-C; `--verify` defaults to 30 s).
    pub duration: Option<Duration>,
    /// Stop traffic at the end, wait for the stream to catch up and compare every table.
    pub verify: bool,
    /// An existing PostgreSQL (a URL of the database to use) instead of a throwaway cluster.
    pub pg_url: Option<String>,
    /// An existing StarRocks instead of the in-process emulator.
    pub starrocks: Option<StarRocksTarget>,
    /// Drop the demo's tables, publication and slot first (existing servers only).
    pub reset: bool,
    /// Where the HTTP API listens (falls back to a free port when taken).
    pub http_listen: String,
    /// Print progress lines (the monitor takes over when it is built in and stdout is a TTY).
    pub quiet: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            rate: 10.0,
            duration: None,
            verify: false,
            pg_url: None,
            starrocks: None,
            reset: false,
            http_listen: "127.0.0.1:9808".into(),
            quiet: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Servers(#[from] servers::ServerError),
    #[error("PostgreSQL: {0}")]
    Source(#[from] SourceError),
    #[error("PostgreSQL: {0}")]
    Sql(#[from] tokio_postgres::Error),
    /// The message already ends with its innermost cause: not chained again.
    #[error("StarRocks: {}", in_demo_words(.0))]
    StarRocks(DdlError),
    #[error("StarRocks sink: {0}")]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    #[error(transparent)]
    Http(#[from] ops::ServeError),
    #[error(
        "the demo tables already exist in {database}: rerun with --reset to drop them (and the \
         publication {PUBLICATION} and slot {SLOT}), or point --pg-url at another database"
    )]
    AlreadySetUp { database: String },
    #[error("the pipeline stopped before the demo ended")]
    PipelineStopped,
    #[error("demo state directory: {0}")]
    StateDir(std::io::Error),
}

impl From<DdlError> for DemoError {
    fn from(error: DdlError) -> Self {
        DemoError::StarRocks(error)
    }
}

/// A StarRocks error names config keys; the demo takes flags.
fn in_demo_words(error: &DdlError) -> String {
    error.to_string().replace(
        "check sink.starrocks.mysql",
        "check --starrocks-mysql (default: the --starrocks host, port 9030)",
    )
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoOutcome {
    pub traffic_ops: u64,
    pub elapsed: Duration,
    /// `--verify`: one line per table.
    pub checks: Option<Vec<TableCheck>>,
}

impl DemoOutcome {
    pub fn verified(&self) -> bool {
        self.checks
            .as_ref()
            .is_some_and(|checks| checks.iter().all(TableCheck::identical))
    }
}

/// Runs the demo until its duration ends or `shutdown` turns true.
pub async fn run(
    options: DemoOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<DemoOutcome, DemoError> {
    let started = Instant::now();
    let postgres = PostgresTarget::start(options.pg_url.as_deref()).await?;
    let starrocks = StarRocksServer::start_or_use(options.starrocks.clone()).await?;
    say(&options, &format!("PostgreSQL: {}", postgres.describe()));
    say(&options, &format!("StarRocks:  {}", starrocks.describe()));

    let sql = connect_sql(&postgres.connect_config()?).await?;
    prepare_postgres(&sql, &postgres, options.reset).await?;
    // Existing rows: the initial snapshot copies them, then the stream takes over.
    sql.batch_execute(&schema::seed_sql(SEED_ORDERS)).await?;
    say(
        &options,
        &format!("seeded {SEED_ORDERS} orders; snapshot, then streaming"),
    );
    let ddl = StarRocksDdl::connect(
        &starrocks.mysql,
        &starrocks.user,
        &starrocks.password,
        DATABASE,
    )
    .await?;
    prepare_starrocks(&ddl, options.reset).await?;

    let state_dir = servers::TempDir::new("dbmazz-demo").map_err(DemoError::StateDir)?;
    let config = Config::from_toml(&config_toml(&postgres, &starrocks, &state_dir, &options))?;
    let telemetry = Telemetry::new();
    let http = match ops::serve(&options.http_listen, Arc::clone(&telemetry)).await {
        Ok(server) => server,
        Err(_) => ops::serve("127.0.0.1:0", Arc::clone(&telemetry)).await?,
    };
    say(
        &options,
        &format!(
            "HTTP API:   http://{0}/status  http://{0}/metrics",
            http.local_addr()
        ),
    );

    let monitor_options = monitor::ApiUrl::parse(&http.local_addr().to_string())
        .ok()
        .and_then(|api| monitor::MonitorOptions::from_config(&config, Some(api)).ok());
    let sink = connect_sink(&config).await?;
    let (stop_pipeline, pipeline_shutdown) = watch::channel(false);
    let context = RunContext::new(pipeline_shutdown).with_telemetry(Arc::clone(&telemetry));
    let pipeline_config = config.clone();
    let mut pipeline =
        tokio::spawn(
            async move { replicator::run(&pipeline_config, Arc::new(sink), context).await },
        );
    wait_until_streaming(&telemetry, &mut pipeline).await?;
    let copied: u64 = telemetry
        .status()
        .snapshot
        .as_ref()
        .and_then(|snapshot| snapshot["rows"].as_u64())
        .unwrap_or(0);
    say(
        &options,
        &format!(
            "snapshot copied {copied} rows; streaming, traffic at {} ops/s",
            options.rate
        ),
    );

    let stats = Arc::new(TrafficStats::default());
    let (stop_traffic, traffic_stop) = watch::channel(false);
    let traffic_client = connect_sql(&postgres.connect_config()?).await?;
    let first_order: i64 = sql
        .query_one("SELECT last_value FROM order_ids", &[])
        .await?
        .get(0);
    let traffic = tokio::spawn(traffic::run(
        traffic_client,
        options.rate,
        first_order.max(1) as u64,
        traffic_stop,
        Arc::clone(&stats),
    ));

    let duration = options
        .duration
        .or(options.verify.then_some(Duration::from_secs(30)));
    let ended = watch_until_end(
        &options,
        duration,
        &telemetry,
        &stats,
        &mut shutdown,
        &mut pipeline,
        monitor_options,
    )
    .await;
    stop_traffic.send_replace(true);
    let _ = traffic.await;

    let mut checks = None;
    if ended.is_ok() && options.verify && !*shutdown.borrow() {
        say(
            &options,
            "traffic stopped; waiting for the stream to catch up",
        );
        checks = Some(verify_until_identical(&sql, &ddl, &telemetry, &mut shutdown).await?);
    }
    stop_pipeline.send_replace(true);
    let pipeline_result = pipeline.await;
    drop(http);
    ended?;
    match pipeline_result {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Err(error.into()),
        Err(_) => return Err(DemoError::PipelineStopped),
    }
    drop(sql);
    starrocks.stop().await;
    postgres.stop();
    Ok(DemoOutcome {
        traffic_ops: stats.ops(),
        elapsed: started.elapsed(),
        checks,
    })
}

fn say(options: &DemoOptions, line: &str) {
    if !options.quiet {
        println!("{line}");
    }
}

async fn prepare_postgres(
    sql: &tokio_postgres::Client,
    postgres: &PostgresTarget,
    reset: bool,
) -> Result<(), DemoError> {
    if reset {
        let drop_tables = TABLES
            .iter()
            .map(|table| format!("DROP TABLE IF EXISTS public.{} CASCADE;", table.name))
            .collect::<String>();
        sql.batch_execute(&format!(
            "{drop_tables} DROP SEQUENCE IF EXISTS order_ids; DROP PUBLICATION IF EXISTS {PUBLICATION};"
        ))
        .await?;
        sql.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = $1 AND NOT active",
            &[&SLOT],
        )
        .await?;
    }
    let exists: bool = sql
        .query_one("SELECT to_regclass('public.orders') IS NOT NULL", &[])
        .await?
        .get(0);
    if exists {
        return Err(DemoError::AlreadySetUp {
            database: postgres.database(),
        });
    }
    sql.batch_execute(schema::SCHEMA_SQL).await?;
    sql.batch_execute(&schema::publication_sql(PUBLICATION))
        .await?;
    Ok(())
}

async fn prepare_starrocks(ddl: &StarRocksDdl, reset: bool) -> Result<(), DemoError> {
    ddl.create_database().await?;
    if reset {
        for table in &TABLES {
            ddl.query_text(&format!(
                "DROP TABLE IF EXISTS `{DATABASE}`.`{}`",
                table.name
            ))
            .await?;
        }
    }
    Ok(())
}

fn config_toml(
    postgres: &PostgresTarget,
    starrocks: &StarRocksServer,
    state_dir: &servers::TempDir,
    options: &DemoOptions,
) -> String {
    let tables = TABLES
        .iter()
        .map(|table| format!("\"{}\"", table.qualified()))
        .collect::<Vec<_>>()
        .join(", ");
    // The demo's own HTTP server is started separately (with a fallback port).
    let _ = options;
    format!(
        r#"
state_dir = "{state}"
[source]
url = "{url}"
publication = "{PUBLICATION}"
slot = "{SLOT}"
tables = [{tables}]
[sink.starrocks]
fe_http = "{fe_http}"
mysql = "{mysql}"
user = "{user}"
password = "{password}"
database = "{DATABASE}"
delete_mode = "soft"
table_properties = {{ replication_num = "1" }}
[batch]
max_wait = "500ms"
[http]
listen = ""
"#,
        state = state_dir.path().display(),
        url = postgres.url,
        fe_http = starrocks.fe_http,
        mysql = starrocks.mysql,
        user = starrocks.user,
        password = starrocks
            .password
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
    )
}

type Pipeline = tokio::task::JoinHandle<Result<replicator::RunSummary, RunError>>;

async fn wait_until_streaming(
    telemetry: &Telemetry,
    pipeline: &mut Pipeline,
) -> Result<(), DemoError> {
    loop {
        if telemetry.state() == RunState::Streaming {
            return Ok(());
        }
        if pipeline.is_finished() {
            return match pipeline.await {
                Ok(Err(error)) => Err(error.into()),
                _ => Err(DemoError::PipelineStopped),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Shows progress until the duration ends, Ctrl-C (or `q` on the monitor), or the pipeline
/// stops: the monitor's screen on a terminal (with the traffic line under the tables), one
/// line per second otherwise.
async fn watch_until_end(
    options: &DemoOptions,
    duration: Option<Duration>,
    telemetry: &Telemetry,
    stats: &TrafficStats,
    shutdown: &mut watch::Receiver<bool>,
    pipeline: &mut Pipeline,
    monitor_options: Option<monitor::MonitorOptions>,
) -> Result<(), DemoError> {
    let started = Instant::now();
    let mut previous_ops = 0;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let screen = !options.quiet && std::io::stdout().is_terminal();
    let (traffic_line, traffic_line_receiver) = watch::channel(String::new());
    let (stop_monitor, monitor_shutdown) = watch::channel(false);
    let mut screen_task = match monitor_options.filter(|_| screen) {
        Some(mut monitor_options) => {
            monitor_options.extra_line = Some(traffic_line_receiver);
            Some(tokio::spawn(monitor::run(
                monitor_options,
                monitor::Display::Auto,
                monitor_shutdown,
            )))
        }
        None => None,
    };
    let result = loop {
        tokio::select! {
            _ = shutdown.changed() => break Ok(()),
            _ = ticker.tick() => {}
        }
        // The screen reads Ctrl-C and `q` as keys: its end is the user's stop.
        if screen_task.as_ref().is_some_and(|task| task.is_finished()) {
            break Ok(());
        }
        if pipeline.is_finished() {
            break Err(DemoError::PipelineStopped);
        }
        let line = progress_line(stats, previous_ops, Duration::from_secs(1));
        previous_ops = stats.ops();
        if screen_task.is_some() {
            traffic_line.send_replace(line);
        } else if !options.quiet {
            let status = telemetry.status();
            let rows: u64 = status
                .tables
                .iter()
                .map(|table| table.inserts + table.updates + table.deletes)
                .sum();
            println!(
                "{line} | replication: {} | {rows} rows | lag {:.1}s | durable {}",
                serde_json::to_string(&status.state)
                    .unwrap_or_default()
                    .trim_matches('"'),
                status.lag.seconds,
                status.lsn.durable,
            );
        }
        if duration.is_some_and(|duration| started.elapsed() >= duration) {
            break Ok(());
        }
    };
    stop_monitor.send_replace(true);
    if let Some(task) = screen_task.take() {
        if let Ok(Err(error)) = task.await {
            eprintln!("monitor: {error}");
        }
    }
    result
}

/// Compares until identical (the stream catching up) or 120 s passed.
async fn verify_until_identical(
    sql: &tokio_postgres::Client,
    ddl: &StarRocksDdl,
    telemetry: &Telemetry,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Vec<TableCheck>, DemoError> {
    let target: String = sql
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await?
        .get(0);
    let target: crate::Lsn = target.parse().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = telemetry.status();
        let durable: crate::Lsn = status.lsn.durable.parse().unwrap_or_default();
        let caught_up = durable >= target || status.lag.seconds == 0.0;
        if caught_up {
            let checks = verify::compare_all(sql, ddl, true).await?;
            if checks.iter().all(TableCheck::identical) || Instant::now() > deadline {
                return Ok(checks);
            }
        } else if Instant::now() > deadline {
            return Ok(verify::compare_all(sql, ddl, true).await?);
        }
        if *shutdown.borrow() {
            return Ok(verify::compare_all(sql, ddl, true).await?);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_starrocks_names_the_demo_flag_and_its_cause_once() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = DemoError::from(DdlError::Connect {
            address: "127.0.0.1:9030".into(),
            source: mysql_async::Error::Io(mysql_async::IoError::Io(refused)),
        });
        let line = crate::one_line(&error);
        assert!(line.contains("--starrocks-mysql"), "{line}");
        assert!(!line.contains("sink.starrocks"), "{line}");
        assert_eq!(line.matches("refused").count(), 1, "{line}");
    }
}
