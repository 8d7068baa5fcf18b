//! The FE's plan step for a Stream Load (spec §3.1, §3.2, §3.5, §3.6, §9.3): which source field
//! feeds which column, how `__op` is read, and the checks that fail the whole load.

use std::sync::Arc;

use crate::catalog::TableSchema;
use crate::convert;
use crate::load::params::{ColumnExpr, ColumnSpec, Format, LoadParams};
use crate::types::{ColumnType, Value};

/// How one table column gets its value in this load.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnSource {
    /// From source field `i`.
    Field(usize),
    /// A constant from the `columns` header.
    Const(Value),
    /// Omitted from a non-partial load: its DEFAULT (or NULL).
    Default(Value),
    /// Omitted from a partial update: left unchanged.
    Unlisted,
    /// `col=expr` over source fields (read as VARCHAR, spec §10.6), evaluated per row and cast
    /// to the column type.
    Expr(Box<SourceExpr>),
}

/// A `columns` expression and the source fields it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceExpr {
    /// The parsed expression.
    pub expr: crate::sql::Expr,
    /// Field name → source field index, for every column reference in `expr`.
    pub inputs: Vec<(String, usize)>,
}

/// Names of the columns an expression reads, and an error for a function the emulator cannot
/// evaluate (the FE's analyzer error for an unknown function).
fn expr_inputs(expr: &crate::sql::Expr, names: &mut Vec<String>) -> Result<(), String> {
    use crate::sql::Expr;
    match expr {
        Expr::Column(name) => {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Expr::Lit(_) | Expr::SysVar(_) => {}
        Expr::Func { name, args, .. } => {
            if !crate::sql::SCALAR_FUNCTIONS.contains(&name.as_str()) {
                return Err(format!(
                    "No matching function with signature: {name}(...). (emulator: only {} are evaluated)",
                    crate::sql::SCALAR_FUNCTIONS.join(", ")
                ));
            }
            for arg in args {
                expr_inputs(arg, names)?;
            }
        }
        Expr::Binary { left, right, .. } => {
            expr_inputs(left, names)?;
            expr_inputs(right, names)?;
        }
        Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) => expr_inputs(e, names)?,
        Expr::InList(e, list, _) => {
            expr_inputs(e, names)?;
            for item in list {
                expr_inputs(item, names)?;
            }
        }
        Expr::Between(e, low, high, _) => {
            expr_inputs(e, names)?;
            expr_inputs(low, names)?;
            expr_inputs(high, names)?;
        }
        Expr::Like(e, pattern, _) => {
            expr_inputs(e, names)?;
            expr_inputs(pattern, names)?;
        }
    }
    Ok(())
}

/// Where `__op` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpSource {
    /// A constant op (0 upsert, 1 delete).
    Const(i64),
    /// Source field `i`.
    Field(usize),
    /// JSON without `columns`: an optional `__op` key in each object.
    OptionalKey,
}

/// A planned load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The schema the plan was made against.
    pub schema: Arc<TableSchema>,
    /// Source field names, in order (JSON keys, jsonpaths order, CSV positions).
    pub fields: Vec<String>,
    /// One entry per table column.
    pub column_sources: Vec<ColumnSource>,
    /// `__op`.
    pub op: OpSource,
    /// Partial update.
    pub partial: bool,
    /// Merge-condition column index.
    pub merge_column: Option<usize>,
    /// The `where` predicate over table columns.
    pub where_filter: Option<crate::sql::Expr>,
}

impl Plan {
    /// Whether the load writes column `i`.
    pub fn writes(&self, i: usize) -> bool {
        !matches!(self.column_sources[i], ColumnSource::Unlisted)
    }
}

fn default_value(column: &crate::catalog::Column) -> Result<Option<Value>, String> {
    column.default_value()
}

/// The value a new key gets for a column a partial update did not list.
pub fn partial_fill(column: &crate::catalog::Column) -> Value {
    match default_value(column) {
        Ok(Some(v)) => v,
        _ => column.ty.zero_value(),
    }
}

/// Plan a load; an `Err` fails the whole load with that message.
pub fn plan(schema: Arc<TableSchema>, params: &LoadParams) -> Result<Plan, String> {
    let table = schema.name.clone();
    let width = schema.columns.len();
    let mut fields: Vec<String> = Vec::new();
    let mut sources: Vec<Option<ColumnSource>> = vec![None; width];
    let mut op = match params.format {
        Format::Json if params.columns.is_none() && params.jsonpaths.is_none() => {
            OpSource::OptionalKey
        }
        _ => OpSource::Const(0),
    };
    match &params.columns {
        None => {
            if params.partial_update {
                return Err(format!(
                    "key column {} not in partial update columns",
                    schema.columns[0].name
                ));
            }
            for (i, column) in schema.columns.iter().enumerate() {
                fields.push(column.name.clone());
                sources[i] = Some(ColumnSource::Field(i));
            }
        }
        Some(specs) => {
            let field_index = |fields: &mut Vec<String>, name: &str| -> usize {
                match fields.iter().position(|f| f == name) {
                    Some(i) => i,
                    None => {
                        fields.push(name.to_string());
                        fields.len() - 1
                    }
                }
            };
            let mut seen: Vec<String> = Vec::new();
            for spec in specs {
                let target = match spec {
                    ColumnSpec::Name(n) => n,
                    ColumnSpec::Expr { target, .. } => target,
                };
                if seen.iter().any(|s| s.eq_ignore_ascii_case(target)) {
                    return Err(format!("Duplicate column: {target}"));
                }
                seen.push(target.clone());
            }
            for spec in specs {
                match spec {
                    ColumnSpec::Name(name) => {
                        fields.push(name.clone());
                        let index = fields.len() - 1;
                        if name.eq_ignore_ascii_case("__op") {
                            op = OpSource::Field(index);
                        } else if let Some(c) = schema.column_index(name) {
                            sources[c] = Some(ColumnSource::Field(index));
                        }
                    }
                    ColumnSpec::Expr { target, expr } => {
                        if target.eq_ignore_ascii_case("__op") {
                            op = match expr {
                                ColumnExpr::StrConst(s) if s.eq_ignore_ascii_case("upsert") => {
                                    OpSource::Const(0)
                                }
                                ColumnExpr::StrConst(s) if s.eq_ignore_ascii_case("delete") => {
                                    OpSource::Const(1)
                                }
                                ColumnExpr::StrConst(s) => {
                                    return Err(format!("load op type string not supported: {s}"))
                                }
                                ColumnExpr::NumConst(n) if n == "0" || n == "1" => {
                                    OpSource::Const(n.parse().unwrap_or(0))
                                }
                                ColumnExpr::Field(f) => {
                                    OpSource::Field(field_index(&mut fields, f))
                                }
                                _ => return Err(
                                    "const load op type column should only be upsert(0)/delete(1)"
                                        .into(),
                                ),
                            };
                            continue;
                        }
                        let Some(c) = schema.column_index(target) else {
                            return Err(format!(
                                "Mapping column is not in table. column: {target}"
                            ));
                        };
                        let column = &schema.columns[c];
                        sources[c] = Some(match expr {
                            ColumnExpr::StrConst(s) | ColumnExpr::NumConst(s) => {
                                ColumnSource::Const(
                                    convert::from_text(s, &column.ty, &column.name)
                                        .unwrap_or(Value::Null),
                                )
                            }
                            ColumnExpr::Field(f) => {
                                ColumnSource::Field(field_index(&mut fields, f))
                            }
                            ColumnExpr::Unsupported(text) => {
                                let expr = crate::sql::parse_expr(text).map_err(|e| {
                                    format!(
                                        "Getting syntax error from columns header: {target}={text}: {}",
                                        e.message
                                    )
                                })?;
                                let mut names = Vec::new();
                                expr_inputs(&expr, &mut names)?;
                                let inputs = names
                                    .into_iter()
                                    .map(|n| {
                                        let i = field_index(&mut fields, &n);
                                        (n, i)
                                    })
                                    .collect();
                                ColumnSource::Expr(Box::new(SourceExpr { expr, inputs }))
                            }
                        });
                    }
                }
            }
        }
    }
    let mut column_sources = Vec::with_capacity(width);
    for (i, source) in sources.into_iter().enumerate() {
        let column = &schema.columns[i];
        let resolved = match source {
            Some(s) => s,
            None if params.partial_update => {
                if i < schema.key_count {
                    return Err(format!(
                        "key column {} not in partial update columns",
                        column.name
                    ));
                }
                ColumnSource::Unlisted
            }
            None => match default_value(column)? {
                Some(v) => ColumnSource::Default(v),
                None => {
                    return Err(format!(
                        "Column has no default value. column: {}",
                        column.name
                    ))
                }
            },
        };
        column_sources.push(resolved);
    }
    let merge_column = match &params.merge_condition {
        None => None,
        Some(name) => {
            let Some(c) = schema.column_index(name) else {
                return Err(format!(
                    "Merge condition column {name} should be a column of the table {table}"
                ));
            };
            if c < schema.key_count {
                return Err(format!(
                    "Merge condition column {name} should not be primary key!"
                ));
            }
            if matches!(
                schema.columns[c].ty,
                ColumnType::Char(_)
                    | ColumnType::Varchar(_)
                    | ColumnType::Json
                    | ColumnType::Varbinary
            ) {
                return Err(
                    "Merge condition column has invalid type maybe bitmap/hll/percentile/json/varchar!"
                        .into(),
                );
            }
            Some(c)
        }
    };
    let where_filter = match &params.where_filter {
        None => None,
        Some(text) => Some(
            crate::sql::parse_expr(text)
                .map_err(|e| format!("failed to parse where header: {}", e.message))?,
        ),
    };
    Ok(Plan {
        schema,
        fields,
        column_sources,
        op,
        partial: params.partial_update,
        merge_column,
        where_filter,
    })
}
