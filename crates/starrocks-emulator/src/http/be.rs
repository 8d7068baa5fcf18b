//! BE HTTP (port 8040): Stream Load in two phases (spec §1.4), the error log (§4.9) and the
//! transaction API (§5).
//!
//! The header phase never touches the body, so hyper never sends `100 Continue` for a request
//! refused there — exactly like libevent in the real BE. Reading the body is what makes hyper
//! send `100 Continue`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use crate::engine::{Engine, Finish, TXN_TIMEOUT_MESSAGE};
use crate::faults::FaultKind;
use crate::http::{
    basic_auth, header, json_ok, path_segments, query_param, respond, ConnInfo, DropConnection,
    HttpResponse,
};
use crate::load::LoadParams;
use crate::response::LoadResult;

/// JSON bodies above this fail unless `ignore_json_size: true` (spec §1.4).
const MAX_JSON_BATCH_BYTES: u64 = 104_857_600;

/// Handle one BE request.
pub async fn handle(
    engine: Arc<Engine>,
    info: ConnInfo,
    req: Request<Incoming>,
) -> Result<HttpResponse, DropConnection> {
    let path = req.uri().path().to_string();
    let segments = path_segments(&path);
    match segments.as_slice() {
        [api, db, table, op] if api == "api" && op == "_stream_load" => {
            let (db, table) = (db.clone(), table.clone());
            stream_load(&engine, &info, req, &db, &table).await
        }
        [api, op] if api == "api" && op == "_load_error_log" => {
            let file = query_param(&req, "file").unwrap_or_default();
            Ok(match engine.error_log(&file) {
                Some(text) => respond(StatusCode::OK, "text/plain; charset=utf-8", text),
                None => respond(StatusCode::NOT_FOUND, "text/plain", "Not Found"),
            })
        }
        [api, txn, op] if api == "api" && txn == "transaction" => {
            let op = op.clone();
            crate::txn::be_handle(&engine, &info, req, &op).await
        }
        _ => Ok(respond(StatusCode::NOT_FOUND, "text/plain", "Not Found")),
    }
}

fn reply(result: &LoadResult) -> HttpResponse {
    json_ok(result.to_json())
}

/// [`read_body`]'s error when the deadline passed before the body was complete.
pub const BODY_TIMED_OUT: &str = "body read timed out";

/// Read the whole body, or `None` if the client went away. `cut_after` simulates a connection
/// closed mid-body: reading stops after that many bytes.
pub async fn read_body(
    body: Incoming,
    timeout: Duration,
    cut_after: Option<u64>,
) -> Result<Bytes, &'static str> {
    let read = async {
        let mut body = body;
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| "body read failed")?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if cut_after.is_some_and(|cut| buf.len() as u64 >= cut) {
                    return Err("closed mid-body");
                }
            }
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BODY_TIMED_OUT))
}

/// Check that no body byte arrived before the BE answered `100 Continue`.
async fn early_body_check(info: &ConnInfo, req: &Request<Incoming>) -> Option<String> {
    let expects = header(req, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !expects {
        return Some(
            "emulator strict mode: the request has no `Expect: 100-continue` header".into(),
        );
    }
    // Give an eager client time to show itself.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let buffered = info.trace.as_ref().map_or(0, |trace| {
        let trace = trace.lock();
        trace
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |end| trace.bytes.len() - end - 4)
    });
    let mut probe = [0u8; 1];
    let pending = tokio::time::timeout(Duration::from_millis(1), info.stream.peek(&mut probe))
        .await
        .map_or(0, |r| r.unwrap_or(0));
    if buffered + pending > 0 {
        return Some(
            "emulator strict mode: body bytes arrived before the server answered 100 Continue"
                .into(),
        );
    }
    None
}

async fn stream_load(
    engine: &Arc<Engine>,
    info: &ConnInfo,
    req: Request<Incoming>,
    db: &str,
    table: &str,
) -> Result<HttpResponse, DropConnection> {
    if req.method() != Method::PUT {
        return Ok(respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "Method Not Allowed",
        ));
    }
    let label = header(&req, "label")
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let get = |name: &str| {
        if name.eq_ignore_ascii_case("label") {
            return Some(label.clone());
        }
        header(&req, name)
    };
    let Some((user, password)) = basic_auth(&req) else {
        return Ok(reply(&LoadResult::fail(
            -1,
            &label,
            "no valid Basic authorization",
        )));
    };
    if let Err(message) = crate::load::params::check_before_begin(&get) {
        return Ok(reply(&LoadResult::fail(-1, &label, message)));
    }
    let is_json = get("format").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let content_length: Option<u64> = get("content-length").and_then(|v| v.parse().ok());
    let ignore_json_size = get("ignore_json_size").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if is_json && !ignore_json_size {
        if let Some(len) = content_length.filter(|l| *l > MAX_JSON_BATCH_BYTES) {
            return Ok(reply(&LoadResult::fail(-1, &label, format!(
                "The size of this batch exceed the max size [{MAX_JSON_BATCH_BYTES}]  of json type data  data [ {len} ]. Set ignore_json_size to skip the check, although it may lead huge memory consuming."
            ))));
        }
    }
    if engine.settings.lock().strict_expect_continue {
        if let Some(message) = early_body_check(info, &req).await {
            engine.stats.lock().early_body_violations += 1;
            return Ok(reply(&LoadResult::fail(-1, &label, message)));
        }
    }
    if !engine.credentials_ok(&user, &password) {
        let user = user.split('@').next().unwrap_or(&user).to_string();
        return Ok(reply(&LoadResult::fail(
            -1,
            &label,
            format!("Access denied for {user}@{}", info.peer.ip()),
        )));
    }
    let params = LoadParams::from_headers(&get);
    let begun = match engine.begin_stream_load(db, table, &label, params) {
        Ok(b) => b,
        Err(result) => return Ok(reply(&result)),
    };
    let fault = begun.fault.clone();
    if let Some(rule) = fault.as_ref().filter(|r| r.kind == FaultKind::Http5xx) {
        engine.abort_txn(db, begun.txn_id, "emulator: injected HTTP error");
        let status = StatusCode::from_u16(rule.status.unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let text = rule
            .message
            .clone()
            .unwrap_or_else(|| "emulator: injected HTTP error".into());
        return Ok(respond(status, "text/plain", text));
    }
    let cut_after = fault
        .as_ref()
        .filter(|r| r.kind == FaultKind::CloseMidBody)
        .map(|_| content_length.map_or(1, |len| (len / 2).max(1)));
    let timeout = begun.deadline().saturating_duration_since(Instant::now());
    // A client that dies mid-body takes this future with it (hyper drops the request): the
    // txn is then rolled back, as `~StreamLoadContext` does in the BE (spec §5.4).
    let rollback_if_dropped = RollbackOnDrop {
        engine: Arc::clone(engine),
        db: db.to_string(),
        txn_id: Some(begun.txn_id),
    };
    let body = read_body(req.into_body(), timeout, cut_after).await;
    rollback_if_dropped.disarm();
    let body = match body {
        Ok(body) => body,
        Err(BODY_TIMED_OUT) => {
            // The FE aborted the txn at its deadline; the BE answers with the abort reason.
            engine.abort_txn(db, begun.txn_id, TXN_TIMEOUT_MESSAGE);
            let mut result = LoadResult::fail(begun.txn_id, &label, TXN_TIMEOUT_MESSAGE);
            result.load_time_ms = timeout.as_millis() as u64;
            return Ok(reply(&result));
        }
        Err(why) => {
            engine.abort_txn(db, begun.txn_id, why);
            return Err(DropConnection(why));
        }
    };
    if let Some(trace) = &info.trace {
        trace.lock().bytes.clear();
    }
    // With the whole body in, the BE runs the load to its end whether or not the client is
    // still there: a load cut off from its client still commits.
    let engine = Arc::clone(engine);
    let finish = tokio::spawn(async move { engine.finish_stream_load(begun, &body).await });
    match finish.await {
        Ok(Finish::Reply(result)) => Ok(reply(&result)),
        Ok(Finish::Drop) => Err(DropConnection("response dropped")),
        Err(_) => Err(DropConnection("load task failed")),
    }
}

/// Rolls a plain Stream Load's txn back unless disarmed (the body arrived whole).
struct RollbackOnDrop {
    engine: Arc<Engine>,
    db: String,
    txn_id: Option<i64>,
}

impl RollbackOnDrop {
    fn disarm(mut self) {
        self.txn_id = None;
    }
}

impl Drop for RollbackOnDrop {
    fn drop(&mut self) {
        if let Some(txn_id) = self.txn_id {
            self.engine.abort_txn(
                &self.db,
                txn_id,
                "the client closed the connection mid-body",
            );
        }
    }
}
