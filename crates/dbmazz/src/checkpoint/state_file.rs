//! The local state file (`<state_dir>/state.json`), written atomically (temp file, fsync,
//! rename, fsync of the directory), so a crash leaves either the old or the new version.
//!
//! The slot remains the authority on the stream position; the file records which slot this
//! state belongs to and the last durable position we reported, so a slot that vanished or
//! moved backwards is detected and reported instead of silently resynchronised.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::snapshot_state::SnapshotState;
use crate::Lsn;

const FILE_NAME: &str = "state.json";
/// Version 2 added the optional `snapshot` section; version 1 files (without it) still load.
const FORMAT_VERSION: u32 = 2;
const READABLE_VERSIONS: [u32; 2] = [1, 2];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    pub format_version: u32,
    pub slot: String,
    pub database: String,
    pub system_identifier: String,
    /// Last position reported to PostgreSQL as flushed (`X/Y`).
    pub last_durable_lsn: String,
    /// The current (or last) snapshot's plan and progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotState>,
    /// Snapshots of single tables taken while streaming (a requested re-snapshot, or a table
    /// added to the publication later), one per table, the latest; an unfinished one is
    /// resumed at the next start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table_snapshots: Vec<SnapshotState>,
    /// Published tables whose existing rows this state accounts for (snapshotted, or present
    /// when the state began); a published table outside it gets a snapshot of its own.
    /// `None` in files written before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_tables: Option<std::collections::BTreeSet<String>>,
    /// The leaf partitions of each partitioned table whose rows this state accounts for
    /// (copied by a snapshot, or present when the record began): a leaf found outside it
    /// was attached later and gets a snapshot of its own. `None` in files written before
    /// this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<LeafPartitions>,
    /// The file (`pg_class.relfilenode`) of each recorded leaf partition at the last check. A
    /// new file means the partition was truncated or rewritten; a TRUNCATE of one partition is
    /// not replicated when publishing via the root, so it is reported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partition_files: BTreeMap<String, u32>,
    /// For each known table, the catalog rows that put it in the publication at the last
    /// check (`source::publication_membership`): none of them left means the table was
    /// removed and added back, and the changes made meanwhile were never streamed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub publication_members: BTreeMap<String, BTreeSet<u32>>,
    /// Tables copied in fresh transactions (`X/Y` each): their stream changes committed
    /// before that position may update rows the copy missed, so the values PostgreSQL did not
    /// send with them are read from it (`sink/starrocks/sink/unsent.rs`). Kept until the
    /// durable position passes it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fill_unsent_before: BTreeMap<String, String>,
}

/// Partitioned table → its leaf partitions (`schema.table` each).
pub type LeafPartitions = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file {path} is not valid ({reason}); move it away if you mean to start over")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "state_dir {dir} is not writable ({source}): point state_dir at a directory dbmazz can \
         create and write (it keeps its checkpoint there)"
    )]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "state_dir {dir} is full, and {mib} MiB of it are spill files an earlier run left \
         (killed while a large transaction was received): dbmazz removes them at start once it \
         holds the slot — delete {dir}/spill if no dbmazz runs on this state_dir, or free space"
    )]
    FullOfSpill { dir: PathBuf, mib: u64 },
}

/// Creates `state_dir` and writes (then removes) a probe file in it: checked before the
/// publication and the slot are created, so an unusable directory leaves nothing behind in
/// PostgreSQL.
pub fn check_writable(state_dir: &Path) -> Result<(), StateFileError> {
    let probe = state_dir.join(".dbmazz-write-check");
    let attempt = fs::create_dir_all(state_dir)
        .and_then(|()| fs::write(&probe, b"ok"))
        .and_then(|()| fs::remove_file(&probe));
    attempt.map_err(|source| {
        let full = source.kind() == io::ErrorKind::StorageFull || source.raw_os_error() == Some(28);
        let leftover = spill_bytes(&state_dir.join("spill"));
        if full && leftover > 0 {
            return StateFileError::FullOfSpill {
                dir: state_dir.to_path_buf(),
                mib: leftover.div_ceil(1 << 20),
            };
        }
        StateFileError::NotWritable {
            dir: state_dir.to_path_buf(),
            source,
        }
    })
}

/// Bytes in the spill files under `dir`.
fn spill_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

impl StateFile {
    pub fn new(slot: &str, database: &str, system_identifier: &str, durable: Lsn) -> Self {
        StateFile {
            format_version: FORMAT_VERSION,
            slot: slot.to_string(),
            database: database.to_string(),
            system_identifier: system_identifier.to_string(),
            last_durable_lsn: durable.to_string(),
            snapshot: None,
            table_snapshots: Vec::new(),
            known_tables: None,
            partitions: None,
            partition_files: BTreeMap::new(),
            publication_members: BTreeMap::new(),
            fill_unsent_before: BTreeMap::new(),
        }
    }

    /// Takes over what `previous` (the same slot's earlier file) recorded about snapshots,
    /// tables and partitions; the position is this file's own.
    pub fn carry_records(&mut self, previous: StateFile) {
        // Every field named, so that a new one has to be placed here or above.
        let StateFile {
            format_version: _,
            slot: _,
            database: _,
            system_identifier: _,
            last_durable_lsn: _,
            snapshot,
            table_snapshots,
            known_tables,
            partitions,
            partition_files,
            publication_members,
            // Positions of the old slot's stream: a new slot starts past them.
            fill_unsent_before: _,
        } = previous;
        self.snapshot = snapshot;
        self.table_snapshots = table_snapshots;
        self.known_tables = known_tables;
        self.partitions = partitions;
        self.partition_files = partition_files;
        self.publication_members = publication_members;
    }

    /// Forgets the known tables that are not `published` (`schema.table`), except those
    /// `busy` keeps for now, with their partition records, and returns them: they left the
    /// publication, and one published again must be copied anew.
    pub fn forget_unpublished(
        &mut self,
        published: &BTreeSet<String>,
        busy: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let Some(known) = self.known_tables.as_mut() else {
            return Vec::new();
        };
        let left: Vec<String> = known
            .iter()
            .filter(|table| !published.contains(*table) && !busy(table))
            .cloned()
            .collect();
        known.retain(|table| !left.contains(table));
        self.publication_members
            .retain(|table, _| !left.contains(table));
        if let Some(partitions) = self.partitions.as_mut() {
            for table in &left {
                for leaf in partitions.remove(table).unwrap_or_default() {
                    self.partition_files.remove(&leaf);
                }
            }
        }
        left
    }

    /// Compares the publication's `members` with the record of each known table (except
    /// those `busy` keeps for now) and records them. Returns the tables none of whose
    /// recorded membership rows are left: removed from the publication and added back since
    /// the last check, so they must be copied anew. Also returns whether the record changed.
    pub fn renew_membership(
        &mut self,
        members: &BTreeMap<String, BTreeSet<u32>>,
        busy: impl Fn(&str) -> bool,
    ) -> (Vec<String>, bool) {
        let Some(known) = self.known_tables.as_ref() else {
            return (Vec::new(), false);
        };
        let mut readded = Vec::new();
        let mut changed = false;
        for (table, current) in members {
            if !known.contains(table) || busy(table) {
                continue;
            }
            match self.publication_members.get(table) {
                Some(recorded) if recorded == current => continue,
                Some(recorded) if recorded.is_disjoint(current) => readded.push(table.clone()),
                _ => {}
            }
            self.publication_members
                .insert(table.clone(), current.clone());
            changed = true;
        }
        let before = self.publication_members.len();
        self.publication_members
            .retain(|table, _| known.contains(table));
        (readded, changed || self.publication_members.len() != before)
    }

    /// Widens `table`'s window of changes that get unsent values from the source (see
    /// `fill_unsent_before`) to `lsn`, for a chunk read in a fresh transaction.
    pub fn widen_fill_window(&mut self, table: &str, lsn: Option<crate::Lsn>) {
        let Some(lsn) = lsn else { return };
        let window = self
            .fill_unsent_before
            .entry(table.to_string())
            .or_insert_with(|| lsn.to_string());
        if window
            .parse::<crate::Lsn>()
            .is_ok_and(|recorded| recorded < lsn)
        {
            *window = lsn.to_string();
        }
    }

    /// The windows the durable position has not passed yet; the others are forgotten.
    pub fn fill_windows(&mut self) -> Vec<(String, crate::Lsn)> {
        let durable: crate::Lsn = self.last_durable_lsn.parse().unwrap_or(crate::Lsn::ZERO);
        self.fill_unsent_before
            .retain(|_, lsn| lsn.parse::<crate::Lsn>().is_ok_and(|lsn| lsn > durable));
        self.fill_unsent_before
            .iter()
            .filter_map(|(table, lsn)| Some((table.clone(), lsn.parse().ok()?)))
            .collect()
    }

    /// The highest snapshot epoch recorded (initial or per table); 0 when none.
    pub fn last_epoch(&self) -> u64 {
        self.snapshot
            .iter()
            .chain(&self.table_snapshots)
            .map(|snapshot| snapshot.epoch)
            .max()
            .unwrap_or(0)
    }

    /// The recorded snapshot of one table taken while streaming.
    pub fn table_snapshot_mut(&mut self, table: &str) -> Option<&mut SnapshotState> {
        self.table_snapshots
            .iter_mut()
            .find(|snapshot| snapshot.tables.iter().any(|planned| planned.table == table))
    }

    /// Records a new snapshot of one table (replacing an earlier one of it) and counts the
    /// table as known.
    pub fn begin_table_snapshot(&mut self, plan: SnapshotState) {
        for planned in &plan.tables {
            self.table_snapshots
                .retain(|snapshot| snapshot.tables.iter().all(|t| t.table != planned.table));
            self.known_tables
                .get_or_insert_with(Default::default)
                .insert(planned.table.clone());
        }
        self.record_partitions(&plan);
        self.table_snapshots.push(plan);
    }

    /// Counts the leaf partitions a plan reads as copied (added to what is recorded).
    pub fn record_partitions(&mut self, plan: &SnapshotState) {
        let recorded = self.partitions.get_or_insert_with(Default::default);
        for (table, leaves) in plan.leaf_partitions() {
            recorded.entry(table).or_default().extend(leaves);
        }
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    pub fn durable(&self) -> Option<Lsn> {
        self.last_durable_lsn.parse().ok()
    }

    /// Reads the file; `None` when there is none yet.
    pub fn load(state_dir: &Path) -> Result<Option<Self>, StateFileError> {
        let path = Self::path(state_dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateFileError::Io { path, source }),
        };
        let mut state: StateFile =
            serde_json::from_str(&text).map_err(|error| StateFileError::Invalid {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        if !READABLE_VERSIONS.contains(&state.format_version) || state.durable().is_none() {
            return Err(StateFileError::Invalid {
                path,
                reason: format!("unsupported format_version {}", state.format_version),
            });
        }
        state.format_version = FORMAT_VERSION;
        Ok(Some(state))
    }

    /// Writes atomically.
    pub fn store(&self, state_dir: &Path) -> Result<(), StateFileError> {
        let path = Self::path(state_dir);
        let io_error = |source| StateFileError::Io {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|error| StateFileError::Invalid {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        write_atomically(state_dir, FILE_NAME, text.as_bytes()).map_err(io_error)
    }
}

/// Writes `state_dir/name` so that a crash leaves the old or the new content: a temporary
/// file, fsync, rename over the old one, fsync of the directory.
pub(super) fn write_atomically(state_dir: &Path, name: &str, content: &[u8]) -> io::Result<()> {
    fs::create_dir_all(state_dir)?;
    let temporary = state_dir.join(format!("{name}.tmp"));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(content)?;
    file.sync_all()?;
    fs::rename(&temporary, state_dir.join(name))?;
    if let Ok(dir) = fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_windows_widen_and_end_once_the_durable_position_passes_them() {
        let mut state = StateFile::new("slot", "db", "1", Lsn(0x100));
        state.widen_fill_window("public.t", Some(Lsn(0x300)));
        state.widen_fill_window("public.t", Some(Lsn(0x200)));
        state.widen_fill_window("public.t", None);
        state.widen_fill_window("public.u", Some(Lsn(0x80)));
        assert_eq!(state.fill_windows(), [("public.t".to_string(), Lsn(0x300))]);
        let dir = std::env::temp_dir().join(format!("dbmazz-fill-windows-{}", std::process::id()));
        state.store(&dir).unwrap();
        let mut loaded = StateFile::load(&dir).unwrap().unwrap();
        assert_eq!(
            loaded.fill_windows(),
            [("public.t".to_string(), Lsn(0x300))]
        );
        loaded.last_durable_lsn = Lsn(0x300).to_string();
        assert!(loaded.fill_windows().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unusable_state_dir_is_named_before_anything_is_created() {
        let base = std::env::temp_dir().join(format!("dbmazz-writable-{}", std::process::id()));
        fs::create_dir_all(&base).unwrap();
        check_writable(&base.join("fresh")).unwrap();
        assert!(base.join("fresh").is_dir());
        assert!(!base.join("fresh/.dbmazz-write-check").exists());
        let file = base.join("a-file");
        fs::write(&file, b"x").unwrap();
        let error = check_writable(&file.join("state")).unwrap_err().to_string();
        assert!(error.starts_with("state_dir "), "{error}");
        assert!(error.contains("not writable"), "{error}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn round_trips_and_reports_garbage() {
        let dir = std::env::temp_dir().join(format!("dbmazz-state-test-{}", std::process::id()));
        assert_eq!(StateFile::load(&dir).unwrap(), None);
        let state = StateFile::new("slot", "db", "7300000000000000001", Lsn(0x1_0000_0010));
        state.store(&dir).unwrap();
        let loaded = StateFile::load(&dir).unwrap().unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.durable(), Some(Lsn(0x1_0000_0010)));
        fs::write(StateFile::path(&dir), "{not json").unwrap();
        let error = StateFile::load(&dir).unwrap_err();
        assert!(error.to_string().contains("not valid"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_new_file_carries_the_records_of_the_previous_one_but_not_its_position() {
        let mut previous = StateFile::new("slot", "db", "1", Lsn(0x10));
        previous.known_tables = Some(BTreeSet::from(["public.t".to_string()]));
        previous.partitions = Some(BTreeMap::from([(
            "public.m".to_string(),
            BTreeSet::from(["public.m_1".to_string()]),
        )]));
        previous.partition_files = BTreeMap::from([("public.m_1".to_string(), 16384)]);
        let mut fresh = StateFile::new("slot", "db", "1", Lsn(0x20));
        fresh.carry_records(previous.clone());
        assert_eq!(fresh.durable(), Some(Lsn(0x20)));
        assert_eq!(fresh.known_tables, previous.known_tables);
        assert_eq!(fresh.partitions, previous.partitions);
        assert_eq!(fresh.partition_files, previous.partition_files);
    }

    #[test]
    fn a_table_whose_membership_rows_all_changed_was_removed_and_added_back() {
        let set = |oids: &[u32]| oids.iter().copied().collect::<BTreeSet<u32>>();
        let mut state = StateFile::new("slot", "db", "1", Lsn(1));
        let tables = ["public.a", "public.b", "public.c"].map(String::from);
        state.known_tables = Some(tables.iter().cloned().collect());
        let first = BTreeMap::from([
            (tables[0].clone(), set(&[10])),
            (tables[1].clone(), set(&[11, 50])),
            (tables[2].clone(), set(&[12])),
        ]);
        assert_eq!(state.renew_membership(&first, |_| false), (vec![], true));
        assert_eq!(state.renew_membership(&first, |_| false), (vec![], false));
        // a: removed and added back; b: its own row went but its schema's stayed (never out);
        // c: busy, judged later.
        let second = BTreeMap::from([
            (tables[0].clone(), set(&[20])),
            (tables[1].clone(), set(&[50])),
            (tables[2].clone(), set(&[22])),
        ]);
        let busy = |table: &str| table == "public.c";
        assert_eq!(
            state.renew_membership(&second, busy),
            (vec![tables[0].clone()], true)
        );
        assert_eq!(state.publication_members[&tables[0]], set(&[20]));
        assert_eq!(state.publication_members[&tables[2]], set(&[12]));
        assert_eq!(
            state.renew_membership(&second, |_| false),
            (vec![tables[2].clone()], true)
        );
        // A table no longer known is forgotten.
        state.known_tables = Some(BTreeSet::from([tables[0].clone()]));
        assert_eq!(state.renew_membership(&second, |_| false), (vec![], true));
        assert_eq!(state.publication_members.len(), 1);
    }

    #[test]
    fn a_table_snapshot_replaces_the_earlier_one_of_its_table_and_makes_it_known() {
        use super::super::snapshot_state::TableSnapshotState;
        let plan = |table: &str, epoch| SnapshotState {
            epoch,
            attempt: 1,
            plan_id: 1,
            replace: false,
            emptied: false,
            tables: vec![TableSnapshotState {
                table: table.into(),
                row_filter: None,
                chunks: Vec::new(),
            }],
        };
        let mut state = StateFile::new("slot", "db", "1", Lsn(1));
        assert_eq!(state.last_epoch(), 0);
        state.snapshot = Some(plan("public.a", 1));
        state.begin_table_snapshot(plan("public.b", 2));
        state.begin_table_snapshot(plan("public.c", 3));
        state.begin_table_snapshot(plan("public.b", 4));
        let recorded: Vec<_> = state
            .table_snapshots
            .iter()
            .map(|plan| (plan.tables[0].table.as_str(), plan.epoch))
            .collect();
        assert_eq!(recorded, [("public.c", 3), ("public.b", 4)]);
        assert_eq!(state.last_epoch(), 4);
        assert_eq!(
            state
                .known_tables
                .clone()
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["public.b", "public.c"]
        );
        assert_eq!(state.table_snapshot_mut("public.b").unwrap().epoch, 4);
        assert!(state.table_snapshot_mut("public.a").is_none());
    }

    #[test]
    fn version_1_files_load_without_a_snapshot_section() {
        let dir = std::env::temp_dir().join(format!("dbmazz-state-v1-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            StateFile::path(&dir),
            r#"{"format_version":1,"slot":"s","database":"d","system_identifier":"1","last_durable_lsn":"0/10"}"#,
        )
        .unwrap();
        let loaded = StateFile::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.snapshot, None);
        assert_eq!(loaded.durable(), Some(Lsn(0x10)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
