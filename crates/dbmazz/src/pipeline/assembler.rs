//! Transaction assembly: decoded pgoutput messages in, committed transactions out.
//!
//! * A plain transaction (Begin … Commit) is sent by PostgreSQL only after it committed, so
//!   its changes pass straight through — nothing is buffered, whatever its size.
//! * A streamed transaction (protocol v2+, `streaming`) arrives in chunks (Stream Start xid …
//!   Stream Stop) interleaved with others before it commits. Its changes are buffered per xid
//!   and released at Stream Commit, dropped at Stream Abort — or, when the abort names a
//!   subtransaction, only that subtransaction's changes are dropped.
//! * Buffered changes beyond `max_buffered_bytes` spill the largest transaction to a file.
//! * Releasing a committed streamed transaction is a *replay* that the caller pulls item by
//!   item ([`TransactionAssembler::next_replayed`]), so it can stop when the pipeline is full.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use super::change::{ChangeKind, OldImage, RowChange, RowImage};
use super::error::PipelineError;
use super::spill::{SpillReader, SpillRecord, SpillWriter};
use crate::decode::{LogicalMessage, OldTuple, TupleData};
use crate::schema::{RelationCache, RelationUpdate, TableSchema};
use crate::Lsn;

/// What leaves the assembler, in commit order.
#[derive(Debug, Clone)]
pub enum Assembled {
    /// A committed transaction starts (its commit LSN is known up front).
    Begin {
        commit_lsn: Lsn,
        commit_time: i64,
    },
    Change(RowChange),
    Truncate {
        tables: Vec<Arc<TableSchema>>,
        commit_lsn: Lsn,
    },
    /// The transaction is complete; `end_lsn` is where the slot may resume after it.
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
}

/// Figures for /status and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AssemblerStats {
    pub streamed_open: usize,
    pub buffered_bytes: usize,
    pub spilled_transactions: u64,
    pub spilled_bytes: u64,
    pub aborted_transactions: u64,
    pub aborted_subtransactions: u64,
}

#[derive(Debug)]
enum Buffer {
    Memory(Vec<SpillRecord>),
    File(SpillWriter),
}

#[derive(Debug)]
struct StreamedTransaction {
    buffer: Buffer,
    memory_bytes: usize,
    aborted_subxids: HashSet<u32>,
}

#[derive(Debug)]
enum ReplaySource {
    Memory(std::vec::IntoIter<SpillRecord>),
    File(SpillReader),
}

#[derive(Debug)]
struct Replay {
    source: ReplaySource,
    aborted_subxids: HashSet<u32>,
    commit_lsn: Lsn,
    end_lsn: Lsn,
    commit_time: i64,
    begun: bool,
}

#[derive(Debug, Clone, Copy)]
struct OpenTransaction {
    commit_lsn: Lsn,
    commit_time: i64,
}

pub struct TransactionAssembler {
    relations: RelationCache,
    /// Every schema version a buffered change may refer to.
    schemas_by_version: HashMap<u64, Arc<TableSchema>>,
    open: Option<OpenTransaction>,
    streaming_xid: Option<u32>,
    streamed: HashMap<u32, StreamedTransaction>,
    replays: VecDeque<Replay>,
    spill_dir: PathBuf,
    max_buffered_bytes: usize,
    stats: AssemblerStats,
}

impl TransactionAssembler {
    /// Key columns from the configuration (see [`crate::schema::KeyOverrides`]).
    pub fn set_key_overrides(&mut self, keys: crate::schema::KeyOverrides) {
        self.relations.set_key_overrides(keys);
    }

    pub fn new(spill_dir: PathBuf, max_buffered_bytes: usize) -> Self {
        TransactionAssembler {
            relations: RelationCache::new(),
            schemas_by_version: HashMap::new(),
            open: None,
            streaming_xid: None,
            streamed: HashMap::new(),
            replays: VecDeque::new(),
            spill_dir,
            max_buffered_bytes,
            stats: AssemblerStats::default(),
        }
    }

    pub fn stats(&self) -> AssemblerStats {
        // Bytes in spill files still being written count as they are written (a large
        // transaction can spill for minutes before its commit).
        let spilling: u64 = self
            .streamed
            .values()
            .map(|transaction| match &transaction.buffer {
                Buffer::File(writer) => writer.bytes(),
                Buffer::Memory(_) => 0,
            })
            .sum();
        AssemblerStats {
            streamed_open: self.streamed.len(),
            spilled_bytes: self.stats.spilled_bytes + spilling,
            ..self.stats
        }
    }

    /// Nothing open or buffered: every message received so far has fully left.
    pub fn is_idle(&self) -> bool {
        self.open.is_none()
            && self.streaming_xid.is_none()
            && self.streamed.is_empty()
            && self.replays.is_empty()
    }

    /// A committed streamed transaction is being released: pull it before reading more.
    pub fn is_replaying(&self) -> bool {
        !self.replays.is_empty()
    }

    /// Handles one message; pass-through output goes to `out`.
    pub fn process(
        &mut self,
        message: LogicalMessage,
        out: &mut VecDeque<Assembled>,
    ) -> Result<(), PipelineError> {
        use LogicalMessage as M;
        match message {
            M::Begin {
                final_lsn,
                commit_time,
                ..
            } => {
                self.open = Some(OpenTransaction {
                    commit_lsn: final_lsn,
                    commit_time,
                });
                out.push_back(Assembled::Begin {
                    commit_lsn: final_lsn,
                    commit_time,
                });
            }
            M::Commit {
                commit_lsn,
                end_lsn,
                commit_time,
                ..
            } => {
                if self.open.take().is_none() {
                    return Err(unexpected("Commit", "without a Begin"));
                }
                out.push_back(Assembled::Commit {
                    commit_lsn,
                    end_lsn,
                    commit_time,
                });
            }
            M::Relation(relation) => {
                let update = self.relations.apply(&relation);
                let schema = Arc::clone(update.schema());
                if !matches!(update, RelationUpdate::Unchanged(_)) {
                    self.schemas_by_version.insert(schema.version, schema);
                }
            }
            M::Insert {
                xid,
                relation_oid,
                new,
            } => {
                let schema = self.schema(relation_oid, "Insert", &new)?;
                let record = SpillRecord::Change {
                    subxid: xid.unwrap_or(0),
                    kind: ChangeKind::Insert,
                    schema_version: schema.version,
                    new: Some(RowImage::from_tuple(&new)),
                    old: None,
                };
                self.route(xid, schema, record, out)?;
            }
            M::Update {
                xid,
                relation_oid,
                old,
                new,
            } => {
                let schema = self.schema(relation_oid, "Update", &new)?;
                let record = SpillRecord::Change {
                    subxid: xid.unwrap_or(0),
                    kind: ChangeKind::Update,
                    schema_version: schema.version,
                    new: Some(RowImage::from_tuple(&new)),
                    old: old.map(old_image),
                };
                self.route(xid, schema, record, out)?;
            }
            M::Delete {
                xid,
                relation_oid,
                old,
            } => {
                let schema = self.schema(relation_oid, "Delete", old_tuple(&old))?;
                let record = SpillRecord::Change {
                    subxid: xid.unwrap_or(0),
                    kind: ChangeKind::Delete,
                    schema_version: schema.version,
                    new: None,
                    old: Some(old_image(old)),
                };
                self.route(xid, schema, record, out)?;
            }
            M::Truncate {
                xid, relation_oids, ..
            } => {
                let mut tables = Vec::with_capacity(relation_oids.len());
                for oid in relation_oids {
                    let schema = self
                        .relations
                        .get(oid)
                        .ok_or(PipelineError::UnknownRelation {
                            oid,
                            message: "Truncate",
                        })?;
                    tables.push(Arc::clone(schema));
                }
                match xid {
                    Some(xid) => {
                        let record = SpillRecord::Truncate {
                            subxid: xid,
                            schema_versions: tables.iter().map(|table| table.version).collect(),
                        };
                        self.buffer(record)?;
                    }
                    None => {
                        let open = self.open_transaction("Truncate")?;
                        out.push_back(Assembled::Truncate {
                            tables,
                            commit_lsn: open.commit_lsn,
                        });
                    }
                }
            }
            M::StreamStart { xid, .. } => {
                self.streaming_xid = Some(xid);
                self.streamed
                    .entry(xid)
                    .or_insert_with(|| StreamedTransaction {
                        buffer: Buffer::Memory(Vec::new()),
                        memory_bytes: 0,
                        aborted_subxids: HashSet::new(),
                    });
            }
            M::StreamStop => self.streaming_xid = None,
            M::StreamCommit {
                xid,
                commit_lsn,
                end_lsn,
                commit_time,
                ..
            } => self.release(xid, commit_lsn, end_lsn, commit_time)?,
            M::StreamAbort { xid, subxid, .. } => self.abort(xid, subxid),
            // Not relayed: Origin (replicated-from info), Type (we map by OID), logical
            // decoding Messages (nothing to apply).
            M::Origin { .. } | M::Type { .. } | M::Message { .. } => {}
            M::BeginPrepare { .. }
            | M::Prepare { .. }
            | M::CommitPrepared { .. }
            | M::RollbackPrepared { .. }
            | M::StreamPrepare { .. } => {
                return Err(unexpected(
                    message_kind_two_phase(),
                    "(two-phase decoding is never requested by dbmazz)",
                ))
            }
        }
        Ok(())
    }

    /// The next item of the committed streamed transaction being released, if any.
    pub fn next_replayed(&mut self) -> Result<Option<Assembled>, PipelineError> {
        let Some(replay) = self.replays.front_mut() else {
            return Ok(None);
        };
        if !replay.begun {
            replay.begun = true;
            return Ok(Some(Assembled::Begin {
                commit_lsn: replay.commit_lsn,
                commit_time: replay.commit_time,
            }));
        }
        loop {
            let record = match &mut replay.source {
                ReplaySource::Memory(records) => records.next(),
                ReplaySource::File(reader) => reader.next_record()?,
            };
            let Some(record) = record else {
                let done = Assembled::Commit {
                    commit_lsn: replay.commit_lsn,
                    end_lsn: replay.end_lsn,
                    commit_time: replay.commit_time,
                };
                self.replays.pop_front();
                return Ok(Some(done));
            };
            let subxid = match &record {
                SpillRecord::Change { subxid, .. } | SpillRecord::Truncate { subxid, .. } => {
                    *subxid
                }
            };
            if replay.aborted_subxids.contains(&subxid) {
                continue;
            }
            let (commit_lsn, commit_time) = (replay.commit_lsn, replay.commit_time);
            return self.materialize(record, commit_lsn, commit_time).map(Some);
        }
    }

    fn materialize(
        &self,
        record: SpillRecord,
        commit_lsn: Lsn,
        commit_time: i64,
    ) -> Result<Assembled, PipelineError> {
        let lookup = |version: u64| {
            self.schemas_by_version
                .get(&version)
                .cloned()
                .ok_or(unexpected(
                    "buffered change",
                    "with an unknown schema version",
                ))
        };
        Ok(match record {
            SpillRecord::Change {
                kind,
                schema_version,
                new,
                old,
                ..
            } => Assembled::Change(RowChange {
                kind,
                schema: lookup(schema_version)?,
                new,
                old,
                commit_lsn,
                commit_time,
            }),
            SpillRecord::Truncate {
                schema_versions, ..
            } => Assembled::Truncate {
                tables: schema_versions
                    .into_iter()
                    .map(lookup)
                    .collect::<Result<_, _>>()?,
                commit_lsn,
            },
        })
    }

    fn schema(
        &self,
        relation_oid: u32,
        message: &'static str,
        tuple: &TupleData,
    ) -> Result<Arc<TableSchema>, PipelineError> {
        let schema = self
            .relations
            .get(relation_oid)
            .ok_or(PipelineError::UnknownRelation {
                oid: relation_oid,
                message,
            })?;
        if tuple.len() != schema.columns.len() {
            return Err(PipelineError::ColumnCountMismatch {
                table: schema.name.to_string(),
                message,
                expected: schema.columns.len(),
                got: tuple.len(),
            });
        }
        Ok(Arc::clone(schema))
    }

    fn open_transaction(&self, message: &'static str) -> Result<OpenTransaction, PipelineError> {
        self.open
            .ok_or(unexpected(message, "outside a transaction"))
    }

    /// A change either passes through (plain transaction) or is buffered (streamed).
    fn route(
        &mut self,
        xid: Option<u32>,
        schema: Arc<TableSchema>,
        record: SpillRecord,
        out: &mut VecDeque<Assembled>,
    ) -> Result<(), PipelineError> {
        if xid.is_some() {
            return self.buffer(record);
        }
        let open = self.open_transaction("row change")?;
        let SpillRecord::Change { kind, new, old, .. } = record else {
            return Ok(());
        };
        out.push_back(Assembled::Change(RowChange {
            kind,
            schema,
            new,
            old,
            commit_lsn: open.commit_lsn,
            commit_time: open.commit_time,
        }));
        Ok(())
    }

    fn buffer(&mut self, record: SpillRecord) -> Result<(), PipelineError> {
        let Some(xid) = self.streaming_xid else {
            return Err(unexpected("streamed change", "outside Stream Start/Stop"));
        };
        let Some(transaction) = self.streamed.get_mut(&xid) else {
            return Err(unexpected("streamed change", "for an unknown transaction"));
        };
        match &mut transaction.buffer {
            Buffer::File(writer) => writer.append(&record)?,
            Buffer::Memory(records) => {
                let bytes = record_bytes(&record);
                records.push(record);
                transaction.memory_bytes += bytes;
                self.stats.buffered_bytes += bytes;
                if self.stats.buffered_bytes > self.max_buffered_bytes {
                    self.spill_largest()?;
                }
            }
        }
        Ok(())
    }

    fn spill_largest(&mut self) -> Result<(), PipelineError> {
        let largest = self
            .streamed
            .iter()
            .filter(|(_, transaction)| matches!(transaction.buffer, Buffer::Memory(_)))
            .max_by_key(|(_, transaction)| transaction.memory_bytes)
            .map(|(xid, _)| *xid);
        let Some(xid) = largest else {
            return Ok(());
        };
        let Some(transaction) = self.streamed.get_mut(&xid) else {
            return Ok(());
        };
        let mut writer = SpillWriter::create(&self.spill_dir, xid)?;
        if let Buffer::Memory(records) = &transaction.buffer {
            for record in records {
                writer.append(record)?;
            }
        }
        self.stats.buffered_bytes -= transaction.memory_bytes;
        self.stats.spilled_transactions += 1;
        transaction.memory_bytes = 0;
        transaction.buffer = Buffer::File(writer);
        Ok(())
    }

    fn release(
        &mut self,
        xid: u32,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    ) -> Result<(), PipelineError> {
        // A streamed transaction whose every chunk we missed (resumed mid-way) has no buffer:
        // PostgreSQL then resends it whole, so an unknown xid here cannot carry changes.
        let transaction = self.streamed.remove(&xid);
        if self.streaming_xid == Some(xid) {
            self.streaming_xid = None;
        }
        let (source, aborted_subxids) = match transaction {
            None => (ReplaySource::Memory(Vec::new().into_iter()), HashSet::new()),
            Some(transaction) => {
                self.stats.buffered_bytes -= transaction.memory_bytes;
                let source = match transaction.buffer {
                    Buffer::Memory(records) => ReplaySource::Memory(records.into_iter()),
                    Buffer::File(writer) => {
                        self.stats.spilled_bytes += writer.bytes();
                        ReplaySource::File(writer.into_reader()?)
                    }
                };
                (source, transaction.aborted_subxids)
            }
        };
        self.replays.push_back(Replay {
            source,
            aborted_subxids,
            commit_lsn,
            end_lsn,
            commit_time,
            begun: false,
        });
        Ok(())
    }

    fn abort(&mut self, xid: u32, subxid: u32) {
        if xid == subxid {
            if let Some(transaction) = self.streamed.remove(&xid) {
                self.stats.buffered_bytes -= transaction.memory_bytes;
                if let Buffer::File(writer) = transaction.buffer {
                    // Written all the same: the total stays monotonic.
                    self.stats.spilled_bytes += writer.bytes();
                    writer.discard();
                }
            }
            self.stats.aborted_transactions += 1;
            return;
        }
        self.stats.aborted_subtransactions += 1;
        let Some(transaction) = self.streamed.get_mut(&xid) else {
            return;
        };
        match &mut transaction.buffer {
            Buffer::Memory(records) => {
                let mut freed = 0;
                records.retain(|record| {
                    let keep = match record {
                        SpillRecord::Change { subxid: s, .. }
                        | SpillRecord::Truncate { subxid: s, .. } => *s != subxid,
                    };
                    if !keep {
                        freed += record_bytes(record);
                    }
                    keep
                });
                transaction.memory_bytes -= freed;
                self.stats.buffered_bytes -= freed;
            }
            // Already on disk: skipped when read back.
            Buffer::File(_) => {
                transaction.aborted_subxids.insert(subxid);
            }
        }
    }
}

fn record_bytes(record: &SpillRecord) -> usize {
    const OVERHEAD: usize = 48;
    match record {
        SpillRecord::Change { new, old, .. } => {
            OVERHEAD
                + new.as_ref().map_or(0, RowImage::byte_len)
                + old.as_ref().map_or(0, |old| old.image().byte_len())
        }
        SpillRecord::Truncate {
            schema_versions, ..
        } => OVERHEAD + 8 * schema_versions.len(),
    }
}

fn old_image(old: OldTuple) -> OldImage {
    match old {
        OldTuple::Key(tuple) => OldImage::Key(RowImage::from_tuple(&tuple)),
        OldTuple::Full(tuple) => OldImage::Full(RowImage::from_tuple(&tuple)),
    }
}

fn old_tuple(old: &OldTuple) -> &TupleData {
    match old {
        OldTuple::Key(tuple) | OldTuple::Full(tuple) => tuple,
    }
}

fn message_kind_two_phase() -> &'static str {
    "two-phase message"
}

fn unexpected(message: &'static str, context: &'static str) -> PipelineError {
    PipelineError::UnexpectedMessage { message, context }
}
