//! Before streaming: check PostgreSQL, the publication, the slot and the local state.

use std::collections::BTreeSet;
use std::path::Path;

use super::table_plans::{job_of, plan_tables, TableJob};
use crate::checkpoint::{check_writable, SnapshotState, StateFile, StateFileError};
use crate::config::{Config, ConfigError, SinkKind, SnapshotMode};
use crate::pipeline::{clear_spill_dir, CoreError};
use crate::schema::KeyOverrides;
use crate::schema::TableName;
use crate::snapshot::{
    decide, load_schemas, partition_leaves, plan_new, SnapshotDecision, SnapshotError, SnapshotJob,
};
use crate::source::{
    check_select_privilege, check_wal_level, connect_sql, ensure_slot_with,
    full_identity_primary_keys, prepare_publication, published_columns, published_tables,
    PgOutputProtocol, ReplicationClient, SetupError, SnapshotAction, SourceError,
};
use crate::Lsn;

/// Everything that can stop `dbmazz run`, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Stream(#[from] CoreError),
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(
        "replication slot {slot:?} is gone, but {state} says this state_dir streamed from it up \
         to {durable}: the changes since are lost. Snapshot the tables again: move {state} away \
         and restart (dbmazz then creates a new slot)"
    )]
    SlotLost {
        slot: String,
        state: String,
        durable: String,
    },
    #[error(
        "{state} belongs to {recorded}, but the config says {configured}: point state_dir at \
         this pipeline's own directory"
    )]
    StateMismatch {
        state: String,
        recorded: String,
        configured: String,
    },
    #[error("{}", crate::sink::starrocks::same_destination_message(.first, .second, .database))]
    SameDestination {
        first: TableName,
        second: TableName,
        database: String,
    },
    #[error("spill directory {path}: {source}")]
    SpillDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "PostgreSQL ended the replication stream (the server is shutting down or restarting?): \
         start dbmazz again once PostgreSQL is back; it resumes from the slot, nothing is lost"
    )]
    StreamEnded,
}

impl RunError {
    /// What to do, when the PostgreSQL error behind this one does not say it itself.
    pub fn fix(&self) -> Option<&'static str> {
        if self.disk_full() {
            return Some(
                "the file system of state_dir is full: free space or give it more (it needs room \
                 for the largest transaction being received, spilled past \
                 pipeline.spill_threshold); nothing is lost, the changes are read again from the \
                 slot",
            );
        }
        match self {
            RunError::Source(error)
            | RunError::Setup(SetupError::Source(error))
            | RunError::Snapshot(SnapshotError::Source(error)) => error.fix(),
            _ => None,
        }
    }

    /// Whether a full disk (ENOSPC) is behind this error, at any depth.
    fn disk_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) {
                    return true;
                }
            }
            cause = error.source();
        }
        false
    }

    /// A short stable name for the `dbmazz_errors_total{reason}` metric.
    /// Every [`Self::kind`] (the `reason`s of `dbmazz_errors_total`).
    pub const KINDS: [&'static str; 11] = [
        "config",
        "setup",
        "source",
        "stream",
        "state_file",
        "snapshot",
        "slot_lost",
        "state_mismatch",
        "same_destination",
        "spill_dir",
        "stream_ended",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            RunError::Config(_) => "config",
            RunError::Setup(_) => "setup",
            RunError::Source(_) => "source",
            RunError::Stream(_) => "stream",
            RunError::State(_) => "state_file",
            RunError::Snapshot(_) => "snapshot",
            RunError::SlotLost { .. } => "slot_lost",
            RunError::StateMismatch { .. } => "state_mismatch",
            RunError::SameDestination { .. } => "same_destination",
            RunError::SpillDir { .. } => "spill_dir",
            RunError::StreamEnded => "stream_ended",
        }
    }
}

/// A replication connection ready to start streaming.
pub struct Prepared {
    pub client: ReplicationClient,
    pub start: Lsn,
    pub protocol: PgOutputProtocol,
    pub state: StateFile,
    /// Rows to copy before streaming (the replication connection must stay idle until then).
    pub snapshot: Option<SnapshotJob>,
    /// Tables to snapshot while streaming: unfinished ones recorded, and published tables
    /// the state does not know (unless `snapshot.mode = "never"`).
    pub table_jobs: Vec<TableJob>,
    /// No state file was found: nothing was copied or streamed into StarRocks before.
    pub first_start: bool,
}

/// `config` with the primary keys of the replicated tables under `REPLICA IDENTITY FULL` added
/// to `source.key_columns` (those not named there already), or `None` when there are none.
/// pgoutput flags every column of such a table as key; its primary key is the StarRocks key,
/// exactly as if the operator had named it. Read once at start, so that the snapshot and the
/// stream key the table alike (a table switched to FULL later is refused until a restart).
pub async fn with_full_identity_keys(config: &Config) -> Result<Option<Config>, RunError> {
    let sql = connect_sql(&config.source_connect()?).await?;
    let found = full_identity_primary_keys(&sql).await?;
    if found.is_empty() {
        return Ok(None);
    }
    // The configured tables and whatever else the publication holds (tables added to it are
    // replicated too); a publication not created yet holds nothing.
    let mut replicated = config.tables();
    replicated.extend(
        published_tables(&sql, &config.source.publication)
            .await
            .unwrap_or_default(),
    );
    let configured = config.key_overrides();
    let mut augmented = config.clone();
    let mut added = false;
    for (table, keys) in found {
        if replicated.contains(&table) && !configured.covers(&table) {
            tracing::info!(table = %table, key = %keys.join(", "), "REPLICA IDENTITY FULL: keyed by its primary key");
            augmented.source.key_columns.insert(table.to_string(), keys);
            added = true;
        }
    }
    Ok(added.then_some(augmented))
}

/// Column names StarRocks would refuse stop dbmazz here, before the slot exists, rather than
/// at the table's first load.
async fn check_column_names(
    sql: &tokio_postgres::Client,
    publication: &str,
    starrocks: &crate::config::StarRocksConfig,
) -> Result<(), RunError> {
    use crate::sink::starrocks::{column_name_problem_with, EncoderOptions, COLUMN_NAME_FIX};
    let options = EncoderOptions {
        delete_mode: starrocks.delete_mode,
        audit_columns: starrocks.audit_columns,
        key_columns: None,
        not_null_columns: Vec::new(),
    };
    for (table, columns) in published_columns(sql, publication).await? {
        let names = columns.iter().map(String::as_str);
        if let Some(problem) = column_name_problem_with(names, &options) {
            return Err(RunError::Setup(SetupError::ColumnName {
                table,
                problem: format!("{problem}: {COLUMN_NAME_FIX}"),
            }));
        }
    }
    Ok(())
}

pub async fn prepare(config: &Config) -> Result<Prepared, RunError> {
    check_writable(&config.state_dir)?;
    let connect = config.source_connect()?;
    let sql = connect_sql(&connect).await?;
    check_wal_level(&sql).await?;
    let keyed = config.key_overrides();
    let publication = &config.source.publication;
    let tables = prepare_publication(&sql, publication, &config.tables(), &keyed).await?;
    tracing::info!(publication = %config.source.publication, tables = tables.len(), "publication ready");
    check_key_columns(config, &keyed, &sql, &tables).await?;
    if config.snapshot.mode != SnapshotMode::Never {
        check_select_privilege(&sql, &connect.user, &tables).await?;
    }
    if let Some(starrocks) = &config.sink.starrocks {
        if config.sink.kind == SinkKind::Starrocks {
            if let Some((first, second)) = crate::sink::starrocks::same_destination(&tables) {
                return Err(RunError::SameDestination {
                    first: first.clone(),
                    second: second.clone(),
                    database: starrocks.database.clone(),
                });
            }
            check_column_names(&sql, publication, starrocks).await?;
        }
    }

    let mut client = ReplicationClient::connect(&connect).await?;
    let system = client.identify_system().await?;
    let database = connect.dbname.clone();
    let state = StateFile::load(&config.state_dir)?;
    let state_path = StateFile::path(&config.state_dir).display().to_string();
    if let Some(state) = &state {
        if state.slot != config.source.slot
            || state.database != database
            || state.system_identifier != system.systemid
        {
            let describe = |slot: &str, database: &str, system: &str| {
                format!("slot {slot:?} on database {database:?} (system {system})")
            };
            return Err(RunError::StateMismatch {
                state: state_path,
                recorded: describe(&state.slot, &state.database, &state.system_identifier),
                configured: describe(&config.source.slot, &database, &system.systemid),
            });
        }
        if client.slot_info(&config.source.slot).await?.is_none() {
            return Err(RunError::SlotLost {
                slot: config.source.slot.clone(),
                state: state_path,
                durable: state.last_durable_lsn.clone(),
            });
        }
    }
    let export = if config.snapshot.mode == SnapshotMode::Never {
        SnapshotAction::NoExport
    } else {
        SnapshotAction::Export
    };
    let slot = report_slot_waits(
        &sql,
        ensure_slot_with(&mut client, &config.source.slot, &database, export),
    )
    .await?;
    if let Some(recorded) = state.as_ref().and_then(StateFile::durable) {
        if slot.start < recorded {
            // PostgreSQL persists confirmed positions at checkpoints; after a server crash it
            // may resend a little: harmless, every change is applied idempotently.
            tracing::warn!(slot_position = %slot.start, recorded = %recorded, "slot is behind the recorded durable position; replaying the difference");
        }
    }
    clear_spill(&config.spill_dir())?;
    let state_found = state.is_some();
    if !state_found && !slot.created && config.snapshot.mode == SnapshotMode::Initial {
        tracing::warn!(slot = %config.source.slot, state = %state_path, "the slot exists but this state_dir has no state file (lost, or never written): nothing says the tables were copied, so they are copied now, and the stream then replays from the slot so the copy converges. Keep state_dir on persistent storage; snapshot.mode = \"never\" streams without copying");
    }
    let mut state = {
        let previous = state;
        let mut fresh =
            StateFile::new(&config.source.slot, &database, &system.systemid, slot.start);
        if let Some(previous) = previous {
            fresh.carry_records(previous);
        }
        fresh
    };
    let decision = decide(
        config.snapshot.mode,
        slot.created,
        state_found,
        state.snapshot.as_ref(),
    );
    let snapshot = match decision {
        SnapshotDecision::Skip => {
            if state
                .snapshot
                .as_ref()
                .is_some_and(|plan| !plan.is_finished())
            {
                tracing::warn!("an unfinished snapshot is recorded but snapshot.mode = \"never\": streaming only");
            }
            None
        }
        SnapshotDecision::New { epoch } => {
            let epoch = epoch.max(state.last_epoch() + 1);
            let mut plan = plan_new(
                &sql,
                &tables,
                publication,
                config.snapshot.chunk_pages,
                epoch,
            )
            .await?;
            plan.replace = config.snapshot.replace;
            // A full snapshot supersedes any snapshot of single tables.
            state.table_snapshots.clear();
            state.known_tables = Some(plan.tables.iter().map(|t| t.table.clone()).collect());
            state.partitions = Some(plan.leaf_partitions());
            Some((plan, slot.snapshot_name.clone()))
        }
        SnapshotDecision::Resume => state.snapshot.clone().map(|mut plan| {
            without_unpublished(&mut plan, &tables);
            (plan, None)
        }),
    };
    let snapshot = match snapshot {
        Some((mut plan, exported_snapshot)) => {
            plan.attempt += 1;
            let schemas = load_schemas(&sql, &plan, publication, &keyed).await?;
            state.snapshot = Some(plan.clone());
            Some(SnapshotJob {
                plan,
                schemas,
                exported_snapshot,
                snapshot_lsn: slot.start,
            })
        }
        None => None,
    };
    let table_jobs = table_jobs(config, &keyed, &sql, &tables, &mut state).await?;
    if state.partitions.is_none() || config.snapshot.mode == SnapshotMode::Never {
        // As for tables: the partitions there are now count as copied (older state files,
        // or snapshots off); only partitions attached from now on are copied.
        let known = state.known_tables.clone().unwrap_or_default();
        let mut leaves = partition_leaves(&sql, publication).await?.leaves;
        leaves.retain(|table, _| known.contains(table));
        state.partitions = Some(leaves);
    }
    drop(sql);
    state.store(&config.state_dir)?;
    let protocol = client.pgoutput_protocol();
    Ok(Prepared {
        client,
        start: slot.start,
        protocol,
        state,
        snapshot,
        table_jobs,
        first_start: !state_found,
    })
}

/// The snapshots of single tables to run while streaming: unfinished ones recorded (read
/// again under a new attempt) and published tables the state does not know yet (new plans,
/// recorded in `state`). A state without a record of known tables (older files, or none)
/// knows what its snapshot planned, or else every published table: nothing is copied then
/// that would not have been before.
async fn table_jobs(
    config: &Config,
    keyed: &KeyOverrides,
    sql: &tokio_postgres::Client,
    published: &[TableName],
    state: &mut StateFile,
) -> Result<Vec<TableJob>, RunError> {
    if state.known_tables.is_none() {
        let baseline = match &state.snapshot {
            Some(plan) => plan.tables.iter().map(|t| t.table.clone()).collect(),
            None => published.iter().map(ToString::to_string).collect(),
        };
        state.known_tables = Some(baseline);
    }
    forget_unpublished(state, published);
    let mut jobs = Vec::new();
    let mut kept = Vec::new();
    for mut plan in std::mem::take(&mut state.table_snapshots) {
        if plan.is_finished() {
            kept.push(plan);
            continue;
        }
        let published_still = plan
            .tables
            .iter()
            .all(|t| published.iter().any(|name| name.to_string() == t.table));
        if !published_still {
            tracing::warn!(
                epoch = plan.epoch,
                "an unfinished table snapshot is recorded for a table no longer published: dropped"
            );
            continue;
        }
        plan.attempt += 1;
        jobs.push(job_of(sql, plan.clone(), &config.source.publication, keyed).await?);
        kept.push(plan);
    }
    state.table_snapshots = kept;
    let known = state.known_tables.clone().unwrap_or_default();
    if config.snapshot.mode == SnapshotMode::Never {
        // Never copy on our own; the tables count as known so a later mode change does not
        // copy them either.
        let all = published.iter().map(ToString::to_string);
        state
            .known_tables
            .get_or_insert_with(Default::default)
            .extend(all);
        return Ok(jobs);
    }
    let unknown: Vec<TableName> = published
        .iter()
        .filter(|name| !known.contains(&name.to_string()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        let list = unknown.iter().map(ToString::to_string).collect::<Vec<_>>();
        tracing::info!(tables = %list.join(", "), "published tables this state has never copied: each gets a snapshot of its own while the stream runs");
        for mut job in plan_tables(sql, config, &unknown, state.last_epoch() + 1).await? {
            job.plan.replace = config.snapshot.replace;
            state.begin_table_snapshot(job.plan.clone());
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Forgets the tables that left the publication since the last run, with their partitions:
/// their changes stopped coming, so one published again must be copied anew, as any table
/// the state does not know.
fn forget_unpublished(state: &mut StateFile, published: &[TableName]) {
    let published: BTreeSet<String> = published.iter().map(ToString::to_string).collect();
    let left = state.forget_unpublished(&published, |_| false);
    if !left.is_empty() {
        tracing::warn!(tables = %left.join(", "), "tables no longer published since the last run: their changes are not replicated; one published again is copied anew");
    }
}

/// Creating a slot waits for every transaction open at that moment (in any database) to end:
/// with one left open it waits for as long, silently. Every 10 s this names the transactions
/// still open, oldest first.
async fn report_slot_waits<T>(
    sql: &tokio_postgres::Client,
    creating: impl std::future::Future<Output = T>,
) -> T {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);
    tokio::pin!(creating);
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(started + EVERY, EVERY);
    loop {
        tokio::select! {
            done = &mut creating => return done,
            _ = ticks.tick() => {
                let open = sql
                    .query(
                        "SELECT format('pid %s (%s, %s, open %s s): %s', pid, usename, state, \
                         extract(epoch FROM now() - xact_start)::bigint, left(query, 80)) \
                         FROM pg_catalog.pg_stat_activity \
                         WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() \
                         ORDER BY xact_start LIMIT 3",
                        &[],
                    )
                    .await
                    .map(|rows| rows.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>())
                    .unwrap_or_default();
                tracing::warn!(
                    waited_s = started.elapsed().as_secs(),
                    open = %open.join("; "),
                    "creating the replication slot waits for the transactions open when it began to end (PostgreSQL needs a moment with none of them open); end them, or wait"
                );
            }
        }
    }
}

/// Leaves the tables no longer published (dropped, or removed from the publication) out of a
/// resumed snapshot: their rows are not replicated now, and a dropped one cannot be read.
fn without_unpublished(plan: &mut SnapshotState, published: &[TableName]) {
    let mut left = Vec::new();
    plan.tables.retain(|planned| {
        let keep = published
            .iter()
            .any(|table| table.to_string() == planned.table);
        if !keep {
            left.push(planned.table.clone());
        }
        keep
    });
    if !left.is_empty() {
        tracing::warn!(tables = %left.join(", "), "tables of the unfinished snapshot are no longer published (dropped?): not copied");
    }
}

/// `source.key_columns` against the catalog, before anything starts: every column named
/// exists, and no table listed already has a replica identity key.
async fn check_key_columns(
    config: &Config,
    keys: &KeyOverrides,
    sql: &tokio_postgres::Client,
    published: &[TableName],
) -> Result<(), RunError> {
    for table in config.source.key_columns.keys() {
        let Some(name) = TableName::parse(table) else {
            continue;
        };
        if !published.contains(&name) {
            tracing::warn!(table = %name, "source.key_columns names a table that is not published: ignored");
            continue;
        }
        let mut schema =
            crate::snapshot::table_schema(sql, &name, &config.source.publication).await?;
        keys.apply(&mut schema).map_err(SnapshotError::from)?;
    }
    Ok(())
}

fn clear_spill(dir: &Path) -> Result<(), RunError> {
    clear_spill_dir(dir).map_err(|source| RunError::SpillDir {
        path: dir.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_behind_any_error_says_what_to_do() {
        let full = RunError::SpillDir {
            path: "/state/spill".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        assert!(full
            .fix()
            .is_some_and(|fix| fix.starts_with("the file system of state_dir is full")));
        let other = RunError::SpillDir {
            path: "/state/spill".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(other.fix(), None);
    }
}
