//! Aggregates over the rows a SELECT kept: COUNT/MIN/MAX/SUM/AVG, with `DISTINCT`.

use std::cmp::Ordering;

use crate::sql::eval::{compare, eval, EvalContext, AGGREGATES};
use crate::sql::parser::Expr;
use crate::types::Value;

/// Drop repeated values (NULLs are already gone), keeping the first of each.
fn distinct_values(values: Vec<Value>) -> Vec<Value> {
    let mut sorted: Vec<(usize, Value)> = values.into_iter().enumerate().collect();
    sorted.sort_by(|(i, a), (j, b)| a.cmp_total(b).then(i.cmp(j)));
    sorted.dedup_by(|(_, b), (_, a)| a.cmp_total(b) == Ordering::Equal);
    sorted.sort_by_key(|(i, _)| *i);
    sorted.into_iter().map(|(_, v)| v).collect()
}

fn sum_or_avg(name: &str, values: &[Value]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    if name == "sum" && values.iter().all(|v| matches!(v, Value::Int(_))) {
        let total = values
            .iter()
            .map(|v| if let Value::Int(i) = v { *i } else { 0 })
            .fold(0i128, i128::saturating_add);
        return Value::Int(total);
    }
    let total: f64 = values.iter().filter_map(Value::as_f64).sum();
    if name == "sum" {
        Value::Float(total)
    } else {
        Value::Float(total / values.len() as f64)
    }
}

/// Evaluate an expression that may contain aggregates over a group of rows.
pub fn eval_aggregate(
    expr: &Expr,
    rows: &[&Vec<Value>],
    lookup: &dyn Fn(&Vec<Value>, &str) -> Option<Value>,
    ctx: &EvalContext,
) -> Result<Value, String> {
    match expr {
        Expr::Func {
            name,
            args,
            star,
            distinct,
        } if AGGREGATES.contains(&name.as_str()) => {
            if *star {
                return Ok(Value::Int(rows.len() as i128));
            }
            let arg = args.first().ok_or("aggregate without argument")?;
            let mut values = Vec::with_capacity(rows.len());
            for row in rows {
                let v = eval(arg, &|n| lookup(row, n), ctx)?;
                if !v.is_null() {
                    values.push(v);
                }
            }
            if *distinct {
                values = distinct_values(values);
            }
            Ok(match name.as_str() {
                "count" => Value::Int(values.len() as i128),
                "min" => values
                    .into_iter()
                    .min_by(|a, b| compare(a, b).unwrap_or(Ordering::Equal))
                    .unwrap_or(Value::Null),
                "max" => values
                    .into_iter()
                    .max_by(|a, b| compare(a, b).unwrap_or(Ordering::Equal))
                    .unwrap_or(Value::Null),
                other => sum_or_avg(other, &values),
            })
        }
        Expr::Binary { op, left, right } => {
            // Combine the aggregated sides with the scalar operator, keeping their types.
            let l = eval_aggregate(left, rows, lookup, ctx)?;
            let r = eval_aggregate(right, rows, lookup, ctx)?;
            let combined = Expr::Binary {
                op: op.clone(),
                left: Box::new(Expr::Column("\0l".into())),
                right: Box::new(Expr::Column("\0r".into())),
            };
            let operand = |n: &str| match n {
                "\0l" => Some(l.clone()),
                "\0r" => Some(r.clone()),
                _ => None,
            };
            eval(&combined, &operand, ctx)
        }
        other => match rows.first() {
            Some(row) => eval(other, &|n| lookup(row, n), ctx),
            None => eval(other, &|_| Some(Value::Null), ctx),
        },
    }
}

/// Remove repeated result rows (`SELECT DISTINCT`), keeping the first of each in order.
pub fn distinct_rows(rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let mut seen: Vec<Vec<Value>> = Vec::new();
    let mut sorted_index: Vec<usize> = Vec::new();
    let row_cmp = |a: &[Value], b: &[Value]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.cmp_total(y))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    };
    for row in rows {
        // Binary search over a sorted index of the rows kept so far.
        match sorted_index.binary_search_by(|&i| row_cmp(&seen[i], &row)) {
            Ok(_) => {}
            Err(at) => {
                sorted_index.insert(at, seen.len());
                seen.push(row);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keeps_first_occurrences_in_order() {
        let v = |i: i128| Value::Int(i);
        assert_eq!(
            distinct_values(vec![v(3), v(1), v(3), v(2), v(1)]),
            vec![v(3), v(1), v(2)]
        );
        let rows = vec![
            vec![v(2)],
            vec![v(1)],
            vec![v(2)],
            vec![Value::Null],
            vec![Value::Null],
        ];
        assert_eq!(
            distinct_rows(rows),
            vec![vec![v(2)], vec![v(1)], vec![Value::Null]]
        );
    }
}
