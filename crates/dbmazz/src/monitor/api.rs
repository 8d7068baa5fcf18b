//! A tiny client of dbmazz's own HTTP API: `GET /status` into [`ApiStatus`], `POST /pause` and
//! `POST /resume`. One short HTTP/1.1 connection per request (the API is local and answers in
//! microseconds; pooling would only add state to get wrong).
//!
//! [`ApiStatus`] mirrors the `/status` document (docs/http-api.md) for reading. Every field has
//! a default, so a monitor of one version still shows what it can of another version's API.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::ops::SnapshotAnswer;

/// Whole request: connect, send, read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The replicator plans a snapshot (catalog queries) before it answers.
const SNAPSHOT_REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// /status of a pipeline with thousands of tables stays far below this.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "{url:?} is not an HTTP API address — use http://host:port, e.g. http://127.0.0.1:9808"
    )]
    BadUrl { url: String },
    #[error(
        "cannot reach the dbmazz HTTP API at {url}: {source} — is `dbmazz run` running? \
         is http.listen ({address}) right?"
    )]
    Unreachable {
        url: String,
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the dbmazz HTTP API at {url} did not answer within {timeout:?} — is the process \
         stuck or the address another service?"
    )]
    Timeout { url: String, timeout: Duration },
    #[error("HTTP error talking to {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{url} answered {code}: {body}")]
    Status {
        url: String,
        code: u16,
        body: String,
    },
    #[error("{url} did not answer a /status document: {source} — is this address a dbmazz?")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The base address of a dbmazz HTTP API, e.g. `http://127.0.0.1:9808`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl {
    host: String,
    port: u16,
}

impl ApiUrl {
    /// Parses `http://host:port`, `host:port` (or `http://host`, port 80). A wildcard listen
    /// address (`0.0.0.0`, `[::]`) means "this machine": it is reached on loopback.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::BadUrl {
            url: text.to_string(),
        };
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let uri: Uri = with_scheme.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("http") {
            return Err(bad());
        }
        let host = uri.host().filter(|host| !host.is_empty()).ok_or_else(bad)?;
        let host = match host {
            "0.0.0.0" => "127.0.0.1",
            "[::]" => "[::1]",
            other => other,
        };
        Ok(ApiUrl {
            host: host.to_string(),
            port: uri.port_u16().unwrap_or(80),
        })
    }

    /// The address to connect to, `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address())
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<ApiStatus, ApiError> {
        let body = self.request(Method::GET, "/status").await?;
        serde_json::from_slice(&body).map_err(|source| ApiError::Json {
            url: self.url("/status"),
            source,
        })
    }

    /// `GET /status`, the document as sent.
    pub async fn status_text(&self) -> Result<String, ApiError> {
        let body = self.request(Method::GET, "/status").await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `POST /pause` (true) or `POST /resume` (false).
    pub async fn set_paused(&self, paused: bool) -> Result<(), ApiError> {
        let path = if paused { "/pause" } else { "/resume" };
        self.request(Method::POST, path).await.map(drop)
    }

    /// `POST /snapshot?table=`: the answer to a request to snapshot one table while the
    /// stream runs (refusals included; `Err` only when there was no answer).
    pub async fn request_snapshot(
        &self,
        table: &str,
        replace: bool,
    ) -> Result<SnapshotAnswer, ApiError> {
        let mut path = format!("/snapshot?table={}", crate::ops::percent_encode(table));
        if replace {
            path.push_str("&replace=true");
        }
        let parse = |body: &[u8]| serde_json::from_slice::<SnapshotAnswer>(body);
        match self
            .request_within(Method::POST, &path, SNAPSHOT_REQUEST_TIMEOUT)
            .await
        {
            Ok(body) => parse(&body).map_err(|source| ApiError::Json {
                url: self.url(&path),
                source,
            }),
            Err(ApiError::Status { body, url, code }) => match parse(body.as_bytes()) {
                Ok(answer) => Ok(answer),
                Err(_) => Err(ApiError::Status { url, code, body }),
            },
            Err(error) => Err(error),
        }
    }

    async fn request(&self, method: Method, path: &str) -> Result<Bytes, ApiError> {
        self.request_within(method, path, REQUEST_TIMEOUT).await
    }

    async fn request_within(
        &self,
        method: Method,
        path: &str,
        timeout: Duration,
    ) -> Result<Bytes, ApiError> {
        let url = self.url(path);
        match tokio::time::timeout(timeout, self.exchange(method, path, &url)).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::Timeout { url, timeout }),
        }
    }

    async fn exchange(&self, method: Method, path: &str, url: &str) -> Result<Bytes, ApiError> {
        let address = self.address();
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|source| ApiError::Unreachable {
                url: url.to_string(),
                address: address.clone(),
                source,
            })?;
        let http_error = |source| ApiError::Http {
            url: url.to_string(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_error)?;
        let connection = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &address)
            .body(Empty::<Bytes>::new())
            .map_err(|_| ApiError::BadUrl {
                url: url.to_string(),
            })?;
        let response = sender.send_request(request).await.map_err(http_error)?;
        let code = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        connection.abort();
        if !(200..300).contains(&code) {
            return Err(ApiError::Status {
                url: url.to_string(),
                code,
                body: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        Ok(body)
    }
}

impl std::fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.address())
    }
}

/// `/status`, as read by the monitor and `dbmazz status`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiStatus {
    pub version: String,
    pub state: String,
    pub started_at: String,
    pub uptime_seconds: f64,
    pub source: ApiSource,
    pub sink: String,
    pub lsn: ApiLsn,
    pub lag: ApiLag,
    pub slot: ApiSlot,
    pub pipeline: ApiPipeline,
    pub tables: Vec<ApiTable>,
    pub last_error: Option<ApiLastError>,
    pub snapshot: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiSource {
    pub database: String,
    pub publication: String,
    pub slot: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiLsn {
    pub received: String,
    pub durable: String,
    pub start: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiLag {
    pub seconds: f64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiSlot {
    pub confirmed_flush_lsn: Option<String>,
    pub restart_lsn: Option<String>,
    pub server_wal_lsn: Option<String>,
    pub retained_wal_bytes: Option<u64>,
    pub wal_status: Option<String>,
    pub active: Option<bool>,
    pub checked_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiPipeline {
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub reading: bool,
    pub loads_in_flight: u64,
    pub transactions: u64,
    pub changes: u64,
    pub spilled_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiTable {
    pub table: String,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub truncates: u64,
    pub loads: u64,
    pub bytes_loaded: u64,
    pub durable_lsn: Option<String>,
    pub last_load_at: Option<String>,
    pub pending_ops: u64,
}

impl ApiTable {
    /// Row changes made durable (inserts + updates + deletes).
    pub fn rows_replicated(&self) -> u64 {
        self.inserts + self.updates + self.deletes
    }
}

/// `last_error` of /status.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiLastError {
    pub at: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_the_forms_people_type() {
        let url = ApiUrl::parse("http://127.0.0.1:9808").unwrap();
        assert_eq!(url.address(), "127.0.0.1:9808");
        assert_eq!(url.url("/status"), "http://127.0.0.1:9808/status");
        assert_eq!(
            ApiUrl::parse("localhost:9900").unwrap().address(),
            "localhost:9900"
        );
        // A wildcard listen address from the config is reached on loopback.
        assert_eq!(
            ApiUrl::parse("0.0.0.0:9808").unwrap().address(),
            "127.0.0.1:9808"
        );
        assert!(ApiUrl::parse("https://x:1").is_err());
        assert!(ApiUrl::parse("http://").is_err());
    }

    #[test]
    fn the_documented_status_example_parses() {
        let text = include_str!("../../../../docs/http-api.md");
        let start = text.find("```json\n").unwrap() + "```json\n".len();
        let end = start + text[start..].find("```").unwrap();
        let status: ApiStatus = serde_json::from_str(&text[start..end]).unwrap();
        assert_eq!(status.state, "streaming");
        assert_eq!(status.tables[0].table, "public.orders");
        assert_eq!(status.tables[0].rows_replicated(), 4810);
        assert_eq!(status.slot.retained_wal_bytes, Some(968));
        assert_eq!(status.pipeline.memory_limit_bytes, 33_554_432);
    }

    #[test]
    fn missing_and_unknown_fields_are_tolerated() {
        let status: ApiStatus =
            serde_json::from_str(r#"{"state":"paused","future_field":1}"#).unwrap();
        assert_eq!(status.state, "paused");
        assert!(status.tables.is_empty());
    }
}
