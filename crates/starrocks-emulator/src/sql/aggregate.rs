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

/// `avg` over DECIMAL(p, s) (`DecimalV3FunctionAnalyzer.rectifyAggregationFunction`, then
/// `ArithmeticExpr.getReturnTypeOfDecimal(DIVIDE, ...)`): scale s capped at 18, then s + 6 when
/// s ≤ 6, 12 when s ≤ 12, else s.
fn avg_scale(scale: u8) -> u8 {
    let scale = scale.min(18);
    if scale <= 6 {
        scale + 6
    } else if scale <= 12 {
        12
    } else {
        scale
    }
}

/// Exact SUM/AVG over DECIMAL values (sum keeps the scale, capped at 18). `None` if a value is
/// not a DECIMAL of the same scale, or on i128 overflow.
fn decimal_sum_or_avg(name: &str, values: &[Value]) -> Option<Value> {
    let Some(Value::Decimal { scale, .. }) = values.first() else {
        return None;
    };
    let scale = *scale;
    let mut total: i128 = 0;
    for value in values {
        match value {
            Value::Decimal { unscaled, scale: s } if *s == scale => {
                total = total.checked_add(*unscaled)?
            }
            _ => return None,
        }
    }
    let cap = |unscaled: i128, from: u8, to: u8| -> Option<i128> {
        if to >= from {
            unscaled.checked_mul(10i128.checked_pow(u32::from(to - from))?)
        } else {
            Some(div_round(
                unscaled,
                10i128.checked_pow(u32::from(from - to))?,
            ))
        }
    };
    if name == "sum" {
        let out = scale.min(18);
        return Some(Value::Decimal {
            unscaled: cap(total, scale, out)?,
            scale: out,
        });
    }
    let out = avg_scale(scale);
    let scaled = cap(total, scale, out)?;
    Some(Value::Decimal {
        unscaled: div_round(scaled, values.len() as i128),
        scale: out,
    })
}

/// Integer division rounding half away from zero.
fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        q + n.signum() * d.signum()
    } else {
        q
    }
}

fn sum_or_avg(name: &str, values: &[Value]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    if let Some(exact) = decimal_sum_or_avg(name, values) {
        return exact;
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
    fn decimal_sum_and_avg_are_exact() {
        let d = |unscaled: i128| Value::Decimal { unscaled, scale: 2 };
        let values = [d(900), d(250), d(-112)];
        assert_eq!(sum_or_avg("sum", &values).to_text().unwrap(), "10.38");
        // avg: scale 2 + 6 = 8; 10.38 / 3 = 3.46.
        assert_eq!(sum_or_avg("avg", &values).to_text().unwrap(), "3.46000000");
        let thirds = [d(100), d(0), d(0)];
        assert_eq!(sum_or_avg("avg", &thirds).to_text().unwrap(), "0.33333333");
        let negative = [d(-200), d(0), d(0)];
        assert_eq!(
            sum_or_avg("avg", &negative).to_text().unwrap(),
            "-0.66666667"
        );
        assert_eq!(avg_scale(10), 12);
        assert_eq!(avg_scale(15), 15);
        assert_eq!(avg_scale(20), 18);
    }

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
