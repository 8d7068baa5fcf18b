//! Databases, Primary Key tables, their rows, and asynchronous ALTER jobs (spec §3, §6).
//!
//! The whole catalog sits behind one mutex ([`SharedCatalog`]). Loads do their parsing and
//! conversion outside the lock and take it only to begin, to commit (apply rows in commit order)
//! and to finish; queries copy what they need out of it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::labels::LabelStore;
use crate::types::{ColumnType, Key, Value};

/// The catalog shared by every front end.
pub type SharedCatalog = Arc<Mutex<Catalog>>;

/// A MySQL-protocol error: code and message (spec §6.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ERROR {code}: {message}")]
pub struct SqlError {
    /// MySQL error code (1064 for most StarRocks errors).
    pub code: u16,
    /// Message text.
    pub message: String,
}

impl SqlError {
    /// The common StarRocks form: code 1064.
    pub fn new(message: impl Into<String>) -> SqlError {
        SqlError {
            code: 1064,
            message: message.into(),
        }
    }

    /// An error with a specific code.
    pub fn with_code(code: u16, message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
        }
    }
}

/// One column definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name as declared (or as last renamed).
    pub name: String,
    /// StarRocks's `ColumnId`: the name at creation. RENAME COLUMN keeps it, and loads planned
    /// before a rename still find their column by it (spec §6.3a).
    pub column_id: String,
    /// Type.
    pub ty: ColumnType,
    /// NULL allowed.
    pub nullable: bool,
    /// DEFAULT as text (`None` = no default).
    pub default: Option<String>,
    /// COMMENT.
    pub comment: String,
}

impl Column {
    /// The column's DEFAULT as a value: `Some(NULL)` for a nullable column without default,
    /// `None` for a NOT NULL column without default. `CURRENT_TIMESTAMP` is the current UTC time.
    pub fn default_value(&self) -> Result<Option<Value>, String> {
        match &self.default {
            Some(text) if text.eq_ignore_ascii_case("CURRENT_TIMESTAMP") => {
                let now = crate::sql::format_time(SystemTime::now());
                crate::convert::from_text(&now, &self.ty, &self.name)
                    .map(Some)
                    .map_err(|e| e.message().to_string())
            }
            Some(text) => crate::convert::from_text(text, &self.ty, &self.name)
                .map(Some)
                .map_err(|e| e.message().to_string()),
            None if self.nullable => Ok(Some(Value::Null)),
            None => Ok(None),
        }
    }
}

/// A table's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// Table name.
    pub name: String,
    /// Columns; the first `key_count` are the primary key, in key order.
    pub columns: Vec<Column>,
    /// Number of primary-key columns.
    pub key_count: usize,
    /// `DISTRIBUTED BY HASH(...)` columns.
    pub distributed_by: Vec<String>,
    /// `BUCKETS n`, if given.
    pub buckets: Option<u32>,
    /// `PROPERTIES (...)` in declaration order.
    pub properties: Vec<(String, String)>,
    /// Bumped by every schema change.
    pub schema_version: u64,
}

impl TableSchema {
    /// Column position by name (column names are case-insensitive, spec §6.1).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Column position by `ColumnId` (case-insensitive, as StarRocks compares ids).
    pub fn column_index_by_id(&self, id: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.column_id.eq_ignore_ascii_case(id))
    }

    /// The key columns.
    pub fn key_columns(&self) -> &[Column] {
        &self.columns[..self.key_count]
    }
}

/// SCHEMA_CHANGE while an ALTER job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableState {
    /// No job.
    Normal,
    /// An ALTER job is running.
    SchemaChange,
}

/// Per-table counters, readable from the control endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableStats {
    /// Committed loads.
    pub loads: u64,
    /// Loads that failed (any reason).
    pub failed_loads: u64,
    /// Rows written by committed loads (`NumberLoadedRows` summed).
    pub rows_loaded: u64,
    /// Rows filtered in committed loads.
    pub rows_filtered: u64,
    /// Versions created (one per committed load, as rowsets on a tablet).
    pub versions: u64,
}

/// A Primary Key table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Current schema.
    pub schema: Arc<TableSchema>,
    /// Rows keyed by primary key; each row holds every column in schema order.
    pub rows: BTreeMap<Key, Vec<Value>>,
    /// Normal or schema change.
    pub state: TableState,
    /// Counters.
    pub stats: TableStats,
}

impl Table {
    /// An empty table.
    pub fn new(schema: TableSchema) -> Table {
        Table {
            schema: Arc::new(schema),
            rows: BTreeMap::new(),
            state: TableState::Normal,
            stats: TableStats::default(),
        }
    }

    /// RENAME COLUMN, as `LocalMetastore.renameColumn` does it (spec §6.3a): metadata only, at
    /// once. Rows, position, `ColumnId` and schema version stay; only the name changes.
    pub fn rename_column(&mut self, old: &str, new: &str) -> Result<(), SqlError> {
        let mut schema = (*self.schema).clone();
        let Some(index) = schema.column_index(old) else {
            // ERR_BAD_FIELD_ERROR (5509, 42S22).
            return Err(SqlError::with_code(
                5509,
                format!("Unknown column '{old}' in '{}'", schema.name),
            ));
        };
        // Also refuses `a TO a` and a change of case only: names compare case-insensitively.
        if schema.column_index(new).is_some() {
            return Err(SqlError::with_code(
                1060,
                format!("Duplicate column name '{new}'"),
            ));
        }
        // Distribution columns are kept by ColumnId, so SHOW CREATE TABLE shows the new name.
        let old_name = std::mem::replace(&mut schema.columns[index].name, new.to_string());
        for name in &mut schema.distributed_by {
            if name.eq_ignore_ascii_case(&old_name) {
                *name = new.to_string();
            }
        }
        self.schema = Arc::new(schema);
        Ok(())
    }
}

/// State of an ALTER job (spec §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterState {
    /// Accepted.
    Pending,
    /// Waiting for earlier txns.
    WaitingTxn,
    /// Running.
    Running,
    /// Done.
    Finished,
    /// Failed or cancelled.
    Cancelled,
}

impl AlterState {
    /// Name shown by `SHOW ALTER TABLE COLUMN`.
    pub fn name(self) -> &'static str {
        match self {
            AlterState::Pending => "PENDING",
            AlterState::WaitingTxn => "WAITING_TXN",
            AlterState::Running => "RUNNING",
            AlterState::Finished => "FINISHED",
            AlterState::Cancelled => "CANCELLED",
        }
    }

    /// FINISHED or CANCELLED.
    pub fn is_final(self) -> bool {
        matches!(self, AlterState::Finished | AlterState::Cancelled)
    }
}

/// One schema change the job applies when it finishes.
#[derive(Debug, Clone)]
pub enum AlterOp {
    /// ADD COLUMN, at a position (index in the new schema).
    Add {
        /// The column.
        column: Column,
        /// Insert position.
        position: usize,
    },
    /// DROP COLUMN.
    Drop(String),
    /// MODIFY COLUMN.
    Modify(Column),
}

/// An ALTER TABLE ... COLUMN job.
#[derive(Debug, Clone)]
pub struct AlterJob {
    /// JobId.
    pub job_id: i64,
    /// TableName.
    pub table: String,
    /// CreateTime.
    pub create_time: SystemTime,
    /// FinishTime.
    pub finish_time: Option<SystemTime>,
    /// State.
    pub state: AlterState,
    /// Msg.
    pub msg: String,
    /// Timeout (s).
    pub timeout_s: u64,
    /// The changes.
    pub ops: Vec<AlterOp>,
    /// Schema version after the job.
    pub schema_version: u64,
}

/// A database.
#[derive(Debug, Default)]
pub struct Database {
    /// Tables by name (case-sensitive).
    pub tables: BTreeMap<String, Table>,
    /// Txns and labels.
    pub labels: LabelStore,
    /// ALTER jobs, oldest first.
    pub alter_jobs: Vec<AlterJob>,
}

/// Every database.
#[derive(Debug)]
pub struct Catalog {
    /// Databases by name (case-sensitive).
    pub databases: BTreeMap<String, Database>,
    next_txn_id: i64,
    next_job_id: i64,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            databases: BTreeMap::new(),
            next_txn_id: 1000,
            next_job_id: 10_000,
        }
    }
}

/// Reserved column names (spec §3.1).
const RESERVED_COLUMNS: [&str; 2] = ["__op", "__row"];

impl Catalog {
    /// A fresh txn id.
    pub fn next_txn_id(&mut self) -> i64 {
        self.next_txn_id += 1;
        self.next_txn_id
    }

    /// A fresh job id.
    pub fn next_job_id(&mut self) -> i64 {
        self.next_job_id += 1;
        self.next_job_id
    }

    /// A database or `Unknown database`.
    pub fn database(&self, db: &str) -> Result<&Database, SqlError> {
        self.databases
            .get(db)
            .ok_or_else(|| SqlError::with_code(1049, format!("Unknown database '{db}'")))
    }

    /// A database, mutable.
    pub fn database_mut(&mut self, db: &str) -> Result<&mut Database, SqlError> {
        self.databases
            .get_mut(db)
            .ok_or_else(|| SqlError::with_code(1049, format!("Unknown database '{db}'")))
    }

    /// A table or `Unknown table`.
    pub fn table(&self, db: &str, table: &str) -> Result<&Table, SqlError> {
        self.database(db)?
            .tables
            .get(table)
            .ok_or_else(|| unknown_table(db, table))
    }

    /// A table, mutable.
    pub fn table_mut(&mut self, db: &str, table: &str) -> Result<&mut Table, SqlError> {
        self.database_mut(db)?
            .tables
            .get_mut(table)
            .ok_or_else(|| unknown_table(db, table))
    }

    /// CREATE DATABASE.
    pub fn create_database(&mut self, db: &str, if_not_exists: bool) -> Result<(), SqlError> {
        if self.databases.contains_key(db) || db == "information_schema" {
            if if_not_exists {
                return Ok(());
            }
            return Err(SqlError::with_code(
                1007,
                format!("Can't create database '{db}'; database exists"),
            ));
        }
        self.databases.insert(db.to_string(), Database::default());
        Ok(())
    }

    /// DROP DATABASE.
    pub fn drop_database(&mut self, db: &str, if_exists: bool) -> Result<(), SqlError> {
        if self.databases.remove(db).is_none() && !if_exists {
            return Err(SqlError::with_code(
                1008,
                format!("Can't drop database '{db}'; database doesn't exist"),
            ));
        }
        Ok(())
    }

    /// CREATE TABLE, after validating the PK rules of spec §6.2.
    pub fn create_table(
        &mut self,
        db: &str,
        schema: TableSchema,
        if_not_exists: bool,
    ) -> Result<(), SqlError> {
        validate_schema(&schema)?;
        let database = self.database_mut(db)?;
        if database.tables.contains_key(&schema.name) {
            if if_not_exists {
                return Ok(());
            }
            return Err(SqlError::with_code(
                1050,
                format!("Table '{}' already exists", schema.name),
            ));
        }
        database
            .tables
            .insert(schema.name.clone(), Table::new(schema));
        Ok(())
    }

    /// DROP TABLE.
    pub fn drop_table(&mut self, db: &str, table: &str, if_exists: bool) -> Result<(), SqlError> {
        let database = self.database_mut(db)?;
        if database.tables.remove(table).is_none() && !if_exists {
            return Err(unknown_table(db, table));
        }
        Ok(())
    }

    /// TRUNCATE TABLE: all rows go, the schema stays.
    pub fn truncate_table(&mut self, db: &str, table: &str) -> Result<(), SqlError> {
        let table = self.table_mut(db, table)?;
        table.rows.clear();
        table.stats.versions += 1;
        Ok(())
    }
}

/// `Unknown table 'db.t'` (code 1146).
pub fn unknown_table(db: &str, table: &str) -> SqlError {
    SqlError::with_code(
        1146,
        format!("Getting analyzing error. Detail message: Unknown table '{db}.{table}'."),
    )
}

/// `FeNameFormat.checkColumnName` for a shared-nothing cluster, with
/// `allow_system_reserved_names` = false (its default).
pub fn check_column_name(name: &str) -> Result<(), SqlError> {
    let incorrect = || {
        SqlError::with_code(
            1166,
            format!("Getting analyzing error. Detail message: Incorrect column name '{name}'."),
        )
    };
    // `^[^\0=<>!\*]{1,1024}$`: delete conditions hold column names, so no operator characters.
    let length = name.encode_utf16().count();
    if !(1..=1024).contains(&length) || name.contains(['\0', '=', '<', '>', '!', '*']) {
        return Err(incorrect());
    }
    if name.starts_with("__starrocks_shadow_") {
        return Err(incorrect());
    }
    if RESERVED_COLUMNS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(SqlError::new(format!(
            "Getting analyzing error. Detail message: Column name [{name}] is a system reserved name. Please choose a different one."
        )));
    }
    if name.starts_with("__generated_partition_column_") {
        return Err(SqlError::new(format!(
            "Getting analyzing error. Detail message: Column name [{name}] starts with __generated_partition_column_ is a system reserved name. Please choose a different one."
        )));
    }
    Ok(())
}

/// Check a CREATE TABLE schema against the Primary Key rules.
pub fn validate_schema(schema: &TableSchema) -> Result<(), SqlError> {
    if schema.key_count == 0 {
        return Err(SqlError::new(
            "Getting analyzing error. Detail message: The emulator only supports PRIMARY KEY tables.",
        ));
    }
    // ColumnDef.analyze: the name first (FeNameFormat.checkColumnName), then the default.
    for column in &schema.columns {
        check_column_name(&column.name)?;
        crate::defaults::validate_default(column).map_err(|detail| {
            SqlError::new(format!(
                "Getting analyzing error. Detail message: {detail}."
            ))
        })?;
    }
    for (i, column) in schema.columns.iter().enumerate() {
        if schema.columns[..i]
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&column.name))
        {
            return Err(SqlError::new(format!(
                "Getting analyzing error. Detail message: Duplicate column name '{}'.",
                column.name
            )));
        }
    }
    for key in schema.key_columns() {
        if !key.ty.allowed_in_primary_key() {
            return Err(SqlError::new(format!(
                "Getting analyzing error. Detail message: primary key column[{}] type not supported: {}.",
                key.name,
                key.ty.sql_name()
            )));
        }
    }
    for name in &schema.distributed_by {
        let in_key = schema
            .key_columns()
            .iter()
            .any(|k| k.name.eq_ignore_ascii_case(name));
        if !in_key {
            return Err(SqlError::new(format!(
                "Getting analyzing error. Detail message: Distribution column[{name}] is not key column."
            )));
        }
    }
    Ok(())
}

/// Apply a finished job's ops to a table, rewriting rows.
pub fn apply_alter(table: &mut Table, ops: &[AlterOp], schema_version: u64) -> Result<(), String> {
    let mut schema = (*table.schema).clone();
    for op in ops {
        match op {
            AlterOp::Add { column, position } => {
                let fill = column.default_value()?.unwrap_or(Value::Null);
                let position = (*position).min(schema.columns.len());
                schema.columns.insert(position, column.clone());
                for row in table.rows.values_mut() {
                    row.insert(position, fill.clone());
                }
            }
            AlterOp::Drop(name) => {
                let Some(index) = schema.column_index(name) else {
                    return Err(format!("Column does not exists: {name}"));
                };
                schema.columns.remove(index);
                for row in table.rows.values_mut() {
                    row.remove(index);
                }
            }
            AlterOp::Modify(column) => {
                let Some(index) = schema.column_index(&column.name) else {
                    return Err(format!("Column[{}] does not exists", column.name));
                };
                // Convert every value first: one that does not convert fails the BE's task and
                // the job is cancelled with the table unchanged (`SchemaChangeJobV2`).
                let from = &schema.columns[index].ty;
                let mut converted = Vec::with_capacity(table.rows.len());
                for row in table.rows.values() {
                    let value = match row[index].to_text() {
                        None => Value::Null,
                        Some(text) => crate::convert::from_text(&text, &column.ty, &column.name)
                            .map_err(|_| {
                                format!(
                                    "schema change task failed: failed to convert {} to {}",
                                    from.sql_name(),
                                    column.ty.sql_name()
                                )
                            })?,
                    };
                    converted.push(value);
                }
                for (row, value) in table.rows.values_mut().zip(converted) {
                    row[index] = value;
                }
                schema.columns[index] = column.clone();
            }
        }
    }
    schema.schema_version = schema_version;
    table.schema = Arc::new(schema);
    Ok(())
}

/// Default ALTER job duration when no fault slows it.
pub const DEFAULT_ALTER_DURATION: Duration = Duration::from_millis(300);
