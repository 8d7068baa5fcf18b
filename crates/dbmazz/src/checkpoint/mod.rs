//! Checkpoints: how far the replication slot may be confirmed (DESIGN §4).
//!
//! The slot itself is the checkpoint of the stream; dbmazz never keeps a position of its
//! own that could disagree with it. [`DurabilityTracker`] computes the durable position from
//! the sink's acknowledgements; the feedback loop reports it as flush/apply position.

mod applied_shapes;
mod snapshot_state;
mod state_file;
mod tracker;

pub use applied_shapes::{AppliedShapes, NumberedColumn, NumberedShape};
pub use snapshot_state::{SnapshotChunk, SnapshotState, TableSnapshotState};
pub use state_file::{check_writable, LeafPartitions, StateFile, StateFileError};
pub use tracker::{DurabilityTracker, WorkId};
