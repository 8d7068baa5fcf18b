//! PostgreSQL array literals (`array_out` text) → JSON arrays for StarRocks ARRAY<T>.
//!
//! Forms handled: `{1,2,NULL}`, quoted elements with backslash escapes (`{"a b","c\"d"}`),
//! nested arrays (`{{1,2},{3,4}}`), empty arrays (`{}`), the dimension prefix PostgreSQL writes
//! when a lower bound is not 1 (`[0:2]={7,8,9}`; the bounds are dropped: StarRocks arrays start
//! at 1), whitespace around unquoted elements, and the `box` delimiter `;`.
//!
//! Unquoted `NULL` (any case) is a JSON `null`; the quoted `"NULL"` is the string. Elements are
//! converted by the element's [`ValueEncoding`]; StarRocks silently NULLs elements it cannot
//! convert even in strict mode (spec §10.6), so the checks happen here: a lossy element becomes
//! `null` (or truncated, per policy) and the whole value is reported altered, or with policy
//! `error` the value is refused. PostgreSQL does not record an array column's dimensions, so a
//! value with more or fewer dimensions than the column's ARRAY type is lossy as a whole
//! ([`LossyReason::ArrayDimensions`]).
//!
//! The parser never panics and recurses only as deep as the column's type (not the input).

use crate::schema::type_map::{LossyPolicy, ValueEncoding};

use super::values::{encode_value, EncodeResult, Encoded, LossyReason};

struct Parser<'a> {
    text: &'a [u8],
    position: usize,
    delimiter: u8,
    policy: LossyPolicy,
    outcome: Encoded,
    /// Unescaped bytes of the current element, when it had backslashes.
    scratch: Vec<u8>,
}

/// One element as read from the literal.
enum Element {
    Null,
    /// The element's bytes are `text[start..end]` (no escapes in it).
    Borrowed(usize, usize),
    /// The element's bytes are in `scratch`.
    Unescaped,
}

pub(crate) fn encode_array(
    text: &[u8],
    element: &ValueEncoding,
    delimiter: u8,
    policy: LossyPolicy,
    out: &mut Vec<u8>,
) -> EncodeResult {
    let mut parser = Parser {
        text,
        position: 0,
        delimiter,
        policy,
        outcome: Encoded::Exact,
        scratch: Vec::new(),
    };
    parser.skip_dimensions()?;
    parser.list(element, out)?;
    parser.skip_whitespace();
    if parser.position != text.len() {
        return Err(LossyReason::Invalid);
    }
    Ok(parser.outcome)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_whitespace()) {
            self.position += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), LossyReason> {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return Err(LossyReason::Invalid);
        }
        self.position += 1;
        Ok(())
    }

    /// `[lb:ub]...=` before the braces.
    fn skip_dimensions(&mut self) -> Result<(), LossyReason> {
        self.skip_whitespace();
        if self.peek() != Some(b'[') {
            return Ok(());
        }
        while self.peek() == Some(b'[') {
            let close = self.text[self.position..]
                .iter()
                .position(|&byte| byte == b']')
                .ok_or(LossyReason::Invalid)?;
            let bounds = &self.text[self.position + 1..self.position + close];
            let valid = bounds
                .iter()
                .all(|byte| byte.is_ascii_digit() || matches!(byte, b':' | b'-' | b'+'));
            if !valid {
                return Err(LossyReason::Invalid);
            }
            self.position += close + 1;
        }
        self.expect(b'=')
    }

    /// `{item,item,...}` where items are encoded by `items`.
    fn list(&mut self, items: &ValueEncoding, out: &mut Vec<u8>) -> Result<(), LossyReason> {
        self.expect(b'{')?;
        out.push(b'[');
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.position += 1;
            out.push(b']');
            return Ok(());
        }
        let mut first = true;
        loop {
            if !first {
                out.push(b',');
            }
            first = false;
            self.skip_whitespace();
            if self.peek() == Some(b'{') {
                match items {
                    ValueEncoding::Array { element, .. } => self.list(element, out)?,
                    _ => return Err(LossyReason::ArrayDimensions),
                }
            } else {
                if matches!(items, ValueEncoding::Array { .. }) {
                    return Err(LossyReason::ArrayDimensions);
                }
                let element = self.element()?;
                self.write_element(element, items, out)?;
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b'}') => {
                    self.position += 1;
                    out.push(b']');
                    return Ok(());
                }
                Some(byte) if byte == self.delimiter => self.position += 1,
                _ => return Err(LossyReason::Invalid),
            }
        }
    }

    /// A quoted or unquoted element, up to (not including) the delimiter or `}`.
    fn element(&mut self) -> Result<Element, LossyReason> {
        if self.peek() == Some(b'"') {
            self.position += 1;
            return self.quoted();
        }
        let start = self.position;
        let mut escaped = false;
        // End of the element without trailing unescaped whitespace.
        let mut significant_end = start;
        while let Some(byte) = self.peek() {
            match byte {
                b'\\' => {
                    escaped = true;
                    self.position += 2;
                    significant_end = self.position.min(self.text.len());
                }
                b'{' | b'"' => return Err(LossyReason::Invalid),
                b'}' => break,
                byte if byte == self.delimiter => break,
                byte => {
                    self.position += 1;
                    if !byte.is_ascii_whitespace() {
                        significant_end = self.position;
                    }
                }
            }
        }
        if self.position > self.text.len() {
            return Err(LossyReason::Invalid);
        }
        let raw = &self.text[start..significant_end];
        if raw.is_empty() {
            return Err(LossyReason::Invalid);
        }
        if !escaped {
            if raw.eq_ignore_ascii_case(b"NULL") {
                return Ok(Element::Null);
            }
            return Ok(Element::Borrowed(start, significant_end));
        }
        self.scratch.clear();
        let mut index = 0;
        while let Some(&byte) = raw.get(index) {
            if byte == b'\\' {
                index += 1;
                match raw.get(index) {
                    Some(&escaped_byte) => self.scratch.push(escaped_byte),
                    None => return Err(LossyReason::Invalid),
                }
            } else {
                self.scratch.push(byte);
            }
            index += 1;
        }
        Ok(Element::Unescaped)
    }

    /// After the opening quote: up to and including the closing quote.
    fn quoted(&mut self) -> Result<Element, LossyReason> {
        let start = self.position;
        let rest = &self.text[start..];
        let close = rest.iter().position(|&byte| byte == b'"' || byte == b'\\');
        if let Some(close) = close {
            if rest[close] == b'"' {
                self.position += close + 1;
                return Ok(Element::Borrowed(start, start + close));
            }
        }
        self.scratch.clear();
        loop {
            match self.peek() {
                None => return Err(LossyReason::Invalid),
                Some(b'"') => {
                    self.position += 1;
                    return Ok(Element::Unescaped);
                }
                Some(b'\\') => {
                    let escaped_byte = self
                        .text
                        .get(self.position + 1)
                        .copied()
                        .ok_or(LossyReason::Invalid)?;
                    self.scratch.push(escaped_byte);
                    self.position += 2;
                }
                Some(byte) => {
                    self.scratch.push(byte);
                    self.position += 1;
                }
            }
        }
    }

    fn write_element(
        &mut self,
        element: Element,
        encoding: &ValueEncoding,
        out: &mut Vec<u8>,
    ) -> Result<(), LossyReason> {
        let bytes = match element {
            Element::Null => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            Element::Borrowed(start, end) => &self.text[start..end],
            Element::Unescaped => &self.scratch[..],
        };
        match encode_value(encoding, bytes, self.policy, out) {
            Ok(Encoded::Exact) => Ok(()),
            Ok(Encoded::Altered(reason)) => {
                self.outcome = Encoded::Altered(reason);
                Ok(())
            }
            Err(reason) if self.policy == LossyPolicy::Error => Err(reason),
            Err(reason) => {
                out.extend_from_slice(b"null");
                self.outcome = Encoded::Altered(reason);
                Ok(())
            }
        }
    }
}
