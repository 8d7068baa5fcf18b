//! The emulator's shared state and the Stream Load life cycle, independent of HTTP.
//!
//! ```text
//! begin_stream_load  (BE header phase: headers, auth, begin txn, plan)  ─► BegunLoad | reply
//! finish_stream_load (body phase: scan, checks, faults, commit, reply)  ─► LoadResult | drop
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::catalog::{Catalog, SharedCatalog};
use crate::faults::{too_many_versions_message, FaultKind, FaultRule, Faults};
use crate::labels::{LabelRetention, TxnState};
use crate::load::{self, LoadParams, Plan, Scanned};
use crate::response::{LoadResult, LoadStatus};

/// The message of an empty load (spec §9.8).
pub const EMPTY_LOAD_MESSAGE: &str = "No partitions have data available for loading. If you are sure there may be no data to be loaded, you can use `ADMIN SET FRONTEND CONFIG ('empty_load_as_error' = 'false')` to ensure such load jobs can succeed";

/// FE text for a commit whose publish timed out (`FrontendServiceImpl.loadTxnCommit`).
pub const PUBLISH_TIMEOUT_MESSAGE: &str =
    "transaction commit successfully, BUT data will be visible later";

/// The abort reason of a txn that outlived its `timeout` (FE `DatabaseTransactionMgr`
/// `TXN_TIMEOUT_BY_MANAGER`); a Stream Load whose commit finds its txn aborted this way answers
/// `Fail` with this message.
pub const TXN_TIMEOUT_MESSAGE: &str = "timeout by txn manager";

/// `stream_load_default_timeout_second` (FE): a load's timeout without a `timeout` header.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a `publish_timeout` load stays COMMITTED before it reads VISIBLE.
pub const PUBLISH_DELAY: Duration = Duration::from_millis(200);

/// Settings that tests may change at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reject (and count) clients that send body bytes before `100 Continue`.
    pub strict_expect_continue: bool,
    /// How long an ALTER job takes.
    pub alter_duration: Duration,
    /// Label retention and the cleaner's period.
    pub label_retention: LabelRetention,
    /// FE `empty_load_as_error` (default true): a load that writes no row fails (spec §9.8).
    pub empty_load_as_error: bool,
}

/// Counters kept across the emulator (read by the control endpoint).
#[derive(Debug, Default, serde::Serialize, Clone)]
pub struct GlobalStats {
    /// Stream loads received by the BE.
    pub loads_received: u64,
    /// Requests that sent body bytes before the BE answered `100 Continue`.
    pub early_body_violations: u64,
    /// Restarts.
    pub restarts: u64,
}

/// Shared state of one emulator instance.
pub struct Engine {
    /// User for Basic auth and MySQL.
    pub user: String,
    /// Password.
    pub password: String,
    /// Databases and tables.
    pub catalog: SharedCatalog,
    /// Queued faults.
    pub faults: Mutex<Faults>,
    /// Run-time settings.
    pub settings: Mutex<Settings>,
    /// Counters.
    pub stats: Mutex<GlobalStats>,
    /// `host:port` of the BE, used in `Location` and `ErrorURL`.
    pub be_host_port: Mutex<String>,
    error_logs: Mutex<HashMap<String, String>>,
    generation: AtomicU64,
    /// Fires on a simulated restart so open connections are dropped.
    pub restart_signal: tokio::sync::watch::Sender<u64>,
    /// Transaction API sessions.
    pub(crate) txns: Mutex<HashMap<(String, String), crate::txn::TxnSession>>,
}

/// A load past its header phase: txn begun and plan made.
#[derive(Debug)]
pub struct BegunLoad {
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Headers.
    pub params: LoadParams,
    /// Txn id.
    pub txn_id: i64,
    /// The plan.
    pub plan: Plan,
    started: Instant,
    begin_ms: u64,
    plan_ms: u64,
    generation: u64,
    /// The fault this load took, if any.
    pub fault: Option<FaultRule>,
}

impl BegunLoad {
    /// When the FE aborts this load's txn: begin + `timeout` (default 600 s).
    pub fn deadline(&self) -> Instant {
        self.started
            + self
                .params
                .timeout_s
                .map_or(DEFAULT_LOAD_TIMEOUT, Duration::from_secs)
    }
}

/// The end of a load.
#[derive(Debug)]
pub enum Finish {
    /// Answer with this result.
    Reply(LoadResult),
    /// Close the connection without answering (fault or restart).
    Drop,
}

/// True if a label matches `^[-\w]{1,128}$`.
pub fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 128
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn ms_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

impl Engine {
    /// A new engine.
    pub fn new(user: &str, password: &str, settings: Settings) -> Engine {
        Engine {
            user: user.to_string(),
            password: password.to_string(),
            catalog: Arc::new(Mutex::new(Catalog::default())),
            faults: Mutex::new(Faults::default()),
            settings: Mutex::new(settings),
            stats: Mutex::new(GlobalStats::default()),
            be_host_port: Mutex::new(String::from("127.0.0.1:8040")),
            error_logs: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            restart_signal: tokio::sync::watch::channel(0).0,
            txns: Mutex::new(HashMap::new()),
        }
    }

    /// Check Basic credentials.
    pub fn credentials_ok(&self, user: &str, password: &str) -> bool {
        let user = user.split('@').next().unwrap_or(user);
        user == self.user && password == self.password
    }

    /// The current restart generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Simulated restart: in-flight loads are dropped, running txns aborted, data kept.
    pub fn restart(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.restart_signal.send_replace(generation);
        self.stats.lock().restarts += 1;
        self.txns.lock().clear();
        let mut catalog = self.catalog.lock();
        for database in catalog.databases.values_mut() {
            let running: Vec<i64> = database.labels.running_txn_ids();
            for id in running {
                database
                    .labels
                    .set_state(id, TxnState::Aborted, "emulator restart");
            }
        }
    }

    /// Set a txn's state.
    pub fn set_txn_state(&self, db: &str, txn_id: i64, state: TxnState) {
        let mut catalog = self.catalog.lock();
        if let Some(database) = catalog.databases.get_mut(db) {
            database.labels.set_state(txn_id, state, "");
        }
    }

    /// Publish COMMITTED txns whose publish delay has passed.
    pub fn publish_pending(&self) {
        let mut catalog = self.catalog.lock();
        for database in catalog.databases.values_mut() {
            database.labels.publish_committed(PUBLISH_DELAY);
        }
    }

    /// Run the label cleaner once over every database.
    pub fn clean_labels(&self) {
        let retention = self.settings.lock().label_retention.clone();
        let mut catalog = self.catalog.lock();
        for database in catalog.databases.values_mut() {
            database.labels.clean(&retention);
        }
    }

    /// An error-log file's text.
    pub fn error_log(&self, file: &str) -> Option<String> {
        self.error_logs.lock().get(file).cloned()
    }

    /// Store an error log and return its URL.
    pub fn store_error_log(&self, lines: &[String]) -> String {
        let file = format!("error_log_{}", uuid::Uuid::new_v4().simple());
        let mut text = lines.join("\n");
        text.push('\n');
        self.error_logs.lock().insert(file.clone(), text);
        format!(
            "http://{}/api/_load_error_log?file={file}",
            self.be_host_port.lock()
        )
    }

    /// Begin a txn for `label` in `db.table`: the FE's `loadTxnBegin` checks.
    pub fn begin_txn(&self, db: &str, table: &str, label: &str) -> Result<i64, Box<LoadResult>> {
        if !valid_label(label) {
            return Err(Box::new(LoadResult::fail(
                -1,
                label,
                format!("Label format error. regex: ^[-\\w]{{1,128}}$, label: {label}"),
            )));
        }
        let mut catalog = self.catalog.lock();
        let txn_id = catalog.next_txn_id();
        let Some(database) = catalog.databases.get_mut(db) else {
            return Err(Box::new(LoadResult::fail(
                -1,
                label,
                format!("unknown database, database={db}"),
            )));
        };
        if !database.tables.contains_key(table) {
            return Err(Box::new(LoadResult::fail(
                -1,
                label,
                format!("unknown table \"{db}.{table}\""),
            )));
        }
        if let Err(existing) = database.labels.check_begin(label) {
            let mut result =
                LoadResult::fail(-1, label, format!("Label [{label}] has already been used."));
            result.status = LoadStatus::LabelAlreadyExists;
            result.existing_job = Some(existing);
            return Err(Box::new(result));
        }
        database.labels.begin(txn_id, label, table);
        Ok(txn_id)
    }

    /// Abort a txn (its label becomes reusable).
    pub fn abort_txn(&self, db: &str, txn_id: i64, reason: &str) {
        let mut catalog = self.catalog.lock();
        if let Some(database) = catalog.databases.get_mut(db) {
            database.labels.set_state(txn_id, TxnState::Aborted, reason);
        }
        if let Some(table) = catalog.databases.get_mut(db).and_then(|d| {
            let name = d.labels.get(txn_id).map(|t| t.table.clone())?;
            d.tables.get_mut(&name)
        }) {
            table.stats.failed_loads += 1;
        }
    }

    /// Plan a load against the table's current schema.
    pub fn plan_load(&self, db: &str, table: &str, params: &LoadParams) -> Result<Plan, String> {
        let schema = {
            let catalog = self.catalog.lock();
            catalog
                .table(db, table)
                .map_err(|_| format!("unknown table \"{db}.{table}\""))?
                .schema
                .clone()
        };
        load::plan(schema, params)
    }

    /// The BE header phase from begin: begin the txn, then the remaining headers (`params`, whose
    /// parse error aborts the txn), then plan. `Err` is the reply.
    pub fn begin_stream_load(
        &self,
        db: &str,
        table: &str,
        label: &str,
        params: Result<LoadParams, String>,
    ) -> Result<BegunLoad, Box<LoadResult>> {
        let started = Instant::now();
        self.stats.lock().loads_received += 1;
        let txn_id = self.begin_txn(db, table, label)?;
        let begin_ms = ms_since(started);
        let params = match params {
            Ok(p) => p,
            Err(message) => {
                self.abort_txn(db, txn_id, &message);
                return Err(Box::new(LoadResult::fail(txn_id, label, message)));
            }
        };
        let plan_started = Instant::now();
        let plan = match self.plan_load(db, table, &params) {
            Ok(plan) => plan,
            Err(message) => {
                self.abort_txn(db, txn_id, &message);
                return Err(Box::new(LoadResult::fail(txn_id, &params.label, message)));
            }
        };
        let fault = self.faults.lock().take_load(db, table);
        Ok(BegunLoad {
            db: db.to_string(),
            table: table.to_string(),
            params,
            txn_id,
            plan,
            started,
            begin_ms,
            plan_ms: ms_since(plan_started),
            generation: self.generation(),
            fault,
        })
    }

    /// The body phase: scan, check, commit. Async only for the `delay` fault.
    pub async fn finish_stream_load(&self, begun: BegunLoad, body: &[u8]) -> Finish {
        let read_started = Instant::now();
        let scanned = load::scan_body(&begun.plan, &begun.params, body)
            .and_then(|s| load::check_key_sizes(&begun.plan, &s.rows).map(|()| s));
        let read_ms = ms_since(read_started);
        let mut result = LoadResult::fail(begun.txn_id, &begun.params.label, "");
        result.load_bytes = body.len() as u64;
        result.begin_txn_time_ms = begun.begin_ms;
        result.plan_time_ms = begun.plan_ms;
        result.read_data_time_ms = read_ms;
        let scanned = match scanned {
            Ok(s) => s,
            Err(message) => {
                self.abort_txn(&begun.db, begun.txn_id, &message);
                result.message = message;
                result.load_time_ms = ms_since(begun.started);
                return Finish::Reply(result);
            }
        };
        if let Some(rule) = &begun.fault {
            if rule.kind == FaultKind::Delay {
                let delay = Duration::from_millis(rule.delay_ms.unwrap_or(1000));
                // The FE's txn checker aborts the txn at its deadline while the BE is still busy;
                // the BE's commit afterwards fails with the abort reason.
                let deadline = begun.deadline();
                let now = Instant::now();
                if now + delay > deadline {
                    tokio::time::sleep(deadline.saturating_duration_since(now)).await;
                    self.abort_txn(&begun.db, begun.txn_id, TXN_TIMEOUT_MESSAGE);
                    tokio::time::sleep((now + delay).saturating_duration_since(Instant::now()))
                        .await;
                    result.total_rows = scanned.total;
                    result.loaded_rows = scanned.rows.len() as u64;
                    result.filtered_rows = scanned.filtered;
                    result.unselected_rows = scanned.unselected;
                    result.message = TXN_TIMEOUT_MESSAGE.into();
                    result.write_data_time_ms = ms_since(now);
                    result.load_time_ms = ms_since(begun.started);
                    return Finish::Reply(result);
                }
                tokio::time::sleep(delay).await;
            }
        }
        let fault_kind = begun.fault.as_ref().map(|r| r.kind);
        let fault_failure = match fault_kind {
            Some(FaultKind::Fail) => Some(
                begun
                    .fault
                    .as_ref()
                    .and_then(|r| r.message.clone())
                    .unwrap_or_else(|| "emulator: injected failure".into()),
            ),
            Some(FaultKind::TooManyVersions) => {
                let versions = {
                    let catalog = self.catalog.lock();
                    catalog
                        .table(&begun.db, &begun.table)
                        .map(|t| t.stats.versions)
                        .unwrap_or(0)
                };
                Some(too_many_versions_message(10001, versions.max(1001), 1000))
            }
            _ => None,
        };
        let outcome = self.commit_scanned(
            &begun.db,
            &begun.table,
            begun.txn_id,
            &begun.plan,
            &begun.params,
            scanned,
            fault_failure,
            begun.generation,
            &mut result,
        );
        result.load_time_ms = ms_since(begun.started);
        match outcome {
            CommitOutcome::Committed => match fault_kind {
                Some(FaultKind::DropResponse) => Finish::Drop,
                Some(FaultKind::PublishTimeout) => {
                    // Committed, publish pending: the label reads COMMITTED until the ticker
                    // publishes it (PUBLISH_DELAY).
                    self.set_txn_state(&begun.db, begun.txn_id, TxnState::Committed);
                    result.status = LoadStatus::PublishTimeout;
                    result.message = PUBLISH_TIMEOUT_MESSAGE.into();
                    Finish::Reply(result)
                }
                _ => Finish::Reply(result),
            },
            CommitOutcome::Failed => Finish::Reply(result),
            CommitOutcome::Restarted => Finish::Drop,
        }
    }

    /// Ratio and empty checks, then apply under the catalog lock (commit order).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit_scanned(
        &self,
        db: &str,
        table: &str,
        txn_id: i64,
        plan: &Plan,
        params: &LoadParams,
        scanned: Scanned,
        injected_failure: Option<String>,
        generation: u64,
        result: &mut LoadResult,
    ) -> CommitOutcome {
        let loaded = scanned.rows.len() as u64;
        result.total_rows = scanned.total;
        result.loaded_rows = loaded;
        result.filtered_rows = scanned.filtered;
        result.unselected_rows = scanned.unselected;
        if !scanned.error_lines.is_empty() {
            result.error_url = Some(self.store_error_log(&scanned.error_lines));
        }
        let ratio_exceeded = scanned.ratio_exceeded(params.max_filter_ratio);
        let empty_is_error = self.settings.lock().empty_load_as_error;
        let failure = if ratio_exceeded {
            Some("too many filtered rows".to_string())
        } else if loaded == 0 && empty_is_error {
            Some(EMPTY_LOAD_MESSAGE.to_string())
        } else {
            injected_failure
        };
        if let Some(message) = failure {
            self.abort_txn(db, txn_id, &message);
            result.message = message;
            return CommitOutcome::Failed;
        }
        let write_started = Instant::now();
        let mut catalog = self.catalog.lock();
        if self.generation() != generation {
            return CommitOutcome::Restarted;
        }
        let Some(database) = catalog.databases.get_mut(db) else {
            result.message = format!("unknown database, database={db}");
            return CommitOutcome::Failed;
        };
        let Some(target) = database.tables.get_mut(table) else {
            database
                .labels
                .set_state(txn_id, TxnState::Aborted, "table dropped");
            result.message = format!("unknown table \"{db}.{table}\"");
            return CommitOutcome::Failed;
        };
        load::apply(target, plan, scanned.rows);
        target.stats.loads += 1;
        target.stats.versions += 1;
        target.stats.rows_loaded += loaded;
        target.stats.rows_filtered += scanned.filtered;
        database.labels.set_state(txn_id, TxnState::Visible, "");
        result.write_data_time_ms = ms_since(write_started);
        result.status = LoadStatus::Success;
        result.message = "OK".into();
        CommitOutcome::Committed
    }

    /// Run a whole Stream Load in-process (no HTTP): header parsing to commit.
    pub async fn stream_load(
        &self,
        db: &str,
        table: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> LoadResult {
        let label = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("label"))
            .map(|(_, v)| v.to_string())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let get = |name: &str| {
            if name.eq_ignore_ascii_case("label") {
                return Some(label.clone());
            }
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        };
        if let Err(message) = load::params::check_before_begin(&get) {
            return LoadResult::fail(-1, &label, message);
        }
        let params = LoadParams::from_headers(&get);
        match self.begin_stream_load(db, table, &label, params) {
            Err(result) => *result,
            Ok(begun) => match self.finish_stream_load(begun, body).await {
                Finish::Reply(result) => result,
                Finish::Drop => LoadResult::fail(-1, &label, "emulator: response dropped"),
            },
        }
    }
}

/// What a commit attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitOutcome {
    /// Applied and visible.
    Committed,
    /// Rejected; the result carries the message.
    Failed,
    /// A restart happened: drop the connection.
    Restarted,
}
