//! The SQL subset behind the MySQL protocol (spec §6).

mod aggregate;
mod alter;
mod ddl;
mod eval;
mod exec;
mod lexer;
mod meta;
mod parser;
mod schema_change;
mod show;

pub use exec::{
    execute, format_time, QueryOutput, ResultColumn, Session, MYSQL_SERVER_VERSION,
    STARROCKS_VERSION,
};
pub use parser::{parse, parse_expr, Expr, Statement};

/// Evaluate a predicate over one row (`lookup` resolves column names); NULL is false.
pub fn row_matches(
    expr: &Expr,
    lookup: &dyn Fn(&str) -> Option<crate::types::Value>,
) -> Result<bool, String> {
    let ctx = eval::EvalContext {
        version: STARROCKS_VERSION.to_string(),
        server_version: MYSQL_SERVER_VERSION.to_string(),
        database: None,
        user: String::new(),
    };
    eval::eval(expr, lookup, &ctx).map(|v| eval::truthy(&v))
}

/// Evaluate a scalar expression over one row (`lookup` resolves source field names).
pub fn eval_value(
    expr: &Expr,
    lookup: &dyn Fn(&str) -> Option<crate::types::Value>,
) -> Result<crate::types::Value, String> {
    let ctx = eval::EvalContext {
        version: STARROCKS_VERSION.to_string(),
        server_version: MYSQL_SERVER_VERSION.to_string(),
        database: None,
        user: String::new(),
    };
    eval::eval(expr, lookup, &ctx)
}

/// Functions [`eval_value`] knows (lower-case).
pub const SCALAR_FUNCTIONS: &[&str] = eval::SCALAR_FUNCTIONS;
