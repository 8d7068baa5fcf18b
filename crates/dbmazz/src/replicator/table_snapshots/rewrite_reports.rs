//! Which new leaf files deserve a warning. A partitioned table's leaves all get new files
//! when the table itself is truncated — and that TRUNCATE is replicated — but also when one
//! partition alone is truncated, which pgoutput leaves out for tables published via their
//! root. So a new file found by a catalog check is reported only once the stream has applied
//! everything committed before that check, and only if no TRUNCATE of the table came through
//! since the check before it (a replicated TRUNCATE of the whole table, even a later one,
//! leaves StarRocks right whatever happened to one partition before it).

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::Lsn;

/// How long a finding waits for the stream before it is reported anyway (a paused or stuck
/// stream must not hide it).
const STREAM_WAIT: Duration = Duration::from_secs(120);

/// WAL positions around one catalog check: `from` read before it, `to` after it. A commit the
/// check saw ended before `to`; one the check before it did not see began after that
/// check's `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::replicator) struct CheckWindow {
    pub from: Lsn,
    pub to: Lsn,
}

#[derive(Debug)]
struct Finding {
    table: String,
    leaves: BTreeSet<String>,
    /// The previous check's `from` (none: the first check of this run; then any TRUNCATE
    /// this run applied counts).
    since: Option<Lsn>,
    until: Lsn,
    found: Instant,
}

/// What became of a finding.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::replicator) enum Verdict {
    /// The table's TRUNCATE was replicated: nothing to report.
    Replicated {
        table: String,
        leaves: BTreeSet<String>,
    },
    /// No replicated TRUNCATE explains the new files: a partition truncated alone, or a
    /// rewrite (VACUUM FULL, CLUSTER, a rewriting ALTER).
    Unexplained {
        table: String,
        leaves: BTreeSet<String>,
    },
}

#[derive(Debug, Default)]
pub(in crate::replicator) struct RewriteReports {
    previous_from: Option<Lsn>,
    pending: VecDeque<Finding>,
}

impl RewriteReports {
    /// Leaves of `table` with a new file, found by the check of `window`.
    pub fn found(
        &mut self,
        table: String,
        leaves: BTreeSet<String>,
        window: CheckWindow,
        now: Instant,
    ) {
        self.pending.push_back(Finding {
            table,
            leaves,
            since: self.previous_from,
            until: window.to,
            found: now,
        });
    }

    /// The check of `window` is fully handled: the next one's findings date from it.
    pub fn checked(&mut self, window: CheckWindow) {
        self.previous_from = Some(window.from);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Findings that can be judged now, oldest first: the stream applied everything up to
    /// `applied_through`; `last_truncate` gives a table's latest applied TRUNCATE.
    pub fn judge(
        &mut self,
        applied_through: Lsn,
        last_truncate: impl Fn(&str) -> Option<Lsn>,
        now: Instant,
    ) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        while let Some(finding) = self.pending.front() {
            let truncated = last_truncate(&finding.table)
                .is_some_and(|lsn| finding.since.is_none_or(|since| lsn > since));
            let caught_up = applied_through >= finding.until;
            let waited_enough = now.saturating_duration_since(finding.found) >= STREAM_WAIT;
            if !truncated && !caught_up && !waited_enough {
                break;
            }
            let Some(Finding { table, leaves, .. }) = self.pending.pop_front() else {
                break;
            };
            verdicts.push(if truncated {
                Verdict::Replicated { table, leaves }
            } else {
                Verdict::Unexplained { table, leaves }
            });
        }
        verdicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn window(from: u64, to: u64) -> CheckWindow {
        CheckWindow {
            from: Lsn(from),
            to: Lsn(to),
        }
    }

    #[test]
    fn a_finding_waits_for_the_stream_then_is_reported_without_a_truncate() {
        let now = Instant::now();
        let mut reports = RewriteReports::default();
        reports.checked(window(100, 110));
        reports.found(
            "public.m".into(),
            leaves(&["public.m_eu"]),
            window(200, 210),
            now,
        );
        reports.checked(window(200, 210));
        assert!(
            reports.judge(Lsn(209), |_| None, now).is_empty(),
            "stream behind"
        );
        assert!(!reports.is_empty());
        assert_eq!(
            reports.judge(Lsn(210), |_| None, now),
            [Verdict::Unexplained {
                table: "public.m".into(),
                leaves: leaves(&["public.m_eu"]),
            }]
        );
        assert!(reports.is_empty());
    }

    #[test]
    fn a_truncate_of_the_table_since_the_check_before_explains_the_new_files() {
        let now = Instant::now();
        let mut reports = RewriteReports::default();
        reports.checked(window(100, 110));
        let all = leaves(&["public.m_eu", "public.m_us"]);
        reports.found("public.m".into(), all.clone(), window(200, 210), now);
        // Decided as soon as the TRUNCATE has come through, even before the stream caught up.
        let truncated = |table: &str| (table == "public.m").then_some(Lsn(150));
        assert_eq!(
            reports.judge(Lsn(160), truncated, now),
            [Verdict::Replicated {
                table: "public.m".into(),
                leaves: all,
            }]
        );
        // A TRUNCATE from before the previous check explains nothing new.
        reports.found(
            "public.m".into(),
            leaves(&["public.m_eu"]),
            window(300, 310),
            now,
        );
        assert_eq!(
            reports.judge(Lsn(310), |_| Some(Lsn(90)), now),
            [Verdict::Unexplained {
                table: "public.m".into(),
                leaves: leaves(&["public.m_eu"]),
            }]
        );
    }

    #[test]
    fn the_first_check_of_a_run_counts_any_truncate_applied_in_it() {
        let now = Instant::now();
        let mut reports = RewriteReports::default();
        reports.found(
            "public.m".into(),
            leaves(&["public.m_eu"]),
            window(10, 20),
            now,
        );
        assert_eq!(
            reports.judge(Lsn(5), |_| Some(Lsn(3)), now).len(),
            1,
            "replayed TRUNCATE"
        );
    }

    #[test]
    fn findings_are_judged_in_order_and_a_stuck_stream_does_not_hide_them() {
        let now = Instant::now();
        let mut reports = RewriteReports::default();
        reports.found(
            "public.a".into(),
            leaves(&["public.a_1"]),
            window(10, 20),
            now,
        );
        reports.found(
            "public.b".into(),
            leaves(&["public.b_1"]),
            window(30, 40),
            now,
        );
        // b's TRUNCATE came through but a is still waiting: nothing is judged out of order.
        let b_truncated = |table: &str| (table == "public.b").then_some(Lsn(35));
        assert!(reports.judge(Lsn(0), b_truncated, now).is_empty());
        let later = now + STREAM_WAIT;
        let verdicts = reports.judge(Lsn(0), b_truncated, later);
        assert_eq!(verdicts.len(), 2);
        assert!(matches!(&verdicts[0], Verdict::Unexplained { table, .. } if table == "public.a"));
        assert!(matches!(&verdicts[1], Verdict::Replicated { table, .. } if table == "public.b"));
    }
}
