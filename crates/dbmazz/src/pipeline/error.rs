//! Errors of the pipeline stage: the stream did something we cannot follow, or the sink or
//! local disk failed.

use super::spill::SpillError;
use crate::sink::SinkError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{message} refers to relation OID {oid}, which no Relation message announced")]
    UnknownRelation { oid: u32, message: &'static str },
    #[error("{message} for {table} has {got} columns, its Relation message has {expected}")]
    ColumnCountMismatch {
        table: String,
        message: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("unexpected {message} {context}")]
    UnexpectedMessage {
        message: &'static str,
        context: &'static str,
    },
    #[error(transparent)]
    Spill(#[from] SpillError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}
