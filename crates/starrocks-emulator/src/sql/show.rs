//! SHOW DATABASES / TABLES / COLUMNS with their `LIKE` and `WHERE` filters (spec §6.4).
//!
//! `LIKE` follows `PatternMatcher.createMysqlPattern` (fe/.../common/PatternMatcher.java): the
//! MySQL pattern becomes a Java regex (`%` → `.*`, `_` → `.`, `.` literal, `\%` `\_` `\\`
//! escapes) that must match the whole name. Other regex characters keep their regex meaning, as
//! in StarRocks. Case sensitivity per `CaseSensibility`: databases, tables and variables are
//! case-sensitive, columns are not.

use regex::RegexBuilder;

use crate::catalog::SqlError;
use crate::sql::eval::{eval, truthy, EvalContext};
use crate::sql::exec::{QueryOutput, ResultColumn};
use crate::sql::parser::Expr;
use crate::types::Value;

/// A SHOW statement's filter.
#[derive(Debug, Clone, PartialEq)]
pub enum ShowFilter {
    /// No filter.
    None,
    /// `LIKE 'pattern'`.
    Like(String),
    /// `WHERE expr` over the result's column names.
    Where(Expr),
}

/// `PatternMatcher.convertMysqlPattern`: the MySQL pattern as a Java-style regex.
fn convert_mysql_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut first = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '%' => first.push_str(".*"),
            '.' => first.push_str("\\."),
            '_' => first.push('.'),
            '\\' => match chars.get(i + 1) {
                None => first.push('\\'),
                Some(&next @ ('%' | '_' | '\\')) => {
                    first.push(next);
                    i += 1;
                }
                Some(_) => {}
            },
            c => first.push(c),
        }
        i += 1;
    }
    // Second pass: a backslash stays an escape only before `.`; otherwise it is literal.
    let chars: Vec<char> = first.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            if chars.get(i + 1) == Some(&'.') {
                out.push_str("\\.");
                i += 1;
            } else {
                out.push_str("\\\\");
            }
        } else {
            out.push(chars[i]);
        }
        i += 1;
    }
    out
}

/// A compiled `LIKE` pattern.
pub struct MysqlPattern(regex::Regex);

impl MysqlPattern {
    /// `PatternMatcher.createMysqlPattern(pattern, caseSensitive)`.
    pub fn new(pattern: &str, case_sensitive: bool) -> Result<MysqlPattern, SqlError> {
        let regex = format!("^(?:{})$", convert_mysql_pattern(pattern));
        RegexBuilder::new(&regex)
            .case_insensitive(!case_sensitive)
            .build()
            .map(MysqlPattern)
            .map_err(|e| SqlError::new(format!("Bad pattern in SQL: {e}")))
    }

    /// Whether the whole name matches.
    pub fn matches(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

/// Keep the rows the filter accepts. `LIKE` tests column `like_column` of each row.
pub fn filter_rows(
    columns: Vec<ResultColumn>,
    rows: Vec<Vec<Value>>,
    filter: &ShowFilter,
    case_sensitive: bool,
    ctx: &EvalContext,
) -> Result<QueryOutput, SqlError> {
    let rows = match filter {
        ShowFilter::None => rows,
        ShowFilter::Like(pattern) => {
            let pattern = MysqlPattern::new(pattern, case_sensitive)?;
            rows.into_iter()
                .filter(|r| matches!(r.first(), Some(Value::Str(name)) if pattern.matches(name)))
                .collect()
        }
        ShowFilter::Where(expr) => {
            let mut kept = Vec::new();
            for row in rows {
                let lookup = |name: &str| {
                    columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(name))
                        .map(|i| row.get(i).cloned().unwrap_or(Value::Null))
                };
                let value = eval(expr, &lookup, ctx).map_err(|m| {
                    SqlError::new(format!("Getting analyzing error. Detail message: {m}."))
                })?;
                if truthy(&value) {
                    kept.push(row);
                }
            }
            kept
        }
    };
    Ok(QueryOutput::Rows { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(pattern: &str, name: &str, case_sensitive: bool) -> bool {
        MysqlPattern::new(pattern, case_sensitive)
            .unwrap()
            .matches(name)
    }

    #[test]
    fn mysql_patterns() {
        assert!(like("x", "x", true));
        assert!(!like("x", "xy", true));
        assert!(like("x%", "xy", true));
        assert!(like("_y", "xy", true));
        assert!(!like("a.c", "abc", true));
        assert!(like("a.c", "a.c", true));
        assert!(like("a\\_c", "a_c", true));
        assert!(!like("a\\_c", "abc", true));
        assert!(like("a\\%", "a%", true));
        assert!(!like("T1", "t1", true));
        assert!(like("T1", "t1", false));
        assert!(!like("", "x", true));
    }

    #[test]
    fn bad_pattern_is_an_error() {
        let err = MysqlPattern::new("a(", true).err().unwrap();
        assert!(err.message.starts_with("Bad pattern in SQL: "), "{err}");
    }
}
