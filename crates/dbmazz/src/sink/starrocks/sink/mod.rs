//! `StarRocksSink`: the [`Sink`] that keeps StarRocks Primary Key tables identical to the
//! PostgreSQL tables.
//!
//! Per table it holds the encoder of the current shape; a batch becomes ordered loads
//! ([`plan_loads`]), each encoded to one JSON body and handed to a [`Loader`] (Stream Load
//! with labels, retries and outcome resolution) under a deterministic label. A load returns
//! only when StarRocks took it durably, so `write_batch` returning `Ok` means durable.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::source_rows::SourceRows;
use crate::decode::{TupleData, TupleValue};
use crate::schema::type_map::{
    map_pg_type, Domains, TypeMapOptions, ValueEncoding, UNKNOWN_TYPE_REJECTED,
};
use crate::schema::{TableName, TableSchema};
use crate::sink::{Batch, Sink, SinkError};
use crate::source::PgConnectConfig;

use super::datetime::synced_at_now;
use super::ddl::{ColumnDef, DescribedColumn, StarRocksDdl};
use super::encode::{ColumnSelection, DeleteMode, EncoderOptions, TableEncoder};
use super::names::{column_name_problem_with, COLUMN_NAME_FIX};
use super::plan::{plan_loads, RowOp, RowValues};
use super::rows_body::RowsBody;
use super::stream_load::{LabelTaken, LoadBody};

mod alter;
mod columns;
mod labels;
mod unsent;

pub use columns::{missing_columns, required_columns, UnsupportedColumn};

/// PostgreSQL's first OID for objects users create (`FirstNormalObjectId`).
const FIRST_USER_OID: u32 = 16384;

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
    /// What the label already committed in StarRocks means (stream batches load again).
    pub label_taken: LabelTaken,
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
    /// The load itself: loaded again if StarRocks aborts it instead of committing it.
    pub request: super::stream_load::LoadRequest,
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
    /// Where unsent TOAST values of key changes are read (see `source_rows.rs`); without it
    /// they are read from StarRocks's old-key row, exact only when StarRocks is not ahead.
    source_rows: Option<SourceRows>,
    /// The source's domains as known now (those of `options.type_options` at first), and the
    /// user-defined type OIDs already looked up.
    domains: Mutex<(Domains, HashSet<u32>)>,
    /// Tables whose changes before a position get their unsent values from the source
    /// (`unsent.rs`).
    fill_windows: Mutex<HashMap<TableName, crate::Lsn>>,
}

impl<L: Loader> StarRocksSink<L> {
    pub fn new(ddl: StarRocksDdl, loader: L, options: StarRocksSinkOptions) -> Self {
        super::stream_load::zero_retry_counts();
        let domains = Arc::clone(&options.type_options.domains);
        StarRocksSink {
            ddl,
            loader,
            options,
            tables: Mutex::new(HashMap::new()),
            source_rows: None,
            domains: Mutex::new((domains, HashSet::new())),
            fill_windows: Mutex::new(HashMap::new()),
        }
    }

    /// The type map's options, with the domains known now.
    fn type_options(&self) -> TypeMapOptions {
        let domains = self
            .domains
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        TypeMapOptions {
            domains: Arc::clone(&domains.0),
            ..self.options.type_options.clone()
        }
    }

    /// A column of a user-defined type the domain list does not know may be of a domain
    /// created after the start: the domains are read again (once per such type), so it maps
    /// like its base type now — as it would after a restart — not as an unknown type.
    async fn learn_domains(&self, schema: &TableSchema) {
        let Some(source) = &self.source_rows else {
            return;
        };
        let unseen = {
            let mut domains = self
                .domains
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let (known, looked_up) = &mut *domains;
            let mut unseen = false;
            for column in &schema.columns {
                if column.type_oid >= FIRST_USER_OID
                    && !known.contains_key(&column.type_oid)
                    && looked_up.insert(column.type_oid)
                {
                    unseen = true;
                }
            }
            unseen
        };
        if !unseen {
            return;
        }
        match source.domains().await {
            Ok(read) => {
                let mut domains = self
                    .domains
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                domains.0 = Arc::new(read);
            }
            Err(error) => {
                tracing::warn!(table = %schema.name, %error, "cannot read the source's domain types again: a column of a domain created since the start is replicated as text");
            }
        }
    }

    /// Reads the unchanged TOAST values of key-changing updates from the source (as `dbmazz
    /// run` does), instead of from StarRocks.
    pub fn with_source_rows(mut self, connect: Option<PgConnectConfig>) -> Self {
        self.source_rows = connect.map(SourceRows::new);
        self
    }

    fn error(&self, table: &TableSchema, message: impl Into<String>) -> SinkError {
        SinkError {
            sink: "starrocks",
            table: table.name.to_string(),
            message: message.into(),
            source: None,
        }
    }

    /// A table of another schema (another relation) already loaded into the StarRocks table
    /// `schema` would go to (a table published later, under `snapshot.mode = "never"` too).
    fn other_table_of_the_same_name(&self, schema: &TableSchema) -> Option<TableName> {
        let tables = self
            .tables
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        tables
            .values()
            .find(|state| {
                state.schema.relation_oid != schema.relation_oid
                    && state.schema.name.name == schema.name.name
                    && state.schema.name != schema.name
            })
            .map(|state| state.schema.name.clone())
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
            &self.type_options(),
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
        self.learn_domains(schema).await;
        if let Some(other) = self.other_table_of_the_same_name(schema) {
            let database = self.ddl.database();
            let message = super::same_destination_message(&other, &schema.name, database);
            return Err(self.error(schema, message));
        }
        let names = schema.columns.iter().map(|column| column.name.as_str());
        if let Some(problem) = column_name_problem_with(names, &self.encoder_options(Vec::new())) {
            return Err(self.error(schema, format!("{problem}: {COLUMN_NAME_FIX}")));
        }
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
        let narrower = alter::narrower_columns(&values, &described);
        let described = if narrower.is_empty() {
            described
        } else if self.options.create_tables {
            // dbmazz manages this table: a column widened in PostgreSQL while dbmazz was not
            // applying it (stopped between the ALTER and the first row of the new shape).
            for (change, clause) in &narrower {
                tracing::info!(table = %schema.name, change, clause, "widening a StarRocks column widened in PostgreSQL while dbmazz was stopped");
                self.ddl
                    .alter_and_wait(table, clause, self.options.alter_timeout)
                    .await
                    .map_err(ddl_error)?;
            }
            self.ddl
                .describe(table)
                .await
                .map_err(ddl_error)?
                .ok_or_else(|| self.error(schema, "table gone while widening columns"))?
        } else {
            let (changes, clauses): (Vec<&str>, Vec<&str>) = narrower
                .iter()
                .map(|(change, clause)| (change.as_str(), clause.as_str()))
                .unzip();
            return Err(self.error(
                schema,
                format!(
                    "StarRocks table {}.{table} has columns narrower than PostgreSQL's: {} \
                     (run ALTER TABLE {table} {}; or set sink.starrocks.create_tables = true)",
                    self.ddl.database(),
                    changes.join(", "),
                    clauses.join(", ")
                ),
            ));
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
            &self.type_options(),
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

    /// Fills a key-changing upsert's unchanged TOAST columns: from PostgreSQL's row at the new
    /// key when the source is known (`source_rows.rs` says why), else from the old key's row
    /// in StarRocks (every earlier load is durable by now, and the delete of the old key is in
    /// this load, so the row is still there). When neither has the row the upsert becomes
    /// partial and leaves those columns as they are at the new key.
    async fn carry_values(
        &self,
        schema: &TableSchema,
        load: &mut super::plan::PlannedLoad,
        carry: &super::plan::Carry,
    ) -> Result<(), SinkError> {
        let Some(RowOp::Upsert {
            values: RowValues::Tuple(values),
            ..
        }) = load.rows.get_mut(carry.row)
        else {
            return Ok(());
        };
        let carried = match &self.source_rows {
            Some(source) => {
                self.carried_from_source(source, schema, values, carry)
                    .await?
            }
            None => self.carried_from_starrocks(schema, carry).await?,
        };
        for (&index, value) in carry.columns.iter().zip(carried) {
            if let Some(value) = value {
                values.0[index] = value;
            }
        }
        let state = self
            .state(schema.relation_oid)
            .ok_or_else(|| self.error(schema, "table not prepared"))?;
        load.selection = ColumnSelection::present_in(&state.encoder, values);
        Ok(())
    }

    /// The carried columns' values from PostgreSQL's row at the upsert's (new) key, in
    /// `carry.columns` order; empty when PostgreSQL has no such row now.
    async fn carried_from_source(
        &self,
        source: &SourceRows,
        schema: &TableSchema,
        values: &TupleData,
        carry: &super::plan::Carry,
    ) -> Result<Vec<Option<TupleValue>>, SinkError> {
        let mut key = Vec::new();
        for index in schema.key_indexes() {
            match values.0.get(index) {
                Some(TupleValue::Text(bytes)) => {
                    key.push((index, String::from_utf8_lossy(bytes).into_owned()));
                }
                _ => return Ok(Vec::new()),
            }
        }
        let found = source
            .read(schema, &key, &carry.columns)
            .await
            .map_err(|error| {
                self.error(
                    schema,
                    format!(
                        "reading unchanged TOAST values of a key change from PostgreSQL: {error}"
                    ),
                )
            })?;
        let Some(found) = found else {
            tracing::debug!(
                table = %schema.name,
                "key-changing update: the row is gone from PostgreSQL since (a later change removes it); unchanged TOAST columns left as they are"
            );
            return Ok(Vec::new());
        };
        Ok(found
            .into_iter()
            .map(|value| {
                Some(value.map_or(TupleValue::Null, |text| TupleValue::Text(Bytes::from(text))))
            })
            .collect())
    }

    /// The carried columns' values from the old key's row in StarRocks, in `carry.columns`
    /// order (`None`: a type left to the partial update); empty when the row is not there.
    async fn carried_from_starrocks(
        &self,
        schema: &TableSchema,
        carry: &super::plan::Carry,
    ) -> Result<Vec<Option<TupleValue>>, SinkError> {
        let mapping = |index: usize| {
            let column = &schema.columns[index];
            map_pg_type(column.type_oid, column.type_modifier, &self.type_options())
                .map(|mapping| mapping.encoding)
                .map_err(|error| self.error(schema, format!("column {}: {error}", column.name)))
        };
        let mut conditions = Vec::new();
        for index in schema.key_indexes() {
            let literal = match carry.old_key.get(index) {
                Some(TupleValue::Text(bytes)) => {
                    sql_literal(&String::from_utf8_lossy(bytes), &mapping(index)?)
                }
                _ => return Ok(Vec::new()),
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
        let Some(found) = found else {
            tracing::warn!(
                table = %schema.name,
                "key-changing update: the old row is not in StarRocks (replay?); unchanged TOAST columns keep the new key's current values"
            );
            return Ok(Vec::new());
        };
        let mut carried = Vec::with_capacity(found.len());
        for (&index, value) in carry.columns.iter().zip(found) {
            carried.push(match value {
                None => Some(TupleValue::Null),
                Some(text) => match mapping(index)? {
                    // StarRocks holds bytea as bare hex; PostgreSQL's text form has \x.
                    ValueEncoding::ByteaHex { .. } => {
                        Some(TupleValue::Text(Bytes::from(format!("\\x{text}"))))
                    }
                    ValueEncoding::Text { .. } | ValueEncoding::Json => {
                        Some(TupleValue::Text(Bytes::from(text)))
                    }
                    // Other types are not TOASTed in practice; left to the partial update.
                    _ => None,
                },
            });
        }
        Ok(carried)
    }
}

impl<L: Loader> StarRocksSink<L> {
    /// INSERTs whose TOASTed values PostgreSQL did not send (an UPDATE that moved a row into a
    /// publication's row filter): the values exist only in PostgreSQL, so the columns keep
    /// what StarRocks has at that key (NULL for a new row). Counted as lossy and logged: a
    /// re-snapshot of the table copies them.
    fn report_inserts_without_toast(&self, table: &TableSchema, columns: &[usize]) {
        let mut names: Vec<&str> = Vec::new();
        for &index in columns {
            let Some(column) = table.columns.get(index) else {
                continue;
            };
            crate::ops::metrics().count_lossy(
                &table.name.to_string(),
                &column.name,
                "toast_not_sent",
            );
            if !names.contains(&column.name.as_str()) {
                names.push(&column.name);
            }
        }
        tracing::warn!(
            table = %table.name,
            columns = %names.join(", "),
            values = columns.len(),
            "rows arrived as INSERTs without their unchanged TOAST values (an UPDATE moved them \
             into the publication's row filter): those columns are left as StarRocks has them \
             (NULL for new rows); run dbmazz snapshot --table {} to copy them",
            table.name
        );
    }
}

/// A key value as a SQL literal: numbers bare, everything else quoted.
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
        let filled = self.fill_from_source(batch).await?;
        let (loads, notes) = plan_loads(
            filled.as_deref().unwrap_or(&batch.changes),
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
        if !notes.inserts_without_toast_values.is_empty() {
            self.report_inserts_without_toast(&batch.table, &notes.inserts_without_toast_values);
        }
        let synced_at = synced_at_now();
        // Transactional mode: every part is prepared first, then all are committed in order.
        let mut staged: Vec<StagedLoad> = Vec::new();
        let parts = loads.len();
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
                label: self.label(batch, part, parts),
                columns: state.encoder.columns_header(&load.selection),
                partial_update: !load.selection.is_all(),
                rows: body.rows(),
                body: LoadBody::Source(Arc::new(Arc::clone(&body))),
                label_taken: match batch.origin {
                    crate::sink::BatchOrigin::Stream => LabelTaken::LoadAgain,
                    crate::sink::BatchOrigin::Snapshot { .. } => LabelTaken::AlreadyLoaded,
                },
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
                let stored = if value.altered {
                    "value stored altered (cut to fit, or with NULLed elements): StarRocks cannot hold it exactly (sink.starrocks.lossy_policy = \"error\" stops instead)"
                } else {
                    "value stored as NULL: StarRocks cannot hold it exactly (sink.starrocks.lossy_policy = \"error\" stops instead)"
                };
                tracing::warn!(
                    table = %batch.table.name,
                    column = %value.column,
                    reason = value.reason.as_str(),
                    key = %value.key,
                    "{stored}"
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

    async fn has_table(&self, table: &TableName) -> Option<bool> {
        // A missing database reads as a missing table (`describe` says `None` for both).
        self.ddl
            .describe(&table.name)
            .await
            .ok()
            .map(|found| found.is_some())
    }

    fn fill_unsent_before(&self, table: &TableName, before: crate::Lsn) {
        self.widen_fill_window(table, before);
    }

    fn forget_table(&self, table: &TableName) {
        // A batch of it still queued prepares the table again (it is described, not created).
        self.tables
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .retain(|_, state| state.schema.name != *table);
    }

    async fn apply_schema_change(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        self.learn_domains(new).await;
        if let Some(old) = old {
            self.alter_table(old, new).await?;
        }
        let described = self.prepare_table(new).await?;
        self.install(new, &described)
    }
}
