//! `StarRocksSink`: the [`Sink`] that keeps StarRocks Primary Key tables identical to the
//! PostgreSQL tables.
//!
//! Per table it holds the encoder of the current shape; a batch becomes ordered loads
//! ([`plan_loads`]), each encoded to one JSON body and handed to a [`Loader`] (Stream Load
//! with labels, retries and outcome resolution) under a deterministic label. A load returns
//! only when StarRocks took it durably, so `write_batch` returning `Ok` means durable.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::decode::TupleValue;
use crate::schema::type_map::{
    map_pg_type, StarRocksType, TypeMapOptions, UnsupportedType, ValueEncoding,
    UNKNOWN_TYPE_REJECTED,
};
use crate::schema::TableSchema;
use crate::sink::{Batch, BatchOrigin, Sink, SinkError};

use super::datetime::synced_at_now;
use super::ddl::{ColumnDef, DescribedColumn, StarRocksDdl};
use super::defaults::added_column_default;
use super::encode::{audit_columns, ColumnSelection, DeleteMode, EncoderOptions, TableEncoder};
use super::plan::{plan_loads, RowOp, RowValues};
use super::rows_body::RowsBody;
use super::stream_load::LoadBody;

/// One Stream Load to make durable.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub table: String,
    pub label: String,
    /// The `columns` header.
    pub columns: String,
    pub partial_update: bool,
    pub body: LoadBody,
    pub rows: usize,
}

/// A load that could not be made durable (after the loader's own retries).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LoadFailure {
    pub message: String,
}

/// Sends loads and resolves their outcome; `Ok` = durable in StarRocks.
pub trait Loader: Send + Sync + 'static {
    fn load(&self, request: LoadRequest) -> impl Future<Output = Result<(), LoadFailure>> + Send;

    /// Whether StarRocks said "too many versions" for `table` since the last call.
    fn take_too_many_versions(&self, _table: &str) -> bool {
        false
    }

    /// Makes a load ready to commit (`transactional = true`: begin, load, prepare) and returns
    /// what `commit` needs; `None` when nothing is left to commit. By default a load is
    /// committed at once.
    fn stage(
        &self,
        request: LoadRequest,
    ) -> impl Future<Output = Result<Option<StagedLoad>, LoadFailure>> + Send {
        async move { self.load(request).await.map(|()| None) }
    }

    /// Commits what `stage` prepared.
    fn commit(&self, _staged: StagedLoad) -> impl Future<Output = Result<(), LoadFailure>> + Send {
        async { Ok(()) }
    }
}

/// A prepared, uncommitted load (transactional mode).
#[derive(Debug, Clone)]
pub struct StagedLoad {
    pub table: String,
    pub label: String,
}

/// The `[sink.starrocks]` options the sink itself uses.
#[derive(Debug, Clone)]
pub struct StarRocksSinkOptions {
    /// Label prefix: the slot name (labels must be unique per database).
    pub label_prefix: String,
    pub create_tables: bool,
    pub delete_mode: DeleteMode,
    pub audit_columns: bool,
    pub type_options: TypeMapOptions,
    /// `PROPERTIES` of created tables (e.g. `replication_num`).
    pub table_properties: Vec<(String, String)>,
    pub alter_timeout: Duration,
}

struct TableState {
    schema: Arc<TableSchema>,
    encoder: Arc<TableEncoder>,
    key_indexes: Vec<usize>,
}

pub struct StarRocksSink<L: Loader> {
    ddl: StarRocksDdl,
    loader: L,
    options: StarRocksSinkOptions,
    tables: Mutex<HashMap<u32, Arc<TableState>>>,
}

impl<L: Loader> StarRocksSink<L> {
    pub fn new(ddl: StarRocksDdl, loader: L, options: StarRocksSinkOptions) -> Self {
        StarRocksSink {
            ddl,
            loader,
            options,
            tables: Mutex::new(HashMap::new()),
        }
    }

    fn error(&self, table: &TableSchema, message: impl Into<String>) -> SinkError {
        SinkError {
            sink: "starrocks",
            table: table.name.to_string(),
            message: message.into(),
            source: None,
        }
    }

    fn state(&self, oid: u32) -> Option<Arc<TableState>> {
        self.tables
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&oid)
            .cloned()
    }

    async fn commit_staged(
        &self,
        table: &TableSchema,
        staged: &mut Vec<StagedLoad>,
    ) -> Result<(), SinkError> {
        for load in staged.drain(..) {
            let label = load.label.clone();
            self.loader.commit(load).await.map_err(|failure| {
                self.error(
                    table,
                    format!("commit of {label} failed: {}", failure.message),
                )
            })?;
        }
        Ok(())
    }

    fn encoder_options(&self, not_null_columns: Vec<usize>) -> EncoderOptions {
        EncoderOptions {
            delete_mode: self.options.delete_mode,
            audit_columns: self.options.audit_columns,
            key_columns: None,
            not_null_columns,
        }
    }

    /// The StarRocks columns a PostgreSQL shape needs: keys, values, audit columns.
    fn column_defs(
        &self,
        schema: &TableSchema,
    ) -> Result<(Vec<ColumnDef>, Vec<ColumnDef>), SinkError> {
        required_columns(
            schema,
            &self.options.type_options,
            &self.encoder_options(Vec::new()),
        )
        .map_err(|error| {
            let fix = if error.source.reason == UNKNOWN_TYPE_REJECTED {
                "; set it to \"text\" (the default) to store the value's text form, change the \
                 column's type, or leave the table out of the publication (`dbmazz check` names \
                 the type)"
            } else {
                ""
            };
            self.error(schema, format!("{error}{fix}"))
        })
    }

    /// First sight of a table: check it exists with every column, or create it.
    async fn prepare_table(
        &self,
        schema: &Arc<TableSchema>,
    ) -> Result<Vec<DescribedColumn>, SinkError> {
        let table = schema.name.name.as_str();
        let ddl_error = |error: super::ddl::DdlError| self.error(schema, error.to_string());
        let (keys, values) = self.column_defs(schema)?;
        if keys.is_empty() {
            return Err(self.error(
                schema,
                "has no key columns in its replica identity; give it a primary key, or name its \
                 key columns in source.key_columns (with REPLICA IDENTITY FULL)",
            ));
        }
        let described = match self.ddl.describe(table).await.map_err(ddl_error)? {
            Some(described) => described,
            None if self.options.create_tables => {
                if !self.ddl.database_exists().await.map_err(ddl_error)? {
                    self.ddl.create_database().await.map_err(ddl_error)?;
                }
                self.ddl
                    .create_table(table, &keys, &values, &self.options.table_properties)
                    .await
                    .map_err(ddl_error)?;
                tracing::info!(table = %schema.name, "created StarRocks table");
                self.ddl
                    .describe(table)
                    .await
                    .map_err(ddl_error)?
                    .unwrap_or_default()
            }
            // Name the database when it is what is missing: "table does not exist" would send
            // the operator looking for the wrong thing.
            None if !self.ddl.database_exists().await.map_err(ddl_error)? => {
                let database = self.ddl.database();
                return Err(self.error(
                    schema,
                    format!(
                        "database {database} does not exist in StarRocks: create it \
                         (CREATE DATABASE {database}), fix sink.starrocks.database, or set \
                         sink.starrocks.create_tables = true"
                    ),
                ));
            }
            None => {
                return Err(self.error(
                    schema,
                    format!(
                        "table {}.{table} does not exist in StarRocks: create it, or set \
                         sink.starrocks.create_tables = true",
                        self.ddl.database()
                    ),
                ))
            }
        };
        let missing = missing_columns(&keys, &values, &described);
        let has = |name: &str| described.iter().any(|d| d.name.eq_ignore_ascii_case(name));
        let lacks_a_key = keys.iter().any(|key| !has(&key.name));
        if !missing.is_empty() && self.options.create_tables && !lacks_a_key {
            // dbmazz manages this table: a column PostgreSQL has and StarRocks lacks was added
            // while dbmazz was not applying it (stopped between the two ALTERs, the slot
            // still before the first row of the new shape) or audit columns were turned on.
            for wanted in values.iter().filter(|wanted| !has(&wanted.name)) {
                match schema
                    .columns
                    .iter()
                    .find(|column| column.name == wanted.name)
                {
                    Some(column) => {
                        let (clause, without_default) = self.add_column_clause(schema, column)?;
                        self.run_add_column(schema, &column.name, &clause, &without_default)
                            .await?;
                    }
                    None => {
                        let clause = format!(
                            "ADD COLUMN {} {} NULL",
                            super::ddl::quote(&wanted.name),
                            wanted.sql_type
                        );
                        self.run_add_column(schema, &wanted.name, &clause, &clause)
                            .await?;
                    }
                }
            }
            return self
                .ddl
                .describe(table)
                .await
                .map_err(ddl_error)?
                .ok_or_else(|| self.error(schema, "table gone while adding columns"));
        }
        if !missing.is_empty() {
            return Err(self.error(
                schema,
                format!(
                    "StarRocks table {}.{table} lacks columns: {} (add them with ALTER TABLE ... ADD COLUMN)",
                    self.ddl.database(),
                    missing.join(", ")
                ),
            ));
        }
        Ok(described)
    }

    /// A changed shape: ADD / DROP / safe MODIFY COLUMN, each waited for.
    async fn alter_table(&self, old: &TableSchema, new: &TableSchema) -> Result<(), SinkError> {
        let table = new.name.name.as_str();
        let old_keys: Vec<&str> = old
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| c.name.as_str())
            .collect();
        let new_keys: Vec<&str> = new
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| c.name.as_str())
            .collect();
        if old_keys != new_keys {
            return Err(self.error(
                new,
                format!(
                    "primary key changed from ({}) to ({}): StarRocks cannot change a Primary Key \
                     table's key; recreate the StarRocks table and re-snapshot it",
                    old_keys.join(", "),
                    new_keys.join(", ")
                ),
            ));
        }
        let map = |column: &crate::schema::ColumnSchema| {
            map_pg_type(
                column.type_oid,
                column.type_modifier,
                &self.options.type_options,
            )
            .map(|mapping| mapping.starrocks_type)
            .map_err(|error| self.error(new, format!("column {}: {error}", column.name)))
        };
        // What StarRocks has now: a change may be applied already (a run that stopped before
        // the slot moved past it, or a table created from a newer shape by the snapshot), and
        // StarRocks refuses to add a column twice. No table: `prepare_table` creates it.
        let Some(described) = self
            .ddl
            .describe(table)
            .await
            .map_err(|error| self.error(new, error.to_string()))?
        else {
            return Ok(());
        };
        let described_type = |name: &str| {
            described
                .iter()
                .find(|column| column.name.eq_ignore_ascii_case(name))
                .map(|column| column.sql_type.replace(' ', "").to_ascii_lowercase())
        };
        let mut clauses = Vec::new();
        // ADD COLUMN clauses with a DEFAULT → (column, the clause without it).
        let mut added: HashMap<String, (String, String)> = HashMap::new();
        for column in &new.columns {
            match old.columns.iter().find(|old| old.name == column.name) {
                None if described_type(&column.name).is_some() => {
                    tracing::info!(table = %new.name, column = %column.name,
                        "column already in StarRocks: not added again");
                }
                None => {
                    let (clause, without_default) = self.add_column_clause(new, column)?;
                    added.insert(clause.clone(), (column.name.clone(), without_default));
                    clauses.push(clause);
                }
                Some(previous)
                    if previous.type_oid != column.type_oid
                        || previous.type_modifier != column.type_modifier =>
                {
                    let (from, to) = (map(previous)?, map(column)?);
                    let already = described_type(&column.name)
                        .is_some_and(|current| current == to.to_sql().to_ascii_lowercase());
                    if from != to && !already {
                        if !is_safe_widening(&from, &to) {
                            return Err(self.error(
                                new,
                                format!(
                                    "column {} changed from {} to {}, which StarRocks cannot convert in place; \
                                     change the StarRocks column yourself and restart",
                                    column.name,
                                    from.to_sql(),
                                    to.to_sql()
                                ),
                            ));
                        }
                        clauses.push(format!(
                            "MODIFY COLUMN {} {} NULL",
                            super::ddl::quote(&column.name),
                            to.to_sql()
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        for column in &old.columns {
            if !new.columns.iter().any(|new| new.name == column.name)
                && described_type(&column.name).is_some()
            {
                clauses.push(format!("DROP COLUMN {}", super::ddl::quote(&column.name)));
            }
        }
        for clause in clauses {
            match added.get(&clause) {
                Some((column, without_default)) => {
                    self.run_add_column(new, column, &clause, without_default)
                        .await?
                }
                None => {
                    tracing::info!(table = %new.name, clause, "altering StarRocks table");
                    self.ddl
                        .alter_and_wait(table, &clause, self.options.alter_timeout)
                        .await
                        .map_err(|error| self.error(new, error.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// Runs an `ADD COLUMN` clause; when StarRocks refuses its DEFAULT (a rule `defaults` did
    /// not predict), the column is added without it: it has to exist, and its older rows are
    /// a known, reported gap.
    async fn run_add_column(
        &self,
        schema: &TableSchema,
        column: &str,
        clause: &str,
        without_default: &str,
    ) -> Result<(), SinkError> {
        let table = schema.name.name.as_str();
        tracing::info!(table = %schema.name, clause, "altering StarRocks table");
        match self
            .ddl
            .alter_and_wait(table, clause, self.options.alter_timeout)
            .await
        {
            Ok(()) => Ok(()),
            Err(error)
                if clause != without_default
                    && error.to_string().contains("Invalid default value") =>
            {
                self.report_unfilled(schema, column, "default_refused", &error.to_string());
                self.ddl
                    .alter_and_wait(table, without_default, self.options.alter_timeout)
                    .await
                    .map_err(|error| self.error(schema, error.to_string()))
            }
            Err(error) => Err(self.error(schema, error.to_string())),
        }
    }

    /// Logs and counts an added column whose older rows stay NULL in StarRocks.
    fn report_unfilled(
        &self,
        table: &TableSchema,
        column: &str,
        reason: &'static str,
        detail: &str,
    ) {
        let table_name = table.name.to_string();
        crate::ops::metrics().count_unfilled_added_column(&table_name, column, reason);
        tracing::warn!(
            table = %table_name,
            column,
            reason,
            detail,
            "rows that existed before this column was added are NULL in StarRocks but may hold \
             a value in PostgreSQL; re-snapshot the table to repair them \
             (dbmazz snapshot --table {table_name})"
        );
    }

    /// `ADD COLUMN c T NULL [DEFAULT v]`: the DEFAULT gives rows older than the column
    /// PostgreSQL's value for them (see [`super::defaults`]); when StarRocks cannot be given
    /// it, the column is added without one, and the gap is logged and counted. Returns the
    /// clause, and the same clause without its DEFAULT.
    fn add_column_clause(
        &self,
        table: &TableSchema,
        column: &crate::schema::ColumnSchema,
    ) -> Result<(String, String), SinkError> {
        let mapping = map_pg_type(
            column.type_oid,
            column.type_modifier,
            &self.options.type_options,
        )
        .map_err(|error| self.error(table, format!("column {}: {error}", column.name)))?;
        let default = match added_column_default(column.existing_rows.as_ref(), &mapping) {
            Ok(Some(literal)) => format!(" DEFAULT {literal}"),
            Ok(None) => String::new(),
            Err(unfilled) => {
                self.report_unfilled(table, &column.name, unfilled.reason, &unfilled.detail);
                String::new()
            }
        };
        let without_default = format!(
            "ADD COLUMN {} {} NULL",
            super::ddl::quote(&column.name),
            mapping.starrocks_type.to_sql()
        );
        Ok((format!("{without_default}{default}"), without_default))
    }

    fn install(
        &self,
        schema: &Arc<TableSchema>,
        described: &[DescribedColumn],
    ) -> Result<(), SinkError> {
        let not_null_columns = schema
            .columns
            .iter()
            .enumerate()
            .filter(|(_, column)| {
                !column.is_key
                    && described
                        .iter()
                        .any(|d| d.name.eq_ignore_ascii_case(&column.name) && !d.nullable)
            })
            .map(|(index, _)| index)
            .collect();
        let encoder = TableEncoder::from_schema(
            schema,
            &self.options.type_options,
            self.encoder_options(not_null_columns),
        )
        .map_err(|error| self.error(schema, error.to_string()))?;
        let state = TableState {
            schema: Arc::clone(schema),
            encoder: Arc::new(encoder),
            key_indexes: schema.key_indexes().collect(),
        };
        self.tables
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(schema.relation_oid, Arc::new(state));
        Ok(())
    }

    /// Fills a key-changing upsert's unchanged TOAST columns from the old key's row in
    /// StarRocks (every earlier load is durable by now, and the delete of the old key is in
    /// this load, so the row is still there). If it is not — e.g. a replay after the old key
    /// was already deleted — the upsert becomes partial and leaves those columns as they are
    /// at the new key.
    async fn carry_values(
        &self,
        schema: &TableSchema,
        load: &mut super::plan::PlannedLoad,
        carry: &super::plan::Carry,
    ) -> Result<(), SinkError> {
        let mapping = |index: usize| {
            let column = &schema.columns[index];
            map_pg_type(
                column.type_oid,
                column.type_modifier,
                &self.options.type_options,
            )
            .map(|mapping| mapping.encoding)
            .map_err(|error| self.error(schema, format!("column {}: {error}", column.name)))
        };
        let mut conditions = Vec::new();
        for index in schema.key_indexes() {
            let literal = match carry.old_key.get(index) {
                Some(TupleValue::Text(bytes)) => {
                    sql_literal(&String::from_utf8_lossy(bytes), &mapping(index)?)
                }
                _ => return Ok(()),
            };
            conditions.push((schema.columns[index].name.as_str(), literal));
        }
        let columns: Vec<&str> = carry
            .columns
            .iter()
            .map(|&index| schema.columns[index].name.as_str())
            .collect();
        let found = self
            .ddl
            .select_row(&schema.name.name, &columns, &conditions)
            .await
            .map_err(|error| self.error(schema, error.to_string()))?;
        let Some(RowOp::Upsert {
            values: RowValues::Tuple(values),
            ..
        }) = load.rows.get_mut(carry.row)
        else {
            return Ok(());
        };
        match found {
            Some(found) => {
                for (&index, value) in carry.columns.iter().zip(found) {
                    let carried = match value {
                        None => TupleValue::Null,
                        Some(text) => match mapping(index)? {
                            // StarRocks holds bytea as bare hex; PostgreSQL's text form has \x.
                            ValueEncoding::ByteaHex { .. } => {
                                TupleValue::Text(Bytes::from(format!("\\x{text}")))
                            }
                            ValueEncoding::Text { .. } | ValueEncoding::Json => {
                                TupleValue::Text(Bytes::from(text))
                            }
                            // Other types are not TOASTed in practice; leave them to the
                            // partial update below.
                            _ => continue,
                        },
                    };
                    values.0[index] = carried;
                }
            }
            None => tracing::warn!(
                table = %schema.name,
                "key-changing update: the old row is not in StarRocks (replay?); unchanged TOAST columns keep the new key's current values"
            ),
        }
        let state = self
            .state(schema.relation_oid)
            .ok_or_else(|| self.error(schema, "table not prepared"))?;
        load.selection = ColumnSelection::present_in(&state.encoder, values);
        Ok(())
    }

    fn label(&self, batch: &Batch, part: usize) -> String {
        batch_label(&self.options.label_prefix, batch, part)
    }
}

/// The deterministic label of load `part` of `batch` (spec §2: `[-\w]{1,128}`; the prefix is
/// a slot name, at most 63 characters of `[a-z0-9_]`).
fn batch_label(prefix: &str, batch: &Batch, part: usize) -> String {
    let oid = batch.table.relation_oid;
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

/// Labels are at most 128 characters: a longer one (long slot name and large numbers) keeps
/// its first 100 characters and ends with a digest of the whole, so it stays deterministic
/// and distinct.
fn fit_label(label: String) -> String {
    const MAX_LABEL: usize = 128;
    if label.len() <= MAX_LABEL {
        return label;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, label.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let cut = (0..=100)
        .rev()
        .find(|&index| label.is_char_boundary(index))
        .unwrap_or(0);
    format!("{}-{hex}", &label[..cut])
}

/// A key value as a SQL literal: numbers bare, everything else quoted.
/// A column whose PostgreSQL type cannot be replicated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {source}")]
pub struct UnsupportedColumn {
    pub column: String,
    #[source]
    pub source: UnsupportedType,
}

/// The StarRocks columns a PostgreSQL table shape needs: the key columns (the shape's replica
/// identity), then the value columns and the audit columns `encoder` adds. Used to create
/// tables and, with [`missing_columns`], to check existing ones (here and by `dbmazz check`).
pub fn required_columns(
    schema: &TableSchema,
    type_options: &TypeMapOptions,
    encoder: &EncoderOptions,
) -> Result<(Vec<ColumnDef>, Vec<ColumnDef>), UnsupportedColumn> {
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for column in &schema.columns {
        let mapping =
            map_pg_type(column.type_oid, column.type_modifier, type_options).map_err(|source| {
                UnsupportedColumn {
                    column: column.name.clone(),
                    source,
                }
            })?;
        let definition = ColumnDef {
            name: column.name.clone(),
            sql_type: mapping.starrocks_type.to_sql(),
            nullable: !column.is_key,
        };
        if column.is_key {
            keys.push(definition);
        } else {
            values.push(definition);
        }
    }
    for (name, sql_type) in audit_columns(encoder) {
        values.push(ColumnDef {
            name: name.to_string(),
            sql_type: sql_type.to_sql(),
            nullable: true,
        });
    }
    Ok((keys, values))
}

/// The wanted columns an existing StarRocks table lacks, as `name TYPE` (names compare
/// case-insensitively, as StarRocks does).
pub fn missing_columns(
    keys: &[ColumnDef],
    values: &[ColumnDef],
    described: &[DescribedColumn],
) -> Vec<String> {
    keys.iter()
        .chain(values.iter())
        .filter(|wanted| {
            !described
                .iter()
                .any(|column| column.name.eq_ignore_ascii_case(&wanted.name))
        })
        .map(|wanted| format!("{} {}", wanted.name, wanted.sql_type))
        .collect()
}

fn sql_literal(text: &str, encoding: &ValueEncoding) -> String {
    match encoding {
        ValueEncoding::Integer { .. } | ValueEncoding::Decimal { .. }
            if !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.') =>
        {
            text.to_string()
        }
        _ => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''")),
    }
}

/// StarRocks can widen these in place (schema change without rewriting keys).
fn is_safe_widening(from: &StarRocksType, to: &StarRocksType) -> bool {
    use StarRocksType as T;
    let rank = |t: &StarRocksType| match t {
        T::TinyInt => Some(1),
        T::SmallInt => Some(2),
        T::Int => Some(3),
        T::BigInt => Some(4),
        T::LargeInt => Some(5),
        _ => None,
    };
    match (from, to) {
        (T::Varchar { bytes: a }, T::Varchar { bytes: b }) => b >= a,
        (T::Float, T::Double) => true,
        (
            T::Decimal {
                precision: p1,
                scale: s1,
            },
            T::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 == s2 && p2 >= p1,
        _ => matches!((rank(from), rank(to)), (Some(a), Some(b)) if b >= a),
    }
}

impl<L: Loader> Sink for StarRocksSink<L> {
    fn name(&self) -> &'static str {
        "starrocks"
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), SinkError> {
        let Some(mut state) = self.state(batch.table.relation_oid) else {
            return Err(self.error(&batch.table, "rows before the table was prepared"));
        };
        if !state.schema.same_shape(&batch.table) {
            // A snapshot of the table read (and announced) a newer shape than the stream has
            // reached; the stream's older changes follow it. The table is prepared for their
            // shape again: what StarRocks lacks for them is added back, and the stream's own
            // schema change removes it later (`alter_table` goes by what StarRocks has).
            tracing::info!(table = %batch.table.name, "rows of an older shape than the snapshot's: preparing the table for them");
            let described = self.prepare_table(&batch.table).await?;
            self.install(&batch.table, &described)?;
            state = self
                .state(batch.table.relation_oid)
                .ok_or_else(|| self.error(&batch.table, "rows before the table was prepared"))?;
        }
        let (loads, notes) = plan_loads(
            &batch.changes,
            &state.encoder,
            &state.key_indexes,
            self.options.delete_mode,
        );
        if notes.unfilled_key_changes > 0 {
            tracing::debug!(
                table = %batch.table.name,
                rows = notes.unfilled_key_changes,
                "carrying unchanged TOAST values of key-changing updates from StarRocks"
            );
        }
        let synced_at = synced_at_now();
        // Transactional mode: every part is prepared first, then all are committed in order.
        let mut staged: Vec<StagedLoad> = Vec::new();
        for (part, mut load) in loads.into_iter().enumerate() {
            if let Some(carry) = load.carry.take() {
                // Carried values are read from StarRocks: earlier parts must be visible.
                self.commit_staged(&batch.table, &mut staged).await?;
                self.carry_values(&batch.table, &mut load, &carry).await?;
            }
            if load.rows.is_empty() {
                continue;
            }
            let body = RowsBody::new(
                Arc::clone(&state.encoder),
                load.rows,
                load.selection.clone(),
                synced_at.clone(),
            );
            let request = LoadRequest {
                table: batch.table.name.name.clone(),
                label: self.label(batch, part),
                columns: state.encoder.columns_header(&load.selection),
                partial_update: !load.selection.is_all(),
                rows: body.rows(),
                body: LoadBody::Source(Arc::new(Arc::clone(&body))),
            };
            let label = request.label.clone();
            let stage = self.loader.stage(request).await.map_err(|failure| {
                self.error(
                    &batch.table,
                    format!("load {label} failed: {}", failure.message),
                )
            })?;
            staged.extend(stage);
            for value in body.take_lossy() {
                crate::ops::metrics().count_lossy(
                    &batch.table.name.to_string(),
                    &value.column,
                    value.reason.as_str(),
                );
                tracing::warn!(
                    table = %batch.table.name,
                    column = %value.column,
                    reason = value.reason.as_str(),
                    key = %value.key,
                    "value stored as NULL: StarRocks cannot hold it exactly"
                );
            }
        }
        self.commit_staged(&batch.table, &mut staged).await
    }

    async fn truncate(&self, table: &Arc<TableSchema>) -> Result<(), SinkError> {
        self.ddl
            .truncate(&table.name.name)
            .await
            .map_err(|error| self.error(table, error.to_string()))
    }

    fn take_slow_down(&self, relation_oid: u32) -> bool {
        self.state(relation_oid)
            .is_some_and(|state| self.loader.take_too_many_versions(&state.schema.name.name))
    }

    async fn holds_rows(&self, table: &Arc<TableSchema>) -> Option<bool> {
        self.ddl.has_rows(&table.name.name).await.ok()
    }

    async fn apply_schema_change(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        if let Some(old) = old {
            self.alter_table(old, new).await?;
        }
        let described = self.prepare_table(new).await?;
        self.install(new, &described)
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use crate::schema::TableName;
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
            batch_label(prefix, &batch(BatchOrigin::Stream), 0),
            batch_label(prefix, &longer, 0),
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
}
