//! `<state_dir>/table-shapes.json`: the last shape of each table the sink applied, with the
//! PostgreSQL attribute number of every column.
//!
//! The stream names columns but does not number them, so what changed while dbmazz was
//! stopped (a column renamed, dropped, or dropped and added back) can only be told by
//! comparing the numbered shape StarRocks last got with the catalog at the next start. The
//! file is an aid, not a checkpoint: the StarRocks table itself is always checked before an
//! ALTER, so a lost or stale file only costs that comparison.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state_file::write_atomically;

const FILE_NAME: &str = "table-shapes.json";

/// One column of an applied shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberedColumn {
    pub name: String,
    /// `pg_attribute.attnum`: kept by a rename, new for every added column.
    pub attnum: i16,
    pub type_oid: u32,
    pub type_modifier: i32,
    pub is_key: bool,
}

/// A table shape with the attribute number of each column, in column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberedShape {
    /// A table dropped and created again under its name has another OID: its old shape
    /// says nothing about the new table.
    pub relation_oid: u32,
    pub columns: Vec<NumberedColumn>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ShapesFile {
    /// By `schema.table`.
    tables: BTreeMap<String, NumberedShape>,
}

/// The applied shapes, kept in memory and written through to the file.
#[derive(Debug)]
pub struct AppliedShapes {
    /// `None`: memory only (tests, and sinks without a state directory).
    state_dir: Option<PathBuf>,
    file: ShapesFile,
}

impl AppliedShapes {
    /// Reads the file; a missing or unreadable one starts empty (with a warning for the
    /// latter: it only refines what the StarRocks table already tells).
    pub fn load(state_dir: &Path) -> Self {
        let path = Self::path(state_dir);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error,
                    "ignoring an unreadable table shape file: columns renamed or dropped while dbmazz was stopped are not recognised this time");
                ShapesFile::default()
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => ShapesFile::default(),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error,
                    "cannot read the table shape file: columns renamed or dropped while dbmazz was stopped are not recognised this time");
                ShapesFile::default()
            }
        };
        AppliedShapes {
            state_dir: Some(state_dir.to_path_buf()),
            file,
        }
    }

    pub fn in_memory() -> Self {
        AppliedShapes {
            state_dir: None,
            file: ShapesFile::default(),
        }
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// The shape last applied to `table`, if it is the same relation.
    pub fn get(&self, table: &str, relation_oid: u32) -> Option<&NumberedShape> {
        self.file
            .tables
            .get(table)
            .filter(|shape| shape.relation_oid == relation_oid)
    }

    /// Records `shape` as applied to `table` (written through when it changed).
    pub fn record(&mut self, table: &str, shape: NumberedShape) -> io::Result<()> {
        if self.file.tables.get(table) == Some(&shape) {
            return Ok(());
        }
        self.file.tables.insert(table.to_string(), shape);
        let Some(state_dir) = &self.state_dir else {
            return Ok(());
        };
        let text = serde_json::to_vec_pretty(&self.file).map_err(io::Error::other)?;
        write_atomically(state_dir, FILE_NAME, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(oid: u32, names: &[(&str, i16)]) -> NumberedShape {
        NumberedShape {
            relation_oid: oid,
            columns: names
                .iter()
                .map(|(name, attnum)| NumberedColumn {
                    name: name.to_string(),
                    attnum: *attnum,
                    type_oid: 23,
                    type_modifier: -1,
                    is_key: *attnum == 1,
                })
                .collect(),
        }
    }

    #[test]
    fn shapes_survive_a_restart_and_belong_to_one_relation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut shapes = AppliedShapes::load(dir.path());
        assert!(shapes.get("public.t", 10).is_none());
        shapes
            .record("public.t", shape(10, &[("id", 1), ("b", 3)]))
            .expect("record");
        let again = AppliedShapes::load(dir.path());
        assert_eq!(
            again.get("public.t", 10),
            Some(&shape(10, &[("id", 1), ("b", 3)]))
        );
        // Dropped and created again: another OID, the old shape does not apply.
        assert!(again.get("public.t", 11).is_none());
    }

    #[test]
    fn an_unreadable_file_starts_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(AppliedShapes::path(dir.path()), b"{not json").expect("write");
        let shapes = AppliedShapes::load(dir.path());
        assert!(shapes.get("public.t", 10).is_none());
    }
}
