//! The one typed configuration: a TOML file, then `DBMAZZ_*` environment variables, then
//! command-line flags (each layer overrides the one before), validated before anything
//! connects. A bad value is one line naming the key, the problem and the fix.
//!
//! Environment keys use `__` between levels: `DBMAZZ_SOURCE__URL`, `DBMAZZ_BATCH__MAX_ROWS`,
//! `DBMAZZ_SINK__STARROCKS__PASSWORD`. The reference is docs/configuration.md.

mod units;

pub use units::{ByteSize, HumanDuration};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::pipeline::{BatchLimits, PipelineLimits};
use crate::schema::TableName;
use crate::sink::starrocks::stream_load::check_http_base;
use crate::source::PgConnectConfig;

pub const DEFAULT_STATE_DIR: &str = "./dbmazz-state";
pub const DEFAULT_PUBLICATION: &str = "dbmazz_pub";
pub const DEFAULT_SLOT: &str = "dbmazz_slot";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9808";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Local state: spill files of large streamed transactions, the state file.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    pub source: SourceConfig,
    #[serde(default)]
    pub sink: SinkConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub snapshot: SnapshotConfig,
}

/// When the existing rows are copied before streaming.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// Snapshot when dbmazz creates the slot (and finish an interrupted snapshot), then stream.
    #[default]
    Initial,
    /// Never snapshot: stream only.
    Never,
    /// Snapshot every table again at every start (a new epoch), then stream.
    Always,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    #[serde(default)]
    pub mode: SnapshotMode,
    /// Chunks read and loaded at once (one PostgreSQL connection each).
    #[serde(default = "default_snapshot_parallelism")]
    pub parallelism: usize,
    /// Heap pages (8 KiB each by default) per chunk: the unit of parallelism and of resume.
    #[serde(default = "default_chunk_pages")]
    pub chunk_pages: u32,
    /// How often the catalog is compared with what was copied: a partition attached with rows
    /// gets a snapshot of its own, a partition with a new file (truncated alone) is reported,
    /// a table that left the publication is forgotten (copied anew if published again).
    /// `0s` = never checked.
    #[serde(default = "default_partition_check_interval")]
    pub partition_check_interval: HumanDuration,
    /// Empty each StarRocks table (`TRUNCATE TABLE`) before a new snapshot of all tables (the
    /// initial one; every start in mode `always`), so rows that exist only in StarRocks — left
    /// by a slot that was lost and recreated, say — are gone afterwards. Off by default: a
    /// StarRocks table may also hold rows that did not come from this source.
    #[serde(default)]
    pub replace: bool,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            mode: SnapshotMode::default(),
            parallelism: default_snapshot_parallelism(),
            chunk_pages: default_chunk_pages(),
            partition_check_interval: default_partition_check_interval(),
            replace: false,
        }
    }
}

/// At most this many snapshot readers (each holds a connection and a batch in memory).
pub const MAX_SNAPSHOT_PARALLELISM: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `postgres://user:password@host:port/database?sslmode=...`
    pub url: String,
    #[serde(default = "default_publication")]
    pub publication: String,
    #[serde(default = "default_slot")]
    pub slot: String,
    /// `schema.table` names; empty = every table of the publication.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Standby status updates at least this often.
    #[serde(default = "default_status_interval")]
    pub status_interval: HumanDuration,
    /// Wake the reader only once this much data is queued on the replication socket
    /// (`SO_RCVLOWAT`, TCP), so the walsender's many small writes are read in large chunks;
    /// `0` = off. See `read_pacing` for how long a read waits for it.
    #[serde(default = "default_read_low_water")]
    pub read_low_water: ByteSize,
    /// How long a read waits for `read_low_water` bytes before taking what is there. Without a
    /// low-water mark (off, or not TCP): after a socket read that brought under 64 KiB, wait
    /// this long before reading again. Either way the walsender sends in larger chunks (its
    /// CPU is what bounds the drain rate); adds at most this much latency. `0s` = off.
    #[serde(default = "default_read_pacing")]
    pub read_pacing: HumanDuration,
    /// Key columns of tables whose replica identity has none (`"schema.table" = ["col", …]`):
    /// tables without a primary key under `REPLICA IDENTITY FULL`, or insert-only ones.
    #[serde(default)]
    pub key_columns: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `starrocks` (default), `noop` (accepts everything: benchmarks of the stream path) or
    /// `file` (JSON lines, fsynced: debugging and crash tests).
    #[serde(default, rename = "type")]
    pub kind: SinkKind,
    pub starrocks: Option<StarRocksConfig>,
    pub file: Option<FileSinkConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The JSON-lines file changes are appended to.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    #[default]
    Starrocks,
    Noop,
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarRocksConfig {
    /// FE HTTP address for Stream Load: `http://host:8030`.
    pub fe_http: String,
    /// FE MySQL-protocol address for DDL and metadata: `host:9030`.
    pub mysql: String,
    #[serde(default = "default_starrocks_user")]
    pub user: String,
    #[serde(default)]
    pub password: String,
    pub database: String,
    /// Create missing Primary Key tables from the PostgreSQL definition.
    #[serde(default = "default_true")]
    pub create_tables: bool,
    /// `hard` (`__op` = 1 removes the row) or `soft` (`dbmazz_is_deleted` = true).
    #[serde(default)]
    pub delete_mode: crate::sink::starrocks::DeleteMode,
    /// Add `dbmazz_op_type`, `dbmazz_lsn`, `dbmazz_synced_at` to every row.
    #[serde(default)]
    pub audit_columns: bool,
    /// Use the Stream Load transaction API: every load of a batch is prepared before any is
    /// committed, so a batch split into several loads becomes visible at once.
    #[serde(default)]
    pub transactional: bool,
    /// `fe` (default: the FE redirects to a BE) or `be` (send to `be_http` directly).
    #[serde(default)]
    pub load_via: LoadViaConfig,
    /// BE HTTP addresses for `load_via = "be"`.
    #[serde(default)]
    pub be_http: Vec<String>,
    /// What to do with a value StarRocks cannot hold exactly: `null`, `error`, `truncate`.
    #[serde(default)]
    pub lossy_policy: crate::schema::type_map::LossyPolicy,
    /// numeric wider than DECIMAL(38): `decimal` (DECIMAL(38,9), loss detected) or `string`.
    #[serde(default)]
    pub wide_numeric: crate::schema::type_map::WideNumeric,
    /// Types dbmazz does not know (user-defined: enums, composites, extension types): `text`
    /// (default: store their text form) or `reject` (`dbmazz check` and the sink refuse them).
    #[serde(default)]
    pub unknown_types: crate::schema::type_map::UnknownTypes,
    /// PROPERTIES of created tables, e.g. `{ replication_num = "1" }`.
    #[serde(default)]
    pub table_properties: std::collections::BTreeMap<String, String>,
    /// How long one load is retried (StarRocks down, busy, unreachable) before dbmazz stops
    /// with the last error. The slot keeps everything meanwhile, so longer only delays the
    /// stop; shorter stops sooner during an outage.
    #[serde(default = "default_retry_max_elapsed")]
    pub retry_max_elapsed: HumanDuration,
}

impl StarRocksConfig {
    /// The type map options these settings choose (the sink and `dbmazz check` share them).
    pub fn type_map_options(&self) -> crate::schema::TypeMapOptions {
        crate::schema::TypeMapOptions {
            lossy_policy: self.lossy_policy,
            wide_numeric: self.wide_numeric,
            unknown_types: self.unknown_types,
            domains: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadViaConfig {
    #[default]
    Fe,
    Be,
}

fn default_retry_max_elapsed() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_rows: default_max_rows(),
            max_bytes: default_max_bytes(),
            max_wait: default_max_wait(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Row data held in batches before the reader stops reading (backpressure).
    /// Unset: the larger of 16 MiB and `batch.max_bytes` ([`Config::max_memory`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<ByteSize>,
    /// Streamed in-progress transactions kept in memory before spilling to `state_dir/spill`.
    #[serde(default = "default_spill_threshold")]
    pub spill_threshold: ByteSize,
    /// Sink operations in flight across tables (one per table at most).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_memory: None,
            spill_threshold: default_spill_threshold(),
            max_in_flight: default_max_in_flight(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where /healthz, /status and /metrics listen; `""` disables the HTTP API.
    #[serde(default = "default_http_listen")]
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_http_listen(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_publication() -> String {
    DEFAULT_PUBLICATION.into()
}
fn default_slot() -> String {
    DEFAULT_SLOT.into()
}
fn default_status_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_read_pacing() -> HumanDuration {
    // With the low-water mark (docs/benchmarks.md, session 4).
    HumanDuration(Duration::from_millis(5))
}

fn default_read_low_water() -> ByteSize {
    ByteSize(128 * 1024)
}
fn default_starrocks_user() -> String {
    "root".into()
}
fn default_max_rows() -> usize {
    100_000
}
fn default_max_bytes() -> ByteSize {
    ByteSize::mib(8)
}
fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_max_memory() -> ByteSize {
    // Measured: peak RSS 54 MiB draining 1M changes into StarRocks at 16 MiB, 89 MiB at 32 MiB,
    // same rows/s (docs/benchmarks.md).
    ByteSize::mib(16)
}
fn default_spill_threshold() -> ByteSize {
    ByteSize::mib(8)
}
fn default_max_in_flight() -> usize {
    4
}
fn default_snapshot_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |cores| cores.get())
}
fn default_chunk_pages() -> u32 {
    // 32 MiB of heap: big enough that per-chunk costs (a query, a state write) vanish, small
    // enough that a restart re-reads little and a big table spreads over the readers.
    4096
}
fn default_partition_check_interval() -> HumanDuration {
    // A catalog query per interval; an attached partition's rows wait at most this long.
    HumanDuration(Duration::from_secs(10))
}
fn default_http_listen() -> String {
    DEFAULT_HTTP_LISTEN.into()
}

/// A configuration problem: which key, what is wrong, how to fix it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("config: {}{problem} — {fix}", key_prefix(.key))]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

/// `key: `, or nothing when the problem is not one key's (an empty key).
fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Environment variables whose values are taken as text, exactly as given.
const VERBATIM_VARIABLES: [(&str, &str); 4] = [
    ("DBMAZZ_SOURCE__URL", "source.url"),
    ("DBMAZZ_SINK__STARROCKS__USER", "sink.starrocks.user"),
    (
        "DBMAZZ_SINK__STARROCKS__PASSWORD",
        "sink.starrocks.password",
    ),
    (
        "DBMAZZ_SINK__STARROCKS__DATABASE",
        "sink.starrocks.database",
    ),
];

/// Flag values that override the file and the environment (only those given).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides(pub Vec<(&'static str, String)>);

impl Config {
    /// Loads `path` (optional), then `DBMAZZ_*` variables, then `overrides`, and validates.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} does not exist", path.display()),
                    "pass the path of your dbmazz.toml (see docs/configuration.md)",
                ));
            }
            if path.is_dir() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is a directory", path.display()),
                    "pass the path of your dbmazz.toml file (see docs/configuration.md)",
                ));
            }
            if let Err(error) = std::fs::read_to_string(path) {
                let fix = match error.kind() {
                    std::io::ErrorKind::PermissionDenied => {
                        "make it readable by the user running dbmazz"
                    }
                    std::io::ErrorKind::InvalidData => "save it as UTF-8 text",
                    _ => "pass the path of your dbmazz.toml (see docs/configuration.md)",
                };
                let problem = match error.kind() {
                    std::io::ErrorKind::InvalidData => "is not UTF-8 text".to_string(),
                    _ => format!("cannot be read: {error}"),
                };
                return Err(ConfigError::new(
                    "--config",
                    format!("{} {problem}", path.display()),
                    fix,
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(
            Env::prefixed("DBMAZZ_")
                .filter(|key| !is_tooling_variable(key.as_str()))
                .split("__"),
        );
        // Secrets and names as written: the environment provider would read `123` as a number
        // and trim spaces.
        for (variable, key) in VERBATIM_VARIABLES {
            if let Ok(value) = std::env::var(variable) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        for (key, value) in &overrides.0 {
            figment = figment.merge(Serialized::default(key, value));
        }
        Self::from_figment(figment)
    }

    /// Parses a TOML document alone (tests, `dbmazz check --config -`).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(figment_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything that can be checked without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.source_connect()?;
        check_identifier("source.publication", &self.source.publication)?;
        check_slot_name(&self.source.slot)?;
        for table in &self.source.tables {
            if TableName::parse(table).is_none() {
                return Err(ConfigError::new(
                    "source.tables",
                    format!("{table:?} is not a table name"),
                    "write tables as \"schema.table\", e.g. \"public.orders\"",
                ));
            }
        }
        for (table, keys) in &self.source.key_columns {
            let key = format!("source.key_columns.{table:?}");
            if TableName::parse(table).is_none() {
                return Err(ConfigError::new(
                    &key,
                    format!("{table:?} is not a table name"),
                    "write tables as \"schema.table\", e.g. \"public.events\" = [\"id\"]",
                ));
            }
            if keys.is_empty() || keys.iter().any(|column| column.is_empty()) {
                return Err(ConfigError::new(
                    &key,
                    "needs at least one column name",
                    "list the key columns, e.g. [\"id\"] or [\"tenant\", \"id\"]",
                ));
            }
        }
        if self.source.status_interval.0.is_zero() {
            return Err(ConfigError::new(
                "source.status_interval",
                "must be more than zero",
                "use e.g. \"10s\"",
            ));
        }
        if self.batch.max_rows == 0 {
            return Err(ConfigError::new(
                "batch.max_rows",
                "must be at least 1",
                "use e.g. 100000",
            ));
        }
        if self.batch.max_bytes.0 < 1024 {
            return Err(ConfigError::new(
                "batch.max_bytes",
                format!("{} is too small", self.batch.max_bytes),
                "use at least \"1MiB\" (e.g. \"16MiB\")",
            ));
        }
        if self.batch.max_wait.0.is_zero() {
            return Err(ConfigError::new(
                "batch.max_wait",
                "must be more than zero",
                "use e.g. \"1s\" (StarRocks merges every load into a new version)",
            ));
        }
        if self.max_memory() < self.batch.max_bytes {
            return Err(ConfigError::new(
                "pipeline.max_memory",
                format!(
                    "{} is below batch.max_bytes ({})",
                    self.max_memory(),
                    self.batch.max_bytes
                ),
                "raise pipeline.max_memory or lower batch.max_bytes",
            ));
        }
        if self.pipeline.max_in_flight == 0 {
            return Err(ConfigError::new(
                "pipeline.max_in_flight",
                "must be at least 1",
                "use e.g. 4",
            ));
        }
        if self.snapshot.parallelism == 0 || self.snapshot.parallelism > MAX_SNAPSHOT_PARALLELISM {
            return Err(ConfigError::new(
                "snapshot.parallelism",
                format!("{} is out of range", self.snapshot.parallelism),
                format!(
                    "use 1 to {MAX_SNAPSHOT_PARALLELISM} (default: the number of cores); each \
                     reader holds a PostgreSQL connection"
                ),
            ));
        }
        if self.snapshot.chunk_pages == 0 {
            return Err(ConfigError::new(
                "snapshot.chunk_pages",
                "must be at least 1",
                "use e.g. 4096 (32 MiB of 8 KiB pages)",
            ));
        }
        if !self.http.listen.is_empty() && self.http.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "http.listen",
                format!("{:?} is not an IP address and port", self.http.listen),
                "use ip:port, e.g. \"127.0.0.1:9808\", \"0.0.0.0:9808\" or \"[::1]:9808\" (a host \
                 name is not resolved; \"\" disables the API)",
            ));
        }
        if self.sink.kind == SinkKind::File && self.sink.file.is_none() {
            return Err(ConfigError::new(
                "sink.file",
                "missing",
                "add [sink.file] with path = \"changes.jsonl\"",
            ));
        }
        if self.sink.kind == SinkKind::Starrocks {
            let Some(starrocks) = &self.sink.starrocks else {
                return Err(ConfigError::new(
                    "sink.starrocks",
                    "missing",
                    "add a [sink.starrocks] section with fe_http, mysql, user, password, database",
                ));
            };
            if let Err(problem) = check_http_base(&starrocks.fe_http) {
                return Err(ConfigError::new(
                    "sink.starrocks.fe_http",
                    problem,
                    "use the FE's HTTP address, e.g. \"http://127.0.0.1:8030\"",
                ));
            }
            for address in &starrocks.be_http {
                if let Err(problem) = check_http_base(address) {
                    return Err(ConfigError::new(
                        "sink.starrocks.be_http",
                        problem,
                        "list the BEs' HTTP addresses, e.g. [\"http://10.0.0.5:8040\"]",
                    ));
                }
            }
            if !starrocks.mysql.contains(':') {
                return Err(ConfigError::new(
                    "sink.starrocks.mysql",
                    format!("{:?} has no port", starrocks.mysql),
                    "use the FE's MySQL address host:port, e.g. \"127.0.0.1:9030\"",
                ));
            }
            check_identifier("sink.starrocks.database", &starrocks.database)?;
            if starrocks.load_via == LoadViaConfig::Be && starrocks.be_http.is_empty() {
                return Err(ConfigError::new(
                    "sink.starrocks.be_http",
                    "empty while load_via = \"be\"",
                    "list the BE HTTP addresses, e.g. [\"http://10.0.0.5:8040\"]",
                ));
            }
        }
        Ok(())
    }

    /// The parsed source URL.
    pub fn source_connect(&self) -> Result<PgConnectConfig, ConfigError> {
        PgConnectConfig::from_url(&self.source.url).map_err(|error| {
            ConfigError::new(
                "source.url",
                error.to_string(),
                "use postgres://user:password@host:5432/database (percent-encode special characters)",
            )
        })
    }

    /// The configured tables, parsed (validated already).
    /// `source.key_columns`, by table.
    pub fn key_overrides(&self) -> crate::schema::KeyOverrides {
        crate::schema::KeyOverrides::new(
            self.source
                .key_columns
                .iter()
                .filter_map(|(table, keys)| Some((TableName::parse(table)?, keys.clone())))
                .collect(),
        )
    }

    pub fn tables(&self) -> Vec<TableName> {
        self.source
            .tables
            .iter()
            .filter_map(|table| TableName::parse(table))
            .collect()
    }

    /// `pipeline.max_memory`, or when unset the larger of its default and `batch.max_bytes`
    /// (a batch must fit).
    pub fn max_memory(&self) -> ByteSize {
        self.pipeline
            .max_memory
            .unwrap_or_else(|| default_max_memory().max(self.batch.max_bytes))
    }

    pub fn pipeline_limits(&self) -> PipelineLimits {
        PipelineLimits {
            batch: BatchLimits {
                max_rows: self.batch.max_rows,
                max_bytes: self.batch.max_bytes.as_usize(),
                max_wait: self.batch.max_wait.0,
            },
            max_memory: self.max_memory().as_usize(),
            spill_threshold: self.pipeline.spill_threshold.as_usize(),
            max_in_flight: self.pipeline.max_in_flight,
        }
    }

    pub fn spill_dir(&self) -> PathBuf {
        self.state_dir.join("spill")
    }
}

/// `DBMAZZ_*` variables that are not config keys: the log filter and test tooling.
fn is_tooling_variable(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "log" || key.starts_with("pg") || key.starts_with("bench")
}

fn figment_error(error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let origin = error
        .metadata
        .as_ref()
        .map(|metadata| match &metadata.source {
            Some(figment::Source::File(path)) => format!("in {}", path.display()),
            // Flags are merged as serialized values, whose provider is named by a Rust type.
            _ if metadata.name.contains("::") => "from a command-line flag".to_string(),
            // Name the variable the operator set, not figment's "environment variable(s)".
            _ if metadata.name.contains("environment") && !error.path.is_empty() => format!(
                "from the environment variable DBMAZZ_{}",
                error.path.join("__").to_ascii_uppercase()
            ),
            _ => format!("from {}", metadata.name),
        });
    let mut key = error.path.join(".");
    let (problem, fix) = match &error.kind {
        Kind::Message(message) if message.starts_with("TOML parse error") => {
            // toml's message spans lines (the line, a caret, the reason): keep one.
            let lines: Vec<&str> = message.lines().map(str::trim).collect();
            let reason = lines.iter().rev().find(|line| !line.is_empty() && !line.contains('|'));
            let problem = match reason {
                Some(reason) => format!("{}: {reason}", lines[0]),
                None => lines[0].to_string(),
            };
            if let Some(origin) = &origin {
                key = origin.trim_start_matches("in ").to_string();
            }
            (problem, "fix the TOML syntax there".to_string())
        }
        Kind::MissingField(field) if key.is_empty() && field == "source" => (
            "no [source] section".to_string(),
            "pass your dbmazz.toml with --config (or set DBMAZZ_SOURCE__URL); see docs/configuration.md".to_string(),
        ),
        Kind::MissingField(field) => (
            format!("missing key {field}"),
            format!("set {field} in the config file or the DBMAZZ_* environment"),
        ),
        Kind::UnknownField(field, expected) => (
            format!("unknown key {field:?}"),
            format!("check the spelling; known keys here: {}", expected.join(", ")),
        ),
        Kind::UnknownVariant(found, expected) => (
            format!("unknown value {found:?}"),
            format!("use one of: {}", expected.join(", ")),
        ),
        Kind::InvalidType(actual, expected) => (
            format!("found {actual}, expected {}", readable_type(&key, expected)),
            "see docs/configuration.md for the expected form".to_string(),
        ),
        Kind::InvalidValue(actual, expected) => (
            format!(
                "invalid value: found {actual}, expected {}",
                readable_type(&key, expected)
            ),
            "see docs/configuration.md for the expected form".to_string(),
        ),
        other => (
            other.to_string(),
            "see docs/configuration.md for the expected form".to_string(),
        ),
    };
    let problem = match origin {
        Some(origin) if !problem.starts_with("TOML parse error") => format!("{problem} ({origin})"),
        _ => problem,
    };
    ConfigError { key, problem, fix }
}

/// Whole-number keys that `validate` refuses at 0.
const AT_LEAST_ONE: [&str; 4] = [
    "batch.max_rows",
    "pipeline.max_in_flight",
    "snapshot.parallelism",
    "snapshot.chunk_pages",
];

/// serde's names for what it expected at `key`, in words.
fn readable_type(key: &str, expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" if AT_LEAST_ONE.contains(&key) => {
            "a whole number (1 or more)".to_string()
        }
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number (0 or more)".to_string(),
        "isize" | "i64" | "i32" | "i16" | "i8" => "a whole number".to_string(),
        "f64" | "f32" => "a number".to_string(),
        "a boolean" | "bool" => "true or false".to_string(),
        other => other.replace('`', ""),
    }
}

fn check_identifier(key: &str, value: &str) -> Result<(), ConfigError> {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !value.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        return Ok(());
    }
    Err(ConfigError::new(
        key,
        format!("{value:?} is not a plain identifier"),
        "use letters, digits and underscores (not starting with a digit), at most 63 characters",
    ))
}

fn check_slot_name(slot: &str) -> Result<(), ConfigError> {
    let valid = !slot.is_empty()
        && slot.len() <= 63
        && slot
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        return Ok(());
    }
    Err(ConfigError::new(
        "source.slot",
        format!("{slot:?} is not a valid replication slot name"),
        "PostgreSQL allows lower-case letters, digits and underscores, at most 63 characters",
    ))
}

#[cfg(test)]
mod deploy_tests;
#[cfg(test)]
mod tests;
