//! Helpers for tests that stream PostgreSQL into the StarRocks emulator and compare both sides.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::config::Config;
use dbmazz::local_pg::LocalPg;
use dbmazz::replicator;
use dbmazz::schema::type_map::TypeMapOptions;
use dbmazz::sink::starrocks::{
    DeleteMode, LoadFailure, LoadRequest, Loader, StarRocksDdl, StarRocksSink, StarRocksSinkOptions,
};
use starrocks_emulator::{EmulatorHandle, LoadStatus};
use tokio::sync::watch;

use super::{stream_config, TempDir};

/// Loads through the emulator's in-process Stream Load (same checks as over HTTP).
pub struct EmulatorLoader {
    pub emulator: Arc<EmulatorHandle>,
    pub database: String,
}

impl Loader for EmulatorLoader {
    async fn load(&self, request: LoadRequest) -> Result<(), LoadFailure> {
        let mut headers = vec![
            ("label", request.label.as_str()),
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("columns", request.columns.as_str()),
        ];
        if request.partial_update {
            headers.push(("partial_update", "true"));
        }
        let body = request.body.to_bytes().map_err(|error| LoadFailure {
            message: error.to_string(),
        })?;
        let result = self
            .emulator
            .stream_load(&self.database, &request.table, &headers, &body)
            .await;
        match result.status {
            LoadStatus::Success | LoadStatus::PublishTimeout => Ok(()),
            _ => Err(LoadFailure {
                message: format!("{:?}: {}", result.status, result.message),
            }),
        }
    }
}

/// A running replicator streaming into the emulator; stop it with [`Replication::stop`].
pub struct Replication {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    state: TempDir,
}

impl Replication {
    /// Graceful stop; panics if the replicator failed.
    pub async fn stop(self) {
        self.stop_keeping_state().await;
    }

    /// A crash: the run is dropped where it is (nothing flushed, no last status update), and
    /// the state directory handed back for [`resume_in_process`].
    pub async fn kill(self) -> TempDir {
        self.task.abort();
        let _ = self.task.await;
        self.state
    }

    /// Graceful stop, handing back the state directory for [`resume_in_process`].
    pub async fn stop_keeping_state(self) -> TempDir {
        self.shutdown.send_replace(true);
        self.task.await.unwrap();
        self.state
    }
}

/// The sink options the in-process tests use (tables created, one replica).
pub fn sink_options(delete_mode: DeleteMode) -> StarRocksSinkOptions {
    StarRocksSinkOptions {
        label_prefix: "test_slot".into(),
        create_tables: true,
        delete_mode,
        audit_columns: false,
        type_options: TypeMapOptions::default(),
        table_properties: vec![("replication_num".into(), "1".into())],
        alter_timeout: Duration::from_secs(30),
    }
}

/// Starts the replicator for `tables` of `database` into the emulator's database of the same
/// name, through the in-process loader; `adjust` may change the config first.
pub async fn replicate_in_process(
    pg: &LocalPg,
    emulator: &Arc<EmulatorHandle>,
    database: &str,
    tables: &[&str],
    options: StarRocksSinkOptions,
    adjust: impl FnOnce(&mut Config),
) -> Replication {
    let state = TempDir::new("dbmazz-sr-test");
    resume_in_process(pg, emulator, database, tables, options, adjust, state).await
}

/// [`replicate_in_process`] with the state directory of an earlier run (a restart).
pub async fn resume_in_process(
    pg: &LocalPg,
    emulator: &Arc<EmulatorHandle>,
    database: &str,
    tables: &[&str],
    options: StarRocksSinkOptions,
    adjust: impl FnOnce(&mut Config),
    state: TempDir,
) -> Replication {
    let mut config = stream_config(pg, database, tables, &state);
    adjust(&mut config);
    let mysql = emulator.mysql_addr().unwrap().to_string();
    let ddl = StarRocksDdl::connect(&mysql, "root", "", database)
        .await
        .unwrap();
    let loader = EmulatorLoader {
        emulator: Arc::clone(emulator),
        database: database.into(),
    };
    // As `dbmazz run` builds it: unsent TOAST values of key changes are read from PostgreSQL.
    let sink =
        StarRocksSink::new(ddl, loader, options).with_source_rows(config.source_connect().ok());
    let (shutdown, receiver) = watch::channel(false);
    let task = tokio::spawn(async move {
        replicator::run(
            &config,
            Arc::new(sink),
            replicator::RunContext::new(receiver),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    });
    Replication {
        shutdown,
        task,
        state,
    }
}

/// A StarRocks sink over the emulator's MySQL port and in-process loads, into `shop`.
pub async fn emulator_sink(
    emulator: &Arc<EmulatorHandle>,
    create_tables: bool,
) -> StarRocksSink<EmulatorLoader> {
    let mysql = emulator.mysql_addr().unwrap().to_string();
    let ddl = StarRocksDdl::connect(&mysql, "root", "", "shop")
        .await
        .unwrap();
    let loader = EmulatorLoader {
        emulator: Arc::clone(emulator),
        database: "shop".into(),
    };
    let mut options = sink_options(DeleteMode::Hard);
    options.create_tables = create_tables;
    StarRocksSink::new(ddl, loader, options)
}

/// Rows of a PostgreSQL query as psql -A -t prints them (NULL as empty), in order.
pub fn pg_rows(pg: &LocalPg, database: &str, sql: &str) -> Vec<String> {
    pg.psql(database, sql)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The same query against the emulator, joined like psql -A does.
pub async fn sr_rows(emulator: &EmulatorHandle, database: &str, sql: &str) -> Vec<String> {
    emulator
        .query_text(Some(database), sql)
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|value| value.unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to `timeout`) until the emulator's answer to `sr_sql` equals PostgreSQL's answer
/// to `pg_sql` row by row; panics with the first difference otherwise.
pub async fn wait_identical_in(
    pg: &LocalPg,
    emulator: &EmulatorHandle,
    database: &str,
    pg_sql: &str,
    sr_sql: &str,
    timeout: Duration,
) {
    let expected = pg_rows(pg, database, pg_sql);
    let mut last = Vec::new();
    let outcome = tokio::time::timeout(timeout, async {
        loop {
            last = sr_rows(emulator, database, sr_sql).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if outcome.is_err() {
        panic!(
            "StarRocks never matched PostgreSQL for {pg_sql}\n{}",
            describe_difference(&expected, &last)
        );
    }
}

/// [`wait_identical_in`] with the same SQL on both sides and a 60 s limit.
pub async fn wait_identical(pg: &LocalPg, emulator: &EmulatorHandle, database: &str, sql: &str) {
    wait_identical_in(pg, emulator, database, sql, sql, Duration::from_secs(60)).await;
}

/// The first differing row (cut short) and both sides' sizes.
pub fn describe_difference(expected: &[String], actual: &[String]) -> String {
    let cut = |row: &String| row.chars().take(160).collect::<String>();
    let first = expected
        .iter()
        .zip(actual.iter())
        .position(|(a, b)| a != b)
        .or_else(|| (expected.len() != actual.len()).then(|| expected.len().min(actual.len())));
    let Some(index) = first else {
        return "identical".into();
    };
    let side = |rows: &[String]| rows.get(index).map(cut).unwrap_or_else(|| "<none>".into());
    format!(
        "PostgreSQL has {} rows, StarRocks {}; first difference at row {index}:\n  pg: {}\n  sr: {}",
        expected.len(),
        actual.len(),
        side(expected),
        side(actual)
    )
}

/// Where the `dbmazz` binary sends its rows (the emulator's addresses, or bad ones on purpose).
pub struct BinarySink {
    pub fe_http: String,
    pub mysql: String,
    pub password: String,
    pub database: String,
    pub create_tables: bool,
    /// More `[sink.starrocks]` lines, e.g. `unknown_types = "reject"\n`.
    pub extra: String,
}

impl BinarySink {
    /// The emulator's own addresses, database `database`, tables created.
    pub fn emulator(emulator: &EmulatorHandle, database: &str) -> Self {
        BinarySink {
            fe_http: format!("http://{}", emulator.fe_http_addr()),
            mysql: emulator.mysql_addr().unwrap().to_string(),
            password: String::new(),
            database: database.into(),
            create_tables: true,
            extra: String::new(),
        }
    }
}

/// A config file for `dbmazz run` with the StarRocks sink: slot `slot`, publication
/// `{slot}_pub`, short batches and status interval, no HTTP API.
pub fn binary_config(
    pg_url: &str,
    slot: &str,
    tables: &[&str],
    state_dir: &std::path::Path,
    sink: &BinarySink,
) -> String {
    let tables = tables
        .iter()
        .map(|table| format!("\"{table}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "state_dir = \"{state}\"\n\
         [source]\nurl = \"{pg_url}\"\npublication = \"{slot}_pub\"\nslot = \"{slot}\"\n\
         tables = [{tables}]\nstatus_interval = \"200ms\"\n\
         [sink]\ntype = \"starrocks\"\n\
         [sink.starrocks]\nfe_http = \"{fe}\"\nmysql = \"{mysql}\"\nuser = \"root\"\n\
         password = \"{password}\"\ndatabase = \"{database}\"\ncreate_tables = {create}\n\
         table_properties = {{ replication_num = \"1\" }}\n{extra}\
         [batch]\nmax_wait = \"100ms\"\n[http]\nlisten = \"\"\n",
        state = state_dir.display(),
        fe = sink.fe_http,
        mysql = sink.mysql,
        password = sink.password,
        database = sink.database,
        create = sink.create_tables,
        extra = sink.extra,
    )
}

/// `dbmazz run --config <path>` with stderr appended to `log`.
pub fn spawn_dbmazz(config_path: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_dbmazz"))
        .args(["run", "--config"])
        .arg(config_path)
        .env("DBMAZZ_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("dbmazz binary starts")
}

/// The slot's `confirmed_flush_lsn` (None when the slot does not exist).
pub fn confirmed_flush(pg: &LocalPg, database: &str, slot: &str) -> Option<dbmazz::Lsn> {
    pg.psql(
        database,
        &format!("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    )
    .ok()?
    .parse()
    .ok()
}

/// Whether a walsender currently streams from `slot`.
pub fn slot_active(pg: &LocalPg, slot: &str) -> bool {
    pg.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active"),
    )
    .is_ok_and(|count| count == "1")
}
