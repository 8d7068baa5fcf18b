//! Deterministic Stream Load labels (DESIGN §3): every attempt of a batch has the same label,
//! so an attempt that landed without an answer is found by it and not loaded twice. A stream
//! batch whose label an earlier run committed is loaded again under a new one
//! (`stream_load::LabelTaken::LoadAgain`).

use crate::sink::{Batch, BatchOrigin};

use super::super::stream_load::fit_label;

use super::{Loader, StarRocksSink};

impl<L: Loader> StarRocksSink<L> {
    /// The label of load `part` of the `parts` loads `batch` was planned into.
    pub(super) fn label(&self, batch: &Batch, part: usize, parts: usize) -> String {
        batch_label(&self.options.label_prefix, batch, part, parts)
    }
}

/// The deterministic label of load `part` of `batch`, planned into `parts` loads (spec §2:
/// `[-\w]{1,128}`; the prefix is a slot name, at most 63 characters of `[a-z0-9_]`).
fn batch_label(prefix: &str, batch: &Batch, part: usize, parts: usize) -> String {
    let oid = batch.table.relation_oid;
    // A batch planned into several loads names their count: rows of different keys
    // share loads since `plan_loads` groups them by key (before, each run of one column set
    // was a load), so the same part number holds other rows than it did. A replay of a batch
    // that an older version had partly loaded must not find that version's label on rows
    // it did not load (it would skip them); a batch of one load is planned the same either
    // way and keeps its label.
    let part = if parts > 1 {
        format!("{part}of{parts}")
    } else {
        part.to_string()
    };
    let label = match batch.origin {
        // Where the batch starts, where it ends and how many changes it holds: a batch cut
        // by time inside a transaction can end at the same commit LSN with fewer changes in
        // one run than in the replay after a crash, and a label shared by different contents
        // would make the replay's "already loaded" skip the changes the first one lacked.
        BatchOrigin::Stream => format!(
            "dbmazz-{prefix}-{oid}-{:x}-{}-{:x}-{}-{part}",
            batch.first_commit_lsn.0,
            batch.first_change_index,
            batch.last_commit_lsn.0,
            batch.changes.len(),
        ),
        BatchOrigin::Snapshot {
            epoch,
            plan_id,
            attempt,
            chunk,
            part: batch_part,
        } => format!(
            "dbmazz-{prefix}-{oid}-snap{epoch}p{plan_id:x}a{attempt}-{chunk}-{batch_part}-{part}"
        ),
    };
    fit_label(label)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::schema::TableName;
    use crate::schema::TableSchema;
    use crate::Lsn;

    fn batch(origin: BatchOrigin) -> Batch {
        Batch {
            table: Arc::new(TableSchema {
                relation_oid: 16384,
                name: TableName::new("public", "t"),
                replica_identity: crate::decode::ReplicaIdentity::Default,
                columns: Vec::new(),
                version: 1,
            }),
            changes: Vec::new(),
            first_commit_lsn: Lsn(0x1_0000_0010),
            last_commit_lsn: Lsn(0x1_0000_0010),
            first_change_index: 0,
            byte_len: 0,
            origin,
        }
    }

    #[test]
    fn snapshot_labels_differ_from_stream_labels_plans_epochs_attempts_and_chunks() {
        let prefix = "a_slot_name_of_the_longest_kind_allowed_by_postgres_0123456789a";
        let planned = |plan_id, epoch, attempt, chunk, part| {
            batch_label(
                prefix,
                &batch(BatchOrigin::Snapshot {
                    epoch,
                    plan_id,
                    attempt,
                    chunk,
                    part,
                }),
                0,
                1,
            )
        };
        let snapshot = |epoch, attempt, chunk, part| planned(0x5eed, epoch, attempt, chunk, part);
        // Same start and end commit, one change more: a different load.
        let mut longer = batch(BatchOrigin::Stream);
        longer.changes.push(crate::pipeline::RowChange {
            kind: crate::pipeline::ChangeKind::Insert,
            schema: Arc::clone(&longer.table),
            new: None,
            old: None,
            commit_lsn: longer.last_commit_lsn,
            commit_time: 0,
        });
        let labels = [
            batch_label(prefix, &batch(BatchOrigin::Stream), 0, 1),
            batch_label(prefix, &longer, 0, 1),
            snapshot(1, 1, 0, 0),
            snapshot(2, 1, 0, 0),
            snapshot(1, 2, 0, 0),
            snapshot(1, 1, 1, 0),
            snapshot(1, 1, 0, 1),
            snapshot(u64::MAX, u64::MAX, u32::MAX, u32::MAX),
            snapshot(u64::MAX, u64::MAX, u32::MAX, u32::MAX - 1),
            // The same epoch, attempt and chunk of another plan (a state file started over).
            planned(0x5eee, 1, 1, 0, 0),
            planned(u32::MAX, u64::MAX, u64::MAX, u32::MAX, u32::MAX),
        ];
        let distinct: std::collections::HashSet<_> = labels.iter().collect();
        assert_eq!(distinct.len(), labels.len(), "{labels:?}");
        for label in &labels {
            assert!(label.len() <= 128, "{label} is too long");
            assert!(
                label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{label}"
            );
        }
        assert_eq!(
            snapshot(3, 2, 17, 4),
            format!("dbmazz-{prefix}-16384-snap3p5eeda2-17-4-0")
        );
    }

    #[test]
    fn loads_of_a_batch_planned_in_several_parts_name_the_count() {
        let stream = batch(BatchOrigin::Stream);
        let one = batch_label("slot", &stream, 0, 1);
        assert_eq!(one, "dbmazz-slot-16384-100000010-0-100000010-0-0");
        let parts: Vec<String> = (0..3)
            .map(|part| batch_label("slot", &stream, part, 3))
            .collect();
        assert_eq!(parts[1], "dbmazz-slot-16384-100000010-0-100000010-0-1of3");
        // None is the label an older version gave any part of the batch (`...-<part>`), nor
        // the label of a plan into another number of loads.
        let older: Vec<String> = (0..3)
            .map(|part| format!("dbmazz-slot-16384-100000010-0-100000010-0-{part}"))
            .collect();
        assert!(parts.iter().all(|label| !older.contains(label)));
        assert_ne!(batch_label("slot", &stream, 0, 2), parts[0]);
    }
}
