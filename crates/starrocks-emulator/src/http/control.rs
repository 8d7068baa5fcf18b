//! The emulator's control API on the FE port (`/_emulator/...`), for tests to script faults and
//! read counters. Not part of StarRocks; no auth. Documented in the crate README.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::engine::Engine;
use crate::faults::FaultRule;
use crate::http::{respond, HttpResponse};

/// Body of `POST /_emulator/settings`; absent fields are left unchanged.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Catch clients that send the body before `100 Continue` (new connections only).
    pub strict_expect_continue: Option<bool>,
    /// ALTER job duration.
    pub alter_duration_ms: Option<u64>,
    /// `label_keep_max_second`.
    pub label_keep_max_second: Option<u64>,
    /// `label_keep_max_num`.
    pub label_keep_max_num: Option<usize>,
    /// `label_clean_interval_second`, in milliseconds.
    pub label_clean_interval_ms: Option<u64>,
}

/// Apply a settings patch.
pub fn apply_settings(engine: &Engine, patch: &SettingsPatch) {
    let mut settings = engine.settings.lock();
    if let Some(v) = patch.strict_expect_continue {
        settings.strict_expect_continue = v;
    }
    if let Some(v) = patch.alter_duration_ms {
        settings.alter_duration = Duration::from_millis(v);
    }
    if let Some(v) = patch.label_keep_max_second {
        settings.label_retention.keep_max = Duration::from_secs(v);
    }
    if let Some(v) = patch.label_keep_max_num {
        settings.label_retention.keep_max_num = v;
    }
    if let Some(v) = patch.label_clean_interval_ms {
        settings.label_retention.clean_interval = Duration::from_millis(v.max(1));
    }
}

/// Counters as JSON: `{"global": {...}, "tables": {"db.t": {...,"rows": n}}}`.
pub fn stats_json(engine: &Engine) -> serde_json::Value {
    let global = engine.stats.lock().clone();
    let catalog = engine.catalog.lock();
    let mut tables = serde_json::Map::new();
    for (db_name, database) in &catalog.databases {
        for (table_name, table) in &database.tables {
            let mut entry = serde_json::to_value(&table.stats).unwrap_or_default();
            entry["rows"] = json!(table.rows.len());
            tables.insert(format!("{db_name}.{table_name}"), entry);
        }
    }
    json!({ "global": global, "tables": tables })
}

fn ok_json(value: serde_json::Value) -> HttpResponse {
    respond(StatusCode::OK, "application/json", value.to_string())
}

fn bad_request(message: String) -> HttpResponse {
    respond(
        StatusCode::BAD_REQUEST,
        "application/json",
        json!({ "ok": false, "error": message }).to_string(),
    )
}

/// Handle `/_emulator/...`.
pub async fn handle(engine: Arc<Engine>, req: Request<Incoming>) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return bad_request("could not read body".into()),
    };
    match (method, path.as_str()) {
        (Method::POST, "/_emulator/faults") => {
            let rules: Vec<FaultRule> = match serde_json::from_slice::<FaultRule>(&body) {
                Ok(rule) => vec![rule],
                Err(_) => match serde_json::from_slice(&body) {
                    Ok(rules) => rules,
                    Err(e) => return bad_request(format!("invalid fault rule: {e}")),
                },
            };
            let count = rules.len();
            let mut faults = engine.faults.lock();
            for rule in rules {
                faults.push(rule);
            }
            ok_json(json!({ "ok": true, "queued": count }))
        }
        (Method::GET, "/_emulator/faults") => ok_json(json!(engine.faults.lock().list())),
        (Method::DELETE, "/_emulator/faults") => {
            engine.faults.lock().clear();
            ok_json(json!({ "ok": true }))
        }
        (Method::POST, "/_emulator/restart") => {
            engine.restart();
            ok_json(json!({ "ok": true }))
        }
        (Method::GET, "/_emulator/stats") => ok_json(stats_json(&engine)),
        (Method::POST, "/_emulator/settings") => {
            match serde_json::from_slice::<SettingsPatch>(&body) {
                Ok(patch) => {
                    apply_settings(&engine, &patch);
                    ok_json(json!({ "ok": true }))
                }
                Err(e) => bad_request(format!("invalid settings: {e}")),
            }
        }
        (Method::POST, "/_emulator/labels/clean") => {
            engine.clean_labels();
            ok_json(json!({ "ok": true }))
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "Not Found"),
    }
}
