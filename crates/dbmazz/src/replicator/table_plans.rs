//! Planning the snapshot of one table: a new plan for a table asked for or met in the
//! stream, the plans of tables found at start, and moving a table that changed during the
//! initial snapshot into a snapshot of its own.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::prepare::{Prepared, RunError};
use crate::checkpoint::SnapshotState;
use crate::config::{Config, SnapshotMode};
use crate::schema::{KeyOverrides, TableName, TableSchema};
use crate::sink::Sink;
use crate::snapshot::{load_schemas, plan_new, relations_with_rows, SnapshotError, SnapshotJob};
use crate::source::{connect_sql, published_tables, quote_ident, SetupError, SourceError};

/// A planned snapshot of one table, recorded in the state file.
#[derive(Debug, Clone)]
pub struct TableJob {
    pub plan: SnapshotState,
    pub schema: Arc<TableSchema>,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum PlanError {
    #[error("table {table} is not in publication {publication:?}")]
    NotPublished { table: String, publication: String },
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl From<PlanError> for RunError {
    fn from(error: PlanError) -> Self {
        match error {
            PlanError::Setup(error) => RunError::Setup(error),
            PlanError::Snapshot(error) => RunError::Snapshot(error),
            not_published => RunError::Snapshot(SnapshotError::Internal(not_published.to_string())),
        }
    }
}

/// `leaves`: only those of these leaf partitions of a partitioned table (attached after it was
/// copied) that hold rows.
pub(super) async fn plan_table(
    config: &Config,
    table: &str,
    leaves: Option<&BTreeSet<String>>,
) -> Result<TableJob, PlanError> {
    let not_published = || PlanError::NotPublished {
        table: table.to_string(),
        publication: config.source.publication.clone(),
    };
    // A name that does not parse back (a dot in it) is published (the catalog check refuses
    // it): it must stop the pipeline, never be skipped as unpublished.
    let name = TableName::parse(table).ok_or_else(|| {
        SnapshotError::Internal(format!(
            "table {table} cannot be addressed (a dot in its schema or table name): rename it or \
             leave it out of the publication"
        ))
    })?;
    let connect = config.source_connect().map_err(SnapshotError::from)?;
    let client = connect_sql(&connect).await.map_err(SnapshotError::from)?;
    if !published_tables(&client, &config.source.publication)
        .await
        .map_err(SetupError::from)?
        .contains(&name)
    {
        return Err(not_published());
    }
    let mut job = plan_tables(&client, config, &[name], 0)
        .await?
        .pop()
        .ok_or_else(|| SnapshotError::Internal(format!("no plan for {table}")))?;
    if let Some(leaves) = leaves {
        job.plan.retain_relations(leaves);
        // Empty ones need no copy (and no hold): the plan may end up without chunks.
        let relations: BTreeSet<(String, String)> = job
            .plan
            .tables
            .iter()
            .flat_map(|table| &table.chunks)
            .map(|chunk| (chunk.relation_schema.clone(), chunk.relation_name.clone()))
            .collect();
        let with_rows = relations_with_rows(&client, &relations).await?;
        job.plan.retain_relations(&with_rows);
    }
    Ok(job)
}

/// A table rewritten (or missing a planned column) during the initial snapshot: its page
/// ranges no longer fit, and the exported snapshot would not see a rewritten table's rows. It
/// leaves the initial plan and gets a snapshot of its own, held and read in fresh transactions
/// once streaming starts (its replayed changes held behind it, as for a table added later).
/// Returns the rest of the initial snapshot to read.
pub(super) async fn split_off_changed_table(
    config: &Config,
    prepared: &mut Prepared,
    job: SnapshotJob,
    name: &TableName,
    reason: &str,
) -> Result<SnapshotJob, RunError> {
    let table = name.to_string();
    tracing::warn!(table, reason, "table changed during the snapshot: it gets a snapshot of its own, read once streaming starts");
    let state = &mut prepared.state;
    let Some(initial) = state.snapshot.as_mut() else {
        return Err(SnapshotError::Internal("the state has no snapshot section".into()).into());
    };
    initial.tables.retain(|planned| planned.table != table);
    let rest = initial.clone();
    let connect = config.source_connect().map_err(SnapshotError::from)?;
    let client = connect_sql(&connect).await.map_err(SnapshotError::from)?;
    let first_epoch = state.last_epoch() + 1;
    let published = published_tables(&client, &config.source.publication)
        .await
        .map_err(SetupError::from)?
        .contains(name);
    let planned = if published {
        plan_tables(&client, config, std::slice::from_ref(name), first_epoch).await
    } else {
        Err(SnapshotError::TableMissing {
            table: name.clone(),
        })
    };
    match planned {
        Ok(mut jobs) => {
            let Some(table_job) = jobs.pop() else {
                return Err(SnapshotError::Internal(format!("no plan for {table}")).into());
            };
            state.begin_table_snapshot(table_job.plan.clone());
            prepared.table_jobs.push(table_job);
        }
        // Dropped (or removed from the publication) meanwhile: not replicated any more.
        Err(SnapshotError::TableMissing { .. }) => {
            tracing::warn!(
                table,
                "table dropped or no longer published during the snapshot: not copied"
            );
        }
        Err(error) => return Err(error.into()),
    }
    state.store(&config.state_dir)?;
    let mut schemas = job.schemas;
    schemas.remove(&table);
    Ok(SnapshotJob {
        plan: rest,
        schemas,
        ..job
    })
}

/// One plan per table (epochs from `first_epoch` on, attempt 1), with its shape.
pub(super) async fn plan_tables(
    client: &tokio_postgres::Client,
    config: &Config,
    tables: &[TableName],
    first_epoch: u64,
) -> Result<Vec<TableJob>, SnapshotError> {
    let keys = config.key_overrides();
    let mut jobs = Vec::with_capacity(tables.len());
    for (index, table) in tables.iter().enumerate() {
        let mut plan = plan_new(
            client,
            std::slice::from_ref(table),
            &config.source.publication,
            config.snapshot.chunk_pages,
            first_epoch + index as u64,
        )
        .await?;
        plan.attempt = 1;
        jobs.push(job_of(client, plan, &config.source.publication, &keys).await?);
    }
    Ok(jobs)
}

/// The shape of a one-table plan's table.
pub(super) async fn job_of(
    client: &tokio_postgres::Client,
    plan: SnapshotState,
    publication: &str,
    keys: &KeyOverrides,
) -> Result<TableJob, SnapshotError> {
    let schemas = load_schemas(client, &plan, publication, keys).await?;
    let schema = schemas
        .into_values()
        .next()
        .ok_or_else(|| SnapshotError::Internal("a table snapshot without its table".into()))?;
    Ok(TableJob { plan, schema })
}

/// Tables copied before whose destination table is gone (dropped, or StarRocks lost it): each
/// gets a snapshot of its own while the stream runs, as a table published later does, instead
/// of a table recreated empty by the next change. With `snapshot.mode = "never"` a warning
/// says what to run.
pub(super) async fn recopy_lost_tables<S: Sink>(
    config: &Config,
    prepared: &mut Prepared,
    sink: &S,
) -> Result<(), RunError> {
    // A first start (no state file) copied nothing before: a missing destination is not lost.
    let Some(known) = prepared.state.known_tables.clone() else {
        return Ok(());
    };
    if prepared.first_start {
        return Ok(());
    }
    let mut copying: BTreeSet<String> = prepared
        .table_jobs
        .iter()
        .map(|job| job.schema.name.to_string())
        .collect();
    if let Some(job) = &prepared.snapshot {
        copying.extend(job.plan.tables.iter().map(|table| table.table.clone()));
    }
    let mut missing = Vec::new();
    for table in known.iter().filter(|table| !copying.contains(*table)) {
        let Some(name) = TableName::parse(table) else {
            continue;
        };
        if sink.has_table(&name).await == Some(false) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let connect = config.source_connect().map_err(SnapshotError::from)?;
    let client = connect_sql(&connect).await.map_err(SnapshotError::from)?;
    let published = published_tables(&client, &config.source.publication)
        .await
        .map_err(SetupError::from)?;
    // A table empty in PostgreSQL has nothing to copy (its destination table is created at its
    // first change: an empty snapshot creates none).
    let mut lost = Vec::new();
    for name in missing.into_iter().filter(|name| published.contains(name)) {
        let statement = format!(
            "SELECT EXISTS (SELECT 1 FROM {}.{})",
            quote_ident(&name.schema),
            quote_ident(&name.name)
        );
        let has_rows: bool = client
            .query_one(statement.as_str(), &[])
            .await
            .map_err(|error| SnapshotError::from(SourceError::from(error)))?
            .get(0);
        if has_rows {
            lost.push(name);
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    let list = lost.iter().map(ToString::to_string).collect::<Vec<_>>();
    let list = list.join(", ");
    if config.snapshot.mode == SnapshotMode::Never {
        tracing::warn!(tables = %list, "copied before, but the destination table is gone (dropped?): it is created empty and only new changes reach it (snapshot.mode = \"never\"); run dbmazz snapshot --table <table> to copy it");
        return Ok(());
    }
    tracing::warn!(tables = %list, "copied before, but the destination table is gone (dropped, or the destination lost it?): each is copied again while the stream runs");
    let state = &mut prepared.state;
    for job in plan_tables(&client, config, &lost, state.last_epoch() + 1).await? {
        state.begin_table_snapshot(job.plan.clone());
        prepared.table_jobs.push(job);
    }
    state.store(&config.state_dir)?;
    Ok(())
}
