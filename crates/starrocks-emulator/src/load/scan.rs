//! Scanners: JSON (spec §3.2, §4.7) and CSV (spec §3.3, §4.5) bodies into rows.

use crate::json::{self, Json};
use crate::load::{build_row, Cell, LoadParams, OpSource, Plan, Scanned};

/// One step of a JSONPath.
enum PathStep {
    Key(String),
    Index(usize),
}

/// Parse the JSONPath subset StarRocks users write: `$`, `$.a.b`, `$.a[0]`, `$["a"]`.
fn parse_path(path: &str) -> Result<Vec<PathStep>, String> {
    let invalid = || format!("Invalid json path: {path}");
    let rest = path.trim().strip_prefix('$').ok_or_else(invalid)?;
    let mut steps = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'.' && bytes[end] != b'[' {
                    end += 1;
                }
                if end == start {
                    return Err(invalid());
                }
                steps.push(PathStep::Key(rest[start..end].to_string()));
                i = end;
            }
            b'[' => {
                let close = rest[i..].find(']').ok_or_else(invalid)? + i;
                let inner = rest[i + 1..close].trim();
                if let Ok(index) = inner.parse::<usize>() {
                    steps.push(PathStep::Index(index));
                } else {
                    steps.push(PathStep::Key(
                        inner.trim_matches(|c| c == '"' || c == '\'').to_string(),
                    ));
                }
                i = close + 1;
            }
            _ => return Err(invalid()),
        }
    }
    Ok(steps)
}

fn eval_path<'v, 'a>(root: &'v Json<'a>, steps: &[PathStep]) -> Option<&'v Json<'a>> {
    let mut current = root;
    for step in steps {
        current = match (step, current) {
            (PathStep::Key(k), Json::Object(_)) => current.get(k)?,
            (PathStep::Index(i), Json::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Map an object's keys onto the plan's fields in one pass. Keys usually arrive in column
/// order, so the key at position `p` is first compared with field `p`. The first of duplicate
/// keys wins.
fn fill_cells<'r>(row: &'r Json<'r>, fields: &[String], cells: &mut Vec<Cell<'r>>) {
    cells.resize(fields.len(), Cell::Missing);
    let Json::Object(entries) = row else {
        return;
    };
    for (position, (key, value)) in entries.iter().enumerate() {
        let index = match fields.get(position) {
            Some(f) if f == key => Some(position),
            _ => fields.iter().position(|f| f == key),
        };
        if let Some(i) = index {
            if matches!(cells[i], Cell::Missing) {
                cells[i] = Cell::Json(value);
            }
        }
    }
}

/// Scan a JSON body.
pub fn json(plan: &Plan, params: &LoadParams, body: &[u8]) -> Result<Scanned, String> {
    let text = std::str::from_utf8(body).map_err(|_| {
        "Failed to parse json: UTF8_ERROR: The input is not valid UTF-8".to_string()
    })?;
    let path_steps = match &params.jsonpaths {
        Some(paths) => Some(
            paths
                .iter()
                .map(|p| parse_path(p))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let mut scanned = Scanned::empty();
    // A modest row-count hint (JSON rows are rarely under 128 bytes with ten columns).
    scanned.rows.reserve(body.len() / 128);
    match &params.json_root {
        None if path_steps.is_none() => {
            // Fast path: stream rows and scatter keys straight into field slots.
            let mut reader =
                json::RowReader::new(text, params.strip_outer_array).map_err(|e| e.0)?;
            let mut wanted: Vec<String> = plan.fields.clone();
            let op_slot = match plan.op {
                OpSource::OptionalKey => {
                    wanted.push("__op".to_string());
                    Some(wanted.len() - 1)
                }
                OpSource::Field(i) => Some(i),
                OpSource::Const(_) => None,
            };
            let mut slots: Vec<Option<Json<'_>>> = vec![None; wanted.len()];
            while let Some(row) = reader.next_row_into(&wanted, &mut slots).map_err(|e| e.0)? {
                let row_text = match row {
                    json::Scattered::Object(text) => text,
                    json::Scattered::NotObject(value) => {
                        scanned.reject("JSON data is not an object", || value.to_json_text());
                        continue;
                    }
                };
                let cell = |i: usize| match slots.get(i) {
                    Some(Some(value)) => Cell::Json(value),
                    _ => Cell::Missing,
                };
                let op_cell = op_slot.map_or(Cell::Missing, cell);
                let built = build_row(plan, cell, op_cell, params.strict_mode);
                scanned.record(plan, built, || compact(row_text));
            }
        }
        None => {
            // Streaming: one row at a time.
            let mut reader =
                json::RowReader::new(text, params.strip_outer_array).map_err(|e| e.0)?;
            while let Some(row) = reader.next_row().map_err(|e| e.0)? {
                scan_row(plan, params, &row, path_steps.as_deref(), &mut scanned);
            }
        }
        Some(root) => {
            // With `json_root`, strip_outer_array applies to the value under the root.
            let steps = parse_path(root)?;
            let documents = json::parse_rows(text, false).map_err(|e| e.0)?;
            for document in &documents {
                match eval_path(document, &steps) {
                    Some(Json::Array(items)) if params.strip_outer_array => {
                        for item in items {
                            scan_row(plan, params, item, path_steps.as_deref(), &mut scanned);
                        }
                    }
                    Some(value) => {
                        scan_row(plan, params, value, path_steps.as_deref(), &mut scanned)
                    }
                    None => {}
                }
            }
        }
    }
    Ok(scanned)
}

/// A row's text as the error log shows it (minified when it parses).
fn compact(text: &str) -> String {
    json::parse_value(text)
        .map(|v| v.to_json_text())
        .unwrap_or_else(|_| text.to_string())
}

/// Turn one JSON row into a [`crate::load::RowOp`] or a rejected line.
fn scan_row<'r>(
    plan: &Plan,
    params: &LoadParams,
    row: &'r Json<'r>,
    path_steps: Option<&[Vec<PathStep>]>,
    scanned: &mut Scanned,
) {
    let mut cells: Vec<Cell<'r>> = Vec::with_capacity(plan.fields.len());
    match path_steps {
        Some(paths) => {
            for i in 0..plan.fields.len() {
                let cell = paths
                    .get(i)
                    .and_then(|steps| eval_path(row, steps))
                    .map(Cell::Json)
                    .unwrap_or(Cell::Missing);
                cells.push(cell);
            }
        }
        None => {
            if !matches!(row, Json::Object(_)) {
                scanned.reject("JSON data is not an object", || row.to_json_text());
                return;
            }
            fill_cells(row, &plan.fields, &mut cells);
        }
    }
    let op_cell = match plan.op {
        OpSource::Field(i) => cells.get(i).copied().unwrap_or(Cell::Missing),
        OpSource::OptionalKey => row.get("__op").map(Cell::Json).unwrap_or(Cell::Missing),
        OpSource::Const(_) => Cell::Missing,
    };
    let built = build_row(
        plan,
        |i| cells.get(i).copied().unwrap_or(Cell::Missing),
        op_cell,
        params.strict_mode,
    );
    scanned.record(plan, built, || row.to_json_text());
}

fn split_bytes<'b>(data: &'b [u8], separator: &[u8]) -> Vec<&'b [u8]> {
    let mut parts = Vec::new();
    if separator.is_empty() {
        parts.push(data);
        return parts;
    }
    let mut start = 0;
    let mut i = 0;
    while i + separator.len() <= data.len() {
        if &data[i..i + separator.len()] == separator {
            parts.push(&data[start..i]);
            i += separator.len();
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&data[start..]);
    parts
}

/// Split one CSV line into fields, honouring `enclose` / `escape` when set.
fn split_fields(line: &[u8], params: &LoadParams) -> Vec<Vec<u8>> {
    let Some(quote) = params.enclose else {
        return split_bytes(line, &params.column_separator)
            .into_iter()
            .map(|f| f.to_vec())
            .collect();
    };
    let separator = &params.column_separator;
    let mut fields = Vec::new();
    let mut current = Vec::new();
    let mut in_quotes = false;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if Some(b) == params.escape && i + 1 < line.len() {
            current.push(line[i + 1]);
            i += 2;
            continue;
        }
        if b == quote {
            in_quotes = !in_quotes;
            i += 1;
            continue;
        }
        if !in_quotes && line[i..].starts_with(separator) {
            fields.push(std::mem::take(&mut current));
            i += separator.len();
            continue;
        }
        current.push(b);
        i += 1;
    }
    fields.push(current);
    fields
}

/// Scan a CSV body.
pub fn csv(plan: &Plan, params: &LoadParams, body: &[u8]) -> Result<Scanned, String> {
    let mut lines = split_bytes(body, &params.row_delimiter);
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut scanned = Scanned::empty();
    let expected = plan.fields.len();
    for line in lines.into_iter().skip(params.skip_header) {
        let row_text = || String::from_utf8_lossy(line).into_owned();
        let Ok(_) = std::str::from_utf8(line) else {
            scanned.reject("Invalid UTF-8 row", row_text);
            continue;
        };
        let raw_fields = split_fields(line, params);
        if raw_fields.len() != expected {
            let reason = format!(
                "Target column count: {expected} doesn't match source value column count: {}. Column separator: '{}', Row delimiter: '{}'",
                raw_fields.len(),
                String::from_utf8_lossy(&params.column_separator).escape_default(),
                String::from_utf8_lossy(&params.row_delimiter).escape_default()
            );
            scanned.reject(&reason, row_text);
            continue;
        }
        let texts: Vec<String> = raw_fields
            .iter()
            .map(|f| {
                let t = String::from_utf8_lossy(f).into_owned();
                if params.trim_space {
                    t.trim().to_string()
                } else {
                    t
                }
            })
            .collect();
        let cells: Vec<Cell<'_>> = texts
            .iter()
            .map(|t| {
                if t == "\\N" {
                    Cell::Null
                } else {
                    Cell::Text(t)
                }
            })
            .collect();
        let op_cell = match plan.op {
            OpSource::Field(i) => cells.get(i).copied().unwrap_or(Cell::Missing),
            _ => Cell::Missing,
        };
        let built = build_row(
            plan,
            |i| cells.get(i).copied().unwrap_or(Cell::Missing),
            op_cell,
            params.strict_mode,
        );
        scanned.record(plan, built, row_text);
    }
    Ok(scanned)
}
