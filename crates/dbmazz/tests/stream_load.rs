//! The Stream Load client and the label/outcome rules against the in-process StarRocks
//! emulator: each test starts its own emulator on free ports.

use std::time::{Duration, Instant};

use bytes::Bytes;
use dbmazz::sink::starrocks::stream_load::{
    BodyError, BodyPieces, BodySource, Durability, LabelState, LabelTaken, LoadBody, LoadError,
    LoadRequest, LoadVia, RetryPolicy, StreamLoadClient, StreamLoadConfig, StreamLoader,
};
use starrocks_emulator::{
    Emulator, EmulatorConfig, EmulatorHandle, FaultKind, FaultRule, TxnState, Value,
};

const TABLE: &str = "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR(8) NULL) \
                     PRIMARY KEY (id) DISTRIBUTED BY HASH(id)";
const ROWS: &str = r#"[{"id":1,"name":"a"},{"id":2,"name":"b"}]"#;

async fn emulator(strict_expect_continue: bool) -> EmulatorHandle {
    let mut config = EmulatorConfig::ephemeral();
    config.strict_expect_continue = strict_expect_continue;
    let emu = Emulator::start(config).await.expect("emulator starts");
    emu.execute_sql(None, "CREATE DATABASE d")
        .await
        .expect("db");
    emu.execute_sql(Some("d"), TABLE).await.expect("table");
    emu
}

fn config(emu: &EmulatorHandle, password: &str) -> StreamLoadConfig {
    StreamLoadConfig::new(format!("http://{}", emu.fe_http_addr()), "root", password)
}

/// Retries fast enough for tests, bounded so a bug fails instead of hanging.
fn policy() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        max_elapsed: Some(Duration::from_secs(15)),
        label_poll_interval: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

fn loader(config: StreamLoadConfig) -> StreamLoader {
    StreamLoader::new(StreamLoadClient::new(config).expect("client"), policy())
}

fn request(label: &str, body: &str) -> LoadRequest {
    LoadRequest {
        db: "d".into(),
        table: "t".into(),
        label: label.into(),
        body: body.to_string().into(),
        headers: vec![("columns".into(), "id,name".into())],
        label_taken: LabelTaken::AlreadyLoaded,
    }
}

fn ids(emu: &EmulatorHandle) -> Vec<Value> {
    emu.table_rows("d", "t")
        .expect("rows")
        .into_iter()
        .map(|row| row[0].clone())
        .collect()
}

fn loads(emu: &EmulatorHandle) -> u64 {
    emu.table_stats("d", "t").expect("stats").loads
}

#[tokio::test]
async fn plain_load_through_the_fe_redirect_is_visible() {
    let emu = emulator(false).await;
    let outcome = loader(config(&emu, ""))
        .load_batch(&request("plain_1", ROWS))
        .await
        .expect("loads");
    assert_eq!(outcome.durability, Durability::Loaded);
    assert_eq!(outcome.attempts, 1);
    let response = outcome.response.expect("answer");
    assert_eq!(response.loaded_rows, 2);
    assert_eq!(response.label, "plain_1");
    assert_eq!(ids(&emu), vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(emu.label_state("d", "plain_1"), Some(TxnState::Visible));
}

#[tokio::test]
async fn strict_expect_continue_server_sees_no_early_body() {
    let emu = emulator(true).await;
    let loader = loader(config(&emu, ""));
    for i in 0..3 {
        let outcome = loader
            .load_batch(&request(&format!("strict_{i}"), ROWS))
            .await
            .expect("loads in strict mode");
        assert_eq!(outcome.attempts, 1);
    }
    assert_eq!(emu.early_body_violations(), 0);
    assert_eq!(loads(&emu), 3);
}

#[tokio::test]
async fn header_phase_refusal_is_answered_without_sending_the_body() {
    let emu = emulator(true).await;
    let mut config = config(&emu, "");
    config.expect_continue_timeout = Duration::from_secs(5);
    let started = Instant::now();
    let mut req = request("nope_1", ROWS);
    req.table = "missing".into();
    let error = loader(config).load_batch(&req).await.expect_err("no table");
    // Answered at once: the body was withheld, not sent after the 5 s wait.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, LoadError::Permanent { .. }), "{error}");
    assert!(error.to_string().contains("unknown table"), "{error}");
    assert_eq!(emu.early_body_violations(), 0);
}

#[tokio::test]
async fn wrong_password_is_a_permanent_auth_error() {
    let emu = emulator(false).await;
    let error = loader(config(&emu, "wrong"))
        .load_batch(&request("auth_1", ROWS))
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(matches!(error, LoadError::Permanent { .. }), "{text}");
    assert!(text.contains("Access denied"), "{text}");
    assert!(text.contains("password"), "{text}");
    assert!(text.contains("d.t") && text.contains("auth_1"), "{text}");

    // Straight to the BE: a 200 with Status Fail, same classification.
    let mut direct = config(&emu, "wrong");
    direct.load_via = LoadVia::Be(vec![format!("http://{}", emu.be_http_addr())]);
    let error = loader(direct)
        .load_batch(&request("auth_2", ROWS))
        .await
        .expect_err("refused");
    assert!(matches!(error, LoadError::Permanent { .. }), "{error}");
    assert!(error.to_string().contains("Access denied"), "{error}");
}

#[tokio::test]
async fn direct_to_be_round_robin_loads() {
    let emu = emulator(true).await;
    let mut direct = config(&emu, "");
    let be = format!("http://{}", emu.be_http_addr());
    direct.load_via = LoadVia::Be(vec![be.clone(), be]);
    let loader = loader(direct);
    loader.load_batch(&request("be_1", ROWS)).await.expect("1");
    loader
        .load_batch(&request("be_2", r#"[{"id":3,"name":"c"}]"#))
        .await
        .expect("2");
    assert_eq!(ids(&emu).len(), 3);
    assert_eq!(emu.early_body_violations(), 0);
}

#[tokio::test]
async fn http_5xx_is_retried_with_the_same_label() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::Http5xx).status(503));
    let outcome = loader(config(&emu, ""))
        .load_batch(&request("h5_1", ROWS))
        .await
        .expect("loads");
    assert_eq!(outcome.durability, Durability::Loaded);
    assert_eq!(outcome.attempts, 2);
    assert_eq!(outcome.response.expect("answer").label, "h5_1");
    assert_eq!(loads(&emu), 1);
    assert_eq!(emu.table_stats("d", "t").expect("stats").failed_loads, 1);
}

#[tokio::test]
async fn retryable_fail_then_success() {
    let emu = emulator(false).await;
    emu.inject(
        FaultRule::new(FaultKind::Fail)
            .times(2)
            .message("BE busy, try later"),
    );
    let outcome = loader(config(&emu, ""))
        .load_batch(&request("busy_1", ROWS))
        .await
        .expect("loads");
    assert_eq!(outcome.attempts, 3);
    assert_eq!(outcome.durability, Durability::Loaded);
    assert_eq!(loads(&emu), 1);
}

#[tokio::test]
async fn retries_stop_at_the_policy_limit() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::Fail).times(50).message("BE busy"));
    let client = StreamLoadClient::new(config(&emu, "")).expect("client");
    let policy = RetryPolicy {
        max_attempts: Some(3),
        ..policy()
    };
    let error = StreamLoader::new(client, policy)
        .load_batch(&request("busy_2", ROWS))
        .await
        .expect_err("gives up");
    match &error {
        LoadError::RetriesExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, 3);
            assert_eq!(last, "BE busy");
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn close_mid_body_is_resolved_by_label_and_resent() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::CloseMidBody));
    let outcome = loader(config(&emu, ""))
        .load_batch(&request("cut_1", ROWS))
        .await
        .expect("loads");
    assert_eq!(outcome.durability, Durability::Loaded);
    assert_eq!(outcome.attempts, 2, "resent after the label read ABORTED");
    assert_eq!(ids(&emu), vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(loads(&emu), 1);
}

#[tokio::test]
async fn dropped_response_is_found_durable_by_label_and_not_resent() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::DropResponse));
    let outcome = loader(config(&emu, ""))
        .load_batch(&request("drop_1", ROWS))
        .await
        .expect("durable");
    assert_eq!(
        outcome.durability,
        Durability::AlreadyLoaded(LabelState::Visible)
    );
    assert_eq!(outcome.attempts, 1);
    assert!(outcome.response.is_none());
    assert_eq!(loads(&emu), 1, "loaded once, not resent");
    assert_eq!(ids(&emu), vec![Value::Int(1), Value::Int(2)]);
}

#[tokio::test]
async fn publish_timeout_is_durable() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::PublishTimeout));
    let outcome = loader(config(&emu, ""))
        .load_batch(&request("pt_1", ROWS))
        .await
        .expect("durable");
    assert_eq!(outcome.durability, Durability::PublishTimeout);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(loads(&emu), 1);
}

#[tokio::test]
async fn too_many_versions_is_retried_and_reported() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::TooManyVersions).times(2));
    let outcome = loader(config(&emu, ""))
        .load_batch(&request("tmv_1", ROWS))
        .await
        .expect("loads");
    assert_eq!(outcome.durability, Durability::Loaded);
    assert_eq!(outcome.attempts, 3);
    assert_eq!(outcome.too_many_versions, 2);
    assert_eq!(loads(&emu), 1);
}

#[tokio::test]
async fn label_already_finished_is_durable_without_reloading() {
    let emu = emulator(false).await;
    let loader = loader(config(&emu, ""));
    loader
        .load_batch(&request("dup_1", ROWS))
        .await
        .expect("first");
    // A replay of the same batch (e.g. after a restart) under the same label.
    let outcome = loader
        .load_batch(&request("dup_1", r#"[{"id":9,"name":"z"}]"#))
        .await
        .expect("durable");
    assert_eq!(
        outcome.durability,
        Durability::AlreadyLoaded(LabelState::Visible)
    );
    assert_eq!(outcome.attempts, 1);
    assert_eq!(loads(&emu), 1);
    assert_eq!(ids(&emu), vec![Value::Int(1), Value::Int(2)]);
}

/// A stream batch whose label an earlier run committed is loaded again under a new label:
/// since then the replay may have loaded older images of its rows. Its own attempt that
/// landed without an answer is not.
#[tokio::test]
async fn a_stream_batch_committed_by_an_earlier_run_is_loaded_again() {
    let emu = emulator(false).await;
    let loader = loader(config(&emu, ""));
    let stream = |label: &str, body: &str| LoadRequest {
        label_taken: LabelTaken::LoadAgain,
        ..request(label, body)
    };
    loader
        .load_batch(&stream("again_1", ROWS))
        .await
        .expect("first");
    let outcome = loader
        .load_batch(&stream("again_1", r#"[{"id":2,"name":"older"}]"#))
        .await
        .expect("loaded again");
    assert_eq!(outcome.durability, Durability::Loaded);
    assert!(outcome.label.starts_with("again_1-r"), "{}", outcome.label);
    assert_eq!(loads(&emu), 2);
    let names: Vec<Value> = emu
        .table_rows("d", "t")
        .expect("rows")
        .into_iter()
        .map(|row| row[1].clone())
        .collect();
    assert_eq!(names, [Value::Str("a".into()), Value::Str("older".into())]);

    emu.inject(FaultRule::new(FaultKind::DropResponse));
    let outcome = loader
        .load_batch(&stream("again_2", ROWS))
        .await
        .expect("durable");
    assert_eq!(
        outcome.durability,
        Durability::AlreadyLoaded(LabelState::Visible)
    );
    assert_eq!(outcome.label, "again_2");
    assert_eq!(loads(&emu), 3, "its own landed attempt is not loaded again");
}

#[tokio::test]
async fn label_already_running_is_waited_for_until_finished() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::Delay).delay_ms(700));
    let first_loader = loader(config(&emu, ""));
    let first = tokio::spawn(async move { first_loader.load_batch(&request("run_1", ROWS)).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while emu.label_state("d", "run_1") != Some(TxnState::Prepare) {
        assert!(Instant::now() < deadline, "first load never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = loader(config(&emu, ""))
        .load_batch(&request("run_1", ROWS))
        .await
        .expect("second resolves by label");
    assert_eq!(
        second.durability,
        Durability::AlreadyLoaded(LabelState::Visible)
    );
    assert_eq!(second.attempts, 1);
    let first = first.await.expect("joins").expect("first loads");
    assert_eq!(first.durability, Durability::Loaded);
    assert_eq!(loads(&emu), 1);
}

/// A client timeout leaves the label PREPARE: the loader waits (never resends while running);
/// when StarRocks aborts that txn (here: a restart), it resends under the same label.
#[tokio::test]
async fn timeout_waits_for_the_running_label_then_resends_once_aborted() {
    let emu = emulator(false).await;
    emu.inject(FaultRule::new(FaultKind::Delay).delay_ms(60_000));
    let mut config = config(&emu, "");
    config.request_timeout = Duration::from_millis(300);
    let loader = loader(config);
    let load = tokio::spawn(async move { loader.load_batch(&request("slow_1", ROWS)).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!load.is_finished(), "must wait while the label is PREPARE");
    assert_eq!(emu.label_state("d", "slow_1"), Some(TxnState::Prepare));
    emu.restart();
    let outcome = load.await.expect("joins").expect("loads");
    assert_eq!(outcome.durability, Durability::Loaded);
    assert_eq!(outcome.attempts, 2);
    assert_eq!(loads(&emu), 1);
    assert_eq!(ids(&emu), vec![Value::Int(1), Value::Int(2)]);
}

#[tokio::test]
async fn filtered_row_in_strict_mode_is_permanent_and_names_the_error_url() {
    let emu = emulator(false).await;
    let body = r#"[{"id":1,"name":"a"},{"id":2,"name":"much too long for eight bytes"}]"#;
    let error = loader(config(&emu, ""))
        .load_batch(&request("filt_1", body))
        .await
        .expect_err("refused");
    let LoadError::Permanent {
        ref message,
        ref error_url,
        ref label,
        ..
    } = error
    else {
        panic!("unexpected {error}");
    };
    assert_eq!(message, "too many filtered rows");
    assert_eq!(label, "filt_1");
    let url = error_url.as_deref().expect("ErrorURL");
    assert!(url.contains("_load_error_log"), "{url}");
    let text = error.to_string();
    assert!(text.contains(url) && text.contains("ErrorURL"), "{text}");
    assert!(ids(&emu).is_empty(), "nothing committed");
}

#[tokio::test]
async fn gzip_sends_the_compression_header() {
    let emu = emulator(false).await;
    let mut config = config(&emu, "");
    config.gzip = true;
    // StarRocks (and the emulator) decode `compression: gzip` JSON bodies.
    let outcome = loader(config)
        .load_batch(&request("gz_1", ROWS))
        .await
        .expect("gzip body loads");
    assert_eq!(outcome.durability, Durability::Loaded);
    assert_eq!(ids(&emu), vec![Value::Int(1), Value::Int(2)]);
}

#[tokio::test]
async fn get_load_state_reads_every_state() {
    let emu = emulator(false).await;
    let client = StreamLoadClient::new(config(&emu, "")).expect("client");
    let state = |answer| match answer {
        dbmazz::sink::starrocks::stream_load::LabelStateAnswer::State { state, .. } => state,
        other => panic!("unexpected {other:?}"),
    };
    let unknown = client.get_load_state("d", "never").await.expect("asks");
    assert_eq!(state(unknown), LabelState::Unknown);
    client.send(&request("gls_1", ROWS)).await.expect("loads");
    let visible = client.get_load_state("d", "gls_1").await.expect("asks");
    assert_eq!(state(visible), LabelState::Visible);
    emu.inject(FaultRule::new(FaultKind::Fail).message("BE busy"));
    client.send(&request("gls_2", ROWS)).await.expect("answers");
    let aborted = client.get_load_state("d", "gls_2").await.expect("asks");
    assert_eq!(state(aborted), LabelState::Aborted);
    let failed = client.get_load_state("nodb", "x").await.expect("asks");
    assert!(matches!(
        failed,
        dbmazz::sink::starrocks::stream_load::LabelStateAnswer::Failed(ref m) if m.contains("unknown database")
    ));
}

/// A server that ignores `Expect` (never sends `100 Continue`) still gets the body, once the
/// client's wait runs out — like curl. Answers one load with a canned Success.
#[tokio::test]
async fn body_is_sent_after_the_continue_wait_when_no_100_comes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accepts");
        let started = Instant::now();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = socket.read(&mut chunk).await.expect("reads");
            assert!(n > 0, "client closed");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        assert!(head.contains("expect: 100-continue"), "{head}");
        assert!(head.contains("authorization: basic"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        while buf.len() < head_end + length {
            let n = socket.read(&mut chunk).await.expect("reads body");
            assert!(n > 0, "client closed before the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let waited = started.elapsed();
        let body = br#"{"TxnId":1,"Label":"raw_1","Status":"Success","Message":"OK","NumberLoadedRows":2}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.expect("writes");
        socket.write_all(body).await.expect("writes");
        (waited, buf[head_end..].to_vec())
    });
    let mut direct = StreamLoadConfig::new(format!("http://{addr}"), "root", "");
    direct.load_via = LoadVia::Be(vec![format!("http://{addr}")]);
    direct.expect_continue_timeout = Duration::from_millis(300);
    let outcome = loader(direct)
        .load_batch(&request("raw_1", ROWS))
        .await
        .expect("loads");
    assert_eq!(outcome.durability, Durability::Loaded);
    let (waited, body) = server.await.expect("server");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert_eq!(body, ROWS.as_bytes());
}

/// `n` rows in pieces of 100 rows; fails at row `fail_at` when given.
struct PiecedRows {
    rows: u32,
    fail_at: Option<u32>,
}

struct PiecedPass {
    next: u32,
    rows: u32,
    fail_at: Option<u32>,
}

impl BodySource for PiecedRows {
    fn open(&self) -> Box<dyn BodyPieces> {
        Box::new(PiecedPass {
            next: 0,
            rows: self.rows,
            fail_at: self.fail_at,
        })
    }
}

impl BodyPieces for PiecedPass {
    fn next_piece(&mut self) -> Option<Result<Bytes, BodyError>> {
        if self.next > self.rows {
            return None;
        }
        let mut piece = String::new();
        if self.next == 0 {
            piece.push('[');
        }
        for id in self.next..(self.next + 100).min(self.rows) {
            if Some(id) == self.fail_at {
                self.next = self.rows + 1;
                return Some(Err(BodyError::Encode(format!(
                    "row {id} cannot be encoded"
                ))));
            }
            if id > 0 {
                piece.push(',');
            }
            piece.push_str(&format!(r#"{{"id":{id},"name":"n{}"}}"#, id % 7));
        }
        self.next += 100;
        if self.next >= self.rows {
            piece.push(']');
            self.next = self.rows + 1;
        }
        Some(Ok(Bytes::from(piece)))
    }
}

#[tokio::test]
async fn a_body_encoded_while_sent_goes_chunked_through_the_redirect() {
    let emu = emulator(true).await;
    let mut req = request("pieces_1", "");
    req.body = LoadBody::Source(std::sync::Arc::new(PiecedRows {
        rows: 5_000,
        fail_at: None,
    }));
    let outcome = loader(config(&emu, ""))
        .load_batch(&req)
        .await
        .expect("loads");
    assert_eq!(outcome.attempts, 1);
    assert_eq!(outcome.response.expect("answer").loaded_rows, 5_000);
    assert_eq!(ids(&emu).len(), 5_000);
    assert_eq!(emu.early_body_violations(), 0);
}

#[tokio::test]
async fn a_body_that_fails_half_way_is_permanent_and_loads_nothing() {
    let emu = emulator(false).await;
    let mut req = request("pieces_2", "");
    req.body = LoadBody::Source(std::sync::Arc::new(PiecedRows {
        rows: 5_000,
        fail_at: Some(3_210),
    }));
    let error = loader(config(&emu, ""))
        .load_batch(&req)
        .await
        .expect_err("the body fails");
    assert!(matches!(error, LoadError::Permanent { .. }), "{error}");
    assert!(
        error.to_string().contains("row 3210 cannot be encoded"),
        "{error}"
    );
    assert!(ids(&emu).is_empty());
    assert_ne!(emu.label_state("d", "pieces_2"), Some(TxnState::Visible));
}
