//! Spill files: the buffered changes of one streamed in-progress transaction that outgrew
//! the memory budget, appended in stream order and read back at Stream Commit.
//!
//! Record layout (big-endian): `u32 len` then `len` bytes of
//! `u32 subxid, u8 kind, u64 schema_version, u8 old_kind, u32 new_len, new, u32 old_len, old`
//! for a change (`kind` 0 insert / 1 update / 2 delete; `old_kind` 0 none / 1 key / 2 full;
//! rows in [`RowImage`] layout) or `u32 subxid, u8 3, u16 n, n × u64 schema_version` for a
//! truncate. Files live in `<state_dir>/spill/` and are deleted when done (and at start).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::change::{ChangeKind, OldImage, RowImage};

/// One buffered item of a streamed transaction, without its (not yet known) commit info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpillRecord {
    Change {
        subxid: u32,
        kind: ChangeKind,
        schema_version: u64,
        new: Option<RowImage>,
        old: Option<OldImage>,
    },
    Truncate {
        subxid: u32,
        schema_versions: Vec<u64>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("spill file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spill file {path} is corrupt at record {record}")]
    Corrupt { path: PathBuf, record: u64 },
}

/// Appends records of one transaction.
#[derive(Debug)]
pub struct SpillWriter {
    path: PathBuf,
    file: BufWriter<File>,
    records: u64,
    bytes: u64,
    scratch: BytesMut,
}

impl SpillWriter {
    pub fn create(dir: &Path, xid: u32) -> Result<Self, SpillError> {
        let path = dir.join(format!("xid-{xid}.spill"));
        let io = |source| SpillError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let file = File::create(&path).map_err(io)?;
        Ok(SpillWriter {
            file: BufWriter::with_capacity(256 * 1024, file),
            path,
            records: 0,
            bytes: 0,
            scratch: BytesMut::new(),
        })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn append(&mut self, record: &SpillRecord) -> Result<(), SpillError> {
        self.scratch.clear();
        encode(record, &mut self.scratch);
        let len = self.scratch.len() as u32;
        let result = self
            .file
            .write_all(&len.to_be_bytes())
            .and_then(|()| self.file.write_all(&self.scratch));
        result.map_err(|source| SpillError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.records += 1;
        self.bytes += 4 + u64::from(len);
        Ok(())
    }

    /// Flushes and turns the file into a reader positioned at its start.
    pub fn into_reader(mut self) -> Result<SpillReader, SpillError> {
        let io = |source| SpillError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.flush().map_err(io)?;
        let file = File::open(&self.path).map_err(io)?;
        Ok(SpillReader {
            file: BufReader::with_capacity(256 * 1024, file),
            path: self.path,
            remaining: self.records,
            record: 0,
        })
    }

    /// Drops the transaction (Stream Abort): deletes the file.
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self);
        let _ = fs::remove_file(path);
    }
}

/// Reads a spill file back in order; deletes it when dropped.
#[derive(Debug)]
pub struct SpillReader {
    path: PathBuf,
    file: BufReader<File>,
    remaining: u64,
    record: u64,
}

impl SpillReader {
    pub fn next_record(&mut self) -> Result<Option<SpillRecord>, SpillError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let io = |source| SpillError::Io {
            path: self.path.clone(),
            source,
        };
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len).map_err(io)?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.file.read_exact(&mut body).map_err(io)?;
        let record = decode(Bytes::from(body)).ok_or_else(|| SpillError::Corrupt {
            path: self.path.clone(),
            record: self.record,
        })?;
        self.remaining -= 1;
        self.record += 1;
        Ok(Some(record))
    }
}

impl Drop for SpillReader {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Deletes spill files left by a previous process (their transactions will be resent).
pub fn clear_spill_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

fn encode(record: &SpillRecord, out: &mut BytesMut) {
    match record {
        SpillRecord::Change {
            subxid,
            kind,
            schema_version,
            new,
            old,
        } => {
            out.put_u32(*subxid);
            out.put_u8(kind_code(*kind));
            out.put_u64(*schema_version);
            put_row_images(out, new.as_ref(), old.as_ref());
        }
        SpillRecord::Truncate {
            subxid,
            schema_versions,
        } => {
            out.put_u32(*subxid);
            out.put_u8(3);
            out.put_u16(schema_versions.len() as u16);
            for version in schema_versions {
                out.put_u64(*version);
            }
        }
    }
}

fn decode(mut body: Bytes) -> Option<SpillRecord> {
    if body.remaining() < 5 {
        return None;
    }
    let subxid = body.get_u32();
    let kind = match body.get_u8() {
        3 => {
            if body.remaining() < 2 {
                return None;
            }
            let count = usize::from(body.get_u16());
            if body.remaining() != count * 8 {
                return None;
            }
            let schema_versions = (0..count).map(|_| body.get_u64()).collect();
            return Some(SpillRecord::Truncate {
                subxid,
                schema_versions,
            });
        }
        code => kind_from_code(code)?,
    };
    if body.remaining() < 8 {
        return None;
    }
    let schema_version = body.get_u64();
    let (new, old) = get_row_images(&mut body)?;
    body.is_empty().then_some(SpillRecord::Change {
        subxid,
        kind,
        schema_version,
        new,
        old,
    })
}

/// A change kind in spill files (3 is a TRUNCATE record in transaction spills).
pub(super) fn kind_code(kind: ChangeKind) -> u8 {
    match kind {
        ChangeKind::Insert => 0,
        ChangeKind::Update => 1,
        ChangeKind::Delete => 2,
    }
}

pub(super) fn kind_from_code(code: u8) -> Option<ChangeKind> {
    match code {
        0 => Some(ChangeKind::Insert),
        1 => Some(ChangeKind::Update),
        2 => Some(ChangeKind::Delete),
        _ => None,
    }
}

/// A change's images in spill files: the old image's kind (0 none, 1 key, 2 full), then the
/// new and the old image, each as `u32 len` (0 = absent) + its bytes.
pub(super) fn put_row_images(out: &mut BytesMut, new: Option<&RowImage>, old: Option<&OldImage>) {
    let (old_kind, old_image) = match old {
        None => (0, None),
        Some(OldImage::Key(image)) => (1, Some(image)),
        Some(OldImage::Full(image)) => (2, Some(image)),
    };
    out.put_u8(old_kind);
    for image in [new, old_image] {
        let bytes = image.map(RowImage::as_bytes);
        out.put_u32(bytes.map_or(0, |bytes| bytes.len() as u32));
        if let Some(bytes) = bytes {
            out.put_slice(bytes);
        }
    }
}

/// Reads what [`put_row_images`] wrote; `None` if it is malformed.
pub(super) fn get_row_images(body: &mut Bytes) -> Option<(Option<RowImage>, Option<OldImage>)> {
    if body.remaining() < 1 {
        return None;
    }
    let old_kind = body.get_u8();
    let mut image = || -> Option<Option<RowImage>> {
        if body.remaining() < 4 {
            return None;
        }
        let len = body.get_u32() as usize;
        if len == 0 {
            return Some(None);
        }
        if body.remaining() < len {
            return None;
        }
        RowImage::from_bytes(body.split_to(len)).map(Some)
    };
    let new = image()?;
    let old_image = image()?;
    let old = match (old_kind, old_image) {
        (0, None) => None,
        (1, Some(image)) => Some(OldImage::Key(image)),
        (2, Some(image)) => Some(OldImage::Full(image)),
        _ => return None,
    };
    Some((new, old))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_file_which_is_removed_after() {
        let dir = std::env::temp_dir().join(format!("dbmazz-spill-test-{}", std::process::id()));
        let records = vec![
            SpillRecord::Change {
                subxid: 7,
                kind: ChangeKind::Insert,
                schema_version: 3,
                new: Some(RowImage::from_text(&[Some("1"), None])),
                old: None,
            },
            SpillRecord::Change {
                subxid: 8,
                kind: ChangeKind::Update,
                schema_version: 3,
                new: Some(RowImage::from_text(&[Some("2"), Some("x")])),
                old: Some(OldImage::Key(RowImage::from_text(&[Some("1"), None]))),
            },
            SpillRecord::Change {
                subxid: 7,
                kind: ChangeKind::Delete,
                schema_version: 4,
                new: None,
                old: Some(OldImage::Full(RowImage::from_text(&[Some("2"), Some("x")]))),
            },
            SpillRecord::Truncate {
                subxid: 7,
                schema_versions: vec![3, 9],
            },
        ];
        let mut writer = SpillWriter::create(&dir, 7).unwrap();
        for record in &records {
            writer.append(record).unwrap();
        }
        assert_eq!(writer.records(), 4);
        let path = writer.path().to_path_buf();
        let mut reader = writer.into_reader().unwrap();
        let mut read = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            read.push(record);
        }
        assert_eq!(read, records);
        drop(reader);
        assert!(!path.exists());
        clear_spill_dir(&dir).unwrap();
    }

    #[test]
    fn corrupt_bodies_are_refused() {
        assert!(decode(Bytes::from_static(b"")).is_none());
        assert!(decode(Bytes::from_static(b"\0\0\0\x01\x09")).is_none());
        assert!(decode(Bytes::from_static(b"\0\0\0\x01\x00\0\0\0\0\0\0\0\x01\x05")).is_none());
    }
}
