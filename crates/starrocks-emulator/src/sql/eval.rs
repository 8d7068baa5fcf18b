//! Expression evaluation over rows of [`Value`]s: comparisons with MySQL-style coercion,
//! boolean logic with NULL, a few scalar functions, and aggregates.

use std::cmp::Ordering;

use crate::sql::parser::{Expr, Lit};
use crate::types::Value;

/// Names of aggregate functions.
pub const AGGREGATES: [&str; 5] = ["count", "min", "max", "sum", "avg"];

/// Session facts some functions return.
#[derive(Debug, Clone)]
pub struct EvalContext {
    /// `current_version()` text.
    pub version: String,
    /// `version()` (MySQL server version).
    pub server_version: String,
    /// Current database.
    pub database: Option<String>,
    /// Current user.
    pub user: String,
}

/// True if the expression contains an aggregate call.
pub fn has_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Func { name, args, .. } => {
            AGGREGATES.contains(&name.as_str()) || args.iter().any(has_aggregate)
        }
        Expr::Binary { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e, _) => has_aggregate(e),
        _ => false,
    }
}

/// Convert a literal into a value.
pub fn literal(lit: &Lit) -> Value {
    match lit {
        Lit::Null => Value::Null,
        Lit::Bool(b) => Value::Bool(*b),
        Lit::Str(s) => Value::Str(s.clone()),
        Lit::Num(n) => {
            if let Ok(i) = n.parse::<i128>() {
                Value::Int(i)
            } else {
                Value::Float(n.parse().unwrap_or(0.0))
            }
        }
    }
}

/// Truthiness (NULL is false).
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        other => other.as_f64().is_some_and(|f| f != 0.0),
    }
}

/// Compare with coercion; `None` if either side is NULL.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Date(_) | Value::DateTime(_), Value::Str(s)) => {
            let parsed = crate::convert::parse_datetime(s)?;
            Some(a.cmp_total(&Value::DateTime(parsed)))
        }
        (Value::Str(_), Value::Date(_) | Value::DateTime(_)) => {
            compare(b, a).map(Ordering::reverse)
        }
        (Value::Json(x), Value::Str(y)) | (Value::Str(x), Value::Json(y)) => Some(x.cmp(y)),
        _ => {
            let to_num = |v: &Value| -> Option<f64> {
                match v {
                    Value::Str(s) => s.trim().parse().ok(),
                    other => other.as_f64(),
                }
            };
            match (to_num(a), to_num(b)) {
                (Some(x), Some(y)) => x.partial_cmp(&y).or(Some(x.total_cmp(&y))),
                _ => Some(a.cmp_total(b)),
            }
        }
    }
}

fn like(text: &str, pattern: &str) -> bool {
    fn matches(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| matches(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && matches(&t[1..], &p[1..]),
            Some(c) => t.first() == Some(c) && matches(&t[1..], &p[1..]),
        }
    }
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    matches(&t, &p)
}

/// Evaluate a scalar expression. `lookup` resolves a column name.
pub fn eval(
    expr: &Expr,
    lookup: &dyn Fn(&str) -> Option<Value>,
    ctx: &EvalContext,
) -> Result<Value, String> {
    Ok(match expr {
        Expr::Column(name) => {
            lookup(name).ok_or_else(|| format!("Column '{name}' cannot be resolved"))?
        }
        Expr::Lit(lit) => literal(lit),
        Expr::SysVar(name) => sysvar(name, ctx),
        Expr::Not(e) => {
            let v = eval(e, lookup, ctx)?;
            if v.is_null() {
                Value::Null
            } else {
                Value::Bool(!truthy(&v))
            }
        }
        Expr::Neg(e) => match eval(e, lookup, ctx)? {
            Value::Int(i) => Value::Int(-i),
            Value::Float(f) => Value::Float(-f),
            Value::Float32(f) => Value::Float32(-f),
            Value::Decimal { unscaled, scale } => Value::Decimal {
                unscaled: -unscaled,
                scale,
            },
            Value::Null => Value::Null,
            other => Value::Float(-other.as_f64().unwrap_or(0.0)),
        },
        Expr::IsNull(e, negated) => Value::Bool(eval(e, lookup, ctx)?.is_null() != *negated),
        Expr::InList(e, list, negated) => {
            let v = eval(e, lookup, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut found = false;
            for item in list {
                if compare(&v, &eval(item, lookup, ctx)?) == Some(Ordering::Equal) {
                    found = true;
                    break;
                }
            }
            Value::Bool(found != *negated)
        }
        Expr::Between(e, low, high, negated) => {
            let v = eval(e, lookup, ctx)?;
            let lo = compare(&v, &eval(low, lookup, ctx)?);
            let hi = compare(&v, &eval(high, lookup, ctx)?);
            match (lo, hi) {
                (Some(l), Some(h)) => {
                    Value::Bool((l != Ordering::Less && h != Ordering::Greater) != *negated)
                }
                _ => Value::Null,
            }
        }
        Expr::Like(e, pattern, negated) => {
            let v = eval(e, lookup, ctx)?;
            let p = eval(pattern, lookup, ctx)?;
            match (v.to_text(), p.to_text()) {
                (Some(t), Some(p)) => Value::Bool(like(&t, &p) != *negated),
                _ => Value::Null,
            }
        }
        Expr::Binary { op, left, right } => {
            let l = eval(left, lookup, ctx)?;
            if op == "and" {
                if !l.is_null() && !truthy(&l) {
                    return Ok(Value::Bool(false));
                }
                let r = eval(right, lookup, ctx)?;
                if !r.is_null() && !truthy(&r) {
                    return Ok(Value::Bool(false));
                }
                if l.is_null() || r.is_null() {
                    return Ok(Value::Null);
                }
                return Ok(Value::Bool(true));
            }
            if op == "or" {
                if truthy(&l) {
                    return Ok(Value::Bool(true));
                }
                let r = eval(right, lookup, ctx)?;
                if truthy(&r) {
                    return Ok(Value::Bool(true));
                }
                if l.is_null() || r.is_null() {
                    return Ok(Value::Null);
                }
                return Ok(Value::Bool(false));
            }
            let r = eval(right, lookup, ctx)?;
            match op.as_str() {
                "=" | "!=" | "<" | "<=" | ">" | ">=" => match compare(&l, &r) {
                    None => Value::Null,
                    Some(ord) => Value::Bool(match op.as_str() {
                        "=" => ord == Ordering::Equal,
                        "!=" => ord != Ordering::Equal,
                        "<" => ord == Ordering::Less,
                        "<=" => ord != Ordering::Greater,
                        ">" => ord == Ordering::Greater,
                        _ => ord != Ordering::Less,
                    }),
                },
                _ => arithmetic(op, &l, &r),
            }
        }
        Expr::Func { name, args, .. } => {
            let values: Vec<Value> = args
                .iter()
                .map(|a| eval(a, lookup, ctx))
                .collect::<Result<_, _>>()?;
            scalar_function(name, &values, ctx)?
        }
    })
}

fn arithmetic(op: &str, l: &Value, r: &Value) -> Value {
    if l.is_null() || r.is_null() {
        return Value::Null;
    }
    if let (Value::Int(a), Value::Int(b)) = (l, r) {
        match op {
            "+" => return Value::Int(a.saturating_add(*b)),
            "-" => return Value::Int(a.saturating_sub(*b)),
            "*" => return Value::Int(a.saturating_mul(*b)),
            "%" if *b != 0 => return Value::Int(a % b),
            _ => {}
        }
    }
    let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
        return Value::Null;
    };
    match op {
        "+" => Value::Float(a + b),
        "-" => Value::Float(a - b),
        "*" => Value::Float(a * b),
        "/" if b != 0.0 => Value::Float(a / b),
        "%" if b != 0.0 => Value::Float(a % b),
        _ => Value::Null,
    }
}

fn sysvar(name: &str, ctx: &EvalContext) -> Value {
    match name {
        "version_comment" => Value::Str(ctx.version.clone()),
        "version" => Value::Str(ctx.server_version.clone()),
        "max_allowed_packet" => Value::Int(33_554_432),
        "wait_timeout" | "interactive_timeout" => Value::Int(28800),
        "lower_case_table_names" => Value::Int(0),
        "autocommit" => Value::Int(1),
        "auto_increment_increment" => Value::Int(1),
        "character_set_client"
        | "character_set_connection"
        | "character_set_results"
        | "character_set_server" => Value::Str("utf8".into()),
        "collation_server" | "collation_connection" => Value::Str("utf8_general_ci".into()),
        "sql_mode" => Value::Str("ONLY_FULL_GROUP_BY".into()),
        "time_zone" | "system_time_zone" => Value::Str("Asia/Shanghai".into()),
        "transaction_isolation" | "tx_isolation" => Value::Str("REPEATABLE-READ".into()),
        "socket" => Value::Null,
        "license" => Value::Str("Apache License 2.0".into()),
        _ => Value::Null,
    }
}

/// The scalar functions [`scalar_function`] evaluates.
pub const SCALAR_FUNCTIONS: &[&str] = &[
    "current_version",
    "version",
    "database",
    "schema",
    "user",
    "current_user",
    "session_user",
    "connection_id",
    "lower",
    "lcase",
    "upper",
    "ucase",
    "length",
    "octet_length",
    "char_length",
    "character_length",
    "coalesce",
    "ifnull",
    "abs",
    "concat",
    "hex",
    "now",
    "current_timestamp",
];

fn scalar_function(name: &str, args: &[Value], ctx: &EvalContext) -> Result<Value, String> {
    let first = args.first().cloned().unwrap_or(Value::Null);
    Ok(match name {
        // The emulator's clock is UTC (as for DEFAULT CURRENT_TIMESTAMP).
        "now" | "current_timestamp" => Value::Str(super::format_time(std::time::SystemTime::now())),
        "current_version" => Value::Str(ctx.version.clone()),
        "version" => Value::Str(ctx.server_version.clone()),
        "database" | "schema" => ctx.database.clone().map(Value::Str).unwrap_or(Value::Null),
        "user" | "current_user" | "session_user" => Value::Str(format!("'{}'@'%'", ctx.user)),
        "connection_id" => Value::Int(1),
        "lower" | "lcase" => first
            .to_text()
            .map(|t| Value::Str(t.to_lowercase()))
            .unwrap_or(Value::Null),
        "upper" | "ucase" => first
            .to_text()
            .map(|t| Value::Str(t.to_uppercase()))
            .unwrap_or(Value::Null),
        "length" | "octet_length" => first
            .to_text()
            .map(|t| Value::Int(t.len() as i128))
            .unwrap_or(Value::Null),
        "char_length" | "character_length" => first
            .to_text()
            .map(|t| Value::Int(t.chars().count() as i128))
            .unwrap_or(Value::Null),
        "coalesce" | "ifnull" => args
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null),
        "abs" => match first {
            Value::Int(i) => Value::Int(i.abs()),
            Value::Null => Value::Null,
            other => Value::Float(other.as_f64().unwrap_or(0.0).abs()),
        },
        "concat" => {
            let mut out = String::new();
            for v in args {
                match v.to_text() {
                    Some(t) => out.push_str(&t),
                    None => return Ok(Value::Null),
                }
            }
            Value::Str(out)
        }
        "hex" => first
            .to_text()
            .map(|t| Value::Str(t.bytes().map(|b| format!("{b:02X}")).collect()))
            .unwrap_or(Value::Null),
        other => return Err(format!("No matching function with signature: {other}")),
    })
}
