//! Bad input through the `dbmazz` binary with the StarRocks sink: each mistake ends the run
//! with exit code 1 and one `error:` line naming the problem and the fix, and the slot's
//! confirmed position does not move (nothing is acknowledged).

use std::time::{Duration, Instant};

use dbmazz::local_pg::{HbaAuth, LocalPg, LocalPgOptions};
use starrocks_emulator::{Emulator, EmulatorConfig, FaultKind, FaultRule};

use crate::support::starrocks::{
    binary_config, confirmed_flush, spawn_dbmazz, sr_rows, BinarySink,
};
use crate::support::{eventually, start_pg, TempDir};

const SLOT: &str = "bad_slot";

/// Runs the binary to its end (at most 60 s) and returns its exit code and `error:` lines.
async fn run_to_exit(
    pg_url: &str,
    sink: &BinarySink,
    dir: &TempDir,
    name: &str,
) -> (i32, Vec<String>) {
    let config_path = dir.0.join(format!("{name}.toml"));
    let log_path = dir.0.join(format!("{name}.log"));
    std::fs::write(
        &config_path,
        binary_config(pg_url, SLOT, &["public.t"], &dir.0.join(name), sink),
    )
    .unwrap();
    let mut child = spawn_dbmazz(&config_path, &log_path);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "{name}: dbmazz did not stop within 60 s; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let errors = log
        .lines()
        .filter(|line| line.starts_with("error:"))
        .map(str::to_string)
        .collect();
    (status.code().unwrap_or(-1), errors)
}

fn prepare(pg: &LocalPg) {
    pg.create_database("shop").unwrap();
    // The slot and the publication exist and have unread changes: a bad run must not
    // acknowledge them.
    pg.psql(
        "shop",
        &format!(
            "CREATE TYPE point3 AS (x int, y int, z int);
             CREATE TABLE t (id int PRIMARY KEY, v text, p point3);
             CREATE PUBLICATION {SLOT}_pub FOR TABLE t;
             SELECT pg_create_logical_replication_slot('{SLOT}', 'pgoutput');
             INSERT INTO t VALUES (1, 'a', '(1,2,3)'), (2, 'b', NULL);
             UPDATE t SET v = 'c' WHERE id = 1;"
        ),
    )
    .unwrap();
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_1_with_one_clear_line_and_acknowledges_nothing() {
    let started = Instant::now();
    let pg = start_pg(
        18,
        LocalPgOptions {
            auth: HbaAuth::ScramSha256,
            ..LocalPgOptions::default()
        },
    );
    prepare(&pg);
    let before = confirmed_flush(&pg, "shop", SLOT).unwrap();
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    emulator
        .execute_sql(None, "CREATE DATABASE shop")
        .await
        .unwrap();
    // An existing StarRocks table without PostgreSQL's column v.
    emulator
        .execute_sql(None, "CREATE DATABASE narrow")
        .await
        .unwrap();
    emulator
        .execute_sql(
            Some("narrow"),
            "CREATE TABLE t (id INT NOT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH (id) \
             PROPERTIES (\"replication_num\" = \"1\")",
        )
        .await
        .unwrap();
    let dir = TempDir::new("dbmazz-bad-input-test");
    let good_url = pg.url("shop");
    let wrong_password_url =
        good_url.replacen(&format!(":{}@", pg.password()), ":not-the-password@", 1);
    assert_ne!(wrong_password_url, good_url);
    let good_sink = || BinarySink::emulator(&emulator, "shop");
    // (name, source url, sink, what the error line must contain)
    let cases: Vec<(&str, String, BinarySink, Vec<&str>)> = vec![
        (
            "wrong_pg_password",
            wrong_password_url,
            good_sink(),
            vec!["password"],
        ),
        (
            "unknown_pg_database",
            pg.url("nosuchdb"),
            good_sink(),
            vec!["nosuchdb", "does not exist", "create the database"],
        ),
        (
            "refused_pg",
            good_url.replacen(
                &format!(":{}/", pg.port()),
                &format!(":{}/", closed_port()),
                1,
            ),
            good_sink(),
            vec!["Connection refused", "is PostgreSQL running"],
        ),
        (
            "wrong_starrocks_password",
            good_url.clone(),
            BinarySink {
                password: "wrong".into(),
                ..good_sink()
            },
            vec!["root", "sink.starrocks.user/password"],
        ),
        (
            "unknown_database",
            good_url.clone(),
            BinarySink {
                database: "nowhere".into(),
                create_tables: false,
                ..good_sink()
            },
            vec!["nowhere", "CREATE DATABASE", "create_tables"],
        ),
        (
            "missing_table",
            good_url.clone(),
            BinarySink {
                create_tables: false,
                ..good_sink()
            },
            vec!["shop.t", "does not exist", "create_tables = true"],
        ),
        (
            "table_lacks_a_column",
            good_url.clone(),
            BinarySink {
                database: "narrow".into(),
                create_tables: false,
                ..good_sink()
            },
            vec!["narrow.t", "lacks columns: v VARCHAR", "ADD COLUMN"],
        ),
        (
            "unreachable_fe",
            good_url.clone(),
            BinarySink {
                mysql: format!("127.0.0.1:{}", closed_port()),
                fe_http: format!("http://127.0.0.1:{}", closed_port()),
                ..good_sink()
            },
            vec![
                "cannot reach StarRocks",
                "(MySQL protocol): Connection refused",
                "sink.starrocks.mysql",
            ],
        ),
        (
            // The MySQL port answers, the HTTP port does not: stop at start, not after the
            // load retry budget.
            "unreachable_fe_http",
            good_url.clone(),
            BinarySink {
                fe_http: format!("http://127.0.0.1:{}", closed_port()),
                ..good_sink()
            },
            vec![
                "cannot reach StarRocks FE HTTP",
                "sink.starrocks.fe_http",
                "Connection refused",
                "that the FE is up",
            ],
        ),
        (
            "unsupported_type_rejected",
            good_url.clone(),
            BinarySink {
                extra: "unknown_types = \"reject\"\n".into(),
                ..good_sink()
            },
            vec![
                "public.t",
                "column p",
                "unknown_types = \"reject\"",
                "set it to \"text\"",
                "leave the table out of the publication",
            ],
        ),
    ];
    for (name, url, sink, wanted) in cases {
        let case_started = Instant::now();
        let (code, errors) = run_to_exit(&url, &sink, &dir, name).await;
        assert_eq!(code, 1, "{name}: exit code; errors: {errors:?}");
        assert_eq!(errors.len(), 1, "{name}: one error line: {errors:?}");
        for word in wanted {
            assert!(
                errors[0].contains(word),
                "{name}: the error line should mention {word:?}: {}",
                errors[0]
            );
        }
        let after = confirmed_flush(&pg, "shop", SLOT).unwrap();
        assert_eq!(after, before, "{name}: the slot moved: {}", errors[0]);
        if name.starts_with("unreachable") {
            assert!(
                case_started.elapsed() < Duration::from_secs(10),
                "{name}: took {:?} to fail",
                case_started.elapsed()
            );
        }
        println!(
            "{name} ({:.1}s): {}",
            case_started.elapsed().as_secs_f64(),
            errors[0]
        );
    }
    // StarRocks fails every load while running (HTTP 503): each attempt is a warning, and
    // after sink.starrocks.retry_max_elapsed dbmazz stops with the last error.
    emulator.inject(
        FaultRule::new(FaultKind::Http5xx)
            .status(503)
            .times(100_000)
            .table("t"),
    );
    let case_started = Instant::now();
    let budget = BinarySink {
        extra: "retry_max_elapsed = \"2s\"\n".into(),
        ..good_sink()
    };
    let (code, errors) = run_to_exit(&good_url, &budget, &dir, "outage").await;
    let elapsed = case_started.elapsed();
    emulator.clear_faults();
    assert_eq!(code, 1, "outage: exit code; errors: {errors:?}");
    assert_eq!(errors.len(), 1, "outage: one error line: {errors:?}");
    assert!(
        errors[0].contains("still failing after")
            && errors[0].contains("check that StarRocks is up"),
        "outage: {}",
        errors[0]
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "outage: took {elapsed:?}"
    );
    let log = std::fs::read_to_string(dir.0.join("outage.log")).unwrap();
    let warnings = log.lines().filter(|line| line.contains("WARN")).count();
    assert!(warnings >= 2, "outage: a warning per retry:\n{log}");
    assert_eq!(
        confirmed_flush(&pg, "shop", SLOT).unwrap(),
        before,
        "outage: the slot moved"
    );
    println!(
        "outage ({:.1}s, {warnings} warnings): {}",
        elapsed.as_secs_f64(),
        errors[0]
    );

    // Last, as it acknowledges the changes: with the default unknown_types = "text" the
    // composite column arrives as its text form.
    let config_path = dir.0.join("text.toml");
    std::fs::write(
        &config_path,
        binary_config(
            &good_url,
            SLOT,
            &["public.t"],
            &dir.0.join("text"),
            &good_sink(),
        ),
    )
    .unwrap();
    let mut child = spawn_dbmazz(&config_path, &dir.0.join("text.log"));
    let rows = eventually(Duration::from_secs(30), "rows of t as text", || async {
        let rows = sr_rows(&emulator, "shop", "SELECT id, v, p FROM t ORDER BY id").await;
        (rows.len() == 2).then_some(rows)
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(rows, ["1|c|(1,2,3)", "2|b|"]);
    println!("bad input cases: {:.1}s", started.elapsed().as_secs_f64());
}
