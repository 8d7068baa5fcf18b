//! Stream Load transaction API (spec §5): begin → load (PUT, repeatable, identical headers) →
//! [prepare] → commit, or rollback. One db and one table per txn (3.3–3.5, spec §10.3).
//!
//! Rows of every `load` call are scanned at once and kept in the session; they are applied at
//! commit, under the same ratio/empty checks as a plain Stream Load. `Status` uses StarRocks's
//! status-code names (`OK`, `LABEL_ALREADY_EXISTS`, `TXN_NOT_EXISTS`, ...).

use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::Value as J;

use crate::engine::{CommitOutcome, Engine};
use crate::http::{
    basic_auth, be::read_body, fe_redirect, header, json_ok, ConnInfo, DropConnection, HttpResponse,
};
use crate::labels::TxnState;
use crate::load::{self, LoadParams, Plan, Scanned};
use crate::response::{compact_object, pretty_object, LoadResult, LoadStatus};

/// One open transaction.
#[derive(Debug)]
pub struct TxnSession {
    db: String,
    table: String,
    txn_id: i64,
    params: Option<LoadParams>,
    fingerprint: Option<String>,
    plan: Option<Plan>,
    scanned: Scanned,
    load_bytes: u64,
    prepared: bool,
    busy: bool,
    started: Instant,
    last_active: Instant,
    timeout: Duration,
    idle_timeout: Option<Duration>,
}

fn reply(fields: &[(&str, J)]) -> HttpResponse {
    json_ok(pretty_object(fields))
}

fn error(status: &str, message: &str) -> HttpResponse {
    reply(&[("Status", J::from(status)), ("Message", J::from(message))])
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// FE side of `/api/transaction/{op}`: checks, then 307 to the BE, or handle a prepared txn.
pub fn fe_route(
    engine: &Engine,
    info: &ConnInfo,
    req: &Request<Incoming>,
    op: &str,
) -> HttpResponse {
    let Some((user, password)) = basic_auth(req) else {
        return unauthorized("Need auth information.");
    };
    if !engine.credentials_ok(&user, &password) {
        return unauthorized(&format!("Access denied for {user}@{}", info.peer.ip()));
    }
    let ddl = |message: &str| {
        json_ok(compact_object(&[
            ("Status", J::from("FAILED")),
            (
                "Message",
                J::from(format!(
                    "class com.starrocks.common.UserException: {message}"
                )),
            ),
        ]))
    };
    if !["begin", "load", "prepare", "commit", "rollback"].contains(&op) {
        return ddl(&format!("unsupport transaction operation {op}"));
    }
    let Some(label) = header(req, "label").filter(|l| !l.is_empty()) else {
        return ddl("empty label.");
    };
    let Some(db) = header(req, "db").filter(|d| !d.is_empty()) else {
        return ddl("No database selected.");
    };
    if op == "load" && req.method() != Method::PUT {
        return ddl("transaction load must use PUT");
    }
    let session_exists = engine
        .txns
        .lock()
        .contains_key(&(db.clone(), label.clone()));
    if op == "load" && !session_exists {
        return ddl(&format!(
            "transaction with op load label {label} has no node"
        ));
    }
    if op == "commit" || op == "rollback" {
        if let Some(answer) = fe_finish(engine, &db, &label, op == "commit") {
            return crate::http::close(match answer {
                Ok(fields) => fe_result("OK", fields),
                Err(message) => ddl(&message),
            });
        }
    }
    crate::http::close(fe_redirect(engine, req))
}

/// The FE's `TransactionResult` (Gson, pretty, `HashMap` order: Status, TxnId, Message, Label).
fn fe_result(status: &str, fields: FeFields) -> HttpResponse {
    let mut entries = vec![("Status", J::from(status))];
    if let Some(id) = fields.txn_id {
        entries.push(("TxnId", J::from(id)));
    }
    entries.push(("Message", J::from(fields.message)));
    entries.push(("Label", J::from(fields.label)));
    let lines: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("  \"{key}\": {value}"))
        .collect();
    json_ok(format!("{{\n{}\n}}", lines.join(",\n")))
}

/// What the FE puts into a successful `TransactionResult`.
struct FeFields {
    txn_id: Option<i64>,
    message: String,
    label: String,
}

/// `TransactionWithoutChannelHandler`: the FE itself commits or rolls back a PREPARED txn and
/// answers for finished ones; `None` means a running txn, redirected to its BE (spec §5.1).
/// `Err` is the exception text (answered as `FAILED`).
fn fe_finish(
    engine: &Engine,
    db: &str,
    label: &str,
    commit: bool,
) -> Option<Result<FeFields, String>> {
    let latest = {
        let catalog = engine.catalog.lock();
        let Some(database) = catalog.databases.get(db) else {
            return Some(Err(format!("Database[{db}] does not exist.")));
        };
        database.labels.latest(label).map(|t| (t.txn_id, t.state))
    };
    let Some((txn_id, state)) = latest else {
        return Some(Err(format!("No transaction found by label {label}")));
    };
    let done = |message: String| {
        Some(Ok(FeFields {
            txn_id: Some(txn_id),
            message,
            label: label.to_string(),
        }))
    };
    match (commit, state) {
        (_, TxnState::Prepare) => None,
        (true, TxnState::Prepared) => {
            let session = engine
                .txns
                .lock()
                .remove(&(db.to_string(), label.to_string()));
            let Some(session) = session else {
                return Some(Err(format!("No transaction found by label {label}")));
            };
            match commit_session(engine, db, label, session) {
                Ok(_) => done(String::new()),
                Err(failure) => Some(Err(failure.message)),
            }
        }
        (false, TxnState::Prepared) => {
            engine
                .txns
                .lock()
                .remove(&(db.to_string(), label.to_string()));
            engine.abort_txn(db, txn_id, "User Aborted");
            done(String::new())
        }
        (true, TxnState::Committed | TxnState::Visible) => done(format!(
            "label {label} transaction {txn_id} has already committed"
        )),
        (true, TxnState::Aborted) => Some(Err(format!(
            "cannot commit aborted transaction {txn_id}, label {label}"
        ))),
        (false, TxnState::Aborted) => done(format!(
            "label {label} transaction {txn_id} has already aborted"
        )),
        (false, TxnState::Committed | TxnState::Visible) => Some(Err(format!(
            "cannot abort committed transaction {txn_id}, label {label} "
        ))),
    }
}

fn unauthorized(message: &str) -> HttpResponse {
    let mut resp = crate::http::respond(
        StatusCode::UNAUTHORIZED,
        "application/json",
        crate::response::rest_failed(message),
    );
    resp.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Basic realm=\"\""),
    );
    resp
}

/// Abort txns past their timeout or idle timeout (called by the background ticker).
pub fn expire(engine: &Engine) {
    let now = Instant::now();
    let mut expired = Vec::new();
    engine.txns.lock().retain(|_, s| {
        let reason = if now.duration_since(s.started) > s.timeout {
            Some(format!(
                "transaction is aborted by timeout {} seconds.",
                s.timeout.as_secs()
            ))
        } else if s
            .idle_timeout
            .is_some_and(|idle| !s.prepared && now.duration_since(s.last_active) > idle)
        {
            Some(format!(
                "transaction is aborted by idle timeout {} seconds.",
                s.idle_timeout.map_or(0, |d| d.as_secs())
            ))
        } else {
            None
        };
        match reason {
            Some(reason) if !s.busy => {
                expired.push((s.db.clone(), s.txn_id, reason));
                false
            }
            _ => true,
        }
    });
    for (db, txn_id, reason) in expired {
        engine.abort_txn(&db, txn_id, &reason);
    }
}

/// BE side of `/api/transaction/{op}`.
pub async fn be_handle(
    engine: &Engine,
    _info: &ConnInfo,
    req: Request<Incoming>,
    op: &str,
) -> Result<HttpResponse, DropConnection> {
    if header(&req, "transaction_type").is_some() {
        return Ok(error(
            "INVALID_ARGUMENT",
            "Multi-statement transaction requests can only be sent to FE nodes, not BE nodes",
        ));
    }
    let Some((user, password)) = basic_auth(&req) else {
        return Ok(error("INVALID_ARGUMENT", "no valid Basic authorization"));
    };
    if !engine.credentials_ok(&user, &password) {
        return Ok(error(
            "INTERNAL_ERROR",
            &format!("Access denied for {user}"),
        ));
    }
    let Some(label) = header(&req, "label").filter(|l| !l.is_empty()) else {
        return Ok(error("INVALID_ARGUMENT", "empty label"));
    };
    let db = header(&req, "db").unwrap_or_default();
    let table = header(&req, "table").unwrap_or_default();
    expire(engine);
    match op {
        "begin" => Ok(begin(engine, &req, &db, &table, &label)),
        "load" => {
            if req.method() != Method::PUT {
                return Ok(error("INVALID_ARGUMENT", "transaction load must use PUT"));
            }
            load_call(engine, req, &db, &table, &label).await
        }
        "prepare" => Ok(finish(engine, &db, &label, Finish::Prepare)),
        "commit" => Ok(finish(engine, &db, &label, Finish::Commit)),
        "rollback" => Ok(finish(engine, &db, &label, Finish::Rollback)),
        other => Ok(error(
            "INVALID_ARGUMENT",
            &format!("unsupport transaction operation {other}"),
        )),
    }
}

fn begin(
    engine: &Engine,
    req: &Request<Incoming>,
    db: &str,
    table: &str,
    label: &str,
) -> HttpResponse {
    let started = Instant::now();
    if engine
        .txns
        .lock()
        .contains_key(&(db.to_string(), label.to_string()))
    {
        return reply(&[
            ("Status", J::from("LABEL_ALREADY_EXISTS")),
            ("ExistingJobStatus", J::from("RUNNING")),
            ("Message", J::from("")),
        ]);
    }
    let parse_secs = |name: &str| -> Result<Option<u64>, String> {
        match header(req, name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("Invalid {name} format")),
        }
    };
    let (timeout, idle) = match (
        parse_secs("timeout"),
        parse_secs("idle_transaction_timeout"),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(m), _) | (_, Err(m)) => return error("INVALID_ARGUMENT", &m),
    };
    let txn_id = match engine.begin_txn(db, table, label) {
        Ok(id) => id,
        Err(result) => {
            if result.status == LoadStatus::LabelAlreadyExists {
                return reply(&[
                    ("Status", J::from("LABEL_ALREADY_EXISTS")),
                    (
                        "ExistingJobStatus",
                        J::from(result.existing_job.map_or("", |j| j.name())),
                    ),
                    ("Message", J::from(result.message.clone())),
                ]);
            }
            return error("INTERNAL_ERROR", &result.message);
        }
    };
    let now = Instant::now();
    engine.txns.lock().insert(
        (db.to_string(), label.to_string()),
        TxnSession {
            db: db.to_string(),
            table: table.to_string(),
            txn_id,
            params: None,
            fingerprint: None,
            plan: None,
            scanned: Scanned::empty(),
            load_bytes: 0,
            prepared: false,
            busy: false,
            started: now,
            last_active: now,
            timeout: Duration::from_secs(timeout.unwrap_or(600)),
            idle_timeout: idle.map(Duration::from_secs),
        },
    );
    reply(&[
        ("Status", J::from("OK")),
        ("Message", J::from("")),
        ("Label", J::from(label)),
        ("TxnId", J::from(txn_id)),
        ("BeginTxnTimeMs", J::from(ms(started.elapsed()))),
    ])
}

async fn load_call(
    engine: &Engine,
    req: Request<Incoming>,
    db: &str,
    table: &str,
    label: &str,
) -> Result<HttpResponse, DropConnection> {
    let key = (db.to_string(), label.to_string());
    let get = |name: &str| header(&req, name);
    let parsed = LoadParams::from_headers(&get);
    // Take the session for this call (busy flag), checking what must match.
    let (txn_id, plan_needed, known_table) = {
        let mut txns = engine.txns.lock();
        let Some(session) = txns.get_mut(&key) else {
            return Ok(error(
                "TXN_NOT_EXISTS",
                &format!("Transaction with label {label} not exists"),
            ));
        };
        if session.busy {
            return Ok(reply(&[
                ("Status", J::from("TXN_IN_PROCESSING")),
                ("Label", J::from(label)),
                ("Message", J::from("Transaction is in processing")),
            ]));
        }
        if session.prepared {
            // The BE dropped its context at prepare (`TransactionMgr::_commit_transaction`).
            return Ok(error(
                "TXN_NOT_EXISTS",
                &format!("Transaction with label {label} not exists"),
            ));
        }
        if !table.is_empty() && session.table != table {
            return Ok(error(
                "INVALID_ARGUMENT",
                &format!(
                    "Request table {table} not equal transaction table {}",
                    session.table
                ),
            ));
        }
        let params = match parsed {
            Ok(p) => p,
            Err(message) => return Ok(error("INVALID_ARGUMENT", &message)),
        };
        let fingerprint = params.fingerprint();
        if session
            .fingerprint
            .as_ref()
            .is_some_and(|f| *f != fingerprint)
        {
            return Ok(error("INVALID_ARGUMENT", "load request not equal last."));
        }
        session.fingerprint = Some(fingerprint);
        let plan_needed = session.plan.is_none();
        if plan_needed {
            session.params = Some(params);
        }
        session.busy = true;
        session.last_active = Instant::now();
        (session.txn_id, plan_needed, session.table.clone())
    };
    let release = |engine: &Engine, failure: Option<&str>| {
        let mut txns = engine.txns.lock();
        if let Some(reason) = failure {
            txns.remove(&key);
            drop(txns);
            engine.abort_txn(db, txn_id, reason);
        } else if let Some(session) = txns.get_mut(&key) {
            session.busy = false;
            session.last_active = Instant::now();
        }
    };
    let plan_started = Instant::now();
    let (params, plan) = {
        let txns = engine.txns.lock();
        let session = txns.get(&key);
        let params = session.and_then(|s| s.params.clone());
        (params, session.and_then(|s| s.plan.clone()))
    };
    let Some(params) = params else {
        release(engine, Some("session lost"));
        return Ok(error("TXN_NOT_EXISTS", "transaction was aborted"));
    };
    let plan = match plan {
        Some(plan) => plan,
        None => match engine.plan_load(db, &known_table, &params) {
            Ok(plan) => plan,
            Err(message) => {
                release(engine, Some(&message));
                return Ok(error("ANALYSIS_ERROR", &message));
            }
        },
    };
    let plan_ms = if plan_needed {
        ms(plan_started.elapsed())
    } else {
        0
    };
    let read_started = Instant::now();
    let timeout = Duration::from_secs(params.timeout_s.unwrap_or(600).max(1));
    let body = match read_body(req.into_body(), timeout, None).await {
        Ok(body) => body,
        Err(why) => {
            // The BE only releases the request: the txn stays open until a rollback or its
            // timeout / idle timeout (spec §5.4). The partial body is discarded.
            release(engine, None);
            return Err(DropConnection(why));
        }
    };
    let scanned = match load::scan_body(&plan, &params, &body) {
        Ok(s) => s,
        Err(message) => {
            release(engine, Some(&message));
            return Ok(error("INTERNAL_ERROR", &message));
        }
    };
    {
        let mut txns = engine.txns.lock();
        if let Some(session) = txns.get_mut(&key) {
            session.scanned.extend(scanned);
            session.load_bytes += body.len() as u64;
            session.plan = Some(plan);
        }
    }
    release(engine, None);
    Ok(reply(&[
        ("Status", J::from("OK")),
        ("Message", J::from("")),
        ("Label", J::from(label)),
        ("TxnId", J::from(txn_id)),
        ("LoadBytes", J::from(body.len())),
        ("StreamLoadPlanTimeMs", J::from(plan_ms)),
        ("ReceivedDataTimeMs", J::from(ms(read_started.elapsed()))),
    ]))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Prepare,
    Commit,
    Rollback,
}

fn counters(
    label: &str,
    txn_id: i64,
    result: &LoadResult,
    load_bytes: u64,
    status: &str,
    message: &str,
) -> HttpResponse {
    let mut fields = vec![
        ("Status", J::from(status)),
        ("Message", J::from(message)),
        ("Label", J::from(label)),
        ("TxnId", J::from(txn_id)),
        ("NumberTotalRows", J::from(result.total_rows)),
        ("NumberLoadedRows", J::from(result.loaded_rows)),
        ("NumberFilteredRows", J::from(result.filtered_rows)),
        ("NumberUnselectedRows", J::from(result.unselected_rows)),
        ("LoadBytes", J::from(load_bytes)),
        ("LoadTimeMs", J::from(result.load_time_ms)),
        ("StreamLoadPlanTimeMs", J::from(0)),
        ("ReceivedDataTimeMs", J::from(0)),
        ("WriteDataTimeMs", J::from(result.write_data_time_ms)),
        ("CommitAndPublishTimeMs", J::from(0)),
    ];
    if let Some(url) = &result.error_url {
        fields.push(("ErrorURL", J::from(url.clone())));
    }
    reply(&fields)
}

fn finish(engine: &Engine, db: &str, label: &str, what: Finish) -> HttpResponse {
    let key = (db.to_string(), label.to_string());
    let session = {
        let mut txns = engine.txns.lock();
        match txns.get(&key) {
            Some(s) if s.busy => {
                return reply(&[
                    ("Status", J::from("TXN_IN_PROCESSING")),
                    ("Label", J::from(label)),
                    ("Message", J::from("Transaction is in processing")),
                ])
            }
            // A prepared txn lives on in the FE only; the BE has no context for it.
            Some(s) if s.prepared => {
                return error(
                    "TXN_NOT_EXISTS",
                    &format!("transaction with label {label} not exists"),
                )
            }
            Some(_) if what == Finish::Prepare => None,
            Some(_) => txns.remove(&key),
            None => None,
        }
    };
    if what == Finish::Prepare {
        let mut txns = engine.txns.lock();
        let Some(session) = txns.get_mut(&key) else {
            return error(
                "TXN_NOT_EXISTS",
                &format!("transaction with label {label} not exists"),
            );
        };
        if session.plan.is_none() {
            return error(
                "INTERNAL_ERROR",
                &format!("transaction with label {label} hasn't send any data yet"),
            );
        }
        let (txn_id, load_bytes) = (session.txn_id, session.load_bytes);
        let mut result = LoadResult::fail(txn_id, label, "");
        result.total_rows = session.scanned.total;
        result.loaded_rows = session.scanned.rows.len() as u64;
        result.filtered_rows = session.scanned.filtered;
        result.unselected_rows = session.scanned.unselected;
        if !session.scanned.error_lines.is_empty() {
            let lines = std::mem::take(&mut session.scanned.error_lines);
            result.error_url = Some(engine.store_error_log(&lines));
        }
        let max_filter_ratio = session.params.as_ref().map_or(0.0, |p| p.max_filter_ratio);
        if session.scanned.ratio_exceeded(max_filter_ratio) {
            // The plan fragment's own ratio check (`StreamLoadExecutor::execute_plan_fragment`)
            // fails the prepare; `commit_transaction` then rolls the txn back.
            txns.remove(&key);
            drop(txns);
            let message = "too many filtered rows";
            engine.abort_txn(db, txn_id, message);
            let mut fields = vec![
                ("Status", J::from("INTERNAL_ERROR")),
                ("Message", J::from(message)),
            ];
            if let Some(url) = result.error_url {
                fields.push(("ErrorURL", J::from(url)));
            }
            return reply(&fields);
        }
        session.prepared = true;
        drop(txns);
        let mut catalog = engine.catalog.lock();
        if let Some(database) = catalog.databases.get_mut(db) {
            database.labels.set_state(txn_id, TxnState::Prepared, "");
        }
        return counters(label, txn_id, &result, load_bytes, "OK", "");
    }
    let Some(session) = session else {
        // No open txn: the idempotent outcomes of spec §5.1.
        let catalog = engine.catalog.lock();
        let latest = catalog
            .databases
            .get(db)
            .and_then(|d| d.labels.latest(label))
            .map(|t| (t.txn_id, t.state));
        return match (what, latest) {
            (Finish::Commit, Some((id, TxnState::Committed | TxnState::Visible))) => error(
                "OK",
                &format!("label {label} transaction {id} has already committed"),
            ),
            (Finish::Commit, Some((id, TxnState::Aborted))) => error(
                "INTERNAL_ERROR",
                &format!("cannot commit aborted transaction {id}, label {label}"),
            ),
            (Finish::Rollback, Some((id, TxnState::Aborted))) => error(
                "OK",
                &format!("label {label} transaction {id} has already aborted"),
            ),
            (Finish::Rollback, Some((id, TxnState::Committed | TxnState::Visible))) => error(
                "INTERNAL_ERROR",
                &format!("cannot abort committed transaction {id}, label {label} "),
            ),
            _ => error(
                "TXN_NOT_EXISTS",
                &format!("transaction with label {label} not exists"),
            ),
        };
    };
    if what == Finish::Rollback {
        engine.abort_txn(db, session.txn_id, "transaction is aborted by user.");
        return reply(&[
            ("Status", J::from("OK")),
            ("Message", J::from("")),
            ("Label", J::from(label)),
        ]);
    }
    let (txn_id, load_bytes) = (session.txn_id, session.load_bytes);
    match commit_session(engine, db, label, session) {
        Ok((status, result)) => counters(label, txn_id, &result, load_bytes, status, ""),
        Err(failure) => {
            // `to_resp_json`: a failed op carries only Status, Message and ErrorURL.
            let mut fields = vec![
                ("Status", J::from("INTERNAL_ERROR")),
                ("Message", J::from(failure.message)),
            ];
            if let Some(url) = failure.error_url {
                fields.push(("ErrorURL", J::from(url)));
            }
            reply(&fields)
        }
    }
}

/// Why committing a session failed (the txn is aborted).
struct CommitFailure {
    message: String,
    error_url: Option<String>,
}

/// Commit an open session (taken out of `engine.txns`): ratio and empty checks, faults, apply.
/// `Ok` carries the BE status name (`OK` / `PUBLISH_TIMEOUT`).
fn commit_session(
    engine: &Engine,
    db: &str,
    label: &str,
    session: TxnSession,
) -> Result<(&'static str, LoadResult), CommitFailure> {
    let (Some(plan), Some(params)) = (session.plan.clone(), session.params.clone()) else {
        engine.abort_txn(db, session.txn_id, "no data");
        return Err(CommitFailure {
            message: format!("transaction with label {label} hasn't send any data yet"),
            error_url: None,
        });
    };
    let mut result = LoadResult::fail(session.txn_id, label, "");
    let fault = engine.faults.lock().take_load(db, &session.table);
    let injected = fault.as_ref().and_then(|r| match r.kind {
        crate::faults::FaultKind::Fail => Some(
            r.message
                .clone()
                .unwrap_or_else(|| "emulator: injected failure".into()),
        ),
        crate::faults::FaultKind::TooManyVersions => {
            Some(crate::faults::too_many_versions_message(10001, 1001, 1000))
        }
        _ => None,
    });
    let outcome = engine.commit_scanned(
        db,
        &session.table,
        session.txn_id,
        &plan,
        &params,
        session.scanned,
        injected,
        engine.generation(),
        &mut result,
    );
    result.load_time_ms = ms(session.started.elapsed());
    match outcome {
        CommitOutcome::Committed => {
            let status = if fault
                .as_ref()
                .is_some_and(|r| r.kind == crate::faults::FaultKind::PublishTimeout)
            {
                "PUBLISH_TIMEOUT"
            } else {
                "OK"
            };
            Ok((status, result))
        }
        _ => Err(CommitFailure {
            message: result.message,
            error_url: result.error_url,
        }),
    }
}
