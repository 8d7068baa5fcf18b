//! The Stream Load HTTP client: one `PUT /api/{db}/{table}/_stream_load`, answered by a typed
//! [`StreamLoadResponse`], and `get_load_state` for the outcome logic.
//!
//! # Why this is not a generic HTTP client call
//! * **The 307.** The FE checks auth and headers, then answers `307` to a BE *without reading
//!   the body* (spec §1.3). The client follows it itself, resending the same method, headers and
//!   body — **including `Authorization`**: generic clients drop credentials when a redirect
//!   changes the port, and FE:8030 → BE:8040 always does. At most `max_redirects` hops.
//! * **`Expect: 100-continue`.** A BE refuses most bad loads (unknown table, auth, label taken,
//!   busy) in its header phase, before reading any body byte, and then never sends `100
//!   Continue` (spec §1.4). hyper's client streams the body right after the head without
//!   waiting (hyperium/hyper#3833), which would push up to a whole batch into a socket the
//!   server is about to close. So the body is *held*: [`HeldBody`] yields nothing until
//!   `hyper::ext::on_informational` sees the `100`, or until `expect_continue_timeout` passes
//!   without any answer (curl does the same: a server that ignores `Expect` still gets the
//!   body). If a final answer arrives first, the held body is aborted and never sent; that
//!   connection is then discarded, not pooled.
//! * **Keep-alive.** BE connections are pooled by hyper-util's client; the FE closes after
//!   every `_stream_load` answer anyway.
//!
//! Never trust HTTP 200 alone: the outcome is the body's `Status` (see `response.rs`).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::body::{BodyError, LoadBody, Pieces};
use super::response::{
    excerpt, rest_message, LabelStateAnswer, ParseError, StreamLoadResponse, TxnAnswer,
};
use super::waiting::answered_within;

/// Where loads are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadVia {
    /// To the FE, which redirects to a BE (default).
    Fe,
    /// Straight to these BE HTTP addresses (`http://host:8040`), round robin.
    Be(Vec<String>),
}

/// Connection settings of the client.
#[derive(Debug, Clone)]
pub struct StreamLoadConfig {
    /// FE HTTP base URL, `http://host:8030`.
    pub fe_http: String,
    pub user: String,
    pub password: String,
    pub load_via: LoadVia,
    /// Gzip the body (`compression: gzip`); off by default (support varies by release).
    pub gzip: bool,
    /// How long to hold the body waiting for `100 Continue` before sending it anyway.
    pub expect_continue_timeout: Duration,
    /// Whole request (all redirects, body, answer); past it the outcome is unknown.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// While a request waits for its answer, a warning every so often (30 s).
    pub warn_unanswered_every: Duration,
    pub max_redirects: usize,
    /// Headers sent with every load unless the request sets the same name.
    pub default_headers: Vec<(String, String)>,
}

impl StreamLoadConfig {
    /// Defaults for everything but the address and credentials. Strict by default: one value
    /// StarRocks would NULL or drop fails the load (DESIGN §3).
    pub fn new(
        fe_http: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        StreamLoadConfig {
            fe_http: fe_http.into(),
            user: user.into(),
            password: password.into(),
            load_via: LoadVia::Fe,
            gzip: false,
            expect_continue_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(660),
            connect_timeout: Duration::from_secs(10),
            warn_unanswered_every: Duration::from_secs(30),
            max_redirects: 3,
            default_headers: vec![
                ("strict_mode".into(), "true".into()),
                ("max_filter_ratio".into(), "0".into()),
            ],
        }
    }
}

/// One load: where, under which label, and what.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub db: String,
    pub table: String,
    pub label: String,
    /// The JSON array of rows (`strip_outer_array: true`).
    pub body: LoadBody,
    /// Extra headers: `columns`, `partial_update`, `merge_condition`, `timeout`, ...
    pub headers: Vec<(String, String)>,
    /// What the label already committed in StarRocks means (an earlier run's load).
    pub label_taken: super::LabelTaken,
}

/// A request that did not produce a Stream Load answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Could not connect: nothing was sent.
    #[error("cannot connect to {url}: {}", causes(.source))]
    Connect {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The connection broke after the request started (reset mid-body, dropped answer).
    #[error("connection to {url} failed before an answer: {}", causes(.source))]
    Transport {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No answer within the request timeout.
    #[error("no answer from {url} within {after:?}")]
    Timeout { url: String, after: Duration },
    /// HTTP 401 (FE authentication).
    #[error("StarRocks refused the credentials at {url}: {message}")]
    Unauthorized { url: String, message: String },
    /// A status that carries no Stream Load result (5xx, 404, ...).
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    /// A 200 whose body is not the expected JSON.
    #[error("unreadable answer from {url}")]
    Body {
        url: String,
        #[source]
        source: ParseError,
    },
    /// The body could not be produced (a row that cannot be encoded): retrying cannot help,
    /// and the unterminated body cannot have been taken as complete.
    #[error("{source} (while sending to {url})")]
    Encode {
        url: String,
        #[source]
        source: BodyError,
    },
    /// Redirect loop, or a redirect without a usable `Location`.
    #[error("bad redirect from {url}: {reason}")]
    Redirect { url: String, reason: String },
    /// The configuration or request cannot form a valid HTTP request.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// The error and its causes: hyper's own text ("client error (Connect)") says nothing without
/// them ("Connection refused"), and these lines are what an operator reads during an outage.
fn causes(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut current: &dyn std::error::Error = error;
    while let Some(source) = current.source() {
        text.push_str(": ");
        text.push_str(&source.to_string());
        current = source;
    }
    text
}

impl RequestError {
    /// The request may have reached StarRocks and its effect is unknown: resolve by label.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            RequestError::Transport { .. }
            | RequestError::Timeout { .. }
            | RequestError::Body { .. } => true,
            RequestError::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }

    /// Retrying cannot help (credentials, configuration, redirect loop).
    pub fn is_permanent(&self) -> bool {
        match self {
            RequestError::Unauthorized { .. }
            | RequestError::Redirect { .. }
            | RequestError::Encode { .. }
            | RequestError::Invalid(_) => true,
            RequestError::Status { status, .. } => status.is_client_error(),
            _ => false,
        }
    }
}

/// At most this much answer body is read.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The Stream Load client. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct StreamLoadClient {
    http: Client<HttpConnector, HeldBody>,
    config: Arc<StreamLoadConfig>,
    authorization: HeaderValue,
    next_be: Arc<AtomicUsize>,
}

impl std::fmt::Debug for StreamLoadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLoadClient")
            .field("fe_http", &self.config.fe_http)
            .field("load_via", &self.config.load_via)
            .finish_non_exhaustive()
    }
}

/// Whether `base` is an address Stream Load URLs can be built on: `http://host[:port]`, no
/// path, no credentials. The error says what is wrong and what to write instead.
pub fn check_http_base(base: &str) -> Result<(), String> {
    // Messages show the address without a password someone put in it.
    let shown = without_credentials(base);
    if base.starts_with("https://") {
        return Err(format!(
            "{shown:?}: TLS is not supported for Stream Load yet; use the FE's http:// address \
             (port 8030 by default)"
        ));
    }
    let Some(rest) = base.strip_prefix("http://") else {
        return Err(format!(
            "{shown:?} is not an http:// URL; write e.g. \"http://127.0.0.1:8030\""
        ));
    };
    let uri = base.parse::<Uri>().map_err(|_| {
        let hint = if rest.matches(':').count() > 1 && !rest.starts_with('[') {
            "; put an IPv6 address in brackets, e.g. \"http://[::1]:8030\""
        } else {
            ""
        };
        format!("{shown:?} is not a valid URL{hint}")
    })?;
    if uri
        .authority()
        .is_some_and(|authority| authority.as_str().contains('@'))
    {
        return Err(format!(
            "{shown:?} holds credentials; give the address alone and the user and password in \
             sink.starrocks.user and sink.starrocks.password"
        ));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} names no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{shown:?} has a path; give only http://host:port (dbmazz adds /api/<db>/<table>/_stream_load)"
        ));
    }
    Ok(())
}

/// `base` with what precedes an `@` in its authority replaced by `***`.
fn without_credentials(base: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => base.to_string(),
    }
}

impl StreamLoadClient {
    /// Build the client (no I/O). Only `http://` addresses are supported.
    pub fn new(config: StreamLoadConfig) -> Result<StreamLoadClient, RequestError> {
        let mut bases = vec![config.fe_http.as_str()];
        if let LoadVia::Be(addresses) = &config.load_via {
            if addresses.is_empty() {
                return Err(RequestError::Invalid(
                    "load_via = \"be\" needs BE addresses".into(),
                ));
            }
            bases.extend(addresses.iter().map(String::as_str));
        }
        for base in bases {
            check_http_base(base).map_err(RequestError::Invalid)?;
        }
        let credentials = format!("{}:{}", config.user, config.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let mut authorization = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|e| RequestError::Invalid(format!("credentials: {e}")))?;
        authorization.set_sensitive(true);
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(StreamLoadClient {
            http,
            config: Arc::new(config),
            authorization,
            next_be: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &StreamLoadConfig {
        &self.config
    }

    /// Send one Stream Load (following the FE's 307) and parse its answer.
    pub async fn send(&self, request: &LoadRequest) -> Result<StreamLoadResponse, RequestError> {
        let base = match &self.config.load_via {
            LoadVia::Fe => self.config.fe_http.as_str(),
            LoadVia::Be(addresses) => {
                let i = self.next_be.fetch_add(1, Ordering::Relaxed) % addresses.len();
                addresses[i].as_str()
            }
        };
        let url = format!(
            "{}/api/{}/{}/_stream_load",
            base.trim_end_matches('/'),
            encode_segment(&request.db),
            encode_segment(&request.table)
        );
        let headers = self.load_headers(request)?;
        let what = format!(
            "stream load {}.{} label {}",
            request.db, request.table, request.label
        );
        let (url, status, bytes) = answered_within(
            &url,
            &what,
            self.config.request_timeout,
            self.config.warn_unanswered_every,
            self.put_following(url.clone(), headers, &request.body, self.config.gzip),
        )
        .await?;
        final_answer(url, status, &bytes, StreamLoadResponse::parse)
    }

    /// `GET /api/{db}/get_load_state?label=` on the FE (spec §10.4).
    pub async fn get_load_state(
        &self,
        db: &str,
        label: &str,
    ) -> Result<LabelStateAnswer, RequestError> {
        let url = format!(
            "{}/api/{}/get_load_state?label={}",
            self.config.fe_http.trim_end_matches('/'),
            encode_segment(db),
            encode_segment(label)
        );
        let timeout = self.config.connect_timeout + Duration::from_secs(20);
        let headers = vec![(http::header::AUTHORIZATION, self.authorization.clone())];
        let (url, status, bytes) = tokio::time::timeout(
            timeout,
            self.send_following(Method::GET, url.clone(), headers),
        )
        .await
        .map_err(|_| RequestError::Timeout {
            url,
            after: timeout,
        })??;
        final_answer(url, status, &bytes, LabelStateAnswer::parse)
    }

    /// One call of the transaction API (spec §5): `POST /api/transaction/{begin,prepare,commit,
    /// rollback}` or, with `body`, `PUT /api/transaction/load` — always to the FE, which routes
    /// each call to the BE holding the transaction (307, followed with credentials).
    pub async fn transaction(
        &self,
        op: &str,
        request: &LoadRequest,
        with_body: bool,
    ) -> Result<TxnAnswer, RequestError> {
        let url = format!(
            "{}/api/transaction/{op}",
            self.config.fe_http.trim_end_matches('/')
        );
        let mut headers = if with_body {
            self.load_headers(request)?
        } else {
            vec![
                (
                    HeaderName::from_static("label"),
                    header_value("label", &request.label)?,
                ),
                (http::header::AUTHORIZATION, self.authorization.clone()),
            ]
        };
        headers.push((
            HeaderName::from_static("db"),
            header_value("db", &request.db)?,
        ));
        headers.push((
            HeaderName::from_static("table"),
            header_value("table", &request.table)?,
        ));
        let exchange = async {
            if with_body {
                self.put_following(url.clone(), headers, &request.body, false)
                    .await
            } else {
                self.send_following(Method::POST, url.clone(), headers)
                    .await
            }
        };
        let what = format!("transaction {op} label {}", request.label);
        let (url, status, bytes) = answered_within(
            &url,
            &what,
            self.config.request_timeout,
            self.config.warn_unanswered_every,
            exchange,
        )
        .await?;
        final_answer(url, status, &bytes, TxnAnswer::parse)
    }

    /// A request without a body to `url`, following redirects with the same headers.
    pub(super) async fn send_following(
        &self,
        method: Method,
        mut url: String,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<(String, StatusCode, Bytes), RequestError> {
        for _ in 0..=self.config.max_redirects {
            let mut req = Request::builder()
                .method(method.clone())
                .uri(&url)
                .body(HeldBody::empty())
                .map_err(|e| RequestError::Invalid(format!("{url}: {e}")))?;
            for (name, value) in &headers {
                req.headers_mut().append(name.clone(), value.clone());
            }
            let (status, location, bytes) = self.exchange(&url, req, None).await?;
            if status.is_redirection() {
                url = redirect_target(&url, location)?;
                continue;
            }
            return Ok((url, status, bytes));
        }
        Err(RequestError::Redirect {
            url,
            reason: format!("more than {} redirects", self.config.max_redirects),
        })
    }

    fn load_headers(
        &self,
        request: &LoadRequest,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, RequestError> {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("expect", "100-continue"),
            ("label", &request.label),
            ("format", "json"),
            ("strip_outer_array", "true"),
        ];
        if self.config.gzip {
            pairs.push(("compression", "gzip"));
        }
        let given = |name: &str| {
            request
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        for (name, value) in &self.config.default_headers {
            if !given(name) {
                pairs.push((name, value));
            }
        }
        for (name, value) in &request.headers {
            pairs.push((name, value));
        }
        let mut headers = Vec::with_capacity(pairs.len() + 1);
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| RequestError::Invalid(format!("header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| RequestError::Invalid(format!("header {name}: {e}")))?;
            headers.push((name, value));
        }
        headers.push((http::header::AUTHORIZATION, self.authorization.clone()));
        Ok(headers)
    }

    /// PUT to `url`, following redirects with the same headers (credentials included) and body.
    async fn put_following(
        &self,
        mut url: String,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: &LoadBody,
        gzip: bool,
    ) -> Result<(String, StatusCode, Bytes), RequestError> {
        for _ in 0..=self.config.max_redirects {
            let gate = Arc::new(ContinueGate::default());
            // Every hop sends the body from its start.
            let pieces = body.pieces(gzip).map_err(|error| RequestError::Encode {
                url: url.clone(),
                source: error,
            })?;
            let len = if gzip { None } else { body.known_len() };
            let mut req = Request::builder()
                .method(Method::PUT)
                .uri(&url)
                .body(HeldBody::held(
                    pieces,
                    len,
                    gate.clone(),
                    self.config.expect_continue_timeout,
                ))
                .map_err(|e| RequestError::Invalid(format!("{url}: {e}")))?;
            for (name, value) in &headers {
                req.headers_mut().append(name.clone(), value.clone());
            }
            let on_continue = gate.clone();
            hyper::ext::on_informational(&mut req, move |res| {
                if res.status() == StatusCode::CONTINUE {
                    on_continue.release();
                }
            });
            let (status, location, bytes) = self.exchange(&url, req, Some(&gate)).await?;
            if status.is_redirection() {
                url = redirect_target(&url, location)?;
                continue;
            }
            return Ok((url, status, bytes));
        }
        Err(RequestError::Redirect {
            url,
            reason: format!("more than {} redirects", self.config.max_redirects),
        })
    }

    /// One request/answer. A final answer that arrives while the body is still held aborts
    /// the body: it is never sent (after the answer's own body was read).
    async fn exchange(
        &self,
        url: &str,
        req: Request<HeldBody>,
        gate: Option<&ContinueGate>,
    ) -> Result<(StatusCode, Option<HeaderValue>, Bytes), RequestError> {
        let result = self.http.request(req).await;
        let response = match result {
            Ok(response) => response,
            Err(source) => {
                if let Some(gate) = gate {
                    gate.abort();
                }
                let url = url.to_string();
                if let Some(error) = body_error(&source) {
                    return Err(RequestError::Encode { url, source: error });
                }
                return Err(if source.is_connect() {
                    RequestError::Connect { url, source }
                } else {
                    RequestError::Transport { url, source }
                });
            }
        };
        let status = response.status();
        let location = response.headers().get(http::header::LOCATION).cloned();
        let collected = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await;
        if let Some(gate) = gate {
            gate.abort();
        }
        let bytes = collected
            .map_err(|e| RequestError::Status {
                url: url.to_string(),
                status,
                body: format!("answer body unreadable: {e}"),
            })?
            .to_bytes();
        Ok((status, location, bytes))
    }
}

/// A final answer: 401 → credentials, 2xx → the parsed body, anything else → its status.
pub(super) fn final_answer<T>(
    url: String,
    status: StatusCode,
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
) -> Result<T, RequestError> {
    match status {
        StatusCode::UNAUTHORIZED => Err(RequestError::Unauthorized {
            url,
            message: rest_message(bytes),
        }),
        s if s.is_success() => parse(bytes).map_err(|source| RequestError::Body { url, source }),
        status => Err(RequestError::Status {
            url,
            status,
            body: excerpt(bytes),
        }),
    }
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, RequestError> {
    HeaderValue::from_str(value).map_err(|e| RequestError::Invalid(format!("header {name}: {e}")))
}

/// Resolve a `Location` against the URL that answered it.
fn redirect_target(current: &str, location: Option<HeaderValue>) -> Result<String, RequestError> {
    let redirect_error = |reason: &str| RequestError::Redirect {
        url: current.to_string(),
        reason: reason.to_string(),
    };
    let location = location.ok_or_else(|| redirect_error("no Location header"))?;
    let location = location
        .to_str()
        .map_err(|_| redirect_error("Location is not text"))?;
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    if !location.starts_with('/') {
        return Err(redirect_error("relative Location without a leading /"));
    }
    let uri: Uri = current
        .parse()
        .map_err(|_| redirect_error("bad current URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(redirect_error("current URL has no host"));
    };
    Ok(format!("{scheme}://{authority}{location}"))
}

/// Percent-encode one path segment or query value (identifiers and labels are usually plain).
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Our own body's failure (an encoding error), when that is what broke the request.
fn body_error(error: &(dyn std::error::Error + 'static)) -> Option<BodyError> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(body) = error.downcast_ref::<BodyError>() {
            return (!matches!(body, BodyError::Withheld)).then(|| body.clone());
        }
        current = error.source();
    }
    None
}

/// Shared between [`HeldBody`] and the `100 Continue` callback.
#[derive(Debug, Default)]
pub(crate) struct ContinueGate {
    inner: Mutex<GateInner>,
}

#[derive(Debug, Default)]
struct GateInner {
    state: GateState,
    waker: Option<Waker>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum GateState {
    #[default]
    Held,
    Released,
    Aborted,
}

impl ContinueGate {
    fn set(&self, from_held_to: GateState) {
        let waker = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.state != GateState::Held {
                return;
            }
            inner.state = from_held_to;
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// `100 Continue` arrived (or the wait timed out): send the body.
    fn release(&self) {
        self.set(GateState::Released);
    }

    /// A final answer arrived first: never send the body.
    fn abort(&self) {
        self.set(GateState::Aborted);
    }

    fn poll(&self, cx: &mut Context<'_>) -> GateState {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.state == GateState::Held {
            inner.waker = Some(cx.waker().clone());
        }
        inner.state
    }
}

/// A request body whose frames wait for its [`ContinueGate`].
pub(crate) struct HeldBody {
    pieces: Option<Pieces>,
    len: Option<u64>,
    gate: Option<Arc<ContinueGate>>,
    wait: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl HeldBody {
    fn empty() -> HeldBody {
        HeldBody {
            pieces: None,
            len: Some(0),
            gate: None,
            wait: Duration::ZERO,
            timer: None,
        }
    }

    fn held(pieces: Pieces, len: Option<u64>, gate: Arc<ContinueGate>, wait: Duration) -> HeldBody {
        HeldBody {
            len,
            pieces: (len != Some(0)).then_some(pieces),
            gate: Some(gate),
            wait,
            timer: None,
        }
    }
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.pieces.is_none() {
            return Poll::Ready(None);
        }
        if let Some(gate) = &this.gate {
            match gate.poll(cx) {
                GateState::Aborted => {
                    this.pieces = None;
                    return Poll::Ready(Some(Err(BodyError::Withheld)));
                }
                GateState::Released => {}
                GateState::Held => {
                    // First poll ≈ the head was written: start the wait now.
                    let wait = this.wait;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    tracing::debug!(wait = ?wait, "no 100 Continue in time, sending the body anyway");
                    gate.release();
                }
            }
        }
        let Some(pieces) = this.pieces.as_mut() else {
            return Poll::Ready(None);
        };
        // Encoding happens here, a piece at a time, as the connection asks for bytes.
        let next = pieces.next_piece();
        if !matches!(next, Some(Ok(_))) {
            this.pieces = None;
        }
        Poll::Ready(next.map(|piece| piece.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown length → `Transfer-Encoding: chunked`.
        self.len
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets() {
        let here = "http://fe:8030/api/d/t/_stream_load";
        let abs = HeaderValue::from_static("http://be:8040/api/d/t/_stream_load");
        assert_eq!(
            redirect_target(here, Some(abs)).ok().as_deref(),
            Some("http://be:8040/api/d/t/_stream_load")
        );
        let rel = HeaderValue::from_static("/api/x/get_load_state?label=l");
        assert_eq!(
            redirect_target(here, Some(rel)).ok().as_deref(),
            Some("http://fe:8030/api/x/get_load_state?label=l")
        );
        assert!(matches!(
            redirect_target(here, None),
            Err(RequestError::Redirect { .. })
        ));
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("orders_2024-x"), "orders_2024-x");
        assert_eq!(encode_segment("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn https_is_refused_up_front() {
        let err = StreamLoadClient::new(StreamLoadConfig::new("https://fe:8030", "root", ""));
        assert!(matches!(err, Err(RequestError::Invalid(_))));
        let mut config = StreamLoadConfig::new("http://fe:8030", "root", "");
        config.load_via = LoadVia::Be(Vec::new());
        assert!(matches!(
            StreamLoadClient::new(config),
            Err(RequestError::Invalid(_))
        ));
    }
}
