//! The load pipeline shared by Stream Load and the transaction API.
//!
//! ```text
//! headers ─► LoadParams ─► plan (FE checks) ─► rows (scan + convert + filter) ─► ratio check
//!                                                                        └─► apply (commit order)
//! ```
//! Parsing and conversion run outside the catalog lock; [`apply`] runs under it, so loads apply
//! in commit order (spec §3.4).

pub mod params;
pub mod plan;
mod scan;

use std::collections::btree_map::Entry;

use crate::catalog::Table;
use crate::convert::{self, ConvError};
use crate::types::{ColumnType, Key, Value};
pub use params::{Compression, Format, LoadParams};
pub use plan::{plan, ColumnSource, OpSource, Plan};

/// Rows kept in the error log per load (spec §4.9).
pub const MAX_ERROR_LOG_LINES: usize = 50;

/// `primary_key_limit_size` (spec §3.7).
pub const PRIMARY_KEY_LIMIT_BYTES: usize = 128;

/// One source value for one field of one row.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// Key / path / CSV field absent.
    Missing,
    /// SQL NULL (`\N` in CSV).
    Null,
    /// A JSON value.
    Json(&'a crate::json::Json<'a>),
    /// CSV text.
    Text(&'a str),
}

/// A converted row ready to apply.
#[derive(Debug, Clone)]
pub struct RowOp {
    /// Primary key.
    pub key: Key,
    /// Every column of the plan's schema (unlisted partial columns hold NULL).
    pub values: Vec<Value>,
    /// `__op` as read (0 upsert; non-zero delete, see [`apply`]).
    pub op: i64,
}

/// The scanned rows of one load (or of all `load` calls of a transaction).
#[derive(Debug, Clone)]
pub struct Scanned {
    /// Rows that passed, in body order.
    pub rows: Vec<RowOp>,
    /// `NumberTotalRows`.
    pub total: u64,
    /// `NumberFilteredRows`.
    pub filtered: u64,
    /// `NumberUnselectedRows` (rows the `where` header dropped).
    pub unselected: u64,
    /// Error-log lines (at most [`MAX_ERROR_LOG_LINES`]).
    pub error_lines: Vec<String>,
}

impl Scanned {
    /// `filtered / (total − unselected) > max_filter_ratio` in doubles; 0/0 never fails
    /// (`StreamLoadExecutor::execute_plan_fragment`, spec §4.8).
    pub fn ratio_exceeded(&self, max_filter_ratio: f64) -> bool {
        let selected = self.total - self.unselected;
        selected > 0 && (self.filtered as f64 / selected as f64) > max_filter_ratio
    }

    /// Nothing scanned yet.
    pub fn empty() -> Scanned {
        Scanned {
            rows: Vec::new(),
            total: 0,
            filtered: 0,
            unselected: 0,
            error_lines: Vec::new(),
        }
    }

    /// Append another scan (transaction `load` calls).
    pub fn extend(&mut self, other: Scanned) {
        self.rows.extend(other.rows);
        self.total += other.total;
        self.filtered += other.filtered;
        self.unselected += other.unselected;
        for line in other.error_lines {
            if self.error_lines.len() < MAX_ERROR_LOG_LINES {
                self.error_lines.push(line);
            }
        }
    }

    /// Record the outcome of [`build_row`].
    pub fn record(
        &mut self,
        plan: &Plan,
        built: Result<RowOp, String>,
        row_text: impl FnOnce() -> String,
    ) {
        match built {
            Ok(row) => {
                self.total += 1;
                let selected = match &plan.where_filter {
                    None => true,
                    Some(expr) => {
                        let lookup = |name: &str| {
                            plan.schema
                                .column_index(name)
                                .map(|i| row.values[i].clone())
                        };
                        crate::sql::row_matches(expr, &lookup).unwrap_or(false)
                    }
                };
                if selected {
                    self.rows.push(row);
                } else {
                    self.unselected += 1;
                }
            }
            Err(reason) => self.reject(&reason, row_text),
        }
    }

    pub(crate) fn reject(&mut self, reason: &str, row_text: impl FnOnce() -> String) {
        self.total += 1;
        self.filtered += 1;
        if self.error_lines.len() < MAX_ERROR_LOG_LINES {
            self.error_lines
                .push(format!("Error: {reason}. Row: {}", row_text()));
        }
    }
}

/// Undo the payload compression (spec §1.5). `Err` fails the whole load.
pub fn decompress<'b>(
    compression: Compression,
    body: &'b [u8],
) -> Result<std::borrow::Cow<'b, [u8]>, String> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len().saturating_mul(4));
    let read = match compression {
        Compression::None | Compression::NotEmulated(_) => {
            return Ok(std::borrow::Cow::Borrowed(body))
        }
        // The BE's gzip inflater detects gzip or zlib by the header (window bits + 32).
        Compression::Gzip if body.starts_with(&[0x1f, 0x8b]) => {
            flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out)
        }
        Compression::Gzip | Compression::Zlib => {
            flate2::read::ZlibDecoder::new(body).read_to_end(&mut out)
        }
    };
    read.map_err(|e| format!("Failed to decompress the payload ({compression:?}): {e}"))?;
    Ok(std::borrow::Cow::Owned(out))
}

/// Scan a body with a plan. `Err` fails the whole load (document errors, key too long, ...).
pub fn scan_body(plan: &Plan, params: &LoadParams, body: &[u8]) -> Result<Scanned, String> {
    let body = decompress(params.compression, body)?;
    let scanned = match params.format {
        Format::Json => scan::json(plan, params, &body)?,
        Format::Csv => scan::csv(plan, params, &body)?,
    };
    if let Some(c) = plan.merge_column {
        if scanned.rows.iter().any(|r| r.op != 0) {
            return Err(format!(
                "memtable of tablet 10001 delete with condition column {}",
                plan.schema.columns[c].name
            ));
        }
    }
    Ok(scanned)
}

/// Build one row from its cells. `Err` is the filter reason.
pub fn build_row<'c>(
    plan: &Plan,
    cells: impl Fn(usize) -> Cell<'c>,
    op_cell: Cell<'_>,
    strict: bool,
) -> Result<RowOp, String> {
    let schema = &plan.schema;
    let mut values = Vec::with_capacity(schema.columns.len());
    for (i, column) in schema.columns.iter().enumerate() {
        let value = match &plan.column_sources[i] {
            ColumnSource::Unlisted => Value::Null,
            ColumnSource::Const(v) | ColumnSource::Default(v) => v.clone(),
            ColumnSource::Field(_) | ColumnSource::Expr(_) => {
                let converted = match &plan.column_sources[i] {
                    ColumnSource::Field(f) => match cells(*f) {
                        Cell::Missing | Cell::Null => Ok(Value::Null),
                        Cell::Json(j) => convert::from_json(j, &column.ty, &column.name),
                        Cell::Text(t) => convert::from_text(t, &column.ty, &column.name),
                    },
                    _ => eval_source_expr(&plan.column_sources[i], &cells, column),
                };
                match converted {
                    Ok(v) => v,
                    Err(ConvError::Failed(m)) if strict => return Err(m),
                    Err(ConvError::Failed(_)) => Value::Null,
                    Err(ConvError::Filter(m)) => return Err(m),
                }
            }
        };
        if value.is_null() && plan.writes(i) && (!column.nullable || i < schema.key_count) {
            return Err(format!(
                "NULL value in non-nullable column '{}'",
                column.name
            ));
        }
        values.push(value);
    }
    let op = match plan.op {
        OpSource::Const(op) => op,
        OpSource::Field(_) | OpSource::OptionalKey => read_op(op_cell)?,
    };
    let key = Key::new(&values[..schema.key_count]);
    Ok(RowOp { key, values, op })
}

/// A source field as an expression sees it: VARCHAR text, typed as a number when it reads as one
/// (StarRocks casts VARCHAR operands of arithmetic implicitly).
fn expr_operand(cell: Cell<'_>) -> Value {
    let text = match cell {
        Cell::Missing | Cell::Null | Cell::Json(crate::json::Json::Null) => return Value::Null,
        Cell::Json(j) => convert::json_as_text(j).into_owned(),
        Cell::Text(t) => t.to_string(),
    };
    if let Ok(i) = text.trim().parse::<i128>() {
        return Value::Int(i);
    }
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() => Value::Float(f),
        _ => Value::Str(text),
    }
}

/// Evaluate a `columns` expression for one row and cast the result to the column type.
fn eval_source_expr<'c>(
    source: &ColumnSource,
    cells: &impl Fn(usize) -> Cell<'c>,
    column: &crate::catalog::Column,
) -> Result<Value, ConvError> {
    let ColumnSource::Expr(source) = source else {
        return Ok(Value::Null);
    };
    let lookup = |name: &str| {
        source
            .inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| expr_operand(cells(*f)))
    };
    let value = crate::sql::eval_value(&source.expr, &lookup).map_err(ConvError::Failed)?;
    match value.to_text() {
        None => Ok(Value::Null),
        Some(text) => convert::from_text(&text, &column.ty, &column.name),
    }
}

fn read_op(cell: Cell<'_>) -> Result<i64, String> {
    let parsed = match cell {
        Cell::Missing => return Ok(0),
        Cell::Null => None,
        Cell::Json(j) => match convert::from_json(j, &ColumnType::TinyInt, "__op") {
            Ok(Value::Int(i)) => Some(i as i64),
            _ => None,
        },
        Cell::Text(t) => t.trim().parse::<i64>().ok(),
    };
    parsed.ok_or_else(|| "NULL value in non-nullable column '__op'".to_string())
}

/// The encoded primary-key size (spec §9.9).
pub fn encoded_key_size(key: &Key, key_types: &[ColumnType]) -> usize {
    if key_types.len() == 1 {
        return match &key.values()[0] {
            Value::Str(s) => s.len(),
            _ => 0,
        };
    }
    let last = key_types.len() - 1;
    let mut size = 0;
    for (i, (value, ty)) in key.values().iter().zip(key_types).enumerate() {
        size += match (ty.fixed_key_width(), value) {
            (Some(width), _) => width,
            (None, Value::Str(s)) if i == last => s.len(),
            (None, Value::Str(s)) => s.len() + s.bytes().filter(|b| *b == 0).count() + 2,
            _ => 0,
        };
    }
    size
}

/// Check every row's key size; `Err` fails the whole load.
pub fn check_key_sizes(plan: &Plan, rows: &[RowOp]) -> Result<(), String> {
    let key_types: Vec<ColumnType> = plan
        .schema
        .key_columns()
        .iter()
        .map(|c| c.ty.clone())
        .collect();
    if rows
        .iter()
        .any(|r| encoded_key_size(&r.key, &key_types) > PRIMARY_KEY_LIMIT_BYTES)
    {
        return Err("primary key size exceed the limit.".into());
    }
    Ok(())
}

/// Apply scanned rows to a table: last row per key wins (op included), merge_condition keeps
/// the larger-or-equal value, partial updates touch only listed columns (spec §3.4–§3.6).
///
/// Like the BE's memtable: a stable sort by key (then by the merge-condition column), keeping the
/// last row of each key.
pub fn apply(table: &mut Table, plan: &Plan, mut rows: Vec<RowOp>) {
    let current = table.schema.clone();
    let same_schema = current.schema_version == plan.schema.schema_version
        && current.columns.len() == plan.schema.columns.len();
    // Map the plan's columns onto the current schema (an ALTER may have finished meanwhile), by
    // ColumnId as the BE writes them, so a column renamed since the plan keeps its values.
    let mapping: Vec<Option<usize>> = current
        .columns
        .iter()
        .map(|c| plan.schema.column_index_by_id(&c.column_id))
        .collect();
    let writes: Vec<bool> = mapping
        .iter()
        .map(|m| match m {
            Some(i) => plan.writes(*i),
            None => !plan.partial,
        })
        .collect();
    let has_real_delete = rows.iter().any(|r| r.op == 1);
    let plan_merge = plan.merge_column;
    let merge =
        plan_merge.and_then(|c| current.column_index_by_id(&plan.schema.columns[c].column_id));
    let order = |a: &RowOp, b: &RowOp| {
        a.key.cmp(&b.key).then_with(|| match plan_merge {
            Some(m) => a.values[m].cmp_total(&b.values[m]),
            None => std::cmp::Ordering::Equal,
        })
    };
    // CDC and bulk loads usually arrive in key order: skip the sort (and its scratch buffer).
    if !rows.is_sorted_by(|a, b| order(a, b) != std::cmp::Ordering::Greater) {
        rows.sort_by(order);
    }
    let bulk = table.rows.is_empty()
        && same_schema
        && !has_real_delete
        && merge.is_none()
        && writes.iter().all(|w| *w);
    if bulk {
        // Empty table, plain upserts: keep the last row of each key in place (no second vector),
        // then build the map from the sorted rows in O(n).
        rows.dedup_by(|later, kept| {
            if later.key == kept.key {
                std::mem::swap(later, kept);
                true
            } else {
                false
            }
        });
        table.rows = rows.into_iter().map(|r| (r.key, r.values)).collect();
        return;
    }
    let mut iter = rows.into_iter().peekable();
    while let Some(row) = iter.next() {
        if iter.peek().is_some_and(|next| next.key == row.key) {
            continue;
        }
        let delete = row.op != 0 && has_real_delete;
        let RowOp { key, values, .. } = row;
        if delete {
            table.rows.remove(&key);
            continue;
        }
        let values: Vec<Value> = if same_schema {
            values
        } else {
            mapping
                .iter()
                .enumerate()
                .map(|(i, m)| match m {
                    Some(src) => values[*src].clone(),
                    None => plan::partial_fill(&current.columns[i]),
                })
                .collect()
        };
        // One search per row: `entry` finds the slot an insert would take.
        match table.rows.entry(key) {
            Entry::Occupied(mut entry) => {
                let stored = entry.get_mut();
                if let Some(m) = merge {
                    if stored[m].cmp_total(&values[m]) == std::cmp::Ordering::Greater {
                        continue;
                    }
                }
                for (i, value) in values.into_iter().enumerate() {
                    if writes[i] {
                        stored[i] = value;
                    }
                }
            }
            Entry::Vacant(entry) => {
                let row: Vec<Value> = if writes.iter().all(|w| *w) {
                    values
                } else {
                    values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            if writes[i] {
                                v
                            } else {
                                plan::partial_fill(&current.columns[i])
                            }
                        })
                        .collect()
                };
                entry.insert(row);
            }
        }
    }
}
