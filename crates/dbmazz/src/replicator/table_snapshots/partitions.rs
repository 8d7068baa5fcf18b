//! Partitions attached after their table was copied get a snapshot of their own (see
//! `snapshot::partitions`): a watcher reads the published tables' leaf partitions every
//! `snapshot.partition_check_interval` and compares them with the ones recorded as copied,
//! and each leaf's file with the one it had at the last check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Event, TableSnapshots};
use crate::checkpoint::{LeafPartitions, StateFile};
use crate::config::{Config, SnapshotMode};
use crate::ops::metrics;
use crate::replicator::{AbortOnDrop, RunError};
use crate::sink::Sink;
use crate::snapshot::{
    compare_leaves, partition_leaves, rewritten_leaves, PartitionCatalog, SnapshotError,
};
use crate::source::connect_sql;

impl<S: Sink> TableSnapshots<S> {
    /// Starts the watcher (its first look is right away), unless snapshots are off
    /// (`mode = "never"`) or the interval is 0.
    pub(in crate::replicator) fn watch_partitions(&mut self) {
        let interval = self.config.snapshot.partition_check_interval.0;
        if self.config.snapshot.mode == SnapshotMode::Never || interval.is_zero() {
            return;
        }
        let (config, events) = (Arc::clone(&self.config), self.events.clone());
        self.partition_watch = Some(AbortOnDrop(tokio::spawn(watch(config, events))));
    }

    /// The catalog's leaves against the recorded ones: a new leaf is copied (its table's
    /// changes held meanwhile), a missing one reported and forgotten, one with a new file
    /// reported.
    pub(super) fn on_partitions(
        &mut self,
        result: Result<PartitionCatalog, SnapshotError>,
        state: &mut StateFile,
    ) -> Result<(), RunError> {
        let PartitionCatalog { leaves, files } = match result {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(%error, "could not read the partitions of the published tables; trying again at the next check");
                return Ok(());
            }
        };
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
        let files_changed = self.on_partition_files(&current, &changes.attached, files, state);
        if !changes.detached.is_empty() || files_changed {
            state.store(&self.config.state_dir)?;
        }
        for (table, attached) in changes.attached {
            tracing::info!(table = %table, partitions = %list(&attached), "partitions attached: copying the rows they hold, the table's stream changes held meanwhile");
            self.plan(table, None, None, false, Some(attached));
        }
        Ok(())
    }
}

impl<S: Sink> TableSnapshots<S> {
    /// Reports the leaves of `current` whose file changed since the last check, and records
    /// the files of its leaves (not of those `attached`: they are recorded once copied).
    /// Returns whether the record changed.
    fn on_partition_files(
        &self,
        current: &LeafPartitions,
        attached: &LeafPartitions,
        files: BTreeMap<String, u32>,
        state: &mut StateFile,
    ) -> bool {
        let checked = PartitionCatalog {
            leaves: current.clone(),
            files,
        };
        for (table, leaves) in rewritten_leaves(&state.partition_files, &checked) {
            tracing::warn!(table = %table, partitions = %list(&leaves), "partitions with a new file (TRUNCATE, VACUUM FULL, CLUSTER or a rewriting ALTER): a TRUNCATE of a partition alone is not replicated (pgoutput leaves it out for tables published via their root), so if one was truncated its old rows are still in StarRocks; `dbmazz snapshot --table {table} --replace` copies the table anew");
            metrics().count_partitions_rewritten(&table, leaves.len() as u64);
        }
        let before = state.partition_files.clone();
        let attached_leaf =
            |table: &str, leaf: &str| attached.get(table).is_some_and(|set| set.contains(leaf));
        for (table, leaves) in current {
            for leaf in leaves {
                match checked.files.get(leaf) {
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

/// Reads the leaves every interval on one connection (opened again after an error).
async fn watch(config: Arc<Config>, events: mpsc::UnboundedSender<Event>) {
    let mut tick = tokio::time::interval(config.snapshot.partition_check_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client = None;
    loop {
        tick.tick().await;
        let result = match &client {
            Some(client) => partition_leaves(client, &config.source.publication).await,
            None => match connect(&config).await {
                Ok(connected) => {
                    let result = partition_leaves(&connected, &config.source.publication).await;
                    client = Some(connected);
                    result
                }
                Err(error) => Err(error),
            },
        };
        if result.is_err() {
            client = None;
        }
        if events.send(Event::Partitions { result }).is_err() {
            return;
        }
    }
}

async fn connect(config: &Config) -> Result<tokio_postgres::Client, SnapshotError> {
    let connect = config.source_connect().map_err(SnapshotError::from)?;
    Ok(connect_sql(&connect).await?)
}
