//! Stream Load request headers (spec §1.4 header phase, §1.5).

/// Body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV (the default).
    Csv,
    /// JSON.
    Json,
}

/// Payload compression from `Content-Encoding` or `compression` (spec §1.5): the FE accepts the
/// names of `CompressionUtils.tCompressionByName`, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `NO_COMPRESSION`.
    None,
    /// `GZIP` (the BE's inflater also detects a zlib stream).
    Gzip,
    /// `ZLIB` or `DEFLATE`: a zlib stream.
    Zlib,
    /// A codec the FE accepts but the emulator does not decode (`LZ4`, `LZ4_FRAME`, `SNAPPY`,
    /// `ZSTD`, `BZIP2`).
    NotEmulated(&'static str),
}

impl Compression {
    /// Parse a header value; `Err` is the FE's message for an unknown name.
    pub fn from_name(name: &str) -> Result<Compression, String> {
        let upper = name.to_ascii_uppercase();
        Ok(match upper.as_str() {
            "NO_COMPRESSION" => Compression::None,
            "GZIP" => Compression::Gzip,
            "ZLIB" | "DEFLATE" => Compression::Zlib,
            "LZ4" => Compression::NotEmulated("LZ4"),
            "LZ4_FRAME" => Compression::NotEmulated("LZ4_FRAME"),
            "SNAPPY" => Compression::NotEmulated("SNAPPY"),
            "ZSTD" => Compression::NotEmulated("ZSTD"),
            "BZIP2" => Compression::NotEmulated("BZIP2"),
            _ => return Err(format!("Unsupported compression type: {name}")),
        })
    }
}

/// One entry of the `columns` header.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnSpec {
    /// A plain name: a source field mapped to the same-named column.
    Name(String),
    /// `target=expr`.
    Expr {
        /// Destination column (or `__op`).
        target: String,
        /// The expression.
        expr: ColumnExpr,
    },
}

/// The subset of `columns` expressions the emulator evaluates.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnExpr {
    /// A string literal `'x'` / `"x"`.
    StrConst(String),
    /// A numeric literal.
    NumConst(String),
    /// Another source field by name.
    Field(String),
    /// Anything else (functions): not emulated.
    Unsupported(String),
}

/// Parsed Stream Load headers.
#[derive(Debug, Clone)]
pub struct LoadParams {
    /// `label`, or a generated UUID.
    pub label: String,
    /// `format`.
    pub format: Format,
    /// `strip_outer_array`.
    pub strip_outer_array: bool,
    /// `columns`.
    pub columns: Option<Vec<ColumnSpec>>,
    /// `jsonpaths`.
    pub jsonpaths: Option<Vec<String>>,
    /// `json_root`.
    pub json_root: Option<String>,
    /// `partial_update`.
    pub partial_update: bool,
    /// `partial_update_mode` (only `row`, `column`, `auto` are kept; others ignored).
    pub partial_update_mode: Option<String>,
    /// `merge_condition`.
    pub merge_condition: Option<String>,
    /// `max_filter_ratio`.
    pub max_filter_ratio: f64,
    /// `strict_mode`.
    pub strict_mode: bool,
    /// `timeout` in seconds.
    pub timeout_s: Option<u64>,
    /// `column_separator` (CSV).
    pub column_separator: Vec<u8>,
    /// `row_delimiter` (CSV).
    pub row_delimiter: Vec<u8>,
    /// `skip_header` (CSV).
    pub skip_header: usize,
    /// `trim_space` (CSV).
    pub trim_space: bool,
    /// `enclose` (CSV).
    pub enclose: Option<u8>,
    /// `escape` (CSV).
    pub escape: Option<u8>,
    /// `where`: rows it rejects count as `NumberUnselectedRows`.
    pub where_filter: Option<String>,
    /// `Content-Encoding` / `compression`.
    pub compression: Compression,
}

fn parse_bool_header(value: &str, message: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(message.to_string())
    }
}

/// C `strtod` on a header: the longest numeric prefix, 0 when there is none.
fn strtod(text: &str) -> f64 {
    let t = text.trim_start();
    let mut end = 0;
    for i in (1..=t.len()).rev() {
        if t.is_char_boundary(i) && t[..i].parse::<f64>().is_ok() {
            end = i;
            break;
        }
    }
    t[..end].parse().unwrap_or(0.0)
}

/// Unescape `\t`, `\n`, `\x01`-style separators as StarRocks accepts them.
fn separator(text: &str) -> Vec<u8> {
    if let Some(hex) = text
        .strip_prefix("\\x")
        .or_else(|| text.strip_prefix("\\X"))
    {
        if let Ok(bytes) = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
        {
            return bytes;
        }
    }
    text.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
        .into_bytes()
}

/// The header checks the BE makes before it begins the txn (spec §1.4 steps 8–10): `format` and
/// `timeout`. Every other header is parsed after begin, so its errors carry a `TxnId` and abort
/// the txn.
pub fn check_before_begin(get: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    if let Some(format) = get("format").filter(|f| !f.is_empty()) {
        let known = ["csv", "json", "gzip", "bzip2", "lz4", "deflate", "zstd"];
        if !known.iter().any(|k| k.eq_ignore_ascii_case(&format)) {
            return Err(format!("unknown data format, format={format}"));
        }
    }
    if let Some(timeout) = get("timeout") {
        if timeout.trim().parse::<u32>().is_err() {
            return Err("Invalid timeout format".into());
        }
    }
    Ok(())
}

impl LoadParams {
    /// Parse the headers; an `Err` is the header-phase `Fail` message.
    pub fn from_headers(get: &dyn Fn(&str) -> Option<String>) -> Result<LoadParams, String> {
        let label = get("label")
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let format = match get("format").map(|f| f.to_ascii_lowercase()) {
            None => Format::Csv,
            Some(f) if f.is_empty() || f == "csv" => Format::Csv,
            Some(f) if f == "json" => Format::Json,
            Some(f) if ["gzip", "bzip2", "lz4", "deflate", "zstd"].contains(&f.as_str()) => {
                return Err(format!(
                    "emulator: compressed CSV format {f} is not supported"
                ))
            }
            Some(_) => {
                return Err(format!(
                    "unknown data format, format={}",
                    get("format").unwrap_or_default()
                ))
            }
        };
        let timeout_s = match get("timeout") {
            None => None,
            Some(t) => Some(
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| "Invalid timeout format".to_string())?,
            ),
        };
        let strict_mode = match get("strict_mode") {
            None => false,
            Some(v) => parse_bool_header(&v, "Invalid strict mode format. Must be bool type")?,
        };
        let partial_update = match get("partial_update") {
            None => false,
            Some(v) => {
                parse_bool_header(&v, "Invalid partial update flag format. Must be bool type")?
            }
        };
        let trim_space = match get("trim_space") {
            None => false,
            Some(v) => parse_bool_header(&v, "Invalid trim space format. Must be bool type")?,
        };
        let partial_update_mode =
            get("partial_update_mode").filter(|m| m == "row" || m == "column" || m == "auto");
        let strip_outer_array = get("strip_outer_array")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        let columns = match get("columns") {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => Some(parse_columns(&text)?),
        };
        let jsonpaths = match get("jsonpaths") {
            None => None,
            Some(text) => {
                let parsed: Vec<String> = serde_json::from_str(&text)
                    .map_err(|_| format!("Invalid json path: {text}"))?;
                Some(parsed)
            }
        };
        let skip_header = match get("skip_header") {
            None => 0,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n < 0 => return Err("skip_header must be equal or greater than 0".into()),
                Ok(n) => n as usize,
                Err(_) => return Err("Invalid csv load skip_header format".into()),
            },
        };
        if get("partitions").is_some() && get("temporary_partitions").is_some() {
            return Err("Can not specify both partitions and temporary partitions".into());
        }
        if get("content-encoding").is_some() && get("compression").is_some() {
            return Err(
                "Only one of http header content-encoding and compression can be set".into(),
            );
        }
        let compression = match get("content-encoding").or_else(|| get("compression")) {
            None => Compression::None,
            Some(name) => match Compression::from_name(name.trim())? {
                Compression::NotEmulated(codec) => {
                    return Err(format!(
                        "emulator: payload compression {codec} is not emulated (use GZIP, ZLIB or DEFLATE)"
                    ))
                }
                other => other,
            },
        };
        Ok(LoadParams {
            label,
            format,
            strip_outer_array,
            columns,
            jsonpaths,
            json_root: get("json_root").filter(|r| !r.is_empty()),
            partial_update,
            partial_update_mode,
            merge_condition: get("merge_condition").filter(|m| !m.is_empty()),
            max_filter_ratio: get("max_filter_ratio").map(|v| strtod(&v)).unwrap_or(0.0),
            strict_mode,
            timeout_s,
            column_separator: get("column_separator")
                .map(|s| separator(&s))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| b"\t".to_vec()),
            row_delimiter: get("row_delimiter")
                .map(|s| separator(&s))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| b"\n".to_vec()),
            skip_header,
            trim_space,
            enclose: get("enclose").and_then(|e| e.bytes().next()),
            escape: get("escape").and_then(|e| e.bytes().next()),
            where_filter: get("where").filter(|w| !w.trim().is_empty()),
            compression,
        })
    }

    /// Headers that must stay the same across transaction `load` calls (spec §5.1).
    pub fn fingerprint(&self) -> String {
        format!(
            "{:?}|{}|{:?}|{:?}|{}|{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}",
            self.format,
            self.strip_outer_array,
            self.columns,
            self.jsonpaths,
            self.partial_update,
            self.merge_condition,
            self.strict_mode,
            self.max_filter_ratio,
            self.column_separator,
            self.row_delimiter,
            self.where_filter,
            self.compression
        )
    }
}

/// Reserved keywords of StarRocks's grammar (docs: sql-reference/sql-statements/keywords,
/// 3.1+): not an `identifier` unless backquoted.
const RESERVED_KEYWORDS: [&str; 151] = [
    "add",
    "all",
    "alter",
    "analyze",
    "and",
    "array",
    "as",
    "asc",
    "between",
    "bigint",
    "bitmap",
    "both",
    "by",
    "case",
    "char",
    "character",
    "check",
    "collate",
    "column",
    "compaction",
    "convert",
    "create",
    "cross",
    "cube",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "current_role",
    "database",
    "databases",
    "decimal",
    "decimalv2",
    "decimal32",
    "decimal64",
    "decimal128",
    "default",
    "delete",
    "dense_rank",
    "desc",
    "describe",
    "distinct",
    "double",
    "drop",
    "dual",
    "deferred",
    "else",
    "except",
    "exists",
    "explain",
    "false",
    "first_value",
    "float",
    "for",
    "force",
    "from",
    "full",
    "function",
    "grant",
    "group",
    "groups",
    "grouping",
    "grouping_id",
    "having",
    "hll",
    "host",
    "if",
    "ignore",
    "in",
    "index",
    "infile",
    "inner",
    "insert",
    "int",
    "integer",
    "intersect",
    "into",
    "is",
    "immediate",
    "join",
    "json",
    "key",
    "keys",
    "kill",
    "lag",
    "largeint",
    "last_value",
    "lateral",
    "lead",
    "left",
    "like",
    "limit",
    "load",
    "localtime",
    "localtimestamp",
    "maxvalue",
    "minus",
    "mod",
    "ntile",
    "not",
    "null",
    "on",
    "or",
    "order",
    "outer",
    "outfile",
    "over",
    "partition",
    "percentile",
    "primary",
    "procedure",
    "qualify",
    "range",
    "rank",
    "read",
    "regexp",
    "release",
    "rename",
    "replace",
    "revoke",
    "right",
    "rlike",
    "row",
    "rows",
    "row_number",
    "schema",
    "schemas",
    "select",
    "set",
    "set_var",
    "show",
    "smallint",
    "system",
    "table",
    "terminated",
    "text",
    "then",
    "tinyint",
    "to",
    "true",
    "union",
    "unique",
    "unsigned",
    "update",
    "use",
    "using",
    "values",
    "varchar",
    "when",
    "where",
    "with",
];

/// Split the `columns` header at top-level commas and parse `x=expr`. The FE parses it as
/// SQL (`COLUMNS (<header>)`, `StreamLoadInfo.setColumnToColumnExpr`): names may be
/// backquoted (`` ` `` doubled inside), and a bare reserved word is a syntax error.
pub fn parse_columns(text: &str) -> Result<Vec<ColumnSpec>, String> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    // Offset of each item in `COLUMNS (<header>)`, for the syntax error's column.
    let mut starts = vec![0usize];
    for (offset, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                // A doubled backtick closes and reopens: the text stays as it is.
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"' | '`') => {
                quote = Some(c);
                current.push(c);
            }
            (None, '(') => {
                depth += 1;
                current.push(c);
            }
            (None, ')') => {
                depth -= 1;
                current.push(c);
            }
            (None, ',') if depth == 0 => {
                items.push(std::mem::take(&mut current));
                starts.push(offset + 1);
            }
            (None, c) => current.push(c),
        }
    }
    items.push(current);
    let mut specs = Vec::new();
    for (item, start) in items.iter().zip(starts) {
        let lead = item.len() - item.trim_start().len();
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let at = "COLUMNS (".len() + start + lead;
        let (target, expr_text) = match split_assignment(item) {
            Some((target, expr)) => (target.trim_end(), Some(expr.trim())),
            None => (item, None),
        };
        let target = identifier(target, at)?;
        let Some(expr_text) = expr_text else {
            specs.push(ColumnSpec::Name(target));
            continue;
        };
        let expr = if (expr_text.starts_with('\'') && expr_text.ends_with('\''))
            || (expr_text.starts_with('"') && expr_text.ends_with('"'))
        {
            ColumnExpr::StrConst(expr_text[1..expr_text.len().max(2) - 1].to_string())
        } else if expr_text.parse::<f64>().is_ok() {
            ColumnExpr::NumConst(expr_text.to_string())
        } else if is_backquoted(expr_text)
            || (!expr_text.is_empty() && expr_text.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            let at = at + item.len() - expr_text.len();
            ColumnExpr::Field(identifier(expr_text, at)?)
        } else {
            ColumnExpr::Unsupported(expr_text.to_string())
        };
        specs.push(ColumnSpec::Expr { target, expr });
    }
    Ok(specs)
}

/// `name = expr` split at the first `=` outside backquotes.
fn split_assignment(item: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (at, c) in item.char_indices() {
        match c {
            '`' => quoted = !quoted,
            '=' if !quoted => return Some((&item[..at], &item[at + 1..])),
            _ => {}
        }
    }
    None
}

fn is_backquoted(text: &str) -> bool {
    text.len() >= 2 && text.starts_with('`') && text.ends_with('`')
}

/// A column name of the header: backquoted (unquoted, `` `` `` → `` ` ``) or a bare word
/// that is not reserved. `at` is its offset in `COLUMNS (<header>)`.
fn identifier(text: &str, at: usize) -> Result<String, String> {
    if is_backquoted(text) {
        return Ok(text[1..text.len() - 1].replace("``", "`"));
    }
    if RESERVED_KEYWORDS
        .iter()
        .any(|word| word.eq_ignore_ascii_case(text))
    {
        return Err(format!(
            "Getting syntax error at line 1, column {at}. Detail message: Unexpected input '{}', \
             the most similar input is {{a legal identifier}}.",
            text.to_ascii_lowercase()
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(headers: &[(&str, &str)]) -> Result<LoadParams, String> {
        let owned: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LoadParams::from_headers(&move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn strip_outer_array_other_values_mean_false() {
        assert!(
            params(&[("strip_outer_array", "TRUE")])
                .unwrap()
                .strip_outer_array
        );
        assert!(
            !params(&[("strip_outer_array", "1")])
                .unwrap()
                .strip_outer_array
        );
        assert!(
            !params(&[("strip_outer_array", "yes")])
                .unwrap()
                .strip_outer_array
        );
    }

    #[test]
    fn bad_bool_headers_fail() {
        assert_eq!(
            params(&[("strict_mode", "1")]).unwrap_err(),
            "Invalid strict mode format. Must be bool type"
        );
        assert_eq!(
            params(&[("format", "parquet")]).unwrap_err(),
            "unknown data format, format=parquet"
        );
    }

    #[test]
    fn unknown_partial_update_mode_is_ignored() {
        let p = params(&[("partial_update_mode", "ROW")]).unwrap();
        assert_eq!(p.partial_update_mode, None);
    }

    #[test]
    fn max_filter_ratio_garbage_is_zero() {
        assert_eq!(
            params(&[("max_filter_ratio", "abc")])
                .unwrap()
                .max_filter_ratio,
            0.0
        );
        assert_eq!(
            params(&[("max_filter_ratio", "0.5x")])
                .unwrap()
                .max_filter_ratio,
            0.5
        );
    }

    #[test]
    fn columns_with_expressions() {
        let specs = parse_columns("id, `name`, __op='delete', x=hex(y, 'a,b')").unwrap();
        assert_eq!(specs[0], ColumnSpec::Name("id".into()));
        assert_eq!(specs[1], ColumnSpec::Name("name".into()));
        assert_eq!(
            specs[2],
            ColumnSpec::Expr {
                target: "__op".into(),
                expr: ColumnExpr::StrConst("delete".into())
            }
        );
        assert!(matches!(
            &specs[3],
            ColumnSpec::Expr {
                expr: ColumnExpr::Unsupported(_),
                ..
            }
        ));
    }

    #[test]
    fn backquoted_names_keep_commas_quotes_and_doubled_backticks() {
        let specs =
            parse_columns("`col,comma`,`we\"ird`, `a``b`,`order`,`x=y`=`src`,__op").unwrap();
        let names: Vec<ColumnSpec> = ["col,comma", "we\"ird", "a`b", "order"]
            .into_iter()
            .map(|name| ColumnSpec::Name(name.into()))
            .collect();
        assert_eq!(specs[..4], names[..]);
        assert_eq!(
            specs[4],
            ColumnSpec::Expr {
                target: "x=y".into(),
                expr: ColumnExpr::Field("src".into())
            }
        );
        assert_eq!(specs[5], ColumnSpec::Name("__op".into()));
    }

    #[test]
    fn a_bare_reserved_word_is_a_syntax_error() {
        let error = parse_columns("id,order,__op").unwrap_err();
        assert_eq!(
            error,
            "Getting syntax error at line 1, column 12. Detail message: Unexpected input \
             'order', the most similar input is {a legal identifier}."
        );
        assert!(parse_columns("id, GROUP").unwrap_err().contains("'group'"));
        assert!(parse_columns("id,`order`,user,name,__op").is_ok());
    }
}
