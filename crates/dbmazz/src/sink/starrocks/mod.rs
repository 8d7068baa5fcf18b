//! The StarRocks sink: Stream Load of JSON bodies into Primary Key tables.
//!
//! This module holds the encoder (rows → one JSON body per load); the HTTP client, labels,
//! retries and table management live beside it.
//!
//! ```text
//! RowChange ──values()──▶ TableEncoder::push_upsert / push_delete ──▶ JsonBody (Vec<u8>)
//!                         (ColumnMapping per column: schema::type_map)   │ finish()
//!                                                                        ▼
//!                  PUT /api/{db}/{table}/_stream_load  columns: TableEncoder::columns_header
//! ```
//!
//! Use, per table shape (rebuild the encoder when the `Arc<TableSchema>` changes):
//! 1. `TableEncoder::from_schema(&schema, &type_options, encoder_options)` (or `new` with
//!    mappings from `schema::type_map::map_pg_type`, e.g. after resolving domains);
//! 2. group the batch's rows by [`ColumnSelection`] (`All`, or `present_in` for rows with
//!    unchanged TOAST values, `keys` for soft deletes), keeping their order;
//! 3. per group: `JsonBody::new()`, `push_upsert` / `push_delete` per row, skip the load if
//!    `is_empty()`, `finish()` → (body, lossy values); send with `columns:
//!    columns_header(&selection)` (+ `partial_update: true` unless `selection.is_all()`);
//! 4. count and log every [`LossyValue`]; an [`EncodeError`] stops the pipeline.
//!
//! Values arrive in PostgreSQL's text output format under the session settings the source
//! sets (TimeZone=UTC, DateStyle=ISO, extra_float_digits=3, IntervalStyle=iso_8601,
//! client_encoding=UTF8); `docs/type-mapping.md` lists every conversion.

mod array;
pub mod datetime;
pub mod ddl;
mod encode;
mod loader;
mod plan;
mod rows_body;
mod sink;
pub mod stream_load;
mod values;

#[cfg(test)]
mod tests;

pub use ddl::{ColumnDef, DdlError, DescribedColumn, StarRocksDdl};
pub use encode::{
    audit_columns, ColumnSelection, DeleteMode, EncodeError, EncoderOptions, EncoderSetupError,
    JsonBody, LossyValue, RowMeta, TableEncoder, AUDIT_IS_DELETED, AUDIT_LSN, AUDIT_OP_TYPE,
    AUDIT_SYNCED_AT,
};
pub use loader::{connect_sink, HttpLoader};
pub use plan::{plan_loads, PlanNotes, PlannedLoad, RowOp, RowValues};
pub use sink::{
    missing_columns, required_columns, LoadFailure, LoadRequest, Loader, StagedLoad, StarRocksSink,
    StarRocksSinkOptions, UnsupportedColumn,
};
pub use values::LossyReason;
