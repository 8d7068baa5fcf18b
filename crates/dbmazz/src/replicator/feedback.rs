//! Standby Status Updates: write = last received, flush = apply = durable (DESIGN §4).
//!
//! Sent when asked (keepalive with reply requested), every `status_interval`, and soon after
//! the durable position moves (at most every [`MIN_GAP`]), so the slot follows the sink closely
//! without flooding the server. The state file follows each report.

use std::time::{Duration, Instant};

use super::prepare::RunError;
use crate::checkpoint::StateFile;
use crate::config::Config;
use crate::pipeline::StreamCore;
use crate::sink::Sink;
use crate::source::ReplicationWriter;
use crate::Lsn;

const MIN_GAP: Duration = Duration::from_millis(500);

pub struct Feedback {
    interval: Duration,
    last_sent: Instant,
    reported: Lsn,
    state: StateFile,
    state_dir: std::path::PathBuf,
}

impl Feedback {
    pub fn new(config: &Config, state: StateFile, start: Lsn) -> Self {
        Feedback {
            interval: config.source.status_interval.0,
            last_sent: Instant::now(),
            reported: start,
            state,
            state_dir: config.state_dir.clone(),
        }
    }

    /// The state file this stream writes (table snapshots record their progress in it).
    pub fn state_mut(&mut self) -> &mut StateFile {
        &mut self.state
    }

    pub async fn maybe_send<S: Sink>(
        &mut self,
        writer: &mut ReplicationWriter,
        core: &StreamCore<S>,
        force: bool,
    ) -> Result<(), RunError> {
        let durable = core.durable();
        let since = self.last_sent.elapsed();
        let due = force || since >= self.interval || (durable > self.reported && since >= MIN_GAP);
        if !due {
            return Ok(());
        }
        let write = core.stats().last_received.max(durable);
        writer
            .send_status_update(write, durable, durable, false)
            .await?;
        self.last_sent = Instant::now();
        if durable > self.reported {
            self.reported = durable;
            self.state.last_durable_lsn = durable.to_string();
            self.state.store(&self.state_dir)?;
        }
        Ok(())
    }
}
