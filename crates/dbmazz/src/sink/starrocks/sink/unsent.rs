//! Unchanged TOAST values of rows a copy may have missed.
//!
//! A copy read in fresh transactions (a resumed initial snapshot, a table snapshot while
//! streaming) can miss a row that an UPDATE moved from a chunk not yet read into one already
//! read. The stream brings that UPDATE, but without the TOASTed values it left unchanged, and
//! as a partial update it would create the row with those columns NULL. So for a table's
//! changes committed before the position its last fresh chunk was read at (every change that
//! can have moved a row between two chunks' reads), those values are read from PostgreSQL's
//! row at the change's key — which converges as it does for key changes: whatever changed the
//! row since follows in the stream.

use bytes::Bytes;

use super::{Loader, StarRocksSink};
use crate::decode::TupleValue;
use crate::pipeline::{RowChange, RowImage};
use crate::schema::TableName;
use crate::sink::{Batch, SinkError};
use crate::Lsn;

impl<L: Loader> StarRocksSink<L> {
    /// Changes of `table` committed before `before` get unsent values from PostgreSQL.
    pub(super) fn widen_fill_window(&self, table: &TableName, before: Lsn) {
        let mut windows = self
            .fill_windows
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let window = windows.entry(table.clone()).or_insert(before);
        *window = (*window).max(before);
    }

    /// The batch's changes with the unsent values of those inside the table's window filled
    /// from PostgreSQL; `None` when there is nothing to fill (or no source to read).
    pub(super) async fn fill_from_source(
        &self,
        batch: &Batch,
    ) -> Result<Option<Vec<RowChange>>, SinkError> {
        let Some(source) = &self.source_rows else {
            return Ok(None);
        };
        let before = self
            .fill_windows
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&batch.table.name)
            .copied();
        let Some(before) = before else {
            return Ok(None);
        };
        let to_fill = |change: &RowChange| {
            change.commit_lsn < before
                && change
                    .new
                    .as_ref()
                    .is_some_and(RowImage::has_unchanged_toast)
        };
        if !batch.changes.iter().any(to_fill) {
            return Ok(None);
        }
        let mut changes = batch.changes.clone();
        let (mut filled, mut gone) = (0usize, 0usize);
        for change in changes.iter_mut().filter(|change| to_fill(change)) {
            let Some(new) = &change.new else { continue };
            let mut values = new.values();
            let columns: Vec<usize> = values
                .0
                .iter()
                .enumerate()
                .filter(|(_, value)| matches!(value, TupleValue::UnchangedToast))
                .map(|(index, _)| index)
                .collect();
            let mut key = Vec::new();
            for index in change.schema.key_indexes() {
                if let Some(TupleValue::Text(bytes)) = values.0.get(index) {
                    key.push((index, String::from_utf8_lossy(bytes).into_owned()));
                }
            }
            if key.is_empty() {
                continue;
            }
            let found = match source.read(&change.schema, &key, &columns).await {
                Ok(found) => found,
                // A column or the table gone since: the stream's later schema change or drop
                // follows; nothing to read.
                Err(error) if matches!(error.sqlstate(), Some("42703" | "42P01")) => {
                    tracing::warn!(table = %batch.table.name, %error, "cannot read unchanged TOAST values from PostgreSQL (dropped since?): left as they are");
                    None
                }
                Err(error) => {
                    return Err(self.error(
                        &batch.table,
                        format!(
                            "reading unchanged TOAST values of rows the snapshot may have \
                             missed from PostgreSQL: {error} (restart dbmazz: they are read \
                             again)"
                        ),
                    ))
                }
            };
            let Some(found) = found else {
                gone += 1;
                continue;
            };
            for (&index, value) in columns.iter().zip(found) {
                values.0[index] =
                    value.map_or(TupleValue::Null, |text| TupleValue::Text(Bytes::from(text)));
            }
            change.new = Some(RowImage::from_tuple(&values));
            filled += 1;
        }
        tracing::debug!(table = %batch.table.name, filled, gone, before = %before, "unchanged TOAST values read from PostgreSQL (changes the snapshot may have missed rows of)");
        Ok(Some(changes))
    }
}
