//! Spill files of a held table: the stream batches that wait behind a table snapshot (see
//! [`super::dispatcher`]) once they outgrow `pipeline.spill_threshold`, written whole — the
//! same batches, so the same labels — and read back in order when the hold is lifted.
//!
//! Record layout (big-endian): `u32 len` then `len` bytes of `u64 first_commit_lsn,
//! u64 last_commit_lsn, u64 first_change_index, u64 schema_version, u64 byte_len, u32 count`
//! and per change `u8 kind, u64 schema_version, u64 commit_lsn, i64 commit_time, u8 old_kind,
//! u32 new_len, new, u32 old_len, old` (rows in [`RowImage`](super::change::RowImage) layout; kinds as in spill.rs).
//! Only stream batches are held. Files live in the spill directory and are deleted when read
//! (or dropped), and at start.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::change::RowChange;
use super::spill::{get_row_images, kind_code, kind_from_code, put_row_images, SpillError};
use crate::schema::TableSchema;
use crate::sink::{Batch, BatchOrigin};
use crate::Lsn;

/// Batches of one hold of one table, written, then read back once in the same order.
#[derive(Debug)]
pub struct HeldSpill {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: Option<BufReader<File>>,
    /// The shapes of the written rows (a file holds few), by version.
    schemas: HashMap<u64, Arc<TableSchema>>,
    written: u64,
    read: u64,
    scratch: BytesMut,
}

impl HeldSpill {
    pub fn create(dir: &Path, relation_oid: u32, sequence: u64) -> Result<Self, SpillError> {
        let path = dir.join(format!("held-{relation_oid}-{sequence}.spill"));
        let io = |source| SpillError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let file = File::create(&path).map_err(io)?;
        Ok(HeldSpill {
            writer: Some(BufWriter::with_capacity(256 * 1024, file)),
            reader: None,
            path,
            schemas: HashMap::new(),
            written: 0,
            read: 0,
            scratch: BytesMut::new(),
        })
    }

    /// Batches written and not read yet.
    pub fn unread(&self) -> u64 {
        self.written - self.read
    }

    /// Appends a batch; returns the bytes written.
    pub fn write(&mut self, batch: &Batch) -> Result<u64, SpillError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.corrupt());
        };
        self.scratch.clear();
        encode(batch, &mut self.scratch);
        for change in &batch.changes {
            self.schemas
                .entry(change.schema.version)
                .or_insert_with(|| Arc::clone(&change.schema));
        }
        self.schemas
            .entry(batch.table.version)
            .or_insert_with(|| Arc::clone(&batch.table));
        let len = self.scratch.len() as u32;
        writer
            .write_all(&len.to_be_bytes())
            .and_then(|()| writer.write_all(&self.scratch))
            .map_err(|source| SpillError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.written += 1;
        Ok(4 + u64::from(len))
    }

    /// The next batch in write order (the first call ends writing).
    pub fn read_next(&mut self) -> Result<Batch, SpillError> {
        let io = |path: &PathBuf, source| SpillError::Io {
            path: path.clone(),
            source,
        };
        if let Some(mut writer) = self.writer.take() {
            writer.flush().map_err(|source| io(&self.path, source))?;
            let file = File::open(&self.path).map_err(|source| io(&self.path, source))?;
            self.reader = Some(BufReader::with_capacity(256 * 1024, file));
        }
        if self.read >= self.written {
            return Err(self.corrupt());
        }
        let Some(reader) = self.reader.as_mut() else {
            return Err(self.corrupt());
        };
        let mut len = [0u8; 4];
        reader
            .read_exact(&mut len)
            .map_err(|source| io(&self.path, source))?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        reader
            .read_exact(&mut body)
            .map_err(|source| io(&self.path, source))?;
        let batch = decode(Bytes::from(body), &self.schemas).ok_or_else(|| self.corrupt())?;
        self.read += 1;
        Ok(batch)
    }

    fn corrupt(&self) -> SpillError {
        SpillError::Corrupt {
            path: self.path.clone(),
            record: self.read,
        }
    }
}

impl Drop for HeldSpill {
    fn drop(&mut self) {
        self.writer = None;
        self.reader = None;
        let _ = fs::remove_file(&self.path);
    }
}

fn encode(batch: &Batch, out: &mut BytesMut) {
    out.put_u64(batch.first_commit_lsn.0);
    out.put_u64(batch.last_commit_lsn.0);
    out.put_u64(batch.first_change_index);
    out.put_u64(batch.table.version);
    out.put_u64(batch.byte_len as u64);
    out.put_u32(batch.changes.len() as u32);
    for change in &batch.changes {
        out.put_u8(kind_code(change.kind));
        out.put_u64(change.schema.version);
        out.put_u64(change.commit_lsn.0);
        out.put_i64(change.commit_time);
        put_row_images(out, change.new.as_ref(), change.old.as_ref());
    }
}

fn decode(mut body: Bytes, schemas: &HashMap<u64, Arc<TableSchema>>) -> Option<Batch> {
    if body.remaining() < 44 {
        return None;
    }
    let first_commit_lsn = Lsn(body.get_u64());
    let last_commit_lsn = Lsn(body.get_u64());
    let first_change_index = body.get_u64();
    let table = Arc::clone(schemas.get(&body.get_u64())?);
    let byte_len = usize::try_from(body.get_u64()).ok()?;
    let count = body.get_u32() as usize;
    let mut changes = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        if body.remaining() < 25 {
            return None;
        }
        let kind = kind_from_code(body.get_u8())?;
        let schema = Arc::clone(schemas.get(&body.get_u64())?);
        let commit_lsn = Lsn(body.get_u64());
        let commit_time = body.get_i64();
        let (new, old) = get_row_images(&mut body)?;
        changes.push(RowChange {
            kind,
            schema,
            new,
            old,
            commit_lsn,
            commit_time,
        });
    }
    if body.has_remaining() {
        return None;
    }
    Some(Batch {
        table,
        changes,
        first_commit_lsn,
        last_commit_lsn,
        first_change_index,
        byte_len,
        origin: BatchOrigin::Stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::change::{ChangeKind, OldImage, RowImage};
    use crate::schema::{ColumnSchema, TableName};

    fn schema(version: u64) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            relation_oid: 42,
            name: TableName::new("public", "t"),
            replica_identity: crate::decode::ReplicaIdentity::Default,
            columns: vec![ColumnSchema::new("id", 23, -1, true)],
            version,
        })
    }

    fn change(kind: ChangeKind, schema: &Arc<TableSchema>, lsn: u64) -> RowChange {
        let image = |text: &str| RowImage::from_text(&[Some(text), None]);
        let (new, old) = match kind {
            ChangeKind::Insert => (Some(image("1")), None),
            ChangeKind::Update => (Some(image("2")), Some(OldImage::Key(image("1")))),
            ChangeKind::Delete => (None, Some(OldImage::Full(image("2")))),
        };
        RowChange {
            kind,
            schema: Arc::clone(schema),
            new,
            old,
            commit_lsn: Lsn(lsn),
            commit_time: -5,
        }
    }

    #[test]
    fn batches_round_trip_in_order_with_their_shapes_and_the_file_goes_away() {
        let dir = std::env::temp_dir().join(format!("dbmazz-held-spill-{}", std::process::id()));
        let (v1, v2) = (schema(1), schema(2));
        let batches = [
            Batch {
                table: Arc::clone(&v1),
                changes: vec![
                    change(ChangeKind::Insert, &v1, 10),
                    change(ChangeKind::Update, &v1, 20),
                ],
                first_commit_lsn: Lsn(10),
                last_commit_lsn: Lsn(20),
                first_change_index: 7,
                byte_len: 300,
                origin: BatchOrigin::Stream,
            },
            Batch {
                table: Arc::clone(&v2),
                changes: vec![change(ChangeKind::Delete, &v2, 30)],
                first_commit_lsn: Lsn(30),
                last_commit_lsn: Lsn(30),
                first_change_index: 0,
                byte_len: 100,
                origin: BatchOrigin::Stream,
            },
        ];
        let mut spill = HeldSpill::create(&dir, 42, 1).unwrap();
        for batch in &batches {
            assert!(spill.write(batch).unwrap() > 40);
        }
        let path = spill.path.clone();
        assert!(path.exists());
        for batch in &batches {
            let read = spill.read_next().unwrap();
            assert_eq!(format!("{read:?}"), format!("{batch:?}"));
            assert!(Arc::ptr_eq(&read.table, &batch.table));
        }
        assert_eq!(spill.unread(), 0);
        assert!(spill.read_next().is_err(), "nothing more");
        assert!(spill.write(&batches[0]).is_err(), "written once, then read");
        drop(spill);
        assert!(!path.exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
