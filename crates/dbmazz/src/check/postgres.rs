//! The PostgreSQL half of `dbmazz check`: connection and auth, server version, `wal_level`,
//! slot and walsender capacity, the role's privileges; then the publication
//! ([`publication`]), each table ([`tables`]), the replication slot and the state file
//! ([`slot`]).
//!
//! Read-only: nothing is created or altered here (the publication and slot that `dbmazz run`
//! would create are reported as such).

use crate::config::Config;
use crate::schema::TableSchema;
use crate::source::{
    connect_sql, quote_ident, AuthMethod, PgConnectConfig, PgOutputProtocol, ReplicationClient,
    SourceError,
};

use super::{publication, slot, tables, CheckLine, CheckReport};

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
        _ => error.fix().unwrap_or("see the message"),
    };
    CheckLine::fail(subject, crate::one_line(error), fix)
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
    let slot = slot::SlotRow::read(client, &config.source.slot, version_num).await?;
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

    let tables = publication::check_publication(config, client, &role, report).await?;
    // The type map the sink will use, with the source's domains (read once for all tables).
    let mut type_options = config
        .sink
        .starrocks
        .as_ref()
        .map(|starrocks| starrocks.type_map_options())
        .unwrap_or_default();
    type_options.domains = std::sync::Arc::new(crate::source::read_domains(client).await?);
    let mut shapes = Vec::new();
    for table in &tables {
        if let Some(shape) = tables::check_table(
            config,
            client,
            &role,
            table,
            version_num,
            &type_options,
            report,
        )
        .await?
        {
            shapes.push(shape);
        }
    }

    report.push(slot::slot_line(
        config,
        slot.as_ref(),
        settings.max_slot_wal_keep_mb,
    ));
    if let Some(line) = slot::state_line(config, &connect.dbname, slot.is_some()) {
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
pub(super) struct Role {
    pub(super) name: String,
    pub(super) superuser: bool,
    pub(super) replication: bool,
    pub(super) may_create_in_database: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

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
