//! Fault injection through the API and through the control endpoint.

use std::time::{Duration, Instant};

use crate::support::{message, raw_request, status, BodyMode, Fixture};
use starrocks_emulator::{FaultKind, FaultRule, TxnState};

const T: &str = "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR(32) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)";

async fn fixture() -> Fixture {
    let fx = Fixture::new().await;
    fx.sql(T).await;
    fx
}

async fn control(fx: &Fixture, method: &str, path: &str, body: &str) -> serde_json::Value {
    let r = raw_request(
        fx.emu.fe_http_addr(),
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[tokio::test]
async fn fail_next_n_loads_from_the_control_endpoint() {
    let fx = fixture().await;
    let queued = control(
        &fx,
        "POST",
        "/_emulator/faults",
        r#"{"kind":"fail","count":2,"message":"BE busy, try later"}"#,
    )
    .await;
    assert_eq!(queued["queued"], 1);
    for _ in 0..2 {
        let r = fx.load_json("t", &[("label", "f1")], r#"[{"id":1}]"#).await;
        assert_eq!(status(&r), "Fail");
        assert_eq!(message(&r), "BE busy, try later");
        assert_eq!(fx.emu.label_state("d", "f1"), Some(TxnState::Aborted));
    }
    let r = fx.load_json("t", &[("label", "f1")], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Success", "same label reusable after aborts");
    let stats = control(&fx, "GET", "/_emulator/stats", "").await;
    assert_eq!(stats["tables"]["d.t"]["loads"], 1);
    assert_eq!(stats["tables"]["d.t"]["failed_loads"], 2);
    assert_eq!(stats["tables"]["d.t"]["rows"], 1);
    assert_eq!(stats["tables"]["d.t"]["versions"], 1);
    let listed = control(&fx, "GET", "/_emulator/faults", "").await;
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test]
async fn http_5xx_and_table_filter() {
    let fx = fixture().await;
    control(
        &fx,
        "POST",
        "/_emulator/faults",
        r#"[{"kind":"http5xx","status":503,"table":"d.t"},{"kind":"fail","table":"other"}]"#,
    )
    .await;
    let r = fx.load_raw("t", &[("format", "json")], r#"{"id":1}"#).await;
    assert_eq!(r.status, 503);
    let r = fx.load_json("t", &[], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Success");
    let left = control(&fx, "GET", "/_emulator/faults", "").await;
    assert_eq!(left[0]["table"], "other");
    control(&fx, "DELETE", "/_emulator/faults", "").await;
    assert_eq!(
        control(&fx, "GET", "/_emulator/faults", "").await,
        serde_json::json!([])
    );
}

#[tokio::test]
async fn bad_fault_json_is_a_400() {
    let fx = fixture().await;
    let r = raw_request(
        fx.emu.fe_http_addr(),
        "POST",
        "/_emulator/faults",
        &[],
        br#"{"kind":"explode"}"#,
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn delay_then_commit() {
    let fx = fixture().await;
    fx.emu
        .inject(FaultRule::new(FaultKind::Delay).delay_ms(150));
    let started = Instant::now();
    let r = fx.load_json("t", &[], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Success");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn close_mid_body_loads_nothing() {
    let fx = fixture().await;
    fx.emu.inject(FaultRule::new(FaultKind::CloseMidBody));
    let body = format!(
        "[{}]",
        (0..200)
            .map(|i| format!("{{\"id\":{i}}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let auth = crate::support::basic("root", "");
    let r = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[
            ("Authorization", &auth),
            ("Expect", "100-continue"),
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("label", "cut"),
        ],
        body.as_bytes(),
        BodyMode::WaitContinue,
    )
    .await;
    assert!(r.is_none(), "no answer: {r:?}");
    assert!(fx.rows("t").is_empty());
    assert_eq!(fx.emu.label_state("d", "cut"), Some(TxnState::Aborted));
}

#[tokio::test]
async fn commit_then_drop_the_response() {
    let fx = fixture().await;
    fx.emu.inject(FaultRule::new(FaultKind::DropResponse));
    let auth = crate::support::basic("root", "");
    let r = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[
            ("Authorization", &auth),
            ("Expect", "100-continue"),
            ("format", "json"),
            ("label", "lost"),
        ],
        br#"{"id":7}"#,
        BodyMode::WaitContinue,
    )
    .await;
    assert!(r.is_none(), "the answer is lost");
    assert_eq!(fx.rows("t").len(), 1, "but the load committed");
    assert_eq!(fx.emu.label_state("d", "lost"), Some(TxnState::Visible));
    let replay = fx
        .load_json("t", &[("label", "lost")], r#"[{"id":7}]"#)
        .await;
    assert_eq!(replay["ExistingJobStatus"], "FINISHED");
}

#[tokio::test]
async fn too_many_versions_is_a_retryable_fail() {
    let fx = fixture().await;
    fx.emu.inject(FaultRule::new(FaultKind::TooManyVersions));
    let r = fx.load_json("t", &[("label", "v1")], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Fail");
    assert!(message(&r).starts_with("Failed to load data into tablet "));
    assert!(message(&r).contains("because of too many versions, current/limit: 1001/1000."));
    let r = fx.load_json("t", &[("label", "v1")], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Success");
}

#[tokio::test]
async fn restart_drops_in_flight_loads_and_keeps_data() {
    let fx = fixture().await;
    fx.load_json("t", &[("label", "before")], r#"[{"id":1}]"#)
        .await;
    fx.emu
        .inject(FaultRule::new(FaultKind::Delay).delay_ms(300));
    let addr = fx.emu.be_http_addr();
    let in_flight = tokio::spawn(async move {
        let auth = crate::support::basic("root", "");
        raw_request(
            addr,
            "PUT",
            "/api/d/t/_stream_load",
            &[
                ("Authorization", &auth),
                ("Expect", "100-continue"),
                ("format", "json"),
                ("label", "during"),
            ],
            br#"{"id":2}"#,
            BodyMode::WaitContinue,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    control(&fx, "POST", "/_emulator/restart", "").await;
    let answer = in_flight.await.unwrap();
    assert!(answer.is_none(), "in-flight load dropped: {answer:?}");
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "NULL"]]);
    assert_eq!(fx.emu.label_state("d", "during"), Some(TxnState::Aborted));
    let r = fx
        .load_json("t", &[("label", "during")], r#"[{"id":2}]"#)
        .await;
    assert_eq!(status(&r), "Success");
    let stats = control(&fx, "GET", "/_emulator/stats", "").await;
    assert_eq!(stats["global"]["restarts"], 1);
}

#[tokio::test]
async fn label_eviction_by_the_cleaner_cap() {
    let fx = fixture().await;
    control(
        &fx,
        "POST",
        "/_emulator/settings",
        r#"{"label_keep_max_num":3,"label_clean_interval_ms":3600000}"#,
    )
    .await;
    for i in 0..5 {
        let r = fx
            .load_json(
                "t",
                &[("label", &format!("c{i}"))],
                &format!("[{{\"id\":{i}}}]"),
            )
            .await;
        assert_eq!(status(&r), "Success");
    }
    // Between cleaner runs every label is remembered.
    assert!(fx.emu.label_state("d", "c0").is_some());
    control(&fx, "POST", "/_emulator/labels/clean", "").await;
    assert!(fx.emu.label_state("d", "c0").is_none());
    assert!(fx.emu.label_state("d", "c1").is_none());
    assert_eq!(fx.emu.label_state("d", "c2"), Some(TxnState::Visible));
    // An evicted label is reusable: the replay applies again.
    let r = fx
        .load_json("t", &[("label", "c0")], r#"[{"id":100}]"#)
        .await;
    assert_eq!(status(&r), "Success");
}

#[tokio::test]
async fn label_retention_by_age_with_a_fast_cleaner() {
    let fx = fixture().await;
    control(
        &fx,
        "POST",
        "/_emulator/settings",
        r#"{"label_keep_max_second":0,"label_clean_interval_ms":30}"#,
    )
    .await;
    fx.load_json("t", &[("label", "old")], r#"[{"id":1}]"#)
        .await;
    for _ in 0..100 {
        if fx.emu.label_state("d", "old").is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("label was not cleaned");
}

#[tokio::test]
async fn delay_past_the_timeout_fails_with_the_txn_managers_abort() {
    // Costs ~1.5 s: a 1 s timeout and a 1.5 s slow BE.
    let fx = fixture().await;
    fx.emu
        .inject(FaultRule::new(FaultKind::Delay).delay_ms(1500));
    let started = Instant::now();
    let label_at_deadline = async {
        tokio::time::sleep(Duration::from_millis(1250)).await;
        fx.emu.label_state("d", "slow")
    };
    let (r, state) = tokio::join!(
        fx.load_json("t", &[("label", "slow"), ("timeout", "1")], r#"[{"id":1}]"#),
        label_at_deadline
    );
    assert_eq!(
        state,
        Some(TxnState::Aborted),
        "the FE aborts at the deadline, before the BE answers"
    );
    assert_eq!(status(&r), "Fail", "{r}");
    assert_eq!(message(&r), "timeout by txn manager");
    assert_eq!(r["NumberLoadedRows"], 1, "rows were read before the abort");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(fx.rows("t").is_empty());
    // An aborted label is reusable.
    let r = fx
        .load_json("t", &[("label", "slow")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(status(&r), "Success");
}

#[tokio::test]
async fn body_stalled_past_the_timeout_fails_and_aborts() {
    // Costs ~1 s.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fx = fixture().await;
    let mut stream = tokio::net::TcpStream::connect(fx.emu.be_http_addr())
        .await
        .unwrap();
    let head = format!(
        "PUT /api/d/t/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Expect: 100-continue\r\nformat: json\r\nlabel: stalled\r\ntimeout: 1\r\n\
         Content-Length: 100\r\n\r\n",
        crate::support::basic("root", "")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"));
    stream.write_all(br#"{"id":1"#).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("\"Status\": \"Fail\""), "{text}");
    assert!(text.contains("timeout by txn manager"), "{text}");
    assert_eq!(fx.emu.label_state("d", "stalled"), Some(TxnState::Aborted));
}

#[tokio::test]
async fn txn_load_dropped_mid_body_stays_open_until_its_timeout() {
    // Costs ~1.2 s (a txn with a 1 s timeout). Spec §5.4: the BE only releases the request.
    use tokio::io::AsyncWriteExt;
    let fx = fixture().await;
    let auth = crate::support::basic("root", "");
    let txn_headers = [
        ("Authorization", auth.as_str()),
        ("label", "cut_txn"),
        ("db", "d"),
        ("table", "t"),
        ("timeout", "1"),
    ];
    let begun = raw_request(
        fx.emu.be_http_addr(),
        "POST",
        "/api/transaction/begin",
        &txn_headers,
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(begun.json()["Status"], "OK", "{}", begun.body);
    let mut stream = tokio::net::TcpStream::connect(fx.emu.be_http_addr())
        .await
        .unwrap();
    let head = format!(
        "PUT /api/transaction/load HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nlabel: cut_txn\r\n\
         db: d\r\ntable: t\r\nformat: json\r\nContent-Length: 100\r\n\r\n{{\"id\":1"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fx.emu.label_state("d", "cut_txn"),
        Some(TxnState::Prepare),
        "still open after the client went away"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while fx.emu.label_state("d", "cut_txn") != Some(TxnState::Aborted) {
        assert!(Instant::now() < deadline, "never aborted by its timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fx.rows("t").is_empty());
}

/// Sends a Stream Load's headers and the first `sent` bytes of `body`, then closes the socket.
async fn send_and_vanish(fx: &Fixture, label: &str, body: &str, sent: usize) {
    use tokio::io::AsyncWriteExt;
    let auth = crate::support::basic("root", "");
    let head = format!(
        "PUT /api/d/t/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         format: json\r\nstrip_outer_array: true\r\nlabel: {label}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(fx.emu.be_http_addr())
        .await
        .unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body.as_bytes()[..sent]).await.unwrap();
    socket.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(socket);
}

async fn wait_label(fx: &Fixture, label: &str, state: TxnState) {
    for _ in 0..100 {
        if fx.emu.label_state("d", label) == Some(state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{label}: {:?}, expected {state:?}",
        fx.emu.label_state("d", label)
    );
}

#[tokio::test]
async fn a_client_gone_mid_body_rolls_the_load_back() {
    let fx = fixture().await;
    let body = r#"[{"id":1},{"id":2},{"id":3}]"#;
    send_and_vanish(&fx, "half", body, 10).await;
    wait_label(&fx, "half", TxnState::Aborted).await;
    assert!(fx.rows("t").is_empty());
    // The label is free again.
    let r = fx.load_json("t", &[("label", "half")], body).await;
    assert_eq!(status(&r), "Success", "{r}");
}

#[tokio::test]
async fn a_client_gone_after_the_whole_body_still_gets_its_load_committed() {
    let fx = fixture().await;
    fx.emu
        .inject(FaultRule::new(FaultKind::Delay).delay_ms(200));
    let body = r#"[{"id":1},{"id":2}]"#;
    send_and_vanish(&fx, "whole", body, body.len()).await;
    wait_label(&fx, "whole", TxnState::Visible).await;
    assert_eq!(fx.rows("t").len(), 2);
}
