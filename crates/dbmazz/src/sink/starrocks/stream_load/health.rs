//! `GET /api/health` on the FE HTTP port: the start-up probe of `sink.starrocks.fe_http`.
//!
//! The FE answers without credentials (`HealthAction` overrides `execute`, so no password
//! check) with HTTP 200 and `{"total_backend_num":N,"online_backend_num":M,"status":"OK"}`,
//! or HTTP 500 with an empty body while it exits gracefully (docs/starrocks-spec.md §1.9).
//! The MySQL port answering says nothing about the HTTP port: without this probe an FE whose
//! HTTP port is wrong or unreachable shows up only as loads retried for the whole retry
//! budget.

use std::time::Duration;

use http::Method;

use super::client::{final_answer, RequestError, StreamLoadClient};
use super::response::ParseError;

/// What the FE says about its cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct FeHealth {
    #[serde(default)]
    pub total_backend_num: Option<u64>,
    #[serde(default)]
    pub online_backend_num: Option<u64>,
}

impl FeHealth {
    fn parse(body: &[u8]) -> Result<FeHealth, ParseError> {
        serde_json::from_slice(body).map_err(|source| ParseError {
            body: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
            source,
        })
    }
}

impl StreamLoadClient {
    /// `GET {fe_http}/api/health`, answered within `timeout` (connecting included).
    pub async fn fe_health(&self, timeout: Duration) -> Result<FeHealth, RequestError> {
        let url = format!("{}/api/health", self.config().fe_http.trim_end_matches('/'));
        let (url, status, bytes) = tokio::time::timeout(
            timeout,
            self.send_following(Method::GET, url.clone(), Vec::new()),
        )
        .await
        .map_err(|_| RequestError::Timeout {
            url,
            after: timeout,
        })??;
        final_answer(url, status, &bytes, FeHealth::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fe_answer_is_read_whatever_the_key_order() {
        let health =
            FeHealth::parse(br#"{"online_backend_num":1,"status":"OK","total_backend_num":3}"#)
                .unwrap();
        assert_eq!(health.online_backend_num, Some(1));
        assert_eq!(health.total_backend_num, Some(3));
        assert!(FeHealth::parse(b"<html>").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_fe_names_the_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = StreamLoadClient::new(super::super::StreamLoadConfig::new(
            format!("http://127.0.0.1:{port}"),
            "root",
            "",
        ))
        .unwrap();
        let error = client.fe_health(Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(error, RequestError::Connect { .. }), "{error:?}");
        // What the retry warning and the start-up error show.
        assert!(error.to_string().contains("Connection refused"), "{error}");
    }

    #[tokio::test]
    async fn a_silent_fe_is_a_timeout() {
        // Connections complete in the kernel's backlog; nobody ever answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = StreamLoadClient::new(super::super::StreamLoadConfig::new(
            format!("http://{}", silent.local_addr().unwrap()),
            "root",
            "",
        ))
        .unwrap();
        let started = std::time::Instant::now();
        let error = client
            .fe_health(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(error, RequestError::Timeout { .. }), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
