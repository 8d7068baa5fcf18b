//! What the stream cannot tell: a watcher reads the publication's tables and the leaf
//! partitions of the partitioned ones every `snapshot.partition_check_interval`.
//!
//! - A table added to the publication is copied (its changes held meanwhile), also before
//!   any change of it comes through.
//! - A table that left the publication is forgotten (its changes stop coming); published
//!   again, it is copied anew — also when no check saw it gone (removed and added back within
//!   one interval, or while dbmazz was stopped): its membership rows are all new.
//! - Partitions attached after their table was copied get a snapshot of their own (see
//!   `snapshot::partitions`); each leaf's file is compared with the one it had at the last
//!   check (a TRUNCATE of one partition is not replicated, so a new file the stream does not
//!   explain by a TRUNCATE of the whole table is reported: `rewrite_reports.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::rewrite_reports::{CheckWindow, Verdict};
use super::{Event, TableSnapshots};
use crate::checkpoint::{LeafPartitions, StateFile};
use crate::config::{Config, SnapshotMode};
use crate::ops::metrics;
use crate::pipeline::StreamCore;
use crate::replicator::{AbortOnDrop, RunError};
use crate::schema::TableName;
use crate::sink::Sink;
use crate::snapshot::{
    compare_leaves, partition_leaves, rewritten_leaves, PartitionCatalog, SnapshotError,
};
use crate::source::{connect_sql, publication_membership, published_tables, SourceError};
use crate::Lsn;

/// One look at the catalog.
#[derive(Debug)]
pub(in crate::replicator) struct CatalogCheck {
    /// The publication's tables, `schema.table` each.
    published: BTreeSet<String>,
    /// The catalog rows that put each table in the publication.
    members: BTreeMap<String, BTreeSet<u32>>,
    partitions: PartitionCatalog,
    /// The WAL positions read before and after.
    window: CheckWindow,
}

impl<S: Sink> TableSnapshots<S> {
    /// Starts the watcher (its first look is right away), unless snapshots are off
    /// (`mode = "never"`) or the interval is 0.
    pub(in crate::replicator) fn watch_catalog(&mut self) {
        let interval = self.config.snapshot.partition_check_interval.0;
        if self.config.snapshot.mode == SnapshotMode::Never || interval.is_zero() {
            return;
        }
        let (config, events) = (Arc::clone(&self.config), self.events.clone());
        self.catalog_watch = Some(AbortOnDrop(tokio::spawn(watch(config, events))));
    }

    pub(super) fn on_catalog(
        &mut self,
        result: Result<CatalogCheck, SnapshotError>,
        state: &mut StateFile,
        core: &StreamCore<S>,
    ) -> Result<(), RunError> {
        let CatalogCheck {
            published,
            members,
            partitions,
            window,
        } = match result {
            Ok(check) => check,
            // Not transient: its changes could be neither copied nor told apart.
            Err(SnapshotError::Source(error @ SourceError::UnaddressableTable { .. })) => {
                return Err(RunError::Snapshot(SnapshotError::Source(error)));
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the publication's tables and partitions; trying again at the next check");
                return Ok(());
            }
        };
        self.on_published(&published, &members, state)?;
        self.on_partitions(partitions, window, state)?;
        self.rewrites.checked(window);
        self.judge_rewrites(core);
        Ok(())
    }

    /// Reports the new leaf files the stream does not explain (see `rewrite_reports.rs`).
    pub(in crate::replicator) fn judge_rewrites(&mut self, core: &StreamCore<S>) {
        if self.rewrites.is_empty() {
            return;
        }
        let verdicts = self.rewrites.judge(
            core.applied_through(),
            |table| core.last_truncate(table),
            Instant::now(),
        );
        for verdict in verdicts {
            match verdict {
                Verdict::Replicated { table, leaves } => {
                    tracing::info!(table = %table, partitions = %list(&leaves), "partitions with a new file after the replicated TRUNCATE of their table: nothing to do");
                }
                Verdict::Unexplained { table, leaves } => {
                    tracing::warn!(table = %table, partitions = %list(&leaves), "partitions with a new file and no replicated TRUNCATE of {table}: a partition truncated alone (pgoutput leaves that TRUNCATE out for tables published via their root) keeps its old rows in StarRocks — `dbmazz snapshot --table {table} --replace` copies the table anew; after VACUUM FULL, CLUSTER or a rewriting ALTER there is nothing to do");
                    metrics().count_partitions_rewritten(&table, leaves.len() as u64);
                }
            }
        }
    }

    /// Tables that left the publication are forgotten (warning): their changes stop coming.
    /// One published again during this run is copied anew, as `dbmazz snapshot --table`
    /// copies it (emptied first under `snapshot.replace`).
    fn on_published(
        &mut self,
        published: &BTreeSet<String>,
        members: &BTreeMap<String, BTreeSet<u32>>,
        state: &mut StateFile,
    ) -> Result<(), RunError> {
        let left = state.forget_unpublished(published, |table| self.active.contains_key(table));
        if !left.is_empty() {
            tracing::warn!(tables = %left.join(", "), "tables left the publication: their changes are no longer replicated; one published again is copied anew");
            state.store(&self.config.state_dir)?;
            for table in left.iter().filter_map(|table| TableName::parse(table)) {
                self.sink.forget_table(&table);
            }
            self.unpublished.extend(left);
        }
        let back: Vec<String> = self
            .unpublished
            .iter()
            .filter(|table| published.contains(*table))
            .cloned()
            .collect();
        for table in back {
            self.unpublished.remove(&table);
            if self.active.contains_key(&table) {
                continue;
            }
            tracing::info!(table = %table, "table published again: copying it anew, its stream changes held meanwhile");
            self.copy_anew(table);
        }
        let (readded, changed) = state.renew_membership(members, |table| {
            self.active.contains_key(table) || self.unpublished.contains(table)
        });
        if changed {
            state.store(&self.config.state_dir)?;
        }
        for table in readded {
            tracing::warn!(table = %table, "table removed from the publication and added back since the last check: the changes made meanwhile were not streamed; copying it anew, its stream changes held meanwhile");
            self.copy_anew(table);
        }
        // Added to the publication: copied now, not only once a change of it comes through
        // (a quiet table would otherwise wait for its first change, or the next start).
        let Some(known) = state.known_tables.as_ref() else {
            return Ok(());
        };
        let added: Vec<String> = published
            .iter()
            .filter(|table| !known.contains(*table) && !self.active.contains_key(*table))
            .cloned()
            .collect();
        for table in added {
            tracing::info!(table = %table, "table added to the publication: snapshotting it, its stream changes held meanwhile");
            let replace = self.config.snapshot.replace;
            self.plan(table, None, None, replace, None, true);
        }
        Ok(())
    }

    /// Plans the copy of a table found in the publication that this state does not account
    /// for (emptied first under `snapshot.replace`). Nobody waits for the answer: a plan that
    /// fails for a passing reason is tried again at the next check.
    fn copy_anew(&mut self, table: String) {
        let replace = self.config.snapshot.replace;
        if !replace {
            tracing::warn!(table = %table, "the copy upserts over the StarRocks table: rows deleted in PostgreSQL while the table was not published stay in StarRocks; set snapshot.replace = true (or run dbmazz snapshot --table {table} --replace) for an exact copy");
        }
        self.plan(table, None, None, replace, None, true);
    }

    /// The catalog's leaves against the recorded ones: a new leaf is copied (its table's
    /// changes held meanwhile), a missing one reported and forgotten, one with a new file
    /// reported.
    fn on_partitions(
        &mut self,
        catalog: PartitionCatalog,
        window: CheckWindow,
        state: &mut StateFile,
    ) -> Result<(), RunError> {
        let PartitionCatalog { leaves, files } = catalog;
        // Tables this state accounts for, and none being copied now: a plan records the
        // leaves it reads when it is made.
        let known = state.known_tables.clone().unwrap_or_default();
        let current: LeafPartitions = leaves
            .into_iter()
            .filter(|(table, _)| known.contains(table) && !self.active.contains_key(table))
            .collect();
        let recorded = state.partitions.get_or_insert_with(Default::default);
        let changes = compare_leaves(recorded, &current);
        for (table, gone) in &changes.detached {
            tracing::warn!(table = %table, partitions = %list(gone), "partitions detached or dropped: the rows they held stay in StarRocks (`dbmazz snapshot --table {table} --replace` copies the table anew without them)");
            if let Some(leaves) = recorded.get_mut(table) {
                leaves.retain(|leaf| !gone.contains(leaf));
            }
        }
        let files_changed =
            self.on_partition_files(&current, &changes.attached, files, window, state);
        if !changes.detached.is_empty() || files_changed {
            state.store(&self.config.state_dir)?;
        }
        for (table, attached) in changes.attached {
            tracing::info!(table = %table, partitions = %list(&attached), "partitions attached: copying the rows they hold, the table's stream changes held meanwhile");
            self.plan(table, None, None, false, Some(attached), true);
        }
        Ok(())
    }
}

impl<S: Sink> TableSnapshots<S> {
    /// Notes the leaves of `current` whose file changed since the last check (judged once the
    /// stream caught up), and records the files of its leaves (not of those `attached`: they
    /// are recorded once copied). Returns whether the record changed.
    fn on_partition_files(
        &mut self,
        current: &LeafPartitions,
        attached: &LeafPartitions,
        files: BTreeMap<String, u32>,
        window: CheckWindow,
        state: &mut StateFile,
    ) -> bool {
        for (table, leaves) in rewritten_leaves(&state.partition_files, current, &files) {
            self.rewrites.found(table, leaves, window, Instant::now());
        }
        let before = state.partition_files.clone();
        let attached_leaf =
            |table: &str, leaf: &str| attached.get(table).is_some_and(|set| set.contains(leaf));
        for (table, leaves) in current {
            for leaf in leaves {
                match files.get(leaf) {
                    Some(file) if !attached_leaf(table, leaf) => {
                        state.partition_files.insert(leaf.clone(), *file);
                    }
                    _ => {}
                }
            }
        }
        // Forget the files of leaves no partitioned table records any more.
        let recorded: BTreeSet<&String> = state
            .partitions
            .iter()
            .flat_map(|tables| tables.values().flatten())
            .collect();
        state
            .partition_files
            .retain(|leaf, _| recorded.contains(leaf));
        state.partition_files != before
    }
}

fn list(leaves: &BTreeSet<String>) -> String {
    leaves.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Reads the catalog every interval on one connection (opened again after an error).
async fn watch(config: Arc<Config>, events: mpsc::UnboundedSender<Event>) {
    let mut tick = tokio::time::interval(config.snapshot.partition_check_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client = None;
    loop {
        tick.tick().await;
        let result = match &client {
            Some(client) => read_catalog(client, &config.source.publication).await,
            None => match connect(&config).await {
                Ok(connected) => {
                    let result = read_catalog(&connected, &config.source.publication).await;
                    client = Some(connected);
                    result
                }
                Err(error) => Err(error),
            },
        };
        if result.is_err() {
            client = None;
        }
        if events.send(Event::Catalog { result }).is_err() {
            return;
        }
    }
}

async fn read_catalog(
    client: &tokio_postgres::Client,
    publication: &str,
) -> Result<CatalogCheck, SnapshotError> {
    let from = wal_position(client).await?;
    let published = published_tables(client, publication).await?;
    let members = publication_membership(client, publication).await?;
    let partitions = partition_leaves(client, publication).await?;
    let to = wal_position(client).await?;
    Ok(CatalogCheck {
        published: published.iter().map(ToString::to_string).collect(),
        members,
        partitions,
        window: CheckWindow { from, to },
    })
}

/// Where the server's WAL is now: the insert position (past every commit already made,
/// even asynchronous ones), or on a standby the replayed one.
async fn wal_position(client: &tokio_postgres::Client) -> Result<Lsn, SnapshotError> {
    let row = client
        .query_one(
            "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                     ELSE pg_current_wal_insert_lsn() END)::text",
            &[],
        )
        .await
        .map_err(SourceError::from)?;
    let text: Option<String> = row.get(0);
    match text {
        None => Ok(Lsn::ZERO),
        Some(text) => text.parse().map_err(|error| {
            SnapshotError::Internal(format!("the server's WAL position {text:?}: {error}"))
        }),
    }
}

async fn connect(config: &Config) -> Result<tokio_postgres::Client, SnapshotError> {
    let connect = config.source_connect().map_err(SnapshotError::from)?;
    Ok(connect_sql(&connect).await?)
}
