//! The HTTP API while replicating: /healthz, /readyz, /status, /metrics, pause and resume.

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::ops::{self, Telemetry};
use dbmazz::replicator::{self, RunContext};
use dbmazz::sink::RecordingSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::support::{eventually, start_pg, stream_config, wait_for_streaming, TempDir};

/// One HTTP/1.1 request; returns (status code, body).
pub async fn http(address: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn status_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_pause_and_resume_while_replicating() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("ops").unwrap();
    pg.psql(
        "ops",
        "CREATE TABLE ops_orders (id bigint PRIMARY KEY, status text NOT NULL);",
    )
    .unwrap();
    let state = TempDir::new("dbmazz-ops-test");
    let config = stream_config(&pg, "ops", &["public.ops_orders"], &state);
    let telemetry = Telemetry::new();
    let server = ops::serve("127.0.0.1:0", Arc::clone(&telemetry))
        .await
        .unwrap();
    let address = server.local_addr();

    // Before the pipeline runs: alive, not ready.
    assert_eq!(http(address, "GET", "/healthz").await.0, 200);
    assert_eq!(http(address, "GET", "/readyz").await.0, 503);

    let sink = RecordingSink::new();
    let (shutdown, receiver) = watch::channel(false);
    let context = RunContext::new(receiver).with_telemetry(Arc::clone(&telemetry));
    let task_sink = Arc::new(sink.clone());
    let task = tokio::spawn(async move { replicator::run(&config, task_sink, context).await });
    wait_for_streaming(&pg).await;

    pg.psql(
        "ops",
        "INSERT INTO ops_orders SELECT g, 'new' FROM generate_series(1, 100) g;
         UPDATE ops_orders SET status = 'paid' WHERE id <= 10;
         DELETE FROM ops_orders WHERE id > 95;",
    )
    .unwrap();
    let status = eventually(
        Duration::from_secs(30),
        "/status with 115 changes",
        || async {
            let (code, body) = http(address, "GET", "/status").await;
            assert_eq!(code, 200);
            let status = status_json(&body);
            let table = status["tables"]
                .as_array()?
                .iter()
                .find(|table| table["table"] == "public.ops_orders")?
                .clone();
            (table["inserts"] == 100 && table["updates"] == 10 && table["deletes"] == 5)
                .then_some(status)
        },
    )
    .await;
    assert_eq!(status["state"], "streaming", "{status:#}");
    assert_eq!(status["sink"], "recording");
    assert_eq!(status["source"]["slot"], "test_slot");
    assert_eq!(status["source"]["database"], "ops");
    assert!(status["lsn"]["durable"].as_str().unwrap().contains('/'));
    assert!(status["last_error"].is_null());
    assert_eq!(http(address, "GET", "/readyz").await.0, 200);

    let (code, metrics) = http(address, "GET", "/metrics").await;
    assert_eq!(code, 200);
    for expected in [
        r#"dbmazz_rows_total{table="public.ops_orders",op="insert"} 100"#,
        r#"dbmazz_rows_total{table="public.ops_orders",op="update"} 10"#,
        r#"dbmazz_rows_total{table="public.ops_orders",op="delete"} 5"#,
        r#"dbmazz_loads_total{table="public.ops_orders",outcome="ok"}"#,
        // Failure series exist before the first failure.
        r#"dbmazz_loads_total{table="public.ops_orders",outcome="failed"} 0"#,
        r#"dbmazz_errors_total{reason="slot_lost"}"#,
        r#"dbmazz_load_duration_seconds_count{table="public.ops_orders"}"#,
        "dbmazz_lag_seconds ",
        "dbmazz_pipeline_memory_limit_bytes 16777216",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }

    // Paused: nothing more reaches the sink, and /status says so.
    assert_eq!(http(address, "POST", "/pause").await.0, 200);
    eventually(Duration::from_secs(10), "state paused", || async {
        let status = status_json(&http(address, "GET", "/status").await.1);
        (status["state"] == "paused").then_some(())
    })
    .await;
    let before = sink.durable_changes().len();
    pg.psql(
        "ops",
        "INSERT INTO ops_orders SELECT g, 'late' FROM generate_series(1001, 1050) g;",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.durable_changes().len(),
        before,
        "loads went on while paused"
    );
    assert_eq!(http(address, "GET", "/readyz").await.0, 200);

    // Resumed: the held changes arrive, none lost.
    assert_eq!(http(address, "POST", "/resume").await.0, 200);
    eventually(
        Duration::from_secs(30),
        "the changes made while paused",
        || async { (sink.durable_changes().len() == before + 50).then_some(()) },
    )
    .await;
    assert_eq!(http(address, "GET", "/pause").await.0, 405);
    assert_eq!(http(address, "GET", "/nope").await.0, 404);
    // A bad snapshot request: 400 with the same JSON shape as every other answer.
    let (code, body) = http(address, "POST", "/snapshot?tables=orders").await;
    assert_eq!(code, 400, "{body}");
    let answer = status_json(&body);
    assert_eq!(answer["outcome"], "bad_request", "{body}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|message| message.contains("say which table")),
        "{body}"
    );

    shutdown.send_replace(true);
    task.await.unwrap().unwrap();
    let status = status_json(&http(address, "GET", "/status").await.1);
    assert_eq!(status["state"], "stopped");
    assert_eq!(http(address, "GET", "/readyz").await.0, 503);
}

#[tokio::test]
async fn a_busy_listen_address_is_a_clear_error() {
    let telemetry = Telemetry::new();
    let first = ops::serve("127.0.0.1:0", Arc::clone(&telemetry))
        .await
        .unwrap();
    let taken = first.local_addr().to_string();
    let error = ops::serve(&taken, telemetry)
        .await
        .err()
        .expect("second bind must fail");
    let text = error.to_string();
    assert!(text.starts_with("http.listen: cannot listen on"), "{text}");
    assert!(text.contains("pick a free address"), "{text}");
}
