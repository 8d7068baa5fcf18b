//! Turning one batch into a *durable* load, or into an error worth stopping for (DESIGN §3).
//!
//! ```text
//!            send(label) ───────────────► Success / Publish Timeout ──► durable
//!               │  ▲
//!               │  └── backoff ◄── Fail, retryable (busy, timeout, too many versions)
//!               │
//!               ├──► Label Already Exists ─┐
//!               │                          ▼
//!               └──► no answer ──► get_load_state(label)
//!                   (timeout, reset,      COMMITTED / VISIBLE ──► durable (not resent)
//!                    5xx, bad body)       PREPARE / PREPARED  ──► wait, ask again
//!                                         ABORTED / UNKNOWN   ──► send again, same label
//! ```
//!
//! A label found COMMITTED/VISIBLE that none of this batch's own attempts can have taken
//! belongs to an earlier run: a stream batch is then loaded again under a new label
//! ([`LabelTaken::LoadAgain`]), because the replay may have loaded older images of its rows
//! since.
//!
//! The label never changes between attempts, so StarRocks itself deduplicates: an attempt that
//! landed although its answer was lost is found by its label and not loaded twice. A load whose
//! outcome is unknown is resolved **before** anything else is sent for that table, because a
//! late commit of an old load must never overwrite newer rows; the caller keeps at most one
//! `load_batch` in flight per table.
//!
//! UNKNOWN means "StarRocks does not remember this label" (never started, or evicted after
//! ~1000 loads per database, spec §10.5). Right after our own attempt it means that attempt did
//! not land, so resending is correct; replays after long outages rely on ordered, idempotent
//! upserts instead (DESIGN §4).

use std::time::{Duration, Instant};

use std::borrow::Cow;

use super::client::{LoadRequest, RequestError, StreamLoadClient};
use super::label::{load_again_label, LabelTaken, MAX_LOADS_AGAIN};
use super::response::{LabelState, LabelStateAnswer, LoadStatus, StreamLoadResponse};
use super::retry::{classify_fail, FailureClass, RetryPolicy};

/// How a batch became durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// `Success`.
    Loaded,
    /// `Publish Timeout`: committed, visible shortly.
    PublishTimeout,
    /// An earlier attempt with this label landed (found by `get_load_state`).
    AlreadyLoaded(LabelState),
}

/// A batch is durable in StarRocks.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub label: String,
    pub durability: Durability,
    /// The answer of the attempt that succeeded (`None` when resolved by label state).
    pub response: Option<StreamLoadResponse>,
    /// Sends made (1 = first try).
    pub attempts: u32,
    /// "too many versions" failures on the way: the table loads too often; grow its interval.
    pub too_many_versions: u32,
    /// Rows StarRocks filtered yet committed the rest (only with `max_filter_ratio` > 0):
    /// data loss the caller must report.
    pub filtered_rows: u64,
    pub elapsed: Duration,
}

/// A batch could not be made durable.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No retry can help: the data, schema, credentials or configuration is wrong.
    #[error(
        "stream load into {db}.{table} failed (label {label}): {message}{}; {hint}",
        error_url.as_deref().map(|u| format!(" (ErrorURL: {u})")).unwrap_or_default()
    )]
    Permanent {
        db: String,
        table: String,
        label: String,
        message: String,
        error_url: Option<String>,
        hint: String,
    },
    /// StarRocks aborted a prepared transaction instead of committing it (a busy BE, too
    /// many versions, its prepared timeout): the rows must be loaded again.
    #[error(
        "commit of {db}.{table} (label {label}) failed: the prepared transaction is {state} \
         instead of committed ({reason}); StarRocks aborted it (the reason is its answer; a \
         restart of its FE or BE, or prepared_transaction_default_timeout_second passing, aborts \
         one too)"
    )]
    TxnAborted {
        db: String,
        table: String,
        label: String,
        state: String,
        reason: String,
    },
    /// Retryable failures lasted past the retry policy.
    #[error(
        "stream load into {db}.{table} (label {label}) still failing after {attempts} attempts \
         in {elapsed:?}: {last}; check that StarRocks is up and healthy"
    )]
    RetriesExhausted {
        db: String,
        table: String,
        label: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
}

impl LoadError {
    /// No retry can help `request`; `hint` says what the operator should do.
    pub fn permanent(
        request: &LoadRequest,
        message: String,
        error_url: Option<String>,
        hint: &str,
    ) -> Box<LoadError> {
        Box::new(LoadError::Permanent {
            db: request.db.clone(),
            table: request.table.clone(),
            label: request.label.clone(),
            message,
            error_url,
            hint: hint.to_string(),
        })
    }

    /// The StarRocks message (or transport error) that ended the batch.
    pub fn message(&self) -> &str {
        match self {
            LoadError::Permanent { message, .. } => message,
            LoadError::RetriesExhausted { last, .. } => last,
            LoadError::TxnAborted { reason, .. } => reason,
        }
    }
}

/// Sends batches with the label/outcome rules of DESIGN §3.
#[derive(Debug, Clone)]
pub struct StreamLoader {
    pub(super) client: StreamLoadClient,
    pub(super) policy: RetryPolicy,
}

/// Internal error type: boxed, the variants are large.
type Stop = Box<LoadError>;

/// What to do after one step.
enum Next {
    Done(Durability, Option<StreamLoadResponse>),
    /// Send (again), after this delay.
    Send(Duration),
    /// Ask the label state, after this delay.
    AskLabel(Duration),
    /// The label was committed before this batch was sent: load it under a new label.
    LoadAgain,
}

/// Mutable bookkeeping of one batch.
struct Attempts<'a> {
    request: &'a LoadRequest,
    policy: &'a RetryPolicy,
    started: Instant,
    sends: u32,
    retries: u32,
    too_many_versions: u32,
    last: String,
    /// An attempt's answer was lost: it may have landed, so a taken label may be its own.
    maybe_landed: bool,
    /// StarRocks said the label was taken while no attempt of ours can have landed.
    taken_before: bool,
}

impl Attempts<'_> {
    fn permanent(&self, message: String, error_url: Option<String>, hint: &str) -> Stop {
        LoadError::permanent(self.request, message, error_url, hint)
    }

    /// Back off before the next send, or give up.
    fn backoff(&mut self, last: String) -> Result<Next, Stop> {
        self.last = last;
        self.retries += 1;
        if !self.policy.allows(self.sends, self.started.elapsed()) {
            return Err(self.exhausted());
        }
        Ok(Next::Send(self.policy.delay(self.retries)))
    }

    fn exhausted(&self) -> Stop {
        Box::new(LoadError::RetriesExhausted {
            db: self.request.db.clone(),
            table: self.request.table.clone(),
            label: self.request.label.clone(),
            attempts: self.sends,
            elapsed: self.started.elapsed(),
            last: self.last.clone(),
        })
    }
}

impl StreamLoader {
    pub fn new(client: StreamLoadClient, policy: RetryPolicy) -> StreamLoader {
        StreamLoader { client, policy }
    }

    pub fn client(&self) -> &StreamLoadClient {
        &self.client
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Make one batch durable under its label, retrying with the same label as needed (and
    /// under a new one when an earlier run committed that label, for [`LabelTaken::LoadAgain`]).
    pub async fn load_batch(&self, request: &LoadRequest) -> Result<LoadOutcome, LoadError> {
        let mut current = Cow::Borrowed(request);
        for again in 1..=MAX_LOADS_AGAIN {
            match self.load_under_label(&current).await? {
                Some(outcome) => return Ok(outcome),
                None => {
                    let label = load_again_label(&request.label, again);
                    tracing::debug!(db = %request.db, table = %request.table,
                        label = %request.label, new_label = %label,
                        "label committed by an earlier run: loading the rows again");
                    count_retry("load_again");
                    current = Cow::Owned(LoadRequest {
                        label,
                        ..request.clone()
                    });
                }
            }
        }
        Err(labels_taken(request))
    }

    /// [`StreamLoader::load_batch`] under `request.label`; `None` when an earlier run had
    /// committed that label and the rows must be loaded again.
    async fn load_under_label(
        &self,
        request: &LoadRequest,
    ) -> Result<Option<LoadOutcome>, LoadError> {
        let mut state = Attempts {
            request,
            policy: &self.policy,
            started: Instant::now(),
            sends: 0,
            retries: 0,
            too_many_versions: 0,
            last: String::new(),
            maybe_landed: false,
            taken_before: false,
        };
        let mut next = Next::Send(Duration::ZERO);
        loop {
            next = match next {
                Next::LoadAgain => return Ok(None),
                Next::Done(durability, response) => {
                    let filtered_rows = response.as_ref().map_or(0, |r| r.filtered_rows);
                    return Ok(Some(LoadOutcome {
                        label: request.label.clone(),
                        durability,
                        response,
                        attempts: state.sends,
                        too_many_versions: state.too_many_versions,
                        filtered_rows,
                        elapsed: state.started.elapsed(),
                    }));
                }
                Next::Send(delay) => {
                    tokio::time::sleep(delay).await;
                    state.sends += 1;
                    let sent = self.client.send(request).await;
                    self.after_send(&mut state, sent).map_err(|e| *e)?
                }
                Next::AskLabel(delay) => {
                    tokio::time::sleep(delay).await;
                    self.ask_label(&mut state).await.map_err(|e| *e)?
                }
            };
        }
    }

    fn after_send(
        &self,
        state: &mut Attempts<'_>,
        sent: Result<StreamLoadResponse, RequestError>,
    ) -> Result<Next, Stop> {
        let request = state.request;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.outcome_unknown() => {
                tracing::warn!(db = %request.db, table = %request.table, label = %request.label,
                    error = %error, "stream load outcome unknown, asking the label state");
                count_retry("outcome_unknown");
                state.last = error.to_string();
                state.maybe_landed = true;
                return Ok(Next::AskLabel(Duration::ZERO));
            }
            Err(error) if error.is_permanent() => {
                let hint = match error {
                    RequestError::Unauthorized { .. } => "check sink.starrocks.user / password",
                    _ => "check sink.starrocks.fe_http (and the BE addresses of load_via)",
                };
                return Err(state.permanent(error.to_string(), None, hint));
            }
            Err(error) => {
                tracing::warn!(db = %request.db, table = %request.table, label = %request.label,
                    error = %error, "stream load not sent, retrying");
                count_retry("not_sent");
                return state.backoff(error.to_string());
            }
        };
        match &response.status {
            LoadStatus::Success => Ok(Next::Done(Durability::Loaded, Some(response))),
            LoadStatus::PublishTimeout => {
                Ok(Next::Done(Durability::PublishTimeout, Some(response)))
            }
            LoadStatus::LabelAlreadyExists => {
                count_retry("label_already_exists");
                state.last = response.message;
                state.taken_before = !state.maybe_landed;
                Ok(Next::AskLabel(Duration::ZERO))
            }
            LoadStatus::Fail | LoadStatus::Other(_) => {
                let class = classify_fail(&response.message);
                tracing::warn!(db = %request.db, table = %request.table, label = %request.label,
                    message = %response.message, class = ?class, "stream load failed");
                match class {
                    FailureClass::Permanent { hint } => {
                        Err(state.permanent(response.message, response.error_url, hint))
                    }
                    FailureClass::LabelInUse => {
                        count_retry("label_already_exists");
                        state.last = response.message;
                        state.taken_before = !state.maybe_landed;
                        Ok(Next::AskLabel(Duration::ZERO))
                    }
                    FailureClass::TooManyVersions => {
                        count_retry("too_many_versions");
                        state.too_many_versions += 1;
                        state.backoff(response.message)
                    }
                    FailureClass::Retryable => {
                        count_retry("load_failed");
                        state.backoff(response.message)
                    }
                }
            }
        }
    }

    async fn ask_label(&self, state: &mut Attempts<'_>) -> Result<Next, Stop> {
        let request = state.request;
        let answer = self
            .client
            .get_load_state(&request.db, &request.label)
            .await;
        let (label_state, reason) = match answer {
            Ok(LabelStateAnswer::State { state, reason }) => (state, reason),
            Ok(LabelStateAnswer::Failed(message)) => {
                let hint = "get_load_state refused; check sink.starrocks.database and credentials";
                return Err(state.permanent(message, None, hint));
            }
            Err(error) if error.is_permanent() => {
                let hint = "check sink.starrocks.fe_http, user and password";
                return Err(state.permanent(error.to_string(), None, hint));
            }
            Err(error) => {
                // Cannot learn the outcome yet: ask again later, never send blindly.
                count_retry("label_state_unavailable");
                state.last = error.to_string();
                state.retries += 1;
                if !self.policy.allows(state.sends, state.started.elapsed()) {
                    return Err(state.exhausted());
                }
                return Ok(Next::AskLabel(self.policy.delay(state.retries)));
            }
        };
        // Debug: a replay asks once per batch StarRocks already has.
        tracing::debug!(db = %request.db, table = %request.table, label = %request.label,
            state = ?label_state, "label state");
        if label_state.is_durable()
            && state.taken_before
            && request.label_taken == LabelTaken::LoadAgain
        {
            return Ok(Next::LoadAgain);
        }
        if label_state.is_durable() {
            return Ok(Next::Done(Durability::AlreadyLoaded(label_state), None));
        }
        if label_state.is_running() {
            if !self.policy.allows(state.sends, state.started.elapsed()) {
                state.last = format!("label {} still {label_state:?}", request.label);
                return Err(state.exhausted());
            }
            return Ok(Next::AskLabel(self.policy.label_poll_interval));
        }
        // ABORTED, UNKNOWN or a word we do not know: the attempt did not land; send again.
        let why = match reason {
            Some(reason) => format!("label {label_state:?}: {reason}"),
            None => format!("label {label_state:?} after: {}", state.last),
        };
        if state.sends == 0 {
            return Ok(Next::Send(Duration::ZERO));
        }
        state.backoff(why)
    }
}

/// Every new label of a batch was found taken too.
pub(super) fn labels_taken(request: &LoadRequest) -> LoadError {
    *LoadError::permanent(
        request,
        format!("{MAX_LOADS_AGAIN} new labels for these rows were taken as well"),
        None,
        "another process loads the same changes: run one dbmazz per slot",
    )
}

/// Every `reason` of `dbmazz_load_retries_total`.
const RETRY_REASONS: [&str; 7] = [
    "label_already_exists",
    "label_state_unavailable",
    "load_again",
    "load_failed",
    "not_sent",
    "outcome_unknown",
    "too_many_versions",
];

/// Creates every reason's series at 0, so an alert on its increase sees the first retry.
pub fn zero_retry_counts() {
    for reason in RETRY_REASONS {
        let _ = crate::ops::metrics()
            .load_retries
            .get_or_create(&crate::ops::ReasonLabels { reason });
    }
}

/// Counts one retried step in `dbmazz_load_retries_total{reason}`.
pub(super) fn count_retry(reason: &'static str) {
    debug_assert!(
        RETRY_REASONS.contains(&reason),
        "unlisted retry reason {reason}"
    );
    crate::ops::metrics()
        .load_retries
        .get_or_create(&crate::ops::ReasonLabels { reason })
        .inc();
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_retry_reason_is_exported_from_the_start() {
        super::zero_retry_counts();
        let text = crate::ops::metrics().render();
        for reason in super::RETRY_REASONS {
            assert!(
                text.contains(&format!("dbmazz_load_retries_total{{reason=\"{reason}\"}}")),
                "{reason} missing in {text}"
            );
        }
    }
}
