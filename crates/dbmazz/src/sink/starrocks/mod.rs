//! The StarRocks sink: Stream Load of JSON bodies into Primary Key tables.
//!
//! This module holds the encoder; the HTTP client, labels, retries and table management live
//! beside it.
//!
//! ```text
//! Batch ──plan_loads──▶ PlannedLoad (rows as RowImages, one ColumnSelection per load)
//!        ──RowsBody (BodySource)──▶ TableEncoder::push_upsert / push_delete, 256 KiB pieces
//!        ──▶ PUT /api/{db}/{table}/_stream_load (chunked)  columns: TableEncoder::columns_header
//! ```
//!
//! 1. `plan_loads` groups a batch's rows by [`ColumnSelection`] (`All`, `present_in` for rows
//!    with unchanged TOAST values, `keys` for soft deletes), keeping the order of each key's
//!    rows (rows of different keys share loads whatever their order: a batch alternating
//!    partial and full rows is two loads, not one per row); rows stay compact images, decoded
//!    into one reused tuple while encoded;
//! 2. each load's body is a `RowsBody`: JSON encoded a piece at a time while hyper sends it,
//!    from the start again on a redirect or retry (the bytes are a pure function of the rows),
//!    so memory holds one piece per load in flight, not a whole body;
//! 3. every [`LossyValue`] of the sent body is counted and logged; an [`EncodeError`] fails the
//!    body half-way (never terminated, so StarRocks cannot take it) and stops the pipeline.
//!
//! Values arrive in PostgreSQL's text output format under the session settings the source
//! sets (TimeZone=UTC, DateStyle=ISO, extra_float_digits=3, IntervalStyle=iso_8601,
//! client_encoding=UTF8); `docs/type-mapping.md` lists every conversion.

mod array;
pub mod datetime;
pub mod ddl;
mod defaults;
mod encode;
mod fe_probe;
mod loader;
mod names;
mod plan;
mod rows_body;
mod sink;
mod source_rows;
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
pub use names::{
    column_name_problem, column_name_problem_with, same_destination, same_destination_message,
    COLUMN_NAME_FIX, SAME_DESTINATION_FIX,
};
pub use plan::{plan_loads, PlanNotes, PlannedLoad, RowOp, RowValues};
pub use sink::{
    missing_columns, required_columns, LoadFailure, LoadRequest, Loader, StagedLoad, StarRocksSink,
    StarRocksSinkOptions, UnsupportedColumn,
};
pub use values::LossyReason;
