//! `transactional = true`: each load of a batch goes through the transaction API (spec §5) —
//! begin, load, **prepare** — and only when every part of the batch is prepared are they
//! committed, in order. A prepared transaction survives a crash of dbmazz (until StarRocks's
//! prepared timeout), and the replay finds it by its deterministic label and commits it, so a
//! batch split into several loads (partial-update column sets) becomes visible as a whole.
//!
//! Outcomes the answers leave open are settled by the label's state, as for plain loads:
//! PREPARED = ready to commit, COMMITTED/VISIBLE = an earlier run's load (a stream batch is
//! loaded again under a new label, see `outcome`), PREPARE (an earlier attempt still open) =
//! roll it back and begin again, ABORTED/UNKNOWN = begin again.

use std::time::{Duration, Instant};

use super::client::{LoadRequest, RequestError};
use super::label::{load_again_label, LabelTaken, MAX_LOADS_AGAIN};
use super::outcome::{count_retry, labels_taken, LoadError, StreamLoader};
use super::response::{LabelState, LabelStateAnswer, TxnAnswer};
use super::retry::{classify_fail, FailureClass};

/// Errors travel boxed inside (the variants are large).
type Stop = Box<LoadError>;

/// Where a transaction stands after `prepare_txn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStage {
    /// Prepared: commit it.
    Prepared,
    /// Found committed under this label (an earlier run's load) and not to be loaded again
    /// ([`LabelTaken::AlreadyLoaded`]): nothing left to do.
    Committed,
}

/// The next step of the state machine.
enum Step {
    Begin,
    Load,
    Prepare,
    /// The answer was lost or ambiguous: read the label's state.
    Resolve,
    RollBackThenBegin,
    Done(TxnStage),
}

impl StreamLoader {
    /// begin → load → prepare, retrying with the same label until the transaction is
    /// prepared (or found committed). A label an earlier run committed is, for
    /// [`LabelTaken::LoadAgain`], replaced by a new one in `request` and prepared under it.
    pub async fn prepare_txn(&self, request: &mut LoadRequest) -> Result<TxnStage, LoadError> {
        let original = request.label.clone();
        for again in 1..=MAX_LOADS_AGAIN {
            let stage = self
                .prepare_txn_boxed(request)
                .await
                .map_err(|error| *error)?;
            if stage == TxnStage::Prepared || request.label_taken != LabelTaken::LoadAgain {
                return Ok(stage);
            }
            let label = load_again_label(&original, again);
            tracing::debug!(db = %request.db, table = %request.table, label = %request.label,
                new_label = %label, "label committed by an earlier run: loading the rows again");
            count_retry("load_again");
            request.label = label;
        }
        Err(labels_taken(request))
    }

    async fn prepare_txn_boxed(&self, request: &LoadRequest) -> Result<TxnStage, Stop> {
        let mut attempt = Attempt::new(self, request);
        let mut step = Step::Begin;
        loop {
            step = match step {
                Step::Done(stage) => return Ok(stage),
                Step::Begin => {
                    let answer = self.client.transaction("begin", request, false).await;
                    match attempt.answer(answer)? {
                        Some(answer) if answer.is_ok() => Step::Load,
                        Some(answer) if answer.status == "LABEL_ALREADY_EXISTS" => Step::Resolve,
                        Some(answer) => attempt.failed(&answer).await?,
                        None => Step::Resolve,
                    }
                }
                Step::Load => {
                    let answer = self.client.transaction("load", request, true).await;
                    match attempt.answer(answer)? {
                        Some(answer) if answer.is_ok() => Step::Prepare,
                        Some(answer) => {
                            self.rollback(request).await;
                            attempt.failed(&answer).await?
                        }
                        None => Step::Resolve,
                    }
                }
                Step::Prepare => {
                    let answer = self.client.transaction("prepare", request, false).await;
                    match attempt.answer(answer)? {
                        Some(answer) if answer.is_ok() => Step::Done(TxnStage::Prepared),
                        Some(answer) => {
                            self.rollback(request).await;
                            attempt.failed(&answer).await?
                        }
                        None => Step::Resolve,
                    }
                }
                Step::Resolve => match attempt.label_state().await? {
                    LabelState::Prepared => Step::Done(TxnStage::Prepared),
                    LabelState::Committed | LabelState::Visible => Step::Done(TxnStage::Committed),
                    LabelState::Prepare => Step::RollBackThenBegin,
                    _ => {
                        attempt
                            .retry("transaction not found after an unclear answer")
                            .await?
                    }
                },
                Step::RollBackThenBegin => {
                    self.rollback(request).await;
                    attempt
                        .retry("an earlier transaction with this label was still open")
                        .await?
                }
            };
        }
    }

    /// Commits a prepared transaction (idempotent: "already committed" is success).
    pub async fn commit_txn(&self, request: &LoadRequest) -> Result<(), LoadError> {
        self.commit_txn_boxed(request).await.map_err(|error| *error)
    }

    async fn commit_txn_boxed(&self, request: &LoadRequest) -> Result<(), Stop> {
        let mut attempt = Attempt::new(self, request);
        loop {
            let answer = self.client.transaction("commit", request, false).await;
            match attempt.answer(answer)? {
                Some(answer) if answer.is_ok() || answer.status == "PUBLISH_TIMEOUT" => {
                    return Ok(())
                }
                Some(answer) => {
                    if let FailureClass::Permanent { hint } = classify_fail(&answer.message) {
                        return Err(attempt.permanent(
                            format!("{}: {}", answer.status, answer.message),
                            answer.error_url.clone(),
                            hint,
                        ));
                    }
                    attempt.last = format!("{}: {}", answer.status, answer.message);
                }
                None => {}
            }
            match attempt.label_state().await? {
                LabelState::Committed | LabelState::Visible => return Ok(()),
                LabelState::Prepared => {
                    attempt.retry("commit not confirmed yet").await?;
                }
                state => {
                    return Err(Box::new(LoadError::TxnAborted {
                        db: request.db.clone(),
                        table: request.table.clone(),
                        label: request.label.clone(),
                        state: format!("{state:?}"),
                        reason: attempt.last.clone(),
                    }))
                }
            }
        }
    }

    /// Commits a prepared transaction; one StarRocks aborted instead (a busy BE, too many
    /// versions, its prepared timeout) is loaded and prepared again under its label — free
    /// again once aborted — and committed, within the retry policy. The batch's later parts
    /// are committed after it, so the order of its loads holds.
    pub async fn commit_txn_reloading(&self, request: &LoadRequest) -> Result<(), LoadError> {
        let started = Instant::now();
        let mut tries = 0;
        loop {
            let error = match self.commit_txn_boxed(request).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            tries += 1;
            if !matches!(*error, LoadError::TxnAborted { .. })
                || !self.policy.allows(tries, started.elapsed())
            {
                return Err(*error);
            }
            tracing::warn!(label = %request.label, %error, "loading the aborted transaction's rows again");
            tokio::time::sleep(self.policy.delay(tries)).await;
            if self
                .prepare_txn_boxed(request)
                .await
                .map_err(|error| *error)?
                == TxnStage::Committed
            {
                return Ok(());
            }
        }
    }

    /// Best effort: an earlier attempt's open transaction would block the label.
    async fn rollback(&self, request: &LoadRequest) {
        if let Err(error) = self.client.transaction("rollback", request, false).await {
            tracing::debug!(label = %request.label, %error, "rollback failed");
        }
    }
}

/// Retry bookkeeping for one transaction.
struct Attempt<'a> {
    loader: &'a StreamLoader,
    request: &'a LoadRequest,
    started: Instant,
    tries: u32,
    last: String,
}

impl<'a> Attempt<'a> {
    fn new(loader: &'a StreamLoader, request: &'a LoadRequest) -> Self {
        Attempt {
            loader,
            request,
            started: Instant::now(),
            tries: 0,
            last: String::new(),
        }
    }

    /// `Some(answer)`; `None` when the outcome is unknown; `Err` when retrying cannot help.
    fn answer(
        &mut self,
        answer: Result<TxnAnswer, RequestError>,
    ) -> Result<Option<TxnAnswer>, Stop> {
        match answer {
            Ok(answer) => Ok(Some(answer)),
            Err(error) if error.is_permanent() => Err(self.permanent(
                error.to_string(),
                None,
                "check sink.starrocks.fe_http, user and password",
            )),
            Err(error) => {
                self.last = error.to_string();
                Ok(None)
            }
        }
    }

    /// A refused step: permanent (bad data, schema) or retried from `begin`.
    async fn failed(&mut self, answer: &TxnAnswer) -> Result<Step, Stop> {
        match classify_fail(&answer.message) {
            FailureClass::Permanent { hint } => Err(self.permanent(
                format!("{}: {}", answer.status, answer.message),
                answer.error_url.clone(),
                hint,
            )),
            _ => {
                self.retry(&format!("{}: {}", answer.status, answer.message))
                    .await
            }
        }
    }

    /// Waits the backoff and begins again, or gives up.
    async fn retry(&mut self, why: &str) -> Result<Step, Stop> {
        self.tries += 1;
        self.last = why.to_string();
        let policy = &self.loader.policy;
        if !policy.allows(self.tries, self.started.elapsed()) {
            return Err(Box::new(LoadError::RetriesExhausted {
                db: self.request.db.clone(),
                table: self.request.table.clone(),
                label: self.request.label.clone(),
                attempts: self.tries,
                elapsed: self.started.elapsed(),
                last: self.last.clone(),
            }));
        }
        tokio::time::sleep(policy.delay(self.tries)).await;
        Ok(Step::Begin)
    }

    /// The label's state, asking again while StarRocks cannot answer.
    async fn label_state(&mut self) -> Result<LabelState, Stop> {
        loop {
            match self
                .loader
                .client
                .get_load_state(&self.request.db, &self.request.label)
                .await
            {
                Ok(LabelStateAnswer::State { state, .. }) => return Ok(state),
                Ok(LabelStateAnswer::Failed(message)) => {
                    return Err(self.permanent(
                        message,
                        None,
                        "get_load_state refused; check sink.starrocks.database and credentials",
                    ))
                }
                Err(error) if error.is_permanent() => {
                    return Err(self.permanent(
                        error.to_string(),
                        None,
                        "check sink.starrocks.fe_http, user and password",
                    ))
                }
                Err(error) => {
                    let why = error.to_string();
                    self.retry(&why).await?;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn permanent(&self, message: String, error_url: Option<String>, hint: &str) -> Stop {
        LoadError::permanent(self.request, message, error_url, hint)
    }
}
