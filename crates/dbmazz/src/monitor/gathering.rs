//! Continuous gathering for the screen and the text mode: `/status` every refresh on one task,
//! the row counts on another. A slow or stalled database (a StarRocks that does not answer
//! within its 5 s) then delays only its counts, shown as of their last round, and never the
//! pipeline's own figures, which matter most just then.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{interval, Instant, MissedTickBehavior};

use super::source::{Counts, Gatherer, MonitorSnapshot, TableHints};

/// Gathers every `refresh` until the receiver is dropped or the handle aborted. The first
/// snapshot waits for the first counts; later ones carry the latest counts there are.
pub(super) fn spawn(
    gatherer: Gatherer,
    refresh: Duration,
) -> (mpsc::Receiver<MonitorSnapshot>, tokio::task::JoinHandle<()>) {
    let (mut status_reader, mut counting) = gatherer.split();
    let (sender, receiver) = mpsc::channel(1);
    let task = tokio::spawn(async move {
        let (hints_sender, mut hints) = watch::channel(TableHints::default());
        let (counts_sender, mut counts) = watch::channel::<Option<Counts>>(None);
        let _counter = AbortOnDrop(tokio::spawn(async move {
            let mut ticks = interval(refresh);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // The first round counts what the first /status names.
            if hints.changed().await.is_err() {
                return;
            }
            loop {
                ticks.tick().await;
                let round_hints = hints.borrow_and_update().clone();
                let round = counting.round(&round_hints).await;
                if counts_sender.send(Some(round)).is_err() {
                    break;
                }
            }
        }));
        let mut ticks = interval(refresh);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let status = status_reader.read_status().await;
            let taken_at = Instant::now().into_std();
            let round_hints = status_reader.hints(&status);
            // Always marked changed: the counting waits for the first one, even when /status
            // could not be read (no hints beyond the configured tables).
            hints_sender.send_replace(round_hints);
            if hints_sender.is_closed() {
                // The counting task ended (it never does by itself): no counts any more.
                break;
            }
            let latest = match counts.wait_for(Option::is_some).await {
                Ok(latest) => latest.clone(),
                Err(_) => break,
            };
            let Some((postgres, starrocks)) = latest else {
                break;
            };
            let snapshot = MonitorSnapshot {
                taken_at,
                status,
                postgres,
                starrocks,
            };
            if sender.send(snapshot).await.is_err() {
                break;
            }
        }
    });
    (receiver, task)
}

/// Aborts the counting task when the gathering task ends or is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
