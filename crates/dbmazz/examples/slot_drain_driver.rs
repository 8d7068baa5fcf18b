//! Slot-drain benchmark driver: dbmazz's stream path behind the `--etl-bin` protocol of
//! `bench/slot_drain_bench.py` (see its module docstring), so dbmazz is measured in the same
//! run, on the same slot contents, as `pg_recvlogical`.
//!
//! ```text
//! slot_drain_driver --host H --port P --database D --username U --publication PUB \
//!     --pipelines R --expected-events N --batch-max-fill-ms MS
//! ```
//!
//! 1. Creates R pgoutput slots `dbmazz_bench_0..R-1` (replication connection,
//!    `CREATE_REPLICATION_SLOT … (SNAPSHOT 'nothing')`), prints `PREPARED`.
//! 2. Per line read on stdin, drains the next slot with **the same code as `dbmazz run`**:
//!    `dbmazz::replicator::run` (prepare: wal_level/publication/slot checks, state file; then
//!    the replicator loop: reader → decoder → transaction assembly (streamed transactions,
//!    spill) → batcher → dispatcher → sink → durable position → status updates), on a
//!    multi-threaded tokio runtime built like `dbmazz`'s `main`. The sink counts and accepts
//!    everything at once, like `sink.type = "noop"`; when it has acknowledged N row changes it
//!    triggers the graceful shutdown (flush, wait for in-flight loads, final status update).
//!    Config: the defaults, except `sink.type = "noop"`, `http.listen = ""`, `batch.max_wait =
//!    MS`, `snapshot.mode = "never"` (the slot's contents are what is measured; a slot found
//!    without a state file would otherwise be copied first) and a fresh `state_dir` per run
//!    (spill files of the big streamed transaction go there).
//! 3. Prints `RESULT ok=… events=… inserts=… updates=… deletes=… batches=… max_batch=… secs=…
//!    events_per_s=… cpu_s=… vmhwm_kb=…` plus informational keys (`ack_secs`: until the sink
//!    acknowledged the last change; `first_batch_secs`; `vmrss_kb`; `transactions`).
//!
//! With `--starrocks-fe-http` and `--starrocks-mysql` (or `DBMAZZ_BENCH_STARROCKS_FE_HTTP` /
//! `DBMAZZ_BENCH_STARROCKS_MYSQL`, so the harness's fixed command line needs no change) the
//! counting sink wraps the real StarRocks sink (`sink.type = "starrocks"`: Stream Load over
//! HTTP, tables created, database `bench_e2e_<run>`), which makes this the end-to-end
//! benchmark of `scripts/bench.sh`; a change is counted once StarRocks has it durably.
//!
//! `secs` is wall time from the stdin line to `run` returning (connection setup and shutdown
//! included, like the `pg_recvlogical` process the harness times). `cpu_s` is this process's
//! user+system CPU over the run (the `getrusage(RUSAGE_SELF)` accounting, read from
//! `/proc/self/stat` in clock ticks because the workspace denies `unsafe`). `vmhwm_kb` is
//! `VmHWM` of `/proc/self/status`: the peak RSS over the process's lifetime so far.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use dbmazz::config::Config;
use dbmazz::pipeline::ChangeKind;
use dbmazz::replicator::{self, RunContext};
use dbmazz::schema::TableSchema;
use dbmazz::sink::{Batch, NoopSink, Sink, SinkError};
use dbmazz::source::{PgConnectConfig, ReplicationClient, SnapshotAction};
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(about = "dbmazz slot-drain benchmark driver (slot_drain_bench.py --etl-bin protocol)")]
struct Args {
    #[arg(long)]
    host: String,
    #[arg(long)]
    port: u16,
    #[arg(long)]
    database: String,
    #[arg(long)]
    username: String,
    #[arg(long)]
    publication: String,
    /// Slots to create; one is drained per stdin line.
    #[arg(long)]
    pipelines: usize,
    /// Row changes (I/U/D) one drain must deliver.
    #[arg(long)]
    expected_events: u64,
    /// batch.max_wait in milliseconds.
    #[arg(long)]
    batch_max_fill_ms: u64,
    /// Slot name prefix (slots are `<prefix><i>`).
    #[arg(long, default_value = "dbmazz_bench_")]
    slot_prefix: String,
    /// Where the per-run state directories go (default: the system temp dir).
    #[arg(long)]
    state_root: Option<PathBuf>,
    /// Do not create slots: they exist already (profiling against a long-lived cluster).
    #[arg(long)]
    existing_slots: bool,
    /// Experiment: run the replicator loop in a spawned task on a runtime worker instead of on
    /// the `block_on` thread (where `dbmazz`'s main runs it).
    #[arg(long)]
    loop_on_worker: bool,
    /// Experiment: tokio worker threads (default: tokio's default, one per CPU).
    #[arg(long)]
    worker_threads: Option<usize>,
    /// StarRocks FE HTTP address (`http://host:port`): drain into StarRocks, not a no-op sink.
    #[arg(long, env = "DBMAZZ_BENCH_STARROCKS_FE_HTTP")]
    starrocks_fe_http: Option<String>,
    /// StarRocks MySQL-protocol address (`host:port`), with `--starrocks-fe-http`.
    #[arg(long, env = "DBMAZZ_BENCH_STARROCKS_MYSQL")]
    starrocks_mysql: Option<String>,
    /// Give up on one drain after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

impl Args {
    fn url(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}?sslmode=disable&application_name=dbmazz_bench",
            self.username, self.host, self.port, self.database
        )
    }

    fn slot(&self, index: usize) -> String {
        format!("{}{index}", self.slot_prefix)
    }
}

/// Passes batches to `inner` (a no-op sink, or StarRocks), counting what it made durable;
/// trips `shutdown` once `expected` row changes were acknowledged.
struct CountingSink<S: Sink> {
    inner: S,
    expected: u64,
    started: Instant,
    inserts: AtomicU64,
    updates: AtomicU64,
    deletes: AtomicU64,
    batches: AtomicU64,
    max_batch: AtomicUsize,
    acknowledged: AtomicU64,
    first_batch: Mutex<Option<Duration>>,
    done: Mutex<Option<Duration>>,
    shutdown: watch::Sender<bool>,
}

impl<S: Sink> CountingSink<S> {
    fn new(inner: S, expected: u64, shutdown: watch::Sender<bool>) -> Self {
        CountingSink {
            inner,
            expected,
            started: Instant::now(),
            inserts: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            max_batch: AtomicUsize::new(0),
            acknowledged: AtomicU64::new(0),
            first_batch: Mutex::new(None),
            done: Mutex::new(None),
            shutdown,
        }
    }

    fn events(&self) -> u64 {
        self.inserts.load(Ordering::Relaxed)
            + self.updates.load(Ordering::Relaxed)
            + self.deletes.load(Ordering::Relaxed)
    }
}

impl<S: Sink> Sink for CountingSink<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), SinkError> {
        self.inner.write_batch(batch).await?;
        let (mut inserts, mut updates, mut deletes) = (0, 0, 0);
        for change in &batch.changes {
            match change.kind {
                ChangeKind::Insert => inserts += 1,
                ChangeKind::Update => updates += 1,
                ChangeKind::Delete => deletes += 1,
            }
        }
        self.inserts.fetch_add(inserts, Ordering::Relaxed);
        self.updates.fetch_add(updates, Ordering::Relaxed);
        self.deletes.fetch_add(deletes, Ordering::Relaxed);
        if self.batches.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first_batch.lock().unwrap() = Some(self.started.elapsed());
        }
        self.max_batch
            .fetch_max(batch.changes.len(), Ordering::Relaxed);
        let total = self
            .acknowledged
            .fetch_add(batch.changes.len() as u64, Ordering::Relaxed)
            + batch.changes.len() as u64;
        if total >= self.expected {
            let mut done = self.done.lock().unwrap();
            if done.is_none() {
                *done = Some(self.started.elapsed());
                self.shutdown.send_replace(true);
            }
        }
        Ok(())
    }

    async fn truncate(&self, table: &Arc<TableSchema>) -> Result<(), SinkError> {
        self.inner.truncate(table).await
    }

    async fn apply_schema_change(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        self.inner.apply_schema_change(old, new).await
    }
}

/// user+system CPU seconds of this process (all threads), from /proc/self/stat.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Linux reports these in USER_HZ, which is 100 on every mainstream architecture.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// A `kB` line of /proc/self/status (`VmHWM`, `VmRSS`).
fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.strip_prefix(':')?;
                value.split_whitespace().next()?.parse().ok()
            })
        })
        .unwrap_or(0)
}

fn config_for(args: &Args, index: usize, state_dir: &std::path::Path) -> Result<Config, String> {
    let toml = format!(
        r#"
state_dir = "{state}"
[source]
url = "{url}"
publication = "{publication}"
slot = "{slot}"
{source_extra}
{sink}
[batch]
max_wait = "{wait}ms"
[http]
listen = ""
[snapshot]
mode = "never"
{extra}
"#,
        state = state_dir.display(),
        url = args.url(),
        publication = args.publication,
        slot = args.slot(index),
        wait = args.batch_max_fill_ms,
        // Experiments: DBMAZZ_BENCH_READ_PACING=0s or 2ms, DBMAZZ_BENCH_READ_LOW_WATER=0 or
        // "256KiB" (default: the config's).
        source_extra = [
            ("read_pacing", "DBMAZZ_BENCH_READ_PACING"),
            ("read_low_water", "DBMAZZ_BENCH_READ_LOW_WATER"),
        ]
        .iter()
        .filter_map(|(key, var)| Some(format!("{key} = \"{}\"\n", std::env::var(var).ok()?)))
        .collect::<String>(),
        sink = sink_section(args, index)?,
        // Experiments: more sections, e.g. DBMAZZ_BENCH_EXTRA_TOML='[pipeline] max_memory = "16MiB"'.
        extra = std::env::var("DBMAZZ_BENCH_EXTRA_TOML")
            .unwrap_or_default()
            .replace("] ", "]\n"),
    );
    Config::from_toml(&toml).map_err(|error| error.to_string())
}

/// `[sink]`: no-op, or StarRocks at the given addresses with a database per run.
fn sink_section(args: &Args, index: usize) -> Result<String, String> {
    match (&args.starrocks_fe_http, &args.starrocks_mysql) {
        (None, None) => Ok("[sink]\ntype = \"noop\"".into()),
        (Some(fe_http), Some(mysql)) => Ok(format!(
            "[sink]\ntype = \"starrocks\"\n[sink.starrocks]\nfe_http = \"{fe_http}\"\n\
             mysql = \"{mysql}\"\nuser = \"root\"\npassword = \"\"\ndatabase = \"bench_e2e_{index}\"\n\
             table_properties = {{ replication_num = \"1\" }}"
        )),
        _ => Err("--starrocks-fe-http and --starrocks-mysql go together".into()),
    }
}

async fn create_slots(args: &Args) -> Result<(), String> {
    let connect = PgConnectConfig::from_url(&args.url()).map_err(|error| error.to_string())?;
    let mut client = ReplicationClient::connect(&connect)
        .await
        .map_err(|error| format!("replication connection: {error}"))?;
    for index in 0..args.pipelines {
        let slot = args.slot(index);
        let created = client
            .create_logical_slot(&slot, SnapshotAction::NoExport)
            .await
            .map_err(|error| format!("creating slot {slot}: {error}"))?;
        tracing::info!(slot, consistent_point = %created.consistent_point, "created slot");
    }
    client
        .close()
        .await
        .map_err(|error| format!("closing: {error}"))?;
    Ok(())
}

struct Outcome<S: Sink> {
    ok: bool,
    sink: Arc<CountingSink<S>>,
    secs: f64,
    cpu: f64,
    transactions: u64,
}

/// Drains slot `index` into the configured sink and returns the `RESULT` line.
async fn drain_one(args: &Args, index: usize) -> Result<String, String> {
    let root = args.state_root.clone().unwrap_or_else(std::env::temp_dir);
    let state_dir = root.join(format!("dbmazz-bench-{}-{index}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    std::fs::create_dir_all(&state_dir)
        .map_err(|error| format!("state dir {}: {error}", state_dir.display()))?;
    let config = config_for(args, index, &state_dir)?;
    let line = if args.starrocks_fe_http.is_some() {
        let cpu0 = cpu_secs();
        let started = Instant::now();
        let inner = dbmazz::sink::starrocks::connect_sink(&config)
            .await
            .map_err(|error| format!("StarRocks sink: {error}"))?;
        let outcome = drain_into(args, index, config, inner, cpu0, started).await;
        result_line(&outcome)
    } else {
        let outcome = drain_into(args, index, config, NoopSink, cpu_secs(), Instant::now()).await;
        result_line(&outcome)
    };
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(line)
}

async fn drain_into<S: Sink>(
    args: &Args,
    index: usize,
    config: Config,
    inner: S,
    cpu0: f64,
    started: Instant,
) -> Outcome<S> {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let sink = Arc::new(CountingSink::new(
        inner,
        args.expected_events,
        shutdown.clone(),
    ));
    let timeout = Duration::from_secs(args.timeout_secs);
    let result = if args.loop_on_worker {
        let task_sink = Arc::clone(&sink);
        let task = tokio::spawn(async move {
            let run = replicator::run(&config, task_sink, RunContext::new(shutdown_rx));
            tokio::time::timeout(timeout, run).await
        });
        match task.await {
            Ok(Ok(result)) => result.map_err(|error| error.to_string()),
            Ok(Err(_)) => Err(format!("no result after {}s", args.timeout_secs)),
            Err(error) => Err(format!("task: {error}")),
        }
    } else {
        let run = replicator::run(&config, Arc::clone(&sink), RunContext::new(shutdown_rx));
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(_) => Err(format!("no result after {}s", args.timeout_secs)),
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let (ok, transactions) = match result {
        Ok(summary) => (
            sink.events() == args.expected_events,
            summary.stats.transactions,
        ),
        Err(error) => {
            tracing::error!(slot = %args.slot(index), %error, "drain failed");
            eprintln!("drain of {} failed: {error}", args.slot(index));
            (false, 0)
        }
    };
    Outcome {
        ok,
        sink,
        secs,
        cpu,
        transactions,
    }
}

fn result_line<S: Sink>(outcome: &Outcome<S>) -> String {
    let sink = &outcome.sink;
    let events = sink.events();
    let ms = |value: &Mutex<Option<Duration>>| {
        value
            .lock()
            .unwrap()
            .map_or(-1.0, |duration| duration.as_secs_f64())
    };
    format!(
        "RESULT ok={} events={} inserts={} updates={} deletes={} batches={} max_batch={} \
         secs={:.3} events_per_s={:.0} cpu_s={:.2} vmhwm_kb={} vmrss_kb={} ack_secs={:.3} \
         first_batch_secs={:.3} transactions={}",
        outcome.ok,
        events,
        sink.inserts.load(Ordering::Relaxed),
        sink.updates.load(Ordering::Relaxed),
        sink.deletes.load(Ordering::Relaxed),
        sink.batches.load(Ordering::Relaxed),
        sink.max_batch.load(Ordering::Relaxed),
        outcome.secs,
        events as f64 / outcome.secs.max(1e-9),
        outcome.cpu,
        status_kb("VmHWM"),
        status_kb("VmRSS"),
        ms(&sink.done),
        ms(&sink.first_batch),
        outcome.transactions,
    )
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // Built like `dbmazz`'s main: multi-threaded, the stream loop on the block_on thread.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.worker_threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build().expect("tokio runtime");

    let mut stdout = std::io::stdout().lock();
    let prepared = if args.existing_slots {
        Ok(())
    } else {
        runtime.block_on(create_slots(&args))
    };
    if let Err(error) = prepared {
        eprintln!("prepare failed: {error}");
        let _ = writeln!(stdout, "FAILED {error}");
        return std::process::ExitCode::FAILURE;
    }
    let _ = writeln!(stdout, "PREPARED");
    let _ = stdout.flush();

    let stdin = std::io::stdin();
    for (index, line) in stdin.lock().lines().enumerate() {
        let Ok(_line) = line else { break };
        let line = if index >= args.pipelines {
            eprintln!("no slot left: {} pipelines were prepared", args.pipelines);
            "RESULT ok=false events=0 inserts=0 updates=0 deletes=0 batches=0 max_batch=0 \
             secs=0 events_per_s=0 cpu_s=0 vmhwm_kb=0"
                .to_string()
        } else {
            match runtime.block_on(drain_one(&args, index)) {
                Ok(line) => line,
                Err(error) => {
                    eprintln!("drain {index}: {error}");
                    format!(
                        "RESULT ok=false events=0 inserts=0 updates=0 deletes=0 batches=0 \
                         max_batch=0 secs=0 events_per_s=0 cpu_s=0 vmhwm_kb={}",
                        status_kb("VmHWM")
                    )
                }
            }
        };
        eprintln!("{line}");
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
    std::process::ExitCode::SUCCESS
}
