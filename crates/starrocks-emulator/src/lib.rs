//! A StarRocks 3.3–3.5 shared-nothing stand-in for tests, the demo and benchmarks.
//!
//! It follows `docs/starrocks-spec.md`: FE HTTP and BE HTTP on different ports (so the 307 and
//! the lost credentials are real), Stream Load with StarRocks's checks and answers, in-memory
//! Primary Key tables, labels, the MySQL protocol for DDL and queries, and fault injection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), starrocks_emulator::EmulatorError> {
//! use starrocks_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::ephemeral()).await?;
//! emu.execute_sql(None, "CREATE DATABASE d").await.unwrap();
//! println!("FE at {}", emu.fe_http_addr());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

pub mod catalog;
pub mod convert;
pub mod defaults;
pub mod engine;
pub mod faults;
pub mod float_text;
pub mod http;
pub mod json;
pub mod labels;
pub mod load;
pub mod mysql;
pub mod response;
pub mod sql;
pub mod txn;
pub mod types;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use catalog::{SqlError, TableStats};
pub use engine::{Engine, Settings};
pub use faults::{FaultKind, FaultRule};
pub use http::control::SettingsPatch;
pub use labels::{LabelRetention, TxnState};
pub use response::{LoadResult, LoadStatus};
pub use sql::{QueryOutput, ResultColumn};
pub use types::{ColumnType, Value};

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A listener could not bind.
    #[error("could not bind {what} on {addr}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// FE HTTP listen address (port 0 = any free port).
    pub fe_http_addr: SocketAddr,
    /// BE HTTP listen address.
    pub be_http_addr: SocketAddr,
    /// MySQL listen address; `None` disables the MySQL port.
    pub mysql_addr: Option<SocketAddr>,
    /// Host the FE puts in `Location` and the BE in `ErrorURL` (default: the BE's bound IP).
    pub advertised_host: Option<String>,
    /// User for Basic auth and MySQL.
    pub user: String,
    /// Password ("" allowed).
    pub password: String,
    /// Label retention and the label cleaner's period.
    pub label_retention: LabelRetention,
    /// How long an ALTER job takes.
    pub alter_duration: Duration,
    /// Catch clients that send the body before `100 Continue`.
    pub strict_expect_continue: bool,
    /// Faults queued at start.
    pub faults: Vec<FaultRule>,
}

impl EmulatorConfig {
    /// Everything on 127.0.0.1 with free ports, user `root`, empty password.
    pub fn ephemeral() -> EmulatorConfig {
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        EmulatorConfig {
            fe_http_addr: any,
            be_http_addr: any,
            mysql_addr: Some(any),
            advertised_host: None,
            user: "root".into(),
            password: String::new(),
            label_retention: LabelRetention::default(),
            alter_duration: catalog::DEFAULT_ALTER_DURATION,
            strict_expect_continue: false,
            faults: Vec::new(),
        }
    }
}

/// Starts emulators.
pub struct Emulator;

impl Emulator {
    /// Bind every listener and start serving. Must run inside a tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        let bind = |what: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| EmulatorError::Bind { what, addr, source })
        };
        let fe = bind("FE HTTP", config.fe_http_addr).await?;
        let be = bind("BE HTTP", config.be_http_addr).await?;
        let mysql = match config.mysql_addr {
            Some(addr) => Some(bind("MySQL", addr).await?),
            None => None,
        };
        let local = |l: &TcpListener, addr: SocketAddr| l.local_addr().unwrap_or(addr);
        let fe_addr = local(&fe, config.fe_http_addr);
        let be_addr = local(&be, config.be_http_addr);
        let mysql_addr = mysql
            .as_ref()
            .map(|l| local(l, config.mysql_addr.unwrap_or(be_addr)));
        let settings = Settings {
            strict_expect_continue: config.strict_expect_continue,
            alter_duration: config.alter_duration,
            label_retention: config.label_retention.clone(),
            empty_load_as_error: true,
        };
        let engine = Arc::new(Engine::new(&config.user, &config.password, settings));
        let host = config.advertised_host.clone().unwrap_or_else(|| {
            let ip = be_addr.ip();
            if ip.is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                ip.to_string()
            }
        });
        // An IPv6 literal goes in brackets, as Java's `URI` writes the FE's redirect.
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        *engine.be_host_port.lock() = format!("{host}:{}", be_addr.port());
        for rule in config.faults {
            engine.faults.lock().push(rule);
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(http::serve(
                fe,
                engine.clone(),
                http::Role::Fe,
                shutdown_rx.clone(),
            )),
            tokio::spawn(http::serve(
                be,
                engine.clone(),
                http::Role::Be,
                shutdown_rx.clone(),
            )),
            tokio::spawn(label_cleaner(engine.clone(), shutdown_rx.clone())),
        ];
        if let Some(listener) = mysql {
            tasks.push(tokio::spawn(mysql::serve(
                listener,
                engine.clone(),
                shutdown_rx,
            )));
        }
        Ok(EmulatorHandle {
            engine,
            fe_addr,
            be_addr,
            mysql_addr,
            shutdown_tx,
            tasks,
        })
    }
}

/// Runs the label cleaner every `label_clean_interval` (re-read each tick so tests can change it).
async fn label_cleaner(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let tick = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        waited += tick;
        txn::expire(&engine);
        engine.publish_pending();
        let interval = engine.settings.lock().label_retention.clean_interval;
        if waited >= interval {
            waited = Duration::ZERO;
            engine.clean_labels();
        }
    }
}

/// A running emulator.
pub struct EmulatorHandle {
    engine: Arc<Engine>,
    fe_addr: SocketAddr,
    be_addr: SocketAddr,
    mysql_addr: Option<SocketAddr>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// FE HTTP address (Stream Load entry, `get_load_state`, `/_emulator/...`).
    pub fn fe_http_addr(&self) -> SocketAddr {
        self.fe_addr
    }

    /// BE HTTP address.
    pub fn be_http_addr(&self) -> SocketAddr {
        self.be_addr
    }

    /// MySQL address (`None` if disabled).
    pub fn mysql_addr(&self) -> Option<SocketAddr> {
        self.mysql_addr
    }

    /// The shared engine (for advanced tests).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stop every listener and connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Run SQL as the MySQL port would (optionally `USE db` first).
    pub async fn execute_sql(&self, db: Option<&str>, sql: &str) -> Result<QueryOutput, SqlError> {
        let mut session = sql::Session {
            database: db.map(str::to_string),
        };
        sql::execute(&self.engine, &mut session, sql)
    }

    /// Run a query and return its rows as text, as a MySQL client sees them (`None` = NULL).
    pub async fn query_text(
        &self,
        db: Option<&str>,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, SqlError> {
        let output = self.execute_sql(db, sql).await?;
        Ok(output
            .rows()
            .iter()
            .map(|row| row.iter().map(Value::to_text).collect())
            .collect())
    }

    /// Every row of a table in primary-key order, each in schema column order.
    pub fn table_rows(&self, db: &str, table: &str) -> Result<Vec<Vec<Value>>, SqlError> {
        let catalog = self.engine.catalog.lock();
        Ok(catalog.table(db, table)?.rows.values().cloned().collect())
    }

    /// Column names of a table, in schema order.
    pub fn table_columns(&self, db: &str, table: &str) -> Result<Vec<String>, SqlError> {
        let catalog = self.engine.catalog.lock();
        Ok(catalog
            .table(db, table)?
            .schema
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect())
    }

    /// Counters of one table.
    pub fn table_stats(&self, db: &str, table: &str) -> Result<TableStats, SqlError> {
        let catalog = self.engine.catalog.lock();
        Ok(catalog.table(db, table)?.stats.clone())
    }

    /// Everything the control endpoint's `/_emulator/stats` shows.
    pub fn stats(&self) -> serde_json::Value {
        http::control::stats_json(&self.engine)
    }

    /// Requests caught sending the body before `100 Continue` (strict mode).
    pub fn early_body_violations(&self) -> u64 {
        self.engine.stats.lock().early_body_violations
    }

    /// State of a label (`None` = UNKNOWN).
    pub fn label_state(&self, db: &str, label: &str) -> Option<TxnState> {
        let catalog = self.engine.catalog.lock();
        catalog
            .databases
            .get(db)
            .and_then(|d| d.labels.latest(label))
            .map(|t| t.state)
    }

    /// Queue a fault.
    pub fn inject(&self, rule: FaultRule) {
        self.engine.faults.lock().push(rule);
    }

    /// Drop every queued fault.
    pub fn clear_faults(&self) {
        self.engine.faults.lock().clear();
    }

    /// Simulated restart: drop in-flight loads and connections, abort running txns, keep data.
    pub fn restart(&self) {
        self.engine.restart();
    }

    /// Change run-time settings.
    pub fn update_settings(&self, patch: &SettingsPatch) {
        http::control::apply_settings(&self.engine, patch);
    }

    /// Run the label cleaner now.
    pub fn run_label_cleaner(&self) {
        self.engine.clean_labels();
    }

    /// A Stream Load without HTTP (same checks and answers as the BE).
    pub async fn stream_load(
        &self,
        db: &str,
        table: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> LoadResult {
        self.engine.stream_load(db, table, headers, body).await
    }
}
