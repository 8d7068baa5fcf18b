//! Every mapped type of docs/type-mapping.md with edge values, PostgreSQL → dbmazz → the
//! emulator; each stored value is checked against the value the doc's mapping prescribes
//! (written out here, as StarRocks prints it: BOOLEAN as 1/0, FLOAT NaN/±∞ as nan/inf/-inf,
//! JSON with `": "` and `", "`, arrays as `[1,null]`).

use std::sync::Arc;
use std::time::Duration;

use dbmazz::local_pg::LocalPgOptions;
use dbmazz::sink::starrocks::DeleteMode;
use starrocks_emulator::{Emulator, EmulatorConfig};

use crate::support::starrocks::{replicate_in_process, sink_options, sr_rows, wait_identical_in};
use crate::support::{eventually, start_pg, wait_for_streaming, PG_VERSIONS};

/// A column: its PostgreSQL type and (SQL literal, expected StarRocks text) per row; rows past
/// the list get NULL. Row 1 is NULL in every column.
struct Case {
    column: &'static str,
    pg_type: &'static str,
    values: Vec<(String, Option<String>)>,
}

fn case(column: &'static str, pg_type: &'static str, values: &[(&str, Option<&str>)]) -> Case {
    let mut all = vec![("NULL".to_string(), None)];
    all.extend(
        values
            .iter()
            .map(|(sql, expected)| (sql.to_string(), expected.map(str::to_string))),
    );
    Case {
        column,
        pg_type,
        values: all,
    }
}

fn cases() -> Vec<Case> {
    // StarRocks prints FLOAT as an f32 and DOUBLE as an f64 in shortest Ryu digits, with an
    // exponent outside −4..7 / −4..15 (be/src/util/mysql_row_buffer.cpp, thirdparty/patches/ryu.patch).
    let f32_max = "3.4028235e+38".to_string();
    let f64_max = "1.7976931348623157e+308".to_string();
    let f64_min_positive = "5e-324".to_string();
    let big_json_sql = "jsonb_build_object('k', repeat('x', 200000))".to_string();
    let big_json = format!("{{\"k\": \"{}\"}}", "x".repeat(200_000));
    let huge_number = format!("1{}", "0".repeat(400));
    vec![
        case("b", "boolean", &[("true", Some("1")), ("false", Some("0"))]),
        case(
            "i2",
            "smallint",
            &[
                ("-32768", Some("-32768")),
                ("32767", Some("32767")),
                ("0", Some("0")),
            ],
        ),
        case(
            "i4",
            "integer",
            &[
                ("-2147483648", Some("-2147483648")),
                ("2147483647", Some("2147483647")),
            ],
        ),
        case(
            "i8",
            "bigint",
            &[
                ("-9223372036854775808", Some("-9223372036854775808")),
                ("9223372036854775807", Some("9223372036854775807")),
            ],
        ),
        case(
            "f4",
            "real",
            &[
                ("'NaN'", Some("nan")),
                ("'Infinity'", Some("inf")),
                ("'-Infinity'", Some("-inf")),
                ("'3.4028235e38'", Some(&f32_max)),
                ("'-0.25'", Some("-0.25")),
            ],
        ),
        case(
            "f8",
            "double precision",
            &[
                ("'NaN'", Some("nan")),
                ("'Infinity'", Some("inf")),
                ("'-Infinity'", Some("-inf")),
                ("'1.7976931348623157e308'", Some(&f64_max)),
                ("'5e-324'", Some(&f64_min_positive)),
                ("'0.1'", Some("0.1")),
            ],
        ),
        // numeric(p,s) with p ≤ 38: DECIMAL(p,s), exact — 30 significant digits.
        case(
            "n30",
            "numeric(30,5)",
            &[
                (
                    "1234567890123456789012345.67890",
                    Some("1234567890123456789012345.67890"),
                ),
                (
                    "-1234567890123456789012345.67891",
                    Some("-1234567890123456789012345.67891"),
                ),
                ("0.00001", Some("0.00001")),
                ("0", Some("0.00000")),
                ("'NaN'", None),
            ],
        ),
        // Unconstrained numeric: DECIMAL(38,9); NaN and digits past the scale are lossy → NULL.
        case(
            "nw",
            "numeric",
            &[
                (
                    "12345678901234567890123456789.123456789",
                    Some("12345678901234567890123456789.123456789"),
                ),
                ("0.1", Some("0.100000000")),
                ("'NaN'", None),
                ("0.0000000001", None),
                ("'Infinity'", None),
            ],
        ),
        case(
            "t",
            "text",
            &[
                ("''", Some("")),
                ("'é日本🦀'", Some("é日本🦀")),
                (
                    r#"E'line\nbreak\ttab\\back"quote'"#,
                    Some("line\nbreak\ttab\\back\"quote"),
                ),
                (r"E'\x01ctrl'", Some("\u{1}ctrl")),
            ],
        ),
        case(
            "vc",
            "varchar(3)",
            &[("'日本語'", Some("日本語")), ("''", Some(""))],
        ),
        case(
            "ch",
            "char(3)",
            &[("'a'", Some("a  ")), ("'日'", Some("日  "))],
        ),
        case(
            "d",
            "date",
            &[
                ("'infinity'", None),
                ("'-infinity'", None),
                ("'0001-01-01 BC'", Some("0000-01-01")),
                ("'0001-12-31 BC'", Some("0000-12-31")),
                ("'0002-01-01 BC'", None),
                ("'9999-12-31'", Some("9999-12-31")),
                ("'10000-01-01'", None),
                ("'2000-02-29'", Some("2000-02-29")),
            ],
        ),
        case(
            "ts",
            "timestamp",
            &[
                ("'infinity'", None),
                ("'-infinity'", None),
                (
                    "'2024-03-10 01:59:59.999999'",
                    Some("2024-03-10 01:59:59.999999"),
                ),
                ("'2024-03-10 02:00:00'", Some("2024-03-10 02:00:00")),
                ("'0001-01-01 00:00:00 BC'", Some("0000-01-01 00:00:00")),
                (
                    "'1999-12-31 23:59:59.000001'",
                    Some("1999-12-31 23:59:59.000001"),
                ),
            ],
        ),
        // Written in a session with TimeZone America/New_York (see insert_script): wall times
        // around the March and November 2024 changes, stored as UTC.
        case(
            "tz",
            "timestamptz",
            &[
                (
                    "'2024-03-10 01:59:59.999999'",
                    Some("2024-03-10 06:59:59.999999"),
                ),
                ("'2024-03-10 03:00:00'", Some("2024-03-10 07:00:00")),
                ("'2024-03-09 12:00:00'", Some("2024-03-09 17:00:00")),
                ("'2024-03-10 12:00:00'", Some("2024-03-10 16:00:00")),
                ("'2024-11-03 01:30:00-04'", Some("2024-11-03 05:30:00")),
                ("'2024-11-03 01:30:00-05'", Some("2024-11-03 06:30:00")),
                ("'2000-01-01 00:00:00+05:30'", Some("1999-12-31 18:30:00")),
                (
                    "'1900-01-01 00:00:00+00:19:32'",
                    Some("1899-12-31 23:40:28"),
                ),
                ("'infinity'", None),
                ("'-infinity'", None),
            ],
        ),
        case(
            "tm",
            "time",
            &[
                ("'23:59:59.999999'", Some("23:59:59.999999")),
                ("'00:00'", Some("00:00:00")),
            ],
        ),
        case(
            "tmz",
            "timetz",
            &[("'07:30:00+05:30'", Some("07:30:00+05:30"))],
        ),
        case(
            "iv",
            "interval",
            &[
                (
                    "'1 year 2 mons 3 days 04:05:06.5'",
                    Some("P1Y2M3DT4H5M6.5S"),
                ),
                ("'-1 day'", Some("P-1D")),
                ("'0'", Some("PT0S")),
            ],
        ),
        case(
            "u",
            "uuid",
            &[(
                "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",
                Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            )],
        ),
        case(
            "j",
            "json",
            &[
                (r#"'{"b":1,  "a":[1,2]}'"#, Some(r#"{"b": 1, "a": [1, 2]}"#)),
                ("'null'", None),
            ],
        ),
        case(
            "jb",
            "jsonb",
            &[
                (
                    r#"'{"nested": {"a": [[1], []]}, "n": null, "e": "é🦀"}'"#,
                    Some(r#"{"e": "é🦀", "n": null, "nested": {"a": [[1], []]}}"#),
                ),
                (&big_json_sql, Some(&big_json)),
                ("'null'", None),
                ("'1e400'", Some(&huge_number)),
                ("'[]'", Some("[]")),
            ],
        ),
        case(
            "ai",
            "integer[]",
            &[
                ("'{1,NULL,3}'", Some("[1,null,3]")),
                ("'{}'", Some("[]")),
                ("'[0:1]={7,8}'", Some("[7,8]")),
                // PostgreSQL does not enforce dimensions: a 2-D value in int[] is lossy.
                ("'{{1,2},{3,4}}'", None),
            ],
        ),
        case(
            "at",
            "text[]",
            &[(
                r#"'{"a,b",NULL,"","q\"uote","NULL"}'"#,
                Some(r#"["a,b",null,"","q\"uote","NULL"]"#),
            )],
        ),
        case(
            "ad",
            "date[]",
            &[(
                "'{2024-01-01,NULL,infinity}'",
                Some(r#"["2024-01-01",null,null]"#),
            )],
        ),
        case(
            "ba",
            "bytea",
            &[
                (r"'\x00ff00'", Some("00ff00")),
                (r"'\x'", Some("")),
                (r"'\x000000000000'", Some("000000000000")),
            ],
        ),
        case(
            "ip",
            "inet",
            &[("'192.168.0.1/24'", Some("192.168.0.1/24"))],
        ),
        // bit(n)'s typmod is n itself: a full-length value fits its VARCHAR(n).
        case("bi5", "bit(5)", &[("B'10101'", Some("10101"))]),
        case(
            "bi64",
            "bit(64)",
            &[(
                "repeat('10', 32)::bit(64)",
                Some("1010101010101010101010101010101010101010101010101010101010101010"),
            )],
        ),
        case("vb", "varbit(10)", &[("B'1010101010'", Some("1010101010"))]),
        case("mo", "mood", &[("'sad'", Some("sad"))]),
        case("dom", "positive", &[("5", Some("5"))]),
    ]
}

fn row_count(cases: &[Case]) -> usize {
    cases
        .iter()
        .map(|case| case.values.len())
        .max()
        .unwrap_or(0)
}

fn insert_script(cases: &[Case]) -> String {
    let mut script = String::from("SET TimeZone = 'America/New_York';\nBEGIN;\n");
    for row in 0..row_count(cases) {
        let values: Vec<&str> = cases
            .iter()
            .map(|case| {
                case.values
                    .get(row)
                    .map_or("NULL", |value| value.0.as_str())
            })
            .collect();
        script.push_str(&format!(
            "INSERT INTO edge VALUES ({}, {});\n",
            row + 1,
            values.join(", ")
        ));
    }
    script.push_str("COMMIT;\n");
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_values_of_every_mapped_type_arrive_as_documented() {
    let cases = cases();
    for major in PG_VERSIONS {
        let pg = start_pg(major, LocalPgOptions::default());
        pg.create_database("shop").unwrap();
        let columns: Vec<String> = cases
            .iter()
            .map(|case| format!("{} {}", case.column, case.pg_type))
            .collect();
        pg.psql(
            "shop",
            &format!(
                "CREATE TYPE mood AS ENUM ('ok', 'sad');
                 CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
                 CREATE TABLE edge (id int PRIMARY KEY, {});",
                columns.join(", ")
            ),
        )
        .unwrap();
        let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
        let replication = replicate_in_process(
            &pg,
            &emulator,
            "shop",
            &["public.edge"],
            sink_options(DeleteMode::Hard),
            |_| {},
        )
        .await;
        wait_for_streaming(&pg).await;
        pg.psql("shop", &insert_script(&cases)).unwrap();
        let rows = row_count(&cases);
        eventually(Duration::from_secs(60), "every edge row", || async {
            let count = sr_rows(&emulator, "shop", "SELECT count(*) FROM edge").await;
            (count == vec![rows.to_string()]).then_some(())
        })
        .await;
        let mut wrong = Vec::new();
        for case in &cases {
            let stored = emulator
                .query_text(
                    Some("shop"),
                    &format!("SELECT {} FROM edge ORDER BY id", case.column),
                )
                .await
                .unwrap();
            for (row, stored) in stored.into_iter().enumerate() {
                let expected = case.values.get(row).and_then(|value| value.1.clone());
                let stored = stored.into_iter().next().flatten();
                if stored != expected {
                    let sql = case
                        .values
                        .get(row)
                        .map_or("NULL", |value| value.0.as_str());
                    let cut = |text: Option<String>| {
                        text.map(|text| text.chars().take(80).collect::<String>())
                    };
                    wrong.push(format!(
                        "{} {} = {}: expected {:?}, stored {:?}",
                        case.column,
                        case.pg_type,
                        sql.chars().take(60).collect::<String>(),
                        cut(expected),
                        cut(stored)
                    ));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "PG{major}: values differ from docs/type-mapping.md:\n{}",
            wrong.join("\n")
        );
        replication.stop().await;
    }
}

/// Columns of domain types take their base type in StarRocks (`posint` over int → INT, a
/// domain over a domain over numeric(10,2) → DECIMAL(10,2)), by snapshot and by stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_columns_take_their_base_type() {
    let pg = start_pg(18, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE DOMAIN posint AS int CHECK (VALUE > 0);
         CREATE DOMAIN price AS numeric(10,2);
         CREATE DOMAIN sale_price AS price CHECK (VALUE < 1000);
         CREATE TABLE dom (id int PRIMARY KEY, p posint, s sale_price, t text);
         INSERT INTO dom VALUES (1, 5, 12.5, 'a'), (2, 7, 999.99, 'b');",
    )
    .unwrap();
    let emulator = Arc::new(Emulator::start(EmulatorConfig::ephemeral()).await.unwrap());
    let (client, connection) = tokio_postgres::connect(&pg.url("shop"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut options = sink_options(DeleteMode::Hard);
    options.type_options.domains = Arc::new(dbmazz::source::read_domains(&client).await.unwrap());
    let replication =
        replicate_in_process(&pg, &emulator, "shop", &["public.dom"], options, |_| {}).await;
    wait_for_streaming(&pg).await;
    pg.psql("shop", "INSERT INTO dom VALUES (3, 9, 0.01, 'c');")
        .unwrap();
    let sql = "SELECT id, p, s, t FROM dom ORDER BY id";
    wait_identical_in(&pg, &emulator, "shop", sql, sql, Duration::from_secs(30)).await;
    let described: Vec<String> = sr_rows(&emulator, "shop", "DESC dom")
        .await
        .iter()
        .map(|row| row.split('|').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(described[1].to_lowercase(), "p int", "{described:?}");
    assert_eq!(
        described[2].to_lowercase(),
        "s decimal(10,2)",
        "{described:?}"
    );

    // A domain created while streaming maps like one known at start (not as an unknown type,
    // stored as text, which a restart would then fill in the base type's format).
    pg.psql(
        "shop",
        "CREATE DOMAIN flag AS boolean;
         ALTER TABLE dom ADD COLUMN f flag;
         INSERT INTO dom VALUES (4, 1, 1, 'd', true);",
    )
    .unwrap();
    eventually(
        Duration::from_secs(30),
        "the added domain column",
        || async {
            let rows = sr_rows(&emulator, "shop", "SELECT f FROM dom WHERE id = 4").await;
            (rows == ["1"]).then_some(())
        },
    )
    .await;
    let described = sr_rows(&emulator, "shop", "DESC dom").await;
    assert!(
        described[4].to_lowercase().starts_with("f|boolean"),
        "{described:?}"
    );
    replication.stop().await;
}
