//! Transactions and their labels, per database (spec §2, §10.4, §10.5).
//!
//! A label may have several txns (aborted attempts, then a retry); the newest decides. Finished
//! txns (VISIBLE, ABORTED) are dropped by the periodic label cleaner when older than
//! `label_keep_max_second`, or when beyond the newest `label_keep_max_num` txns of the database.
//! Only the cleaner forgets labels, as in StarRocks: between runs the map simply grows.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A txn's state as `get_load_state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Running.
    Prepare,
    /// Two-phase prepared.
    Prepared,
    /// Committed, publish pending.
    Committed,
    /// Committed and visible.
    Visible,
    /// Aborted (label reusable).
    Aborted,
}

impl TxnState {
    /// The name used by `get_load_state`.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Prepare => "PREPARE",
            TxnState::Prepared => "PREPARED",
            TxnState::Committed => "COMMITTED",
            TxnState::Visible => "VISIBLE",
            TxnState::Aborted => "ABORTED",
        }
    }

    fn is_finished(self) -> bool {
        matches!(self, TxnState::Visible | TxnState::Aborted)
    }
}

/// One transaction.
#[derive(Debug, Clone)]
pub struct TxnRecord {
    /// Txn id.
    pub txn_id: i64,
    /// Its label.
    pub label: String,
    /// Target table.
    pub table: String,
    /// Current state.
    pub state: TxnState,
    /// Abort reason ("" unless aborted).
    pub reason: String,
    /// When it reached a final state.
    pub finished_at: Option<Instant>,
    /// When it became COMMITTED (publish pending).
    pub committed_at: Option<Instant>,
}

/// What an existing label means to a new begin (spec §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingJob {
    /// PREPARE / PREPARED: `ExistingJobStatus: RUNNING`.
    Running,
    /// COMMITTED / VISIBLE: `ExistingJobStatus: FINISHED`.
    Finished,
}

impl ExistingJob {
    /// The `ExistingJobStatus` text.
    pub fn name(self) -> &'static str {
        match self {
            ExistingJob::Running => "RUNNING",
            ExistingJob::Finished => "FINISHED",
        }
    }
}

/// Label retention settings (FE configs, spec §10.5).
#[derive(Debug, Clone)]
pub struct LabelRetention {
    /// `label_keep_max_second` (default 3 days).
    pub keep_max: Duration,
    /// `label_keep_max_num` (default 1000 per database).
    pub keep_max_num: usize,
    /// `label_clean_interval_second` (default 4 h).
    pub clean_interval: Duration,
}

impl Default for LabelRetention {
    fn default() -> Self {
        LabelRetention {
            keep_max: Duration::from_secs(3 * 24 * 3600),
            keep_max_num: 1000,
            clean_interval: Duration::from_secs(4 * 3600),
        }
    }
}

/// The txns of one database.
#[derive(Debug, Default)]
pub struct LabelStore {
    by_label: HashMap<String, Vec<i64>>,
    txns: BTreeMap<i64, TxnRecord>,
}

impl LabelStore {
    /// Check whether `label` may start a new txn.
    pub fn check_begin(&self, label: &str) -> Result<(), ExistingJob> {
        let Some(ids) = self.by_label.get(label) else {
            return Ok(());
        };
        for id in ids {
            match self.txns.get(id).map(|t| t.state) {
                Some(TxnState::Prepare | TxnState::Prepared) => return Err(ExistingJob::Running),
                Some(TxnState::Committed | TxnState::Visible) => return Err(ExistingJob::Finished),
                _ => {}
            }
        }
        Ok(())
    }

    /// Record a new running txn.
    pub fn begin(&mut self, txn_id: i64, label: &str, table: &str) {
        self.by_label
            .entry(label.to_string())
            .or_default()
            .push(txn_id);
        self.txns.insert(
            txn_id,
            TxnRecord {
                txn_id,
                label: label.to_string(),
                table: table.to_string(),
                state: TxnState::Prepare,
                reason: String::new(),
                finished_at: None,
                committed_at: None,
            },
        );
    }

    /// Move a txn to `state`.
    pub fn set_state(&mut self, txn_id: i64, state: TxnState, reason: &str) {
        if let Some(txn) = self.txns.get_mut(&txn_id) {
            txn.state = state;
            txn.reason = reason.to_string();
            if state.is_finished() {
                txn.finished_at = Some(Instant::now());
            }
            if state == TxnState::Committed {
                txn.committed_at = Some(Instant::now());
            }
        }
    }

    /// The newest txn of a label.
    pub fn latest(&self, label: &str) -> Option<&TxnRecord> {
        let ids = self.by_label.get(label)?;
        ids.iter()
            .filter_map(|id| self.txns.get(id))
            .max_by_key(|t| t.txn_id)
    }

    /// A txn by id.
    pub fn get(&self, txn_id: i64) -> Option<&TxnRecord> {
        self.txns.get(&txn_id)
    }

    /// Publish: COMMITTED txns older than `delay` become VISIBLE.
    pub fn publish_committed(&mut self, delay: Duration) {
        let now = Instant::now();
        for txn in self.txns.values_mut() {
            if txn.state == TxnState::Committed
                && txn
                    .committed_at
                    .is_some_and(|at| now.duration_since(at) >= delay)
            {
                txn.state = TxnState::Visible;
                txn.finished_at = Some(now);
            }
        }
    }

    /// Ids of txns not yet finished (PREPARE, PREPARED).
    pub fn running_txn_ids(&self) -> Vec<i64> {
        self.txns
            .values()
            .filter(|t| matches!(t.state, TxnState::Prepare | TxnState::Prepared))
            .map(|t| t.txn_id)
            .collect()
    }

    /// Number of txns remembered.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True when no txn is remembered.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// One run of the label cleaner (`removeExpiredTxns`).
    pub fn clean(&mut self, retention: &LabelRetention) {
        let now = Instant::now();
        let total = self.txns.len();
        let mut to_drop = Vec::new();
        // Oldest txns first.
        for (id, txn) in &self.txns {
            if !txn.state.is_finished() {
                continue;
            }
            let expired = txn
                .finished_at
                .is_some_and(|at| now.duration_since(at) >= retention.keep_max);
            let over_cap = total - to_drop.len() > retention.keep_max_num;
            if expired || over_cap {
                to_drop.push(*id);
            }
        }
        for id in to_drop {
            if let Some(txn) = self.txns.remove(&id) {
                if let Some(ids) = self.by_label.get_mut(&txn.label) {
                    ids.retain(|x| *x != id);
                    if ids.is_empty() {
                        self.by_label.remove(&txn.label);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aborted_label_is_reusable_and_finished_is_not() {
        let mut store = LabelStore::default();
        store.begin(1, "l", "t");
        assert_eq!(store.check_begin("l"), Err(ExistingJob::Running));
        store.set_state(1, TxnState::Aborted, "x");
        assert_eq!(store.check_begin("l"), Ok(()));
        store.begin(2, "l", "t");
        store.set_state(2, TxnState::Visible, "");
        assert_eq!(store.check_begin("l"), Err(ExistingJob::Finished));
        assert_eq!(store.latest("l").unwrap().txn_id, 2);
    }

    #[test]
    fn cleaner_caps_finished_txns_per_database() {
        let mut store = LabelStore::default();
        for id in 0..10 {
            store.begin(id, &format!("l{id}"), "t");
            store.set_state(id, TxnState::Visible, "");
        }
        let retention = LabelRetention {
            keep_max_num: 4,
            ..LabelRetention::default()
        };
        store.clean(&retention);
        assert_eq!(store.len(), 4);
        assert!(store.latest("l5").is_none());
        assert!(store.latest("l6").is_some());
    }

    #[test]
    fn cleaner_drops_expired() {
        let mut store = LabelStore::default();
        store.begin(1, "a", "t");
        store.set_state(1, TxnState::Visible, "");
        store.begin(2, "b", "t");
        let retention = LabelRetention {
            keep_max: Duration::ZERO,
            ..LabelRetention::default()
        };
        store.clean(&retention);
        assert!(store.latest("a").is_none());
        assert!(store.latest("b").is_some(), "running txns are kept");
    }
}
