//! A load's rows as a Stream Load body encoded while it is sent ([`BodySource`]): memory holds
//! one piece of JSON per load in flight instead of the whole body.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::encode::{ColumnSelection, JsonBody, LossyValue, RowMeta, TableEncoder};
use super::plan::RowOp;
use super::stream_load::{BodyError, BodyPieces, BodySource};
use crate::pipeline::ImageSlots;

/// JSON bytes per piece: large enough that per-frame costs vanish, small enough to stay
/// out of the way of the memory budget.
const PIECE_BYTES: usize = 256 * 1024;

/// The rows of one planned load and how to encode them.
pub(super) struct RowsBody {
    encoder: Arc<TableEncoder>,
    rows: Vec<RowOp>,
    selection: ColumnSelection,
    synced_at: String,
    /// The lossy values of the first complete pass (every pass finds the same ones).
    lossy: Mutex<Option<Vec<LossyValue>>>,
}

impl RowsBody {
    pub(super) fn new(
        encoder: Arc<TableEncoder>,
        rows: Vec<RowOp>,
        selection: ColumnSelection,
        synced_at: String,
    ) -> Arc<Self> {
        Arc::new(RowsBody {
            encoder,
            rows,
            selection,
            synced_at,
            lossy: Mutex::new(None),
        })
    }

    pub(super) fn rows(&self) -> usize {
        self.rows.len()
    }

    /// The values that were stored as NULL (after the load was sent).
    pub(super) fn take_lossy(&self) -> Vec<LossyValue> {
        self.lossy
            .lock()
            .map(|mut lossy| lossy.take().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl BodySource for Arc<RowsBody> {
    fn open(&self) -> Box<dyn BodyPieces> {
        Box::new(RowsPieces {
            body: Arc::clone(self),
            next: 0,
            json: JsonBody::with_capacity(PIECE_BYTES + 4096),
            slots: ImageSlots::default(),
            done: false,
        })
    }
}

/// One pass: encodes rows until a piece is full.
struct RowsPieces {
    body: Arc<RowsBody>,
    next: usize,
    json: JsonBody,
    slots: ImageSlots,
    done: bool,
}

impl BodyPieces for RowsPieces {
    fn next_piece(&mut self) -> Option<Result<Bytes, BodyError>> {
        if self.done {
            return None;
        }
        let body = &*self.body;
        while self.next < body.rows.len() && self.json.byte_len() < PIECE_BYTES {
            let row = &body.rows[self.next];
            self.next += 1;
            let result = match row {
                RowOp::Upsert { values, commit_lsn } => body.encoder.push_upsert(
                    &mut self.json,
                    &values.view(&mut self.slots),
                    &body.selection,
                    &RowMeta {
                        commit_lsn: commit_lsn.0,
                        synced_at: &body.synced_at,
                    },
                ),
                RowOp::Delete { key, commit_lsn } => body.encoder.push_delete(
                    &mut self.json,
                    &key.view(&mut self.slots),
                    &body.selection,
                    &RowMeta {
                        commit_lsn: commit_lsn.0,
                        synced_at: &body.synced_at,
                    },
                ),
            };
            if let Err(error) = result {
                self.done = true;
                return Some(Err(BodyError::Encode(error.to_string())));
            }
        }
        if self.next < body.rows.len() {
            return Some(Ok(Bytes::from(self.json.take_piece(PIECE_BYTES + 4096))));
        }
        self.done = true;
        let (bytes, lossy) = std::mem::take(&mut self.json).finish();
        if let Ok(mut first) = body.lossy.lock() {
            first.get_or_insert(lossy);
        }
        Some(Ok(Bytes::from(bytes)))
    }
}
