//! FE HTTP (port 8030): authentication, the `Expect` check and the 307 to the BE (spec §1.3),
//! `get_load_state` (§1.8, §10.4), transaction routing (§5.1), `/api/health` (§1.9) and the
//! emulator control API.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, Version};
use serde_json::Value as J;

use crate::engine::Engine;
use crate::http::{
    basic_auth, close, control, fe_redirect, header, json_ok, path_segments, query_param, respond,
    ConnInfo, DropConnection, HttpResponse,
};
use crate::response::{compact_object, fe_ddl_failed, rest_failed};

/// 401 with the RestBaseResult body.
fn unauthorized(message: &str) -> HttpResponse {
    let mut resp = respond(
        StatusCode::UNAUTHORIZED,
        "application/json",
        rest_failed(message),
    );
    resp.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Basic realm=\"\""),
    );
    resp
}

/// Check Basic auth; `Err` is the 401.
fn authenticate(
    engine: &Engine,
    info: &ConnInfo,
    req: &Request<Incoming>,
) -> Result<(), Box<HttpResponse>> {
    let Some((user, password)) = basic_auth(req) else {
        return Err(Box::new(unauthorized("Need auth information.")));
    };
    if !engine.credentials_ok(&user, &password) {
        let user = user.split('@').next().unwrap_or(&user).to_string();
        return Err(Box::new(unauthorized(&format!(
            "Access denied for {user}@{}",
            info.peer.ip()
        ))));
    }
    Ok(())
}

/// Handle one FE request.
pub async fn handle(
    engine: Arc<Engine>,
    info: ConnInfo,
    req: Request<Incoming>,
) -> Result<HttpResponse, DropConnection> {
    let path = req.uri().path().to_string();
    if path.starts_with("/_emulator/") {
        return Ok(control::handle(engine, req).await);
    }
    let segments = path_segments(&path);
    let resp = match segments.as_slice() {
        [api, db, table, op] if api == "api" && op == "_stream_load" => {
            stream_load(&engine, &info, &req, db, table)
        }
        [api, _, op] if api == "api" && op == "_stream_load" => {
            stream_load(&engine, &info, &req, "", "")
        }
        [api, db, op] if api == "api" && op == "get_load_state" => {
            get_load_state(&engine, &info, &req, db)
        }
        [api, txn, op] if api == "api" && txn == "transaction" => {
            crate::txn::fe_route(&engine, &info, &req, op)
        }
        [api, health] if api == "api" && health == "health" && req.method() == Method::GET => {
            health_answer()
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "Not Found"),
    };
    Ok(resp)
}

/// `GET /api/health` (spec §1.9): no authentication; the emulator's one BE is always online.
/// The FE builds the body from a Java HashMap, so clients must not rely on the key order.
fn health_answer() -> HttpResponse {
    json_ok(compact_object(&[
        ("total_backend_num", J::from(1)),
        ("online_backend_num", J::from(1)),
        ("status", J::from("OK")),
    ]))
}

fn stream_load(
    engine: &Engine,
    info: &ConnInfo,
    req: &Request<Incoming>,
    db: &str,
    table: &str,
) -> HttpResponse {
    if req.method() != Method::PUT {
        return close(json_ok(fe_ddl_failed("Method Not Allowed")));
    }
    if let Err(resp) = authenticate(engine, info, req) {
        return close(*resp);
    }
    let expects_continue =
        header(req, "expect").is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if req.version() >= Version::HTTP_11 && !expects_continue {
        return close(json_ok(fe_ddl_failed("There is no 100-continue header")));
    }
    if db.is_empty() {
        return close(json_ok(fe_ddl_failed("No database selected.")));
    }
    if table.is_empty() {
        return close(json_ok(fe_ddl_failed("No table selected.")));
    }
    close(fe_redirect(engine, req))
}

fn get_load_state(
    engine: &Engine,
    info: &ConnInfo,
    req: &Request<Incoming>,
    db: &str,
) -> HttpResponse {
    if let Err(resp) = authenticate(engine, info, req) {
        return *resp;
    }
    let Some(label) = query_param(req, "label").filter(|l| !l.is_empty()) else {
        return json_ok(rest_failed("No label selected."));
    };
    let catalog = engine.catalog.lock();
    let Some(database) = catalog.databases.get(db) else {
        return json_ok(rest_failed(&format!("unknown database, database={db}")));
    };
    let mut fields: Vec<(&str, J)> = Vec::new();
    match database.labels.latest(&label) {
        Some(txn) => {
            fields.push(("state", J::from(txn.state.name())));
            fields.push(("reason", J::from(txn.reason.clone())));
        }
        None => fields.push(("state", J::from("UNKNOWN"))),
    }
    fields.extend([
        ("status", J::from("OK")),
        ("code", J::from("0")),
        ("msg", J::from("Success")),
        ("message", J::from("OK")),
    ]);
    json_ok(compact_object(&fields))
}
