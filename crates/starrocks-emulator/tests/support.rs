//! Test helpers: a raw HTTP/1.1 client with full control over `Expect: 100-continue`, and a
//! fixture that starts an emulator with a database `d`.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value as J;
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The server sent `100 Continue` before the final answer.
    pub got_continue: bool,
    /// The body was sent.
    pub body_sent: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> J {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// How the client sends the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Wait for `100 Continue` (or a final answer) before sending the body.
    WaitContinue,
    /// Send the body right after the head.
    Eager,
}

async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(u16, Vec<(String, String)>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let status_line = lines.next()?;
            let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            return Some((status, headers));
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Send one request on a fresh connection. `None` if the server closed without answering.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    mode: BodyMode,
) -> Option<RawResponse> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let expects = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"));
    let mut buf = Vec::new();
    let mut got_continue = false;
    let mut body_sent = false;
    if mode == BodyMode::Eager || !expects || body.is_empty() {
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        stream.write_all(&all).await.ok()?;
        body_sent = true;
    } else {
        stream.write_all(head.as_bytes()).await.ok()?;
    }
    let (mut status, mut resp_headers) = read_head(&mut stream, &mut buf).await?;
    if status == 100 {
        got_continue = true;
        if !body_sent {
            stream.write_all(body).await.ok()?;
            body_sent = true;
        }
        (status, resp_headers) = read_head(&mut stream, &mut buf).await?;
    }
    let length: Option<usize> = resp_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok());
    loop {
        if length.is_some_and(|l| buf.len() >= l) {
            break;
        }
        let mut chunk = [0u8; 8192];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    if let Some(l) = length {
        buf.truncate(l);
    }
    Some(RawResponse {
        status,
        headers: resp_headers,
        body: String::from_utf8_lossy(&buf).into_owned(),
        got_continue,
        body_sent,
    })
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An emulator with database `d`.
pub struct Fixture {
    pub emu: EmulatorHandle,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with_config(EmulatorConfig::ephemeral()).await
    }

    pub async fn with_config(config: EmulatorConfig) -> Fixture {
        let emu = Emulator::start(config).await.expect("emulator starts");
        emu.execute_sql(None, "CREATE DATABASE d").await.unwrap();
        Fixture { emu }
    }

    pub async fn sql(&self, sql: &str) {
        self.emu
            .execute_sql(Some("d"), sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Stream Load the way `curl --location-trusted` does: PUT to the FE with auth and Expect,
    /// follow the 307 resending everything. Returns the BE's JSON.
    pub async fn load(&self, table: &str, headers: &[(&str, &str)], body: &str) -> J {
        let resp = self.load_raw(table, headers, body).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.json()
    }

    pub async fn load_raw(&self, table: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
        let auth = basic("root", "");
        let mut all: Vec<(&str, &str)> = vec![("Authorization", &auth), ("Expect", "100-continue")];
        all.extend_from_slice(headers);
        let path = format!("/api/d/{table}/_stream_load");
        let fe = raw_request(
            self.emu.fe_http_addr(),
            "PUT",
            &path,
            &all,
            body.as_bytes(),
            BodyMode::WaitContinue,
        )
        .await
        .expect("FE answers");
        assert_eq!(fe.status, 307, "FE: {}", fe.body);
        let location = fe.header("location").expect("Location").to_string();
        let be_path = location
            .strip_prefix(&format!("http://{}", self.emu.be_http_addr()))
            .expect("Location points at the BE")
            .to_string();
        raw_request(
            self.emu.be_http_addr(),
            "PUT",
            &be_path,
            &all,
            body.as_bytes(),
            BodyMode::WaitContinue,
        )
        .await
        .expect("BE answers")
    }

    /// Load JSON rows (array body, strip_outer_array) with extra headers.
    pub async fn load_json(&self, table: &str, headers: &[(&str, &str)], body: &str) -> J {
        let mut all = vec![("format", "json"), ("strip_outer_array", "true")];
        all.extend_from_slice(headers);
        self.load(table, &all, body).await
    }

    pub fn rows(&self, table: &str) -> Vec<Vec<Value>> {
        self.emu.table_rows("d", table).unwrap()
    }

    /// Rows as text (NULL = "NULL").
    pub fn text_rows(&self, table: &str) -> Vec<Vec<String>> {
        self.rows(table)
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.to_text().unwrap_or_else(|| "NULL".into()))
                    .collect()
            })
            .collect()
    }
}

pub fn status(j: &J) -> &str {
    j["Status"].as_str().unwrap_or("")
}

pub fn message(j: &J) -> &str {
    j["Message"].as_str().unwrap_or("")
}
