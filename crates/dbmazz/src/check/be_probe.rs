//! Can dbmazz reach the BE the FE sends Stream Loads to?
//!
//! With `load_via = "fe"` every load is answered by the FE with a 307 to a BE's *registered*
//! address (spec §1.3). When that address is not reachable from dbmazz — the all-in-one
//! container registers its BE as 127.0.0.1, NAT, a private network — the FE check passes and
//! every load fails. So the probe asks the FE for a redirect exactly as a load would (PUT with
//! `Expect: 100-continue` and an empty body: the FE answers before any body, and nothing is
//! loaded because the BE is never contacted over HTTP), then opens a TCP connection to the
//! `Location`'s host and port.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::StarRocksConfig;

use super::CheckLine;

/// Connecting to the FE or the BE may take this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much of an error answer is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

const SUBJECT: &str = "StarRocks BE via FE redirect";

/// Probes with `table` (a table dbmazz will load).
pub(super) async fn be_via_fe_line(starrocks: &StarRocksConfig, table: &str) -> CheckLine {
    let url = format!(
        "{}/api/{}/{}/_stream_load",
        starrocks.fe_http.trim_end_matches('/'),
        encode_segment(&starrocks.database),
        encode_segment(table)
    );
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", starrocks.user, starrocks.password));
    let request = Request::builder()
        .method(Method::PUT)
        .uri(&url)
        .header(http::header::AUTHORIZATION, format!("Basic {credentials}"))
        .header(http::header::EXPECT, "100-continue")
        .header(http::header::CONTENT_LENGTH, "0")
        .header("format", "json")
        .body(Empty::<Bytes>::new());
    let request = match request {
        Ok(request) => request,
        Err(error) => {
            return CheckLine::fail(
                SUBJECT,
                format!("cannot build a request to {url}: {error}"),
                "check sink.starrocks.fe_http",
            )
        }
    };
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(PROBE_TIMEOUT));
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = match tokio::time::timeout(PROBE_TIMEOUT, client.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            return CheckLine::fail(
                SUBJECT,
                format!("no answer from {url}: {error}"),
                "check sink.starrocks.fe_http and that the FE is up",
            )
        }
        Err(_) => {
            return CheckLine::fail(
                SUBJECT,
                format!("no answer from {url} within {PROBE_TIMEOUT:?}"),
                "check sink.starrocks.fe_http and that the FE is up",
            )
        }
    };
    let status = response.status();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    if !status.is_redirection() {
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        return not_redirected(status, &answer_message(&body), table);
    }
    let Some(target) = location.as_deref().and_then(host_port) else {
        return CheckLine::warn(
            SUBJECT,
            format!("the FE answered {status} without a usable Location ({location:?})"),
            "check that sink.starrocks.fe_http is a StarRocks FE",
        );
    };
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => CheckLine::ok(
            SUBJECT,
            format!("the FE sends loads to {target}, which accepts connections"),
        ),
        Ok(Err(error)) => unreachable_be(&target, &error.to_string()),
        Err(_) => unreachable_be(&target, &format!("no connection within {PROBE_TIMEOUT:?}")),
    }
}

fn unreachable_be(target: &str, problem: &str) -> CheckLine {
    CheckLine::fail(
        SUBJECT,
        format!("the FE sends loads to the BE at {target}, which dbmazz cannot reach: {problem}"),
        "if that is the BE's internal address (all-in-one container, NAT), send loads to the BEs \
         directly: sink.starrocks.load_via = \"be\" and be_http = [\"http://<reachable BE>:8040\"]",
    )
}

/// The FE refused before redirecting (spec §1.3): auth (reported by the FE HTTP line already),
/// no live BE, or no INSERT privilege on the table.
fn not_redirected(status: StatusCode, message: &str, table: &str) -> CheckLine {
    if status == StatusCode::UNAUTHORIZED {
        return CheckLine::fail(
            SUBJECT,
            format!("the FE refused the credentials: {message}"),
            "check sink.starrocks.user and sink.starrocks.password",
        );
    }
    let fix = if message.contains("INSERT") || message.contains("Access denied") {
        format!(
            "GRANT INSERT ON ALL TABLES IN DATABASE <database> TO USER '<user>'@'%'; (the probe \
             asked for table {table})"
        )
    } else if message.contains("backend") {
        "start a BE (SHOW BACKENDS shows which are alive)".to_string()
    } else if message.trim().is_empty() {
        "check that sink.starrocks.fe_http is a StarRocks FE's HTTP port (8030 by default) and \
         read the FE's fe.log for this request"
            .to_string()
    } else {
        "see the message; the FE's fe.log has the details".to_string()
    };
    let message = if message.trim().is_empty() {
        "an empty answer"
    } else {
        message
    };
    CheckLine::fail(
        SUBJECT,
        format!("the FE did not redirect the load (HTTP {status}): {message}"),
        fix,
    )
}

/// `http://host:port/path?query` → `host:port` (port 80 when absent).
fn host_port(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?']).next()?;
    if authority.is_empty() {
        return None;
    }
    // Credentials in a Location are not expected; drop them if present.
    let authority = authority.rsplit('@').next()?;
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    Some(if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    })
}

/// The message of an FE answer (`{"Status":"FAILED","Message":...}` or `{"msg":...}`), else
/// the start of the body.
fn answer_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = parsed.as_ref().and_then(|value| {
        ["Message", "msg", "message"]
            .iter()
            .find_map(|key| value.get(key).and_then(|text| text.as_str()))
    });
    match field {
        Some(text) => text.to_string(),
        None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckStatus;

    #[test]
    fn redirect_targets_are_host_and_port() {
        assert_eq!(
            host_port("http://10.0.0.5:8040/api/d/t/_stream_load?x=1").as_deref(),
            Some("10.0.0.5:8040")
        );
        assert_eq!(host_port("http://be/api").as_deref(), Some("be:80"));
        assert_eq!(host_port("/relative"), None);
    }

    #[test]
    fn a_refused_redirect_names_the_missing_privilege() {
        let line = not_redirected(
            StatusCode::OK,
            "Access denied; you need (at least one of) the INSERT privilege(s)",
            "orders",
        );
        assert_eq!(line.status, CheckStatus::Fail);
        assert!(line.fix.unwrap().starts_with("GRANT INSERT"));
    }

    #[test]
    fn an_empty_refusal_says_so_and_where_to_look() {
        let line = not_redirected(StatusCode::INTERNAL_SERVER_ERROR, "", "orders");
        assert!(
            line.message.ends_with("an empty answer"),
            "{}",
            line.message
        );
        assert!(line.fix.unwrap().contains("fe.log"));
    }
}
