//! Rows → one Stream Load JSON body (`[{...},{...}]`, sent with `strip_outer_array: true`).
//!
//! A [`TableEncoder`] is built once per table shape: it precomputes every key prefix
//! (`,"name":`, escaped) and each column's [`ValueEncoding`], so encoding a row is a loop of
//! `memcpy` plus per-type validation straight into the body's `Vec<u8>`; no `serde_json::Value`
//! and no allocation per row on the normal path.
//!
//! Row shapes (spec §3):
//! * upsert: `{"__op":0,<selected columns>,<audit columns>}`;
//! * hard delete: `{"__op":1,<key columns>,<typed placeholders for selected NOT NULL columns>}`
//!   (StarRocks filters a delete row with NULL in a NOT NULL column, spec §9.1);
//! * soft delete: `{"__op":0,<key columns>,"dbmazz_op_type":1,"dbmazz_is_deleted":true,...}`;
//!   it carries only the keys, so it must go in a `partial_update` load whose `columns` header is
//!   [`TableEncoder::columns_header`] of [`ColumnSelection::keys`].
//!
//! Every row of one load must have the same column set (a missing key is NULL, not "unchanged",
//! spec §3.5): the caller groups rows by [`ColumnSelection`] and sends each group with
//! `columns_header(selection)`. An `UnchangedToast` value inside the selection is refused.
//!
//! Lossy values (see `values.rs`) follow the column's [`LossyPolicy`]: `null` writes `null` and
//! records a [`LossyValue`] in the body, `error` fails the row with [`EncodeError::Lossy`].
//! A key column can be neither NULLed nor truncated, and a NOT NULL StarRocks column cannot be
//! NULLed: those fail the row whatever the policy (the load would otherwise fail on a filtered
//! row with a less useful message).

use std::io::Write as _;
use std::sync::Arc;

use crate::decode::{ValueRef, ValuesView};
use crate::schema::type_map::{
    map_pg_type, ColumnMapping, LossyPolicy, StarRocksType, TypeMapOptions, UnsupportedType,
    ValueEncoding,
};
use crate::schema::TableSchema;

use super::values::{encode_value, write_json_string, Encoded, LossyReason};

/// `dbmazz_op_type`: 0 insert/update, 1 delete.
pub const AUDIT_OP_TYPE: &str = "dbmazz_op_type";
/// `dbmazz_lsn`: commit LSN of the change's transaction, as a number.
pub const AUDIT_LSN: &str = "dbmazz_lsn";
/// `dbmazz_synced_at`: load time, UTC.
pub const AUDIT_SYNCED_AT: &str = "dbmazz_synced_at";
/// `dbmazz_is_deleted`: soft-delete tombstone flag.
pub const AUDIT_IS_DELETED: &str = "dbmazz_is_deleted";

/// `sink.starrocks.delete_mode`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    /// `__op` = 1 removes the row.
    #[default]
    Hard,
    /// The row stays, marked `dbmazz_is_deleted = true`, `dbmazz_op_type = 1`.
    Soft,
}

/// Per-table options of the encoder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncoderOptions {
    pub delete_mode: DeleteMode,
    /// Add `dbmazz_op_type`, `dbmazz_lsn`, `dbmazz_synced_at` to every upsert.
    pub audit_columns: bool,
    /// StarRocks key columns (indexes into the PG columns); `None` = the PG replica identity
    /// (`is_key`). Set it under REPLICA IDENTITY FULL, where every column is flagged.
    pub key_columns: Option<Vec<usize>>,
    /// Value columns that are NOT NULL in an existing StarRocks table: delete rows carry a
    /// typed placeholder for them, and a lossy value there is an error rather than a NULL.
    pub not_null_columns: Vec<usize>,
}

/// The extra columns the options add, with their types (for `CREATE TABLE` / checks).
pub fn audit_columns(options: &EncoderOptions) -> Vec<(&'static str, StarRocksType)> {
    let mut columns = Vec::new();
    if options.audit_columns || options.delete_mode == DeleteMode::Soft {
        columns.push((AUDIT_OP_TYPE, StarRocksType::TinyInt));
    }
    if options.audit_columns {
        columns.push((AUDIT_LSN, StarRocksType::BigInt));
        columns.push((AUDIT_SYNCED_AT, StarRocksType::DateTime));
    }
    if options.delete_mode == DeleteMode::Soft {
        columns.push((AUDIT_IS_DELETED, StarRocksType::Boolean));
    }
    columns
}

/// What the audit columns of a row say; `synced_at` is formatted once per load
/// (`datetime::synced_at_now`).
#[derive(Debug, Clone, Copy)]
pub struct RowMeta<'a> {
    pub commit_lsn: u64,
    pub synced_at: &'a str,
}

/// The columns a row (and its whole load) carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnSelection {
    /// Every column: a full-row upsert.
    All,
    /// `present[i]` for column `i` (one entry per column; key columns are always sent).
    Subset(Arc<[bool]>),
}

impl ColumnSelection {
    /// The key columns only (soft deletes, key-only partial loads).
    pub fn keys(encoder: &TableEncoder) -> Self {
        let present: Vec<bool> = encoder.columns.iter().map(|c| c.is_key).collect();
        ColumnSelection::Subset(present.into())
    }

    /// The columns `values` carries: all but the `UnchangedToast` ones (keys always).
    pub fn present_in(encoder: &TableEncoder, values: &(impl ValuesView + ?Sized)) -> Self {
        let present: Vec<bool> = encoder
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| {
                column.is_key || !matches!(values.value(index), Some(ValueRef::UnchangedToast))
            })
            .collect();
        if present.iter().all(|&p| p) {
            ColumnSelection::All
        } else {
            ColumnSelection::Subset(present.into())
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        match self {
            ColumnSelection::All => true,
            ColumnSelection::Subset(present) => present.get(index).copied().unwrap_or(false),
        }
    }

    /// A full-row load (no `partial_update`).
    pub fn is_all(&self) -> bool {
        match self {
            ColumnSelection::All => true,
            ColumnSelection::Subset(present) => present.iter().all(|&p| p),
        }
    }
}

/// A value that could not be stored exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossyValue {
    /// Index of the row in its body.
    pub row: usize,
    pub column: Arc<str>,
    pub reason: LossyReason,
    /// `col=value, ...` of the key columns, for the warning log.
    pub key: String,
    /// Stored altered (a string cut under `lossy_policy = "truncate"`, an array with NULLed
    /// elements) rather than as NULL.
    pub altered: bool,
}

/// A row that cannot be encoded. Nothing of it is left in the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "{table}.{column}: value cannot be stored exactly ({reason}) at key ({key}) and \
         lossy_policy is \"error\"; set sink.starrocks.lossy_policy = \"null\" to store NULL \
         and count it instead"
    )]
    Lossy {
        table: String,
        column: String,
        reason: LossyReason,
        key: String,
    },
    #[error(
        "{table}.{column}: key value cannot be stored ({reason}) at key ({key}); a key can be \
         neither NULLed nor truncated"
    )]
    LossyKey {
        table: String,
        column: String,
        reason: LossyReason,
        key: String,
    },
    #[error(
        "{table}.{column}: value cannot be stored exactly ({reason}) at key ({key}) and the \
         StarRocks column is NOT NULL, so it cannot be NULLed; widen or alter the column"
    )]
    LossyNotNull {
        table: String,
        column: String,
        reason: LossyReason,
        key: String,
    },
    #[error(
        "{table}.{column}: unchanged TOAST value in a row whose load carries that column \
         (key {key}); fill it from an earlier image or load the row as a partial update"
    )]
    UnchangedToast {
        table: String,
        column: String,
        key: String,
    },
    #[error("{table}: a row has {actual} values but the table has {expected} columns")]
    ColumnCount {
        table: String,
        expected: usize,
        actual: usize,
    },
}

/// The encoder cannot be built for this table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncoderSetupError {
    #[error("{table}.{column}: {source}")]
    Unsupported {
        table: String,
        column: String,
        #[source]
        source: UnsupportedType,
    },
    #[error("{table}: {mappings} column mappings for {columns} columns")]
    MappingCount {
        table: String,
        mappings: usize,
        columns: usize,
    },
    #[error("{table}: key column index {index} is out of range")]
    KeyColumn { table: String, index: usize },
}

/// One JSON array body under construction, with the lossy values of its rows.
#[derive(Debug, Clone)]
pub struct JsonBody {
    bytes: Vec<u8>,
    rows: usize,
    lossy: Vec<LossyValue>,
}

impl Default for JsonBody {
    fn default() -> Self {
        JsonBody::with_capacity(0)
    }
}

impl JsonBody {
    pub fn new() -> Self {
        JsonBody::default()
    }

    pub fn with_capacity(bytes: usize) -> Self {
        let mut buffer = Vec::with_capacity(bytes.max(2));
        buffer.push(b'[');
        JsonBody {
            bytes: buffer,
            rows: 0,
            lossy: Vec::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes of the finished body.
    pub fn byte_len(&self) -> usize {
        self.bytes.len() + 1
    }

    pub fn lossy(&self) -> &[LossyValue] {
        &self.lossy
    }

    /// Takes the bytes written so far (a piece of a body sent as it is encoded); the next rows
    /// continue the same array.
    pub fn take_piece(&mut self, next_capacity: usize) -> Vec<u8> {
        std::mem::replace(&mut self.bytes, Vec::with_capacity(next_capacity))
    }

    /// Closes the array; the body and the lossy values of its rows. Never send an empty body
    /// (StarRocks fails it, spec §9.8): check [`JsonBody::is_empty`] first.
    pub fn finish(mut self) -> (Vec<u8>, Vec<LossyValue>) {
        self.bytes.push(b']');
        (self.bytes, self.lossy)
    }

    /// Starts a row; returns the undo mark.
    fn begin_row(&mut self) -> (usize, usize) {
        let mark = (self.bytes.len(), self.lossy.len());
        if self.rows > 0 {
            self.bytes.push(b',');
        }
        mark
    }

    fn undo_row(&mut self, mark: (usize, usize)) {
        self.bytes.truncate(mark.0);
        self.lossy.truncate(mark.1);
    }
}

#[derive(Debug, Clone)]
struct EncoderColumn {
    name: Arc<str>,
    /// `,"name":`
    prefix: Box<[u8]>,
    encoding: ValueEncoding,
    policy: LossyPolicy,
    is_key: bool,
    not_null: bool,
}

/// Encodes rows of one table shape. Cheap to share (`&self` everywhere).
#[derive(Debug, Clone)]
pub struct TableEncoder {
    table: String,
    columns: Vec<EncoderColumn>,
    options: EncoderOptions,
}

fn key_prefix(name: &str) -> Box<[u8]> {
    let mut prefix = vec![b','];
    write_json_string(name, &mut prefix);
    prefix.push(b':');
    prefix.into_boxed_slice()
}

/// A column name for the `columns` header, always backquoted: the FE parses the header as
/// SQL (`COLUMNS (<header>)`), where a bare reserved word (`order`, `key`, `text`, ...) is a
/// syntax error.
fn header_name(name: &str, header: &mut String) {
    header.push('`');
    header.push_str(&name.replace('`', "``"));
    header.push('`');
}

/// The value written in a delete row for a NOT NULL column (any valid value: the row goes).
fn placeholder(encoding: &ValueEncoding) -> &'static [u8] {
    match encoding {
        ValueEncoding::Bool => b"false",
        ValueEncoding::Integer { .. } | ValueEncoding::Float | ValueEncoding::Decimal { .. } => {
            b"0"
        }
        ValueEncoding::Date => b"\"1970-01-01\"",
        ValueEncoding::Timestamp | ValueEncoding::TimestampTz => b"\"1970-01-01 00:00:00\"",
        ValueEncoding::Text { .. } | ValueEncoding::ByteaHex { .. } => b"\"\"",
        ValueEncoding::Json => b"{}",
        ValueEncoding::Array { .. } => b"[]",
    }
}

impl TableEncoder {
    /// `mappings[i]` is column `i`'s mapping ([`map_pg_type`]).
    pub fn new(
        schema: &TableSchema,
        mappings: Vec<ColumnMapping>,
        options: EncoderOptions,
    ) -> Result<Self, EncoderSetupError> {
        let table = schema.name.to_string();
        if mappings.len() != schema.columns.len() {
            return Err(EncoderSetupError::MappingCount {
                table,
                mappings: mappings.len(),
                columns: schema.columns.len(),
            });
        }
        if let Some(index) = options
            .key_columns
            .iter()
            .flatten()
            .find(|&&index| index >= schema.columns.len())
        {
            return Err(EncoderSetupError::KeyColumn {
                table,
                index: *index,
            });
        }
        let columns = schema
            .columns
            .iter()
            .zip(mappings)
            .enumerate()
            .map(|(index, (column, mapping))| EncoderColumn {
                name: Arc::from(column.name.as_str()),
                prefix: key_prefix(&column.name),
                encoding: mapping.encoding,
                policy: mapping.lossy_policy,
                is_key: match &options.key_columns {
                    Some(keys) => keys.contains(&index),
                    None => column.is_key,
                },
                not_null: options.not_null_columns.contains(&index),
            })
            .collect();
        Ok(TableEncoder {
            table,
            columns,
            options,
        })
    }

    /// Maps every column with [`map_pg_type`], then [`TableEncoder::new`].
    pub fn from_schema(
        schema: &TableSchema,
        type_options: &TypeMapOptions,
        options: EncoderOptions,
    ) -> Result<Self, EncoderSetupError> {
        let mappings = schema
            .columns
            .iter()
            .map(|column| {
                map_pg_type(column.type_oid, column.type_modifier, type_options).map_err(|source| {
                    EncoderSetupError::Unsupported {
                        table: schema.name.to_string(),
                        column: column.name.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        TableEncoder::new(schema, mappings, options)
    }

    pub fn options(&self) -> &EncoderOptions {
        &self.options
    }

    /// Whether column `index` is stored as a DECIMAL (whose text forms `1.5` and `1.50` are
    /// one value, and one key).
    pub(super) fn is_decimal(&self, index: usize) -> bool {
        self.columns
            .get(index)
            .is_some_and(|column| matches!(column.encoding, ValueEncoding::Decimal { .. }))
    }

    /// The `columns` header for loads of rows with this selection: the selected columns, the
    /// audit columns, then `__op`.
    pub fn columns_header(&self, selection: &ColumnSelection) -> String {
        let mut header = String::new();
        for (index, column) in self.columns.iter().enumerate() {
            if column.is_key || selection.contains(index) {
                header_name(&column.name, &mut header);
                header.push(',');
            }
        }
        for (name, _) in audit_columns(&self.options) {
            header.push_str(name);
            header.push(',');
        }
        header.push_str("__op");
        header
    }

    /// `col=value, ...` of the key columns (values cut at 64 bytes), for logs and errors.
    pub fn describe_key(&self, values: &(impl ValuesView + ?Sized)) -> String {
        let mut key = String::new();
        for (index, column) in self.columns.iter().enumerate() {
            if !column.is_key {
                continue;
            }
            if !key.is_empty() {
                key.push_str(", ");
            }
            key.push_str(&column.name);
            key.push('=');
            match values.value(index) {
                Some(ValueRef::Text(bytes)) => {
                    let text = String::from_utf8_lossy(bytes);
                    let mut end = text.len().min(64);
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    key.push_str(&text[..end]);
                    if end < text.len() {
                        key.push('…');
                    }
                }
                Some(ValueRef::Null) | None => key.push_str("NULL"),
                Some(ValueRef::UnchangedToast) => key.push_str("(unchanged)"),
                Some(ValueRef::Binary(_)) => key.push_str("(binary)"),
            }
        }
        key
    }

    fn check_width(&self, values: &(impl ValuesView + ?Sized)) -> Result<(), EncodeError> {
        if values.width() != self.columns.len() {
            return Err(EncodeError::ColumnCount {
                table: self.table.clone(),
                expected: self.columns.len(),
                actual: values.width(),
            });
        }
        Ok(())
    }

    /// An INSERT or UPDATE image (`__op` 0) carrying the columns of `selection`.
    pub fn push_upsert(
        &self,
        body: &mut JsonBody,
        values: &(impl ValuesView + ?Sized),
        selection: &ColumnSelection,
        meta: &RowMeta<'_>,
    ) -> Result<(), EncodeError> {
        self.check_width(values)?;
        let mark = body.begin_row();
        let result = self.write_upsert(body, values, selection, meta);
        match result {
            Ok(()) => body.rows += 1,
            Err(_) => body.undo_row(mark),
        }
        result
    }

    fn write_upsert(
        &self,
        body: &mut JsonBody,
        values: &(impl ValuesView + ?Sized),
        selection: &ColumnSelection,
        meta: &RowMeta<'_>,
    ) -> Result<(), EncodeError> {
        body.bytes.extend_from_slice(b"{\"__op\":0");
        for (index, column) in self.columns.iter().enumerate() {
            // Keys are always sent: StarRocks needs them in every load shape.
            if !(column.is_key || selection.contains(index)) {
                continue;
            }
            let value = values.value(index).unwrap_or(ValueRef::Null);
            body.bytes.extend_from_slice(&column.prefix);
            self.write_value(body, index, value, values)?;
        }
        self.write_audit(body, meta, false);
        body.bytes.push(b'}');
        Ok(())
    }

    /// A DELETE (old image: key or full). Hard mode: `__op` 1 with the keys and placeholders
    /// for the selected NOT NULL columns; soft mode: a tombstone upsert of the keys (send it
    /// with `ColumnSelection::keys` as a partial update).
    pub fn push_delete(
        &self,
        body: &mut JsonBody,
        old_values: &(impl ValuesView + ?Sized),
        selection: &ColumnSelection,
        meta: &RowMeta<'_>,
    ) -> Result<(), EncodeError> {
        self.check_width(old_values)?;
        let mark = body.begin_row();
        let result = self.write_delete(body, old_values, selection, meta);
        match result {
            Ok(()) => body.rows += 1,
            Err(_) => body.undo_row(mark),
        }
        result
    }

    fn write_delete(
        &self,
        body: &mut JsonBody,
        old_values: &(impl ValuesView + ?Sized),
        selection: &ColumnSelection,
        meta: &RowMeta<'_>,
    ) -> Result<(), EncodeError> {
        let soft = self.options.delete_mode == DeleteMode::Soft;
        body.bytes
            .extend_from_slice(if soft { b"{\"__op\":0" } else { b"{\"__op\":1" });
        for (index, column) in self.columns.iter().enumerate() {
            if column.is_key {
                let value = old_values.value(index).unwrap_or(ValueRef::Null);
                body.bytes.extend_from_slice(&column.prefix);
                self.write_value(body, index, value, old_values)?;
            } else if !soft && column.not_null && selection.contains(index) {
                body.bytes.extend_from_slice(&column.prefix);
                body.bytes.extend_from_slice(placeholder(&column.encoding));
            }
        }
        if soft {
            self.write_audit(body, meta, true);
        }
        body.bytes.push(b'}');
        Ok(())
    }

    fn write_audit(&self, body: &mut JsonBody, meta: &RowMeta<'_>, deleted: bool) {
        let soft = self.options.delete_mode == DeleteMode::Soft;
        let out = &mut body.bytes;
        if self.options.audit_columns || soft {
            out.extend_from_slice(b",\"dbmazz_op_type\":");
            out.push(if deleted { b'1' } else { b'0' });
        }
        if self.options.audit_columns {
            out.extend_from_slice(b",\"dbmazz_lsn\":");
            let _ = write!(out, "{}", meta.commit_lsn);
            out.extend_from_slice(b",\"dbmazz_synced_at\":");
            write_json_string(meta.synced_at, out);
        }
        if soft {
            out.extend_from_slice(if deleted {
                b",\"dbmazz_is_deleted\":true"
            } else {
                b",\"dbmazz_is_deleted\":false"
            });
        }
    }

    fn write_value(
        &self,
        body: &mut JsonBody,
        index: usize,
        value: ValueRef<'_>,
        row: &(impl ValuesView + ?Sized),
    ) -> Result<(), EncodeError> {
        let column = &self.columns[index];
        let text = match value {
            ValueRef::Null => {
                body.bytes.extend_from_slice(b"null");
                return Ok(());
            }
            ValueRef::UnchangedToast => {
                return Err(EncodeError::UnchangedToast {
                    table: self.table.clone(),
                    column: column.name.to_string(),
                    key: self.describe_key(row),
                })
            }
            ValueRef::Binary(_) => return self.lossy(body, index, LossyReason::BinaryFormat, row),
            ValueRef::Text(text) => text,
        };
        match encode_value(&column.encoding, text, column.policy, &mut body.bytes) {
            Ok(Encoded::Exact) => Ok(()),
            Ok(Encoded::Altered(reason)) if column.is_key => {
                Err(self.key_error(index, reason, row))
            }
            Ok(Encoded::Altered(reason)) => {
                self.record(body, index, reason, row, true);
                Ok(())
            }
            Err(reason) => self.lossy(body, index, reason, row),
        }
    }

    fn key_error(
        &self,
        index: usize,
        reason: LossyReason,
        row: &(impl ValuesView + ?Sized),
    ) -> EncodeError {
        EncodeError::LossyKey {
            table: self.table.clone(),
            column: self.columns[index].name.to_string(),
            reason,
            key: self.describe_key(row),
        }
    }

    fn record(
        &self,
        body: &mut JsonBody,
        index: usize,
        reason: LossyReason,
        row: &(impl ValuesView + ?Sized),
        altered: bool,
    ) {
        body.lossy.push(LossyValue {
            row: body.rows,
            column: Arc::clone(&self.columns[index].name),
            reason,
            key: self.describe_key(row),
            altered,
        });
    }

    /// Nothing was written for the value: apply the policy.
    fn lossy(
        &self,
        body: &mut JsonBody,
        index: usize,
        reason: LossyReason,
        row: &(impl ValuesView + ?Sized),
    ) -> Result<(), EncodeError> {
        let column = &self.columns[index];
        let details = || {
            (
                self.table.clone(),
                column.name.to_string(),
                self.describe_key(row),
            )
        };
        if column.is_key {
            return Err(self.key_error(index, reason, row));
        }
        if column.policy == LossyPolicy::Error {
            let (table, column, key) = details();
            return Err(EncodeError::Lossy {
                table,
                column,
                reason,
                key,
            });
        }
        if column.not_null {
            let (table, column, key) = details();
            return Err(EncodeError::LossyNotNull {
                table,
                column,
                reason,
                key,
            });
        }
        body.bytes.extend_from_slice(b"null");
        self.record(body, index, reason, row, false);
        Ok(())
    }
}
