//! HTTP plumbing shared by the FE and BE servers: the accept loop, a socket wrapper that lets the
//! BE see body bytes sent before `100 Continue`, Basic auth parsing and small response helpers.

pub mod be;
pub mod control;
pub mod fe;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::engine::Engine;

/// Response type of both servers.
pub type HttpResponse = Response<Full<Bytes>>;

/// Error returned by a service to make hyper drop the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose: {0}")]
pub struct DropConnection(pub &'static str);

/// What the connection has read from the socket, for the early-body check.
#[derive(Debug, Default)]
pub struct ConnTrace {
    /// Bytes read since the last request finished (only while tracing).
    pub bytes: Vec<u8>,
}

/// Per-connection context handed to the service.
#[derive(Clone)]
pub struct ConnInfo {
    /// Peer address.
    pub peer: std::net::SocketAddr,
    /// The socket (for `peek`).
    pub stream: Arc<TcpStream>,
    /// Bytes read, if tracing.
    pub trace: Option<Arc<Mutex<ConnTrace>>>,
}

/// A `TcpStream` shared between hyper and the service, optionally recording what it reads.
struct TracedIo {
    stream: Arc<TcpStream>,
    trace: Option<Arc<Mutex<ConnTrace>>>,
}

const MAX_TRACE_BYTES: usize = 1 << 20;

impl AsyncRead for TracedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    let filled = buf.filled().len();
                    buf.advance(n);
                    if let Some(trace) = &self.trace {
                        let mut trace = trace.lock();
                        if trace.bytes.len() < MAX_TRACE_BYTES {
                            trace
                                .bytes
                                .extend_from_slice(&buf.filled()[filled..filled + n]);
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TracedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = socket2::SockRef::from(self.stream.as_ref()).shutdown(std::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}

/// Which server a listener runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// FE HTTP (8030).
    Fe,
    /// BE HTTP (8040).
    Be,
}

/// Accept connections until `shutdown` fires. Connections are dropped on a simulated restart.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    role: Role,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let mut restarts = engine.restart_signal.subscribe();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let stream = Arc::new(stream);
            let trace = (role == Role::Be && engine.settings.lock().strict_expect_continue)
                .then(|| Arc::new(Mutex::new(ConnTrace::default())));
            let info = ConnInfo {
                peer,
                stream: stream.clone(),
                trace: trace.clone(),
            };
            let io = TokioIo::new(TracedIo { stream, trace });
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let engine = engine.clone();
                let info = info.clone();
                async move {
                    match role {
                        Role::Fe => fe::handle(engine, info, req).await,
                        Role::Be => be::handle(engine, info, req).await,
                    }
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, service);
            tokio::select! {
                _ = conn => {}
                _ = restarts.changed() => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

/// Parse `Authorization: Basic ...` into (user, password); splits at the first `:`.
pub fn basic_auth(req: &Request<Incoming>) -> Option<(String, String)> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A header value as text. The value's bytes are read as UTF-8 (the BE takes libevent's raw
/// bytes), so a non-ASCII value is never mistaken for an absent header; invalid UTF-8 becomes
/// U+FFFD and then fails whatever check the value is subject to.
pub fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A query parameter (percent-decoded).
pub fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Build a response.
pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> HttpResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// A JSON response with status 200.
pub fn json_ok(body: String) -> HttpResponse {
    respond(StatusCode::OK, "application/json; charset=utf-8", body)
}

/// Mark a response `Connection: close`.
pub fn close(mut resp: HttpResponse) -> HttpResponse {
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    resp
}

/// Split `/api/{db}/{table}/_stream_load` into percent-decoded parts.
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// 307 to the BE with the original path and query, no body, no credentials (spec §1.3).
pub fn fe_redirect(engine: &Engine, req: &Request<Incoming>) -> HttpResponse {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let location = format!("http://{}{}", engine.be_host_port.lock(), path_and_query);
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(v) = location.parse() {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    resp
}
