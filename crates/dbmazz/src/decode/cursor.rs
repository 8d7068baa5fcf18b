//! A bounds-checked reader over one frame.
//!
//! Every read checks the remaining length first and reports the message kind and the
//! byte offset on failure; slices are `Bytes::slice`, so values stay zero-copy.

use bytes::Bytes;

use super::error::{DecodeError, DecodeErrorReason};

pub(crate) struct Cursor {
    buf: Bytes,
    pos: usize,
    /// Message kind named in errors; set once the type byte is known.
    pub(crate) kind: &'static str,
}

impl Cursor {
    pub(crate) fn new(buf: Bytes, kind: &'static str) -> Self {
        Cursor { buf, pos: 0, kind }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn error(&self, reason: DecodeErrorReason) -> DecodeError {
        DecodeError {
            kind: self.kind,
            offset: self.pos,
            reason,
        }
    }

    /// An error about the byte just read.
    pub(crate) fn error_previous(&self, reason: DecodeErrorReason) -> DecodeError {
        DecodeError {
            kind: self.kind,
            offset: self.pos.saturating_sub(1),
            reason,
        }
    }

    /// The next `n` bytes as an array, advancing past them.
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N).filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return Err(self.error(DecodeErrorReason::UnexpectedEnd {
                needed: N,
                remaining: self.remaining(),
            }));
        };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..end]);
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }

    pub(crate) fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take().map(u16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        self.take().map(i32::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.take().map(u64::from_be_bytes)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        self.take().map(i64::from_be_bytes)
    }

    /// `n` bytes as a zero-copy slice of the frame.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(self.error(DecodeErrorReason::UnexpectedEnd {
                needed: n,
                remaining: self.remaining(),
            }));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// An Int32 length followed by that many bytes; a negative length is an error.
    pub(crate) fn len_prefixed(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.i32()?;
        let len =
            usize::try_from(len).map_err(|_| self.error(DecodeErrorReason::NegativeLength(len)))?;
        self.bytes(len)
    }

    /// Everything left in the frame.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    /// A NUL-terminated UTF-8 string (PostgreSQL's `String` wire type).
    pub(crate) fn cstring(&mut self) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos..];
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(self.error(DecodeErrorReason::UnterminatedString));
        };
        let text = std::str::from_utf8(&rest[..nul])
            .map_err(|_| self.error(DecodeErrorReason::InvalidUtf8))?
            .to_owned();
        self.pos += nul + 1;
        Ok(text)
    }

    /// The frame must be fully consumed (PostgreSQL sends nothing after a message).
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(DecodeErrorReason::TrailingBytes(n))),
        }
    }
}
