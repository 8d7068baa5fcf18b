//! DDL and metadata over StarRocks's MySQL protocol (FE port 9030), with `mysql_async`.
//!
//! StarRocks specifics that shape this module (docs/starrocks-spec.md §6):
//! * A Primary Key table lists its key columns first, NOT NULL, and needs a `DISTRIBUTED BY
//!   HASH` clause.
//! * `ALTER TABLE … ADD/DROP/MODIFY COLUMN` only *starts* an asynchronous schema-change job;
//!   rows of the new shape may be loaded only once `SHOW ALTER TABLE COLUMN` says `FINISHED`
//!   (`CANCELLED` carries the reason in `Msg`). One job per table at a time.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, Pool, Row};

/// A column as StarRocks should have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    /// StarRocks type SQL, e.g. `BIGINT`, `VARCHAR(400)`, `DECIMAL(12,2)`.
    pub sql_type: String,
    pub nullable: bool,
}

/// One row of `DESC table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedColumn {
    pub name: String,
    pub sql_type: String,
    pub nullable: bool,
    pub is_key: bool,
    pub default: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DdlError {
    #[error("cannot reach StarRocks at {address} (MySQL protocol): {}; check sink.starrocks.mysql and that the FE is up", innermost(.source))]
    Connect {
        address: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("StarRocks refused the login for user {user:?}: {message}; check sink.starrocks.user/password")]
    Auth { user: String, message: String },
    #[error(
        "StarRocks at {address} (MySQL protocol) did not answer {what} within {waited:?}: check \
         that the FE is up and not overloaded (sink.starrocks.mysql)"
    )]
    Timeout {
        address: String,
        what: String,
        waited: Duration,
    },
    #[error("StarRocks error on `{statement}`: {message}")]
    Statement { statement: String, message: String },
    #[error("StarRocks ALTER on {table} was cancelled: {message}")]
    AlterCancelled { table: String, message: String },
    #[error("StarRocks ALTER on {table} did not finish within {waited:?} (last state {state})")]
    AlterTimeout {
        table: String,
        waited: Duration,
        state: String,
    },
}

impl DdlError {
    /// The problem without the `check …` hint, for callers that print their own fix line
    /// (`dbmazz check`).
    pub fn problem(&self) -> String {
        match self {
            DdlError::Connect { address, source } => format!(
                "cannot reach StarRocks at {address} (MySQL protocol): {}",
                innermost(source)
            ),
            DdlError::Auth { user, message } => {
                format!("StarRocks refused the login for user {user:?}: {message}")
            }
            DdlError::Timeout {
                address,
                what,
                waited,
            } => format!(
                "StarRocks at {address} (MySQL protocol) did not answer {what} within {waited:?}"
            ),
            other => other.to_string(),
        }
    }
}

/// The innermost cause: mysql_async wraps an I/O error twice ("Input/output error: Input/output
/// error: Connection refused"), which reads like noise in a one-line error.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// How long a login to the FE may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one statement may take (DDL included: CREATE TABLE, TRUNCATE, an ALTER's start).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);

/// A pool of MySQL-protocol connections to one StarRocks FE, scoped to one database.
#[derive(Debug, Clone)]
pub struct StarRocksDdl {
    pool: Pool,
    address: String,
    user: String,
    database: String,
}

/// Quotes a StarRocks identifier with backticks.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl StarRocksDdl {
    /// Connects (and checks the credentials with a first query).
    pub async fn connect(
        address: &str,
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<Self, DdlError> {
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
            .unwrap_or_else(|| (address.to_string(), 9030));
        let options = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false);
        let ddl = StarRocksDdl {
            pool: Pool::new(Opts::from(options)),
            address: address.to_string(),
            user: user.to_string(),
            database: database.to_string(),
        };
        ddl.version().await?;
        Ok(ddl)
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// `work`, or a timeout error naming `what` after `limit`: an FE that accepts connections
    /// but never answers must not hang a start (or `dbmazz check`) forever.
    async fn within<T>(
        &self,
        limit: Duration,
        what: impl FnOnce() -> String,
        work: impl std::future::Future<Output = Result<T, DdlError>>,
    ) -> Result<T, DdlError> {
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(DdlError::Timeout {
                address: self.address.clone(),
                what: what(),
                waited: limit,
            })
        })
    }

    async fn connection(&self) -> Result<mysql_async::Conn, DdlError> {
        self.within(
            CONNECT_TIMEOUT,
            || "the login".to_string(),
            self.connect_once(),
        )
        .await
    }

    async fn connect_once(&self) -> Result<mysql_async::Conn, DdlError> {
        self.pool.get_conn().await.map_err(|source| match &source {
            mysql_async::Error::Server(server)
                if server.state == "28000" || matches!(server.code, 1045 | 1698) =>
            {
                DdlError::Auth {
                    user: self.user.clone(),
                    message: server.message.clone(),
                }
            }
            _ => DdlError::Connect {
                address: self.address.clone(),
                source,
            },
        })
    }

    async fn query(&self, statement: &str) -> Result<Vec<Row>, DdlError> {
        let mut connection = self.connection().await?;
        let work = async {
            connection
                .query(statement)
                .await
                .map_err(|error| statement_error(statement, error))
        };
        self.within(STATEMENT_TIMEOUT, || format!("`{statement}`"), work)
            .await
    }

    async fn execute(&self, statement: &str) -> Result<(), DdlError> {
        let mut connection = self.connection().await?;
        let work = async {
            connection
                .query_drop(statement)
                .await
                .map_err(|error| statement_error(statement, error))
        };
        self.within(STATEMENT_TIMEOUT, || format!("`{statement}`"), work)
            .await
    }

    /// `select current_version()`.
    pub async fn version(&self) -> Result<String, DdlError> {
        let rows = self.query("select current_version()").await?;
        Ok(rows
            .first()
            .and_then(|row| row.get_opt::<String, _>(0).and_then(Result::ok))
            .unwrap_or_default())
    }

    pub async fn database_exists(&self) -> Result<bool, DdlError> {
        let rows = self.query("SHOW DATABASES").await?;
        Ok(rows.iter().any(|row| {
            row.get_opt::<String, _>(0)
                .and_then(Result::ok)
                .is_some_and(|name| name == self.database)
        }))
    }

    pub async fn create_database(&self) -> Result<(), DdlError> {
        self.execute(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote(&self.database)
        ))
        .await
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.database), quote(table))
    }

    /// `DESC table`; `None` when the table does not exist.
    pub async fn describe(&self, table: &str) -> Result<Option<Vec<DescribedColumn>>, DdlError> {
        let statement = format!("DESC {}", self.qualified(table));
        let mut connection = self.connection().await?;
        let answer = tokio::time::timeout(STATEMENT_TIMEOUT, connection.query(&statement)).await;
        let Ok(answer) = answer else {
            return Err(DdlError::Timeout {
                address: self.address.clone(),
                what: format!("`{statement}`"),
                waited: STATEMENT_TIMEOUT,
            });
        };
        let rows: Vec<Row> = match answer {
            Ok(rows) => rows,
            Err(mysql_async::Error::Server(server))
                if server.message.contains("Unknown table")
                    || server.message.contains("Unknown database")
                    || server.message.contains("does not exist")
                    || server.message.contains("not exist") =>
            {
                return Ok(None)
            }
            Err(error) => return Err(statement_error(&statement, error)),
        };
        let text = |row: &Row, index: usize| -> String {
            row.get_opt::<String, _>(index)
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        Ok(Some(
            rows.iter()
                .map(|row| DescribedColumn {
                    name: text(row, 0),
                    sql_type: text(row, 1),
                    nullable: text(row, 2).eq_ignore_ascii_case("yes"),
                    is_key: text(row, 3).eq_ignore_ascii_case("true"),
                    default: row.get_opt::<String, _>(4).and_then(Result::ok),
                })
                .collect(),
        ))
    }

    /// Creates a Primary Key table: `keys` first (NOT NULL), then the other columns.
    pub async fn create_table(
        &self,
        table: &str,
        keys: &[ColumnDef],
        values: &[ColumnDef],
        properties: &[(String, String)],
    ) -> Result<(), DdlError> {
        self.execute(&create_table_sql(
            &self.qualified(table),
            keys,
            values,
            properties,
        ))
        .await
    }

    /// `SELECT columns FROM table WHERE <conditions>`: the first row's values as text.
    /// `conditions` are `(column, SQL literal)` pairs, joined with AND.
    pub async fn select_row(
        &self,
        table: &str,
        columns: &[&str],
        conditions: &[(&str, String)],
    ) -> Result<Option<Vec<Option<String>>>, DdlError> {
        let list = columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let filter = conditions
            .iter()
            .map(|(column, literal)| format!("{} = {literal}", quote(column)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let statement = format!(
            "SELECT {list} FROM {} WHERE {filter} LIMIT 1",
            self.qualified(table)
        );
        let rows = self.query(&statement).await?;
        Ok(rows.first().map(|row| {
            (0..columns.len())
                .map(|index| {
                    row.get_opt::<Option<String>, _>(index)
                        .and_then(Result::ok)
                        .flatten()
                })
                .collect()
        }))
    }

    /// Any query, every value as text (`None` = NULL): for comparisons and the monitor.
    pub async fn query_text(&self, statement: &str) -> Result<Vec<Vec<Option<String>>>, DdlError> {
        let rows = self.query(statement).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.unwrap_raw()
                    .into_iter()
                    .map(|value| match value {
                        None | Some(mysql_async::Value::NULL) => None,
                        Some(mysql_async::Value::Bytes(bytes)) => {
                            Some(String::from_utf8_lossy(&bytes).into_owned())
                        }
                        Some(other) => Some(other.as_sql(true).trim_matches('\'').to_string()),
                    })
                    .collect()
            })
            .collect())
    }

    /// Whether `table` has at least one row (an error if it does not exist).
    pub async fn has_rows(&self, table: &str) -> Result<bool, DdlError> {
        let statement = format!("SELECT 1 FROM {} LIMIT 1", self.qualified(table));
        Ok(!self.query(&statement).await?.is_empty())
    }

    pub async fn truncate(&self, table: &str) -> Result<(), DdlError> {
        self.execute(&format!("TRUNCATE TABLE {}", self.qualified(table)))
            .await
    }

    /// Runs an `ALTER TABLE … ADD/DROP/MODIFY COLUMN …` and waits for its job to finish.
    pub async fn alter_and_wait(
        &self,
        table: &str,
        clause: &str,
        timeout: Duration,
    ) -> Result<(), DdlError> {
        let previous = self.settled_alter_job(table, timeout).await?;
        self.execute(&format!("ALTER TABLE {} {clause}", self.qualified(table)))
            .await?;
        let started = Instant::now();
        let mut state = String::from("PENDING");
        while started.elapsed() < timeout {
            if let Some((job, job_state, message)) = self.latest_alter_job(table).await? {
                if Some(job) != previous {
                    match job_state.as_str() {
                        "FINISHED" => return Ok(()),
                        "CANCELLED" => {
                            return Err(DdlError::AlterCancelled {
                                table: table.to_string(),
                                message,
                            })
                        }
                        _ => state = job_state,
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(DdlError::AlterTimeout {
            table: table.to_string(),
            waited: timeout,
            state,
        })
    }

    /// `RENAME COLUMN from TO to`, waited for until `DESC` shows the new name (StarRocks
    /// renames in its metadata at once; waiting also covers a slower FE).
    pub async fn rename_column(
        &self,
        table: &str,
        from: &str,
        to: &str,
        timeout: Duration,
    ) -> Result<(), DdlError> {
        self.settled_alter_job(table, timeout).await?;
        self.execute(&format!(
            "ALTER TABLE {} RENAME COLUMN {} TO {}",
            self.qualified(table),
            quote(from),
            quote(to)
        ))
        .await?;
        let started = Instant::now();
        loop {
            let described = self.describe(table).await?.unwrap_or_default();
            if described.iter().any(|c| c.name.eq_ignore_ascii_case(to)) {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(DdlError::AlterTimeout {
                    table: table.to_string(),
                    waited: timeout,
                    state: format!("column {from} not yet shown as {to}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to `timeout`) for a schema-change job of `table` still running — one an
    /// earlier run started and did not see to its end — since StarRocks refuses another ALTER
    /// meanwhile ("A schema change operation is in progress"). Returns the newest job's id.
    pub async fn settled_alter_job(
        &self,
        table: &str,
        timeout: Duration,
    ) -> Result<Option<i64>, DdlError> {
        let started = Instant::now();
        let mut told = false;
        loop {
            let Some((job, state, _)) = self.latest_alter_job(table).await? else {
                return Ok(None);
            };
            if matches!(state.as_str(), "FINISHED" | "CANCELLED") {
                return Ok(Some(job));
            }
            if started.elapsed() >= timeout {
                return Err(DdlError::AlterTimeout {
                    table: table.to_string(),
                    waited: timeout,
                    state: format!("an earlier schema change (job {job}) still {state}"),
                });
            }
            if !told {
                tracing::info!(table, job, state = %state, "waiting for an earlier schema change of the table to finish");
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (JobId, State, Msg) of the newest schema-change job of `table`: the highest JobId.
    /// Not `ORDER BY CreateTime`: it has one-second resolution, so two ALTERs in the same
    /// second tie and the older job could be read as the newest (the wait then never sees
    /// its own job).
    async fn latest_alter_job(
        &self,
        table: &str,
    ) -> Result<Option<(i64, String, String)>, DdlError> {
        let statement = format!(
            "SHOW ALTER TABLE COLUMN FROM {} WHERE TableName = '{}'",
            quote(&self.database),
            table.replace('\'', "''")
        );
        let rows = self.query(&statement).await?;
        let text = |row: &Row, column: &str| {
            row.get_opt::<String, _>(column)
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        Ok(rows
            .iter()
            .map(|row| {
                let job = row
                    .get_opt::<i64, _>("JobId")
                    .and_then(Result::ok)
                    .unwrap_or_default();
                (job, text(row, "State"), text(row, "Msg"))
            })
            .max_by_key(|(job, _, _)| *job))
    }
}

/// The CREATE TABLE statement for a Primary Key table.
pub fn create_table_sql(
    qualified_table: &str,
    keys: &[ColumnDef],
    values: &[ColumnDef],
    properties: &[(String, String)],
) -> String {
    let column = |column: &ColumnDef, force_not_null: bool| {
        let null = if column.nullable && !force_not_null {
            "NULL"
        } else {
            "NOT NULL"
        };
        format!("  {} {} {null}", quote(&column.name), column.sql_type)
    };
    let columns: Vec<String> = keys
        .iter()
        .map(|key| column(key, true))
        .chain(values.iter().map(|value| column(value, false)))
        .collect();
    let key_list = keys
        .iter()
        .map(|key| quote(&key.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {qualified_table} (\n{}\n) PRIMARY KEY ({key_list})\nDISTRIBUTED BY HASH ({key_list})",
        columns.join(",\n")
    );
    if !properties.is_empty() {
        let list = properties
            .iter()
            .map(|(name, value)| format!("\"{name}\" = \"{value}\""))
            .collect::<Vec<_>>()
            .join(", ");
        sql.push_str(&format!("\nPROPERTIES ({list})"));
    }
    sql
}

fn statement_error(statement: &str, error: mysql_async::Error) -> DdlError {
    let message = match &error {
        mysql_async::Error::Server(server) => format!("{} (code {})", server.message, server.code),
        other => other.to_string(),
    };
    DdlError::Statement {
        statement: statement.chars().take(200).collect(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_leaves_the_hint_to_the_caller() {
        let error = DdlError::Auth {
            user: "root".into(),
            message: "Access denied".into(),
        };
        assert!(error
            .to_string()
            .contains("check sink.starrocks.user/password"));
        assert_eq!(
            error.problem(),
            "StarRocks refused the login for user \"root\": Access denied"
        );
    }

    #[test]
    fn primary_key_columns_come_first_and_not_null() {
        let key = ColumnDef {
            name: "id".into(),
            sql_type: "BIGINT".into(),
            nullable: true,
        };
        let value = ColumnDef {
            name: "na`me".into(),
            sql_type: "VARCHAR(40)".into(),
            nullable: true,
        };
        let sql = create_table_sql(
            "`d`.`t`",
            &[key],
            &[value],
            &[("replication_num".into(), "1".into())],
        );
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `d`.`t` (\n  `id` BIGINT NOT NULL,\n  `na``me` VARCHAR(40) NULL\n) \
             PRIMARY KEY (`id`)\nDISTRIBUTED BY HASH (`id`)\nPROPERTIES (\"replication_num\" = \"1\")"
        );
    }
}
