//! deploy/ is checked against what dbmazz really accepts and what the docs say: every `DBMAZZ_*`
//! variable of docker-compose.yml and of the Kubernetes Secret goes through [`Config::load`]
//! (with the ConfigMap's dbmazz.toml), and the ports, probes and service names must agree with
//! the config and with docs/operations.md. `docker compose config` and `kubectl` are not
//! available here, so this is a YAML parse plus these cross-checks.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::{Config, Overrides};

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_file(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

fn parse(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(relative))
        .unwrap_or_else(|error| panic!("{relative} is not valid YAML: {error}"))
}

fn text(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(text) | Yaml::Real(text) => text.clone(),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Boolean(value) => value.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// A mapping's (key, value) pairs as text.
fn pairs(yaml: &Yaml) -> Vec<(String, String)> {
    yaml.as_hash()
        .unwrap_or_else(|| panic!("expected a mapping, found {yaml:?}"))
        .iter()
        .map(|(key, value)| (text(key), text(value)))
        .collect()
}

/// `DBMAZZ_SINK__STARROCKS__FE_HTTP` → `sink.starrocks.fe_http`.
fn config_key(variable: &str) -> String {
    variable
        .trim_start_matches("DBMAZZ_")
        .to_ascii_lowercase()
        .replace("__", ".")
}

/// Loads the config from `file` (optional) and `env`, with nothing else set.
#[allow(clippy::result_large_err)] // figment's own Jail API
fn load_with(file: Option<&str>, env: &[(String, String)]) -> Config {
    let mut loaded = None;
    figment::Jail::expect_with(|jail| {
        for (name, value) in env {
            jail.set_env(name, value);
        }
        let path = match file {
            Some(contents) => {
                jail.create_file("dbmazz.toml", contents)?;
                Some(jail.directory().join("dbmazz.toml"))
            }
            None => None,
        };
        loaded = Some(
            Config::load(path.as_deref(), &Overrides::default())
                .unwrap_or_else(|error| panic!("the deploy config does not load: {error}")),
        );
        Ok(())
    });
    loaded.unwrap()
}

fn listen_port(config: &Config) -> String {
    config
        .http
        .listen
        .rsplit_once(':')
        .map(|(_, port)| port.to_string())
        .unwrap_or_default()
}

#[test]
fn compose_services_ports_and_env_match_the_config_and_the_docs() {
    let compose = &parse("deploy/docker-compose.yml")[0];
    let services = &compose["services"];
    let operations = read("docs/operations.md");
    let reference = read("docs/configuration.md");
    for name in ["postgres", "starrocks", "dbmazz"] {
        assert!(!services[name].is_badvalue(), "service {name} is missing");
        assert!(
            operations.contains(&format!("`{name}`")),
            "docs/operations.md does not name the compose service `{name}`"
        );
        let ports = services[name]["ports"].as_vec().unwrap();
        for port in ports {
            let published = text(port).split(':').next().unwrap().to_string();
            assert!(
                operations.contains(&published),
                "docs/operations.md does not mention port {published} of {name}"
            );
        }
    }

    // Longer than dbmazz's 30 s shutdown drain (Docker's default is 10 s).
    let grace = text(&services["dbmazz"]["stop_grace_period"]);
    let seconds: u64 = grace.trim_end_matches('s').parse().unwrap_or(0);
    assert!(seconds > 30, "dbmazz stop_grace_period {grace:?}");

    let postgres = &services["postgres"];
    assert!(text(&postgres["image"]).starts_with("postgres:16"));
    let command: Vec<String> = postgres["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert!(
        command.contains(&"wal_level=logical".to_string()),
        "{command:?}"
    );
    let health = format!("{:?}", postgres["healthcheck"]["test"]);
    assert!(health.contains("pg_isready"), "{health}");
    let mounts: Vec<String> = postgres["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert!(mounts
        .iter()
        .any(|mount| mount.starts_with("./postgres-init:/docker-entrypoint-initdb.d")));
    // The same schema as `dbmazz demo`: every demo table and column.
    let init_sql = read("deploy/postgres-init/01-demo-schema.sql");
    for table in crate::demo::TABLES {
        let start = init_sql
            .find(&format!("CREATE TABLE {} (", table.name))
            .unwrap_or_else(|| panic!("the init SQL does not create {}", table.name));
        let definition = &init_sql[start..start + init_sql[start..].find(");").unwrap()];
        for column in table.columns {
            assert!(
                definition.contains(&format!("\n    {column} ")),
                "{}.{column} is not in the init SQL",
                table.name
            );
        }
    }
    assert!(init_sql.contains("CREATE PUBLICATION dbmazz_pub FOR TABLE"));

    let starrocks = &services["starrocks"];
    assert!(text(&starrocks["image"]).starts_with("starrocks/allin1-ubuntu"));
    assert!(!starrocks["healthcheck"]["test"].is_badvalue());

    let dbmazz = &services["dbmazz"];
    let dockerfile = text(&dbmazz["build"]["dockerfile"]);
    assert!(repo_file(&dockerfile).exists(), "{dockerfile}");
    for dependency in ["postgres", "starrocks"] {
        assert_eq!(
            text(&dbmazz["depends_on"][dependency]["condition"]),
            "service_healthy"
        );
    }
    let env = pairs(&dbmazz["environment"]);
    for (name, _) in &env {
        assert!(name.starts_with("DBMAZZ_"), "{name}");
        if name == "DBMAZZ_LOG" {
            continue;
        }
        // table_properties.<name> is a map entry: the documented key is the map.
        let key = config_key(name);
        let documented = key
            .strip_prefix("sink.starrocks.table_properties.")
            .map_or(key.clone(), |_| "sink.starrocks.table_properties".into());
        assert!(
            reference.contains(&format!("`{documented}`")),
            "{name} → {documented} is not in docs/configuration.md"
        );
    }
    let config = load_with(None, &env);
    let starrocks_config = config.sink.starrocks.as_ref().unwrap();
    assert!(config.source.url.contains("@postgres:5432/demo_db"));
    assert_eq!(starrocks_config.fe_http, "http://starrocks:8030");
    assert_eq!(starrocks_config.mysql, "starrocks:9030");
    assert_eq!(starrocks_config.be_http, vec!["http://starrocks:8040"]);
    assert_eq!(
        starrocks_config.table_properties.get("replication_num"),
        Some(&"1".to_string())
    );
    let published: Vec<String> = dbmazz["ports"].as_vec().unwrap().iter().map(text).collect();
    assert_eq!(published, vec![format!("9808:{}", listen_port(&config))]);
    assert_eq!(config.state_dir, PathBuf::from("/var/lib/dbmazz"));
}

#[test]
fn kubernetes_manifest_runs_one_process_per_slot_with_a_loadable_config() {
    let documents = parse("deploy/k8s/dbmazz.yaml");
    let of_kind = |kind: &str| {
        documents
            .iter()
            .find(|document| document["kind"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} in deploy/k8s/dbmazz.yaml"))
    };
    let deployment = of_kind("Deployment");
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(1));
    assert_eq!(text(&deployment["spec"]["strategy"]["type"]), "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        text(&container["livenessProbe"]["httpGet"]["path"]),
        "/healthz"
    );
    assert_eq!(
        text(&container["readinessProbe"]["httpGet"]["path"]),
        "/readyz"
    );
    assert!(!container["resources"]["requests"].is_badvalue());
    assert!(!container["resources"]["limits"]["memory"].is_badvalue());
    let container_port = text(&container["ports"][0]["containerPort"]);

    let config_map = of_kind("ConfigMap");
    let toml = text(&config_map["data"]["dbmazz.toml"]);
    let secret = of_kind("Secret");
    let secret_env = pairs(&secret["stringData"]);
    assert!(secret_env
        .iter()
        .all(|(name, _)| name.starts_with("DBMAZZ_")));
    assert_eq!(
        text(&container["envFrom"][0]["secretRef"]["name"]),
        text(&secret["metadata"]["name"])
    );
    let config = load_with(Some(&toml), &secret_env);
    assert_eq!(listen_port(&config), container_port);
    assert_eq!(
        config.sink.starrocks.as_ref().unwrap().password,
        "change-me",
        "the Secret's password overrides the file"
    );

    // The config file and the state directory are where the pod mounts them.
    let args: Vec<String> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    let config_path = args[args.iter().position(|arg| arg == "--config").unwrap() + 1].clone();
    let mounts = container["volumeMounts"].as_vec().unwrap();
    let mount_of = |name: &str| {
        mounts
            .iter()
            .find(|mount| mount["name"].as_str() == Some(name))
            .map(|mount| text(&mount["mountPath"]))
            .unwrap()
    };
    assert_eq!(config_path, format!("{}/dbmazz.toml", mount_of("config")));
    assert_eq!(config.state_dir, PathBuf::from(mount_of("state")));
    let claim = text(&of_kind("PersistentVolumeClaim")["metadata"]["name"]);
    let volumes = pod["volumes"].as_vec().unwrap();
    assert!(volumes
        .iter()
        .any(|volume| volume["persistentVolumeClaim"]["claimName"].as_str() == Some(&claim)));

    let service = of_kind("Service");
    assert_eq!(text(&service["spec"]["ports"][0]["port"]), container_port);
}

#[test]
fn dockerfile_runs_the_binary_as_a_non_root_user_with_a_healthcheck() {
    let dockerfile = read("deploy/Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    assert!(
        lines
            .iter()
            .filter(|line| line.starts_with("FROM "))
            .count()
            >= 2
    );
    assert!(lines.contains(&"EXPOSE 9808"));
    let user = lines
        .iter()
        .rev()
        .find(|line| line.starts_with("USER "))
        .unwrap();
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/healthz"));
    assert!(dockerfile.contains("ENTRYPOINT [\"dbmazz\"]"));
}
