//! The HTTP API on `[http] listen` (hyper 1, HTTP/1.1): read-only views of [`Telemetry`] and
//! the pause switch. Each connection is its own task; nothing here blocks the pipeline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{metrics, Telemetry};

#[derive(Debug, thiserror::Error)]
#[error(
    "http.listen: cannot listen on {address}: {source} — pick a free address (e.g. \
     127.0.0.1:9809) or stop the process using it"
)]
pub struct ServeError {
    pub address: String,
    #[source]
    pub source: std::io::Error,
}

/// The running server; stops when dropped.
pub struct HttpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `address` now (so a busy port is reported at start-up) and serves in the background.
pub async fn serve(address: &str, telemetry: Arc<Telemetry>) -> Result<HttpServer, ServeError> {
    let error = |source| ServeError {
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(error)?;
    let local_addr = listener.local_addr().map_err(error)?;
    let task = tokio::spawn(accept_loop(listener, telemetry));
    tracing::info!(address = %local_addr, "HTTP API listening (/status, /metrics, /healthz, /readyz)");
    Ok(HttpServer { local_addr, task })
}

async fn accept_loop(listener: TcpListener, telemetry: Arc<Telemetry>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(%error, "HTTP API: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let telemetry = Arc::clone(&telemetry);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let telemetry = Arc::clone(&telemetry);
                async move { Ok::<_, Infallible>(route(&request, &telemetry).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(request: &Request<Incoming>, telemetry: &Telemetry) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET | &Method::HEAD, "/readyz") => {
            if telemetry.is_ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                let state = serde_json::to_string(&telemetry.state()).unwrap_or_default();
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("not ready: {state}\n"),
                )
            }
        }
        (&Method::GET | &Method::HEAD, "/status") => {
            match serde_json::to_vec_pretty(&telemetry.status()) {
                Ok(body) => respond(StatusCode::OK, "application/json", body),
                Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
            }
        }
        (&Method::GET | &Method::HEAD, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics().render().into_bytes(),
        ),
        (&Method::POST, "/pause") => {
            telemetry.set_paused(true);
            tracing::info!("paused through the HTTP API");
            text(StatusCode::OK, "paused\n")
        }
        (&Method::POST, "/resume") => {
            telemetry.set_paused(false);
            tracing::info!("resumed through the HTTP API");
            text(StatusCode::OK, "resumed\n")
        }
        (&Method::POST, "/snapshot") => {
            let query = request.uri().query().unwrap_or("");
            let answer = match super::parse_snapshot_query(query) {
                Ok((table, replace)) => {
                    let answer = telemetry.request_snapshot(table, replace).await;
                    tracing::info!(answer = %answer.message(), "snapshot requested through the HTTP API");
                    answer
                }
                Err(message) => super::SnapshotAnswer::BadRequest { message },
            };
            let status = StatusCode::from_u16(answer.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match serde_json::to_vec(&answer) {
                Ok(mut body) => {
                    body.push(b'\n');
                    respond(status, "application/json", body)
                }
                Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
            }
        }
        (
            _,
            "/healthz" | "/readyz" | "/status" | "/metrics" | "/pause" | "/resume" | "/snapshot",
        ) => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /status, /metrics, /healthz, /readyz, POST /pause, POST /resume, \
             POST /snapshot?table=[&replace=true]\n",
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
