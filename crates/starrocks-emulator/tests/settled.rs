//! The behaviours settled from source in spec §9 and §10, and CSV loading.

use crate::support::{message, status, Fixture};

#[tokio::test]
async fn s9_2_partial_update_with_deletes_applies_them() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, a INT NULL, b INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.load_json("t", &[], r#"[{"id":1,"a":1,"b":1},{"id":2,"a":2,"b":2}]"#)
        .await;
    let r = fx
        .load_json(
            "t",
            &[("partial_update", "true"), ("columns", "id,a,__op")],
            r#"[{"id":1,"a":10,"__op":0},{"id":2,"__op":1},{"id":9,"__op":1}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        r["NumberLoadedRows"], 3,
        "§9.6: deleting a missing key still counts"
    );
    assert_eq!(fx.text_rows("t"), vec![vec!["1", "10", "1"]]);
}

#[tokio::test]
async fn s9_5_bare_nan_tokens_are_lazy() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE f (id INT NOT NULL, x DOUBLE NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    // Non-strict: NaN in a mapped nullable column → NULL; an unmapped key is skipped.
    let r = fx
        .load(
            "f",
            &[("format", "json")],
            r#"{"id":1,"x":NaN,"other":Infinity}"#,
        )
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(fx.text_rows("f"), vec![vec!["1", "NULL"]]);
    // Strict: filtered.
    let r = fx
        .load(
            "f",
            &[("format", "json"), ("strict_mode", "true")],
            r#"{"id":2,"x":-Infinity}"#,
        )
        .await;
    assert_eq!(message(&r), "too many filtered rows");
    // Lower-case bare nan is filtered even in non-strict mode.
    let r = fx
        .load("f", &[("format", "json")], r#"{"id":3,"x":nan}"#)
        .await;
    assert_eq!(message(&r), "too many filtered rows");
}

#[tokio::test]
async fn s9_9_composite_key_size_formula() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE a (i BIGINT NOT NULL, s VARCHAR(200) NOT NULL) PRIMARY KEY (i, s) DISTRIBUTED BY HASH(i)")
        .await;
    fx.sql("CREATE TABLE b (s VARCHAR(200) NOT NULL, i BIGINT NOT NULL) PRIMARY KEY (s, i) DISTRIBUTED BY HASH(s)")
        .await;
    let row = |n: usize, first: &str| {
        if first == "i" {
            format!(r#"[{{"i":1,"s":"{}"}}]"#, "x".repeat(n))
        } else {
            format!(r#"[{{"s":"{}","i":1}}]"#, "x".repeat(n))
        }
    };
    assert_eq!(
        status(&fx.load_json("a", &[], &row(120, "i")).await),
        "Success"
    );
    assert_eq!(
        message(&fx.load_json("a", &[], &row(121, "i")).await),
        "primary key size exceed the limit."
    );
    assert_eq!(
        status(&fx.load_json("b", &[], &row(118, "s")).await),
        "Success"
    );
    assert_eq!(
        message(&fx.load_json("b", &[], &row(119, "s")).await),
        "primary key size exceed the limit."
    );
}

#[tokio::test]
async fn s10_6_array_json_and_varbinary() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE x (id INT NOT NULL, arr ARRAY<INT> NULL, tags ARRAY<VARCHAR(3)> NULL, bin VARBINARY NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json(
            "x",
            &[("strict_mode", "true")],
            r#"[{"id":1,"arr":[1,"12","a",null],"tags":["ab","abcd",true],"bin":"AQI="}]"#,
        )
        .await;
    assert_eq!(
        status(&r),
        "Success",
        "element failures are NULL even in strict mode"
    );
    assert_eq!(
        fx.text_rows("x"),
        vec![vec!["1", "[1,12,null,null]", r#"["ab",null,"1"]"#, "AQI="]]
    );
    let r = fx.load_json("x", &[], r#"[{"id":2,"arr":"[1,2]"}]"#).await;
    assert_eq!(status(&r), "Success");
    assert_eq!(fx.text_rows("x")[1][1], "NULL", "a string is not an array");
    let r = fx
        .load_json(
            "x",
            &[("strict_mode", "true")],
            r#"[{"id":3,"arr":"[1,2]"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Fail");
}

#[tokio::test]
async fn s9_7_add_not_null_column_without_default_is_refused() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let err = fx
        .emu
        .execute_sql(
            Some("d"),
            "ALTER TABLE t ADD COLUMN (a INT NULL, b INT NOT NULL)",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 1064);
    assert!(err
        .message
        .ends_with("Detail message: Field 'b' is not null but doesn't have a default value."));
}

#[tokio::test]
async fn csv_loads_with_separators_nulls_and_op_column() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE c (id INT NOT NULL, name VARCHAR(10) NULL, n INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx.load("c", &[], "1\ta\t10\n2\t\\N\t\n3\tc\tx\n").await;
    assert_eq!(status(&r), "Success");
    assert_eq!(
        fx.text_rows("c"),
        vec![
            vec!["1", "a", "10"],
            vec!["2", "NULL", "NULL"],
            vec!["3", "c", "NULL"]
        ]
    );
    let r = fx
        .load(
            "c",
            &[
                ("column_separator", ","),
                ("row_delimiter", "\\n"),
                ("columns", "id,name,n,__op"),
            ],
            "1,a,10,1\n4,d,4,0\n",
        )
        .await;
    assert_eq!(status(&r), "Success");
    let ids: Vec<String> = fx
        .text_rows("c")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, ["2", "3", "4"]);
    let r = fx.load("c", &[("column_separator", ",")], "5,e\n").await;
    assert_eq!(status(&r), "Fail");
    assert_eq!(r["NumberFilteredRows"], 1);
    let r = fx
        .load("c", &[("columns", "id,__op='delete'")], "2\n")
        .await;
    assert_eq!(status(&r), "Success");
    assert_eq!(fx.rows("c").len(), 2);
}

#[tokio::test]
async fn jsonpaths_and_json_root() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE p (id INT NOT NULL, name VARCHAR(10) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json(
            "p",
            &[
                ("jsonpaths", r#"["$.k.id","$.who"]"#),
                ("columns", "id,name"),
            ],
            r#"[{"k":{"id":1},"who":"a"},{"k":{"id":2}}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    assert_eq!(fx.text_rows("p"), vec![vec!["1", "a"], vec!["2", "NULL"]]);
    let r = fx
        .load(
            "p",
            &[
                ("format", "json"),
                ("json_root", "$.data"),
                ("strip_outer_array", "true"),
            ],
            r#"{"data":[{"id":3,"name":"c"}]}"#,
        )
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    assert_eq!(fx.rows("p").len(), 3);
}

#[tokio::test]
async fn column_mapping_plan_errors() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE m (id INT NOT NULL, v INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    let r = fx
        .load_json("m", &[("columns", "id")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(message(&r), "Column has no default value. column: v");
    let r = fx
        .load_json("m", &[("columns", "id,v,id")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(message(&r), "Duplicate column: id");
    let r = fx
        .load_json("m", &[("columns", "id,v,x=id")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(message(&r), "Mapping column is not in table. column: x");
    let r = fx
        .load_json("m", &[("columns", "id,v,__op='merge'")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(message(&r), "load op type string not supported: merge");
    let r = fx
        .load_json("m", &[("columns", "id,v,__op=2")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(
        message(&r),
        "const load op type column should only be upsert(0)/delete(1)"
    );
    let r = fx
        .load_json(
            "m",
            &[("columns", "id,v,extra")],
            r#"[{"id":1,"v":2,"extra":"ignored"}]"#,
        )
        .await;
    assert_eq!(
        status(&r),
        "Success",
        "a plain unknown name is a source-only field"
    );
    let r = fx
        .load_json("m", &[("strict_mode", "yes")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(message(&r), "Invalid strict mode format. Must be bool type");
    let r = fx
        .load_json("m", &[("timeout", "-1")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(message(&r), "Invalid timeout format");
}

#[tokio::test]
async fn malformed_bodies_fail_the_load_not_the_server() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE m (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    for body in ["x", "{", "[{]", "{\"id\":1", "\u{0}"] {
        let r = fx.load("m", &[("format", "json")], body).await;
        assert_eq!(status(&r), "Fail", "{body}");
    }
    let r = fx
        .load(
            "m",
            &[("format", "json"), ("strip_outer_array", "true")],
            "[1, {\"id\":2}]",
        )
        .await;
    assert_eq!(
        r["NumberFilteredRows"], 1,
        "a non-object element filters only that row"
    );
    let ok = fx.load_json("m", &[], r#"[{"id":1}]"#).await;
    assert_eq!(status(&ok), "Success");
}

#[tokio::test]
async fn default_current_timestamp_fills_omitted_columns() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE ts (id INT NOT NULL, at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json("ts", &[("columns", "id")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    let at = fx.text_rows("ts")[0][1].clone();
    assert!(at.starts_with("20"), "{at}");
}

#[tokio::test]
async fn admin_set_frontend_config() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE e (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.sql("ADMIN SET FRONTEND CONFIG ('empty_load_as_error' = 'false')")
        .await;
    let r = fx.load_json("e", &[], "[]").await;
    assert_eq!(status(&r), "Success", "{r}");
    fx.sql("ADMIN SET FRONTEND CONFIG (\"label_keep_max_num\" = \"1\")")
        .await;
    fx.load_json("e", &[("label", "a1")], r#"[{"id":1}]"#).await;
    fx.load_json("e", &[("label", "a2")], r#"[{"id":2}]"#).await;
    fx.emu.run_label_cleaner();
    assert!(fx.emu.label_state("d", "a1").is_none());
    assert!(fx.emu.label_state("d", "a2").is_some());
}

#[tokio::test]
async fn s10_3_a_transaction_is_bound_to_one_table() {
    use crate::support::{basic, raw_request, BodyMode};
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE a (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    fx.sql("CREATE TABLE b (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let auth = basic("root", "");
    let call = |op: &'static str, table: &'static str, body: &'static str| {
        let auth = auth.clone();
        let addr = fx.emu.be_http_addr();
        async move {
            let method = if op == "load" { "PUT" } else { "POST" };
            raw_request(
                addr,
                method,
                &format!("/api/transaction/{op}"),
                &[
                    ("Authorization", auth.as_str()),
                    ("label", "multi"),
                    ("db", "d"),
                    ("table", table),
                    ("format", "json"),
                ],
                body.as_bytes(),
                BodyMode::Eager,
            )
            .await
            .unwrap()
            .json()
        }
    };
    assert_eq!(call("begin", "a", "").await["Status"], "OK");
    let other = call("load", "b", r#"{"id":1}"#).await;
    assert_eq!(other["Status"], "INVALID_ARGUMENT");
    assert_eq!(
        other["Message"],
        "Request table b not equal transaction table a"
    );
    let multi = raw_request(
        fx.emu.be_http_addr(),
        "POST",
        "/api/transaction/begin",
        &[
            ("Authorization", auth.as_str()),
            ("label", "m2"),
            ("db", "d"),
            ("transaction_type", "multi"),
        ],
        b"",
        BodyMode::Eager,
    )
    .await
    .unwrap()
    .json();
    assert_eq!(
        multi["Message"],
        "Multi-statement transaction requests can only be sent to FE nodes, not BE nodes"
    );
}

#[tokio::test]
async fn where_header_drops_rows_as_unselected() {
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE w (id INT NOT NULL, v INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let r = fx
        .load_json(
            "w",
            &[("where", "v > 1 AND id != 4")],
            r#"[{"id":1,"v":1},{"id":2,"v":2},{"id":3,"v":null},{"id":4,"v":9},{"id":5,"v":3}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    assert_eq!(r["NumberTotalRows"], 5);
    assert_eq!(r["NumberLoadedRows"], 2);
    assert_eq!(r["NumberUnselectedRows"], 3);
    assert_eq!(fx.text_rows("w"), vec![vec!["2", "2"], vec!["5", "3"]]);
    let r = fx
        .load_json("w", &[("where", "v >")], r#"[{"id":1}]"#)
        .await;
    assert_eq!(status(&r), "Fail");
}

#[tokio::test]
async fn partial_update_mode_column_and_row_give_the_same_table() {
    // Spec §1.5/§3.5: `row`, `column` and `auto` are accepted; for upserts of listed columns the
    // result is the same (column mode changes how the BE writes, not what is stored).
    let fx = Fixture::new().await;
    for table in ["by_row", "by_column", "by_auto"] {
        fx.sql(&format!(
            "CREATE TABLE {table} (id INT NOT NULL, a INT NULL, b VARCHAR(8) NULL DEFAULT 'd') \
             PRIMARY KEY (id) DISTRIBUTED BY HASH(id)"
        ))
        .await;
        fx.load_json(
            table,
            &[],
            r#"[{"id":1,"a":1,"b":"x"},{"id":2,"a":2,"b":"y"}]"#,
        )
        .await;
    }
    for (table, mode) in [
        ("by_row", "row"),
        ("by_column", "column"),
        ("by_auto", "auto"),
    ] {
        let r = fx
            .load_json(
                table,
                &[
                    ("partial_update", "true"),
                    ("partial_update_mode", mode),
                    ("columns", "id,a"),
                ],
                r#"[{"id":1,"a":10},{"id":3,"a":30},{"id":2}]"#,
            )
            .await;
        assert_eq!(status(&r), "Success", "{mode}: {r}");
        assert_eq!(r["NumberLoadedRows"], 3, "{mode}");
    }
    let expected = vec![
        vec!["1", "10", "x"],
        vec!["2", "NULL", "y"],
        vec!["3", "30", "d"],
    ];
    assert_eq!(fx.text_rows("by_row"), expected);
    assert_eq!(fx.text_rows("by_column"), expected);
    assert_eq!(fx.text_rows("by_auto"), expected);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn compressed_json_payloads_gzip_and_zlib() {
    // Spec §1.5: `compression` or `Content-Encoding` names a codec of the FE's
    // CompressionUtils table (case-insensitive); the BE inflates before parsing.
    let fx = Fixture::new().await;
    fx.sql("CREATE TABLE t (id INT NOT NULL, a VARCHAR(16) NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)")
        .await;
    let json = br#"[{"id":1,"a":"one"},{"id":2,"a":"two"}]"#;
    let packed = gzip(json);
    let base = [("format", "json"), ("strip_outer_array", "true")];
    let with = |extra: (&'static str, &'static str)| {
        let mut h = base.to_vec();
        h.push(extra);
        h
    };
    let r = fx
        .emu
        .stream_load("d", "t", &with(("compression", "gzip")), &packed)
        .await;
    assert_eq!(r.status.text(), "Success", "{}", r.message);
    assert_eq!(r.loaded_rows, 2);
    assert_eq!(
        r.load_bytes,
        packed.len() as u64,
        "LoadBytes counts received bytes"
    );
    let r = fx
        .emu
        .stream_load(
            "d",
            "t",
            &with(("Content-Encoding", "DEFLATE")),
            &zlib(br#"[{"id":3,"a":"three"}]"#),
        )
        .await;
    assert_eq!(r.status.text(), "Success", "{}", r.message);
    assert_eq!(fx.text_rows("t").len(), 3);

    let r = fx
        .emu
        .stream_load("d", "t", &with(("compression", "brotli")), &packed)
        .await;
    assert_eq!(r.status.text(), "Fail");
    assert_eq!(r.message, "Unsupported compression type: brotli");
    assert!(r.txn_id > 0, "checked after begin");

    let mut broken = packed.clone();
    broken.truncate(packed.len() / 2);
    let r = fx
        .emu
        .stream_load(
            "d",
            "t",
            &[
                ("format", "json"),
                ("strip_outer_array", "true"),
                ("compression", "gzip"),
                ("label", "broken"),
            ],
            &broken,
        )
        .await;
    assert_eq!(r.status.text(), "Fail");
    assert!(
        r.message.starts_with("Failed to decompress"),
        "{}",
        r.message
    );
    assert_eq!(
        fx.emu.label_state("d", "broken"),
        Some(starrocks_emulator::TxnState::Aborted)
    );
    assert_eq!(fx.text_rows("t").len(), 3);
}

#[tokio::test]
async fn columns_expressions_over_source_fields() {
    // Spec §1.5: `columns` may map `col=expr`; source keys used in expressions are read as VARCHAR
    // (§10.6) and the result is cast to the column type.
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE t (id INT NOT NULL, doubled BIGINT NULL, name VARCHAR(32) NULL, \
         loaded_at DATETIME NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    let r = fx
        .load_json(
            "t",
            &[(
                "columns",
                "id, tmp, fname, doubled=tmp*2, name=concat(upper(fname), '-', id), loaded_at=now()",
            )],
            r#"[{"id":1,"tmp":"21","fname":"ann"},{"id":2,"tmp":5,"fname":null}]"#,
        )
        .await;
    assert_eq!(status(&r), "Success", "{r}");
    let rows = fx.text_rows("t");
    assert_eq!(rows[0][..3], ["1", "42", "ANN-1"]);
    assert_eq!(
        rows[1][..3],
        ["2", "10", "NULL"],
        "concat with NULL is NULL"
    );
    assert!(
        rows[0][3].starts_with("20"),
        "now() fills a DATETIME: {}",
        rows[0][3]
    );

    let r = fx
        .load_json(
            "t",
            &[("columns", "id, tmp, doubled=no_such_fn(tmp)")],
            r#"[{"id":3,"tmp":"1"}]"#,
        )
        .await;
    assert_eq!(status(&r), "Fail");
    assert!(
        message(&r).starts_with("No matching function with signature: no_such_fn"),
        "{}",
        message(&r)
    );
}
