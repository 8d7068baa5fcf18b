//! The durable position: how far the replication slot may be confirmed.
//!
//! D is the end LSN of the newest transaction such that it and every transaction that
//! committed before it are durable in the sink (DESIGN §4). Work handed to the sink is
//! registered with the smallest commit LSN it contains; a transaction is *complete* once its
//! Commit was seen. D advances over complete transactions whose commit LSN is below every
//! outstanding piece of work (and below the transaction still being received).

use std::collections::{BTreeMap, VecDeque};

use crate::Lsn;

/// Identifies one piece of outstanding work (a batch, a truncate, a schema change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkId(u64);

#[derive(Debug, Default)]
pub struct DurabilityTracker {
    next_work: u64,
    /// Outstanding work → smallest commit LSN in it.
    outstanding: BTreeMap<WorkId, Lsn>,
    /// Outstanding work counted per commit LSN, to find the minimum quickly.
    outstanding_by_lsn: BTreeMap<Lsn, usize>,
    /// Complete transactions not yet known durable: (commit LSN, end LSN), ascending.
    complete: VecDeque<(Lsn, Lsn)>,
    /// Commit LSN of the transaction being received (Begin seen, Commit not yet).
    receiving: Option<Lsn>,
    durable: Lsn,
}

impl DurabilityTracker {
    /// Starts from the slot's confirmed position.
    pub fn new(start: Lsn) -> Self {
        DurabilityTracker {
            durable: start,
            ..Default::default()
        }
    }

    pub fn durable(&self) -> Lsn {
        self.durable
    }

    pub fn begin_transaction(&mut self, commit_lsn: Lsn) {
        self.receiving = Some(commit_lsn);
    }

    pub fn commit_transaction(&mut self, commit_lsn: Lsn, end_lsn: Lsn) {
        self.receiving = None;
        debug_assert!(self
            .complete
            .back()
            .is_none_or(|(last, _)| *last <= commit_lsn));
        self.complete.push_back((commit_lsn, end_lsn));
    }

    /// Registers work holding changes whose smallest commit LSN is `min_commit_lsn`.
    pub fn start_work(&mut self, min_commit_lsn: Lsn) -> WorkId {
        self.next_work += 1;
        let id = WorkId(self.next_work);
        self.outstanding.insert(id, min_commit_lsn);
        *self.outstanding_by_lsn.entry(min_commit_lsn).or_default() += 1;
        id
    }

    /// The work is durable in the sink.
    pub fn finish_work(&mut self, id: WorkId) {
        let Some(lsn) = self.outstanding.remove(&id) else {
            return;
        };
        if let Some(count) = self.outstanding_by_lsn.get_mut(&lsn) {
            *count -= 1;
            if *count == 0 {
                self.outstanding_by_lsn.remove(&lsn);
            }
        }
    }

    /// Nothing outstanding nor being received.
    pub fn is_idle(&self) -> bool {
        self.outstanding.is_empty() && self.receiving.is_none() && self.complete.is_empty()
    }

    /// With nothing pending anywhere, the slot may move to the server's WAL end so an idle
    /// publication does not pin WAL. The caller guarantees nothing is buffered upstream.
    pub fn advance_idle(&mut self, wal_end: Lsn) {
        if self.is_idle() && wal_end > self.durable {
            self.durable = wal_end;
        }
    }

    pub fn outstanding_work(&self) -> usize {
        self.outstanding.len()
    }

    /// Moves D over complete transactions older than all pending work; `also_pending` is the
    /// oldest commit LSN held elsewhere (rows still in an open batch).
    pub fn advance(&mut self, also_pending: Option<Lsn>) -> Lsn {
        let barrier = [
            self.outstanding_by_lsn.keys().next().copied(),
            self.receiving,
            also_pending,
        ]
        .into_iter()
        .flatten()
        .min();
        while let Some(&(commit_lsn, end_lsn)) = self.complete.front() {
            if barrier.is_some_and(|barrier| commit_lsn >= barrier) {
                break;
            }
            self.complete.pop_front();
            self.durable = self.durable.max(end_lsn);
        }
        self.durable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(value: u64) -> Lsn {
        Lsn(value)
    }

    #[test]
    fn advances_only_over_transactions_whose_work_is_durable() {
        let mut tracker = DurabilityTracker::new(lsn(5));
        tracker.begin_transaction(lsn(10));
        let a = tracker.start_work(lsn(10));
        tracker.commit_transaction(lsn(10), lsn(11));
        tracker.advance(None);
        tracker.begin_transaction(lsn(20));
        let b = tracker.start_work(lsn(20));
        tracker.commit_transaction(lsn(20), lsn(21));
        tracker.advance(None);
        assert_eq!(tracker.durable(), lsn(5));

        tracker.finish_work(b);
        tracker.advance(None);
        assert_eq!(tracker.durable(), lsn(5), "txn 10 is not durable yet");
        tracker.finish_work(a);
        tracker.advance(None);
        assert_eq!(tracker.durable(), lsn(21));
        assert!(tracker.is_idle());
    }

    #[test]
    fn a_transaction_being_received_blocks_itself_but_not_earlier_ones() {
        let mut tracker = DurabilityTracker::new(Lsn::ZERO);
        tracker.begin_transaction(lsn(10));
        tracker.commit_transaction(lsn(10), lsn(11));
        tracker.advance(None);
        assert_eq!(tracker.durable(), lsn(11), "no work: durable at once");
        tracker.begin_transaction(lsn(30));
        let work = tracker.start_work(lsn(30));
        tracker.finish_work(work);
        tracker.advance(None);
        assert_eq!(tracker.durable(), lsn(11), "txn 30 has not committed yet");
        tracker.commit_transaction(lsn(30), lsn(31));
        tracker.advance(None);
        assert_eq!(tracker.durable(), lsn(31));
    }

    #[test]
    fn work_spanning_transactions_holds_all_of_them() {
        let mut tracker = DurabilityTracker::new(Lsn::ZERO);
        let batch = tracker.start_work(lsn(10));
        tracker.begin_transaction(lsn(10));
        tracker.commit_transaction(lsn(10), lsn(11));
        tracker.advance(None);
        tracker.begin_transaction(lsn(20));
        tracker.commit_transaction(lsn(20), lsn(21));
        tracker.advance(None);
        assert_eq!(tracker.durable(), Lsn::ZERO);
        tracker.finish_work(batch);
        tracker.advance(None);
        assert_eq!(tracker.durable(), lsn(21));
    }

    #[test]
    fn idle_advance_needs_nothing_pending() {
        let mut tracker = DurabilityTracker::new(lsn(100));
        tracker.advance_idle(lsn(500));
        assert_eq!(tracker.durable(), lsn(500));
        let work = tracker.start_work(lsn(600));
        tracker.advance_idle(lsn(900));
        assert_eq!(tracker.durable(), lsn(500));
        tracker.finish_work(work);
        tracker.advance(None);
        tracker.advance_idle(lsn(400));
        assert_eq!(tracker.durable(), lsn(500), "never moves backwards");
    }
}
