//! A sink that appends every operation to a JSON-lines file and fsyncs it before
//! acknowledging: "durable" is real, so it survives `kill -9`. For debugging a stream
//! (`sink.type = "file"`) and for crash tests.
//!
//! One line per row change:
//! `{"table":"public.orders","op":"insert|update|delete","commit_lsn":"0/16B3F28","new":[..],"old":[..]}`
//! with values as strings, `null`, or `{"unchanged_toast":true}`; and
//! `{"table":..,"op":"truncate"}` / `{"table":..,"op":"schema","columns":[..]}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{Batch, Sink, SinkError};
use crate::decode::TupleValue;
use crate::pipeline::{ChangeKind, RowImage};
use crate::schema::TableSchema;

#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl FileSink {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| SinkError {
                sink: "file",
                table: String::new(),
                message: format!("cannot open {}: {error}", path.display()),
                source: Some(Box::new(error)),
            })?;
        Ok(FileSink {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn append(&self, table: &TableSchema, lines: &[Value]) -> Result<(), SinkError> {
        let mut text = String::new();
        for line in lines {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        let file = Arc::clone(&self.file);
        let error = |error: std::io::Error| SinkError {
            sink: "file",
            table: table.name.to_string(),
            message: format!("writing {}: {error}", self.path.display()),
            source: Some(Box::new(error)),
        };
        let mut file = file.lock().unwrap_or_else(|poison| poison.into_inner());
        file.write_all(text.as_bytes()).map_err(error)?;
        file.sync_data().map_err(error)
    }
}

fn values(image: Option<&RowImage>) -> Value {
    let Some(image) = image else {
        return Value::Null;
    };
    Value::Array(
        image
            .values()
            .0
            .iter()
            .map(|value| match value {
                TupleValue::Null => Value::Null,
                TupleValue::UnchangedToast => json!({"unchanged_toast": true}),
                TupleValue::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into()),
                TupleValue::Binary(bytes) => json!({"binary_len": bytes.len()}),
            })
            .collect(),
    )
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), SinkError> {
        let table = batch.table.name.to_string();
        let lines: Vec<Value> = batch
            .changes
            .iter()
            .map(|change| {
                let op = match change.kind {
                    ChangeKind::Insert => "insert",
                    ChangeKind::Update => "update",
                    ChangeKind::Delete => "delete",
                };
                json!({
                    "table": table,
                    "op": op,
                    "commit_lsn": change.commit_lsn.to_string(),
                    "new": values(change.new.as_ref()),
                    "old": values(change.old.as_ref().map(|old| old.image())),
                })
            })
            .collect();
        self.append(&batch.table, &lines)
    }

    async fn truncate(&self, table: &Arc<TableSchema>) -> Result<(), SinkError> {
        self.append(
            table,
            &[json!({"table": table.name.to_string(), "op": "truncate"})],
        )
    }

    async fn apply_schema_change(
        &self,
        _old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        let columns: Vec<&str> = new
            .columns
            .iter()
            .map(|column| column.name.as_str())
            .collect();
        self.append(
            new,
            &[json!({"table": new.name.to_string(), "op": "schema", "columns": columns})],
        )
    }
}
