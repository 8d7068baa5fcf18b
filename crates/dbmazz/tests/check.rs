//! `dbmazz check` against real PostgreSQL clusters and the in-process StarRocks emulator: a
//! misconfigured source reports each problem with its fix and exits 1; a good setup is all ok
//! and exits 0. The exit codes come from the built binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use dbmazz::check::{render, run_checks, CheckReport, CheckStatus};
use dbmazz::config::Config;
use dbmazz::local_pg::{HbaAuth, LocalPg, LocalPgOptions};
use starrocks_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

use crate::support::{new_database, start_pg, TempDir, PG_VERSIONS};

/// Writes a dbmazz.toml for `url` streaming `tables`, into `dir`; `sink` is the `[sink…]` part.
pub fn write_config(dir: &TempDir, url: &str, tables: &[&str], sink: &str) -> PathBuf {
    let tables = tables
        .iter()
        .map(|table| format!("\"{table}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        r#"
state_dir = "{state}"
[source]
url = "{url}"
tables = [{tables}]
status_interval = "1s"
[batch]
max_wait = "100ms"
[http]
listen = ""
{sink}
"#,
        state = dir.0.join("state").display(),
    );
    let path = dir.0.join("dbmazz.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn load(path: &Path) -> Config {
    let text = std::fs::read_to_string(path).unwrap();
    Config::from_toml(&text).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs the built `dbmazz` binary with `args` (stdin closed) off the async threads, so an
/// in-process emulator keeps serving meanwhile.
pub async fn dbmazz(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dbmazz"))
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn starrocks_sink(emulator: &EmulatorHandle, create_tables: bool) -> String {
    format!(
        r#"
[sink]
type = "starrocks"
[sink.starrocks]
fe_http = "http://{fe}"
mysql = "{mysql}"
user = "root"
password = ""
database = "shop"
create_tables = {create_tables}
unknown_types = "reject"
"#,
        fe = emulator.fe_http_addr(),
        mysql = emulator.mysql_addr().unwrap(),
    )
}

/// The one line about `subject` (exact match), with its status.
fn line<'a>(report: &'a CheckReport, subject: &str) -> &'a dbmazz::check::CheckLine {
    report
        .lines
        .iter()
        .find(|line| line.subject == subject)
        .unwrap_or_else(|| panic!("no line about {subject:?} in\n{}", render(report)))
}

fn assert_line(report: &CheckReport, subject: &str, status: CheckStatus, fix_has: &str) {
    let found = line(report, subject);
    assert_eq!(found.status, status, "{subject}\n{}", render(report));
    let fix = found.fix.as_deref().unwrap_or("");
    assert!(
        fix.contains(fix_has),
        "fix of {subject:?} lacks {fix_has:?}\n{}",
        render(report)
    );
}

const BROKEN_SCHEMA: &str = "
CREATE ROLE app LOGIN;
CREATE TYPE mood AS ENUM ('sad', 'fine');
CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric, note text);
CREATE TABLE events (at timestamptz, payload text);
CREATE TABLE people (id int PRIMARY KEY, feeling mood);
CREATE TABLE secrets (id int PRIMARY KEY, v text);
CREATE TABLE audited (id int PRIMARY KEY, v text);
ALTER TABLE audited REPLICA IDENTITY FULL;
GRANT SELECT ON orders, events, people, audited TO app;
";

/// ~3 s: one PostgreSQL 15 cluster, one emulator, one run of the binary.
#[tokio::test(flavor = "multi_thread")]
async fn check_reports_each_misconfiguration_with_its_fix_and_exits_1() {
    let pg = start_pg(
        15,
        LocalPgOptions::default().setting("wal_level", "replica"),
    );
    pg.create_database("shop").unwrap();
    pg.psql("shop", BROKEN_SCHEMA).unwrap();
    // Like an all-in-one container: the BE registered under an address dbmazz cannot reach
    // (the BE listens on 127.0.0.1 only).
    let emulator = Emulator::start(EmulatorConfig {
        advertised_host: Some("127.0.0.2".into()),
        ..EmulatorConfig::ephemeral()
    })
    .await
    .unwrap();
    let dir = TempDir::new("dbmazz-check-broken");
    // Trust authentication: the role needs no password.
    let url = format!("postgres://app@127.0.0.1:{}/shop", pg.port());
    let tables = [
        "public.orders",
        "public.events",
        "public.people",
        "public.secrets",
        "public.audited",
    ];
    let path = write_config(&dir, &url, &tables, &starrocks_sink(&emulator, false));

    let report = run_checks(&load(&path)).await;
    eprintln!("{}", render(&report));
    assert_line(
        &report,
        "wal_level",
        CheckStatus::Fail,
        "ALTER SYSTEM SET wal_level = logical",
    );
    assert_line(
        &report,
        "REPLICATION privilege",
        CheckStatus::Fail,
        "ALTER ROLE \"app\" WITH REPLICATION",
    );
    assert_line(
        &report,
        "publication dbmazz_pub",
        CheckStatus::Fail,
        "CREATE PUBLICATION \"dbmazz_pub\" FOR TABLE \"public\".\"orders\"",
    );
    assert_line(
        &report,
        "SELECT on public.secrets",
        CheckStatus::Fail,
        "GRANT SELECT ON \"public\".\"secrets\" TO \"app\"",
    );
    assert_line(
        &report,
        "key of public.events",
        CheckStatus::Fail,
        "ADD PRIMARY KEY",
    );
    assert_line(
        &report,
        "column public.people.feeling",
        CheckStatus::Fail,
        "unknown_types",
    );
    assert_line(
        &report,
        "column public.orders.amount",
        CheckStatus::Warn,
        "wide_numeric",
    );
    assert!(line(&report, "column public.orders.amount")
        .message
        .contains("lossy_policy = \"null\""));
    assert_line(
        &report,
        "StarRocks database shop",
        CheckStatus::Fail,
        "CREATE DATABASE `shop`",
    );
    // What is fine says so.
    assert_eq!(
        line(&report, "key of public.orders").status,
        CheckStatus::Ok
    );
    assert_eq!(
        line(&report, "replication slot dbmazz_slot").status,
        CheckStatus::Ok
    );
    assert_eq!(line(&report, "StarRocks FE HTTP").status, CheckStatus::Ok);
    assert_line(
        &report,
        "StarRocks BE via FE redirect",
        CheckStatus::Fail,
        "load_via = \"be\"",
    );

    // REPLICA IDENTITY FULL: pgoutput flags every column, dbmazz keys by the primary key.
    let audited = line(&report, "key of public.audited");
    assert_eq!(audited.status, CheckStatus::Ok, "{}", render(&report));
    assert!(
        audited
            .message
            .starts_with("primary key (id); REPLICA IDENTITY FULL"),
        "{}",
        audited.message
    );
    // Key columns named in the config: a warning without REPLICA IDENTITY FULL, a failure for a
    // column that does not exist or a table that has a key of its own.
    let mut keyed = load(&path);
    keyed.source.key_columns = [
        ("public.events".to_string(), vec!["at".to_string()]),
        ("public.people".to_string(), vec!["feeling".to_string()]),
        ("public.audited".to_string(), vec!["id".to_string()]),
    ]
    .into();
    let report = run_checks(&keyed).await;
    assert_eq!(
        line(&report, "key of public.audited").status,
        CheckStatus::Ok
    );
    assert_line(
        &report,
        "key of public.events",
        CheckStatus::Warn,
        "REPLICA IDENTITY FULL",
    );
    assert_eq!(
        line(&report, "key of public.people").status,
        CheckStatus::Fail
    );
    keyed.source.key_columns = [("public.events".to_string(), vec!["nope".to_string()])].into();
    let report = run_checks(&keyed).await;
    assert!(line(&report, "key of public.events")
        .message
        .contains("names nope"));

    let output = dbmazz(&["check", "--config", path.to_str().unwrap()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("fail  wal_level: replica")
            && stdout.contains("      fix: ALTER SYSTEM SET wal_level = logical"),
        "{stdout}"
    );
    emulator.shutdown().await;
}

const GOOD_SCHEMA: &str = "
CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, amount numeric(12,2), doc jsonb);
CREATE TABLE items (order_id bigint, line int, qty int, PRIMARY KEY (order_id, line));
-- Keyed by its primary key, as `run` does (pgoutput flags every column under FULL).
ALTER TABLE items REPLICA IDENTITY FULL;
CREATE PUBLICATION dbmazz_pub FOR TABLE orders, items;
";

/// ~3 s per PostgreSQL version: every check ok and exit 0; then an incompatible table fails.
#[tokio::test(flavor = "multi_thread")]
async fn check_is_all_ok_on_a_good_setup_and_exits_0() {
    for major in PG_VERSIONS {
        check_good_setup(start_pg(major, LocalPgOptions::default())).await;
    }
}

async fn check_good_setup(pg: LocalPg) {
    pg.create_database("shop").unwrap();
    pg.psql("shop", GOOD_SCHEMA).unwrap();
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    emulator
        .execute_sql(None, "CREATE DATABASE shop")
        .await
        .unwrap();
    emulator
        .execute_sql(
            Some("shop"),
            "CREATE TABLE items (order_id BIGINT NOT NULL, line INT NOT NULL, qty INT NULL) \
             PRIMARY KEY (order_id, line) DISTRIBUTED BY HASH (order_id, line)",
        )
        .await
        .unwrap();
    let dir = TempDir::new("dbmazz-check-good");
    let path = write_config(
        &dir,
        &pg.url("shop"),
        &["public.orders", "public.items"],
        &starrocks_sink(&emulator, true),
    );

    let report = run_checks(&load(&path)).await;
    eprintln!("{}", render(&report));
    assert_eq!(
        report.worst(),
        CheckStatus::Ok,
        "PostgreSQL {}:\n{}",
        pg.major_version(),
        render(&report)
    );
    assert!(line(&report, "PostgreSQL version")
        .message
        .contains(if pg.major_version() >= 16 {
            "protocol v4"
        } else {
            "protocol v2"
        }));
    assert!(line(&report, "StarRocks table shop.orders")
        .message
        .contains("creates it"));
    assert!(line(&report, "StarRocks table shop.items")
        .message
        .contains("exists"));
    assert_eq!(
        line(&report, "StarRocks BE via FE redirect").status,
        CheckStatus::Ok
    );
    let output = dbmazz(&["check", "--config", path.to_str().unwrap()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(" 0 warn, 0 fail"), "{stdout}");

    // A row filter on a column outside the replica identity: PostgreSQL would refuse every
    // UPDATE and DELETE of the table. One on the key is fine.
    pg.psql(
        "shop",
        "ALTER PUBLICATION dbmazz_pub SET TABLE orders WHERE (status <> 'draft'), items",
    )
    .unwrap();
    let report = run_checks(&load(&path)).await;
    assert_line(
        &report,
        "row filter of public.orders",
        CheckStatus::Fail,
        "REPLICA IDENTITY FULL",
    );
    assert!(line(&report, "row filter of public.orders")
        .message
        .contains("status"));
    pg.psql(
        "shop",
        "ALTER PUBLICATION dbmazz_pub SET TABLE orders WHERE (id > 0), items",
    )
    .unwrap();
    let report = run_checks(&load(&path)).await;
    assert_eq!(report.worst(), CheckStatus::Ok, "{}", render(&report));

    // A StarRocks table that lacks a column the PostgreSQL table has is reported by name (a
    // warning: with create_tables, dbmazz adds value columns at start).
    emulator
        .execute_sql(
            Some("shop"),
            "CREATE TABLE orders (id BIGINT NOT NULL, status VARCHAR(100) NULL) \
             PRIMARY KEY (id) DISTRIBUTED BY HASH (id)",
        )
        .await
        .unwrap();
    let report = run_checks(&load(&path)).await;
    let orders = line(&report, "StarRocks table shop.orders");
    assert_eq!(orders.status, CheckStatus::Warn, "{}", render(&report));
    assert!(
        orders.message.contains("amount DECIMAL(12,2)")
            && orders.message.contains("doc JSON")
            && orders.message.contains("dbmazz adds them"),
        "{}",
        orders.message
    );

    // A StarRocks table keyed differently from PostgreSQL is refused.
    emulator
        .execute_sql(Some("shop"), "DROP TABLE items")
        .await
        .unwrap();
    emulator
        .execute_sql(
            Some("shop"),
            "CREATE TABLE items (order_id BIGINT NOT NULL, line INT NULL, qty INT NULL) \
             PRIMARY KEY (order_id) DISTRIBUTED BY HASH (order_id)",
        )
        .await
        .unwrap();
    let report = run_checks(&load(&path)).await;
    let items = line(&report, "StarRocks table shop.items");
    assert_eq!(items.status, CheckStatus::Fail, "{}", render(&report));
    assert!(
        items
            .message
            .contains("(order_id) but the PostgreSQL key is (line, order_id)"),
        "{}",
        items.message
    );

    // The MySQL port answers but the FE HTTP address does not: a failed line naming the key.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let no_http = starrocks_sink(&emulator, true).replace(
        &emulator.fe_http_addr().to_string(),
        &format!("127.0.0.1:{closed}"),
    );
    let dir = TempDir::new("dbmazz-check-no-fe-http");
    let path = write_config(&dir, &pg.url("shop"), &["public.orders"], &no_http);
    let report = run_checks(&load(&path)).await;
    let fe = line(&report, "StarRocks FE HTTP");
    assert_eq!(fe.status, CheckStatus::Fail, "{}", render(&report));
    assert!(
        fe.message.contains("Connection refused")
            && fe
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("sink.starrocks.fe_http")),
        "{}",
        render(&report)
    );
    emulator.shutdown().await;
}

/// A config that does not load is exit code 2, before anything connects. ~0.1 s.
#[tokio::test(flavor = "multi_thread")]
async fn check_exits_2_on_a_bad_config() {
    let dir = TempDir::new("dbmazz-check-config");
    let path = dir.0.join("dbmazz.toml");
    std::fs::write(
        &path,
        "[source]\nurl = \"postgres://x@127.0.0.1:1/db\"\nslot = \"Bad-Slot\"\n",
    )
    .unwrap();
    let output = dbmazz(&["check", "--config", path.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("source.slot"), "{stderr}");
}

/// ~3 s: PostgreSQL 15 really invalidates a slot (max_slot_wal_keep_size exceeded at a
/// checkpoint); check reports it as lost with the way back.
#[tokio::test(flavor = "multi_thread")]
async fn check_fails_on_a_slot_postgresql_invalidated() {
    let pg = start_pg(
        15,
        LocalPgOptions {
            auth: HbaAuth::ScramSha256,
            ..LocalPgOptions::default()
        }
        .setting("max_slot_wal_keep_size", "'1MB'"),
    );
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text);
         CREATE PUBLICATION dbmazz_pub FOR TABLE orders;
         SELECT pg_create_logical_replication_slot('dbmazz_slot', 'pgoutput');",
    )
    .unwrap();
    // Move the WAL past the slot by more than the limit, then let a checkpoint remove it.
    for round in 0..3 {
        pg.psql(
            "shop",
            &format!(
                "INSERT INTO orders SELECT g + {round} * 1000, repeat('x', 100) FROM generate_series(1, 1000) g;
                 SELECT pg_switch_wal();"
            ),
        )
        .unwrap();
    }
    pg.psql("shop", "CHECKPOINT").unwrap();
    let status = pg
        .psql(
            "shop",
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'dbmazz_slot'",
        )
        .unwrap();
    assert_eq!(status, "lost", "the setup did not invalidate the slot");

    let dir = TempDir::new("dbmazz-check-lost");
    let path = write_config(
        &dir,
        &pg.url("shop"),
        &["public.orders"],
        "[sink]\ntype = \"noop\"",
    );
    let report = run_checks(&load(&path)).await;
    let slot = line(&report, "replication slot dbmazz_slot");
    assert_eq!(
        line(&report, "replication connection").message,
        "accepted (scram-sha-256 authentication)"
    );
    assert_eq!(slot.status, CheckStatus::Fail, "{}", render(&report));
    assert!(slot.message.contains("invalidated"), "{}", slot.message);
    assert!(slot
        .fix
        .as_deref()
        .unwrap()
        .contains("dbmazz cleanup --state"));

    // A wrong password is one line naming the user, with the fix; nothing else is checked.
    let wrong = format!("postgres://postgres:wrong@127.0.0.1:{}/shop", pg.port());
    let path = write_config(&dir, &wrong, &["public.orders"], "[sink]\ntype = \"noop\"");
    let report = run_checks(&load(&path)).await;
    assert_line(
        &report,
        "PostgreSQL connection",
        CheckStatus::Fail,
        "check user and password in source.url",
    );
    assert!(line(&report, "PostgreSQL connection")
        .message
        .contains("authentication failed for user \"postgres\""));
}

/// ~0.1 s: nothing listens on the port: one fail line with the fix, exit code 1.
#[tokio::test(flavor = "multi_thread")]
async fn check_reports_an_unreachable_postgresql_and_exits_1() {
    let dir = TempDir::new("dbmazz-check-unreachable");
    let path = write_config(
        &dir,
        "postgres://dbmazz@127.0.0.1:1/app",
        &["public.orders"],
        "[sink]\ntype = \"noop\"",
    );
    let output = dbmazz(&["check", "--config", path.to_str().unwrap()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("fail  PostgreSQL connection: cannot connect to PostgreSQL at 127.0.0.1:1")
            && stdout.contains("fix: check host and port in source.url"),
        "{stdout}"
    );
}

/// ~2 s: deploy/postgres-init/*.sql (what docker compose runs) gives a source that `dbmazz
/// check` accepts line by line as the least-privileged `dbmazz` role it creates.
#[tokio::test(flavor = "multi_thread")]
async fn the_compose_init_sql_passes_check_as_the_dbmazz_role() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("demo_db").unwrap();
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/postgres-init");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&init)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty());
    for script in &scripts {
        pg.psql("demo_db", &std::fs::read_to_string(script).unwrap())
            .unwrap_or_else(|error| panic!("{}: {error}", script.display()));
    }
    assert_eq!(
        pg.psql("demo_db", "SELECT count(*) FROM orders").unwrap(),
        "2000"
    );

    let dir = TempDir::new("dbmazz-check-compose");
    // Trust authentication here; compose uses the role's password.
    let url = format!("postgres://dbmazz@127.0.0.1:{}/demo_db", pg.port());
    let path = write_config(&dir, &url, &[], "[sink]\ntype = \"noop\"");
    let report = run_checks(&load(&path)).await;
    eprintln!("{}", render(&report));
    assert_eq!(report.worst(), CheckStatus::Ok, "{}", render(&report));
    assert!(line(&report, "publication dbmazz_pub")
        .message
        .contains("4 table(s)"));

    // cleanup as that role: the publication belongs to the tables' owner and is kept.
    let output = dbmazz(&["cleanup", "--config", path.to_str().unwrap(), "--yes"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("publication \"dbmazz_pub\" is kept: it belongs to \"postgres\""),
        "{stderr}"
    );
    assert_eq!(
        pg.psql("demo_db", "SELECT count(*) FROM pg_publication")
            .unwrap(),
        "1"
    );
}

/// ~2 s: a server that accepts the connection and never answers is given up after the URL's
/// `connect_timeout` (tokio-postgres alone bounds only the TCP connect): a fail line, exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn check_gives_up_on_a_server_that_never_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection, silent.
    let held = std::thread::spawn(move || {
        let mut streams = Vec::new();
        for stream in listener.incoming().take(4) {
            streams.push(stream);
        }
        streams
    });
    let dir = TempDir::new("dbmazz-check-silent");
    let url = format!("postgres://dbmazz@127.0.0.1:{port}/app?connect_timeout=1&sslmode=disable");
    let path = write_config(&dir, &url, &["public.orders"], "[sink]\ntype = \"noop\"");
    let started = std::time::Instant::now();
    let output = dbmazz(&["check", "--config", path.to_str().unwrap()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("took longer than connect_timeout"),
        "{stdout}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    drop(held);
}

/// `dbmazz run` on `path` exits 1 with every `expected` fragment on stderr, and without having
/// created a slot (one left behind would hold WAL).
async fn assert_run_refused_before_the_slot(pg: &LocalPg, path: &Path, expected: &[&str]) {
    let output = dbmazz(&["run", "--config", path.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for fragment in expected {
        assert!(stderr.contains(fragment), "{fragment:?} not in {stderr}");
    }
    let slots = pg
        .psql("shop", "SELECT count(*) FROM pg_replication_slots")
        .unwrap();
    assert_eq!(slots, "0", "the slot was created before the refusal");
}

/// ~3 s: two published tables of one name in different schemas would share one StarRocks
/// table: `check` fails on it, and `run` refuses before it creates the slot.
#[tokio::test(flavor = "multi_thread")]
async fn tables_of_one_name_in_two_schemas_are_refused() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, v text);
         CREATE SCHEMA other;
         CREATE TABLE other.orders (id int PRIMARY KEY, v text);
         INSERT INTO orders VALUES (1, 'public');
         INSERT INTO other.orders VALUES (1, 'other');",
    )
    .unwrap();
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let dir = TempDir::new("dbmazz-same-name");
    let path = write_config(
        &dir,
        &pg.url("shop"),
        &["public.orders", "other.orders"],
        &starrocks_sink(&emulator, true),
    );
    let report = run_checks(&load(&path)).await;
    assert_line(
        &report,
        "StarRocks table names",
        CheckStatus::Fail,
        "publish only one of them",
    );
    assert!(line(&report, "StarRocks table names")
        .message
        .contains("public.orders and other.orders would both go to shop.orders"));
    let table_lines = report
        .lines
        .iter()
        .filter(|line| line.subject == "StarRocks table shop.orders")
        .count();
    assert_eq!(table_lines, 1, "one line per StarRocks table: {report:?}");

    assert_run_refused_before_the_slot(
        &pg,
        &path,
        &["would both go to StarRocks table shop.orders"],
    )
    .await;
}

/// ~3 s: a published table with a dot in its name (reachable through FOR ALL TABLES, IN
/// SCHEMA or a publication made by hand) is refused by `check`, and by `run` before it creates
/// the slot: dbmazz names tables schema.table and could not tell it apart.
#[tokio::test(flavor = "multi_thread")]
async fn a_published_table_with_a_dot_in_its_name_is_refused() {
    let pg = new_database(
        15,
        "CREATE TABLE plain (id int PRIMARY KEY);
         CREATE TABLE \"dot.ted\" (id int PRIMARY KEY, v text);
         CREATE PUBLICATION dbmazz_pub FOR ALL TABLES;",
    );
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let dir = TempDir::new("dbmazz-dotted");
    let path = write_config(&dir, &pg.url("shop"), &[], &starrocks_sink(&emulator, true));
    let report = run_checks(&load(&path)).await;
    assert_line(
        &report,
        "publication dbmazz_pub",
        CheckStatus::Fail,
        "rename the table",
    );
    let message = &line(&report, "publication dbmazz_pub").message;
    assert!(
        message.contains("\"dot.ted\", whose name has a dot"),
        "{message}"
    );

    assert_run_refused_before_the_slot(&pg, &path, &["whose name has a dot"]).await;
}

/// ~3 s: column names StarRocks refuses (two that differ only in case, `=` in a name) fail
/// `check` for their table, and `run` refuses them before it creates the slot (they failed
/// the first load, with StarRocks's raw error, after the slot held WAL).
#[tokio::test(flavor = "multi_thread")]
async fn column_names_starrocks_refuses_are_found_before_the_slot() {
    let pg = new_database(
        15,
        "CREATE TABLE cased (id int PRIMARY KEY, \"Val\" int, val int);
         CREATE TABLE signs (id int PRIMARY KEY, \"a=b\" int);",
    );
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let dir = TempDir::new("dbmazz-column-names");
    let tables = ["public.cased", "public.signs"];
    let path = write_config(
        &dir,
        &pg.url("shop"),
        &tables,
        &starrocks_sink(&emulator, true),
    );
    let report = run_checks(&load(&path)).await;
    for (table, problem) in [
        ("cased", "columns \"Val\" and \"val\" differ only in case"),
        ("signs", "column \"a=b\" has a character StarRocks refuses"),
    ] {
        let subject = format!("StarRocks table shop.{table}");
        assert_line(&report, &subject, CheckStatus::Fail, "RENAME COLUMN");
        let message = &line(&report, &subject).message;
        assert!(message.contains(problem), "{message}");
    }

    assert_run_refused_before_the_slot(&pg, &path, &["differ only in case", "RENAME COLUMN"]).await;
}

/// ~3 s: what would stop the initial snapshot at its first table is found before the slot is
/// created (a slot left behind holds WAL): a user without SELECT on a table, and a StarRocks
/// database that does not exist while `create_tables = false`.
#[tokio::test(flavor = "multi_thread")]
async fn run_refuses_before_creating_the_slot() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE ROLE app LOGIN REPLICATION;
         CREATE TABLE orders (id int PRIMARY KEY, v text);
         CREATE TABLE items (id int PRIMARY KEY, v text);
         GRANT SELECT ON orders TO app;
         CREATE PUBLICATION dbmazz_pub FOR TABLE orders, items;",
    )
    .unwrap();
    let emulator = Emulator::start(EmulatorConfig::ephemeral()).await.unwrap();
    let dir = TempDir::new("dbmazz-refuse-early");
    let url = format!("postgres://app@127.0.0.1:{}/shop", pg.port());
    let tables = ["public.orders", "public.items"];
    let path = write_config(&dir, &url, &tables, &starrocks_sink(&emulator, true));
    let output = dbmazz(&["run", "--config", path.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("user \"app\" may not read public.items")
            && stderr.contains("GRANT SELECT ON public.items TO app"),
        "{stderr}"
    );

    pg.psql("shop", "GRANT SELECT ON items TO app").unwrap();
    let path = write_config(&dir, &url, &tables, &starrocks_sink(&emulator, false));
    let output = dbmazz(&["run", "--config", path.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("database shop does not exist in StarRocks"),
        "{stderr}"
    );
    let slots = pg
        .psql("shop", "SELECT count(*) FROM pg_replication_slots")
        .unwrap();
    assert_eq!(slots, "0", "a slot was created before the refusal");
}
