use super::*;

const EXAMPLE: &str = r#"
state_dir = "./dbmazz-state"
[source]
url = "postgres://user:pass@127.0.0.1:5432/shop"
publication = "dbmazz_pub"
slot = "dbmazz_slot"
tables = ["public.orders", "public.order_items"]
[sink.starrocks]
fe_http = "http://127.0.0.1:8030"
mysql = "127.0.0.1:9030"
user = "root"
password = ""
database = "shop"
[batch]
max_rows = 100000
max_bytes = "64MiB"
max_wait = "1s"
[pipeline]
max_memory = "128MiB"
[http]
listen = "127.0.0.1:9808"
"#;

#[test]
fn the_documented_example_parses() {
    let config = Config::from_toml(EXAMPLE).unwrap();
    assert_eq!(config.source.slot, "dbmazz_slot");
    assert_eq!(config.batch.max_bytes, ByteSize(64 << 20));
    assert_eq!(config.batch.max_wait.0, Duration::from_secs(1));
    assert_eq!(config.tables()[1], TableName::new("public", "order_items"));
    assert_eq!(config.sink.kind, SinkKind::Starrocks);
    assert_eq!(config.pipeline_limits().batch.max_rows, 100_000);
}

#[test]
fn defaults_fill_everything_but_the_url_and_sink() {
    let config =
        Config::from_toml("[source]\nurl = \"postgres://u@h/db\"\n[sink]\ntype = \"noop\"\n")
            .unwrap();
    assert_eq!(config.source.publication, DEFAULT_PUBLICATION);
    assert_eq!(config.source.slot, DEFAULT_SLOT);
    assert_eq!(config.http.listen, DEFAULT_HTTP_LISTEN);
    assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
}

fn error_of(toml: &str) -> ConfigError {
    Config::from_toml(toml).unwrap_err()
}

#[test]
fn bad_values_name_the_key_the_problem_and_the_fix() {
    let error = error_of(&EXAMPLE.replace("max_rows = 100000", "max_rows = \"lots\""));
    assert_eq!(error.key, "batch.max_rows");
    let error = error_of(&EXAMPLE.replace("\"64MiB\"", "\"64 parsecs\""));
    assert_eq!(error.key, "batch.max_bytes");
    assert!(error.problem.contains("parsecs"), "{error}");
    let error = error_of(&EXAMPLE.replace("max_wait = \"1s\"", "max_wait = 5"));
    assert_eq!(error.key, "batch.max_wait");
    assert!(error.problem.contains("unit"), "{error}");
    let error = error_of(&EXAMPLE.replace("slot = \"dbmazz_slot\"", "slot = \"Bad-Slot\""));
    assert_eq!(error.key, "source.slot");
    let error = error_of(&EXAMPLE.replace("postgres://user:pass@", "mysql://user:pass@"));
    assert_eq!(error.key, "source.url");
    let error = error_of(&EXAMPLE.replace("\"public.orders\",", "\"a.b.c\","));
    assert_eq!(error.key, "source.tables");
    let error = error_of(&EXAMPLE.replace("listen = \"127.0.0.1:9808\"", "listen = \"nowhere\""));
    assert_eq!(error.key, "http.listen");
    let error = error_of(&EXAMPLE.replace("max_memory = \"128MiB\"", "max_memory = \"1MiB\""));
    assert_eq!(error.key, "pipeline.max_memory");
    let error = error_of(&EXAMPLE.replace("fe_http = \"http://", "fe_http = \"ftp://"));
    assert_eq!(error.key, "sink.starrocks.fe_http");
    let message = error.to_string();
    assert!(
        message.starts_with("config: sink.starrocks.fe_http: "),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn stream_load_addresses_are_checked_when_the_config_is_read() {
    let with_fe = |fe: &str| {
        let text = EXAMPLE.replace(
            "fe_http = \"http://127.0.0.1:8030\"",
            &format!("fe_http = \"{fe}\""),
        );
        error_of(&text)
    };
    for (fe, says) in [
        ("https://127.0.0.1:8030", "TLS is not supported"),
        ("http://::1:8030", "in brackets"),
        ("http://127.0.0.1:8030/api", "has a path"),
        ("http://root:secret@127.0.0.1:8030", "holds credentials"),
    ] {
        let error = with_fe(fe);
        assert_eq!(error.key, "sink.starrocks.fe_http", "{fe}");
        assert!(error.problem.contains(says), "{fe}: {error}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
    // Neither in a URL that does not parse.
    let error = with_fe("http://root:secret@[::1:8030");
    assert!(!error.to_string().contains("secret"), "{error}");
    let text = EXAMPLE.replace(
        "fe_http = \"http://127.0.0.1:8030\"",
        "fe_http = \"http://[::1]:8030/\"",
    );
    assert!(Config::from_toml(&text).is_ok());
    let error = error_of(&EXAMPLE.replace(
        "max_bytes = \"64MiB\"",
        "max_bytes = \"99999999999999999999GiB\"",
    ));
    assert_eq!(error.key, "batch.max_bytes");
    assert!(error.problem.contains("too large"), "{error}");
}

#[test]
fn unknown_and_missing_keys_are_reported_with_the_known_ones() {
    let error = error_of(&EXAMPLE.replace("max_rows", "max_rowz"));
    assert!(error.key.starts_with("batch"), "{error}");
    assert!(error.fix.contains("max_rows"), "{error}");
    let error = error_of("[source]\npublication = \"p\"\n");
    assert_eq!(error.key, "source");
    assert!(error.problem.contains("url"), "{error}");
    let error = error_of("[source]\nurl = \"postgres://u@h/db\"\n");
    assert_eq!(error.key, "sink.starrocks");
}

#[test]
#[allow(clippy::result_large_err)] // figment's own Jail API
fn environment_and_flags_override_the_file_in_that_order() {
    let dir = std::env::temp_dir().join(format!("dbmazz-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dbmazz.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    figment::Jail::expect_with(|jail| {
        jail.set_env("DBMAZZ_SOURCE__SLOT", "from_env");
        jail.set_env("DBMAZZ_BATCH__MAX_ROWS", "42");
        jail.set_env("DBMAZZ_SINK__STARROCKS__PASSWORD", "pw");
        jail.set_env("DBMAZZ_LOG", "debug");
        jail.set_env("DBMAZZ_PG18_BIN", "/somewhere");
        let config = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(config.source.slot, "from_env");
        assert_eq!(config.batch.max_rows, 42);
        assert_eq!(config.sink.starrocks.as_ref().unwrap().password, "pw");
        // Secrets are text as given: not a number, not trimmed.
        jail.set_env("DBMAZZ_SINK__STARROCKS__PASSWORD", "123");
        let config = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(config.sink.starrocks.as_ref().unwrap().password, "123");
        jail.set_env("DBMAZZ_SINK__STARROCKS__PASSWORD", " p w ");
        let config = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(config.sink.starrocks.as_ref().unwrap().password, " p w ");
        let flags = Overrides(vec![("source.slot", "from_flag".to_string())]);
        let config = Config::load(Some(&path), &flags).unwrap();
        assert_eq!(config.source.slot, "from_flag");
        // A bad environment value names the variable the operator set.
        jail.set_env("DBMAZZ_BATCH__MAX_ROWS", "lots");
        let error = Config::load(Some(&path), &Overrides::default()).unwrap_err();
        assert!(
            error
                .problem
                .ends_with("(from the environment variable DBMAZZ_BATCH__MAX_ROWS)"),
            "{error}"
        );
        Ok(())
    });
    let missing = Config::load(Some(&dir.join("nope.toml")), &Overrides::default()).unwrap_err();
    assert_eq!(missing.key, "--config");
    let directory = Config::load(Some(&dir), &Overrides::default()).unwrap_err();
    assert!(directory.problem.contains("is a directory"), "{directory}");
    // A syntax error: one line, naming the file, the place and the reason.
    std::fs::write(
        &path,
        EXAMPLE.replace("database = \"shop\"", "database = \"shop"),
    )
    .unwrap();
    let syntax = Config::load(Some(&path), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(!syntax.contains('\n'), "{syntax}");
    assert!(
        syntax.starts_with(&format!(
            "config: {}: TOML parse error at line",
            path.display()
        )),
        "{syntax}"
    );
    assert!(syntax.contains("invalid basic string"), "{syntax}");
    // A flag's bad value: no Rust type names, and the choices listed once.
    std::fs::write(&path, EXAMPLE).unwrap();
    let flags = Overrides(vec![("sink.type", "bogus".to_string())]);
    let flag = Config::load(Some(&path), &flags).unwrap_err();
    assert_eq!(flag.key, "sink.type");
    assert_eq!(
        flag.to_string(),
        "config: sink.type: unknown value \"bogus\" (from a command-line flag) — use one of: \
         starrocks, noop, file"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn type_errors_read_as_words_and_no_config_points_at_the_flag() {
    let error = error_of(&EXAMPLE.replace("max_rows = 100000", "max_rows = \"lots\""));
    // max_rows refuses 0 too: the expected form says so.
    assert!(
        error
            .problem
            .contains("expected a whole number (1 or more)"),
        "{error}"
    );
    let error = error_of("");
    assert!(error.fix.contains("--config"), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("config: no [source] section — "),
        "{error}"
    );
    let error = error_of(&format!("{EXAMPLE}\n[snapshot]\nmode = \"sometimes\"\n"));
    assert_eq!(error.key, "snapshot.mode");
    assert_eq!(error.fix, "use one of: initial, never, always");
    let error = error_of(&EXAMPLE.replace("max_rows", "max_rowz"));
    assert!(
        error.problem.starts_with("unknown key \"max_rowz\" ("),
        "{error}"
    );
    assert_eq!(error.fix.matches("max_rows").count(), 1, "{error}");
}

#[test]
fn snapshot_settings_default_and_validate() {
    let config = Config::from_toml(EXAMPLE).unwrap();
    assert_eq!(config.snapshot.mode, SnapshotMode::Initial);
    assert!(config.snapshot.parallelism >= 1);
    assert_eq!(config.snapshot.chunk_pages, 4096);
    assert_eq!(
        config.snapshot.partition_check_interval.0,
        std::time::Duration::from_secs(10)
    );
    assert!(!config.snapshot.replace);
    let config = Config::from_toml(&format!(
        "{EXAMPLE}\n[snapshot]\nmode = \"never\"\nparallelism = 3\nchunk_pages = 10\n\
         partition_check_interval = \"0s\"\nreplace = true\n"
    ))
    .unwrap();
    assert!(config.snapshot.replace);
    assert!(config.snapshot.partition_check_interval.0.is_zero());
    assert_eq!(config.snapshot.mode, SnapshotMode::Never);
    assert_eq!(config.snapshot.parallelism, 3);
    assert_eq!(config.snapshot.chunk_pages, 10);
    let error = error_of(&format!("{EXAMPLE}\n[snapshot]\nmode = \"sometimes\"\n"));
    assert_eq!(error.key, "snapshot.mode");
    let error = error_of(&format!("{EXAMPLE}\n[snapshot]\nparallelism = 0\n"));
    assert_eq!(error.key, "snapshot.parallelism");
    let error = error_of(&format!("{EXAMPLE}\n[snapshot]\nchunk_pages = 0\n"));
    assert_eq!(error.key, "snapshot.chunk_pages");
}

#[test]
fn max_memory_follows_a_large_batch_unless_set() {
    let config = Config::from_toml(&EXAMPLE.replace("max_memory = \"128MiB\"", "")).unwrap();
    assert_eq!(config.max_memory(), ByteSize(64 << 20));
    let defaults =
        Config::from_toml("[source]\nurl = \"postgres://u@h/db\"\n[sink]\ntype = \"noop\"\n")
            .unwrap();
    assert_eq!(defaults.max_memory(), ByteSize(16 << 20));
    assert_eq!(defaults.batch.max_bytes, ByteSize(8 << 20));
    let explicit = Config::from_toml(EXAMPLE).unwrap();
    assert_eq!(explicit.max_memory(), ByteSize(128 << 20));
}

#[test]
fn key_columns_are_read_by_table_and_validated() {
    let keyed = EXAMPLE.replace(
        "tables = [",
        "key_columns = { \"public.events\" = [\"tenant\", \"id\"] }\ntables = [",
    );
    let config = Config::from_toml(&keyed).unwrap();
    let keys = config.key_overrides();
    assert!(keys.covers(&TableName::new("public", "events")));
    assert!(!keys.covers(&TableName::new("public", "orders")));

    let empty = EXAMPLE.replace(
        "tables = [",
        "key_columns = { \"events\" = [] }\ntables = [",
    );
    let error = error_of(&empty);
    assert_eq!(error.key, "source.key_columns.\"events\"");
    assert!(error.problem.contains("at least one column"), "{error}");
    let bad = EXAMPLE.replace(
        "tables = [",
        "key_columns = { \"a.b.c\" = [\"id\"] }\ntables = [",
    );
    assert!(error_of(&bad).problem.contains("not a table name"));
}
