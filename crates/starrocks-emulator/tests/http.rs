//! HTTP clients as they are found in the field: curl, a generic client that drops credentials on
//! the redirect, and clients that do not wait for `100 Continue`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::support::{basic, message, raw_request, status, BodyMode, Fixture};
use starrocks_emulator::{EmulatorConfig, SettingsPatch};

const T: &str = "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR(32) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)";

#[tokio::test]
async fn curl_location_trusted_loads() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let fx = Fixture::new().await;
    fx.sql(T).await;
    let dir = std::env::temp_dir().join(format!("emu-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rows.json");
    std::fs::write(&file, r#"[{"id":1,"name":"a"},{"id":2,"name":"b"}]"#).unwrap();
    let url = format!("http://{}/api/d/t/_stream_load", fx.emu.fe_http_addr());
    let out = tokio::process::Command::new("curl")
        .args([
            "-s",
            "--location-trusted",
            "-u",
            "root:",
            "-H",
            "Expect:100-continue",
        ])
        .args([
            "-H",
            "label:curl1",
            "-H",
            "format:json",
            "-H",
            "strip_outer_array:true",
        ])
        .arg("-T")
        .arg(&file)
        .args(["-XPUT", &url])
        .output()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(status(&body), "Success", "{body}");
    assert_eq!(fx.rows("t").len(), 2);
    // Without --location-trusted curl drops the credentials on the redirect.
    let out = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-L",
            "-u",
            "root:",
            "-H",
            "Expect:100-continue",
            "-H",
            "label:curl2",
        ])
        .args(["-H", "format:json", "-H", "strip_outer_array:true"])
        .arg("-T")
        .arg(&file)
        .args(["-XPUT", &url])
        .output()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(message(&body), "no valid Basic authorization");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A plain hyper client that follows the 307 the way generic clients do: same request, no
/// Authorization (it changed port).
#[tokio::test]
async fn generic_client_without_credentials_after_redirect_gets_be_auth_error() {
    let fx = Fixture::new().await;
    fx.sql(T).await;
    let send = |addr: std::net::SocketAddr, uri: String, auth: Option<String>| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut builder = Request::put(uri)
            .header("host", addr.to_string())
            .header("expect", "100-continue")
            .header("format", "json");
        if let Some(a) = auth {
            builder = builder.header("authorization", a);
        }
        let resp = sender
            .send_request(
                builder
                    .body(Full::new(Bytes::from_static(b"{\"id\":1}")))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    let (code, location, _) = send(
        fx.emu.fe_http_addr(),
        "/api/d/t/_stream_load".into(),
        Some(basic("root", "")),
    )
    .await;
    assert_eq!(code, 307);
    let location = location.unwrap();
    let path = location
        .strip_prefix(&format!("http://{}", fx.emu.be_http_addr()))
        .unwrap()
        .to_string();
    let (code, _, body) = send(fx.emu.be_http_addr(), path, None).await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message(&json), "no valid Basic authorization");
    assert!(fx.rows("t").is_empty());
}

#[tokio::test]
async fn strict_mode_catches_a_client_that_does_not_wait_for_continue() {
    let mut config = EmulatorConfig::ephemeral();
    config.strict_expect_continue = true;
    let fx = Fixture::with_config(config).await;
    fx.sql(T).await;
    let auth = basic("root", "");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Expect", "100-continue"),
        ("format", "json"),
    ];
    let eager = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &headers,
        b"{\"id\":1}",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(status(&eager.json()), "Fail");
    assert!(message(&eager.json()).contains("before the server answered 100 Continue"));
    assert_eq!(fx.emu.early_body_violations(), 1);
    let polite = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &headers,
        b"{\"id\":1}",
        BodyMode::WaitContinue,
    )
    .await
    .unwrap();
    assert_eq!(status(&polite.json()), "Success", "{}", polite.body);
    assert_eq!(fx.emu.early_body_violations(), 1);
    // Without strict mode the eager client is served (real StarRocks does not complain).
    fx.emu.update_settings(&SettingsPatch {
        strict_expect_continue: Some(false),
        ..SettingsPatch::default()
    });
    let eager = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &headers,
        b"{\"id\":2}",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(status(&eager.json()), "Success");
}

#[tokio::test]
async fn keep_alive_connection_to_the_be_serves_several_loads() {
    let fx = Fixture::new().await;
    fx.sql(T).await;
    let stream = tokio::net::TcpStream::connect(fx.emu.be_http_addr())
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    for id in 0..3 {
        let req = Request::put("/api/d/t/_stream_load")
            .header("host", "be")
            .header("authorization", basic("root", ""))
            .header("format", "json")
            .body(Full::new(Bytes::from(format!("{{\"id\":{id}}}"))))
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
            .await
            .unwrap()
            .unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status(&json), "Success");
    }
    assert_eq!(fx.rows("t").len(), 3);
}

#[tokio::test]
async fn get_load_state_shapes() {
    let fx = Fixture::new().await;
    fx.sql(T).await;
    fx.load_json("t", &[("label", "ok1")], r#"[{"id":1}]"#)
        .await;
    fx.load_json("t", &[("label", "bad1")], r#"[{"id":null}]"#)
        .await;
    let auth = basic("root", "");
    let get = |label: &'static str| {
        let auth = auth.clone();
        let addr = fx.emu.fe_http_addr();
        async move {
            raw_request(
                addr,
                "GET",
                &format!("/api/d/get_load_state?label={label}"),
                &[("Authorization", &auth)],
                b"",
                BodyMode::Eager,
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(
        get("ok1").await.body,
        r#"{"state":"VISIBLE","reason":"","status":"OK","code":"0","msg":"Success","message":"OK"}"#
    );
    assert_eq!(
        get("nope").await.body,
        r#"{"state":"UNKNOWN","status":"OK","code":"0","msg":"Success","message":"OK"}"#
    );
    let aborted = get("bad1").await.json();
    assert_eq!(aborted["state"], "ABORTED");
    assert_eq!(aborted["reason"], "too many filtered rows");
    let missing = raw_request(
        fx.emu.fe_http_addr(),
        "GET",
        "/api/d/get_load_state",
        &[("Authorization", &auth)],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(missing.json()["msg"], "No label selected.");
    let unauth = raw_request(
        fx.emu.fe_http_addr(),
        "GET",
        "/api/d/get_load_state?label=ok1",
        &[],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(unauth.status, 401);
    assert_eq!(unauth.json()["msg"], "Need auth information.");
}

/// Spec §1.9: `GET /api/health` needs no credentials and counts the BEs.
#[tokio::test]
async fn fe_health_answers_without_credentials() {
    let fx = Fixture::new().await;
    let health = raw_request(
        fx.emu.fe_http_addr(),
        "GET",
        "/api/health",
        &[],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(health.status, 200);
    let json = health.json();
    assert_eq!(json["status"], "OK");
    assert_eq!(json["total_backend_num"], 1);
    assert_eq!(json["online_backend_num"], 1);
}

#[tokio::test]
async fn unknown_be_path_is_404_not_found() {
    let fx = Fixture::new().await;
    let r = raw_request(
        fx.emu.be_http_addr(),
        "GET",
        "/api/nothing",
        &[],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "Not Found");
}

#[tokio::test]
async fn fe_skips_the_expect_check_for_http_1_0_and_checks_db_and_table() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fx = Fixture::new().await;
    let mut stream = tokio::net::TcpStream::connect(fx.emu.fe_http_addr())
        .await
        .unwrap();
    let request = format!(
        "PUT /api/d/t/_stream_load HTTP/1.0\r\nAuthorization: {}\r\nContent-Length: 0\r\n\r\n",
        basic("root", "")
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.0 307") || answer.starts_with("HTTP/1.1 307"),
        "{answer}"
    );
    let auth = basic("root", "");
    for (path, message) in [
        ("/api//t/_stream_load", "No database selected."),
        ("/api/d//_stream_load", "No table selected."),
    ] {
        let r = raw_request(
            fx.emu.fe_http_addr(),
            "PUT",
            path,
            &[("Authorization", &auth), ("Expect", "100-continue")],
            b"",
            BodyMode::WaitContinue,
        )
        .await
        .unwrap();
        assert_eq!(
            r.json()["Message"],
            format!("class com.starrocks.common.DdlException: {message}")
        );
    }
}

#[tokio::test]
async fn rows_read_back_in_primary_key_order_whatever_the_load_order() {
    let fx = Fixture::new().await;
    fx.sql(T).await;
    let r = fx
        .load_json("t", &[], r#"[{"id":30,"name":"c"},{"id":10,"name":"a"}]"#)
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    let r = fx
        .load_json("t", &[], r#"[{"id":-5,"name":"z"},{"id":20,"name":"b"}]"#)
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    let ids: Vec<String> = fx
        .text_rows("t")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, ["-5", "10", "20", "30"]);
}

/// Header values are read as their UTF-8 bytes: a non-ASCII `where` filters, a non-ASCII label
/// fails the label format check (FE `FeNameFormat.checkLabel`, Java `\w` is ASCII-only).
#[tokio::test]
async fn non_ascii_header_values_are_not_dropped() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, name VARCHAR(20) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let body = r#"[{"id":1,"name":"ü"},{"id":2,"name":"u"}]"#;
    let j = fx.load_json("t", &[("where", "name = 'ü'")], body).await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(j["NumberUnselectedRows"], 1, "{j}");
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "ü"]]);
    let j = fx.load_json("t", &[("label", "ünï")], body).await;
    assert_eq!(j["Status"], "Fail", "{j}");
    assert_eq!(
        j["Message"], "Label format error. regex: ^[-\\w]{1,128}$, label: ünï",
        "{j}"
    );
}

/// On an IPv6 address the FE's redirect names the BE in brackets (as Java's `URI` writes it),
/// so a client can follow it. Skipped where the machine has no IPv6 loopback.
#[tokio::test]
async fn an_ipv6_fe_redirects_to_a_bracketed_be_address() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return;
    }
    let any: std::net::SocketAddr = "[::1]:0".parse().unwrap();
    let emu = starrocks_emulator::Emulator::start(EmulatorConfig {
        fe_http_addr: any,
        be_http_addr: any,
        mysql_addr: None,
        ..EmulatorConfig::ephemeral()
    })
    .await
    .unwrap();
    emu.execute_sql(None, "CREATE DATABASE d").await.unwrap();
    emu.execute_sql(Some("d"), T).await.unwrap();
    let answer = raw_request(
        emu.fe_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[
            ("Authorization", &basic("root", "")),
            ("Expect", "100-continue"),
        ],
        b"",
        BodyMode::Eager,
    )
    .await
    .expect("an answer");
    assert_eq!(answer.status, 307, "{}", answer.body);
    let location = answer
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("location"))
        .map(|(_, value)| value.clone())
        .expect("a Location");
    let be = format!(
        "http://[::1]:{}/api/d/t/_stream_load",
        emu.be_http_addr().port()
    );
    assert_eq!(location, be);
    assert!(location.parse::<hyper::Uri>().is_ok());
}
