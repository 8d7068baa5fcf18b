//! `dbmazz snapshot --wait`: follows one table's snapshot in `/status` until it is loaded and
//! its held stream changes released.

use std::time::Duration;

use super::api::{ApiError, ApiUrl};

const POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotWaitError {
    #[error(
        "lost dbmazz while waiting for the snapshot of {table}: {source} (an unfinished \
         snapshot is resumed at the next start)"
    )]
    Lost {
        table: String,
        #[source]
        source: ApiError,
    },
    #[error("dbmazz stopped with an error while snapshotting {table}: {message}")]
    Failed { table: String, message: String },
}

/// One table's figures in the `snapshot` section of /status.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
struct TableFigures {
    table: String,
    rows: u64,
    chunks_done: u64,
    chunks_total: u64,
    done: bool,
}

/// Polls /status until `table` is done; `progress` gets a line whenever its figures change.
/// Returns the closing line.
pub async fn wait_for_table_snapshot(
    api: &ApiUrl,
    table: &str,
    mut progress: impl FnMut(String),
) -> Result<String, SnapshotWaitError> {
    let mut last: Option<TableFigures> = None;
    loop {
        let status = api
            .status()
            .await
            .map_err(|source| SnapshotWaitError::Lost {
                table: table.to_string(),
                source,
            })?;
        if status.state == "failed" {
            return Err(SnapshotWaitError::Failed {
                table: table.to_string(),
                message: status
                    .last_error
                    .map(|error| error.message)
                    .unwrap_or_default(),
            });
        }
        let figures = status
            .snapshot
            .as_ref()
            .and_then(|snapshot| snapshot.get("tables"))
            .and_then(|tables| serde_json::from_value::<Vec<TableFigures>>(tables.clone()).ok())
            .and_then(|tables| tables.into_iter().find(|figures| figures.table == table));
        if let Some(figures) = figures {
            if figures.done {
                return Ok(format!(
                    "snapshot of {table} loaded: {} rows in {} chunks; its held stream changes \
                     are applied",
                    figures.rows, figures.chunks_total
                ));
            }
            if last.as_ref() != Some(&figures) {
                progress(format!(
                    "{table}: {}/{} chunks, {} rows",
                    figures.chunks_done, figures.chunks_total, figures.rows
                ));
                last = Some(figures);
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
