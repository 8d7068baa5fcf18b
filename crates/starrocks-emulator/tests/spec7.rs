//! One test per behaviour of spec §7 ("what a naive emulator gets wrong").

use crate::support::{basic, message, raw_request, status, BodyMode, Fixture};
use starrocks_emulator::{FaultKind, FaultRule, TxnState};

const T: &str = "CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR(8) NULL, v INT NULL DEFAULT \"7\") PRIMARY KEY (id) DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\")";

async fn fixture() -> Fixture {
    let fx = Fixture::new().await;
    fx.sql(T).await;
    fx
}

#[tokio::test]
async fn s01_redirect_carries_no_credentials_and_be_enforces_auth() {
    let fx = fixture().await;
    let auth = basic("root", "");
    let fe = raw_request(
        fx.emu.fe_http_addr(),
        "PUT",
        "/api/d/t/_stream_load?x=1",
        &[
            ("Authorization", &auth),
            ("Expect", "100-continue"),
            ("format", "json"),
        ],
        b"{\"id\":1}",
        BodyMode::WaitContinue,
    )
    .await
    .unwrap();
    assert_eq!(fe.status, 307);
    assert!(!fe.got_continue, "the FE never sends 100 Continue");
    assert!(!fe.body_sent);
    assert_eq!(fe.header("connection"), Some("close"));
    let location = fe.header("location").unwrap();
    assert_eq!(
        location,
        format!("http://{}/api/d/t/_stream_load?x=1", fx.emu.be_http_addr())
    );
    assert_ne!(fx.emu.fe_http_addr().port(), fx.emu.be_http_addr().port());
    assert!(!location.contains("root"));
    // A client that drops Authorization on the port change (reqwest's policy).
    let be = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load?x=1",
        &[("Expect", "100-continue"), ("format", "json")],
        b"{\"id\":1}",
        BodyMode::WaitContinue,
    )
    .await
    .unwrap();
    assert_eq!(be.status, 200);
    assert!(!be.got_continue, "refused in the header phase");
    assert_eq!(status(&be.json()), "Fail");
    assert_eq!(message(&be.json()), "no valid Basic authorization");
    assert!(fx.rows("t").is_empty());
}

#[tokio::test]
async fn s02_fe_requires_expect_and_be_sends_continue_only_after_header_phase() {
    let fx = fixture().await;
    let auth = basic("root", "");
    let no_expect = raw_request(
        fx.emu.fe_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[("Authorization", &auth)],
        b"{}",
        BodyMode::WaitContinue,
    )
    .await
    .unwrap();
    assert_eq!(no_expect.status, 200);
    assert_eq!(no_expect.header("connection"), Some("close"));
    assert_eq!(
        no_expect.body,
        r#"{"Status":"FAILED","Message":"class com.starrocks.common.DdlException: There is no 100-continue header"}"#
    );
    // BE: a header error is answered at once, without 100 Continue.
    let bad = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[
            ("Authorization", &auth),
            ("Expect", "100-continue"),
            ("format", "xml"),
        ],
        b"{}",
        BodyMode::WaitContinue,
    )
    .await
    .unwrap();
    assert!(!bad.got_continue);
    assert!(!bad.body_sent);
    assert_eq!(message(&bad.json()), "unknown data format, format=xml");
    // A good request gets 100 Continue, then the result.
    let good = raw_request(
        fx.emu.be_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[
            ("Authorization", &auth),
            ("Expect", "100-continue"),
            ("format", "json"),
        ],
        b"{\"id\":1}",
        BodyMode::WaitContinue,
    )
    .await
    .unwrap();
    assert!(good.got_continue);
    assert_eq!(status(&good.json()), "Success");
}

#[tokio::test]
async fn s03_errors_are_http_200_only_fe_auth_is_401() {
    let fx = fixture().await;
    let r = fx
        .load_raw("t", &[("format", "json")], "{\"id\":\"x\"}")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(status(&r.json()), "Fail");
    let wrong = basic("root", "nope");
    let fe = raw_request(
        fx.emu.fe_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[("Authorization", &wrong), ("Expect", "100-continue")],
        b"",
        BodyMode::WaitContinue,
    )
    .await
    .unwrap();
    assert_eq!(fe.status, 401);
    assert_eq!(fe.header("www-authenticate"), Some("Basic realm=\"\""));
    assert_eq!(fe.json()["status"], "FAILED");
    assert_eq!(fe.json()["code"], "1");
    assert!(fe.json()["msg"]
        .as_str()
        .unwrap()
        .starts_with("Access denied for root@"));
}

#[tokio::test]
async fn s04_three_status_vocabularies() {
    let fx = fixture().await;
    let ok = fx.load_json("t", &[], r#"[{"id":1}]"#).await;
    assert_eq!(status(&ok), "Success");
    // FE REST error: lower-case keys.
    let auth = basic("root", "");
    let state = raw_request(
        fx.emu.fe_http_addr(),
        "GET",
        "/api/nodb/get_load_state?label=x",
        &[("Authorization", &auth)],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(
        state.body,
        r#"{"status":"FAILED","code":"1","msg":"unknown database, database=nodb","message":"unknown database, database=nodb"}"#
    );
    // FE TransactionResult error: capitalised keys, "FAILED".
    let fe = raw_request(
        fx.emu.fe_http_addr(),
        "PUT",
        "/api/d/t/_stream_load",
        &[("Authorization", &auth)],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(fe.json()["Status"], "FAILED");
}

#[tokio::test]
async fn s05_label_semantics() {
    let fx = fixture().await;
    fx.sql("CREATE DATABASE d2").await;
    fx.emu.execute_sql(Some("d2"), T).await.unwrap();
    let first = fx
        .load_json("t", &[("label", "L-1_a")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(status(&first), "Success");
    let again = fx
        .load_json("t", &[("label", "L-1_a")], r#"[{"id":2}]"#)
        .await;
    assert_eq!(status(&again), "Label Already Exists");
    assert_eq!(again["ExistingJobStatus"], "FINISHED");
    assert_eq!(message(&again), "Label [L-1_a] has already been used.");
    assert_eq!(again["TxnId"], -1);
    assert_eq!(fx.rows("t").len(), 1, "the replay did not apply");
    // Aborted labels are reusable.
    let failed = fx
        .load_json("t", &[("label", "L2")], r#"[{"id":"bad"}]"#)
        .await;
    assert_eq!(status(&failed), "Fail");
    assert_eq!(fx.emu.label_state("d", "L2"), Some(TxnState::Aborted));
    let retry = fx.load_json("t", &[("label", "L2")], r#"[{"id":3}]"#).await;
    assert_eq!(status(&retry), "Success");
    // Per database.
    let other_db = fx
        .emu
        .stream_load(
            "d2",
            "t",
            &[("label", "L-1_a"), ("format", "json")],
            b"{\"id\":1}",
        )
        .await;
    assert_eq!(other_db.status.text(), "Success");
    // Format.
    let bad = fx
        .load_json("t", &[("label", "a.b")], r#"[{"id":4}]"#)
        .await;
    assert_eq!(
        message(&bad),
        "Label format error. regex: ^[-\\w]{1,128}$, label: a.b"
    );
    let long = "x".repeat(129);
    let bad = fx
        .load_json("t", &[("label", &long)], r#"[{"id":4}]"#)
        .await;
    assert_eq!(status(&bad), "Fail");
}

#[tokio::test]
async fn s06_publish_timeout_is_durable() {
    let fx = fixture().await;
    fx.emu.inject(FaultRule::new(FaultKind::PublishTimeout));
    let r = fx.load_json("t", &[("label", "p1")], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Publish Timeout");
    assert_eq!(
        message(&r),
        "transaction commit successfully, BUT data will be visible later"
    );
    assert_eq!(fx.emu.label_state("d", "p1"), Some(TxnState::Committed));
    assert_eq!(fx.rows("t").len(), 1);
    let replay = fx.load_json("t", &[("label", "p1")], r#"[{"id":1}]"#).await;
    assert_eq!(replay["ExistingJobStatus"], "FINISHED");
    for _ in 0..100 {
        if fx.emu.label_state("d", "p1") == Some(TxnState::Visible) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("never published");
}

#[tokio::test]
async fn s07_silent_nulls_in_non_strict_mode() {
    let fx = fixture().await;
    fx.sql("CREATE TABLE nn (id INT NOT NULL, s VARCHAR(3) NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json("t", &[], r#"[{"id":1,"name":"ééééé","v":"abc"}]"#)
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(r["NumberFilteredRows"], 0);
    assert!(r.get("ErrorURL").is_none());
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "NULL", "NULL"]]);
    // Into NOT NULL the NULL is a filtered row.
    let r = fx
        .load_json(
            "nn",
            &[("max_filter_ratio", "1")],
            r#"[{"id":1,"s":"toolong"},{"id":2,"s":"ok"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(r["NumberFilteredRows"], 1);
    assert_eq!(fx.text_rows("nn"), vec![vec!["2", "ok"]]);
    // Strict mode filters the bad conversion even into a nullable column.
    let r = fx
        .load_json(
            "t",
            &[("strict_mode", "true")],
            r#"[{"id":5,"name":"123456789"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Fail");
    assert_eq!(message(&r), "too many filtered rows");
}

#[tokio::test]
async fn s08_missing_json_keys_are_null_but_omitted_columns_use_default() {
    let fx = fixture().await;
    let r = fx.load_json("t", &[], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        fx.text_rows("t"),
        vec![vec!["1", "NULL", "NULL"]],
        "missing key: NULL, not 7"
    );
    let r = fx
        .load_json("t", &[("columns", "id,name")], r#"[{"id":2,"name":"n"}]"#)
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        fx.text_rows("t")[1],
        vec!["2", "n", "7"],
        "omitted column: DEFAULT"
    );
}

#[tokio::test]
async fn s09_max_filter_ratio_defaults_to_zero() {
    let fx = fixture().await;
    let body = r#"[{"id":1},{"id":null},{"id":3}]"#;
    let r = fx.load_json("t", &[], body).await;
    assert_eq!(status(&r), "Fail");
    assert_eq!(message(&r), "too many filtered rows");
    assert_eq!(r["NumberTotalRows"], 3);
    assert_eq!(r["NumberLoadedRows"], 2);
    assert_eq!(r["NumberFilteredRows"], 1);
    assert!(r["ErrorURL"].as_str().is_some());
    assert!(fx.rows("t").is_empty());
    let r = fx
        .load_json("t", &[("max_filter_ratio", "0.5")], body)
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(fx.rows("t").len(), 2);
}

#[tokio::test]
async fn s10_error_url_on_success_serves_rejected_rows() {
    let fx = fixture().await;
    let r = fx
        .load_json(
            "t",
            &[("max_filter_ratio", "0.9")],
            r#"[{"id":1},{"id":null,"name":"x"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let url = r["ErrorURL"].as_str().expect("ErrorURL on Success");
    let path = url
        .strip_prefix(&format!("http://{}", fx.emu.be_http_addr()))
        .expect("served by the BE");
    let log = raw_request(
        fx.emu.be_http_addr(),
        "GET",
        path,
        &[],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(log.status, 200);
    assert!(
        log.body.contains(
            "Error: NULL value in non-nullable column 'id'. Row: {\"id\":null,\"name\":\"x\"}"
        ),
        "{}",
        log.body
    );
}

#[tokio::test]
async fn s11_json_array_needs_strip_outer_array() {
    let fx = fixture().await;
    let r = fx.load("t", &[("format", "json")], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Fail");
    let r = fx
        .load(
            "t",
            &[("format", "json"), ("strip_outer_array", "1")],
            r#"[{"id":1}]"#,
        )
        .await;
    assert_eq!(status(&r), "Fail", "\"1\" means false");
    let r = fx
        .load(
            "t",
            &[("format", "json"), ("strip_outer_array", "True")],
            r#"[{"id":1}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let r = fx
        .load("t", &[("format", "json")], "{\"id\":2}\n{\"id\":3}")
        .await;
    assert_eq!(status(&r), "Success", "a stream of objects is fine");
    let r = fx
        .load(
            "t",
            &[("format", "json"), ("strip_outer_array", "true")],
            "{\"id\":2}",
        )
        .await;
    assert!(message(&r).starts_with("the value should be array type with strip_outer_array=true"));
}

#[tokio::test]
async fn s12_json_booleans_into_varchar_become_digits_and_numbers_keep_text() {
    let fx = fixture().await;
    let r = fx
        .load_json(
            "t",
            &[],
            r#"[{"id":1,"name":true},{"id":2,"name":false},{"id":3,"name":1.50}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let names: Vec<String> = fx
        .text_rows("t")
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(names, ["1", "0", "1.50"]);
}

#[tokio::test]
async fn s13_json_string_into_json_column_stays_a_string() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE j (id INT NOT NULL, doc JSON NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    let r = fx
        .load_json(
            "j",
            &[],
            r#"[{"id":1,"doc":"{\"a\":1}"},{"id":2,"doc":{"a":1}},{"id":3,"doc":null}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        fx.text_rows("j"),
        vec![
            vec!["1", r#""{\"a\":1}""#],
            vec!["2", r#"{"a": 1}"#],
            vec!["3", "NULL"]
        ]
    );
    // CSV: parsed only when the text starts with {, [ or ".
    let r = fx
        .load("j", &[("column_separator", "|")], "4|{\"b\":2}\n5|123\n")
        .await;
    assert_eq!(status(&r), "Success");
    let rows = fx.text_rows("j");
    assert_eq!(rows[3], vec!["4", r#"{"b": 2}"#]);
    assert_eq!(rows[4], vec!["5", r#""123""#]);
}

#[tokio::test]
async fn s14_datetime_ignores_offsets_and_truncates_fraction() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE dt (id INT NOT NULL, ts DATETIME NULL, d DATE NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json(
            "dt",
            &[],
            r#"[{"id":1,"ts":"2024-01-01 10:00:00+02:00","d":"2024-01-02 23:59:59"},{"id":2,"ts":"2024-01-01T10:00:00.1234567Z","d":"20240103"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        fx.text_rows("dt"),
        vec![
            vec!["1", "2024-01-01 10:00:00", "2024-01-02"],
            vec!["2", "2024-01-01 10:00:00.123456", "2024-01-03"]
        ]
    );
}

#[tokio::test]
async fn s15_last_write_wins_inside_one_load_including_op() {
    let fx = fixture().await;
    let r = fx
        .load_json(
            "t",
            &[],
            r#"[{"id":1,"name":"a"},{"id":1,"name":"b"},{"id":2,"name":"x"},{"id":2,"__op":1},{"id":3,"__op":1},{"id":3,"name":"back"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(r["NumberLoadedRows"], 6);
    assert_eq!(
        fx.text_rows("t"),
        vec![vec!["1", "b", "NULL"], vec!["3", "back", "NULL"]]
    );
}

#[tokio::test]
async fn s16_partial_update_rules() {
    let fx = fixture().await;
    fx.load_json("t", &[], r#"[{"id":1,"name":"a","v":1}]"#)
        .await;
    let r = fx
        .load_json(
            "t",
            &[("partial_update", "true"), ("columns", "name")],
            r#"[{"name":"z"}]"#,
        )
        .await;
    assert_eq!(message(&r), "key column id not in partial update columns");
    let r = fx
        .load_json(
            "t",
            &[
                ("partial_update", "true"),
                ("columns", "id,name"),
                ("partial_update_mode", "bogus"),
            ],
            r#"[{"id":1,"name":"b"},{"id":2,"name":"new"},{"id":1}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success", "unknown mode ignored");
    // Last row for key 1 lists `name` but lacks the key: NULL, `v` untouched; new key 2 gets DEFAULT 7.
    assert_eq!(
        fx.text_rows("t"),
        vec![vec!["1", "NULL", "1"], vec!["2", "new", "7"]]
    );
}

#[tokio::test]
async fn s17_merge_condition() {
    let fx = fixture().await;
    fx.load_json("t", &[], r#"[{"id":1,"name":"a","v":5}]"#)
        .await;
    let r = fx
        .load_json(
            "t",
            &[("merge_condition", "v")],
            r#"[{"id":1,"name":"old","v":4},{"id":2,"name":"n","v":0}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let r = fx
        .load_json(
            "t",
            &[("merge_condition", "v")],
            r#"[{"id":1,"name":"eq","v":5}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        fx.text_rows("t"),
        vec![vec!["1", "eq", "5"], vec!["2", "n", "0"]]
    );
    let r = fx
        .load_json(
            "t",
            &[("merge_condition", "v")],
            r#"[{"id":1,"v":9},{"id":2,"__op":1}]"#,
        )
        .await;
    assert_eq!(status(&r), "Fail");
    assert!(
        message(&r).contains("delete with condition column v"),
        "{r}"
    );
    let r = fx
        .load_json("t", &[("merge_condition", "id")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(
        message(&r),
        "Merge condition column id should not be primary key!"
    );
    let r = fx
        .load_json("t", &[("merge_condition", "name")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(
        message(&r),
        "Merge condition column has invalid type maybe bitmap/hll/percentile/json/varchar!"
    );
    let r = fx
        .load_json("t", &[("merge_condition", "zz")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(
        message(&r),
        "Merge condition column zz should be a column of the table t"
    );
}

#[tokio::test]
async fn s18_primary_key_over_128_bytes_fails_the_whole_load() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE k (k VARCHAR(300) NOT NULL, v INT) PRIMARY KEY (k) DISTRIBUTED BY HASH(k)",
    )
    .await;
    let ok = format!(r#"[{{"k":"{}"}}]"#, "a".repeat(128));
    assert_eq!(status(&fx.load_json("k", &[], &ok).await), "Success");
    let body = format!(r#"[{{"k":"short"}},{{"k":"{}"}}]"#, "a".repeat(129));
    let r = fx.load_json("k", &[("max_filter_ratio", "1")], &body).await;
    assert_eq!(status(&r), "Fail");
    assert_eq!(message(&r), "primary key size exceed the limit.");
    assert_eq!(fx.rows("k").len(), 1);
}

#[tokio::test]
async fn s19_transaction_api() {
    let fx = fixture().await;
    let auth = basic("root", "");
    let base = |label: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", basic("root", "")),
            ("label", label.to_string()),
            ("db", "d".to_string()),
            ("table", "t".to_string()),
        ]
    };
    async fn call(
        fx: &Fixture,
        method: &str,
        op: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> serde_json::Value {
        let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let fe = raw_request(
            fx.emu.fe_http_addr(),
            method,
            &format!("/api/transaction/{op}"),
            &refs,
            body.as_bytes(),
            BodyMode::Eager,
        )
        .await
        .unwrap();
        if fe.status != 307 {
            return fe.json();
        }
        let location = fe.header("location").unwrap().to_string();
        let path = location
            .strip_prefix(&format!("http://{}", fx.emu.be_http_addr()))
            .unwrap()
            .to_string();
        raw_request(
            fx.emu.be_http_addr(),
            method,
            &path,
            &refs,
            body.as_bytes(),
            BodyMode::Eager,
        )
        .await
        .unwrap()
        .json()
    }
    let json = |extra: &[(&'static str, &'static str)], label| {
        let mut h = base(label);
        h.push(("format", "json".into()));
        h.push(("strip_outer_array", "true".into()));
        for (k, v) in extra {
            h.push((k, v.to_string()));
        }
        h
    };
    let begun = call(&fx, "POST", "begin", &base("tx1"), "").await;
    assert_eq!(begun["Status"], "OK", "{begun}");
    assert!(begun["TxnId"].as_i64().unwrap() > 0);
    let again = call(&fx, "POST", "begin", &base("tx1"), "").await;
    assert_eq!(again["Status"], "LABEL_ALREADY_EXISTS");
    let loaded = call(
        &fx,
        "PUT",
        "load",
        &json(&[], "tx1"),
        r#"[{"id":1},{"id":2}]"#,
    )
    .await;
    assert_eq!(loaded["Status"], "OK", "{loaded}");
    assert!(
        loaded.get("NumberLoadedRows").is_none(),
        "no row counts on load"
    );
    let loaded = call(&fx, "PUT", "load", &json(&[], "tx1"), r#"[{"id":3}]"#).await;
    assert_eq!(loaded["Status"], "OK");
    let drift = call(
        &fx,
        "PUT",
        "load",
        &json(&[("strict_mode", "true")], "tx1"),
        r#"[{"id":4}]"#,
    )
    .await;
    assert_eq!(drift["Message"], "load request not equal last.");
    let post = call(&fx, "POST", "load", &json(&[], "tx1"), r#"[{"id":4}]"#).await;
    assert_eq!(post["Status"], "FAILED", "load must be PUT");
    assert!(fx.rows("t").is_empty(), "nothing visible before commit");
    let committed = call(&fx, "POST", "commit", &base("tx1"), "").await;
    assert_eq!(committed["Status"], "OK", "{committed}");
    assert_eq!(committed["NumberLoadedRows"], 3);
    assert_eq!(fx.rows("t").len(), 3);
    let twice = call(&fx, "POST", "commit", &base("tx1"), "").await;
    assert_eq!(twice["Status"], "OK");
    assert!(twice["Message"]
        .as_str()
        .unwrap()
        .contains("has already committed"));
    let rollback = call(&fx, "POST", "rollback", &base("tx1"), "").await;
    assert_eq!(
        rollback["Status"], "FAILED",
        "answered by the FE: {rollback}"
    );
    assert!(rollback["Message"]
        .as_str()
        .unwrap()
        .contains("cannot abort committed transaction"));
    // Prepare, then commit; and commit without data.
    call(&fx, "POST", "begin", &base("tx2"), "").await;
    let empty = call(&fx, "POST", "commit", &base("tx2"), "").await;
    assert!(empty["Message"]
        .as_str()
        .unwrap()
        .contains("hasn't send any data yet"));
    call(&fx, "POST", "begin", &base("tx3"), "").await;
    call(&fx, "PUT", "load", &json(&[], "tx3"), r#"[{"id":9}]"#).await;
    let prepared = call(&fx, "POST", "prepare", &base("tx3"), "").await;
    assert_eq!(prepared["Status"], "OK");
    assert_eq!(fx.emu.label_state("d", "tx3"), Some(TxnState::Prepared));
    let committed = call(&fx, "POST", "commit", &base("tx3"), "").await;
    assert_eq!(committed["Status"], "OK");
    assert_eq!(committed["Label"], "tx3");
    assert!(committed["TxnId"].as_i64().unwrap() > 0);
    assert!(
        committed.get("NumberLoadedRows").is_none(),
        "a PREPARED txn is committed by the FE, which answers a TransactionResult: {committed}"
    );
    assert_eq!(fx.rows("t").len(), 4);
    assert_eq!(fx.emu.label_state("d", "tx3"), Some(TxnState::Visible));
    // A PREPARED txn rolled back through the FE.
    call(&fx, "POST", "begin", &base("tx5"), "").await;
    call(&fx, "PUT", "load", &json(&[], "tx5"), r#"[{"id":10}]"#).await;
    call(&fx, "POST", "prepare", &base("tx5"), "").await;
    let rolled = call(&fx, "POST", "rollback", &base("tx5"), "").await;
    assert_eq!(rolled["Status"], "OK", "{rolled}");
    assert_eq!(fx.emu.label_state("d", "tx5"), Some(TxnState::Aborted));
    let again = call(&fx, "POST", "rollback", &base("tx5"), "").await;
    assert!(again["Message"]
        .as_str()
        .unwrap()
        .contains("has already aborted"));
    let commit_aborted = call(&fx, "POST", "commit", &base("tx5"), "").await;
    assert_eq!(commit_aborted["Status"], "FAILED");
    assert_eq!(fx.rows("t").len(), 4);
    // Rollback, then the aborted label is reusable; unknown labels.
    call(&fx, "POST", "begin", &base("tx4"), "").await;
    let rolled = call(&fx, "POST", "rollback", &base("tx4"), "").await;
    assert_eq!(rolled["Status"], "OK");
    assert_eq!(
        call(&fx, "POST", "begin", &base("tx4"), "").await["Status"],
        "OK"
    );
    let unknown = call(&fx, "POST", "commit", &base("nope"), "").await;
    assert_eq!(unknown["Status"], "FAILED");
    assert_eq!(
        unknown["Message"],
        "class com.starrocks.common.UserException: No transaction found by label nope"
    );
    let no_node = call(&fx, "PUT", "load", &json(&[], "nope"), "[]").await;
    assert_eq!(
        no_node["Message"],
        "class com.starrocks.common.UserException: transaction with op load label nope has no node"
    );
    drop(auth);
}

#[tokio::test]
async fn s19_idle_transactions_are_aborted() {
    let fx = fixture().await;
    let auth = basic("root", "");
    let headers = [
        ("Authorization", auth.as_str()),
        ("label", "idle"),
        ("db", "d"),
        ("table", "t"),
        ("idle_transaction_timeout", "0"),
    ];
    let r = raw_request(
        fx.emu.be_http_addr(),
        "POST",
        "/api/transaction/begin",
        &headers,
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(r.json()["Status"], "OK");
    for _ in 0..100 {
        if fx.emu.label_state("d", "idle") == Some(TxnState::Aborted) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("idle txn not aborted");
}

#[tokio::test]
async fn s20_ddl_is_asynchronous() {
    let fx = fixture().await;
    fx.sql("ALTER TABLE t ADD COLUMN extra INT NULL").await;
    assert_eq!(
        fx.emu.table_columns("d", "t").unwrap().len(),
        3,
        "not applied yet"
    );
    let second = fx
        .emu
        .execute_sql(Some("d"), "ALTER TABLE t ADD COLUMN other INT NULL")
        .await
        .unwrap_err();
    assert_eq!(second.code, 1064);
    assert!(
        second
            .message
            .contains("A schema change operation is in progress"),
        "{second}"
    );
    // Loads keep working during the job.
    let r = fx.load_json("t", &[], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Success");
    wait_alter_finished(&fx, "t").await;
    assert_eq!(fx.emu.table_columns("d", "t").unwrap().len(), 4);
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "NULL", "NULL", "NULL"]]);
}

pub async fn wait_alter_finished(fx: &Fixture, table: &str) {
    for _ in 0..200 {
        let out = fx
            .emu
            .execute_sql(
                Some("d"),
                &format!("SHOW ALTER TABLE COLUMN WHERE TableName = \"{table}\" ORDER BY JobId DESC LIMIT 1"),
            )
            .await
            .unwrap();
        let state = out.rows()[0][9].to_text().unwrap();
        if state == "FINISHED" || state == "CANCELLED" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("ALTER job did not finish");
}

#[tokio::test]
async fn s21_metadata_quirks() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE m (id LARGEINT NOT NULL, b BOOLEAN NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let desc = fx.emu.execute_sql(Some("d"), "DESC m").await.unwrap();
    let keys: Vec<String> = desc
        .rows()
        .iter()
        .map(|r| r[3].to_text().unwrap())
        .collect();
    assert_eq!(keys, ["true", "false"]);
    let info = fx
        .emu
        .execute_sql(
            None,
            "SELECT COLUMN_NAME, IS_NULLABLE, COLUMN_TYPE, DATA_TYPE, COLUMN_KEY FROM information_schema.columns WHERE TABLE_SCHEMA = 'd' AND TABLE_NAME = 'm' ORDER BY ORDINAL_POSITION",
        )
        .await
        .unwrap();
    let rows: Vec<Vec<String>> = info
        .rows()
        .iter()
        .map(|r| r.iter().map(|v| v.to_text().unwrap_or_default()).collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["id", "NO", "bigint(20) unsigned", "bigint unsigned", "PRI"],
            vec!["b", "NO", "tinyint(1)", "tinyint", ""],
        ]
    );
}

#[tokio::test]
async fn s22_fe_does_not_validate_db_or_table() {
    let fx = fixture().await;
    let r = fx.load_json("nope", &[], r#"[{"id":1}]"#).await;
    assert_eq!(message(&r), "unknown table \"d.nope\"");
    assert_eq!(r["TxnId"], -1);
}

#[tokio::test]
async fn s23_delete_rows_get_no_not_null_exemption() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE s (id INT NOT NULL, v INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    fx.load_json("s", &[], r#"[{"id":1,"v":1}]"#).await;
    let r = fx.load_json("s", &[], r#"[{"id":1,"__op":1}]"#).await;
    assert_eq!(status(&r), "Fail");
    assert_eq!(r["NumberFilteredRows"], 1);
    assert_eq!(fx.rows("s").len(), 1);
    // The working forms: a placeholder, or a partial load of keys + __op.
    let r = fx
        .load_json(
            "s",
            &[("partial_update", "true"), ("columns", "id,__op")],
            r#"[{"id":1,"__op":1}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert!(fx.rows("s").is_empty());
}

#[tokio::test]
async fn s24_decimal_overflow_filtered_and_rounding_half_away() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE dec (id INT NOT NULL, x DECIMAL(10,2) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json(
            "dec",
            &[],
            r#"[{"id":1,"x":1.245},{"id":2,"x":"-1.245"},{"id":3,"x":2.5}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    let xs: Vec<String> = fx
        .text_rows("dec")
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(xs, ["1.25", "-1.25", "2.50"]);
    let r = fx
        .load_json("dec", &[], r#"[{"id":4,"x":123456789.5}]"#)
        .await;
    assert_eq!(status(&r), "Fail", "filtered even in non-strict mode");
    assert_eq!(r["NumberFilteredRows"], 1);
}

#[tokio::test]
async fn s25_empty_load_and_partial_without_columns_fail() {
    let fx = fixture().await;
    let r = fx.load_json("t", &[("label", "e1")], "").await;
    assert_eq!(status(&r), "Fail");
    assert!(message(&r).starts_with("No partitions have data available for loading."));
    assert_eq!(r["NumberTotalRows"], 0);
    let r = fx.load_json("t", &[("label", "e1")], "[]").await;
    assert_eq!(
        status(&r),
        "Fail",
        "label reusable after the rollback, still empty"
    );
    let r = fx
        .load_json("t", &[("partial_update", "true")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(message(&r), "key column id not in partial update columns");
}

#[tokio::test]
async fn s26_float_nan_and_infinity_strings_are_stored() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE f (id INT NOT NULL, x DOUBLE NULL, y FLOAT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json(
            "f",
            &[("strict_mode", "true")],
            r#"[{"id":1,"x":"NaN","y":"Infinity"},{"id":2,"x":"-Infinity","y":"inf"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        fx.text_rows("f"),
        vec![vec!["1", "nan", "inf"], vec!["2", "-inf", "inf"]]
    );
}

#[tokio::test]
async fn s27_defaults_are_checked_and_existing_rows_read_them() {
    let fx = fixture().await;
    for (sql, needle) in [
        (
            "ALTER TABLE t ADD COLUMN j JSON NULL DEFAULT '{}'",
            "Cannot add default value for type 'JSON'",
        ),
        (
            "ALTER TABLE t ADD COLUMN s VARCHAR(2) NULL DEFAULT 'abc'",
            "Default value is too long: abc",
        ),
    ] {
        let error = fx.emu.execute_sql(Some("d"), sql).await.unwrap_err();
        assert_eq!(error.code, 1064, "{sql}");
        assert!(error.message.contains(needle), "{sql}: {error}");
    }
    let r = fx.load_json("t", &[], r#"[{"id":1}]"#).await;
    assert_eq!(status(&r), "Success");
    fx.sql("ALTER TABLE t ADD COLUMN k INT NULL DEFAULT '42'")
        .await;
    wait_alter_finished(&fx, "t").await;
    // The row loaded before the column reads its DEFAULT.
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "NULL", "NULL", "42"]]);
}

#[tokio::test]
async fn s28_health_needs_no_credentials() {
    let fx = fixture().await;
    let r = raw_request(
        fx.emu.fe_http_addr(),
        "GET",
        "/api/health",
        &[],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "OK");
    assert_eq!(r.json()["online_backend_num"], 1);
}
