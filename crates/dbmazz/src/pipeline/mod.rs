//! From decoded messages to sink operations: transaction assembly (with spilling of large
//! streamed transactions), per-table batching, ordered dispatch and backpressure.

mod assembler;
mod batcher;
mod change;
mod core;
mod dispatcher;
mod error;
mod held_spill;
mod spill;

pub use assembler::{Assembled, AssemblerStats, TransactionAssembler};
pub use batcher::{BatchLimits, Batcher, TableOp};
pub use change::{ChangeKind, ImageSlots, ImageValues, OldImage, RowChange, RowImage};
pub use core::{CoreError, CoreStats, PipelineLimits, StreamCore};
pub use dispatcher::{Completion, Dispatcher};
pub use error::PipelineError;
pub use spill::{clear_spill_dir, SpillError};

#[cfg(test)]
mod tests;
