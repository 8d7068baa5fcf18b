//! The one error type of the decoder: which message, where in it, and what was wrong.
//!
//! Decoding sits at the edge of the process, fed by the network; an error must say
//! enough to diagnose a desynchronised stream from a log line alone.

/// A frame could not be decoded. Never a panic: every malformed input ends here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {kind} message at byte {offset}: {reason}")]
pub struct DecodeError {
    /// The message kind being decoded (`"Insert"`, `"XLogData"`, ...), or `"unknown"`.
    pub kind: &'static str,
    /// Byte offset from the start of the frame where decoding failed.
    pub offset: usize,
    pub reason: DecodeErrorReason,
}

/// What exactly was wrong with the frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorReason {
    #[error("empty frame")]
    Empty,
    #[error("unknown message type byte 0x{0:02x}")]
    UnknownMessageType(u8),
    #[error("frame ends early: {needed} bytes needed, {remaining} left")]
    UnexpectedEnd { needed: usize, remaining: usize },
    #[error("string has no NUL terminator")]
    UnterminatedString,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("negative length {0}")]
    NegativeLength(i32),
    #[error("expected {expected}, found byte 0x{found:02x}")]
    UnexpectedByte { expected: &'static str, found: u8 },
    #[error("{0} bytes left over after the message")]
    TrailingBytes(usize),
    #[error("message not allowed between Stream Start and Stream Stop")]
    InsideStream,
    #[error("Stream Stop without a Stream Start")]
    OutsideStream,
}
