//! The PostgreSQL half of `dbmazz check`: connection and auth, server version, `wal_level`,
//! slot and walsender capacity, the role's privileges, the publication, the replication slot,
//! the local state file, and per table its key, replica identity and column types.
//!
//! Read-only: nothing is created or altered here (the publication and slot that `dbmazz run`
//! would create are reported as such).

use crate::checkpoint::StateFile;
use crate::config::Config;
use crate::decode::ReplicaIdentity;
use crate::schema::type_map::{map_pg_type, numeric_precision_scale, oid, WideNumeric};
use crate::schema::{ColumnSchema, LossyPolicy, TableName, TableSchema, TypeMapOptions};
use crate::source::{
    connect_sql, published_tables, quote_ident, quote_table, AuthMethod, PgConnectConfig,
    PgOutputProtocol, ReplicationClient, SetupError, SourceError,
};

use super::{CheckLine, CheckReport};

/// Retained WAL above this share of `max_slot_wal_keep_size` is a warning.
const RETAINED_WAL_WARN_RATIO: f64 = 0.8;

/// Checks the source; returns the shapes (as pgoutput will describe them) of the tables that
/// exist, for the StarRocks checks.
pub(super) async fn check(config: &Config, report: &mut CheckReport) -> Vec<TableSchema> {
    let connect = match config.source_connect() {
        Ok(connect) => connect,
        Err(error) => {
            report.push(CheckLine::fail("source.url", error.problem, error.fix));
            return Vec::new();
        }
    };
    let client = match connect_sql(&connect).await {
        Ok(client) => client,
        Err(error) => {
            report.push(connect_failure("PostgreSQL connection", &error));
            return Vec::new();
        }
    };
    report.push(CheckLine::ok(
        "PostgreSQL connection",
        format!(
            "{}:{} database {:?} as user {:?}",
            connect.host, connect.port, connect.dbname, connect.user
        ),
    ));
    match inspect(config, &connect, &client, report).await {
        Ok(tables) => tables,
        Err(error) => {
            report.push(CheckLine::fail(
                "PostgreSQL",
                format!("a check query failed: {error}"),
                "see the message; if it is a permission error, grant what docs/operations.md lists",
            ));
            Vec::new()
        }
    }
}

/// A failed connection as a line: the error (which names the problem) and the fix.
fn connect_failure(subject: &str, error: &SourceError) -> CheckLine {
    let fix = match error {
        SourceError::Connect { .. } => {
            "check host and port in source.url, and that PostgreSQL listens there (listen_addresses, firewall)"
        }
        SourceError::Auth { .. } => "check user and password in source.url, and pg_hba.conf",
        SourceError::NotReplicationRole { user } => {
            return CheckLine::fail(
                subject,
                error.to_string(),
                format!("ALTER ROLE {} WITH REPLICATION;", quote_ident(user)),
            )
        }
        SourceError::Tls { .. } => "check sslmode and sslrootcert in source.url",
        SourceError::Server { code, .. } if code == "3D000" => {
            "create the database, or fix the database name in source.url"
        }
        _ => "see the message",
    };
    CheckLine::fail(subject, error.to_string(), fix)
}

/// Everything after the connection; a query error ends the PostgreSQL checks.
async fn inspect(
    config: &Config,
    connect: &PgConnectConfig,
    client: &tokio_postgres::Client,
    report: &mut CheckReport,
) -> Result<Vec<TableSchema>, SourceError> {
    let version_num: u32 = client
        .query_one("SELECT current_setting('server_version_num')", &[])
        .await?
        .get::<_, String>(0)
        .parse()
        .unwrap_or(0);
    let version: String = client
        .query_one("SELECT current_setting('server_version')", &[])
        .await?
        .get(0);
    report.push(version_line(&version, version_num));

    let settings = Settings::read(client).await?;
    report.push(match settings.wal_level.as_str() {
        "logical" => CheckLine::ok("wal_level", "logical"),
        other => CheckLine::fail(
            "wal_level",
            format!("{other}: logical replication needs wal_level = logical"),
            "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
        ),
    });

    let role = Role::read(client).await?;
    report.push(role.replication_line());
    let slot = SlotRow::read(client, &config.source.slot, version_num).await?;
    // Before our own replication connection, which holds a walsender until it is gone.
    report.push(settings.capacity_line(client, slot.is_some()).await?);
    if role.may_replicate() {
        report.push(match ReplicationClient::connect(connect).await {
            Ok(replication) => {
                let line = CheckLine::ok(
                    "replication connection",
                    format!(
                        "accepted ({} authentication{})",
                        auth_name(replication.auth_method()),
                        if replication.is_tls() { ", TLS" } else { "" }
                    ),
                );
                // Closing politely is a courtesy; a failure here changes nothing.
                let _ = replication.close().await;
                line
            }
            Err(error) => connect_failure("replication connection", &error),
        });
    }

    let tables = check_publication(config, client, &role, report).await?;
    let mut shapes = Vec::new();
    for table in &tables {
        if let Some(shape) = check_table(config, client, &role, table, version_num, report).await? {
            shapes.push(shape);
        }
    }

    report.push(slot_line(config, slot.as_ref(), &settings));
    if let Some(line) = state_line(config, &connect.dbname, slot.is_some()) {
        report.push(line);
    }
    Ok(shapes)
}

/// The pg_hba.conf name of an authentication method.
fn auth_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Trust => "trust",
        AuthMethod::Password => "password",
        AuthMethod::Md5 => "md5",
        AuthMethod::ScramSha256 => "scram-sha-256",
        AuthMethod::ScramSha256Plus => "scram-sha-256 with channel binding",
    }
}

fn version_line(version: &str, version_num: u32) -> CheckLine {
    if version_num < 100_000 {
        return CheckLine::fail(
            "PostgreSQL version",
            format!("{version}: pgoutput logical replication needs PostgreSQL 10 or newer"),
            "upgrade PostgreSQL (15 or newer recommended)",
        );
    }
    let protocol = PgOutputProtocol::for_server_version(version_num);
    let streaming = match protocol.streaming {
        Some(mode) => format!("streaming of large transactions {mode}"),
        None => "no streaming of in-progress transactions (PostgreSQL 14+ has it)".to_string(),
    };
    CheckLine::ok(
        "PostgreSQL version",
        format!(
            "{version}; pgoutput protocol v{} will be negotiated, {streaming}",
            protocol.version
        ),
    )
}

/// The server settings the checks need.
struct Settings {
    wal_level: String,
    max_replication_slots: i64,
    max_wal_senders: i64,
    /// `max_slot_wal_keep_size` in MB; `None` when unlimited (-1) or unknown (PostgreSQL < 13).
    max_slot_wal_keep_mb: Option<i64>,
}

impl Settings {
    async fn read(client: &tokio_postgres::Client) -> Result<Self, SourceError> {
        let rows = client
            .query(
                "SELECT name, setting FROM pg_settings WHERE name IN \
                 ('wal_level', 'max_replication_slots', 'max_wal_senders', 'max_slot_wal_keep_size')",
                &[],
            )
            .await?;
        let get = |name: &str| {
            rows.iter()
                .find(|row| row.get::<_, String>(0) == name)
                .map(|row| row.get::<_, String>(1))
        };
        let number = |name: &str| get(name).and_then(|value| value.parse::<i64>().ok());
        Ok(Settings {
            wal_level: get("wal_level").unwrap_or_default(),
            max_replication_slots: number("max_replication_slots").unwrap_or(0),
            max_wal_senders: number("max_wal_senders").unwrap_or(0),
            max_slot_wal_keep_mb: number("max_slot_wal_keep_size").filter(|mb| *mb >= 0),
        })
    }

    /// A new slot needs a free `max_replication_slots` entry; streaming needs a free walsender.
    async fn capacity_line(
        &self,
        client: &tokio_postgres::Client,
        slot_exists: bool,
    ) -> Result<CheckLine, SourceError> {
        let slots: i64 = client
            .query_one("SELECT count(*) FROM pg_replication_slots", &[])
            .await?
            .get(0);
        let senders: i64 = client
            .query_one("SELECT count(*) FROM pg_stat_replication", &[])
            .await?
            .get(0);
        let subject = "replication capacity";
        let found = format!(
            "{slots} of max_replication_slots = {} in use, {senders} of max_wal_senders = {} in use",
            self.max_replication_slots, self.max_wal_senders
        );
        if !slot_exists && slots >= self.max_replication_slots {
            return Ok(CheckLine::fail(
                subject,
                format!("{found}: no slot free for dbmazz's new slot"),
                "raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = ...; restart) \
                 or drop an unused slot (SELECT pg_drop_replication_slot('...'))",
            ));
        }
        if senders >= self.max_wal_senders {
            return Ok(CheckLine::fail(
                subject,
                format!("{found}: no walsender free for dbmazz's connection"),
                "raise max_wal_senders (ALTER SYSTEM SET max_wal_senders = ...; restart)",
            ));
        }
        Ok(CheckLine::ok(subject, found))
    }
}

/// The connecting role.
struct Role {
    name: String,
    superuser: bool,
    replication: bool,
    may_create_in_database: bool,
}

impl Role {
    async fn read(client: &tokio_postgres::Client) -> Result<Self, SourceError> {
        let row = client
            .query_one(
                "SELECT rolname::text, rolsuper, rolreplication, \
                        has_database_privilege(current_database(), 'CREATE') \
                 FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await?;
        Ok(Role {
            name: row.get(0),
            superuser: row.get(1),
            replication: row.get(2),
            may_create_in_database: row.get(3),
        })
    }

    fn may_replicate(&self) -> bool {
        self.superuser || self.replication
    }

    fn replication_line(&self) -> CheckLine {
        let subject = "REPLICATION privilege";
        if self.superuser {
            return CheckLine::ok(subject, format!("{:?} is a superuser", self.name));
        }
        if self.replication {
            return CheckLine::ok(subject, format!("{:?} has REPLICATION", self.name));
        }
        CheckLine::fail(
            subject,
            format!(
                "{:?} has neither REPLICATION nor superuser: it cannot open a replication connection",
                self.name
            ),
            format!(
                "ALTER ROLE {} WITH REPLICATION; (on managed services: GRANT rds_replication / \
                 the provider's replication role)",
                quote_ident(&self.name)
            ),
        )
    }
}

/// Checks the publication; returns the tables to check (the configured ones, or those the
/// publication publishes when none are configured).
async fn check_publication(
    config: &Config,
    client: &tokio_postgres::Client,
    role: &Role,
    report: &mut CheckReport,
) -> Result<Vec<TableName>, SourceError> {
    let publication = &config.source.publication;
    let subject = format!("publication {publication}");
    let configured = config.tables();
    let row = client
        .query_opt(
            "SELECT pubinsert, pubupdate, pubdelete FROM pg_publication WHERE pubname = $1",
            &[publication],
        )
        .await?;
    let Some(row) = row else {
        report.push(missing_publication_line(config, client, role, &configured, &subject).await?);
        return Ok(configured);
    };
    let published = published_tables(client, publication)
        .await
        .map_err(setup_source_error)?;
    let missing: Vec<String> = configured
        .iter()
        .filter(|table| !published.contains(table))
        .map(ToString::to_string)
        .collect();
    let actions: Vec<&str> = [(0, "insert"), (1, "update"), (2, "delete")]
        .into_iter()
        .filter(|(index, _)| !row.get::<_, bool>(*index))
        .map(|(_, action)| action)
        .collect();
    report.push(if !missing.is_empty() {
        CheckLine::fail(
            &subject,
            format!("does not publish {}", missing.join(", ")),
            format!(
                "ALTER PUBLICATION {} ADD TABLE {};",
                quote_ident(publication),
                missing.join(", ")
            ),
        )
    } else if published.is_empty() {
        CheckLine::fail(
            &subject,
            "publishes no tables",
            format!(
                "ALTER PUBLICATION {} ADD TABLE ...; (or list the tables in source.tables)",
                quote_ident(publication)
            ),
        )
    } else if !actions.is_empty() {
        CheckLine::warn(
            &subject,
            format!(
                "does not publish {}: StarRocks will miss those changes",
                actions.join(", ")
            ),
            format!(
                "ALTER PUBLICATION {} SET (publish = 'insert, update, delete, truncate');",
                quote_ident(publication)
            ),
        )
    } else {
        CheckLine::ok(&subject, format!("publishes {} table(s)", published.len()))
    });
    Ok(if configured.is_empty() {
        published
    } else {
        configured
    })
}

/// A missing publication: `dbmazz run` creates it for the configured tables if it may.
async fn missing_publication_line(
    config: &Config,
    client: &tokio_postgres::Client,
    role: &Role,
    configured: &[TableName],
    subject: &str,
) -> Result<CheckLine, SourceError> {
    let publication = &config.source.publication;
    if configured.is_empty() {
        return Ok(CheckLine::fail(
            subject,
            SetupError::NoPublicationNoTables {
                publication: publication.clone(),
            }
            .to_string(),
            "list the tables in source.tables, or CREATE PUBLICATION ... FOR TABLE ...",
        ));
    }
    let list = configured
        .iter()
        .map(quote_table)
        .collect::<Vec<_>>()
        .join(", ");
    let create = format!(
        "CREATE PUBLICATION {} FOR TABLE {list};",
        quote_ident(publication)
    );
    // CREATE PUBLICATION ... FOR TABLE needs CREATE on the database and ownership of each table.
    let mut not_owned = Vec::new();
    for table in configured {
        let owned = client
            .query_opt(
                "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&table.schema, &table.name],
            )
            .await?
            .is_none_or(|row| row.get::<_, bool>(0));
        if !owned {
            not_owned.push(table.to_string());
        }
    }
    if role.superuser || (role.may_create_in_database && not_owned.is_empty()) {
        return Ok(CheckLine::warn(
            subject,
            format!("does not exist; dbmazz will create it at the first start: {create}"),
            "nothing to do, or create it yourself beforehand",
        ));
    }
    let mut reasons = Vec::new();
    if !role.may_create_in_database {
        reasons.push("has no CREATE privilege on the database".to_string());
    }
    if !not_owned.is_empty() {
        reasons.push(format!("does not own {}", not_owned.join(", ")));
    }
    Ok(CheckLine::fail(
        subject,
        format!(
            "does not exist, and {:?} cannot create it: it {}",
            role.name,
            reasons.join(" and ")
        ),
        format!("as the tables' owner or a superuser: {create}"),
    ))
}

fn setup_source_error(error: SetupError) -> SourceError {
    match error {
        SetupError::Source(source) => source,
        other => SourceError::Protocol(other.to_string()),
    }
}

/// One table: exists, SELECT, key and replica identity, column types. Returns its shape.
async fn check_table(
    config: &Config,
    client: &tokio_postgres::Client,
    role: &Role,
    table: &TableName,
    version_num: u32,
    report: &mut CheckReport,
) -> Result<Option<TableSchema>, SourceError> {
    let subject = format!("table {table}");
    let row = client
        .query_opt(
            "SELECT c.oid, c.relreplident::text, has_table_privilege(c.oid, 'SELECT') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&table.schema, &table.name],
        )
        .await?;
    let Some(row) = row else {
        report.push(CheckLine::fail(
            &subject,
            "does not exist (or is not a table)",
            "create it, or remove it from source.tables",
        ));
        return Ok(None);
    };
    let relation_oid: u32 = row.get(0);
    let replica_identity = match row.get::<_, String>(1).as_str() {
        "n" => ReplicaIdentity::Nothing,
        "f" => ReplicaIdentity::Full,
        "i" => ReplicaIdentity::Index,
        _ => ReplicaIdentity::Default,
    };
    if !row.get::<_, bool>(2) {
        report.push(CheckLine::fail(
            format!("SELECT on {table}"),
            format!(
                "{:?} may not read {table}: the initial snapshot cannot copy it",
                role.name
            ),
            format!(
                "GRANT SELECT ON {} TO {};",
                quote_table(table),
                quote_ident(&role.name)
            ),
        ));
    }
    let columns = read_columns(client, relation_oid, version_num).await?;
    let shape = TableSchema {
        relation_oid,
        name: table.clone(),
        replica_identity,
        columns: columns
            .iter()
            .map(|column| ColumnSchema {
                name: column.name.clone(),
                type_oid: column.type_oid,
                type_modifier: column.type_modifier,
                is_key: match replica_identity {
                    ReplicaIdentity::Default => column.in_primary_key,
                    ReplicaIdentity::Index => column.in_identity_index,
                    ReplicaIdentity::Full => true,
                    ReplicaIdentity::Nothing => false,
                },
            })
            .collect(),
        version: 0,
    };
    report.push(key_line(table, replica_identity, &columns));
    let options = config
        .sink
        .starrocks
        .as_ref()
        .map(|starrocks| starrocks.type_map_options())
        .unwrap_or_default();
    type_lines(table, &columns, &options, report);
    Ok(Some(shape))
}

/// A column as the catalog describes it.
struct CatalogColumn {
    name: String,
    type_oid: u32,
    type_modifier: i32,
    type_text: String,
    dimensions: i32,
    in_primary_key: bool,
    in_identity_index: bool,
}

/// The published columns (pgoutput leaves out generated columns).
async fn read_columns(
    client: &tokio_postgres::Client,
    relation_oid: u32,
    version_num: u32,
) -> Result<Vec<CatalogColumn>, SourceError> {
    let not_generated = if version_num >= 120_000 {
        "AND a.attgenerated = ''"
    } else {
        ""
    };
    let sql = format!(
        "SELECT a.attname::text, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), \
                a.attndims::int4, \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                        AND i.indisprimary AND a.attnum = ANY (i.indkey)), \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                        AND i.indisreplident AND a.attnum = ANY (i.indkey)) \
         FROM pg_attribute a \
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped {not_generated} \
         ORDER BY a.attnum"
    );
    let rows = client.query(&sql, &[&relation_oid]).await?;
    Ok(rows
        .iter()
        .map(|row| CatalogColumn {
            name: row.get(0),
            type_oid: row.get(1),
            type_modifier: row.get(2),
            type_text: row.get(3),
            dimensions: row.get(4),
            in_primary_key: row.get(5),
            in_identity_index: row.get(6),
        })
        .collect())
}

/// The key StarRocks will use, from the replica identity (as pgoutput flags key columns).
fn key_line(table: &TableName, identity: ReplicaIdentity, columns: &[CatalogColumn]) -> CheckLine {
    let subject = format!("key of {table}");
    let names = |pick: fn(&CatalogColumn) -> bool| {
        columns
            .iter()
            .filter(|column| pick(column))
            .map(|column| column.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let primary_key = names(|column| column.in_primary_key);
    let identity_index = names(|column| column.in_identity_index);
    let add_key = format!(
        "ALTER TABLE {} ADD PRIMARY KEY (...); (or REPLICA IDENTITY USING INDEX on a unique NOT NULL index)",
        quote_table(table)
    );
    if primary_key.is_empty() && identity_index.is_empty() {
        let why = if identity == ReplicaIdentity::Full {
            "no primary key (REPLICA IDENTITY FULL is not enough: a StarRocks Primary Key table needs a key)"
        } else {
            "no primary key: StarRocks Primary Key tables need one, and PostgreSQL cannot publish \
             its UPDATEs and DELETEs"
        };
        return CheckLine::fail(subject, why, add_key);
    }
    match identity {
        ReplicaIdentity::Default if primary_key.is_empty() => CheckLine::fail(
            subject,
            "REPLICA IDENTITY DEFAULT but no primary key",
            add_key,
        ),
        ReplicaIdentity::Default => CheckLine::ok(subject, format!("primary key ({primary_key})")),
        ReplicaIdentity::Index => CheckLine::ok(
            subject,
            format!("({identity_index}) from REPLICA IDENTITY USING INDEX"),
        ),
        ReplicaIdentity::Nothing => CheckLine::fail(
            subject,
            "REPLICA IDENTITY NOTHING: PostgreSQL refuses UPDATE and DELETE on a published table \
             without a replica identity",
            format!(
                "ALTER TABLE {} REPLICA IDENTITY DEFAULT;",
                quote_table(table)
            ),
        ),
        ReplicaIdentity::Full => CheckLine::warn(
            subject,
            format!(
                "REPLICA IDENTITY FULL: pgoutput flags all {} columns as key, so the StarRocks \
                 table would be keyed on all of them instead of ({primary_key})",
                columns.len()
            ),
            format!(
                "ALTER TABLE {} REPLICA IDENTITY DEFAULT; (dbmazz never needs FULL)",
                quote_table(table)
            ),
        ),
    }
}

/// One ok line per table, plus a line per column that is unsupported or lossy.
fn type_lines(
    table: &TableName,
    columns: &[CatalogColumn],
    options: &TypeMapOptions,
    report: &mut CheckReport,
) {
    let mut trouble = false;
    for column in columns {
        let subject = format!("column {table}.{}", column.name);
        match map_pg_type(column.type_oid, column.type_modifier, options) {
            Err(error) => {
                trouble = true;
                report.push(CheckLine::fail(
                    subject,
                    format!(
                        "type {} cannot be replicated: {}",
                        column.type_text, error.reason
                    ),
                    "set sink.starrocks.unknown_types = \"text\" to store its text form, change \
                     the column's type, or leave the table out of the publication",
                ));
            }
            Ok(mapping) => {
                if let Some(loss) = lossy_note(column, options) {
                    trouble = true;
                    report.push(CheckLine::warn(
                        subject,
                        format!(
                            "{} → {}: {loss}; lossy_policy = {}",
                            column.type_text,
                            mapping.starrocks_type.to_sql(),
                            policy_effect(options.lossy_policy)
                        ),
                        lossy_fix(column),
                    ));
                }
            }
        }
    }
    if !trouble {
        report.push(CheckLine::ok(
            format!("columns of {table}"),
            format!("all {} map to StarRocks types exactly", columns.len()),
        ));
    }
}

/// Why some values of this column may not reach StarRocks exactly, if they may not.
fn lossy_note(column: &CatalogColumn, options: &TypeMapOptions) -> Option<String> {
    let is_numeric = column.type_oid == oid::NUMERIC || column.type_oid == 1231;
    if is_numeric && options.wide_numeric == WideNumeric::Decimal {
        let fits = numeric_precision_scale(column.type_modifier).is_some_and(|(p, s)| {
            let digits = (p - s).max(0) + s.max(0);
            (1..=38).contains(&digits)
        });
        if !fits {
            return Some(
                "numeric without a precision that fits DECIMAL(38): values with more than 29 \
                 integer digits or more than 9 decimals, NaN and ±Infinity are lossy"
                    .to_string(),
            );
        }
    }
    if column.dimensions > 1 {
        return Some(format!(
            "a {}-dimensional array becomes a one-dimensional StarRocks ARRAY",
            column.dimensions
        ));
    }
    None
}

fn lossy_fix(column: &CatalogColumn) -> &'static str {
    if column.dimensions > 1 {
        "store it as a one-dimensional array or as json in PostgreSQL"
    } else {
        "declare numeric(p,s) with p <= 38, or set sink.starrocks.wide_numeric = \"string\" \
         (exact text in VARCHAR)"
    }
}

fn policy_effect(policy: LossyPolicy) -> &'static str {
    match policy {
        LossyPolicy::Null => "\"null\" (such values are stored as NULL, counted and logged)",
        LossyPolicy::Error => "\"error\" (dbmazz stops at the first such value)",
        LossyPolicy::Truncate => "\"truncate\" (non-string values are stored as NULL and counted)",
    }
}

/// The slot's row, with how much WAL it holds back.
struct SlotRow {
    plugin: Option<String>,
    slot_type: String,
    database: Option<String>,
    active_pid: Option<i32>,
    wal_status: Option<String>,
    invalidation_reason: Option<String>,
    confirmed_flush: Option<String>,
    retained_bytes: Option<i64>,
}

impl SlotRow {
    async fn read(
        client: &tokio_postgres::Client,
        slot: &str,
        version_num: u32,
    ) -> Result<Option<Self>, SourceError> {
        let wal_status = if version_num >= 130_000 {
            "wal_status::text"
        } else {
            "NULL::text"
        };
        let invalidation_reason = if version_num >= 170_000 {
            "invalidation_reason::text"
        } else {
            "NULL::text"
        };
        let sql = format!(
            "SELECT plugin::text, slot_type::text, database::text, \
                    CASE WHEN active THEN active_pid END, {wal_status}, {invalidation_reason}, \
                    confirmed_flush_lsn::text, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 \
             FROM pg_replication_slots WHERE slot_name = $1"
        );
        let row = client.query_opt(&sql, &[&slot]).await?;
        Ok(row.map(|row| SlotRow {
            plugin: row.get(0),
            slot_type: row.get(1),
            database: row.get(2),
            active_pid: row.get(3),
            wal_status: row.get(4),
            invalidation_reason: row.get(5),
            confirmed_flush: row.get(6),
            retained_bytes: row.get(7),
        }))
    }
}

fn slot_line(config: &Config, slot: Option<&SlotRow>, settings: &Settings) -> CheckLine {
    let name = &config.source.slot;
    let subject = format!("replication slot {name}");
    let Some(slot) = slot else {
        return CheckLine::ok(
            subject,
            "does not exist yet: dbmazz creates it at the first start",
        );
    };
    let database = config
        .source_connect()
        .map(|connect| connect.dbname)
        .unwrap_or_default();
    let drop = format!("SELECT pg_drop_replication_slot('{name}');");
    if slot.slot_type != "logical" || slot.plugin.as_deref() != Some("pgoutput") {
        return CheckLine::fail(
            subject,
            format!(
                "is a {} slot with plugin {:?}, not a pgoutput logical slot",
                slot.slot_type,
                slot.plugin.as_deref().unwrap_or("")
            ),
            format!("choose another source.slot, or drop it if nothing uses it: {drop}"),
        );
    }
    if slot.database.as_deref() != Some(database.as_str()) {
        return CheckLine::fail(
            subject,
            format!(
                "belongs to database {:?}, not {database:?}",
                slot.database.as_deref().unwrap_or("")
            ),
            "choose another source.slot (a slot serves one database)",
        );
    }
    if slot.wal_status.as_deref() == Some("lost") || slot.invalidation_reason.is_some() {
        return CheckLine::fail(
            subject,
            format!(
                "was invalidated by PostgreSQL ({}): the changes it held are lost",
                slot.invalidation_reason
                    .as_deref()
                    .unwrap_or("wal_status = lost")
            ),
            "re-snapshot: `dbmazz cleanup --state` (drops slot, publication and state.json), then \
             start dbmazz again (docs/operations.md, \"Recovering from a lost slot\")",
        );
    }
    if let Some(pid) = slot.active_pid {
        return CheckLine::fail(
            subject,
            format!("is in use by another process (PID {pid})"),
            "one process per slot: stop the other dbmazz (SELECT application_name, client_addr \
             FROM pg_stat_replication WHERE pid = ...; shows who it is), or choose another source.slot",
        );
    }
    let retained = slot.retained_bytes.unwrap_or(0).max(0);
    let position = format!(
        "confirmed up to {}, holds {} of WAL",
        slot.confirmed_flush.as_deref().unwrap_or("?"),
        human_bytes(retained)
    );
    if let Some(limit_mb) = settings.max_slot_wal_keep_mb {
        let limit = limit_mb.saturating_mul(1024 * 1024);
        if limit > 0 && retained as f64 > limit as f64 * RETAINED_WAL_WARN_RATIO {
            return CheckLine::warn(
                subject,
                format!(
                    "{position}, over {:.0}% of max_slot_wal_keep_size = {}: PostgreSQL \
                     invalidates the slot at the limit",
                    RETAINED_WAL_WARN_RATIO * 100.0,
                    human_bytes(limit)
                ),
                "start dbmazz so it catches up, or raise max_slot_wal_keep_size",
            );
        }
    }
    if slot.wal_status.as_deref() == Some("unreserved") {
        return CheckLine::warn(
            subject,
            format!("{position}; wal_status = unreserved: it is about to be invalidated"),
            "start dbmazz now so it catches up, or raise max_slot_wal_keep_size",
        );
    }
    CheckLine::ok(subject, format!("exists, inactive, {position}"))
}

/// The local state file against the slot: a state without its slot means lost changes.
fn state_line(config: &Config, database: &str, slot_exists: bool) -> Option<CheckLine> {
    let path = StateFile::path(&config.state_dir);
    let subject = format!("state file {}", path.display());
    let state = match StateFile::load(&config.state_dir) {
        Ok(Some(state)) => state,
        Ok(None) => return None,
        Err(error) => {
            return Some(CheckLine::fail(
                subject,
                error.to_string(),
                "fix or move the file aside (dbmazz then starts from the slot)",
            ))
        }
    };
    if state.slot != config.source.slot || state.database != database {
        return Some(CheckLine::fail(
            subject,
            format!(
                "belongs to slot {:?} on database {:?}, but the config says slot {:?} on {database:?}",
                state.slot, state.database, config.source.slot
            ),
            "point state_dir at this pipeline's own directory",
        ));
    }
    if !slot_exists {
        return Some(CheckLine::fail(
            subject,
            format!(
                "says this pipeline streamed from slot {:?} up to {}, but the slot is gone: the \
                 changes since are lost",
                state.slot, state.last_durable_lsn
            ),
            format!(
                "re-snapshot: move {} aside (or `dbmazz cleanup --state`) and start dbmazz again",
                path.display()
            ),
        ));
    }
    Some(CheckLine::ok(
        subject,
        format!(
            "matches the slot (durable up to {})",
            state.last_durable_lsn
        ),
    ))
}

/// `1.5 GiB`-style sizes for messages.
fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }

    fn config() -> Config {
        Config::from_toml(
            "[source]\nurl = \"postgres://u@h/shop\"\nslot = \"s\"\n[sink]\ntype = \"noop\"\n",
        )
        .unwrap()
    }

    fn slot(retained_mib: i64) -> SlotRow {
        SlotRow {
            plugin: Some("pgoutput".into()),
            slot_type: "logical".into(),
            database: Some("shop".into()),
            active_pid: None,
            wal_status: Some("reserved".into()),
            invalidation_reason: None,
            confirmed_flush: Some("0/1000".into()),
            retained_bytes: Some(retained_mib * 1024 * 1024),
        }
    }

    fn settings(keep_mb: Option<i64>) -> Settings {
        Settings {
            wal_level: "logical".into(),
            max_replication_slots: 10,
            max_wal_senders: 10,
            max_slot_wal_keep_mb: keep_mb,
        }
    }

    #[test]
    fn slot_states_each_get_their_verdict() {
        use super::super::CheckStatus::{Fail, Ok, Warn};
        let config = config();
        let status = |row: Option<&SlotRow>, keep: Option<i64>| {
            slot_line(&config, row, &settings(keep)).status
        };
        assert_eq!(status(None, None), Ok, "a missing slot will be created");
        assert_eq!(status(Some(&slot(100)), Some(1024)), Ok);
        assert_eq!(status(Some(&slot(900)), None), Ok, "no limit set");
        let near_limit = slot_line(&config, Some(&slot(900)), &settings(Some(1024)));
        assert_eq!(near_limit.status, Warn);
        assert!(
            near_limit.message.contains("900.0 MiB"),
            "{}",
            near_limit.message
        );
        let lost = SlotRow {
            wal_status: Some("lost".into()),
            retained_bytes: None,
            ..slot(0)
        };
        let line = slot_line(&config, Some(&lost), &settings(Some(1024)));
        assert_eq!(line.status, Fail);
        assert!(line.fix.unwrap().contains("dbmazz cleanup --state"));
        let active = SlotRow {
            active_pid: Some(4242),
            ..slot(1)
        };
        let line = slot_line(&config, Some(&active), &settings(None));
        assert_eq!(line.status, Fail);
        assert!(line.message.contains("PID 4242"), "{}", line.message);
        let elsewhere = SlotRow {
            database: Some("other".into()),
            ..slot(1)
        };
        assert_eq!(status(Some(&elsewhere), None), Fail);
        let unreserved = SlotRow {
            wal_status: Some("unreserved".into()),
            ..slot(1)
        };
        assert_eq!(status(Some(&unreserved), None), Warn);
    }

    #[test]
    fn old_servers_fail_and_new_ones_name_their_protocol() {
        assert_eq!(
            version_line("9.6", 90_624).status,
            super::super::CheckStatus::Fail
        );
        let line = version_line("15.8", 150_008);
        assert!(line.message.contains("protocol v2"), "{}", line.message);
        let line = version_line("18.1", 180_001);
        assert!(line.message.contains("protocol v4"), "{}", line.message);
    }
}
