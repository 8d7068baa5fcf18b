//! Commit-to-visible lag of `dbmazz run` (the binary, StarRocks sink) at a steady write rate.
//!
//! ```text
//! e2e_lag_probe --dbmazz-bin target/release/dbmazz [--rate 10000] [--txn-rows 100] [--secs 20]
//! ```
//!
//! Starts a throwaway PostgreSQL (`dbmazz::local_pg`, newest installed major unless
//! `--pg-major`), the StarRocks emulator in this process, and `dbmazz run` as a child with the
//! default batching (`batch.*` not set). A writer commits `--txn-rows`-row INSERT transactions
//! at a fixed pace (`--rate` rows/s) for `--secs`; each commit's time is taken when PostgreSQL
//! answers the COMMIT. A poller reads the emulator's loaded-row count every 2 ms; a
//! transaction is visible when the count covers its rows (inserts only, rows are visible at
//! load commit). Lag = visible − committed, over the transactions after a 2 s warm-up (the
//! first batch also creates the table). Prints
//! `LAG rows=… txns=… rate_rows_per_s=… p50_ms=… p99_ms=… max_ms=… dbmazz_cpu_pct=…
//! dbmazz_peak_rss_mib=…` (CPU of the dbmazz process over the writing phase, % of one core;
//! peak RSS = its VmHWM).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use dbmazz::local_pg::{LocalPg, LocalPgOptions, PgBinaries};
use starrocks_emulator::{Emulator, EmulatorConfig};

#[derive(Parser, Debug)]
#[command(about = "dbmazz commit-to-visible lag probe (PostgreSQL → dbmazz → emulator)")]
struct Args {
    /// The dbmazz binary to run.
    #[arg(long)]
    dbmazz_bin: std::path::PathBuf,
    /// Rows per second the writer commits.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Rows per transaction.
    #[arg(long, default_value_t = 100)]
    txn_rows: u64,
    /// Seconds of writing.
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// PostgreSQL major version (default: the newest installed).
    #[arg(long)]
    pg_major: Option<u32>,
}

/// (rows committed so far including this transaction, when its COMMIT returned).
type Commits = Arc<Mutex<Vec<(u64, Instant)>>>;

fn proc_field(pid: u32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()
}

/// user+system CPU seconds of `pid` (clock ticks of 1/100 s).
fn cpu_secs(pid: u32) -> f64 {
    let Some(stat) = proc_field(pid, "stat") else {
        return f64::NAN;
    };
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
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    proc_field(pid, "status")
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix("VmHWM:")?;
                value.split_whitespace().next()?.parse::<f64>().ok()
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn write_steadily(url: String, args: &Args, commits: Commits) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(|error| format!("writer connection: {error}"))?;
    tokio::spawn(connection);
    let period = Duration::from_secs_f64(args.txn_rows as f64 / args.rate as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + Duration::from_secs(args.secs);
    let mut written = 0u64;
    while Instant::now() < deadline {
        ticker.tick().await;
        let (first, last) = (written + 1, written + args.txn_rows);
        client
            .execute(
                "INSERT INTO lagt SELECT g, 'payload-' || g FROM generate_series($1::bigint, $2::bigint) g",
                &[&(first as i64), &(last as i64)],
            )
            .await
            .map_err(|error| format!("insert: {error}"))?;
        written = last;
        commits
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .push((written, Instant::now()));
    }
    Ok(())
}

async fn run(args: Args) -> Result<String, String> {
    let binaries = match args.pg_major {
        Some(major) => PgBinaries::find(major),
        None => PgBinaries::find_newest(),
    }
    .map_err(|error| error.to_string())?;
    let pg = LocalPg::start(&binaries, LocalPgOptions::default()).map_err(|e| e.to_string())?;
    pg.create_database("lag").map_err(|e| e.to_string())?;
    pg.psql(
        "lag",
        "CREATE TABLE lagt (id bigint PRIMARY KEY, payload text)",
    )
    .map_err(|e| e.to_string())?;
    let emulator = Emulator::start(EmulatorConfig::ephemeral())
        .await
        .map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("dbmazz-lag-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = format!(
        "state_dir = \"{state}\"\n[source]\nurl = \"{url}\"\npublication = \"lag_pub\"\n\
         slot = \"lag_slot\"\ntables = [\"public.lagt\"]\n[sink]\ntype = \"starrocks\"\n\
         [sink.starrocks]\nfe_http = \"http://{fe}\"\nmysql = \"{mysql}\"\nuser = \"root\"\n\
         password = \"\"\ndatabase = \"lag\"\ntable_properties = {{ replication_num = \"1\" }}\n\
         [http]\nlisten = \"\"\n",
        state = dir.join("state").display(),
        url = pg.url("lag"),
        fe = emulator.fe_http_addr(),
        mysql = emulator
            .mysql_addr()
            .ok_or("the emulator has no MySQL port")?,
    );
    let config_path = dir.join("dbmazz.toml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(&args.dbmazz_bin)
        .args(["run", "--config"])
        .arg(&config_path)
        .env("DBMAZZ_LOG", "warn")
        .spawn()
        .map_err(|error| format!("{}: {error}", args.dbmazz_bin.display()))?;
    let pid = child.id();
    let waiting = Instant::now();
    while pg
        .psql(
            "lag",
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'lag_slot' AND active",
        )
        .map_err(|e| e.to_string())?
        != "1"
    {
        if waiting.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            return Err("dbmazz did not start streaming within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let commits: Commits = Arc::new(Mutex::new(Vec::new()));
    let lags: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let poller = {
        let (commits, lags, polling) = (commits.clone(), lags.clone(), polling.clone());
        let emulator = Arc::new(emulator);
        let poll_emulator = Arc::clone(&emulator);
        let task = tokio::spawn(async move {
            let mut seen = 0usize;
            while polling.load(std::sync::atomic::Ordering::Relaxed) {
                let visible = poll_emulator
                    .table_stats("lag", "lagt")
                    .map_or(0, |stats| stats.rows_loaded);
                let now = Instant::now();
                if let Ok(commits) = commits.lock() {
                    if let Ok(mut lags) = lags.lock() {
                        while seen < commits.len() && commits[seen].0 <= visible {
                            let committed = commits[seen].1;
                            lags.push((committed, (now - committed).as_secs_f64() * 1000.0));
                            seen += 1;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        (task, emulator)
    };
    let cpu0 = cpu_secs(pid);
    let started = Instant::now();
    write_steadily(pg.url("lag"), &args, commits.clone()).await?;
    let writing = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    let total = commits.lock().map_err(|_| "poisoned")?.len();
    let draining = Instant::now();
    while lags.lock().map_err(|_| "poisoned")?.len() < total {
        if draining.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err("rows not visible 60 s after the writer stopped".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    polling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = poller.0.await;
    let rss = peak_rss_mib(pid);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let warm_up = started + Duration::from_secs(2);
    let mut measured: Vec<f64> = lags
        .lock()
        .map_err(|_| "poisoned")?
        .iter()
        .filter(|(committed, _)| *committed >= warm_up)
        .map(|(_, lag)| *lag)
        .collect();
    measured.sort_by(f64::total_cmp);
    let rows = total as u64 * args.txn_rows;
    Ok(format!(
        "LAG rows={rows} txns={total} rate_rows_per_s={:.0} p50_ms={:.0} p99_ms={:.0} max_ms={:.0} \
         dbmazz_cpu_pct={:.0} dbmazz_peak_rss_mib={:.1} pg={}",
        rows as f64 / writing,
        percentile(&measured, 0.5),
        percentile(&measured, 0.99),
        measured.last().copied().unwrap_or(f64::NAN),
        cpu / writing * 100.0,
        rss,
        binaries.major_version(),
    ))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lag probe: runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("lag probe: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
