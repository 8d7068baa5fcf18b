//! The `dbmazz` command line. Parsing and printing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use dbmazz::config::{Config, Overrides, SinkKind};
use dbmazz::monitor;
use dbmazz::one_line;
use dbmazz::ops::{self, Telemetry};
use dbmazz::replicator::{self, RunContext, RunError};
use dbmazz::sink::{FileSink, NoopSink};
use tokio::sync::watch;

/// Exit codes (documented in README.md).
const EXIT_ERROR: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const EXIT_INTERRUPTED: i32 = 130;

#[derive(Parser)]
#[command(
    name = "dbmazz",
    version,
    about = "Stream PostgreSQL changes into StarRocks in real time"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Stream changes from the publication's tables until stopped (SIGINT/SIGTERM).
    Run(RunArgs),
    /// Everything on one machine: a throwaway PostgreSQL, an in-process StarRocks emulator,
    /// an e-commerce database, the pipeline and a traffic generator (Ctrl-C stops it).
    Demo(DemoArgs),
    /// Preflight PostgreSQL and StarRocks: one ok/warn/fail line per check, with the fix.
    ///
    /// Changes nothing. Exit code 0 when nothing failed (warnings allowed), 1 on any fail, 2 on a
    /// bad config. docs/operations.md lists the checks.
    Check(RunArgs),
    /// Drop the replication slot and the publication, after a confirmation.
    ///
    /// Refuses while a connection streams from the slot (naming its server process). StarRocks
    /// tables are not touched. Exit code 0 when done (or nothing to do), 1 when refused or failed.
    Cleanup(CleanupArgs),
    /// Watch a running pipeline: row counts on both sides, rates, lag, slot, memory.
    Monitor(MonitorArgs),
    /// Print a running pipeline's /status as a table.
    Status(StatusArgs),
    /// Ask a running `dbmazz run` to copy one table again while the others keep streaming.
    ///
    /// The table's stream changes are held until its rows are loaded, then applied in order.
    /// Exit code 0 when accepted (with --wait: when loaded), 1 when dbmazz is not reachable,
    /// the table is not published, a snapshot of it is already running, or it failed.
    Snapshot(SnapshotArgs),
}

#[derive(clap::Args)]
struct SnapshotArgs {
    /// The table, `schema.table` (a bare name means `public`).
    #[arg(long, short)]
    table: String,
    /// Take the API address from this config's http.listen.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The HTTP API address (default: http.listen of the config, else 127.0.0.1:9808).
    #[arg(long, visible_alias = "api")]
    url: Option<String>,
    /// Follow the progress until the table is loaded and its held changes released.
    #[arg(long)]
    wait: bool,
    /// Empty the StarRocks table first, so rows that exist only there are removed too. The
    /// table shows a partial copy until the snapshot ends.
    #[arg(long)]
    replace: bool,
}

#[derive(clap::Args)]
struct MonitorArgs {
    /// The config `dbmazz run` uses (http.listen, source.url, tables, sink.starrocks);
    /// without it only the HTTP API is read (no row counts).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The HTTP API address (default: http.listen of the config, else 127.0.0.1:9808).
    #[arg(long)]
    url: Option<String>,
    /// Print one text line and exit (exit code 1 if the API cannot be read).
    #[arg(long)]
    once: bool,
    /// One text line per second even on a terminal.
    #[arg(long, conflicts_with = "once")]
    text: bool,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Take the API address from this config's http.listen.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The HTTP API address (default: http.listen of the config, else 127.0.0.1:9808).
    #[arg(long)]
    url: Option<String>,
    /// Print the /status JSON as served.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
// Shared with `run`, but cleanup neither serves the HTTP API nor writes to a sink.
#[command(mut_arg("http_listen", |arg| arg.hide(true)), mut_arg("sink", |arg| arg.hide(true)))]
struct CleanupArgs {
    #[command(flatten)]
    config: RunArgs,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
    /// Also remove state_dir/state.json (the record of which slot this state_dir streamed
    /// from). Do this to re-snapshot from scratch; without it, the next start reports the lost slot.
    #[arg(long)]
    state: bool,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Traffic operations per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Stop after this long (e.g. `20s`, `5m`); default: until Ctrl-C (30s with --verify).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<std::time::Duration>,
    /// At the end stop traffic, wait for the stream to catch up and compare every table row
    /// by row; exit code 0 only when identical.
    #[arg(long)]
    verify: bool,
    /// Use this PostgreSQL database instead of a throwaway cluster (needs wal_level=logical).
    #[arg(long)]
    pg_url: Option<String>,
    /// Use this StarRocks FE (`host`, `host:http_port` or `http://host:8030`) instead of the
    /// in-process emulator.
    #[arg(long)]
    starrocks: Option<String>,
    /// StarRocks MySQL address (default: the FE host, port 9030).
    #[arg(long, requires = "starrocks")]
    starrocks_mysql: Option<String>,
    #[arg(long, default_value = "root", requires = "starrocks")]
    starrocks_user: String,
    #[arg(
        long,
        default_value = "",
        env = "DBMAZZ_DEMO_STARROCKS_PASSWORD",
        requires = "starrocks"
    )]
    starrocks_password: String,
    /// Drop the demo's tables, publication and slot first (when reusing servers).
    #[arg(long)]
    reset: bool,
    /// HTTP API address (a free port is used if this one is taken).
    #[arg(long, default_value = "127.0.0.1:9808")]
    http_listen: String,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The TOML config file (keys may also come from DBMAZZ_* variables).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Overrides source.url.
    #[arg(long)]
    source_url: Option<String>,
    /// Overrides source.publication.
    #[arg(long)]
    publication: Option<String>,
    /// Overrides source.slot.
    #[arg(long)]
    slot: Option<String>,
    /// Overrides state_dir.
    #[arg(long)]
    state_dir: Option<String>,
    /// Overrides http.listen.
    #[arg(long)]
    http_listen: Option<String>,
    /// Overrides sink.type (`starrocks`, `noop` or `file`).
    #[arg(long)]
    sink: Option<String>,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        let pairs = [
            ("source.url", &self.source_url),
            ("source.publication", &self.publication),
            ("source.slot", &self.slot),
            ("state_dir", &self.state_dir),
            ("http.listen", &self.http_listen),
            ("sink.type", &self.sink),
        ];
        Overrides(
            pairs
                .into_iter()
                .filter_map(|(key, value)| value.clone().map(|value| (key, value)))
                .collect(),
        )
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own progress; its logs stay quiet unless DBMAZZ_LOG asks.
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        // Log lines on stderr would tear the monitor's screen: off unless DBMAZZ_LOG asks.
        Command::Monitor(_) => "off",
        _ => "info",
    };
    init_logging(cli.log_format, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Demo(args) => demo(args).await,
            Command::Check(args) => check(args).await,
            Command::Cleanup(args) => cleanup(args).await,
            Command::Monitor(args) => monitor(args).await,
            Command::Status(args) => status(args).await,
            Command::Snapshot(args) => snapshot(args).await,
        }
    })
}

async fn run(args: RunArgs) -> ExitCode {
    let config = match Config::load(args.config.as_deref(), &args.overrides()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let shutdown = shutdown_on_signals();
    let telemetry = Telemetry::new();
    let _http = if config.http.listen.is_empty() {
        None
    } else {
        match ops::serve(&config.http.listen, Arc::clone(&telemetry)).await {
            Ok(server) => Some(server),
            Err(error) => {
                eprintln!("error: {}", one_line(&error));
                return ExitCode::from(EXIT_ERROR);
            }
        }
    };
    let starting = stopped_while_starting(shutdown.clone(), Arc::clone(&telemetry));
    let context = RunContext::new(shutdown).with_telemetry(telemetry);
    // Note: running this on a runtime worker (tokio::spawn) cut the drain's CPU by ~45% in
    // the profile (docs/benchmarks.md) but raised the 1M-row transaction's peak RSS from
    // ~68 to ~113 MiB (per-thread malloc arenas); kept on the block_on thread until memory
    // accounting and the allocator are sorted out.
    let result = tokio::select! {
        result = run_sink(config, context) => result,
        () = starting => {
            eprintln!("dbmazz stopped while starting (signal): nothing was streamed or acknowledged");
            return ExitCode::SUCCESS;
        }
    };
    let Some(result) = result else {
        return ExitCode::from(EXIT_ERROR);
    };
    match result {
        Ok(summary) => {
            eprintln!(
                "dbmazz stopped: {} transactions, {} row changes, durable up to {} (started at {}), {:.1}s",
                summary.stats.transactions,
                summary.stats.changes,
                summary.durable,
                summary.start,
                summary.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", run_error_line(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn demo(args: DemoArgs) -> ExitCode {
    let options = dbmazz::demo::DemoOptions {
        rate: args.rate,
        duration: args.duration,
        verify: args.verify,
        pg_url: args.pg_url,
        starrocks: args.starrocks.as_deref().map(|fe| {
            dbmazz::demo::StarRocksTarget::from_flag(
                fe,
                args.starrocks_mysql.as_deref(),
                &args.starrocks_user,
                &args.starrocks_password,
            )
        }),
        reset: args.reset,
        http_listen: args.http_listen,
        quiet: false,
    };
    let verify = options.verify;
    match dbmazz::demo::run(options, shutdown_on_signals()).await {
        Ok(outcome) => {
            if let Some(checks) = &outcome.checks {
                print!("{}", dbmazz::demo::render_checks(checks));
            }
            println!(
                "demo stopped: {} traffic operations in {:.0}s",
                outcome.traffic_ops,
                outcome.elapsed.as_secs_f64()
            );
            if verify && !outcome.verified() {
                eprintln!("error: StarRocks is not identical to PostgreSQL (see the table above)");
                return ExitCode::from(EXIT_ERROR);
            }
            if verify {
                println!("verify: every table identical");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn load_config(args: &RunArgs) -> Result<Config, ExitCode> {
    Config::load(args.config.as_deref(), &args.overrides()).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

async fn check(args: RunArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let report = dbmazz::check::run_checks(&config).await;
    print!("{}", dbmazz::check::render(&report));
    if report.has_failures() {
        ExitCode::from(EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}

async fn cleanup(args: CleanupArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let plan = match dbmazz::cleanup::plan(&config, args.state).await {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    if let Some(kept) = &plan.kept_publication {
        eprintln!("{}", kept.note());
    }
    if plan.is_empty() {
        eprintln!(
            "nothing to clean up: no slot {:?}, no publication {:?} to drop{}",
            config.source.slot,
            config.source.publication,
            if args.state { ", no state file" } else { "" }
        );
        return ExitCode::SUCCESS;
    }
    eprintln!("dbmazz cleanup will remove:");
    for line in plan.describe() {
        eprintln!("  - {line}");
    }
    if !args.yes && !confirmed() {
        return ExitCode::from(EXIT_ERROR);
    }
    match plan.execute(&config).await {
        Ok(done) => {
            for line in done {
                eprintln!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Asks on the terminal; refuses without one (a script must say --yes).
fn confirmed() -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        eprintln!("refusing to drop without confirmation: stdin is not a terminal (pass --yes)");
        return false;
    }
    eprint!("Type \"yes\" to drop them: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() || answer.trim() != "yes" {
        eprintln!("aborted: nothing was dropped");
        return false;
    }
    true
}

/// The API address: `--url`, else the config's http.listen, else the default.
fn api_url(url: Option<&str>, config: Option<&Config>) -> Result<monitor::ApiUrl, String> {
    match (url, config) {
        (Some(url), _) => monitor::ApiUrl::parse(url).map_err(|error| error.to_string()),
        (None, Some(config)) => monitor::api_from_config(config).map_err(|error| error.to_string()),
        (None, None) => monitor::ApiUrl::parse(dbmazz::config::DEFAULT_HTTP_LISTEN)
            .map_err(|error| error.to_string()),
    }
}

/// The optional config and the API address `monitor` and `status` read.
fn config_and_api(
    path: Option<&std::path::Path>,
    url: Option<&str>,
) -> Result<(Option<Config>, monitor::ApiUrl), String> {
    let config = path
        .map(|path| Config::load(Some(path), &Overrides::default()))
        .transpose()
        .map_err(|error| error.to_string())?;
    let api = api_url(url, config.as_ref())?;
    Ok((config, api))
}

async fn monitor(args: MonitorArgs) -> ExitCode {
    let (config, api) = match config_and_api(args.config.as_deref(), args.url.as_deref()) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = match &config {
        Some(config) => match monitor::MonitorOptions::from_config(config, Some(api)) {
            Ok(options) => options,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => monitor::MonitorOptions::new(api),
    };
    let display = if args.once {
        monitor::Display::Once
    } else if args.text {
        monitor::Display::Text
    } else {
        monitor::Display::Auto
    };
    // The screen reads Ctrl-C as a key (raw mode); the text mode stops on SIGINT/SIGTERM.
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        stop.send_replace(true);
    });
    match monitor::run(options, display, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn status(args: StatusArgs) -> ExitCode {
    let (_, api) = match config_and_api(args.config.as_deref(), args.url.as_deref()) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let printed = if args.json {
        api.status_text()
            .await
            .map(|text| println!("{}", text.trim_end()))
    } else {
        api.status()
            .await
            .map(|status| print!("{}", monitor::format_status(&status)))
    };
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn snapshot(args: SnapshotArgs) -> ExitCode {
    let (_, api) = match config_and_api(args.config.as_deref(), args.url.as_deref()) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let answer = match api.request_snapshot(&args.table, args.replace).await {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let ops::SnapshotAnswer::Accepted { table, .. } = &answer else {
        eprintln!("error: {}", answer.message());
        return ExitCode::from(EXIT_ERROR);
    };
    println!("{}", answer.message());
    if !args.wait {
        return ExitCode::SUCCESS;
    }
    match monitor::wait_for_table_snapshot(&api, table, |line| println!("{line}")).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs the configured sink; `None` when the sink could not be set up (already reported).
async fn run_sink(
    config: Config,
    context: RunContext,
) -> Option<Result<replicator::RunSummary, RunError>> {
    let result = match config.sink.kind {
        SinkKind::Noop => replicator::run(&config, Arc::new(NoopSink), context).await,
        SinkKind::File => {
            let path = config.sink.file.as_ref().map(|file| file.path.clone())?;
            match FileSink::open(&path) {
                Ok(sink) => replicator::run(&config, Arc::new(sink), context).await,
                Err(error) => {
                    eprintln!("error: {error}");
                    return None;
                }
            }
        }
        SinkKind::Starrocks => match dbmazz::sink::starrocks::connect_sink(&config).await {
            Ok(sink) => replicator::run(&config, Arc::new(sink), context).await,
            Err(error) => {
                eprintln!("error: {error}");
                return None;
            }
        },
    };
    Some(result)
}

/// A run's error on one line, with what to do when its PostgreSQL error does not say it.
fn run_error_line(error: &RunError) -> String {
    let text = one_line(error);
    match error.fix() {
        Some(fix) => format!("{text} — {fix}"),
        None => text,
    }
}

/// Resolves when a signal arrives while the run is still starting (connecting, checking the
/// slot and the destination): nothing has been acknowledged then, so it can stop at once
/// instead of waiting for a server that does not answer.
async fn stopped_while_starting(mut shutdown: watch::Receiver<bool>, telemetry: Arc<Telemetry>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        return std::future::pending().await;
    }
    if telemetry.state() != ops::RunState::Starting {
        std::future::pending::<()>().await;
    }
}

/// First SIGINT/SIGTERM: graceful shutdown. Second: exit at once (the slot keeps the
/// durable position, so nothing is lost).
fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let mut signals = 0;
        loop {
            wait_for_signal().await;
            signals += 1;
            if signals == 1 {
                tracing::info!("signal received: flushing and stopping (again to exit at once)");
                sender.send_replace(true);
            } else {
                eprintln!("second signal: exiting now");
                std::process::exit(EXIT_INTERRUPTED);
            }
        }
    });
    receiver
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers there is nothing to wait for.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DBMAZZ_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
