//! Gathers one [`MonitorSnapshot`]: the pipeline's `/status`, and the row count of every table
//! on both sides. Each source fails on its own (an unreachable StarRocks still leaves the API
//! and PostgreSQL figures on screen), and a broken connection is reopened on the next round.
//!
//! PostgreSQL counts are exact (`count(*)`) up to [`EXACT_COUNT_LIMIT`] rows and the planner's
//! estimate (`pg_class.reltuples`, refreshed by ANALYZE/autovacuum) above it: counting a big
//! table every second would load the very server being replicated. Estimated counts are
//! flagged and shown with a `~`. With many tables, PostgreSQL is counted in turn within a
//! time budget per round, so each count may be a few rounds old. StarRocks counts are always
//! exact (`count(*)` is cheap there).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, OptsBuilder, Pool};

use super::api::{ApiStatus, ApiUrl};
use crate::schema::TableName;
use crate::sink::starrocks::ddl::quote as quote_starrocks;
use crate::sink::starrocks::AUDIT_IS_DELETED;
use crate::source::{connect_sql, published_tables, quote_table, PgConnectConfig};

/// Above this many rows (by the planner's estimate) PostgreSQL counts are estimates.
pub const EXACT_COUNT_LIMIT: f64 = 1_000_000.0;
/// One source's whole round (all tables); past it the source shows a timeout.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL counting time per round; tables not reached keep their previous count.
pub const COUNT_BUDGET: Duration = Duration::from_millis(500);
/// A PostgreSQL `count(*)` taking longer than this falls back to the estimate.
const COUNT_STATEMENT_TIMEOUT: &str = "2s";

/// The StarRocks database to count rows in (the `[sink.starrocks]` connection).
#[derive(Debug, Clone)]
pub struct StarRocksTarget {
    /// FE MySQL-protocol address, `host:9030`.
    pub mysql: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

/// Everything the monitor knows after one round.
#[derive(Debug, Clone)]
pub struct MonitorSnapshot {
    pub taken_at: Instant,
    /// `/status`, or why it could not be read.
    pub status: Result<ApiStatus, String>,
    pub postgres: CountsReading,
    pub starrocks: CountsReading,
}

/// Row counts from one database.
#[derive(Debug, Clone, PartialEq)]
pub enum CountsReading {
    /// No connection settings given for this side.
    NotConfigured,
    /// The whole source failed (connect, auth, timeout).
    Failed(String),
    /// Per table (`schema.table`): its count or why it could not be counted.
    Counts(BTreeMap<String, Result<TableCount, String>>),
}

impl CountsReading {
    pub fn table(&self, table: &str) -> Option<&Result<TableCount, String>> {
        match self {
            CountsReading::Counts(counts) => counts.get(table),
            _ => None,
        }
    }
}

/// One table's row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCount {
    /// Live rows (for StarRocks in soft-delete mode: rows not marked deleted).
    pub rows: u64,
    /// From `pg_class.reltuples`, not `count(*)`.
    pub estimated: bool,
    /// StarRocks rows with `dbmazz_is_deleted = true` (soft-delete mode only).
    pub soft_deleted: Option<u64>,
}

/// Owns the connections and gathers snapshots.
pub struct Gatherer {
    api: ApiUrl,
    counting: Counting,
    /// Table names /status has shown, kept so a restarting pipeline does not empty the list.
    seen_tables: Vec<String>,
}

/// What /status tells the counting about the tables to count.
#[derive(Debug, Clone, Default)]
pub(super) struct TableHints {
    /// The publication, used when no tables are configured.
    pub publication: Option<String>,
    /// Every table /status has named.
    pub seen: Vec<String>,
}

/// Both databases' row counts (they own their connections).
pub(super) struct Counting {
    postgres: Option<PostgresCounter>,
    starrocks: Option<StarRocksCounter>,
    configured_tables: Vec<TableName>,
}

/// One counting round's readings: PostgreSQL's, StarRocks's.
pub(super) type Counts = (CountsReading, CountsReading);

impl Gatherer {
    pub fn new(
        api: ApiUrl,
        postgres: Option<PgConnectConfig>,
        starrocks: Option<StarRocksTarget>,
        tables: Vec<TableName>,
        soft_delete: bool,
    ) -> Self {
        Gatherer {
            api,
            counting: Counting {
                postgres: postgres.map(PostgresCounter::new),
                starrocks: starrocks.map(|target| StarRocksCounter::new(target, soft_delete)),
                configured_tables: tables,
            },
            seen_tables: Vec::new(),
        }
    }

    /// Sets the PostgreSQL counting time per round (default [`COUNT_BUDGET`]; at least one
    /// table is counted per round whatever the budget).
    pub fn with_postgres_count_budget(mut self, budget: Duration) -> Self {
        if let Some(postgres) = self.counting.postgres.as_mut() {
            postgres.budget = budget;
        }
        self
    }

    pub fn api(&self) -> &ApiUrl {
        &self.api
    }

    /// One round: /status first (it names the tables and the publication), then both
    /// databases' counts concurrently.
    pub async fn gather(&mut self) -> MonitorSnapshot {
        let status = self.read_status().await;
        let (postgres, starrocks) = self.counting.round(&self.hints(&status)).await;
        MonitorSnapshot {
            taken_at: Instant::now(),
            status,
            postgres,
            starrocks,
        }
    }

    /// Closes the StarRocks pool (PostgreSQL closes when dropped).
    pub async fn close(self) {
        self.counting.close().await;
    }

    /// `/status`, remembering the tables it names.
    pub(super) async fn read_status(&mut self) -> Result<ApiStatus, String> {
        let status = self.api.status().await.map_err(|error| error.to_string());
        if let Ok(status) = &status {
            for table in &status.tables {
                if !self.seen_tables.contains(&table.table) {
                    self.seen_tables.push(table.table.clone());
                }
            }
        }
        status
    }

    pub(super) fn hints(&self, status: &Result<ApiStatus, String>) -> TableHints {
        TableHints {
            publication: status
                .as_ref()
                .ok()
                .map(|status| status.source.publication.clone())
                .filter(|publication| !publication.is_empty()),
            seen: self.seen_tables.clone(),
        }
    }

    /// The API half and the counting half, to run apart (see `gathering.rs`).
    pub(super) fn split(self) -> (Gatherer, Counting) {
        let Gatherer {
            api,
            counting,
            seen_tables,
        } = self;
        let status_only = Gatherer {
            api,
            counting: Counting {
                postgres: None,
                starrocks: None,
                configured_tables: Vec::new(),
            },
            seen_tables,
        };
        (status_only, counting)
    }
}

impl Counting {
    /// Both databases' counts of the tables `hints` and the config name, concurrently.
    pub(super) async fn round(&mut self, hints: &TableHints) -> Counts {
        if let (Some(postgres), Some(publication), true) = (
            self.postgres.as_mut(),
            hints.publication.as_deref(),
            self.configured_tables.is_empty(),
        ) {
            postgres.learn_publication(publication).await;
        }
        let tables = self.tables(&hints.seen);
        let (postgres_counter, starrocks_counter) = (&mut self.postgres, &self.starrocks);
        let postgres = async {
            match postgres_counter.as_mut() {
                Some(counter) => counter.count_all(&tables).await,
                None => CountsReading::NotConfigured,
            }
        };
        let starrocks = async {
            match starrocks_counter.as_ref() {
                Some(counter) => counter.count_all(&tables).await,
                None => CountsReading::NotConfigured,
            }
        };
        tokio::join!(postgres, starrocks)
    }

    /// The configured tables, else the publication's, plus any /status has named.
    fn tables(&self, seen: &[String]) -> Vec<TableName> {
        let mut tables = if self.configured_tables.is_empty() {
            self.postgres
                .as_ref()
                .and_then(|postgres| postgres.published.clone())
                .unwrap_or_default()
        } else {
            self.configured_tables.clone()
        };
        for name in seen {
            if let Some(table) = TableName::parse(name) {
                if !tables.contains(&table) {
                    tables.push(table);
                }
            }
        }
        tables
    }

    pub(super) async fn close(self) {
        if let Some(starrocks) = self.starrocks {
            let _ = starrocks.pool.disconnect().await;
        }
    }
}

struct PostgresCounter {
    config: PgConnectConfig,
    client: Option<tokio_postgres::Client>,
    /// The publication's tables, when no tables are configured.
    published: Option<Vec<TableName>>,
    /// The last count of each table (`schema.table`).
    latest: BTreeMap<String, Result<TableCount, String>>,
    /// Where the next round starts counting.
    next_table: usize,
    budget: Duration,
}

impl PostgresCounter {
    fn new(config: PgConnectConfig) -> Self {
        PostgresCounter {
            config,
            client: None,
            published: None,
            latest: BTreeMap::new(),
            next_table: 0,
            budget: COUNT_BUDGET,
        }
    }

    async fn connected(&mut self) -> Result<&tokio_postgres::Client, String> {
        if self
            .client
            .as_ref()
            .is_some_and(|client| client.is_closed())
        {
            self.client = None;
        }
        if self.client.is_none() {
            let connect = async {
                let client = connect_sql(&self.config)
                    .await
                    .map_err(|error| error.to_string())?;
                client
                    .batch_execute(&format!(
                        "SET statement_timeout = '{COUNT_STATEMENT_TIMEOUT}'"
                    ))
                    .await
                    .map_err(|error| error.to_string())?;
                Ok::<_, String>(client)
            };
            // A black-holed host would otherwise hold every round for the OS's TCP timeout.
            let client = tokio::time::timeout(SOURCE_TIMEOUT, connect)
                .await
                .map_err(|_| {
                    format!(
                        "cannot connect to PostgreSQL at {}:{} within {SOURCE_TIMEOUT:?}",
                        self.config.host, self.config.port
                    )
                })??;
            self.client = Some(client);
        }
        self.client
            .as_ref()
            .ok_or_else(|| "not connected".to_string())
    }

    /// Reads the publication's tables over the open connection (a closed one is reopened by
    /// the counting round, which reports the error).
    async fn learn_publication(&mut self, publication: &str) {
        let Some(client) = self.client.as_ref().filter(|client| !client.is_closed()) else {
            return;
        };
        if let Ok(tables) = published_tables(client, publication).await {
            self.published = Some(tables);
        }
    }

    /// Counts tables in turn for up to [`COUNT_BUDGET`] per round, starting where the last
    /// round stopped, and answers the latest count of each: with many big tables the counts
    /// lag a few rounds instead of the whole source timing out every round.
    async fn count_all(&mut self, tables: &[TableName]) -> CountsReading {
        if let Err(error) = self.connected().await {
            self.client = None;
            return CountsReading::Failed(error);
        }
        let PostgresCounter {
            client: Some(client),
            latest,
            next_table,
            budget,
            ..
        } = self
        else {
            return CountsReading::Failed("not connected".into());
        };
        let started = Instant::now();
        let mut counted = 0;
        let round = async {
            while counted < tables.len() {
                let table = &tables[(*next_table + counted) % tables.len()];
                latest.insert(table.to_string(), count_postgres(client, table).await);
                counted += 1;
                if started.elapsed() >= *budget {
                    break;
                }
            }
        };
        if tokio::time::timeout(SOURCE_TIMEOUT, round).await.is_err() {
            // The connection may be stuck mid-query: start afresh next round.
            self.client = None;
            return CountsReading::Failed(format!(
                "PostgreSQL counts took over {SOURCE_TIMEOUT:?}"
            ));
        }
        *next_table = (*next_table + counted) % tables.len().max(1);
        CountsReading::Counts(
            tables
                .iter()
                .filter_map(|table| {
                    let name = table.to_string();
                    let count = latest.get(&name)?.clone();
                    Some((name, count))
                })
                .collect(),
        )
    }
}

/// Exact for small tables, the planner's estimate for big ones (or when counting times out).
async fn count_postgres(
    client: &tokio_postgres::Client,
    table: &TableName,
) -> Result<TableCount, String> {
    let estimate = client
        .query_opt(
            "SELECT c.reltuples::float8 FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(|error| pg_error_text(&error))?
        .map(|row| row.get::<_, f64>(0))
        .ok_or_else(|| "no such table".to_string())?;
    let estimated = |rows: f64| TableCount {
        rows: rows.max(0.0) as u64,
        estimated: true,
        soft_deleted: None,
    };
    if estimate >= EXACT_COUNT_LIMIT {
        return Ok(estimated(estimate));
    }
    let statement = format!("SELECT count(*) FROM {}", quote_table(table));
    match client.query_one(&statement, &[]).await {
        Ok(row) => Ok(TableCount {
            rows: row.get::<_, i64>(0).max(0) as u64,
            estimated: false,
            soft_deleted: None,
        }),
        // statement_timeout (57014) on a table bigger than its stale estimate.
        Err(error) if estimate > 0.0 && is_query_canceled(&error) => Ok(estimated(estimate)),
        Err(error) => Err(pg_error_text(&error)),
    }
}

fn is_query_canceled(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
}

fn pg_error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db_error) => db_error.message().to_string(),
        None => error.to_string(),
    }
}

struct StarRocksCounter {
    pool: Pool,
    target: StarRocksTarget,
    soft_delete: bool,
}

impl StarRocksCounter {
    fn new(target: StarRocksTarget, soft_delete: bool) -> Self {
        let (host, port) = target
            .mysql
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
            .unwrap_or_else(|| (target.mysql.clone(), 9030));
        let options = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(target.user.clone()))
            .pass(Some(target.password.clone()))
            .prefer_socket(false);
        StarRocksCounter {
            pool: Pool::new(Opts::from(options)),
            target,
            soft_delete,
        }
    }

    async fn count_all(&self, tables: &[TableName]) -> CountsReading {
        let round = async {
            let mut connection = self.pool.get_conn().await.map_err(|error| {
                format!(
                    "cannot reach StarRocks at {} as {}: {error}",
                    self.target.mysql, self.target.user
                )
            })?;
            let mut counts = BTreeMap::new();
            for table in tables {
                let count = self.count(&mut connection, &table.name).await;
                counts.insert(table.to_string(), count);
            }
            Ok::<_, String>(counts)
        };
        match tokio::time::timeout(SOURCE_TIMEOUT, round).await {
            Ok(Ok(counts)) => CountsReading::Counts(counts),
            Ok(Err(error)) => CountsReading::Failed(error),
            Err(_) => {
                CountsReading::Failed(format!("StarRocks counts took over {SOURCE_TIMEOUT:?}"))
            }
        }
    }

    /// dbmazz names the StarRocks table after the PostgreSQL table (without its schema).
    async fn count(
        &self,
        connection: &mut mysql_async::Conn,
        table: &str,
    ) -> Result<TableCount, String> {
        let qualified = format!(
            "{}.{}",
            quote_starrocks(&self.target.database),
            quote_starrocks(table)
        );
        let total =
            count_starrocks(connection, &format!("SELECT count(*) FROM {qualified}")).await?;
        if !self.soft_delete {
            return Ok(TableCount {
                rows: total,
                estimated: false,
                soft_deleted: None,
            });
        }
        let deleted = count_starrocks(
            connection,
            &format!(
                "SELECT count(*) FROM {qualified} WHERE {} = true",
                quote_starrocks(AUDIT_IS_DELETED)
            ),
        )
        .await?;
        Ok(TableCount {
            rows: total.saturating_sub(deleted),
            estimated: false,
            soft_deleted: Some(deleted),
        })
    }
}

async fn count_starrocks(
    connection: &mut mysql_async::Conn,
    statement: &str,
) -> Result<u64, String> {
    let count: Option<u64> =
        connection
            .query_first(statement)
            .await
            .map_err(|error| match error {
                mysql_async::Error::Server(server) => server.message,
                other => other.to_string(),
            })?;
    Ok(count.unwrap_or(0))
}
