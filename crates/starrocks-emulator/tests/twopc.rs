//! The transaction API's prepare step (spec §5): the ratio check fails the prepare and rolls
//! the txn back; after a prepare the BE has no context for the label.

use serde_json::Value as J;
use starrocks_emulator::TxnState;

use crate::support::{basic, raw_request, BodyMode, Fixture};

/// `/api/transaction/{op}` through the FE, following a 307 to the BE.
async fn call(fx: &Fixture, method: &str, op: &str, label: &str, body: &str) -> J {
    let auth = basic("root", "");
    let headers = [
        ("Authorization", auth.as_str()),
        ("label", label),
        ("db", "d"),
        ("table", "t"),
        ("format", "json"),
        ("strip_outer_array", "true"),
    ];
    let path = format!("/api/transaction/{op}");
    let fe = raw_request(
        fx.emu.fe_http_addr(),
        method,
        &path,
        &headers,
        body.as_bytes(),
        BodyMode::Eager,
    )
    .await
    .unwrap();
    if fe.status != 307 {
        return fe.json();
    }
    let location = fe.header("location").unwrap().to_string();
    let be_path = location
        .strip_prefix(&format!("http://{}", fx.emu.be_http_addr()))
        .unwrap()
        .to_string();
    raw_request(
        fx.emu.be_http_addr(),
        method,
        &be_path,
        &headers,
        body.as_bytes(),
        BodyMode::Eager,
    )
    .await
    .unwrap()
    .json()
}

async fn fixture() -> Fixture {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE t (id INT NOT NULL, v INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    fx
}

#[tokio::test]
async fn prepare_fails_on_too_many_filtered_rows_and_rolls_back() {
    let fx = fixture().await;
    assert_eq!(call(&fx, "POST", "begin", "p1", "").await["Status"], "OK");
    let loaded = call(&fx, "PUT", "load", "p1", r#"[{"id":1,"v":1},{"id":2}]"#).await;
    assert_eq!(loaded["Status"], "OK", "{loaded}");
    let prepared = call(&fx, "POST", "prepare", "p1", "").await;
    assert_eq!(prepared["Status"], "INTERNAL_ERROR", "{prepared}");
    assert_eq!(prepared["Message"], "too many filtered rows");
    assert!(prepared["ErrorURL"].is_string(), "{prepared}");
    assert!(prepared.get("TxnId").is_none(), "{prepared}");
    assert_eq!(fx.emu.label_state("d", "p1"), Some(TxnState::Aborted));
    assert!(fx.rows("t").is_empty());
    // The label is reusable.
    assert_eq!(call(&fx, "POST", "begin", "p1", "").await["Status"], "OK");
}

#[tokio::test]
async fn after_prepare_the_be_knows_no_such_transaction() {
    let fx = fixture().await;
    call(&fx, "POST", "begin", "p2", "").await;
    call(&fx, "PUT", "load", "p2", r#"[{"id":1,"v":1}]"#).await;
    let prepared = call(&fx, "POST", "prepare", "p2", "").await;
    assert_eq!(prepared["Status"], "OK", "{prepared}");
    let again = call(&fx, "POST", "prepare", "p2", "").await;
    assert_eq!(again["Status"], "TXN_NOT_EXISTS", "{again}");
    assert_eq!(again["Message"], "transaction with label p2 not exists");
    let load = call(&fx, "PUT", "load", "p2", r#"[{"id":2,"v":2}]"#).await;
    assert_eq!(load["Status"], "TXN_NOT_EXISTS", "{load}");
    assert_eq!(load["Message"], "Transaction with label p2 not exists");
    // The FE still commits the prepared txn.
    assert_eq!(call(&fx, "POST", "commit", "p2", "").await["Status"], "OK");
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "1"]]);
}
