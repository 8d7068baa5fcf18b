//! Partitions attached after their table was copied get a snapshot of their own (see
//! `snapshot::partitions`): a watcher reads the published tables' leaf partitions every
//! `snapshot.partition_check_interval` and compares them with the ones recorded as copied.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Event, TableSnapshots};
use crate::checkpoint::{LeafPartitions, StateFile};
use crate::config::{Config, SnapshotMode};
use crate::replicator::{AbortOnDrop, RunError};
use crate::sink::Sink;
use crate::snapshot::{compare_leaves, partition_leaves, SnapshotError};
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
    /// changes held meanwhile), a missing one reported and forgotten.
    pub(super) fn on_partitions(
        &mut self,
        result: Result<LeafPartitions, SnapshotError>,
        state: &mut StateFile,
    ) -> Result<(), RunError> {
        let current = match result {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(%error, "could not read the partitions of the published tables; trying again at the next check");
                return Ok(());
            }
        };
        // Tables this state accounts for, and none being copied now: a plan records the
        // leaves it reads when it is made.
        let known = state.known_tables.clone().unwrap_or_default();
        let current: LeafPartitions = current
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
        if !changes.detached.is_empty() {
            state.store(&self.config.state_dir)?;
        }
        for (table, attached) in changes.attached {
            tracing::info!(table = %table, partitions = %list(&attached), "partitions attached: copying the rows they hold, the table's stream changes held meanwhile");
            self.plan(table, None, None, false, Some(attached));
        }
        Ok(())
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
