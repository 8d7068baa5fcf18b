//! A sink wrapper that tells the sink what PostgreSQL's catalog knows and the stream does not:
//! what rows older than an added column hold in it ([`super::added_columns`]), and which
//! column is which across a schema change ([`super::column_lineage`]): a rename, a column
//! dropped and added back, and what changed while dbmazz was stopped (the shape StarRocks
//! last got is kept in `<state_dir>/table-shapes.json`).
//!
//! The sink itself never talks to PostgreSQL; everything but schema changes passes straight
//! through.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::added_columns::read_existing_rows;
use super::column_lineage::{
    applied_schema, before_renames, column_origins, number_columns, number_columns_loosely,
    number_columns_partly, read_catalog_columns, renamed_by_position, CatalogColumn, Lineage,
};
use crate::checkpoint::{AppliedShapes, NumberedShape};
use crate::schema::{ColumnSchema, ExistingRows, TableName, TableSchema};
use crate::sink::{Batch, Sink, SinkError};
use crate::source::{connect_sql, PgConnectConfig, SourceError};

pub struct CatalogFacts<S: Sink> {
    inner: Arc<S>,
    /// `None`: no catalog to read (schema changes pass through as the stream gives them).
    connect: Option<PgConnectConfig>,
    /// Opened at the first table announced to the sink, reopened after an error.
    client: Mutex<Option<tokio_postgres::Client>>,
    shapes: std::sync::Mutex<AppliedShapes>,
}

/// A schema change as the sink is to see it.
struct Prepared {
    /// The `old` side when the stream has none this run (the table's first Relation): the
    /// shape StarRocks last got (from the shape file), or this shape under its renamed
    /// columns' earlier names.
    applied: Option<Arc<TableSchema>>,
    new: Arc<TableSchema>,
    /// To record once the sink applied `new` (loosely numbered when the catalog has moved
    /// on too far to number it: what StarRocks got must be known at the next start).
    numbered: Option<NumberedShape>,
}

impl<S: Sink> CatalogFacts<S> {
    /// `state_dir`: where the applied shapes are kept (`None`: in memory only).
    pub fn new(inner: Arc<S>, connect: Option<PgConnectConfig>, state_dir: Option<&Path>) -> Self {
        let shapes = state_dir.map_or_else(AppliedShapes::in_memory, AppliedShapes::load);
        CatalogFacts {
            inner,
            connect,
            client: Mutex::new(None),
            shapes: std::sync::Mutex::new(shapes),
        }
    }

    fn applied_shape(&self, table: &TableSchema) -> Option<NumberedShape> {
        self.shapes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&table.name.to_string(), table.relation_oid)
            .cloned()
    }

    async fn prepare(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<Prepared, SinkError> {
        let unchanged = || Prepared {
            applied: None,
            new: Arc::clone(new),
            numbered: None,
        };
        let Some(connect) = &self.connect else {
            return Ok(unchanged());
        };
        let mut client = self.client.lock().await;
        if client.as_ref().is_none_or(|client| client.is_closed()) {
            *client = Some(
                connect_sql(connect)
                    .await
                    .map_err(|error| catalog_error(self.inner.name(), new, error.to_string()))?,
            );
        }
        let Some(connected) = client.as_ref() else {
            return Ok(unchanged());
        };
        match self.read_facts(connected, old, new).await {
            Ok(prepared) => Ok(prepared),
            Err(error) => {
                // A broken connection is reopened by the next attempt.
                *client = None;
                Err(catalog_error(self.inner.name(), new, error.to_string()))
            }
        }
    }

    async fn read_facts(
        &self,
        client: &tokio_postgres::Client,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<Prepared, SourceError> {
        let catalog = read_catalog_columns(client, new.relation_oid).await?;
        let stored = self.applied_shape(new);
        // Exactly the catalog: this shape is the table's current one. Otherwise the table
        // changed again since, and the numbers come from the catalog and the stored shape.
        let exact = number_columns(new, &catalog);
        let numbered = exact
            .clone()
            .or_else(|| number_columns_partly(new, &catalog, stored.as_ref()));
        // Replaying a shape StarRocks already got (after a restart): nothing to follow.
        let already_applied = stored.is_some() && stored == numbered;
        // Columns StarRocks got that PostgreSQL has dropped since (by attribute number): the
        // shape that still had them may lie before the replay's start (StarRocks applies
        // changes ahead of the slot's confirmed position), so no Relation of this run would
        // ever say they went. Dropped at the table's first Relation.
        let gone = match (&stored, old) {
            (Some(stored), None) if !already_applied => dropped_since(stored, &catalog, new),
            _ => Vec::new(),
        };
        let recorded_before = stored.clone();
        let before = stored.filter(|_| !already_applied && numbered.is_some());
        let origins: HashMap<String, Lineage> = match (&before, &numbered) {
            (Some(before), Some(now)) => {
                let names: Vec<&str> = match old {
                    Some(old) => old.columns.iter().map(|c| c.name.as_str()).collect(),
                    None => before.columns.iter().map(|c| c.name.as_str()).collect(),
                };
                column_origins(before, now, &names)
            }
            _ => HashMap::new(),
        };
        // A table's first Relation of a run: what StarRocks last got is the `old` side. All
        // of it when this shape is the current one (columns dropped while dbmazz was stopped
        // are dropped too); only the renames otherwise (a stored shape newer than this
        // Relation must not be undone).
        let applied = match (old, &before, &exact) {
            (None, Some(before), Some(_)) => Some(Arc::new(applied_schema(before, new))),
            (None, _, None) if !origins.is_empty() || !gone.is_empty() => {
                let mut old = before_renames(new, &origins);
                old.columns.extend(gone);
                Some(Arc::new(old))
            }
            _ => None,
        };
        // Columns whose older rows' values the catalog is asked for: added by name (every
        // value column at a table's first Relation: the sink may lack one), or recreated.
        let mut asked: Vec<String> = new
            .columns
            .iter()
            .filter(|column| match (old, origins.get(&column.name)) {
                (_, Some(Lineage::Renamed(_))) => false,
                (_, Some(_)) => true,
                (Some(old), None) => !old.columns.iter().any(|o| o.name == column.name),
                (None, None) => !column.is_key,
            })
            .map(|column| column.name.clone())
            .collect();
        let mut unknown: Vec<(String, String)> = Vec::new();
        if let (Some(old), None, false) = (old, &before, already_applied) {
            // No numbered shape to compare with: fall back on attribute order.
            let survivors: Vec<String> = old
                .columns
                .iter()
                .filter(|column| new.columns.iter().any(|n| n.name == column.name))
                .map(|column| column.name.clone())
                .collect();
            for name in renamed_by_position(&catalog, &asked, &survivors) {
                unknown.push((
                    name,
                    "the column is not new: a column renamed (RENAME COLUMN), whose rows keep \
                     their values in PostgreSQL; the stream cannot tell a rename from a drop \
                     and an add"
                        .into(),
                ));
            }
        }
        for (name, lineage) in &origins {
            if let Lineage::RenamedAmongOthers(from) = lineage {
                unknown.push((
                    name.clone(),
                    format!(
                        "the column is {from:?} renamed while other columns were renamed too \
                         (names swapped or passed along); StarRocks cannot follow that column \
                         by column"
                    ),
                ));
            }
        }
        asked.retain(|name| !unknown.iter().any(|(unknown, _)| unknown == name));
        let mut found = if asked.is_empty() {
            HashMap::new()
        } else {
            read_existing_rows(client, new.relation_oid, &asked).await?
        };
        for (name, reason) in unknown {
            found.insert(name, ExistingRows::Unknown(reason));
        }
        let mut filled = TableSchema::clone(new);
        for column in &mut filled.columns {
            if let Some(existing) = found.remove(&column.name) {
                column.existing_rows = Some(existing);
            }
            column.origin = origins.get(&column.name).map(Lineage::origin);
        }
        let recorded = numbered.or_else(|| {
            Some(number_columns_loosely(
                new,
                &catalog,
                recorded_before.as_ref(),
            ))
        });
        Ok(Prepared {
            applied,
            new: Arc::new(filled),
            numbered: recorded,
        })
    }
}

/// The value columns of `stored` the catalog no longer has (attribute numbers are never
/// reused) and `new` does not name, as the `old` side lists them.
fn dropped_since(
    stored: &NumberedShape,
    catalog: &[CatalogColumn],
    new: &TableSchema,
) -> Vec<ColumnSchema> {
    stored
        .columns
        .iter()
        .filter(|column| {
            !column.is_key
                && !catalog.iter().any(|live| live.attnum == column.attnum)
                && !new
                    .columns
                    .iter()
                    .any(|present| present.name == column.name)
        })
        .map(|column| {
            ColumnSchema::new(
                column.name.clone(),
                column.type_oid,
                column.type_modifier,
                false,
            )
        })
        .collect()
}

fn catalog_error(sink: &'static str, table: &TableSchema, message: String) -> SinkError {
    SinkError {
        sink,
        table: table.name.to_string(),
        message: format!(
            "cannot read the table's columns from the PostgreSQL catalog ({message}); dbmazz \
             needs them to fill rows that existed before an ADD COLUMN and to follow renamed \
             columns: check the source connection and restart"
        ),
        source: None,
    }
}

impl<S: Sink> Sink for CatalogFacts<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), SinkError> {
        self.inner.write_batch(batch).await
    }

    async fn truncate(&self, table: &Arc<TableSchema>) -> Result<(), SinkError> {
        self.inner.truncate(table).await
    }

    async fn apply_schema_change(
        &self,
        old: Option<&Arc<TableSchema>>,
        new: &Arc<TableSchema>,
    ) -> Result<(), SinkError> {
        let prepared = self.prepare(old, new).await?;
        let old = old.or(prepared.applied.as_ref());
        self.inner.apply_schema_change(old, &prepared.new).await?;
        if let Some(numbered) = prepared.numbered {
            self.shapes
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .record(&new.name.to_string(), numbered)
                .map_err(|error| SinkError {
                    sink: self.inner.name(),
                    table: new.name.to_string(),
                    message: format!(
                        "cannot record the table's shape in the state directory ({error}); \
                         check that it is writable"
                    ),
                    source: None,
                })?;
        }
        Ok(())
    }

    fn take_slow_down(&self, relation_oid: u32) -> bool {
        self.inner.take_slow_down(relation_oid)
    }

    async fn holds_rows(&self, table: &Arc<TableSchema>) -> Option<bool> {
        self.inner.holds_rows(table).await
    }

    async fn has_table(&self, table: &TableName) -> Option<bool> {
        self.inner.has_table(table).await
    }

    fn fill_unsent_before(&self, table: &TableName, before: crate::Lsn) {
        self.inner.fill_unsent_before(table, before)
    }

    fn forget_table(&self, table: &TableName) {
        self.inner.forget_table(table)
    }
}
