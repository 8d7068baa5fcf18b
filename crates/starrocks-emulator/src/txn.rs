//! Stream Load transaction API (spec §5). Not implemented yet: every operation answers
//! `Status: INTERNAL_ERROR` with a message saying so.

use hyper::body::Incoming;
use hyper::Request;

use crate::engine::Engine;
use crate::http::{json_ok, ConnInfo, DropConnection, HttpResponse};
use crate::response::compact_object;

/// One open transaction.
#[derive(Debug)]
pub struct TxnSession {}

fn not_supported(op: &str) -> HttpResponse {
    json_ok(compact_object(&[
        ("Status", serde_json::Value::from("INTERNAL_ERROR")),
        (
            "Message",
            serde_json::Value::from(format!("emulator: transaction op {op} not implemented")),
        ),
    ]))
}

/// FE side of `/api/transaction/{op}`.
pub fn fe_route(
    _engine: &Engine,
    _info: &ConnInfo,
    _req: &Request<Incoming>,
    op: &str,
) -> HttpResponse {
    not_supported(op)
}

/// BE side of `/api/transaction/{op}`.
pub async fn be_handle(
    _engine: &Engine,
    _info: &ConnInfo,
    _req: Request<Incoming>,
    op: &str,
) -> Result<HttpResponse, DropConnection> {
    Ok(not_supported(op))
}
