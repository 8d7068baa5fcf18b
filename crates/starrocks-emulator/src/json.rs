//! A small JSON reader for Stream Load bodies (spec §4.7, §9.5, §9.10).
//!
//! Why not serde_json: StarRocks keeps the *raw token text* of numbers (`1.50` stays `1.50` in a
//! VARCHAR, decimals are parsed from text), keeps the first of duplicate keys, and (simdjson
//! on-demand) does not validate bare atoms such as `NaN` until a column reads them. This reader
//! does the same: numbers stay text, invalid bare atoms become [`Json::Bad`] and only fail the row
//! that reads them. Strings without escapes are borrowed from the body, which keeps a million-row
//! load fast.

use std::borrow::Cow;

/// A parsed JSON value borrowing from the body.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as its raw token text.
    Number(&'a str),
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object, keys in document order (duplicates kept; lookups take the first).
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
    /// A bare token that is not valid JSON (`NaN`, `Infinity`, `-Infinity`, `nan`).
    Bad(&'a str),
}

impl<'a> Json<'a> {
    /// First value under `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Minified JSON text (numbers as their token text).
    pub fn to_json_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, false);
        out
    }

    /// JSON text as StarRocks prints a JSON column: `{"a": 1, "b": [1, 2]}`.
    pub fn to_display_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, true);
        out
    }

    fn write_text(&self, out: &mut String, spaced: bool) {
        let (colon, comma) = if spaced { (": ", ", ") } else { (":", ",") };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Bad(t) => out.push_str(t),
            Json::Str(s) => push_quoted(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    item.write_text(out, spaced);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    push_quoted(out, k);
                    out.push_str(colon);
                    v.write_text(out, spaced);
                }
                out.push('}');
            }
        }
    }
}

fn push_quoted(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// A document-level error: the whole load fails (spec §4.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DocError(pub String);

/// Parse a Stream Load JSON body into rows (all at once; see [`RowReader`] for streaming).
///
/// `strip_outer_array = false`: a stream of top-level objects; a top-level array fails the load.
/// `strip_outer_array = true`: exactly one array whose elements are the rows.
pub fn parse_rows(body: &str, strip_outer_array: bool) -> Result<Vec<Json<'_>>, DocError> {
    let mut reader = RowReader::new(body, strip_outer_array)?;
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row()? {
        rows.push(row);
    }
    Ok(rows)
}

/// Reads rows one at a time, so a large body never becomes one big tree.
pub struct RowReader<'a> {
    parser: Parser<'a>,
    strip_outer_array: bool,
    done: bool,
    first: bool,
}

impl<'a> RowReader<'a> {
    /// Check the document start (spec §4.7) and position on the first row.
    pub fn new(body: &'a str, strip_outer_array: bool) -> Result<RowReader<'a>, DocError> {
        let mut parser = Parser {
            text: body,
            bytes: body.as_bytes(),
            pos: 0,
        };
        parser.skip_ws();
        let Some(&first) = parser.bytes.get(parser.pos) else {
            return Ok(RowReader {
                parser,
                strip_outer_array,
                done: true,
                first: true,
            });
        };
        if first != b'{' && first != b'[' {
            return Err(DocError(format!(
                "illegal json started with {}",
                char::from(first)
            )));
        }
        if strip_outer_array {
            if first != b'[' {
                let value = parser.value(0)?;
                return Err(DocError(format!(
                    "the value should be array type with strip_outer_array=true, value: {}",
                    truncate(&value.to_json_text(), 100)
                )));
            }
            parser.pos += 1;
        }
        Ok(RowReader {
            parser,
            strip_outer_array,
            done: false,
            first: true,
        })
    }

    /// The next row, `None` at the end of the document.
    pub fn next_row(&mut self) -> Result<Option<Json<'a>>, DocError> {
        if self.done {
            return Ok(None);
        }
        let p = &mut self.parser;
        p.skip_ws();
        if self.strip_outer_array {
            if !self.first {
                match p.bytes.get(p.pos) {
                    Some(b',') => p.pos += 1,
                    Some(b']') => {
                        p.pos += 1;
                        return self.finish();
                    }
                    _ => return Err(p.syntax("expected ',' or ']'")),
                }
            } else if p.bytes.get(p.pos) == Some(&b']') {
                p.pos += 1;
                return self.finish();
            }
            self.first = false;
            return p.value(1).map(Some);
        }
        if p.pos >= p.bytes.len() {
            self.done = true;
            return Ok(None);
        }
        if p.bytes[p.pos] == b'[' {
            return Err(DocError(
                "Failed to iterate document stream as object. error: INCORRECT_TYPE: The JSON element does not have the requested type.".into(),
            ));
        }
        p.value(0).map(Some)
    }

    /// Like [`RowReader::next_row`], but an object row is scattered straight into `out`
    /// (`out[i]` = the first value of key `fields[i]`) without building the object. Returns the
    /// row's text span for the error log, or the row itself when it is not an object.
    pub fn next_row_into(
        &mut self,
        fields: &[String],
        out: &mut [Option<Json<'a>>],
    ) -> Result<Option<Scattered<'a>>, DocError> {
        if self.done {
            return Ok(None);
        }
        let p = &mut self.parser;
        p.skip_ws();
        if self.strip_outer_array {
            if !self.first {
                match p.bytes.get(p.pos) {
                    Some(b',') => p.pos += 1,
                    Some(b']') => {
                        p.pos += 1;
                        self.finish()?;
                        return Ok(None);
                    }
                    _ => return Err(p.syntax("expected ',' or ']'")),
                }
            } else if p.bytes.get(p.pos) == Some(&b']') {
                p.pos += 1;
                self.finish()?;
                return Ok(None);
            }
            self.first = false;
        } else {
            if p.pos >= p.bytes.len() {
                self.done = true;
                return Ok(None);
            }
            if p.bytes[p.pos] == b'[' {
                return Err(DocError(
                    "Failed to iterate document stream as object. error: INCORRECT_TYPE: The JSON element does not have the requested type.".into(),
                ));
            }
        }
        let p = &mut self.parser;
        p.skip_ws();
        if p.bytes.get(p.pos) != Some(&b'{') {
            return p.value(1).map(|v| Some(Scattered::NotObject(v)));
        }
        let start = p.pos;
        p.object_into(fields, out)?;
        Ok(Some(Scattered::Object(&p.text[start..p.pos])))
    }

    fn finish(&mut self) -> Result<Option<Json<'a>>, DocError> {
        self.done = true;
        self.parser.skip_ws();
        if self.parser.pos < self.parser.bytes.len() {
            return Err(self.parser.syntax("trailing content after the outer array"));
        }
        Ok(None)
    }
}

/// A row read by [`RowReader::next_row_into`].
#[derive(Debug)]
pub enum Scattered<'a> {
    /// An object, scattered into the output slots; its text.
    Object(&'a str),
    /// Anything else (filtered by the caller).
    NotObject(Json<'a>),
}

/// Parse one complete JSON value (used for `jsonpaths` headers and JSON text in CSV).
pub fn parse_value(text: &str) -> Result<Json<'_>, DocError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos < parser.bytes.len() {
        return Err(parser.syntax("trailing content"));
    }
    if let Json::Bad(token) = value {
        return Err(DocError(format!("invalid JSON token {token}")));
    }
    Ok(value)
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

const MAX_DEPTH: usize = 512;

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn syntax(&self, what: &str) -> DocError {
        DocError(format!(
            "Failed to parse json: TAPE_ERROR: {what} at byte {}",
            self.pos
        ))
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>, DocError> {
        if depth > MAX_DEPTH {
            return Err(self.syntax("document too deep"));
        }
        self.skip_ws();
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.syntax("unexpected end of document"));
        };
        match b {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => Ok(Json::Str(self.string()?)),
            b'-' | b'0'..=b'9' => self.number_or_bad(),
            b'a'..=b'z' | b'A'..=b'Z' | b'+' | b'.' | b'_' => {
                let token = self.atom();
                Ok(match token {
                    "null" => Json::Null,
                    "true" => Json::Bool(true),
                    "false" => Json::Bool(false),
                    other => Json::Bad(other),
                })
            }
            _ => Err(self.syntax("unexpected character")),
        }
    }

    fn atom(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(&b) = self.bytes.get(self.pos) {
            if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_') {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.text[start..self.pos]
    }

    fn number_or_bad(&mut self) -> Result<Json<'a>, DocError> {
        if let Some(end) = self.plain_number_end() {
            let token = &self.text[self.pos..end];
            self.pos = end;
            return Ok(Json::Number(token));
        }
        let token = self.atom();
        if is_json_number(token) {
            Ok(Json::Number(token))
        } else if token.starts_with('-') && !token[1..].starts_with(|c: char| c.is_ascii_digit()) {
            Ok(Json::Bad(token))
        } else {
            Err(self.syntax("invalid number"))
        }
    }

    /// Consume `word` if it is at the cursor and ends at a delimiter (`true`, `false`, `null`).
    #[inline]
    fn literal_at(&mut self, word: &[u8]) -> bool {
        let end = self.pos + word.len();
        let matches = self.bytes.get(self.pos..end) == Some(word)
            && !self.bytes.get(end).is_some_and(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_')
            });
        if matches {
            self.pos = end;
        }
        matches
    }

    /// The common number shapes (`-?(0|[1-9][0-9]*)(\.[0-9]+)?` ending at a delimiter) in one
    /// pass; `None` sends anything else (exponents, bad tokens) to the general path.
    #[inline]
    fn plain_number_end(&self) -> Option<usize> {
        let b = self.bytes;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == digits || (i - digits > 1 && b[digits] == b'0') {
            return None;
        }
        if b.get(i) == Some(&b'.') {
            let fraction = i + 1;
            i = fraction;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == fraction {
                return None;
            }
        }
        match b.get(i) {
            Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_') => None,
            _ => Some(i),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json<'a>, DocError> {
        self.pos += 1;
        let mut fields = Vec::with_capacity(16);
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.syntax("expected object key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.syntax("expected ':'"));
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            fields.push((key, value));
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(self.syntax("expected ',' or '}'")),
            }
        }
    }

    /// Parse an object, storing the first value of each wanted key into `out`.
    fn object_into(
        &mut self,
        fields: &[String],
        out: &mut [Option<Json<'a>>],
    ) -> Result<(), DocError> {
        for slot in out.iter_mut() {
            // Most cells borrow from the body: skip the out-of-line drop call for those.
            let owns_memory = matches!(
                slot,
                Some(Json::Str(Cow::Owned(_)) | Json::Array(_) | Json::Object(_))
            );
            if owns_memory {
                *slot = None;
            } else {
                std::mem::forget(slot.take());
            }
        }
        self.pos += 1;
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(());
        }
        let mut position = 0;
        loop {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.syntax("expected object key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.syntax("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            // Scalars are parsed inline: returning a `Json` through `value()` costs a
            // store-forwarding stall per cell (seen in the profile of the 1M-row load).
            let value = match self.bytes.get(self.pos) {
                Some(b'"') => Json::Str(self.string()?),
                Some(b'-' | b'0'..=b'9') => match self.plain_number_end() {
                    Some(end) => {
                        let token = &self.text[self.pos..end];
                        self.pos = end;
                        Json::Number(token)
                    }
                    None => self.number_or_bad()?,
                },
                Some(b't') if self.literal_at(b"true") => Json::Bool(true),
                Some(b'f') if self.literal_at(b"false") => Json::Bool(false),
                Some(b'n') if self.literal_at(b"null") => Json::Null,
                _ => self.value(2)?,
            };
            let index = match fields.get(position) {
                Some(f) if *f == key => Some(position),
                _ => fields.iter().position(|f| *f == key),
            };
            if let Some(i) = index {
                if out[i].is_none() {
                    out[i] = Some(value);
                }
            }
            position += 1;
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json<'a>, DocError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.syntax("expected ',' or ']'")),
            }
        }
    }

    /// A string at the cursor: borrowed from the body unless it has escapes. Inlined (the
    /// escape-free scan); escapes and errors go to [`Parser::string_tail`].
    #[inline]
    fn string(&mut self) -> Result<Cow<'a, str>, DocError> {
        self.pos += 1;
        let start = self.pos;
        // Skip 8 bytes at a time while none is '"', '\\' or a control character.
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if has_special_byte(word) {
                break;
            }
            self.pos += 8;
        }
        // Fast path: no escapes.
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'"' => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' | 0..=0x1f => break,
                _ => self.pos += 1,
            }
        }
        self.string_tail(start)
    }

    /// The rest of a string from its first escape (or the error at the cursor).
    #[inline(never)]
    fn string_tail(&mut self, start: usize) -> Result<Cow<'a, str>, DocError> {
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.syntax("unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(&esc) = self.bytes.get(self.pos) else {
                        return Err(self.syntax("unterminated escape"));
                    };
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first) {
                                if self.bytes.get(self.pos) != Some(&b'\\')
                                    || self.bytes.get(self.pos + 1) != Some(&b'u')
                                {
                                    return Err(self.syntax("lone surrogate"));
                                }
                                self.pos += 2;
                                let second = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&second) {
                                    return Err(self.syntax("bad surrogate pair"));
                                }
                                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                            } else {
                                first
                            };
                            match char::from_u32(code) {
                                Some(c) => out.push(c),
                                None => return Err(self.syntax("invalid unicode escape")),
                            }
                        }
                        _ => return Err(self.syntax("invalid escape")),
                    }
                }
                0..=0x1f => return Err(self.syntax("control character in string")),
                _ => {
                    // Copy one UTF-8 character.
                    let rest = &self.text[self.pos..];
                    let c = rest.chars().next().unwrap_or('\u{fffd}');
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, DocError> {
        let Some(hex) = self.text.get(self.pos..self.pos + 4) else {
            return Err(self.syntax("short unicode escape"));
        };
        let code = u32::from_str_radix(hex, 16).map_err(|_| self.syntax("bad unicode escape"))?;
        self.pos += 4;
        Ok(code)
    }
}

/// True if any byte of `word` is '"', '\\' or below 0x20 (SWAR).
fn has_special_byte(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (quote | backslash | control) != 0
}

/// True if `token` is a valid JSON number.
fn is_json_number(token: &str) -> bool {
    let b = token.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while matches!(b.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while matches!(b.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_token_text() {
        let rows = parse_rows(r#"{"a": 1.50, "b": -0e3}"#, false).unwrap();
        assert_eq!(rows[0].get("a"), Some(&Json::Number("1.50")));
        assert_eq!(rows[0].get("b"), Some(&Json::Number("-0e3")));
    }

    #[test]
    fn number_fast_path_and_general_path_agree() {
        for (text, expected) in [
            ("0", Ok(Json::Number("0"))),
            ("-12.50", Ok(Json::Number("-12.50"))),
            ("1e5", Ok(Json::Number("1e5"))),
            ("-0.0E-3", Ok(Json::Number("-0.0E-3"))),
            ("-Infinity", Err(())), // a bare bad token is an error at the top level
        ] {
            assert_eq!(parse_value(text).map_err(|_| ()), expected, "{text}");
        }
        for bad in ["01", "1.", "1.e3", "1x", "1.5.5"] {
            let row = format!("{{\"a\": {bad}}}");
            assert!(parse_rows(&row, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_duplicate_key_wins() {
        let rows = parse_rows(r#"{"a": 1, "a": 2}"#, false).unwrap();
        assert_eq!(rows[0].get("a"), Some(&Json::Number("1")));
    }

    #[test]
    fn top_level_array_without_strip_fails() {
        assert!(parse_rows("[{}]", false).is_err());
        assert_eq!(parse_rows("[{}, {}]", true).unwrap().len(), 2);
    }

    #[test]
    fn object_stream_is_several_rows() {
        assert_eq!(
            parse_rows("{\"a\":1}\n{\"a\":2} {}", false).unwrap().len(),
            3
        );
    }

    #[test]
    fn bare_nan_is_a_lazy_bad_token() {
        let rows = parse_rows(r#"{"a": NaN, "b": -Infinity}"#, false).unwrap();
        assert_eq!(rows[0].get("a"), Some(&Json::Bad("NaN")));
        assert_eq!(rows[0].get("b"), Some(&Json::Bad("-Infinity")));
    }

    #[test]
    fn illegal_start_is_reported() {
        let err = parse_rows("x", false).unwrap_err();
        assert_eq!(err.0, "illegal json started with x");
    }

    #[test]
    fn escapes_and_unicode() {
        let v = parse_value(r#""a\"b\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(v, Json::Str(Cow::Owned("a\"bé😀".into())));
    }

    #[test]
    fn special_byte_detection() {
        let word = |s: &[u8; 8]| u64::from_le_bytes(*s);
        assert!(!has_special_byte(word(b"abcdefgh")));
        assert!(has_special_byte(word(b"abc\"efgh")));
        assert!(has_special_byte(word(b"abc\\efgh")));
        assert!(has_special_byte(word(b"abc\nefgh")));
        assert!(!has_special_byte(word(
            "ééééé".as_bytes()[..8].try_into().unwrap()
        )));
        let long = r#""a fairly long string value with \"escapes\" and more text""#;
        assert_eq!(
            parse_value(long).unwrap(),
            Json::Str(Cow::Owned(
                "a fairly long string value with \"escapes\" and more text".into()
            ))
        );
    }

    #[test]
    fn malformed_documents_never_panic() {
        for text in [
            "{",
            "{\"a\"",
            "{\"a\":}",
            "[1,",
            "\"\\u12",
            "{\"a\":1,}",
            "-",
            "{\"a\":01}",
        ] {
            let _ = parse_rows(text, false);
            let _ = parse_rows(text, true);
        }
    }
}
